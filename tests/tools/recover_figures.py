#!/usr/bin/env python3
"""recover_figures.py - the time from a failure to the next token delivered,
for the test and the benchmark of `shardpipe serve --cluster` (issue #19).

  recover_figures.py case CASE.json LINE LABEL SAME
      One JSON object on stdout for the fault LABEL ("link 2 decode ..."):
      SAME (yes/no: the answers equal the failure-free run's) and, from the
      supervisor's `recovered:` LINE and the fault's wall time in CASE.json
      (recover_client.py's output): detection (the fault to the supervisor
      noticing it), re-plan, relaunch, loading, re-prefill, and total, the
      failure to the next token. A markdown table row on stderr.
  recover_figures.py summary FILE
      The median and max of the totals over FILE's cases (JSON lines, or an
      object with "cases"), over all and per kind of fault (LABEL's first
      word); exit 1 when a case has no total (no `recovered:` line)."""
import json, re, statistics, sys

PHASES = ("detect_s", "replan_s", "relaunch_s", "load_s", "reprefill_s", "total_s")


def case(path, line, label, same):
    r = json.load(open(path))
    m = re.search(r"next token ([\d.]+) s after the failure was detected \(at ([\d.]+)\): re-plan ([\d.]+) s, "
                  r"relaunch ([\d.]+) s, loading ([\d.]+) s, re-prefill ([\d.]+) s", line)
    d = {"fault": label, "same_answers": same == "yes"}
    if m and r.get("fault_wall"):
        after, at, plan, launch, load, prefill = map(float, m.groups())
        d.update(detect_s=round(at - r["fault_wall"], 3), replan_s=plan, relaunch_s=launch, load_s=load,
                 reprefill_s=prefill, total_s=round(at - r["fault_wall"] + after, 3))
    print(json.dumps(d))
    print("| %s | %s | %s |" % (label, " | ".join(str(d.get(k, "-")) for k in PHASES), same), file=sys.stderr)


def summary(path):
    text = open(path).read()
    try:
        cases = json.loads(text)["cases"]
    except (ValueError, KeyError, TypeError):
        cases = [json.loads(l) for l in text.splitlines() if l.strip()]
    kinds = {}
    for c in cases:
        kinds.setdefault(c["fault"].split()[0], []).append(c.get("total_s"))
    for name, t in [("all", [c.get("total_s") for c in cases])] + sorted(kinds.items()):
        got = [x for x in t if x is not None]
        if got:
            print(f"failure to next token, {name} ({len(got)} case{'s' if len(got) > 1 else ''}): median "
                  f"{statistics.median(got):.2f} s, max {max(got):.2f} s")
    return 0 if cases and all(c.get("total_s") is not None for c in cases) else 1


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "case":
        case(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        sys.exit(summary(sys.argv[2]))
    else:
        sys.exit(__doc__)
