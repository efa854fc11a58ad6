#!/usr/bin/env bash
# chat_page.sh - the chat page that `shardpipe serve` answers at /, in a real
# browser: Debian's chromium, headless, driven by the npm package
# playwright-core (installed once into BUILD/node-chat-page). Two real
# servers on 127.0.0.1 with an API key: stories260K over 2 ranks (answers
# compared with the API's own), and the slower tiny-random-q4_0 (long
# answers, for Stop). What the browser does and checks: tests/tools/chat_page.mjs.
# Screenshots: BUILD/chat_page.png, chat_page_phone.png, chat_page_stopped.png.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/chat_lib.sh"
build=$(cd "$(dirname "$bin")" && pwd)
model="$src/models/stories260K.gguf" # shipped in the repository
slow="$shared/models/tiny-random-q4_0.gguf" # long answers: random weights, 32000 tokens
need() {
    skip "chat page in a browser: $1"
    finish
    exit
}
[ -r "$model" ] && [ -r "$slow" ] || need "$model or $slow is missing (needs ../shared)"
[ -x /usr/bin/chromium ] || need "/usr/bin/chromium is missing (apt-get install chromium; scripts/test.sh installs it)"
command -v node >/dev/null && command -v npm >/dev/null || need "node and npm are missing (Node.js 18 or later)"
command -v curl >/dev/null || need "curl is missing"
tmp=$(mktemp -d)
cleanup() {
    stop_pair
    rm -rf "$tmp"
}
trap cleanup EXIT

pw="$build/node-chat-page"
if [ ! -f "$pw/node_modules/playwright-core/package.json" ]; then
    mkdir -p "$pw"
    if ! (cd "$pw" && timeout 300 npm install --no-audit --no-fund --no-save playwright-core@1.65) >"$tmp/npm.log" 2>&1; then
        need "npm could not install playwright-core into $pw (no registry?): $(tail -1 "$tmp/npm.log")"
    fi
fi
cp "$src/tests/tools/chat_page.mjs" "$pw/" # ES modules resolve packages beside the script

key=page-test-key
if ! start_pair $key "$model" "$slow"; then
    check "the two servers start (logs above)" false
    finish
    exit
fi
fast=$fast_url
rm -f "$build"/chat_page*.png

echo "browser against $fast (stories260K, 2 ranks) and $slow_url (tiny-random-q4_0)"
(cd "$pw" && timeout 300 node chat_page.mjs "$fast" "$slow_url" "$key" "$build") >"$tmp/browser.out" 2>&1
rc=$?
cat "$tmp/browser.out"
passed=$((passed + $(grep -c '^PASS' "$tmp/browser.out")))
failed=$((failed + $(grep -c '^FAIL' "$tmp/browser.out")))
check "the browser session exits 0 (got $rc)" test $rc -eq 0
for f in chat_page.png chat_page_phone.png chat_page_stopped.png; do
    check "screenshot $f saved (PNG)" sh -c "head -c 8 '$build/$f' | od -An -c | grep -q 'P   N   G'"
done
echo "screenshots: $build/chat_page.png $build/chat_page_phone.png $build/chat_page_stopped.png"
finish
