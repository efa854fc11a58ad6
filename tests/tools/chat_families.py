#!/usr/bin/env python3
"""chat_families.py - writes tests/data/chat-families.jsonl: reference
renderings of the chat template families for test_chat.c, beyond the shared
chat-llama3/chat-qwen3 files.

Renderer: Python jinja2 (3.1) set up as transformers' apply_chat_template
does (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
`tojson` = json.dumps(ensure_ascii=False), raise_exception, strftime_now).
Templates: the chat_template of each model's tokenizer_config.json on
Hugging Face (named beside each), as text; the Llama 3.2 and Qwen3 ones are
read from the shared GGUF files. Only the expected outputs are committed; run
again (python3 tests/tools/chat_families.py ../shared) after editing cases.

Each line: {"name", "family" (expected recognition, or null: must not be
recognized), "template", "bos_token", "eos_token", "messages",
"add_generation_prompt", "kwargs", and "rendered" or "error" (the template
raises)}."""
import json, struct, sys
from datetime import datetime
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.exceptions import TemplateError


def gguf_str(path, key):
    f = open(path, 'rb')
    assert f.read(4) == b'GGUF'
    f.read(4)
    _, nkv = struct.unpack('<QQ', f.read(16))
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def s():
        n, = struct.unpack('<Q', f.read(8)); return f.read(n)
    for _ in range(nkv):
        k = s().decode(); t, = struct.unpack('<I', f.read(4))
        if t == 8:
            v = s()
            if k == key: return v.decode()
        elif t == 9:
            et, = struct.unpack('<I', f.read(4)); n, = struct.unpack('<Q', f.read(8))
            if et == 8:
                for _ in range(n): s()
            else:
                f.read(sizes[et] * n)
        else:
            f.read(sizes[t])
    raise KeyError(key)


def render(template, messages, add_generation_prompt, bos, eos, kwargs):
    def raise_exception(msg): raise TemplateError(msg)
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters['tojson'] = tojson
    env.globals['raise_exception'] = raise_exception
    env.globals['strftime_now'] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            bos_token=bos, eos_token=eos, **kwargs)


# meta-llama/Llama-2-7b-chat-hf
LLAMA2 = r"""{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"""
# mistralai/Mistral-7B-Instruct-v0.2
MISTRAL = r"""{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"""
# microsoft/Phi-3-mini-4k-instruct
PHI3 = r"""{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"""
# microsoft/Phi-3.5-mini-instruct
PHI35 = r"""{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"""
# google/gemma-7b-it (gemma-2-*-it has the same)
GEMMA = r"""{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"""
# teknium/OpenHermes-2.5-Mistral-7B
CHATML = r"""{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"""
# meta-llama/Meta-Llama-3-8B-Instruct
LLAMA30 = r"""{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"""
# Qwen/Qwen2.5-7B-Instruct
QWEN25 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
# deepseek-ai/deepseek-coder-33b-instruct (a family we do not render)
DEEPSEEK = r"""{% if not add_generation_prompt is defined %}
{% set add_generation_prompt = false %}
{% endif %}
{%- set ns = namespace(found=false) -%}
{%- for message in messages -%}
    {%- if message['role'] == 'system' -%}
        {%- set ns.found = true -%}
    {%- endif -%}
{%- endfor -%}
{{bos_token}}{%- if not ns.found -%}
{{'You are an AI programming assistant\n'}}
{%- endif %}
{%- for message in messages %}
    {%- if message['role'] == 'system' %}
{{ message['content'] }}
    {%- else %}
        {%- if message['role'] == 'user' %}
{{'### Instruction:\n' + message['content'] + '\n'}}
        {%- else %}
{{'### Response:\n' + message['content'] + '\n<|EOT|>\n'}}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{% if add_generation_prompt %}
{{'### Response:'}}
{% endif %}"""
# Qwen/Qwen2-7B-Instruct (ChatML with a default system prompt)
QWEN2 = r"""{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"""
# bofenghuang/vigogne-2-70b-chat (Llama 2 look-alike, one bos only)
# Not to be recognized (they render differently from every family here):
VIGOGNE = r"""{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif true == true and not '<<SYS>>' in messages[0]['content'] %}{% set loop_messages = messages %}{% set system_message = 'Vous êtes Vigogne, un assistant IA créé par Zaion Lab. Vous suivez extrêmement bien les instructions. Aidez autant que vous le pouvez.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\n' + content.strip() + '\n<</SYS>>\n\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"""
# microsoft/Phi-3-small-8k-instruct
PHI3_SMALL = r"""{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"""

S = lambda c: {"role": "system", "content": c}
U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
CONV = [S("You are a helpful assistant"), U("Hello"), A("Hi there"), U("Who are you"),
        A("   I am an assistant   "), U("Another question")]
NOSYS = CONV[1:]
ODD = [U("  spaces\tand\ttabs \n"), A("\u00a0nbsp\u3000 "), U("\u00dcn\u00efc\u00f6d\u00e9 \U0001F600\n")]


def cases(shared):
    L32 = gguf_str(shared + '/models/llama3-tiny-Q4_K_M.gguf', 'tokenizer.chat_template')
    Q3 = gguf_str(shared + '/models/qwen3-tiny-Q4_K_M.gguf', 'tokenizer.chat_template')
    d = {"date_string": "26 Jul 2024"}
    tc = lambda name, args: {"type": "function", "function": {"name": name, "arguments": args}}
    yield "llama2 conversation", "llama2", LLAMA2, "<s>", "</s>", CONV, True, {}
    yield "llama2 no system", "llama2", LLAMA2, "<s>", "</s>", NOSYS, False, {}
    yield "llama2 odd spaces", "llama2", LLAMA2, "<s>", "</s>", [S(" sys ")] + ODD, True, {}
    yield "llama2 not alternating", "llama2", LLAMA2, "<s>", "</s>", [U("a"), U("b")], True, {}
    yield "mistral conversation", "mistral", MISTRAL, "<s>", "</s>", NOSYS, True, {}
    yield "mistral odd spaces", "mistral", MISTRAL, "<s>", "</s>", ODD, True, {}
    yield "mistral system raises", "mistral", MISTRAL, "<s>", "</s>", CONV, True, {}
    yield "phi3 conversation", "phi3", PHI3, "<s>", "<|endoftext|>", CONV, True, {}
    yield "phi3 no generation prompt", "phi3", PHI3, "<s>", "<|endoftext|>", CONV[:5], False, {}
    yield "phi3 empty system", "phi3", PHI3, "<s>", "<|endoftext|>", [S(""), U("hi"), {"role": "tool", "content": "x"}], True, {}
    yield "phi3.5 empty system", "phi3", PHI35, "<s>", "<|endoftext|>", [S(""), U("hi")], True, {}
    yield "phi3.5 conversation", "phi3", PHI35, "<s>", "<|endoftext|>", CONV, False, {}
    yield "gemma conversation", "gemma", GEMMA, "<bos>", "<eos>", NOSYS, True, {}
    yield "gemma odd spaces", "gemma", GEMMA, "<bos>", "<eos>", ODD + [A(" x ")], False, {}
    yield "gemma system raises", "gemma", GEMMA, "<bos>", "<eos>", CONV, True, {}
    yield "gemma not alternating", "gemma", GEMMA, "<bos>", "<eos>", [U("a"), A("b"), A("c")], True, {}
    yield "chatml conversation", "chatml", CHATML, "", "", CONV, True, {}
    yield "chatml odd spaces", "chatml", CHATML, "", "", [{"role": "tool", "content": " t "}] + ODD, False, {}
    yield "llama3.0 conversation", "llama3.0", LLAMA30, "<|begin_of_text|>", "<|eot_id|>", CONV, True, {}
    yield "llama3.0 odd spaces", "llama3.0", LLAMA30, "<|begin_of_text|>", "<|eot_id|>", ODD, False, {}
    # Llama 3.2 beyond the shared cases: tool call and result, unicode trim
    yield "llama3 tool call", "llama3", L32, "<|begin_of_text|>", "<|eot_id|>", [
        S("sys"), U("Weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [tc("get_weather", "{\"city\": \"Paris\"}")]},
        {"role": "tool", "content": "{\"temp\": 21, \"note\": \"tab\\there\"}"}], True, d
    yield "llama3 tool call object", "llama3", L32, "<|begin_of_text|>", "<|eot_id|>", [
        U("add"), {"role": "assistant", "content": "", "tool_calls": [tc("add", {"a": 1, "b": [2.5, 1e-05, 1e16, None, True], "s": "\u00e9\n"})]},
        {"role": "ipython", "content": "3"}], False, d
    yield "llama3 two tool calls raise", "llama3", L32, "<|begin_of_text|>", "<|eot_id|>", [
        U("x"), {"role": "assistant", "content": "", "tool_calls": [tc("a", "{}"), tc("b", "{}")]}], True, d
    yield "llama3 odd spaces", "llama3", L32, "<|begin_of_text|>", "<|eot_id|>", [S("\u2003 sys \x1c")] + ODD, True, d
    yield "llama3 other date", "llama3", L32, "<|begin_of_text|>", "<|eot_id|>", NOSYS, True, {"date_string": "01 Jan 2030"}
    # Qwen3 beyond the shared cases
    yield "qwen3 conversation", "qwen3", Q3, "", "<|im_end|>", CONV, True, {}
    yield "qwen3 tools in a row", "qwen3", Q3, "", "<|im_end|>", [
        S("sys"), U("two things"),
        {"role": "assistant", "content": "<think>\nplan\n</think>\n\nLet me check.", "tool_calls": [tc("a", "{\"x\": 1}"), tc("b", {"y": [1, 2]})]},
        {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"},
        {"role": "assistant", "content": "", "tool_calls": [tc("c", "{}")]},
        {"role": "tool", "content": "r3"}], True, {"enable_thinking": False}
    yield "qwen3 tool response as user", "qwen3", Q3, "", "<|im_end|>", [
        U("q"), A("<think>t</think>a"), U("<tool_response>\nx\n</tool_response>"), A("\n\nfinal")], False, {}
    yield "qwen3 think edge cases", "qwen3", Q3, "", "<|im_end|>", [
        U("q1"), A("no open tag</think>\n\nrest</think>\nlast"), U("q2"),
        A("<think>a</think><think>b\n\n</think>\n\n\nc"),
        {"role": "assistant", "content": "plain", "reasoning_content": "\n\nr\n"},
        {"role": "system", "content": " mid "}, {"role": "weird", "content": "x"}], True, {"enable_thinking": True}
    yield "qwen3 odd spaces", "qwen3", Q3, "", "<|im_end|>", ODD, True, {}
    yield "qwen2 default system", "chatml", QWEN2, "", "", NOSYS, True, {}
    yield "qwen2 own system", "chatml", QWEN2, "", "", CONV, False, {}
    yield "qwen2.5 default system", "qwen2.5", QWEN25, "", "", NOSYS, True, {}
    yield "qwen2.5 tools", "qwen2.5", QWEN25, "", "", [
        S("sys"), U("two things"),
        {"role": "assistant", "content": "Checking.", "tool_calls": [tc("a", "{\"x\": 1}"), tc("b", {"y": [1, 2]})]},
        {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "c", "arguments": {}}]},
        {"role": "tool", "content": "r3"}, A(" done "), {"role": "system", "content": "late"}], True, {}
    for name, t in (("vigogne", VIGOGNE), ("phi3 small", PHI3_SMALL), ("deepseek coder", DEEPSEEK)):
        yield "not recognized: " + name, None, t, "<s>", "</s>", NOSYS, True, {}


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else '../shared'
    # the setup reproduces every shared reference line first
    for fam in ('llama3', 'qwen3'):
        model = {'llama3': 'llama3-tiny-Q4_K_M', 'qwen3': 'qwen3-tiny-Q4_K_M'}[fam]
        t = gguf_str(f'{shared}/models/{model}.gguf', 'tokenizer.chat_template')
        bos, eos = ('<|begin_of_text|>', '<|eot_id|>') if fam == 'llama3' else ('', '<|im_end|>')
        for line in open(f'{shared}/reference/chat-{fam}.jsonl'):
            c = json.loads(line)
            got = render(t, c['messages'], c['add_generation_prompt'], bos, eos, c.get('kwargs', {}))
            assert got == c['rendered'], (fam, c)
    out = open('tests/data/chat-families.jsonl', 'w')
    for name, fam, t, bos, eos, msgs, gen, kw in cases(shared):
        rec = {"name": name, "family": fam, "template": t, "bos_token": bos, "eos_token": eos,
               "messages": msgs, "add_generation_prompt": gen, "kwargs": kw}
        try:
            rec["rendered"] = render(t, msgs, gen, bos, eos, kw)
        except (TemplateError, TypeError) as e:
            rec["error"] = str(e)
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == '__main__':
    main()
