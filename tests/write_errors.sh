#!/usr/bin/env bash
# write_errors.sh - an output that cannot be written (a full disk, a folder
# that does not exist) fails the command with the path and the reason,
# never exit 0 with the text lost (issue 21). /dev/full stands in for a full
# disk: every write to it fails with ENOSPC.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=$(model_for stories260K)

# fails_with NAME PATTERN CMD...: exit status 1..125 and PATTERN on stderr
fails_with() {
    local name=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -ge 1 ] && [ $rc -le 125 ] && grep -q -- "$pattern" "$tmp/err"; then
        echo "PASS: $name (exit $rc: $(grep -m1 -- "$pattern" "$tmp/err"))"
        passed=$((passed + 1))
    else
        echo "FAIL: $name: exit $rc, expected non-zero and '$pattern' on stderr:"
        sed 's/^/    /' "$tmp/err" | head -10
        failed=$((failed + 1))
    fi
}
full() { "$@" >/dev/full; }

if [ ! -w /dev/full ]; then
    skip "write errors: /dev/full is not here to stand in for a full disk"
    finish
    exit
fi
fails_with "generate > /dev/full" "stdout: cannot write: No space left on device" \
    full "$bin" generate -m "$model" -p "Once upon a time" -n 16
fails_with "generate --tokens-out on a full disk" "/dev/full: cannot write: No space left on device" \
    "$bin" generate -m "$model" -p "Once upon a time" -n 16 --tokens-out /dev/full
fails_with "generate --tokens-out in a missing folder" "$tmp/none/t.txt.*No such file or directory" \
    "$bin" generate -m "$model" -p "Once upon a time" -n 4 --tokens-out "$tmp/none/t.txt"
fails_with "inspect > /dev/full" "shardpipe inspect: stdout: cannot write: No space left on device" \
    full "$bin" inspect "$model"
fails_with "inspect --json > /dev/full" "stdout: cannot write" full "$bin" inspect --json "$model"
write_plan "$tmp/one.yaml" "$model" 64 1 1 f32 "0:0:4"
fails_with "check > /dev/full" "shardpipe check: stdout: cannot write" full "$bin" check "$tmp/one.yaml"
fails_with "synth -o /dev/full" "/dev/full: cannot write: No space left on device" \
    "$bin" synth -o /dev/full --shape tiny --type q8_0
fails_with "bench engine --json on a full disk" "/dev/full: cannot write: No space left on device" \
    "$bin" bench engine -m "$model" --prompt-tokens 8 --gen 4 --reps 1 --bw-mib 16 --json /dev/full

write_plan "$tmp/two.yaml" "$model" 64 1 1 f32 "0:0:2" "1:3:4"
fails_with "run --summary-json in a missing folder" "$tmp/none/s.json.*cannot create the run summary: No such file" \
    mpirun_bounded 60 -n 2 "$bin" run --plan "$tmp/two.yaml" --prompt "Once" -n 4 -q --summary-json "$tmp/none/s.json"
fails_with "run --summary-json on a full disk" "/dev/full: cannot write: No space left on device" \
    mpirun_bounded 60 -n 2 "$bin" run --plan "$tmp/two.yaml" --prompt "Once" -n 4 -q --summary-json /dev/full
fails_with "run --tokens-out on a full disk" "/dev/full: cannot write: No space left on device" \
    mpirun_bounded 60 -n 2 "$bin" run --plan "$tmp/two.yaml" --prompt "Once" -n 4 -q --tokens-out /dev/full
printf '{"prompt": "Once"}\n' >"$tmp/p.jsonl"
fails_with "run -o on a full disk" "/dev/full: cannot write: No space left on device" \
    mpirun_bounded 60 -n 2 "$bin" run --plan "$tmp/two.yaml" --prompts "$tmp/p.jsonl" -n 4 -q -o /dev/full
# a good run still exits 0 (the checks are not just failing everything)
check "run with writable outputs exits 0" mpirun_bounded 60 -n 2 "$bin" run --plan "$tmp/two.yaml" --prompt "Once" \
    -n 4 -q --summary-json "$tmp/s.json" --tokens-out "$tmp/t.txt"
check "... and writes them" test -s "$tmp/s.json" -a -s "$tmp/t.txt"
finish
