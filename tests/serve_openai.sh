#!/usr/bin/env bash
# serve_openai.sh - the official `openai` npm package against a real
# 2-rank `shardpipe serve` (stories260K, API key): it lists the models,
# streams a chat completion (the same text as the answer not streamed, by
# curl), and gets a completion. The package is installed once into the
# build folder (npm registry); without node/npm or the registry: SKIP.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/serve_lib.sh"
model="$src/models/stories260K.gguf" # shipped in the repository
serve_setup serve_openai "$model"
npmdir="$(cd "$(dirname "$bin")" && pwd)/npm-openai"
if ! command -v node >/dev/null || ! command -v npm >/dev/null || ! command -v curl >/dev/null; then
    skip "serve_openai: needs node, npm and curl (Debian: apt-get install nodejs npm curl)"
    finish
    exit
fi
if [ ! -d "$npmdir/node_modules/openai" ]; then
    mkdir -p "$npmdir"
    if ! timeout 180 npm install --prefix "$npmdir" --no-audit --no-fund --loglevel=error openai@4 >"$tmp/npm.log" 2>&1; then
        cat "$tmp/npm.log"
        skip "serve_openai: 'npm install openai' failed (no access to the npm registry?)"
        finish
        exit
    fi
fi
echo "openai package $(node -p "require('$npmdir/node_modules/openai/package.json').version")"
key=sk-local-test
write_plan "$tmp/p2.yaml" "$model" 512 4 2 f32 "0:0:1" "1:2:4"
check "serve starts" start_server s 2 "$tmp/p2.yaml" --api-key "$key"
cat >"$tmp/client.js" <<JS
const OpenAI = require('$npmdir/node_modules/openai');
const client = new OpenAI({ baseURL: process.argv[2] + '/v1', apiKey: '$key', maxRetries: 0 });
(async () => {
  const models = await client.models.list();
  const ids = models.data.map(m => m.id);
  const req = { model: 'stories260K', messages: [{ role: 'user', content: 'Tell me about a red ball' }],
                max_tokens: 30, temperature: 0.7, seed: 11 };
  const stream = await client.chat.completions.create({ ...req, stream: true });
  let text = '', finish = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    const c = chunk.choices[0];
    if (c) { text += c.delta?.content ?? ''; if (c.finish_reason) finish = c.finish_reason; }
  }
  const whole = await client.chat.completions.create(req);
  const comp = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
  let denied = null;
  try { await new OpenAI({ baseURL: process.argv[2] + '/v1', apiKey: 'wrong', maxRetries: 0 }).models.list(); }
  catch (e) { denied = e.status; }
  console.log(JSON.stringify({ ids, text, finish, chunks, whole: whole.choices[0].message.content,
                               usage: whole.usage, completion: comp.choices[0].text, denied }));
})().catch(e => { console.error('client error:', e); process.exit(1); });
JS
check "openai client runs against the server" bash -c "timeout 60 node '$tmp/client.js' '$s_url' >'$tmp/out.json'"
cat "$tmp/out.json"
check "openai: models, streamed chat equal to the whole answer, completion, 401 for a wrong key" python3 - "$tmp/out.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(0 if o["ids"] == ["stories260K"] and o["text"] and o["text"] == o["whole"] and o["chunks"] >= 2
         and o["finish"] in ("stop", "length") and o["usage"]["completion_tokens"] > 0
         and o["completion"].startswith(", there was") and o["denied"] == 401 else 1)
PY
stop_server s TERM
check "serve exits 0" test $? -eq 0
finish
