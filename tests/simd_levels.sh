#!/usr/bin/env bash
# simd_levels.sh - the whole program at every SIMD level of this CPU gives
# the same tokens: `shardpipe generate` with temperature sampling (so a
# one-ulp difference in the logits would soon pick another token) on models
# the test writes itself (Q4_0, Q8_0 with a tied output, F32, IQ4_NL with
# rows of 9 and 19 blocks: a partial last group), once per
# level named by SHARDPIPE_SIMD, with the weights in huge pages and left
# mapped (SHARDPIPE_MMAP=1). The Q4_0 model's rows are 20 and 19 blocks
# long, so where the level regroups Q4_0 in memory (sp_block_q4_0x16:
# a 16-block panel, then a whole group, or a partial one, in the file's
# layout) the huge-page runs take that layout and the mapped ones the
# file's; SHARDPIPE_REPACK=0 keeps the file's in huge pages too. Also: an unknown SHARDPIPE_SIMD is reported,
# with the levels there are, and the run goes on at the fastest; the
# prefetch distance (SHARDPIPE_PREFETCH) does not change the tokens, and a
# bad one is reported and replaced by the default.
# Usage: bash simd_levels.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d /tmp/sp_simd_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# the levels, from the message an unknown name gets
"$bin" synth -o "$tmp/q4.gguf" --shape tiny --type q4_0 --dim 640 --ffn 608 --layers 3 --seed 3 >/dev/null ||
  { echo "FAIL: synth"; exit 1; }
SHARDPIPE_SIMD=no-such-level "$bin" generate -m "$tmp/q4.gguf" -p "x" -n 2 >/dev/null 2>"$tmp/err" ||
  fail "an unknown SHARDPIPE_SIMD stopped the run: $(cat "$tmp/err")"
grep -q "SHARDPIPE_SIMD=no-such-level is not a SIMD level of this CPU; levels here: scalar" "$tmp/err" ||
  fail "no message for an unknown SHARDPIPE_SIMD: $(cat "$tmp/err")"
read -r -a levels <<<"$(sed -n 's/.*levels here: \(.*\); using .*/\1/p' "$tmp/err")"
echo "levels: ${levels[*]}"
[ "${#levels[@]}" -ge 1 ] || fail "no levels listed"

"$bin" synth -o "$tmp/q8.gguf" --shape tiny --type q8_0 --tied --dim 256 --ffn 512 --layers 3 --seed 4 >/dev/null ||
  fail "synth q8_0"
"$bin" synth -o "$tmp/f32.gguf" --shape tiny --type f32 --dim 128 --ffn 256 --layers 2 --seed 5 >/dev/null ||
  fail "synth f32"
"$bin" synth -o "$tmp/iq4nl.gguf" --shape tiny --type iq4_nl --output-type iq4_nl --dim 288 --ffn 608 --layers 2 \
  --seed 6 >/dev/null || fail "synth iq4_nl"

for model in q4 q8 f32 iq4nl; do
  ref= before=$fails
  for lv in "${levels[@]}"; do
    for mmap in 0 1; do
      out=$tmp/$model-$lv-$mmap.txt
      if ! SHARDPIPE_SIMD=$lv SHARDPIPE_MMAP=$mmap "$bin" generate -m "$tmp/$model.gguf" -p "once upon a time" \
           -n 40 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --seed 9 --ignore-eos --tokens-out "$out" \
           >/dev/null 2>"$tmp/err"; then
        fail "$model at $lv (mmap $mmap): $(cat "$tmp/err")"
        continue
      fi
      [ "$(wc -l <"$out")" -eq 40 ] || fail "$model at $lv: $(wc -l <"$out") tokens, expected 40"
      if [ -z "$ref" ]; then ref=$out; continue; fi
      cmp -s "$ref" "$out" || fail "$model: level $lv (SHARDPIPE_MMAP=$mmap) sampled other tokens than $(basename "$ref" .txt)"
    done
  done
  [ $fails -eq "$before" ] && echo "$model: ${#levels[@]} levels x 2 weight placements, same 40 sampled tokens"
done

# the file layout in huge pages, at the fastest level
before=$fails
SHARDPIPE_REPACK=0 "$bin" generate -m "$tmp/q4.gguf" -p "once upon a time" -n 40 --temp 1.0 --top-k 0 --top-p 1 \
  --min-p 0 --seed 9 --ignore-eos --tokens-out "$tmp/q4-norepack.txt" >/dev/null 2>"$tmp/err" ||
  fail "SHARDPIPE_REPACK=0: $(cat "$tmp/err")"
cmp -s "$tmp/q4-${levels[0]}-0.txt" "$tmp/q4-norepack.txt" ||
  fail "SHARDPIPE_REPACK=0 sampled other tokens than the runs above"
[ $fails -eq "$before" ] && echo "q4: SHARDPIPE_REPACK=0 (file layout in huge pages), same 40 sampled tokens"

# prefetch distance: off, one line, the default, far; a bad value is named
SHARDPIPE_PREFETCH=12kb "$bin" generate -m "$tmp/q4.gguf" -p "x" -n 2 >/dev/null 2>"$tmp/err" ||
  fail "a bad SHARDPIPE_PREFETCH stopped the run: $(cat "$tmp/err")"
grep -q "SHARDPIPE_PREFETCH=12kb is not a byte count in 0..1048576; using [0-9]*" "$tmp/err" ||
  fail "no message for a bad SHARDPIPE_PREFETCH: $(cat "$tmp/err")"
before=$fails
for pf in 0 64 "" 65536; do
  out=$tmp/q4-pf$pf.txt
  SHARDPIPE_PREFETCH=$pf "$bin" generate -m "$tmp/q4.gguf" -p "once upon a time" -n 40 --temp 1.0 --top-k 0 \
    --top-p 1 --min-p 0 --seed 9 --ignore-eos --tokens-out "$out" >/dev/null 2>"$tmp/err" ||
    { fail "SHARDPIPE_PREFETCH=$pf: $(cat "$tmp/err")"; continue; }
  cmp -s "$tmp/q4-pf0.txt" "$out" || fail "SHARDPIPE_PREFETCH=$pf sampled other tokens than with no prefetch"
done
[ $fails -eq "$before" ] && echo "prefetch: 0, 64, default and 65536 bytes ahead, same 40 sampled tokens"

[ $fails -eq 0 ] && echo "simd_levels: all passed"
exit $((fails > 0))
