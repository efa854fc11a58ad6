#!/usr/bin/python3
"""paired.py - loopback vs emulated networks from interleaved runs.

    benchmarks/netemu/paired.py pair1-loopback.json pair1-wired.json ... > paired.md

Results are grouped by round (the 'pairN-' prefix of the file name) and by
name; for each round each network's decode tok/s is divided by the same
round's loopback figure, so that slow phases of a shared machine cancel out.
Prints a Markdown table: per network, the median (min-max) of the ratios and
of the raw figures, the time the ranks computed and the time they waited
(what the network can add to), and whether the generated tokens are identical."""
import json, os, re, statistics, sys
from collections import defaultdict

rounds = defaultdict(dict)
for f in sys.argv[1:]:
    m = re.match(r"pair(\d+)-", os.path.basename(f))
    if not m:
        continue
    d = json.load(open(f))
    rounds[m.group(1)][d["name"]] = d
names = sorted({n for r in rounds.values() for n in r})
base = "pair-loopback"
print("| network | decode tok/s median (min-max) | vs loopback, same round: median (min-max) "
      "| prompt tok/s median | compute s, all ranks (median) | receive-wait + idle s, all ranks (median) "
      "| rounds | tokens sha256 |")
print("|---|---|---|---|---|---|---|---|")
for n in [base] + [x for x in names if x != base]:
    raw = [r[n]["summary"]["decode_tok_s"]["median"] for r in rounds.values() if n in r]
    pr = [r[n]["summary"]["prompt_tok_s"]["median"] for r in rounds.values() if n in r]
    ratio = [r[n]["summary"]["decode_tok_s"]["median"] / r[base]["summary"]["decode_tok_s"]["median"]
             for r in rounds.values() if n in r and base in r]
    shas = {r[n]["tokens_sha256"] if isinstance(r[n]["tokens_sha256"], str) else "differ"
            for r in rounds.values() if n in r}
    if not raw:
        continue
    reps = [r[n]["repetitions"][0]["ranks"] for r in rounds.values() if n in r]
    comp = statistics.median(sum(x["compute_s"] for x in rk) for rk in reps)
    wait = statistics.median(sum(x["recv_wait_s"] + x["idle_s"] for x in rk) for rk in reps)
    print(f"| {n[5:]} | {statistics.median(raw):.2f} ({min(raw):.2f}-{max(raw):.2f}) "
          f"| {100 * statistics.median(ratio):.1f}% ({100 * min(ratio):.1f}-{100 * max(ratio):.1f}%) "
          f"| {statistics.median(pr):.2f} | {comp:.1f} | {wait:.2f} | {len(raw)} | {', '.join('`' + s[:12] + '`' for s in shas)} |")
loads = [r[n]["load"]["before"][0] for r in rounds.values() for n in r]
if loads:
    print(f"\nload average (1 min) before the runs: {min(loads):.2f} to {max(loads):.2f} on "
          f"{next(iter(next(iter(rounds.values())).values()))['environment']['cores']} cores")
