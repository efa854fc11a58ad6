#!/usr/bin/env python3
"""chat_jinja_diff.py - differential test of shardpipe's chat renderers
against jinja2 (set up as transformers does, see chat_families.py): random
conversations (Unicode whitespace, the templates' own markers, quotes and
control characters in every field, tool calls with string and JSON
arguments, random options) rendered by both for the real template of every
family; the bytes must be equal, and where the template raises, shardpipe
must fail with a message.

Usage: chat_jinja_diff.py SHARDPIPE SHARED_DIR [CASES_PER_FAMILY] [SEED]"""
import json, os, random, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chat_families as cf  # noqa: E402
from jinja2.exceptions import TemplateError, UndefinedError  # noqa: E402

PIECES = ["a", "b", "Hello", " ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u3000", "\u2028", "\x1c", "\x85",
          "\u200b", "\ufeff", "<think>", "</think>", "<tool_response>", "</tool_response>", "\"", "\\", "'",
          "\x01", "\U0001F600", "\u00e9", "e\u0301", "{", "}", "[INST]", "<|im_end|>", "<|eot_id|>", "<<SYS>>"]


def text(r, n=6):
    return "".join(r.choice(PIECES) for _ in range(r.randint(0, n)))


def value(r, depth=0):
    k = r.randint(0, 8 if depth < 3 else 5)
    if k == 0: return r.randint(-10**12, 10**12)
    if k == 1: return r.choice([0.5, 1e-07, 1e16, 1e22, 123.456, -0.0, 100.0, 3.0e-5]) if r.random() < 0.5 else r.random()
    if k == 2: return text(r, 4)
    if k == 3: return r.choice([True, False, None])
    if k == 4: return r.randint(0, 5)
    if k == 5: return ""
    if k in (6, 7): return {text(r, 2) + str(i): value(r, depth + 1) for i in range(r.randint(0, 3))}
    return [value(r, depth + 1) for _ in range(r.randint(0, 3))]


def conversation(r):
    roles = ["user", "assistant", "system", "tool"] * 3 + ["ipython", "model"]
    msgs = []
    for i in range(r.randint(1, 6)):
        if r.random() < 0.5:  # mostly alternating, as real chats are
            role = "user" if i % 2 == 0 else "assistant"
        else:
            role = r.choice(roles)
        m = {"role": role, "content": text(r)}
        if role == "assistant" and r.random() < 0.25:
            m["reasoning_content"] = text(r, 3)
        if role == "assistant" and r.random() < 0.25:
            m["tool_calls"] = []
            for _ in range(r.randint(1, 3)):
                args = json.dumps(value(r), ensure_ascii=False) if r.random() < 0.5 else \
                    {text(r, 2) + str(j): value(r) for j in range(r.randint(0, 3))}
                call = {"name": "f" + text(r, 2), "arguments": args}
                m["tool_calls"].append({"type": "function", "function": call} if r.random() < 0.7 else call)
        msgs.append(m)
    return msgs


def main():
    binary, shared = sys.argv[1], sys.argv[2]
    per = int(sys.argv[3]) if len(sys.argv) > 3 else 150
    r = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 20261207)
    L32 = cf.gguf_str(shared + '/models/llama3-tiny-Q4_K_M.gguf', 'tokenizer.chat_template')
    Q3 = cf.gguf_str(shared + '/models/qwen3-tiny-Q4_K_M.gguf', 'tokenizer.chat_template')
    families = [("llama3", L32, "<|begin_of_text|>", "<|eot_id|>"), ("qwen3", Q3, "", "<|im_end|>"),
                ("llama3.0", cf.LLAMA30, "<|begin_of_text|>", "<|eot_id|>"), ("qwen2.5", cf.QWEN25, "", "<|im_end|>"),
                ("chatml", cf.CHATML, "", "<|im_end|>"), ("chatml+qwen2", cf.QWEN2, "", "<|im_end|>"),
                ("llama2", cf.LLAMA2, "<s>", "</s>"), ("mistral", cf.MISTRAL, "<s>", "</s>"),
                ("phi3", cf.PHI3, "<s>", "<|endoftext|>"), ("phi3.5", cf.PHI35, "<s>", "<|endoftext|>"),
                ("gemma", cf.GEMMA, "<bos>", "<eos>")]
    tmp = tempfile.mkdtemp(prefix="sp_chatdiff_")
    bad = same = raised = skipped = 0
    for name, tmpl, bos, eos in families:
        tpath = os.path.join(tmp, "t.jinja")
        with open(tpath, "w") as f:
            f.write(tmpl)
        for k in range(per):
            msgs = conversation(r)
            gen = r.random() < 0.6
            kwargs = {}
            if name == "llama3" and r.random() < 0.7: kwargs["date_string"] = text(r, 3) or "x"
            if name == "qwen3" and r.random() < 0.6: kwargs["enable_thinking"] = r.random() < 0.5
            try:
                want = cf.render(tmpl, msgs, gen, bos, eos, kwargs).encode()
            except UndefinedError:  # e.g. Llama 3 reads tool_calls[0].function, shardpipe also takes
                skipped += 1        # a bare {"name", "arguments"}: no reference for this input
                continue
            except TemplateError:  # raise_exception(): shardpipe must refuse too
                want = None
            except Exception:  # a TypeError of the template on this input: no reference
                skipped += 1
                continue
            cpath = os.path.join(tmp, "c.json")
            with open(cpath, "w") as f:
                json.dump({"messages": msgs, "add_generation_prompt": gen, "kwargs": kwargs}, f, ensure_ascii=False)
            p = subprocess.run([binary, "template", "--template-file", tpath, "--json", cpath], capture_output=True)
            if want is None:
                if p.returncode == 1 and p.stderr: raised += 1
                else:
                    bad += 1
                    print(f"FAIL {name} #{k}: the template raises, shardpipe exited {p.returncode}: {json.dumps(msgs)[:300]}")
            elif p.returncode != 0 or p.stdout != want:
                bad += 1
                print(f"FAIL {name} #{k}: exit {p.returncode} {p.stderr.decode()[:200]}\n  messages {json.dumps(msgs, ensure_ascii=False)[:400]}"
                      f"\n  kwargs {kwargs} gen {gen}\n  want {want[:300]!r}\n  got  {p.stdout[:300]!r}")
            else:
                same += 1
            if bad > 10: break
    print(f"chat_jinja_diff: {same} identical, {raised} raised in both, {bad} different, {skipped} skipped "
          f"(the template itself fails on them), {len(families)} templates")
    sys.exit(1 if bad or same < per * len(families) // 3 else 0)


if __name__ == '__main__':
    main()
