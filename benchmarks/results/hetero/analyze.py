#!/usr/bin/env python3
"""analyze.py - per run of rounds.sh: the measured period of a group and
each stage's mean compute per decode micro-batch (from the trace), against
the cost model's prediction for that stage; then each board's in-run
slowdown, the cluster file's `slowdown`: the median over the runs of
measured / predicted compute of the stages it ran without the output head
(the head's cost is a separate error of the model, see README.md), over
the plans named in $FROM (comma-separated; default all) - plans made
without the slowdowns, so that they calibrate and the rest are tested.

    analyze.py OUTDIR PLAN-EXPLAIN.txt NAME=PLAN.yaml ...

PLAN-EXPLAIN.txt is `shardpipe plan --explain` on the cluster file: its
board table (ms per layer and head ms for a decode micro-batch) prices any
split's stages the way the planner does (all layers of this model have the
same shape; the embedding, 0.01 ms, is left out). Traces are read from
$TRACES (default /tmp/hetero-traces)."""
import csv
import json
import os
import re
import statistics
import sys


def board_table(explain):
    t = {}
    for m in re.finditer(r"^(\S+)\s+\S+\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s*$", open(explain).read(), re.M):
        t[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return t


def stages_of(plan):
    text = open(plan).read()
    hosts = re.findall(r"^\s*host:\s*(\S+)", text, re.M)
    # `layers: [a, b]`, or `layers: a` for one layer
    layers = [(int(a), int(b or a)) for a, b in
              re.findall(r"^\s*layers:\s*\[?(\d+)(?:,\s*(\d+)\])?", text, re.M)]
    G = int(re.search(r"micro_batches:\s*(\d+)", text).group(1))
    K = int(re.search(r"sequences:\s*(\d+)", text).group(1))
    return hosts, layers, G, K


def measure(trace, G, K):
    ev = [e for e in json.load(open(trace))["traceEvents"] if e.get("ph") == "X" and e["cat"] == "compute"]
    prefill_end = max((e["ts"] + e["dur"] for e in ev if e["args"]["rows"] > -(-K // G)), default=0)
    s0 = sorted(e["ts"] for e in ev if e["pid"] == 0 and e["ts"] > prefill_end)
    s0 = s0[: len(s0) - len(s0) // 10]
    P = statistics.mean(s0[i] - s0[i - G] for i in range(G, len(s0))) / 1e3
    S = max(e["pid"] for e in ev) + 1
    means = [statistics.mean(e["dur"] for e in ev if e["pid"] == s and prefill_end < e["ts"] <= s0[-1]) / 1e3
             for s in range(S)]
    return P, means


def main():
    out, table = sys.argv[1], board_table(sys.argv[2])
    plans = dict(a.split("=", 1) for a in sys.argv[3:])
    traces = os.environ.get("TRACES", "/tmp/hetero-traces")
    rows = list(csv.DictReader(open(os.path.join(out, "runs.tsv")), delimiter="\t"))
    print("round plan load tok/s | period ms, G x slowest ms, ratio | per stage: board measured/predicted ms")
    ratios = {}
    for r in rows:
        tag = f"round{r['round']}-{r['plan']}"
        hosts, layers, G, K = stages_of(plans[r["plan"]])
        P, means = measure(os.path.join(traces, tag + ".trace.json"), G, K)
        pred = [(b - a + 1) * table[h][0] + (table[h][1] if i == len(hosts) - 1 else 0)
                for i, (h, (a, b)) in enumerate(zip(hosts, layers))]
        print(f"{r['round']} {r['plan']:17s} {r['load_before']:>5s} {float(r['decode_tok_s']):6.2f} | "
              f"{P:6.1f} {G * max(means):6.1f} {P / (G * max(means)):.2f} | "
              + "  ".join(f"{h} {m:.1f}/{p:.1f}" for h, m, p in zip(hosts, means, pred)))
        if r["plan"] in os.environ.get("FROM", r["plan"]).split(","):
            for h, m, p in list(zip(hosts, means, pred))[:-1]:
                ratios.setdefault(h, []).append(m / p)
    print("in-run slowdown (median of measured / predicted over head-less stages, runs):")
    for h in table:
        if h in ratios:
            v = sorted(ratios[h])
            print(f"  {h}: {statistics.median(v):.2f} (range {v[0]:.2f}-{v[-1]:.2f}, {len(v)} stages)")


if __name__ == "__main__":
    main()
