# models.sh - sourced by engine.sh, prefetch.sh and vs_llamacpp.sh: writes
# (once) the TinyLlama-1.1B-shape random-weight models the engine benchmarks
# use. Q4_0 keeps a Q8_0 output matrix, as llama.cpp's Q4_0 files do; q4_k_m
# is llama.cpp's Q4_K_M mix (Q4_K, with attn_v / ffn_down of 10 of the 22
# layers and the output in Q6_K), q6_k all Q6_K. The
# vocabulary comes from the shared tiny-random model when it is there
# (32000 SentencePiece tokens, like TinyLlama), else synth's byte
# vocabulary padded to 32000.
# Usage: write_tinyllama_models SHARDPIPE SHARED_DIR OUT_DIR [TYPES]
# (TYPES default "q8_0 q4_0"; also q4_k_m, q6_k)
write_tinyllama_models() {
  local sp=$1 shared=$2 out=$3 types=${4:-q8_0 q4_0} t
  for t in $types; do
    write_tinyllama_model "$sp" "$shared" "$out" "$t" || return 1
  done
}

# One model, OUT_DIR/tinyllama-TYPE.gguf, typed as llama.cpp's files of that
# type are: q8_0 and q4_0 with a Q8_0 output matrix; the K types (q2_k ..
# q6_k, q4_k_m: synth's Q4_K_M mix) with their embedding in the layer type
# and a Q6_K output matrix.
# Usage: write_tinyllama_model SHARDPIPE SHARED_DIR OUT_DIR TYPE
write_tinyllama_model() {
  local sp=$1 shared=$2 out=$3 t=$4 f
  local vocab=(--vocab 32000) types
  [ -r "$shared/models/tiny-random-q8_0.gguf" ] && vocab=(--vocab-from "$shared/models/tiny-random-q8_0.gguf")
  case $t in
    q4_k_m) types=(--embd-type q4_k --output-type q6_k) ;;
    q*_k) types=(--embd-type "$t" --output-type q6_k) ;;
    *) types=(--embd-type "$t" --output-type q8_0) ;;
  esac
  mkdir -p "$out"
  f=$out/tinyllama-$t.gguf
  if [ ! -s "$f" ]; then
    echo "writing $f" >&2
    "$sp" synth -o "$f.tmp" --shape tinyllama-1.1b --type "$t" "${types[@]}" "${vocab[@]}" || return 1
    mv "$f.tmp" "$f"
  fi
}
