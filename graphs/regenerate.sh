#!/usr/bin/env sh
# Regenerates every graph in this folder from the project's own synthetic exporter.
# Run from the repository root: sh graphs/regenerate.sh
# (GraphsAreReproducibleTest checks that the committed files equal what this recipe writes.)
set -eu
cd "$(dirname "$0")/.."
run() { ./attnskip "$@" >/dev/null; }

# A 4-layer grouped-query Llama with random weights: 4 query heads, 2 KV heads, vocab 256.
run export --synthetic layers=4,hidden=64,heads=4,kv_heads=2,ffn=128,vocab=256,seq=128 --seed 0 -o graphs/tiny-llama
# The same with attention dropped in layers 2 and 3, and with previous tokens frozen above layer 2.
run optimize graphs/tiny-llama -o graphs/tiny-llama-drop0.5 --drop-attn-above 0.5
run optimize graphs/tiny-llama -o graphs/tiny-llama-freeze0.5 --freeze-above 0.5
