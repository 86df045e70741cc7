#!/usr/bin/env bash
# Where a fresh JVM's decode time goes, step by step: bench/StepCurve.java in RUNS new JVMs per setting,
# the settings taking turns; per setting, the median over runs of the mean wall and CPU time per decode
# step (calling thread) in buckets of 16 steps, and of the whole decode span.
# Usage: bench/step-curve.sh RUNS MODEL_DIR 'JVM OPTIONS' ...   (e.g. '-XX:TieredStopAtLevel=1', as generate's launcher)
# Environment: THREADS (intra-op threads, default 1), GENERATIONS (in each JVM; the last is measured, default 1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=$1; model=$2; shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
javac -cp "$here/target/attnskip.jar" -d "$work" "$here/bench/StepCurve.java"
for ((r = 0; r < runs; r++)); do
  i=0
  for opts in "$@"; do
    # shellcheck disable=SC2086 # the options are words
    java $opts -cp "$here/target/attnskip.jar:$work" StepCurve "$model" "${THREADS:-1}" "${GENERATIONS:-1}" >"$work/curve.$i.$r" 2>/dev/null
    i=$((i + 1))
  done
done
python3 - "$work" "$runs" "$@" <<'PY'
import statistics, sys
work, runs, settings = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for i, name in enumerate(settings):
    walls, cpus = [], []
    for r in range(runs):
        lines = open(f"{work}/curve.{i}.{r}").read().splitlines()
        first = int(lines[0].split(":")[1])
        rows = [l.split() for l in lines[1:]][first:]
        wall = [float(x[1]) * 1000 for x in rows]
        cpu = [float(x[2]) for x in rows]
        walls.append([b - a for a, b in zip(wall, wall[1:])])
        cpus.append([b - a for a, b in zip(cpu, cpu[1:])])
    steps = min(len(w) for w in walls)
    buckets = range(0, steps, 16)
    med = lambda series, b: statistics.median(sum(s[b:b + 16]) / len(s[b:b + 16]) for s in series)
    print(f"JVM options: {name or '(none)'}; {runs} runs, {steps} decode steps")
    print("| steps | " + " | ".join(f"{b + 1}-{min(b + 16, steps)}" for b in buckets) + " | all |")
    print("|---" * (len(buckets) + 2) + "|")
    for label, series in (("wall us per step", walls), ("CPU us per step", cpus)):
        total = statistics.median(sum(s[:steps]) for s in series) / 1000
        print(f"| {label} | " + " | ".join(f"{med(series, b):.0f}" for b in buckets) + f" | {total:.1f} ms |")
    print()
PY
