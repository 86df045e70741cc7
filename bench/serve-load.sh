#!/usr/bin/env bash
# Load run on loopback: for each model directory and each --max-batch value, starts
# 'attnskip serve', sends CLIENTS closed-loop clients x REQUESTS greedy completions of
# MAX_TOKENS tokens (LoadClient), prints one line per configuration, and stops the server.
# Usage: bench/serve-load.sh "MODEL_DIR..." "MAX_BATCH..." [CLIENTS] [REQUESTS] [MAX_TOKENS] [CONCURRENCY]
# Repeat MAX_BATCH values ("1 8 1 8 1 8") to interleave the configurations. PORT overrides the port.
# Each line ends with the server process's CPU time per generated token (from /proc), which other
# load on the machine inflates far less than wall-clock figures (waiting for a core costs no CPU time).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
models=$1; batches=$2; clients=${3:-8}; requests=${4:-400}; tokens=${5:-64}; concurrency=${6:-8}
port=${PORT:-18081}
log=$(mktemp /tmp/attnskip-serve.XXXXXX.log)
[ -f "$here/target/attnskip.jar" ] && [ -d "$here/target/test-classes" ] || (cd "$here" && ./mvnw -q -DskipTests package)
for model in $models; do
  for batch in $batches; do
    "$here/attnskip" serve "$model" --port $port --device cpu --max-concurrency "$concurrency" --queue 64 \
      --max-batch "$batch" 2>"$log" &
    server=$!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.2; done
    java -cp "$here/target/test-classes:$here/target/attnskip.jar" org.attnskip.serve.LoadClient \
      "http://127.0.0.1:$port" 4 40 "$tokens" >/dev/null   # warm-up
    cpu_before=$(awk '{print $14 + $15}' /proc/$server/stat)
    line=$(java -cp "$here/target/test-classes:$here/target/attnskip.jar" org.attnskip.serve.LoadClient \
      "http://127.0.0.1:$port" "$clients" "$requests" "$tokens")
    cpu_after=$(awk '{print $14 + $15}' /proc/$server/stat)
    # server CPU time over the measured run per completion token: robust to other load on the machine
    generated=$(echo "$line" | sed -E 's/.* in ([0-9.]+) s: .* ([0-9]+) completion tok\/s.*/\1 \2/' | awk '{print $1 * $2}')
    cpu_ms=$(awk -v t="$(getconf CLK_TCK)" -v b="$cpu_before" -v a="$cpu_after" -v n="$generated" \
      'BEGIN{printf "%.2f", (a - b) * 1000 / t / n}')
    rows=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^attnskip_decode_batch_size_sum/{s=$2} /^attnskip_decode_batch_size_count/{c=$2} END{if (c>0) printf "%.2f", s/c; else print "1 (alone)"}')
    echo "$(basename "$model") max-batch $batch: $line; mean rows per decode step $rows; server CPU ${cpu_ms} ms per token"
    kill -TERM $server; wait $server || true
  done
done
