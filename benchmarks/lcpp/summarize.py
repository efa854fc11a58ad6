#!/usr/bin/python3
"""summarize.py - the JSON result and Markdown table of benchmarks/vs_llamacpp.sh.

Reads the per-run files the script left in TMP (sp-R-M-T-P.json from
`shardpipe bench engine`, lc-R-M-T.json from lcpp_bench, gsp-M.txt and
glc-M.json from the greedy check), pairs each shardpipe run with the
llama.cpp run that followed it (same round, model, threads) and reports the
median (min-max) of the paired ratios shardpipe / llama.cpp, per model and
thread count, for decode and each prompt length.

usage: summarize.py TMP OUT.json STAMP COMMAND LOAD_START LOAD_END LCPP_VERSION
                    ROUNDS "THREADS" "PROMPTS" MODEL...
"""
import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def spread(values):
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "n": len(values)}


def main():
    (tmp, out, stamp, command, load_start, load_end, lcpp_version, rounds, threads,
     prompts) = sys.argv[1:11]
    models = sys.argv[11:]
    rounds = int(rounds)
    threads = [int(t) for t in threads.split()]
    prompts = [int(p) for p in prompts.split()]
    first = prompts[0]

    pairs, env, lcpp_info = [], None, None
    for r in range(1, rounds + 1):
        for mi, model in enumerate(models):
            for th in threads:
                tag = f"{r}-{mi}-{th}"
                sp = {p: load(os.path.join(tmp, f"sp-{tag}-{p}.json")) for p in prompts}
                lc = load(os.path.join(tmp, f"lc-{tag}.json"))
                env = env or sp[first]["environment"]
                lcpp_info = lcpp_info or {k: lc.get(k) for k in
                                          ("system_info", "devices", "cpu_backend", "flash_attn_type", "poll")}
                run0 = {p: sp[p]["runs"][0] for p in prompts}
                lc_prompt = {e["tokens"]: e["tok_s_median"] for e in lc["prompt"]}
                lc_cpu = {e["tokens"]: e.get("tok_per_cpu_s_median", 0.0) for e in lc["prompt"]}
                load_file = os.path.join(tmp, f"load-{tag}.txt")
                pair = {
                    "round": r, "model": model, "threads": th,
                    "load_average_1min": float(open(load_file).read()) if os.path.exists(load_file) else None,
                    "layer_type": sp[first]["model"]["layer_type"],
                    "shardpipe": {
                        "decode_tok_s": run0[first]["decode_tok_s"]["median"],
                        "prompt_tok_s": {str(p): run0[p]["prompt_tok_s"]["median"] for p in prompts},
                        "mem_read_gbs": run0[first]["mem_read_gbs"],
                        "decode_vs_bandwidth": run0[first]["decode_vs_bandwidth"],
                    },
                    "llamacpp": {
                        "decode_tok_s": lc["decode"]["tok_s_median"],
                        "prompt_tok_s": {str(p): lc_prompt[p] for p in prompts},
                    },
                }
                # the int8 peak of one core, measured by bench engine before
                # each prompt's run: each program's prompt int8 MAC/s over
                # threads x that peak (wall time, the same for both)
                peak = {p: run0[p].get("int8_peak_gmacs_per_core", 0.0) for p in prompts}
                if all(peak.values()):
                    pair["int8_peak_gmacs_per_core"] = {str(p): peak[p] for p in prompts}
                    pair["prompt_vs_int8_peak"] = {}
                    for p in prompts:
                        macs = run0[p]["int8_macs_per_prompt_token"]
                        pair["prompt_vs_int8_peak"][str(p)] = {
                            "shardpipe": round(run0[p]["prompt_vs_int8_peak"], 4),
                            "llamacpp": round(lc_prompt[p] * macs / 1e9 / (th * peak[p]), 4)}
                        # per CPU second each process spent on its prompt
                        # (a shared host's load stretches wall time, not this)
                        if lc_cpu[p] > 0 and run0[p].get("prompt_vs_int8_peak_cpu", 0) > 0:
                            pair["prompt_vs_int8_peak"][str(p)].update({
                                "shardpipe_cpu": round(run0[p]["prompt_vs_int8_peak_cpu"], 4),
                                "llamacpp_cpu": round(lc_cpu[p] * macs / 1e9 / peak[p], 4)})
                s, l = pair["shardpipe"], pair["llamacpp"]
                pair["ratio"] = {"decode": round(s["decode_tok_s"] / l["decode_tok_s"], 4)}
                for p in prompts:
                    pair["ratio"][f"prompt_{p}"] = round(s["prompt_tok_s"][str(p)] / l["prompt_tok_s"][str(p)], 4)
                pairs.append(pair)

    summary = []
    for model in models:
        for th in threads:
            ps = [p for p in pairs if p["model"] == model and p["threads"] == th]
            row = {"model": model, "layer_type": ps[0]["layer_type"], "threads": th,
                   "decode": {"shardpipe_tok_s": spread([p["shardpipe"]["decode_tok_s"] for p in ps]),
                              "llamacpp_tok_s": spread([p["llamacpp"]["decode_tok_s"] for p in ps]),
                              "ratio": spread([p["ratio"]["decode"] for p in ps])},
                   "shardpipe_decode_vs_bandwidth": spread([p["shardpipe"]["decode_vs_bandwidth"] for p in ps])}
            loads = [p["load_average_1min"] for p in ps if p["load_average_1min"] is not None]
            if loads:
                row["load_average_1min"] = spread(loads)
            for pl in prompts:
                row[f"prompt_{pl}"] = {
                    "shardpipe_tok_s": spread([p["shardpipe"]["prompt_tok_s"][str(pl)] for p in ps]),
                    "llamacpp_tok_s": spread([p["llamacpp"]["prompt_tok_s"][str(pl)] for p in ps]),
                    "ratio": spread([p["ratio"][f"prompt_{pl}"] for p in ps])}
                if all("prompt_vs_int8_peak" in p for p in ps):
                    row[f"prompt_{pl}"]["int8_peak_gmacs_per_core"] = spread(
                        [p["int8_peak_gmacs_per_core"][str(pl)] for p in ps])
                    for who in ("shardpipe", "llamacpp"):
                        row[f"prompt_{pl}"][f"{who}_vs_int8_peak"] = spread(
                            [p["prompt_vs_int8_peak"][str(pl)][who] for p in ps])
                    if all("shardpipe_cpu" in p["prompt_vs_int8_peak"][str(pl)] for p in ps):
                        f = [p["prompt_vs_int8_peak"][str(pl)] for p in ps]
                        for who in ("shardpipe", "llamacpp"):
                            row[f"prompt_{pl}"][f"{who}_vs_int8_peak_cpu"] = spread([x[f"{who}_cpu"] for x in f])
                        row[f"prompt_{pl}"]["ratio_per_cpu_second"] = spread(
                            [x["shardpipe_cpu"] / x["llamacpp_cpu"] for x in f])
            summary.append(row)

    greedy = []
    for mi, model in enumerate(models):
        gsp, glc = os.path.join(tmp, f"gsp-{mi}.txt"), os.path.join(tmp, f"glc-{mi}.json")
        if not os.path.exists(gsp):
            continue
        with open(gsp) as f:
            try:
                a = [int(x) for x in f.read().split()]
            except ValueError:
                a = []
        g = load(glc).get("greedy", {})
        b = g.get("tokens", [])
        same = 0
        while same < min(len(a), len(b)) and a[same] == b[same]:
            same += 1
        greedy.append({"model": model, "prompt_ids": g.get("prompt_ids"), "shardpipe": a, "llamacpp": b,
                       "agreeing_prefix": same, "agree": bool(a) and a == b})

    result = {
        "benchmark": "vs-llamacpp", "date": stamp, "command": command,
        "load_average_start": load_start, "load_average_end": load_end,
        "settings": {"rounds": rounds, "threads": threads, "prompt_tokens": prompts,
                     "gen_tokens": pairs[0] and load(os.path.join(tmp, f"lc-1-0-{threads[0]}.json"))["decode"]["tokens"],
                     "order": "per round, model and thread count: shardpipe (A) then llama.cpp (B)"},
        "environment": env,
        "llamacpp": dict(package="@node-llama-cpp/linux-x64 + node-llama-cpp (headers)", version=lcpp_version,
                         **lcpp_info),
        "summary": summary, "greedy": greedy, "pairs": pairs,
    }
    tmp_out = out + ".tmp"
    with open(tmp_out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(tmp_out, out)

    def cell(s, digits=1):
        return f"{s['median']:.{digits}f}"

    def ratio(s):
        return f"{s['median'] * 100:.0f}% ({s['min'] * 100:.0f}-{s['max'] * 100:.0f}%)"

    poll = lcpp_info.get("poll")
    poll = "its own thread pool" if poll is None or poll < 0 else f"our thread pool, poll {poll}"
    print(f"llama.cpp {lcpp_version} ({lcpp_info['cpu_backend']}, flash_attn {lcpp_info['flash_attn_type']}, {poll}); "
          f"load average {load_start} at start, {load_end} at end; {rounds} round(s)")
    head = "| model | threads | load | decode tok/s sp / lcpp | decode ratio |"
    rule = "|---|--:|--:|--:|--:|"
    for pl in prompts:
        head += (f" prompt {pl} tok/s sp / lcpp | prompt {pl} ratio | prompt {pl} % of int8 peak sp / lcpp |"
                 f" prompt {pl} per CPU s: ratio, % of peak sp / lcpp |")
        rule += "--:|--:|--:|--:|"
    print(head)
    print(rule)
    for row in summary:
        la = row.get("load_average_1min")
        la = f"{la['median']:.1f} ({la['min']:.1f}-{la['max']:.1f})" if la else "-"
        line = (f"| {os.path.basename(row['model'])} | {row['threads']} | {la} | "
                f"{cell(row['decode']['shardpipe_tok_s'], 2)} / {cell(row['decode']['llamacpp_tok_s'], 2)} | "
                f"{ratio(row['decode']['ratio'])} |")
        for pl in prompts:
            pr = row[f"prompt_{pl}"]
            line += f" {cell(pr['shardpipe_tok_s'])} / {cell(pr['llamacpp_tok_s'])} | {ratio(pr['ratio'])} |"
            if "shardpipe_vs_int8_peak" in pr:
                line += (f" {pr['shardpipe_vs_int8_peak']['median'] * 100:.0f}% / "
                         f"{pr['llamacpp_vs_int8_peak']['median'] * 100:.0f}% "
                         f"(peak {pr['int8_peak_gmacs_per_core']['median']:.0f} GMAC/s per core) |")
            else:
                line += " - |"
            if "ratio_per_cpu_second" in pr:
                line += (f" {ratio(pr['ratio_per_cpu_second'])}, {pr['shardpipe_vs_int8_peak_cpu']['median'] * 100:.0f}% / "
                         f"{pr['llamacpp_vs_int8_peak_cpu']['median'] * 100:.0f}% |")
            else:
                line += " - |"
        print(line)
    for g in greedy:
        verdict = "agree" if g["agree"] else f"differ after {g['agreeing_prefix']}"
        print(f"greedy {os.path.basename(g['model'])}: shardpipe {g['shardpipe']} llama.cpp {g['llamacpp']}: {verdict}")


if __name__ == "__main__":
    main()
