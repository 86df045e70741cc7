#!/usr/bin/env bash
# Wall time and peak RSS (/usr/bin/time -v) of every command that opens a large model, one at a
# time, on the 1.1 B synthetic export: export, optimize, inspect, eval, serve (start, /health, one
# completion, SIGTERM) and the probe's switch experiment on one country pair. One line per step on
# stdout; each step's full output in $WORK/logs. Deletes the exports at the end (about 9 GB).
# Usage: bench/large-paths.sh TOKENIZER_JSON [STEP...]
#   TOKENIZER_JSON: a Llama 2 tokenizer.json with 32000 tokens (eval, serve and probe need one).
#   STEP: export optimize inspect eval serve probe (default: all, in that order).
# Environment: WORK (default: a temporary directory), ATTNSKIP (default: ./attnskip), PORT (18977).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
attnskip=${ATTNSKIP:-"$here/attnskip"}
tok=${1:?usage: bench/large-paths.sh TOKENIZER_JSON [STEP...]}
shift
steps=${*:-export optimize inspect eval serve probe}
work=${WORK:-$(mktemp -d)}
port=${PORT:-18977}
big=$work/big11
logs=$work/logs
mkdir -p "$logs"
cd "$here"

timed() { # name command...: runs it under /usr/bin/time -v, prints exit, wall and peak RSS
  local name=$1
  shift
  echo "== $name $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -v -o "$logs/$name.time" "$@" > "$logs/$name.out" 2> "$logs/$name.err"
  grep -E 'Exit status|Elapsed|Maximum resident' "$logs/$name.time" | sed 's/^\s*/   /'
}

for step in $steps; do
  case $step in
  export) rm -rf "$big"
    timed export "$attnskip" export --synthetic layers=16,hidden=2048,heads=32,kv_heads=8,ffn=8192,vocab=32000 --seed 0 -o "$big" ;;
  optimize) rm -rf "$big-opt"
    timed optimize "$attnskip" optimize "$big" -o "$big-opt" --drop-attn-above 0.5 ;;
  inspect) timed inspect "$attnskip" inspect "$big" ;;
  eval) timed eval "$attnskip" eval --baseline "$big" --variant "$big-opt" --tokenizer "$tok" --text eval/stories.txt \
      --max-docs 1 --max-tokens 16 --no-latency --bootstrap 10 --device cpu --quiet --report "$work/eval" ;;
  serve)
    echo "== serve $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    start=$(date +%s)
    /usr/bin/time -v -o "$logs/serve.time" "$attnskip" serve "$big" --port "$port" --tokenizer "$tok" --device cpu \
      > "$logs/serve.out" 2> "$logs/serve.err" &
    timer=$!
    until curl -sf "localhost:$port/health" > /dev/null; do
      kill -0 $timer 2> /dev/null || break
      sleep 1
    done
    echo "   ready after $(($(date +%s) - start)) s"
    curl -s "localhost:$port/v1/completions" -H 'Content-Type: application/json' \
      -d '{"prompt":"Once upon a time","max_tokens":8}' > "$logs/serve.response"
    echo "   answered after $(($(date +%s) - start)) s"
    server=$(pgrep -P $timer java)
    jcmd "$server" GC.heap_info > "$logs/serve.heap" 2>&1
    kill -TERM "$server"
    wait $timer
    grep -E 'Exit status|Elapsed|Maximum resident' "$logs/serve.time" | sed 's/^\s*/   /' ;;
  probe)
    head -1 eval/probe/country_pairs.jsonl > "$work/pair1.jsonl"
    rm -rf "$work/probe"
    # progress lines go to stderr; on the 1.1 B model each of the 17 steps takes minutes of CPU
    timed probe "$attnskip" probe "$big" --tokenizer "$tok" --text eval/stories.txt --prompts 2 --max-tokens 8 \
      --experiments switch --pairs "$work/pair1.jsonl" --report "$work/probe" ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
if [ -z "${WORK:-}" ]; then
  rm -rf "$work"
fi
