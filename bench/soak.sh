#!/usr/bin/env bash
# Soak of 'attnskip serve' on loopback: REQUESTS mixed requests (greedy, streamed, streams dropped by
# the client, malformed bodies) at CONCURRENCY, after a warm-up of the same load. Checks every text
# against the generation loop alone and a 4xx for every malformed body; prints p50/p99, the KV bytes in
# use once idle, and the server's resident memory and threads after warm-up and after the run; exits 1
# on a wrong text, a malformed body without 4xx, or KV bytes left in use; then SIGTERMs the server and
# checks that it exits 0.
# Usage: bench/soak.sh MODEL_DIR [REQUESTS] [CONCURRENCY]
#   e.g. attnskip export --llama2c ../shared/models/stories260K/stories260K.bin \
#          --tokenizer ../shared/models/stories260K/tok512.bin -o /tmp/soak/s260k && bench/soak.sh /tmp/soak/s260k 1000 32
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model=$1; requests=${2:-1000}; concurrency=${3:-32}
port=18083
[ -f "$here/target/attnskip.jar" ] && [ -d "$here/target/test-classes" ] || (cd "$here" && ./mvnw -q -DskipTests package)
java -jar "$here/target/attnskip.jar" serve "$model" --port $port --device cpu --max-concurrency 8 --queue 64 \
  2>/tmp/attnskip-soak-serve.log &
server=$!
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.2; done
status=0
java -cp "$here/target/test-classes:$here/target/attnskip.jar" org.attnskip.serve.SoakClient \
  $port "$model" "$requests" "$concurrency" $server || status=$?
kill -TERM $server
code=0; wait $server || code=$?
echo "server exit code after SIGTERM: $code"
[ "$code" -eq 0 ] || status=1
exit $status
