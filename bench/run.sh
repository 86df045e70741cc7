#!/usr/bin/env bash
# Throughput of a baseline and its variants (each interleaved with the baseline in one run, plus the
# baseline against itself for the noise floor) and decode time against the memory-bound floor, as
# Markdown tables on stdout.
# Usage: bench/run.sh [BASELINE VARIANT...]
#   A model is a model directory or .onnx file, optionally with #threads=N,spinning=off,... (see 'attnskip bench --help').
#   Without models: exports the synthetic model SYNTH (seed 20240501) as the unfused and the fused
#   graph, rewrites both with --drop-attn-above 0.5, all into a temporary directory, and benchmarks
#   the unfused graph (baseline) against the three others.
# Environment: BENCH_OPTS (extra 'attnskip bench' options), SYNTH (the synthetic spec),
#   ATTNSKIP (the command that runs attnskip; default: ./attnskip, which builds the jar if needed).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
attnskip=${ATTNSKIP:-"$here/attnskip"}
synth=${SYNTH:-layers=12,hidden=256,heads=4,ffn=768,vocab=512,seq=1280}
opts=${BENCH_OPTS:-}
if [ $# -eq 0 ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  for graph in unfused fused; do
    name=synthetic; [ $graph = fused ] && name=synthetic-fused
    $attnskip export --synthetic "$synth" --seed 20240501 --graph $graph -o "$work/$name" >&2
    $attnskip optimize "$work/$name" -o "$work/$name-drop05" --drop-attn-above 0.5 >&2
  done
  set -- "$work/synthetic" "$work/synthetic-fused" "$work/synthetic-drop05" "$work/synthetic-fused-drop05"
fi
# shellcheck disable=SC2086  # BENCH_OPTS is a list of options
$attnskip bench "$@" --noise-floor $opts
