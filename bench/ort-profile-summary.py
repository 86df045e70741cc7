#!/usr/bin/env python3
"""Where a decode step's time goes, from ONNX Runtime's profile (attnskip generate --ort-profile PREFIX,
or bench/DecodeProfile.java).

Prints, over the single-token runs only (the prefill run is left out), the mean wall time of a run
inside ONNX Runtime, the part of it spent in kernels, and the kernel time by operator type. The
caller's own time per step (Java: tensors, maps, sampling) is generate's per-step time minus the
run time printed here.
With --by-node: instead, each node's median time over the decode runs (robust to a step that
another process slowed down), summed over the nodes that differ only in their layer number
(/model/layers.#/mlp/up_proj/MatMul), with the median run time.
Usage: bench/ort-profile-summary.py [--by-node] PROFILE.json
"""
import collections
import json
import re
import statistics
import sys

by_node = sys.argv[1] == "--by-node"
events = json.load(open(sys.argv[-1]))
runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
# The first model_run is the prefill; a node event belongs to the run whose span holds it.
runs.sort(key=lambda e: e["ts"])
decode = runs[1:]
if not decode:
    sys.exit("no decode runs in " + sys.argv[-1])
start = decode[0]["ts"]
n = len(decode)
if by_node:
    durations = collections.defaultdict(list)
    op_of = {}
    for e in nodes:
        if e["ts"] >= start:
            name = e["name"][:-len("_kernel_time")]
            durations[name].append(e["dur"])
            op_of[name] = e.get("args", {}).get("op_name", "?")
    groups = collections.defaultdict(list)
    for name, ds in durations.items():
        groups[(op_of[name], re.sub(r"\.\d+/", ".#/", name))].append(statistics.median(ds))
    total = sum(sum(m) for m in groups.values())
    print(f"decode runs: {n}; median run {statistics.median(e['dur'] for e in decode) / 1000:.2f} ms in ONNX Runtime, "
          f"sum of the nodes' medians {total / 1000:.2f} ms")
    print("| op | nodes (layer # varies) | nodes | median per node, ms | sum, ms |")
    print("|---|---|---|---|---|")
    for (op, name), meds in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {op} | {name} | {len(meds)} | {statistics.median(meds) / 1000:.3f} | {sum(meds) / 1000:.2f} |")
    sys.exit(0)
by_op = collections.Counter()
count = collections.Counter()
for e in nodes:
    if e["ts"] >= start:
        op = e.get("args", {}).get("op_name", "?")
        by_op[op] += e["dur"]
        count[op] += 1
run_us = sum(e["dur"] for e in decode) / n
kernel_us = sum(by_op.values()) / n
print(f"decode runs: {n}; per run: {run_us:.1f} us in ONNX Runtime, of which kernels {kernel_us:.1f} us "
      f"({sum(count.values()) / n:.0f} kernels), the rest ({run_us - kernel_us:.1f} us) its own overhead")
print("| op | kernels per run | us per run | share of kernel time |")
print("|---|---|---|---|")
for op, us in by_op.most_common():
    print(f"| {op} | {count[op] / n:.0f} | {us / n:.1f} | {us / sum(by_op.values()):.0%} |")
