#!/usr/bin/env python3
"""serve_client.py - load for benchmarks/serve.sh (standard library only).

  serve_client.py concurrent URL N TOKENS   N streaming clients at once, each its own
      prompt; prints JSON: aggregate decode tok/s (every token after a client's first
      one, over the time from the first first-token to the last token, as `shardpipe
      run` counts it), time to first token p50/p99, tokens.
  serve_client.py chat URL TURNS TOKENS     a chat of TURNS turns (each re-sends the
      whole conversation); prints JSON per turn: prompt tokens, cached tokens, TTFT.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def stream(url, path, body):
    """POSTs body with stream on; returns (t_start, t_first, t_last, usage, text)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = dict(body, stream=True, stream_options={"include_usage": True})
    t0 = time.monotonic()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit(f"HTTP {r.status}: {r.read()[:300]!r}")
    t_first = t_last = None
    usage, text = None, []
    for raw in r:
        line = raw.decode("utf-8").rstrip("\n")
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        o = json.loads(line[6:])
        if o.get("usage"):
            usage = o["usage"]
        for c in o.get("choices", []):
            piece = c["delta"].get("content") if "delta" in c else c.get("text")
            if piece:
                now = time.monotonic()
                t_first = t_first or now
                t_last = now
                text.append(piece)
    conn.close()
    return t0, t_first, t_last, usage, "".join(text)


def pct(v, p):
    v = sorted(v)
    k = (len(v) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def concurrent(url, n, tokens):
    res = [None] * n

    def one(i):
        body = {"prompt": f"Once upon a time {i}", "max_tokens": tokens, "temperature": 0.8, "seed": i}
        res[i] = stream(url, "/v1/completions", body)

    th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    first_any = min(r[1] for r in res)
    last = max(r[2] for r in res)
    dec = sum(r[3]["completion_tokens"] - 1 for r in res)
    ttft = [r[1] - r[0] for r in res]
    print(json.dumps({"clients": n, "decode_tok_s": dec / (last - first_any), "ttft_p50_s": pct(ttft, 0.5),
                      "ttft_p99_s": pct(ttft, 0.99), "tokens": sum(r[3]["completion_tokens"] for r in res)}))


def chat(url, turns, tokens):
    msgs = [{"role": "system", "content": "A story about a girl named Lily and her dog."}]
    out = []
    for t in range(turns):
        msgs.append({"role": "user", "content": f"What happened on day {t + 1}? Tell me more about Lily."})
        t0, t_first, _, usage, text = stream(url, "/v1/chat/completions",
                                             {"messages": msgs, "max_tokens": tokens, "temperature": 0})
        msgs.append({"role": "assistant", "content": text})
        out.append({"turn": t + 1, "prompt_tokens": usage["prompt_tokens"],
                    "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"], "ttft_s": t_first - t0})
    print(json.dumps(out))


if __name__ == "__main__":
    mode, url, a, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    concurrent(url, a, b) if mode == "concurrent" else chat(url, a, b)
