#!/usr/bin/env bash
# prefetch.sh - this board's best prefetch distance for the int8 kernels
# (SHARDPIPE_PREFETCH, src/kernels/dot.h): decode tok/s of `shardpipe
# generate` at each distance. Every round runs each model at each distance
# once, in turn, so the drift of a shared machine falls on all distances
# alike; the table gives the median (min-max) over the rounds, and the
# distance with the best median per model. The distance changes speed only,
# never the bits. Before the rounds, one untimed run per model without
# SHARDPIPE_PREFETCH warms the page cache and reads the CPU's default.
#   benchmarks/prefetch.sh                       # engine.sh's TinyLlama models, 1 thread, 3 rounds
#   THREADS=2 REPS=5 GEN=64 DISTANCES="0 3072 7168" MODELS="a.gguf b.gguf" benchmarks/prefetch.sh
# Writes benchmarks/results/prefetch-<date>.json (RESULTS=dir to change) and
# prints a Markdown table. Results are in benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
THREADS=${THREADS:-1}
REPS=${REPS:-3}
GEN=${GEN:-64}
DISTANCES=${DISTANCES:-0 1024 2048 3072 5120 7168 10240 14336}
SHARED=${SP_SHARED:-../shared}
RESULTS=${RESULTS:-benchmarks/results}
SP=$BUILD/shardpipe

die() { echo "prefetch.sh: $*" >&2; exit 2; }
for v in "$THREADS" "$REPS" "$GEN"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || die "THREADS, REPS and GEN must be positive integers (got '$v')"
done
for d in $DISTANCES; do
  [[ $d =~ ^[0-9]+$ ]] && [ "$d" -le 1048576 ] || die "DISTANCES must be byte counts in 0..1048576 (got '$d')"
done

if [ ! -x "$SP" ]; then
  echo "prefetch.sh: building $SP" >&2
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target shardpipe >/dev/null
fi
if [ -z "${MODELS:-}" ]; then
  . benchmarks/models.sh
  write_tinyllama_models "$SP" "$SHARED" benchmarks/out
  MODELS="benchmarks/out/tinyllama-q4_0.gguf benchmarks/out/tinyllama-q8_0.gguf"
fi
for m in $MODELS; do [ -r "$m" ] || die "cannot read model $m (MODELS is a space-separated list of GGUF files)"; done
mkdir -p "$RESULTS"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One decode; prints "tok/s distance" from generate's summary line.
decode() { # model [distance]
  local env=()
  [ $# -gt 1 ] && env=(SHARDPIPE_PREFETCH="$2")
  if ! env "${env[@]}" "$SP" generate -m "$1" -p "once upon a time" -n "$GEN" --ignore-eos \
       --threads "$THREADS" >/dev/null 2>"$tmp/err"; then
    echo "prefetch.sh: generate failed on $1: $(tail -3 "$tmp/err")" >&2
    exit 1
  fi
  local line
  line=$(grep '^prompt:' "$tmp/err" | tail -1)
  local tps pf
  tps=$(sed -n 's/.*decode: [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p' <<<"$line")
  pf=$(sed -n 's/.*prefetch \([0-9]*\) B.*/\1/p' <<<"$line")
  [ -n "$tps" ] && [ -n "$pf" ] || { echo "prefetch.sh: no decode figure in: $line" >&2; exit 1; }
  echo "$tps $pf"
}

kernels=
for m in $MODELS; do
  echo "prefetch.sh: warm-up, $m" >&2
  out=$(decode "$m")
  default=${out#* }
  kernels=$(sed -n 's/.*| kernels \([^,]*\),.*/\1/p' "$tmp/err" | tail -1)
done
for r in $(seq 1 "$REPS"); do
  for m in $MODELS; do
    echo "prefetch.sh: round $r/$REPS, $m" >&2
    for d in $DISTANCES; do
      out=$(decode "$m" "$d")
      read -r tps pf <<<"$out"
      [ "$pf" = "$d" ] || { echo "prefetch.sh: asked for $d bytes, generate used $pf" >&2; exit 1; }
      echo "$m $d $tps" >>"$tmp/runs"
    done
  done
done

# Per model and distance: median, min, max and the runs, in the order asked.
summary() { # model distance -> "median min max run,run,..."
  awk -v m="$1" -v d="$2" '$1 == m && $2 == d { print $3 }' "$tmp/runs" | sort -g |
    awk '{ v[NR] = $1 } END {
      med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      s = v[1]; for (i = 2; i <= NR; i++) s = s "," v[i]
      printf "%.2f %.2f %.2f %s\n", med, v[1], v[NR], s }'
}

stamp=$(date -u +%Y-%m-%dT%H%MZ)
json=$RESULTS/prefetch-$stamp.json
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$cpu" ] || cpu=$(uname -m)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
echo "kernels $kernels, default prefetch $default B, $THREADS thread(s), $GEN decoded tokens, median (min-max) of $REPS rounds"
echo
echo "| model | distance B | decode tok/s | vs default |"
echo "|---|--:|--:|--:|"
{
  printf '{\n"benchmark": "prefetch",\n"date": "%s",\n' "$stamp"
  printf '"command": "THREADS=%s REPS=%s GEN=%s DISTANCES=\\"%s\\" benchmarks/prefetch.sh",\n' \
    "$THREADS" "$REPS" "$GEN" "$DISTANCES"
  printf '"environment": {"git_commit": "%s", "cpu": "%s", "cores": %s, "kernels": "%s", "default_prefetch_bytes": %s},\n' \
    "$commit" "${cpu//\"/}" "$(nproc)" "$kernels" "$default"
  printf '"settings": {"threads": %s, "gen_tokens": %s, "rounds": %s},\n"results": [\n' "$THREADS" "$GEN" "$REPS"
} >"$json"
first=1
best_lines=
for m in $MODELS; do
  ref=$(summary "$m" "$default" | cut -d' ' -f1)
  best_d= best_v=0
  for d in $DISTANCES; do
    read -r med lo hi runs < <(summary "$m" "$d")
    rel=
    [ -n "$ref" ] && rel=$(awk -v a="$med" -v b="$ref" 'BEGIN { printf "%+.1f%%", (a / b - 1) * 100 }')
    echo "| $(basename "$m") | $d | $med ($lo-$hi) | ${rel:-n/a} |"
    if awk -v a="$med" -v b="$best_v" 'BEGIN { exit !(a > b) }'; then best_d=$d best_v=$med; fi
    [ $first -eq 1 ] || printf ',\n' >>"$json"
    first=0
    printf '  {"model": "%s", "distance_bytes": %s, "decode_tok_s": [%s], "median": %s}' "$m" "$d" "$runs" "$med" >>"$json"
  done
  best_lines="$best_lines$(basename "$m"): best $best_d B ($best_v tok/s)"$'\n'
done
printf '\n]\n}\n' >>"$json"
echo
printf '%s' "$best_lines"
[ -n "$(summary "${MODELS%% *}" "$default" | cut -d' ' -f1)" ] ||
  echo "(the default, $default B, was not among DISTANCES: no 'vs default' column)"
echo "written: $json"
