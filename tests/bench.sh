#!/usr/bin/env bash
# bench.sh - `shardpipe bench engine` on a small synthetic model: it runs for
# each thread count, writes the JSON record the benchmarks keep, and its
# figures are consistent with each other; and benchmarks/prefetch.sh sweeps
# the prefetch distance, refuses bad settings, and records every run. Speed
# itself is not judged here (the benchmarks measure it); this checks the
# instruments.
# Usage: bash bench.sh SHARDPIPE
set -u
bin=$1
tmp=$(mktemp -d /tmp/sp_bench_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# bad arguments: usage errors (exit 2), a missing model (exit 1)
"$bin" bench engine --threads 0 -m x >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -qF -- "--threads expects an integer" "$tmp/err" || fail "--threads 0: $(cat "$tmp/err")"
"$bin" bench engine -m "$tmp/missing.gguf" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -qF -- "$tmp/missing.gguf" "$tmp/err" || fail "missing model: $(cat "$tmp/err")"

# a Q4_0 model with a Q8_0 output matrix, as the engine benchmark uses
"$bin" synth -o "$tmp/m.gguf" --shape tiny --type q4_0 --output-type q8_0 >/dev/null 2>&1 || fail "synth exited $?"
"$bin" bench engine -m "$tmp/m.gguf" --threads 1,2 --reps 3 --prompt-tokens 24 --gen 6 --bw-mib 32 \
    --json "$tmp/b.json" >"$tmp/out.txt" 2>"$tmp/err" || fail "bench engine exited $?: $(cat "$tmp/err")"
grep -Eq '^\| Q4_0 \| 1 \|' "$tmp/out.txt" || fail "no table row for 1 thread: $(cat "$tmp/out.txt")"
grep -Eq '^\| Q4_0 \| 2 \|' "$tmp/out.txt" || fail "no table row for 2 threads"

python3 - "$tmp/b.json" <<'PY' || fails=$((fails + 1))
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
def check(cond, what):
    if not cond: bad.append(what)
check(d["benchmark"] == "engine", "benchmark name")
check(d["model"]["layer_type"] == "Q4_0" and d["model"]["output_type"] == "Q8_0", "model types")
s = d["settings"]
check((s["prompt_tokens"], s["gen_tokens"], s["reps"]) == (24, 6, 3), "settings")
runs = d["runs"]
check([r["threads"] for r in runs] == [1, 2], "one run per thread count")
for r in runs:
    t = r["threads"]
    for k in ("prompt_tok_s", "decode_tok_s"):
        st = r[k]
        check(0 < st["min"] <= st["median"] <= st["max"], f"{t} threads: {k} min <= median <= max")
    # the sgemm ceiling is measured on the layers' distinct shapes (wq/wo,
    # wk/wv when the model has fewer KV heads, gate/up, down), the prompt's
    # rows as m; not on the output matrix, which the prompt applies once
    m = d["model"]
    shapes = r["sgemm_shapes"]
    want = 3 + (m["n_kv_heads"] < m["n_heads"])
    check(len(shapes) == want and all(x["m"] == 24 for x in shapes), f"{t} threads: sgemm shapes {shapes}")
    check(all(x["n"] != m["n_vocab"] for x in shapes), f"{t} threads: the output matrix is not a prompt shape")
    check(sum(x["count"] for x in shapes) == 7 * d["model"]["n_layers"], f"{t} threads: 7 matrices per layer")
    # figures derived from the medians
    check(abs(r["decode_weight_gbs"] - r["decode_tok_s"]["median"] * d["model"]["weight_bytes_per_decode_token"] / 1e9)
          <= 1e-3 * r["decode_weight_gbs"] + 1e-3, f"{t} threads: decode GB/s = tok/s x bytes")
    check(0 < r["decode_vs_bandwidth"] < 3 and 0 < r["prompt_vs_sgemm"] < 10, f"{t} threads: ratios in range")
    check(r["mem_read_gbs"] > 0 and r["sgemm_gflops"] > 0, f"{t} threads: ceilings measured")
    check(r["peak_rss_bytes"] > 0, f"{t} threads: peak RSS")
    # the int8 ceiling (a register loop of the level's int8 instruction) and
    # the prompt's int8 matmuls against it: this model's matrices are all
    # int8 types, the output's one row included
    m = d["model"]
    want_macs = sum(x["n"] * x["k"] * x["count"] for x in shapes) + m["n_vocab"] * m["dim"] / 24
    check(abs(r["int8_macs_per_prompt_token"] - want_macs) <= 1e-6 * want_macs + 1, f"{t} threads: int8 MACs per token")
    if d["environment"]["simd"] != "scalar":
        check(r["int8_instruction"] != "none" and r["int8_peak_gmacs_per_core"] > 0, f"{t} threads: int8 peak measured")
        check(abs(r["prompt_int8_gmacs"] - r["int8_macs_per_prompt_token"] * r["prompt_tok_s"]["median"] / 1e9)
              <= 1e-3 * r["prompt_int8_gmacs"] + 1e-3, f"{t} threads: prompt int8 GMAC/s = tok/s x MACs")
        check(0 < r["prompt_vs_int8_peak"] <= 1.05 and 0 < r["prompt_vs_int8_peak_cpu"] <= 1.05,
              f"{t} threads: fractions of the int8 peak in (0, 1]")
        for x in r["timed_runs"]:
            check(abs(x["prompt_vs_int8_peak"] - r["int8_macs_per_prompt_token"] * x["prompt_tok_s"] / 1e9
                      / (t * x["int8_peak_gmacs_per_core"])) <= 1e-3 * x["prompt_vs_int8_peak"] + 1e-4,
                  f"{t} threads: run's fraction = MAC/s over threads x its own peak")
    # every timed run, in the order it ran, each decode ratio its own tok/s
    # over the mean of the reads just before and after it; the medians are
    # those of these runs
    tr = r["timed_runs"]
    check(len(tr) == 3, f"{t} threads: {len(tr)} timed runs, expected 3")
    for x in tr:
        bw = 0.5 * (x["mem_read_gbs_before"] + x["mem_read_gbs_after"])
        check(abs(x["decode_vs_bandwidth"] - x["decode_tok_s"] * d["model"]["weight_bytes_per_decode_token"] / 1e9
                  / bw) <= 1e-3 * x["decode_vs_bandwidth"] + 1e-4, f"{t} threads: run ratio = tok/s x bytes / mean bw")
    check(isinstance(r["unsettled_runs_repeated"], int) and 0 <= r["unsettled_runs_repeated"] <= 9,
          f"{t} threads: runs repeated {r['unsettled_runs_repeated']}")
    med = lambda v: sorted(v)[len(v) // 2]
    check(abs(med([x["decode_tok_s"] for x in tr]) - r["decode_tok_s"]["median"]) < 2e-3, f"{t} threads: decode median of the runs")
    check(abs(med([x["decode_vs_bandwidth"] for x in tr]) - r["decode_vs_bandwidth"]) < 2e-4, f"{t} threads: ratio median of the runs")
    # the cores the decode threads had: CPU seconds over wall x threads,
    # positive (it can pass 1 in a decode this short: OpenBLAS's threads
    # still spin after the sgemm ceiling and count as the process's CPU),
    # and the median of the runs' own
    check(all(0 < x["decode_cpu_busy"] < 4 for x in tr), f"{t} threads: decode_cpu_busy in (0, 4)")
    check(abs(med([x["decode_cpu_busy"] for x in tr]) - r["decode_cpu_busy"]) < 2e-4, f"{t} threads: busy median of the runs")
    check(abs(med([0.5 * (x["mem_read_gbs_before"] + x["mem_read_gbs_after"]) for x in tr]) - r["mem_read_gbs"]) < 2e-3,
          f"{t} threads: read bandwidth median of the runs")
for b in bad: print("FAIL: bench JSON:", b)
sys.exit(1 if bad else 0)
PY

# the prefetch sweep on the same model and a second one: every distance of
# every round is a run in the JSON, and generate used the distance asked for
sweep=$(cd "$(dirname "$0")/.." && pwd)/benchmarks/prefetch.sh
build=$(cd "$(dirname "$bin")" && pwd)
"$bin" synth -o "$tmp/m8.gguf" --shape tiny --type q8_0 --tied >/dev/null 2>&1 || fail "synth q8_0 exited $?"
DISTANCES="1x" BUILD=$build MODELS="$tmp/m.gguf" bash "$sweep" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "DISTANCES must be byte counts" "$tmp/err" || fail "bad DISTANCES: $(cat "$tmp/err")"
BUILD=$build MODELS="$tmp/none.gguf" bash "$sweep" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -qF "cannot read model $tmp/none.gguf" "$tmp/err" || fail "missing model: $(cat "$tmp/err")"
mkdir -p "$tmp/res"
if BUILD=$build MODELS="$tmp/m.gguf $tmp/m8.gguf" DISTANCES="0 64 4096" REPS=2 GEN=4 RESULTS=$tmp/res \
     bash "$sweep" >"$tmp/sweep.txt" 2>"$tmp/err"; then
  [ "$(grep -c '^| m8\?\.gguf |' "$tmp/sweep.txt")" -eq 6 ] || fail "sweep table: $(cat "$tmp/sweep.txt")"
  grep -Eq '^m\.gguf: best (0|64|4096) B' "$tmp/sweep.txt" || fail "no best distance: $(cat "$tmp/sweep.txt")"
  python3 - "$tmp"/res/prefetch-*.json <<'PY' || fails=$((fails + 1))
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
r = d["results"]
if d["benchmark"] != "prefetch" or d["settings"] != {"threads": 1, "gen_tokens": 4, "rounds": 2}:
    bad.append("header")
if [(x["model"].rsplit("/", 1)[1], x["distance_bytes"]) for x in r] != \
        [(m, dd) for m in ("m.gguf", "m8.gguf") for dd in (0, 64, 4096)]:
    bad.append("one entry per model and distance, in order")
for x in r:
    v = x["decode_tok_s"]
    if len(v) != 2 or not all(t > 0 for t in v) or not min(v) <= x["median"] <= max(v):
        bad.append(f"runs of {x['distance_bytes']}: {v}, median {x['median']}")
if d["environment"]["default_prefetch_bytes"] < 0:
    bad.append("default distance")
for b in bad: print("FAIL: prefetch JSON:", b)
sys.exit(1 if bad else 0)
PY
else
  fail "prefetch.sh exited $?: $(tail -3 "$tmp/err")"
fi

# bench memory: one line and one JSON run per thread count, figures > 0;
# bad arguments are usage errors
"$bin" bench memory --threads 1,2 --mib 32 --passes 3 --json "$tmp/m.json" >"$tmp/mem.txt" 2>"$tmp/err" ||
    fail "bench memory exited $?: $(cat "$tmp/err")"
[ "$(grep -cE '^threads [12]: read [0-9.]+ GB/s, triad [0-9.]+ GB/s$' "$tmp/mem.txt")" = 2 ] ||
    fail "bench memory lines: $(cat "$tmp/mem.txt")"
python3 -c "
import json, sys
d = json.load(open('$tmp/m.json'))
assert d['benchmark'] == 'memory' and d['buffer_bytes'] == 32 << 20 and d['passes'] == 3, d
assert [r['threads'] for r in d['runs']] == [1, 2], d
assert all(r['read_gbs'] > 0 and r['triad_gbs'] > 0 for r in d['runs']), d
" 2>"$tmp/err" || fail "bench memory JSON: $(cat "$tmp/err")"
"$bin" bench memory --passes 0 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -qF -- "--passes" "$tmp/err" || fail "bench memory --passes 0: $(cat "$tmp/err")"
"$bin" bench memory --json /dev/full --mib 8 --passes 1 >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -qF "/dev/full" "$tmp/err" || fail "bench memory --json /dev/full: $(cat "$tmp/err")"

[ $fails -eq 0 ] && echo "bench: all checks passed" || echo "bench: $fails failure(s)"
exit $((fails > 0))
