# models.sh - sourced by engine.sh and prefetch.sh: writes (once) the two
# TinyLlama-1.1B-shape random-weight models the engine benchmarks use.
# Q4_0 keeps a Q8_0 output matrix, as llama.cpp's Q4_0 files do. The
# vocabulary comes from the shared tiny-random model when it is there
# (32000 SentencePiece tokens, like TinyLlama), else synth's byte
# vocabulary padded to 32000.
# Usage: write_tinyllama_models SHARDPIPE SHARED_DIR OUT_DIR
write_tinyllama_models() {
  local sp=$1 shared=$2 out=$3 t f
  local vocab=(--vocab 32000)
  [ -r "$shared/models/tiny-random-q8_0.gguf" ] && vocab=(--vocab-from "$shared/models/tiny-random-q8_0.gguf")
  mkdir -p "$out"
  for t in q8_0 q4_0; do
    f=$out/tinyllama-$t.gguf
    if [ ! -s "$f" ]; then
      echo "writing $f" >&2
      "$sp" synth -o "$f.tmp" --shape tinyllama-1.1b --type "$t" --embd-type "$t" --output-type q8_0 "${vocab[@]}" ||
        return 1
      mv "$f.tmp" "$f"
    fi
  done
}
