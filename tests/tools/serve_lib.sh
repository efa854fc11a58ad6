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
    local port
    port=$(wait_listening "$log" "$pid" "ready:")
    local mpx
    mpx=$(pgrep -P "$pid" -x mpiexec | head -1)
    eval "${name}_pid=$pid ${name}_mpiexec=${mpx:-$pid} ${name}_url=http://127.0.0.1:$port ${name}_log=$log"
    [ -n "$port" ] && grep -q "ready:" "$log"
}

# wait_listening LOG PID READY_RE: up to 60 s for the port in LOG's
# "listening on" line and a line matching READY_RE (or PID's end); prints
# the port.
wait_listening() {
    local port="" i
    for i in $(seq 1 600); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -1)
        [ -n "$port" ] && grep -q "$3" "$1" && break
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "$port"
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

# ---- supervised serving (serve --cluster, issue #19) ----

# recover_setup [BOARD...]: a model slow enough to be caught mid-answer
# (stories15M's shape, random weights, stories260K's tokenizer) and a
# cluster of three boards that each hold about half of it: 3 boards plan 3
# stages, 2 plan 2, 1 does not fit. The boards are b0, b1, b2 on loopback
# (host localhost), or the BOARDs named, each reached by its name (the
# emulated network's: links of 0.2 ms and 110 MB/s). Sets $model and
# $cluster.
recover_setup() {
    model="$tmp/s15.gguf"
    "$bin" synth -o "$model" --shape stories15M --vocab-from "$src/models/stories260K.gguf" >/dev/null 2>&1 ||
        { echo "FAIL: synth"; exit 1; }
    cluster="$tmp/three.yaml"
    local boards=("$@") lat=0.0002 bw=110e6 b host
    [ $# -gt 0 ] || boards=(b0 b1 b2) lat=0.00001 bw=5e9
    {
        echo "name: three"
        echo "boards:"
        for b in "${boards[@]}"; do
            host=$b
            [ $# -gt 0 ] || host=localhost
            echo "  - {name: $b, host: $host, profile: $src/configs/boards/epyc-2core-ci.yaml, threads: 1, memory: 14MiB}"
        done
        echo "links:"
        echo "  default: {latency: $lat, bandwidth: $bw}"
    } >"$cluster"
}

# start_supervisor NAME [serve options...]: `serve --cluster` on a free port
# with its work folder $tmp/wd-NAME; a board is up unless $tmp/down.BOARD
# exists (the probe), or as the command $sv_probe says. The command runs
# under the words of the array sv_wrap if set (nsenter into a namespace).
# Sets ${NAME}_pid, ${NAME}_url, ${NAME}_log, ${NAME}_wd.
start_supervisor() {
    local name=$1
    shift
    local log="$tmp/$name.log" wd="$tmp/wd-$name" probe="test ! -e $tmp/down.{board}"
    mkdir -p "$wd"
    ${sv_wrap[@]+"${sv_wrap[@]}"} timeout -k 5 300 "$bin" serve --cluster "$cluster" --model "$model" --sequences 8 \
        --context 256 --port 0 --work-dir "$wd" --fail-timeout 2 --probe "${sv_probe:-$probe}" "$@" \
        </dev/null >"$log" 2>&1 &
    local pid=$! port
    port=$(wait_listening "$log" "$pid" "^shardpipe serve: ready:")
    eval "${name}_pid=$pid ${name}_url=http://127.0.0.1:$port ${name}_log=$log ${name}_wd=$wd"
    [ -n "$port" ] && grep -q "^shardpipe serve: ready:" "$log"
}

# wait_stages LOG N: up to 30 s for the supervisor's last plan to have N
# stages and to be loaded.
wait_stages() {
    local i
    for i in $(seq 1 300); do
        grep -E "^shardpipe serve: (plan |ready:)" "$1" | tail -2 | tr '\n' ' ' |
            grep -q "$2 stages\? on .*ready: $2 stages\?," && return 0
        sleep 0.1
    done
    return 1
}

# same_answers A.json B.json: every client of B completed with the text and
# token count of A's (recover_client.py output).
same_answers() {
    python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
bad = [i for i, (x, y) in enumerate(zip(a["clients"], b["clients"]))
       if not y["complete"] or x["sha256"] != y["sha256"] or x["tokens"] != y["tokens"]]
for i in bad:
    print(f"  client {i}: {b['clients'][i]} vs {a['clients'][i]}")
sys.exit(1 if bad or len(a["clients"]) != len(b["clients"]) else 0)
PY
}

# wait_for_line LOG TEXT: up to 30 s for a line holding TEXT (fixed string).
wait_for_line() {
    local i
    for i in $(seq 1 300); do
        grep -qF "$2" "$1" && return 0
        sleep 0.1
    done
    return 1
}
