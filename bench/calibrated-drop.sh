#!/usr/bin/env bash
# Calibrated drop against plain drop: quality and decode latency.
# Quality: calibrate on the first 200 of ../shared/data/stories260K-samples.jsonl: "linear" with all
# their tokens, default target, ridge fit only (--refine-epochs 0); "refined" with every default
# (16,384 tokens, output refinement for 3 epochs); evaluate on eval/stories.txt and on the last 100 samples (never calibrated on);
# perplexity, top-1 agreement and mean KL to the baseline with 95% bootstrap intervals, for
# stories-deep12 at 1, 3, 4 and 6 dropped layers and stories260K at 1, 2, 3 and 4.
# Latency: the 12-layer synthetic model of the Benchmarks section at --drop-attn-above 0.5,
# interleaved pairs (compensated vs plain drop, both vs the baseline, and plain vs plain as the
# noise floor), on one intra-op thread and on all cores.
# Usage: bench/calibrated-drop.sh [WORK_DIR] [quality|latency|all]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${ATTNSKIP_FIXTURES:-$here/../shared}
work=${1:-/tmp/attnskip-calibrated-drop}
what=${2:-all}
mkdir -p "$work"
a() { "$here/attnskip" "$@"; }
quality_line() { # baseline variant text report
  a eval --baseline "$1" --variant "$2" --text "$3" --no-latency --quiet --report "$4" \
    | grep -E '^(perplexity|agreement)' | tr -s ' ' | tr '\n' ' '
}
if [ "$what" != latency ]; then
  head -200 "$shared/data/stories260K-samples.jsonl" > "$work/calibration.jsonl"
  tail -100 "$shared/data/stories260K-samples.jsonl" > "$work/held-out.jsonl"
  for m in stories-deep12 stories260K; do
    tok=$(ls "$shared/models/$m"/tok*.bin)
    a export --llama2c "$shared/models/$m/$m.bin" --tokenizer "$tok" -o "$work/$m" > /dev/null
  done
  for spec in "stories-deep12 11" "stories-deep12 9" "stories-deep12 8" "stories-deep12 6" \
              "stories260K 4" "stories260K 3" "stories260K 2" "stories260K 1"; do
    set -- $spec; m=$1; k=$2
    a optimize "$work/$m" -o "$work/$m-drop$k" --drop-attn --from-layer "$k" > /dev/null
    a optimize "$work/$m" -o "$work/$m-linear$k" --drop-attn --from-layer "$k" --compensate linear \
      --calibration-text "$work/calibration.jsonl" --calibration-tokens 1000000 --refine-epochs 0 --quiet > /dev/null
    a optimize "$work/$m" -o "$work/$m-refined$k" --drop-attn --from-layer "$k" --compensate linear \
      --calibration-text "$work/calibration.jsonl" --quiet > /dev/null
    for v in drop linear refined; do
      for t in "$here/eval/stories.txt" "$work/held-out.jsonl"; do
        echo "$m from layer $k, $v, $(basename "$t"): $(quality_line "$work/$m" "$work/$m-$v$k" "$t" \
          "$work/report-$m-$v$k-$(basename "$t")")"
      done
    done
  done
fi
if [ "$what" != quality ]; then
  a export --synthetic layers=12,hidden=256,heads=4,ffn=768,vocab=512,seq=1280 --seed 20240501 -o "$work/syn12" > /dev/null
  a optimize "$work/syn12" -o "$work/syn12-drop" --drop-attn-above 0.5 > /dev/null
  head -200 "$shared/data/stories260K-samples.jsonl" > "$work/calibration.jsonl"
  a optimize "$work/syn12" -o "$work/syn12-linear" --drop-attn-above 0.5 --compensate linear \
    --calibration-text "$work/calibration.jsonl" --tokenizer "$shared/models/stories260K/tok512.bin" --calibration-tokens 4096 \
    --quiet > /dev/null
  # --threads 0 is every core; 1 keeps ONNX Runtime's per-op thread hand-offs out of the comparison
  for threads in 1 0; do
    for pair in "syn12-drop syn12-linear" "syn12 syn12-linear" "syn12 syn12-drop" "syn12-drop syn12-drop"; do
      set -- $pair
      echo "== baseline $1, variant $2, --threads $threads"
      a eval --baseline "$work/$1" --variant "$work/$2" --text "$here/eval/stories.txt" --max-docs 1 --prefill-lengths 16 \
        --decode-contexts 1024 --warmup 2 --repeats 16 --decode-steps 8 --device cpu --threads "$threads" --quiet \
        --report "$work/latency-$1-$2-$threads" | grep -E '^decode'
    done
  done
fi
