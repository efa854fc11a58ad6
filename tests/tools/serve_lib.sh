# serve_lib.sh - helpers of the serve tests (sourced after lib.sh): start a
# real `mpiexec ... shardpipe serve` on 127.0.0.1 with a free port, wait
# until it is ready, stop it, and read SSE streams.

# start_server NAME NRANKS PLAN [serve options...]: sets ${NAME}_pid (the
# `timeout` around mpiexec: wait on it), ${NAME}_mpiexec (signal this one:
# timeout would pass a signal on to its whole process group too, and a
# second SIGINT makes hydra kill the job), ${NAME}_url, ${NAME}_log; waits
# up to 60 s for the server to say it is ready.
start_server() {
    local name=$1 n=$2 plan=$3
    shift 3
    local log="$tmp/$name.log"
    timeout -k 5 300 mpiexec -n "$n" "$bin" serve --plan "$plan" --port 0 "$@" </dev/null >"$log" 2>&1 &
    local pid=$!
    local port="" i
    for i in $(seq 1 600); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$port" ] && grep -q "ready:" "$log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    local mpx
    mpx=$(pgrep -P "$pid" -x mpiexec | head -1)
    eval "${name}_pid=$pid ${name}_mpiexec=${mpx:-$pid} ${name}_url=http://127.0.0.1:$port ${name}_log=$log"
    [ -n "$port" ] && grep -q "ready:" "$log"
}

# stop_server NAME SIGNAL: signals mpiexec, waits (<= 60 s), returns its code.
stop_server() {
    local pid mpx
    eval "pid=\${$1_pid} mpx=\${$1_mpiexec}"
    kill -"$2" "$mpx" 2>/dev/null
    local i
    for i in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    wait "$pid"
}

# sse_text FILE: the streamed text of an SSE answer (chat deltas or
# completion texts) on stdout; exit 1 unless the stream has exactly one
# finish_reason and ends with data: [DONE].
sse_text() {
    python3 - "$1" <<'PY'
import json, sys
text, finishes, done, ids = [], 0, False, set()
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if not line.startswith("data: "):
        continue
    body = line[6:]
    if body == "[DONE]":
        done = True
        continue
    if done:
        sys.exit("data after [DONE]")
    o = json.loads(body)
    ids.add(o["id"])
    for c in o.get("choices", []):
        text.append(c["delta"].get("content") or "" if "delta" in c else c.get("text", ""))
        finishes += c.get("finish_reason") is not None
sys.stdout.write("".join(text))
sys.exit(0 if done and finishes == 1 and len(ids) == 1 else 1)
PY
}

# json_get FILE EXPR: a Python expression over the parsed JSON `o`.
json_get() {
    python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1" "$2"
}

# serve_setup NAME MODEL: a temporary folder in $tmp (removed at exit, with
# any server still running), or SKIP and end the test without the model,
# curl or python3.
serve_setup() {
    tmp=$(mktemp -d)
    trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
    if [ ! -r "$2" ]; then
        skip "$1: $2 is missing (needs ../shared)"
        finish
        exit
    fi
    if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
        skip "$1: needs curl and python3 (apt-get install curl python3)"
        finish
        exit
    fi
}
