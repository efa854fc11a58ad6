#!/usr/bin/env python3
"""recover_client.py - streaming clients and one fault, for the tests and
the benchmark of `shardpipe serve --cluster` (issue #19).

N clients stream /v1/completions at once (each its own prompt and seed);
at the chosen moment one rank of the supervisor's MPI job gets SIGKILL or
SIGSTOP (or --fault cmd runs a command, e.g. one that takes a link down):
`prefill` as soon as every request is accepted, `decode` once every
client has received text and --after text chunks more have come; --delay
S waits S seconds more (a random moment, chosen by the caller). Prints
one JSON object: per client the HTTP code, the sha256 of the streamed
text, the completion tokens (usage), the finish reason, whether the
stream ended with one finish and [DONE], any error event; the fault's
wall time (time.time()), the text chunks received by then and in all, the
clients that had no text yet at the fault (still in their prefill), the
longest pause between two text chunks of any client, and the phases of
the run: from every request accepted to the first text chunk (prefill_s;
first_s from the first request accepted) and from there to the last
(decode_s)."""
import argparse, hashlib, json, os, signal, subprocess, sys, threading, time, urllib.request


def rank_pid(workdir, rank):
    """The process of that rank (the child of its per-rank supervisor)."""
    sock = os.path.join(workdir, "control.sock")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            if b"--worker" not in cmd or sock.encode() not in cmd:
                continue
            ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            if open(f"/proc/{ppid}/comm").read().strip() != "shardpipe":
                continue
            env = open(f"/proc/{d}/environ", "rb").read().split(b"\0")
            if f"PMI_RANK={rank}".encode() in env:
                return int(d)
        except (OSError, ValueError, IndexError):
            continue
    return None


def client(i, a, out, accepted, chunks):
    prompt = a.prompt % i
    body = {"prompt": prompt, "max_tokens": a.max_tokens, "temperature": 0.9, "seed": 100 + i,
            "stream": True, "stream_options": {"include_usage": True}}
    req = urllib.request.Request(a.url + "/v1/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    r = {"code": 0, "text": "", "finish": None, "finishes": 0, "done": False, "tokens": None, "error": None,
         "times": []}
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            r["code"] = resp.status
            r["t_accepted"] = time.time()
            accepted.release()
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\n")
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    r["done"] = True
                    continue
                o = json.loads(line[6:])
                if "error" in o:
                    r["error"] = o["error"]["message"]
                    continue
                if o.get("usage"):
                    r["tokens"] = o["usage"]["completion_tokens"]
                for c in o.get("choices", []):
                    if c.get("text"):
                        r["text"] += c["text"]
                        r["times"].append(time.time())
                        chunks.append(i)
                    if c.get("finish_reason") is not None:
                        r["finishes"] += 1
                        r["finish"] = c["finish_reason"]
    except urllib.error.HTTPError as e:
        r["code"] = e.code
        r["error"] = json.loads(e.read().decode() or "{}").get("error", {}).get("message")
        accepted.release()
    except Exception as e:  # noqa: BLE001 - reported, the test decides
        r["error"] = repr(e)
        accepted.release()
    out[i] = r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=120)
    p.add_argument("--prompt", default="Once upon a time %d, a little girl named Lily went to the park with her "
                   "mother. They saw a big dog and a small cat playing in the sun, and the dog ran to the tree.")
    p.add_argument("--fault", choices=["none", "kill", "stop", "cmd"], default="none")
    p.add_argument("--cmd", help="--fault cmd: a shell command that makes the fault (a link taken down)")
    p.add_argument("--rank", type=int, default=1)
    p.add_argument("--when", choices=["prefill", "decode"], default="decode")
    p.add_argument("--after", type=int, default=8,
                   help="decode: text chunks received after every client has text, before the fault")
    p.add_argument("--delay", type=float, default=0.0, help="seconds from that moment to the fault")
    a = p.parse_args()
    out = [None] * a.clients
    accepted = threading.Semaphore(0)
    chunks = []
    pid = rank_pid(a.workdir, a.rank) if a.fault in ("kill", "stop") else None
    if a.fault in ("kill", "stop") and pid is None:
        sys.exit(f"no process of rank {a.rank} under {a.workdir}")
    ts = [threading.Thread(target=client, args=(i, a, out, accepted, chunks)) for i in range(a.clients)]
    for t in ts:
        t.start()
    t_fault = chunks_at_fault = waiting = None
    if a.fault != "none":
        for _ in range(a.clients):
            accepted.acquire(timeout=60)
        if a.when == "decode":
            t_end = time.time() + 60
            # every client streaming (or done), then --after chunks more
            while (len(set(chunks) | {i for i, r in enumerate(out) if r is not None}) < a.clients
                   and time.time() < t_end):
                time.sleep(0.001)
            start = len(chunks)
            while len(chunks) < start + a.after and time.time() < t_end:
                time.sleep(0.001)
        if a.delay > 0:
            time.sleep(a.delay)
        t_fault = time.time()
        chunks_at_fault = len(chunks)
        waiting = a.clients - len(set(chunks[:chunks_at_fault]))
        if a.fault == "cmd":
            subprocess.run(a.cmd, shell=True, check=False)
        else:
            os.kill(pid, signal.SIGKILL if a.fault == "kill" else signal.SIGSTOP)
    for t in ts:
        t.join()
    res = {"fault_wall": t_fault, "chunks_at_fault": chunks_at_fault,
           "in_prefill_at_fault": waiting, "clients": []}
    gaps, firsts, lasts, accepts = [], [], [], []
    for r in out:
        times = r.pop("times")
        accepts.append(r.pop("t_accepted", None))
        if times:
            firsts.append(times[0])
            lasts.append(times[-1])
        text = r.pop("text")
        r["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        r["complete"] = r["code"] == 200 and r["done"] and r["finishes"] == 1 and not r["error"]
        gaps += [b - a for a, b in zip(times, times[1:])]
        res["clients"].append(r)
    res["max_gap_s"] = max(gaps) if gaps else None
    res["chunks"] = len(chunks)
    if firsts and None not in accepts:
        res["prefill_s"] = min(firsts) - max(accepts)
        res["first_s"] = min(firsts) - min(accepts)
        res["decode_s"] = max(lasts) - min(firsts)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
