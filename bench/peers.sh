#!/usr/bin/env bash
# attnskip against llama2.c on the same weights: greedy generation of 256 positions from one prompt,
# the commands taking turns (A B C A B C ...) so that they share the machine's drift. Each prints its
# own decode rate ('achieved tok/s'); this prints, per attnskip launcher, the median (and range) of
# each command's rate as a Markdown row, its ratio to the first llama2.c binary taken turn by turn
# (the median of the per-turn ratios), its ratio to the best binary's median, and whether every run
# printed the same text as the first command.
# Usage: bench/peers.sh RUNS LABEL MODEL_DIR CHECKPOINT TOKENIZER BINARY...
#   MODEL_DIR: attnskip's export of CHECKPOINT; BINARY: llama2.c executables (built with its own Makefile)
# Environment: ATTNSKIP (default ./attnskip; several launchers separated by spaces take turns too, e.g.
#   a build before a change and one after it), PROMPT (default "Once upon a time"), STEPS (default 256).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
read -r -a launchers <<<"${ATTNSKIP:-$here/attnskip}"
prompt=${PROMPT:-Once upon a time}
steps=${STEPS:-256}
runs=$1; label=$2; model=$3; checkpoint=$4; tokenizer=$5; shift 5
binaries=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rate() { grep -o 'achieved tok/s: [0-9.]*' "$1" | awk '{print $3}'; }
same_text() { # the first output is the reference; any other that differs marks its command
  if [ -f "$work/first" ]; then cmp -s "$1" "$work/first" || echo differ >"$work/differ.$2"; else cp "$1" "$work/first"; fi
}
for ((r = 0; r < runs; r++)); do
  for j in "${!launchers[@]}"; do
    ${launchers[$j]} generate "$model" --prompt "$prompt" -n "$steps" -t 0 --device cpu >"$work/out" 2>"$work/err"
    rate "$work/err" >>"$work/rates.a$j"
    same_text "$work/out" "a$j"
  done
  for i in "${!binaries[@]}"; do
    "${binaries[$i]}" "$checkpoint" -z "$tokenizer" -n "$steps" -t 0 -i "$prompt" >"$work/out" 2>"$work/err"
    rate "$work/err" >>"$work/rates.b$i"
    # run.c ends its text with a newline as generate does; the texts compare byte for byte
    same_text "$work/out" "b$i"
  done
done

summary() { sort -g "$1" | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.0f (%.0f-%.0f)", m, v[1], v[NR]}'; }
median() { sort -g "$1" | awk '{v[NR]=$1} END {print NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
header="| model | attnskip generate"
best=0
for i in "${!binaries[@]}"; do
  header="$header | $(basename "${binaries[$i]}")"
  best=$(awk -v a="$best" -v b="$(median "$work/rates.b$i")" 'BEGIN {print (b > a ? b : a)}')
done
same=yes
ls "$work"/differ.* >/dev/null 2>&1 && same=no
echo "$header | attnskip / $(basename "${binaries[0]}"), turn by turn | attnskip / best | same text |"
printf '|---%.0s' $(seq 1 $((${#binaries[@]} + 5))); echo '|'
for j in "${!launchers[@]}"; do
  name=$label
  [ "${#launchers[@]}" -gt 1 ] && name="$label, ${launchers[$j]}"
  row="| $name | $(summary "$work/rates.a$j")"
  for i in "${!binaries[@]}"; do
    row="$row | $(summary "$work/rates.b$i")"
  done
  paste "$work/rates.a$j" "$work/rates.b0" | awk '{print $1 / $2}' >"$work/turns"
  echo "$row | $(printf '%.2f' "$(median "$work/turns")") | $(awk -v a="$(median "$work/rates.a$j")" -v b="$best" 'BEGIN {printf "%.2f", a / b}') | $same |"
done
