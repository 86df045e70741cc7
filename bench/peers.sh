#!/usr/bin/env bash
# attnskip against llama2.c on the same weights: greedy generation of 256 positions from one prompt,
# the commands taking turns (A B C A B C ...) so that they share the machine's drift. Each prints its
# own decode rate ('achieved tok/s'); this prints the median (and range) of each as a Markdown row,
# then whether every run printed the same text as the first command.
# Usage: bench/peers.sh RUNS LABEL MODEL_DIR CHECKPOINT TOKENIZER BINARY...
#   MODEL_DIR: attnskip's export of CHECKPOINT; BINARY: llama2.c executables (built with its own Makefile)
# Environment: ATTNSKIP (default ./attnskip), PROMPT (default "Once upon a time"), STEPS (default 256).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
attnskip=${ATTNSKIP:-"$here/attnskip"}
prompt=${PROMPT:-Once upon a time}
steps=${STEPS:-256}
runs=$1; label=$2; model=$3; checkpoint=$4; tokenizer=$5; shift 5
binaries=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rate() { grep -o 'achieved tok/s: [0-9.]*' "$1" | awk '{print $3}'; }
for ((r = 0; r < runs; r++)); do
  $attnskip generate "$model" --prompt "$prompt" -n "$steps" -t 0 --device cpu >"$work/out.0" 2>"$work/err.0"
  rate "$work/err.0" >>"$work/rates.0"
  cmp -s "$work/out.0" "$work/first" 2>/dev/null || { [ -f "$work/first" ] && echo differ >"$work/differ.0"; }
  [ -f "$work/first" ] || cp "$work/out.0" "$work/first"
  for i in "${!binaries[@]}"; do
    n=$((i + 1))
    "${binaries[$i]}" "$checkpoint" -z "$tokenizer" -n "$steps" -t 0 -i "$prompt" >"$work/out.$n" 2>"$work/err.$n"
    rate "$work/err.$n" >>"$work/rates.$n"
    # run.c ends its text with a newline as generate does; the texts compare byte for byte
    cmp -s "$work/out.$n" "$work/first" || echo differ >"$work/differ.$n"
  done
done

summary() { sort -g "$1" | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.0f (%.0f-%.0f)", m, v[1], v[NR]}'; }
median() { sort -g "$1" | awk '{v[NR]=$1} END {print NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
header="| model | attnskip generate"; row="| $label | $(summary "$work/rates.0")"
best=0
for i in "${!binaries[@]}"; do
  n=$((i + 1))
  header="$header | $(basename "${binaries[$i]}")"
  row="$row | $(summary "$work/rates.$n")"
  best=$(awk -v a="$best" -v b="$(median "$work/rates.$n")" 'BEGIN {print (b > a ? b : a)}')
done
same=yes
ls "$work"/differ.* >/dev/null 2>&1 && same=no
echo "$header | attnskip / best | same text |"
printf '|---%.0s' $(seq 1 $((${#binaries[@]} + 4))); echo '|'
echo "$row | $(awk -v a="$(median "$work/rates.0")" -v b="$best" 'BEGIN {printf "%.2f", a / b}') | $same |"
