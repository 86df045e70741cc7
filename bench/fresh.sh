#!/usr/bin/env bash
# Fresh-process `generate`: several attnskip launchers (builds, or the same build under other settings)
# taking turns (A B C A B C ...), each run a new JVM, as a user runs it. Prints, per launcher, the median
# (and range) of generate's own decode rate and of its decode loop's CPU time per step, and the whole
# process's wall and CPU time (user + sys, from /usr/bin/time), then each launcher's median ratio to the
# first, taken pair by pair; and whether every run printed the same text.
# Usage: bench/fresh.sh RUNS MODEL_DIR LAUNCHER...
#   LAUNCHER: a command that runs attnskip, e.g. ./attnskip or "env ATTNSKIP_CLASS_ARCHIVE=off ./attnskip"
# Environment: PROMPT (default "Once upon a time"), STEPS (default 256), GENERATE_OPTS (more generate options).
set -euo pipefail
runs=$1; model=$2; shift 2
launchers=("$@")
prompt=${PROMPT:-Once upon a time}
steps=${STEPS:-256}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for ((r = 0; r < runs; r++)); do
  for i in "${!launchers[@]}"; do
    # shellcheck disable=SC2086 # a launcher may be a command with arguments
    /usr/bin/time -f '%e %U %S' -o "$work/time" ${launchers[$i]} generate "$model" --prompt "$prompt" -n "$steps" -t 0 \
      --device cpu ${GENERATE_OPTS:-} >"$work/out" 2>"$work/err"
    line=$(grep 'achieved tok/s' "$work/err")
    rate=$(sed -n 's/.*achieved tok\/s: \([0-9.]*\).*/\1/p' <<<"$line")
    cpu=$(sed -n 's/.*decode: \([0-9]*\) steps in [0-9.]* s, \([0-9.]*\) s CPU.*/\2 \1/p' <<<"$line" | awk '{printf "%.1f", $1 * 1e6 / $2}')
    read -r wall user sys <"$work/time"
    echo "$i $rate $cpu $wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" >>"$work/rows"
    [ -f "$work/first" ] || cp "$work/out" "$work/first"
    cmp -s "$work/out" "$work/first" || echo "$i" >>"$work/differ"
  done
done

awk -v n="${#launchers[@]}" '
  function median(a, k,   i, j, t) {
    for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  function cell(v, k,   lo, hi, i, c) {
    lo = v[1]; hi = v[1]
    for (i = 1; i <= k; i++) { c[i] = v[i]; if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
    return sprintf(fmt, median(c, k)) " (" sprintf(fmt, lo) "-" sprintf(fmt, hi) ")"
  }
  { k = ++count[$1]; for (f = 2; f <= 5; f++) val[$1, f, k] = $f }
  END {
    print "| launcher | decode tok/s | decode CPU per step (us) | process wall (s) | process CPU (s) | tok/s ratio | CPU per step ratio | wall ratio | CPU ratio |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 0; i < n; i++) {
      k = count[i]; row = "| " i
      for (f = 2; f <= 5; f++) {
        fmt = f <= 3 ? "%.0f" : "%.2f"
        for (j = 1; j <= k; j++) v[j] = val[i, f, j]
        row = row " | " cell(v, k)
      }
      for (f = 2; f <= 5; f++) {
        for (j = 1; j <= k; j++) r[j] = val[i, f, j] / val[0, f, j]
        row = row " | " sprintf("%.2f", median(r, k))
      }
      print row " |"
    }
  }' "$work/rows"
for i in "${!launchers[@]}"; do echo "launcher $i: ${launchers[$i]}"; done
if [ -f "$work/differ" ]; then echo "text differs from the first run's in runs of launchers: $(sort -u "$work/differ" | tr '\n' ' ')"; else echo "same text in every run"; fi
