# models.sh - sourced by engine.sh and prefetch.sh: writes (once) the
# TinyLlama-1.1B-shape random-weight models the engine benchmarks use.
# Q4_0 keeps a Q8_0 output matrix, as llama.cpp's Q4_0 files do; q4_k_m is
# llama.cpp's Q4_K_M mix (Q4_K, with attn_v / ffn_down of 10 of the 22
# layers and the output in Q6_K), q6_k all Q6_K. The
# vocabulary comes from the shared tiny-random model when it is there
# (32000 SentencePiece tokens, like TinyLlama), else synth's byte
# vocabulary padded to 32000.
# Usage: write_tinyllama_models SHARDPIPE SHARED_DIR OUT_DIR [TYPES]
# (TYPES default "q8_0 q4_0"; also q4_k_m, q6_k)
write_tinyllama_models() {
  local sp=$1 shared=$2 out=$3 types=${4:-q8_0 q4_0} t f
  local vocab=(--vocab 32000)
  [ -r "$shared/models/tiny-random-q8_0.gguf" ] && vocab=(--vocab-from "$shared/models/tiny-random-q8_0.gguf")
  mkdir -p "$out"
  for t in $types; do
    f=$out/tinyllama-$t.gguf
    if [ ! -s "$f" ]; then
      echo "writing $f" >&2
      local mix=(--embd-type "$t" --output-type q8_0)
      case $t in q4_k_m | q*_k) mix=() ;; esac # synth's K defaults: embedding as the layers, Q6_K output
      "$sp" synth -o "$f.tmp" --shape tinyllama-1.1b --type "$t" "${mix[@]}" "${vocab[@]}" ||
        return 1
      mv "$f.tmp" "$f"
    fi
  done
}
