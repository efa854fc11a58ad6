#!/usr/bin/env bash
# plans.sh - `shardpipe check` on the invalid plan corpus and on a valid plan.
# Usage: bash plans.sh SHARDPIPE SHARED_DIR SOURCE_DIR
#
# Each tests/plans/invalid/*.yaml must make `shardpipe check` exit 1 with its
# `# expect:` text on stderr, the message starting with the plan's path. Files
# with `# model: NAME` are checked against SHARED_DIR/models/NAME.gguf (their
# model path is rewritten to it in a temporary copy; skipped loudly if the
# model is missing); `# world: N` adds --world-size N.
set -u
bin=$1 shared=$2 src=$3
tmp=$(mktemp -d /tmp/sp_plans_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0 passed=0 skipped=0

# The file of model NAME: stories260K ships in models/, others are in ../shared.
model_file() {
    if [ "$1" = stories260K ]; then echo "$src/models/stories260K.gguf"; else echo "$shared/models/$1.gguf"; fi
}

# Copy plan $1 to $tmp, pointing its model at model $2 (a name).
copy_with_model() {
    local out="$tmp/$(basename "$1")"
    sed "s|^\(  path:\).*|\1 $(model_file "$2")|" "$1" >"$out"
    echo "$out"
}

for f in "$src"/tests/plans/invalid/*.yaml; do
    expect=$(sed -n 's/^# expect: //p' "$f")
    model=$(sed -n 's/^# model: //p' "$f")
    world=$(sed -n 's/^# world: //p' "$f")
    plan=$f
    if [ -n "$model" ]; then
        if [ ! -r "$(model_file "$model")" ]; then
            echo "SKIP: $(basename "$f") needs $(model_file "$model"), which is missing"
            skipped=$((skipped + 1))
            continue
        fi
        plan=$(copy_with_model "$f" "$model")
    fi
    args=("$plan")
    [ -n "$world" ] && args+=(--world-size "$world")
    err=$("$bin" check "${args[@]}" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -ne 1 ]; then
        echo "FAIL: $(basename "$f"): exit code $rc, expected 1; stderr: $err"
        fails=$((fails + 1))
    elif [[ "$err" != *"$expect"* ]]; then
        echo "FAIL: $(basename "$f"): expected '$expect' in: $err"
        fails=$((fails + 1))
    elif [[ "$err" != "$plan:"* ]]; then
        echo "FAIL: $(basename "$f"): the message should start with '$plan:': $err"
        fails=$((fails + 1))
    else
        passed=$((passed + 1))
    fi
done

# A valid plan: exit 0, a row per stage and "plan OK".
if [ -r "$(model_file stories260K)" ]; then
    plan=$(copy_with_model "$src/partitions/stories260K-2stages.yaml" stories260K)
    out=$("$bin" check "$plan" --world-size 2 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [[ "$out" != *"plan OK"* ]] || [[ "$out" != *"pi5-b"* ]]; then
        echo "FAIL: valid plan: exit code $rc, output: $out"
        fails=$((fails + 1))
    else
        passed=$((passed + 1))
    fi
else
    echo "SKIP: the valid-plan check needs $(model_file stories260K), which is missing"
    skipped=$((skipped + 1))
fi

# Usage errors exit 2, not 1.
"$bin" check >/dev/null 2>&1
rc=$?
if [ $rc -ne 2 ]; then echo "FAIL: 'shardpipe check' without a plan exited $rc, expected 2"; fails=$((fails + 1)); fi

echo "plans.sh: $passed passed, $fails failed, $skipped skipped"
[ $fails -eq 0 ]
