#!/usr/bin/env python3
"""handoff.py - the cluster file's `handoff` from runs of a plan made without it.

    handoff.py PLAN.yaml RUN.json [RUN.json ...]

RUN.json: a Chrome trace of `shardpipe run --trace`, or a result of
benchmarks/run (its timeline).

For each run of PLAN, over the steady decode window (after the last prefill micro-batch, the last 10% of stage 0's
micro-batches dropped as sequences finish):

  P    the measured period of a group: mean time between stage 0 starting a
       micro-batch and starting the G-th one after it;
  C    the sum over stages of each stage's mean compute per micro-batch;
  H    the sum of the plan's hops (the link model: latency + bytes /
       bandwidth, as printed in the plan's comments);

and, when the ring binds (P > 1.1 x G x the largest stage mean; else the
bottleneck explains the period and the figure is only an upper bound),
handoff = (P - C - H) / S: what each of the S
hand-overs adds to the round trip beyond compute and link, stalls from
jitter included. Prints each trace's figures and the median."""
import json
import re
import statistics
import sys


def events(path):
    """compute slices as (stage, start ms, duration ms, rows or None), from
    a Chrome trace of `shardpipe run` or the timeline of a benchmarks/run
    result (which has no rows and is cut at 4000 slices: the last stage's
    may end early, which leaves its mean over the first part of decode)"""
    d = json.load(open(path))
    if "timeline" in d:
        return [(r, t0 * 1e3, (t1 - t0) * 1e3, None) for r, kind, t0, t1 in d["timeline"] if kind == "compute"]
    return [(e["pid"], e["ts"] / 1e3, e["dur"] / 1e3, e["args"]["rows"]) for e in d["traceEvents"]
            if e.get("ph") == "X" and e["cat"] == "compute"]


def main():
    plan = open(sys.argv[1]).read()
    G = int(re.search(r"micro_batches:\s*(\d+)", plan).group(1))
    K = int(re.search(r"sequences:\s*(\d+)", plan).group(1))
    hops = [float(x) for x in re.findall(r"(?:hidden states to|token ids back to) \S+ ([0-9.]+) ms", plan)]
    S = len(re.findall(r"^\s*- rank:", plan, re.M))
    out = []
    for path in sys.argv[2:]:
        ev = events(path)
        # prefill micro-batches: more rows than a decode group's ceil(K / G),
        # or (benchmarks/run's timeline has no rows) 5 x stage 0's median
        med0 = statistics.median(e[2] for e in ev if e[0] == 0)
        prefill_end = max((e[1] + e[2] for e in ev if (e[3] or 0) > -(-K // G) or
                           (e[3] is None and e[0] == 0 and e[2] > 5 * med0)), default=0)
        starts0 = sorted(e[1] for e in ev if e[0] == 0 and e[1] > prefill_end)
        starts0 = starts0[: len(starts0) - len(starts0) // 10]
        t_end = starts0[-1]
        P = statistics.mean(starts0[i] - starts0[i - G] for i in range(G, len(starts0)))
        means = []
        for s in range(S):
            c = [e[2] for e in ev if e[0] == s and prefill_end < e[1] <= t_end]
            means.append(statistics.mean(c))
        C, H = sum(means), sum(hops)
        # the ring binds when the bottleneck does not explain the period
        # (10% for noise); otherwise the figure is only an upper bound
        binds = P > 1.1 * G * max(means)
        h = (P - C - H) / S
        print(f"{path}: period {P:.1f} ms ({1000 * K / P:.1f} tok/s), stages "
              + " + ".join(f"{m:.1f}" for m in means) + f" = {C:.1f} ms, link hops {H:.2f} ms, "
              f"{G} x slowest stage {G * max(means):.1f} ms, period / that {P / (G * max(means)):.2f} -> "
              + (f"handoff {h:.1f} ms" if binds else f"the bottleneck binds: handoff at most {h:.1f} ms"))
        if binds:
            out.append(h)
    if out:
        print(f"median handoff over {len(out)} run(s): {statistics.median(out):.1f} ms")


if __name__ == "__main__":
    main()
