#!/usr/bin/env bash
# How calibrated drop's defaults were chosen, on calibration text only: fit on the first 150 of
# ../shared/data/stories260K-samples.jsonl, score on stories 151-200 (the last 100, which the
# quality benchmark evaluates on, and eval/stories.txt are not read), stories-deep12 with its top 6
# attention layers dropped; each calibration target at ridge 0.001, 0.01 and 0.1 without output
# refinement, then the stream target refined for 1 and 3 epochs.
# Usage: bench/calibrated-drop-select.sh [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${ATTNSKIP_FIXTURES:-$here/../shared}
work=${1:-/tmp/attnskip-calibrated-drop-select}
mkdir -p "$work"
a() { "$here/attnskip" "$@"; }
head -150 "$shared/data/stories260K-samples.jsonl" > "$work/fit.jsonl"
sed -n 151,200p "$shared/data/stories260K-samples.jsonl" > "$work/validation.jsonl"
a export --llama2c "$shared/models/stories-deep12/stories-deep12.bin" --tokenizer "$shared/models/stories-deep12/tok512.bin" \
  -o "$work/deep12" > /dev/null
score() { # variant
  a eval --baseline "$work/deep12" --variant "$work/$1" --text "$work/validation.jsonl" --no-latency --quiet \
    --report "$work/report-$1" | grep -E '^(perplexity|agreement)' | tr -s ' ' | tr '\n' ' '
}
a optimize "$work/deep12" -o "$work/drop6" --drop-attn --from-layer 6 > /dev/null
echo "plain drop: $(score drop6)"
for target in branch stream; do
  for ridge in 0.001 0.01 0.1; do
    a optimize "$work/deep12" -o "$work/$target-$ridge" --drop-attn --from-layer 6 --compensate linear \
      --calibration-text "$work/fit.jsonl" --calibration-tokens 1000000 --calibration-target "$target" --ridge "$ridge" --refine-epochs 0 --quiet > /dev/null
    echo "$target, ridge $ridge: $(score "$target-$ridge")"
  done
done
for epochs in 1 3; do
  a optimize "$work/deep12" -o "$work/refined-$epochs" --drop-attn --from-layer 6 --compensate linear \
    --calibration-text "$work/fit.jsonl" --calibration-tokens 1000000 --refine-epochs "$epochs" --quiet > /dev/null
  echo "stream, ridge 0.01, refined $epochs epochs: $(score "refined-$epochs")"
done
