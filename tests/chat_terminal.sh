#!/usr/bin/env bash
# chat_terminal.sh - `shardpipe chat` against real servers on 127.0.0.1 (with an
# API key): stories260K over 2 ranks (A) and the slower tiny-random-q4_0 on
# 1 rank (B, long answers). Expected answers come from
# tests/tools/chat_expect.py, which keeps the same conversation itself and
# asks the server without streaming.
#  - stdin a pipe: multi-turn, /reset, /system give exactly the expected
#    answers; SIGINT mid-answer exits 130 and frees the server's slot
#  - a terminal (tmux): the same script typed line by line gives the
#    expected transcript; on B, Ctrl-C mid-answer prints [stopped], the slot
#    is freed (shardpipe_requests_running 0) with far fewer tokens than
#    asked, Ctrl-C at the prompt does not quit, the next question is
#    answered, /quit exits 0
#  - a conversation that leaves less context than -n: the next answer gets
#    what is left, with a note, instead of failing
#  - errors: connection refused names the URL and `shardpipe serve`; 401
#    without a key; the API's 400 message for max_tokens past the context
#    (of the first question: -n itself too large)
#  - chat -m MODEL: a private one-rank server, the same answers as A, its
#    temporary folder removed at the end; --chat-template reaches it
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/chat_lib.sh"
model="$src/models/stories260K.gguf" # shipped in the repository
slow="$shared/models/tiny-random-q4_0.gguf" # long answers: random weights, 32000 tokens
need() {
    skip "chat CLI: $1"
    finish
    exit
}
[ -r "$model" ] && [ -r "$slow" ] || need "$model or $slow is missing (needs ../shared)"
command -v python3 >/dev/null || need "python3 is missing (tests/tools/chat_expect.py computes the expected answers)"
command -v curl >/dev/null || need "curl is missing"
tmp=$(mktemp -d)
tm="tmux -S $tmp/tmux.sock" # a private tmux server, its socket removed with $tmp
cleanup() {
    $tm kill-server 2>/dev/null
    stop_pair
    rm -rf "$tmp"
}
trap cleanup EXIT

key=cli-test-key
if ! start_pair $key "$model" "$slow"; then
    check "the two servers start (logs above)" false
    finish
    exit
fi
A=$fast_url
B=$slow_url
export SHARDPIPE_API_KEY=$key

# --- stdin a pipe --------------------------------------------------------
printf '%s\n' "Once upon a time" "What did she do next?" "/reset" "Once upon a time" \
    "/system You tell short stories." "Tell me about a dog." >"$tmp/script"
python3 "$src/tests/tools/chat_expect.py" "$A" $key 0 1 24 <"$tmp/script" >"$tmp/expect" ||
    echo "chat_expect.py failed"
"$bin" chat --url "$A" --temp 0 --seed 1 -n 24 <"$tmp/script" >"$tmp/got" 2>"$tmp/err"
rc=$?
check "piped: exits 0 (got $rc: $(head -c 300 "$tmp/err"))" test $rc -eq 0
check "piped: 4 answers, each as the server answers that history (multi-turn, /reset, /system)" \
    cmp -s "$tmp/expect" "$tmp/got"
diff "$tmp/expect" "$tmp/got" | head -20
first=$(head -c 40 "$tmp/got" | head -1)
check "piped: the answers are text ('$first...')" test ${#first} -gt 5

# SIGINT while an answer streams: the stream is closed and chat exits 130
mkfifo "$tmp/fifo"
"$bin" chat --url "$B" --temp 1 --seed 1 -n 1500 <"$tmp/fifo" >"$tmp/int.out" 2>"$tmp/int.err" &
cpid=$!
exec 7>"$tmp/fifo"
echo "Tell me a long story" >&7
for i in $(seq 1 300); do
    [ "$(wc -c <"$tmp/int.out")" -gt 40 ] && break
    sleep 0.1
done
kill -INT $cpid
wait $cpid
rc=$?
exec 7>&-
check "piped: SIGINT mid-answer exits 130 (got $rc after $(wc -c <"$tmp/int.out") bytes)" test $rc -eq 130
check "piped: the server frees the slot of the closed stream" wait_metric "$B" $key shardpipe_requests_running 0 10

# a conversation that outgrows -n: B's context is 2048; the first answer
# takes all 1200 tokens, so the second cannot have 1200 beside it and gets
# what is left instead of an error
gen=$(metric "$B" $key shardpipe_generated_tokens_total)
printf 'Tell me a long story\nAnd then?\n' | "$bin" chat --url "$B" --temp 1 --seed 1 -n 1200 >"$tmp/full.out" 2>"$tmp/full.err"
rc=$?
gen2=$(metric "$B" $key shardpipe_generated_tokens_total)
check "piped: a second answer past -n's room exits 0 (got $rc: $(head -c 300 "$tmp/full.err"))" test $rc -eq 0
check "piped: ... says it gets the context that is left" grep -q 'n 1200 does not fit beside the conversation' "$tmp/full.err"
check "piped: ... and both answers were generated (${gen:-0} -> ${gen2:-0} tokens: 1200 and the rest)" \
    test $((${gen2:-0} - ${gen:-0})) -gt 1200

# --- errors --------------------------------------------------------------
"$bin" chat --url http://127.0.0.1:1 </dev/null >/dev/null 2>"$tmp/err"
rc=$?
check "connection refused: exit 1, names the URL and suggests serve ($(cat "$tmp/err"))" \
    sh -c "[ $rc -eq 1 ] && grep -q 'cannot connect to http://127.0.0.1:1: Connection refused' '$tmp/err' &&
           grep -q 'shardpipe serve' '$tmp/err'"
echo hi | SHARDPIPE_API_KEY= "$bin" chat --url "$A" >/dev/null 2>"$tmp/err"
rc=$?
check "no key: exit 1 with the 401 and how to pass a key ($(cat "$tmp/err"))" \
    sh -c "[ $rc -eq 1 ] && grep -q 'HTTP 401' '$tmp/err' && grep -q -- '--api-key' '$tmp/err'"
echo hi | "$bin" chat --url "$A" -n 100000 >/dev/null 2>"$tmp/err"
rc=$?
check "max_tokens past the context: exit 1 with the API's 400 message ($(cat "$tmp/err"))" \
    sh -c "[ $rc -eq 1 ] && grep -q 'HTTP 400: .*context' '$tmp/err'"

# --- chat -m: a private server on this machine ----------------------------
mkdir "$tmp/m"
printf '%s\n' "Once upon a time" "/reset" "Once upon a time" >"$tmp/mscript"
TMPDIR="$tmp/m" timeout 120 "$bin" chat -m "$model" --temp 0 --seed 1 -n 24 <"$tmp/mscript" >"$tmp/mgot" 2>"$tmp/err"
rc=$?
a1=$(head -1 "$tmp/expect")
check "chat -m: exits 0 (got $rc: $(head -c 300 "$tmp/err"))" test $rc -eq 0
check "chat -m: answers as the 2-rank server does, twice (after /reset)" \
    test "$(cat "$tmp/mgot")" = "$(printf '%s\n%s' "$a1" "$a1")"
check "chat -m: its temporary folder is gone" test -z "$(ls -A "$tmp/m")"
TMPDIR="$tmp/m" "$bin" chat -m "$tmp/none.gguf" </dev/null 2>"$tmp/err"
rc=$?
check "chat -m on a missing file: exit 1 naming it ($(cat "$tmp/err"))" \
    sh -c "[ $rc -eq 1 ] && grep -q 'none.gguf' '$tmp/err'"

# --chat-template goes to the private server: a family it knows answers, one
# it does not is named in the error from the server's log
printf 'Hi there\n' | TMPDIR="$tmp/m" timeout 120 "$bin" chat -m "$model" --chat-template chatml --temp 0 -n 8 \
    >"$tmp/tgot" 2>"$tmp/err"
rc=$?
check "chat -m --chat-template chatml: exits 0 with an answer ($(head -c 200 "$tmp/err"))" \
    sh -c "[ $rc -eq 0 ] && [ -s '$tmp/tgot' ]"
printf 'Hi\n' | TMPDIR="$tmp/m" timeout 120 "$bin" chat -m "$model" --chat-template vicuna >/dev/null 2>"$tmp/err"
rc=$?
check "chat -m --chat-template vicuna: exit 1 with serve's message ($(cat "$tmp/err"))" \
    sh -c "[ $rc -eq 1 ] && grep -q \"unknown chat template 'vicuna'\" '$tmp/err'"
check "chat -m: no temporary folder is left after either" test -z "$(ls -A "$tmp/m")"

# --- a terminal (tmux) ----------------------------------------------------
if ! command -v tmux >/dev/null; then
    skip "chat CLI on a terminal: tmux is missing (apt-get install tmux; scripts/test.sh installs it)"
    finish
    exit
fi
pane() { $tm capture-pane -p -J -S - -E - -t "$1"; }
# wait_pane SESSION REGEX COUNT SECONDS: until COUNT lines match
wait_pane() {
    local i
    for i in $(seq 1 $(($4 * 10))); do
        [ "$(pane "$1" | grep -c -- "$2")" -ge "$3" ] && return 0
        sleep 0.1
    done
    echo "pane $1 after $4 s:"
    pane "$1" | tail -15
    return 1
}
type_line() {
    $tm send-keys -t "$1" -l -- "$2"
    $tm send-keys -t "$1" Enter
}

# A: the piped script typed line by line, each after the prompt is back
$tm new-session -d -s a -x 220 -y 60 "'$bin' chat --url '$A' --temp 0 --seed 1 -n 24; echo EXIT=\$?; sleep 600"
python3 "$src/tests/tools/chat_expect.py" "$A" $key 0 1 24 --tty <"$tmp/script" >"$tmp/expect_tty"
n=1
ok=1
wait_pane a '^>' 1 30 || ok=0
while IFS= read -r line && [ $ok = 1 ]; do
    type_line a "$line"
    n=$((n + 1))
    wait_pane a '^>' $n 60 || ok=0
done <"$tmp/script"
check "terminal: every line typed got its answer and a new prompt" test $ok = 1
# from the first prompt on, without trailing blanks and the empty rows below
trim() { sed 's/[[:space:]]*$//' | awk 'NF { for (; blank > 0; blank--) print ""; print; next } { blank++ }'; }
pane a | sed -n '/^>/,$p' | trim >"$tmp/got_tty"
trim <"$tmp/expect_tty" >"$tmp/expect_tty.trim"
check "terminal: the transcript is the expected one (streamed answers, /reset, /system)" \
    cmp -s "$tmp/expect_tty.trim" "$tmp/got_tty"
diff "$tmp/expect_tty.trim" "$tmp/got_tty" | head -20
$tm send-keys -t a C-d
check "terminal: Ctrl-D quits with 0" wait_pane a '^EXIT=0' 1 20

# B: Ctrl-C mid-answer, Ctrl-C at the prompt, one more question, /quit
$tm new-session -d -s b -x 220 -y 60 "'$bin' chat --url '$B' --temp 1 --seed 1 -n 1500; echo EXIT=\$?; sleep 600"
wait_pane b '^>' 1 30
gen0=$(metric "$B" $key shardpipe_generated_tokens_total)
type_line b "Tell me a long story"
ok=0
for i in $(seq 1 300); do
    [ "$(pane b | sed -n '/^> Tell me a long story/{n;p;}' | wc -c)" -gt 60 ] && ok=1 && break
    sleep 0.1
done
check "terminal: the answer streams onto the screen" test $ok = 1
$tm send-keys -t b C-c
check "terminal: Ctrl-C mid-answer prints [stopped] and a new prompt" wait_pane b '^>' 2 20
check "terminal: ... after '[stopped]'" sh -c "$tm capture-pane -p -J -S - -t b | grep -q '^\[stopped\]'"
check "terminal: the server frees the slot at once" wait_metric "$B" $key shardpipe_requests_running 0 10
gen=$(metric "$B" $key shardpipe_generated_tokens_total)
check "terminal: the stopped answer took far fewer than 1500 tokens (the server generated $((${gen:-99999} - ${gen0:-0})))" \
    test $((${gen:-99999} - ${gen0:-0})) -lt 1500
$tm send-keys -t b C-c
check "terminal: Ctrl-C at the prompt does not quit" wait_pane b 'Ctrl-D or /quit leaves' 1 10
type_line b "And then?"
check "terminal: the next question is answered to its end" wait_pane b '^>' 4 180
check "terminal: ... without [stopped]" test "$(pane b | grep -c '^\[stopped\]')" -eq 1
wait_metric_above "$B" $key shardpipe_generated_tokens_total "${gen:-0}" 10
gen2=$(metric "$B" $key shardpipe_generated_tokens_total)
check "terminal: ... its tokens generated ($gen -> $gen2)" test "${gen2:-0}" -gt "${gen:-0}"
type_line b "/quit"
check "terminal: /quit exits 0" wait_pane b '^EXIT=0' 1 20
finish
