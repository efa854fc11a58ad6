#!/usr/bin/env python3
"""price.py - the planner's cost model applied to a given plan, for plans
the planner did not make (benchmarks/run's even and RAM splits).

    price.py PLAN-EXPLAIN.txt CLUSTER.yaml PLAN.yaml ...

From `shardpipe plan --explain`'s board table (ms per layer and head ms of
a decode micro-batch, slowdowns included) and the cluster file's handoff
and links, as docs/profile-format.md states the model: a stage computes
layers x ms/layer (+ the head on the last stage; the embedding, 0.01 ms,
is left out); a hop takes handoff + latency + bytes / bandwidth, with
24 + r x (20 + 4 x dim) bytes of f32 hidden states and 24 + r x 20 for the
token ids going back to the first stage; a group comes round every
P = max(round trip, G x the busiest stage or link), K / P tok/s. Checked
against the planner's own figures for its plan and its even split."""
import re
import sys

import yaml

DIM = 2048  # TinyLlama-1.1B hidden size


def main():
    table = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"^(\S+)\s+\S+\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s*$", open(sys.argv[1]).read(), re.M)}
    cl = yaml.safe_load(open(sys.argv[2]))
    handoff = float(cl.get("handoff", 0))
    default = cl["links"]["default"]
    pairs = {frozenset(p["between"]): p for p in cl["links"].get("pairs", [])}

    def link(a, b):
        l = pairs.get(frozenset((a, b)), default)
        return float(l["latency"]), float(l["bandwidth"])

    for path in sys.argv[3:]:
        plan = yaml.safe_load(open(path))
        K, G = plan["batching"]["sequences"], plan["batching"]["micro_batches"]
        r = -(-K // G)
        st = plan["stages"]
        hosts = [s["host"] for s in st]
        ranges = [s["layers"] if isinstance(s["layers"], list) else [s["layers"], s["layers"]] for s in st]
        comp = [(b - a + 1) * table[h][0] + (table[h][1] if i == len(st) - 1 else 0)
                for i, (h, (a, b)) in enumerate(zip(hosts, ranges))]
        ring, busy = sum(comp), list(comp)
        for i, h in enumerate(hosts):
            nxt = hosts[(i + 1) % len(hosts)]
            nbytes = 24 + r * (20 + (4 * DIM if i < len(hosts) - 1 else 0))
            lat, bw = link(h, nxt)
            ring += 1e3 * (handoff + lat + nbytes / bw)
            busy.append(1e3 * nbytes / bw)
        P = max(ring, G * max(busy))
        print(f"{path}: " + ", ".join(f"{h} {b - a + 1}{' + head' if i == len(st) - 1 else ''} {c:.2f} ms"
                                      for i, (h, (a, b), c) in enumerate(zip(hosts, ranges, comp)))
              + f" | round trip {ring:.2f} ms, {G} x bottleneck {G * max(busy):.2f} ms -> period {P:.2f} ms,"
              f" {1e3 * K / P:.2f} tok/s")


if __name__ == "__main__":
    main()
