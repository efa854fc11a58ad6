#!/usr/bin/env python3
"""chat_expect.py - what `shardpipe chat` must print for a script of lines
(messages and /reset, /system TEXT), computed independently: the same
conversation is kept here and each turn is asked of the server without
streaming (urllib, OpenAI's JSON), with the same sampling settings.

  chat_expect.py URL KEY TEMP SEED MAX_TOKENS [--tty] < script > expected

Without --tty: each answer and a newline (chat's output with stdin not a
terminal). With --tty: the transcript on a terminal: "> " and the typed
line, the answer, the note of an answer cut at max_tokens, "(conversation
cleared)" / "(system prompt set)" as chat writes them to stderr, and the
final prompt."""
import json
import sys
import urllib.request

url, key, temp, seed, max_tokens = sys.argv[1:6]
tty = "--tty" in sys.argv[6:]
system, turns, out = None, [], []


def ask(messages):
    body = {"messages": messages, "stream": False, "temperature": float(temp), "seed": int(seed),
            "max_tokens": int(max_tokens)}
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json", "Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, timeout=120) as r:
        choice = json.load(r)["choices"][0]
        return choice["message"]["content"], choice["finish_reason"]


for line in sys.stdin.read().splitlines():
    if tty:
        out.append("> " + line + "\n")
    if line == "/reset":
        turns = []
        if tty:
            out.append("(conversation cleared)\n")
        continue
    if line.startswith("/system"):
        system = line[len("/system"):].strip() or None
        if tty:
            out.append("(system prompt set)\n" if system else "(system prompt removed)\n")
        continue
    msgs = ([{"role": "system", "content": system}] if system else []) + turns + [{"role": "user", "content": line}]
    answer, finish = ask(msgs)
    turns += [{"role": "user", "content": line}, {"role": "assistant", "content": answer}]
    out.append(answer + "\n")
    if tty and finish == "length":
        out.append("[the answer reached the token limit (-n)]\n")
if tty:
    out.append("> ")
sys.stdout.write("".join(out))
