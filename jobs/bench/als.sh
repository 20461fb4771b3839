#!/usr/bin/env bash
# Weighted ALS next to implicit (../shared/anchors/als_reference.py) on the same interactions, one side after the
# other (never at the same time), ROUNDS rounds alternating which side goes first; prints every figure line, then
# the ratios of the best seconds per iteration (ours / implicit: below 1 is faster; the target is ≤ 0.8 on set 2).
#   1. ML-100k item-stratified train file, unweighted, 15 iterations.
#   2. The generated 1 M-user set (homefeed-batch generate --users 1000000 --videos 200000 --seed 1, 20 M interaction
#      rows; engagement rows only, by jobs/bench/als-input.sh), weighted, alpha 1, ITERS iterations.
#   Both: 64 factors, λ 0.05, 3 CG steps, 2 threads. Ours twice: CG on every row (--no-direct, implicit's algorithm)
#   and the default (short rows solved exactly when that is cheaper than 3 CG steps).
#   3. Fold-in of 1 M synthetic users × 20 entries against set 2's video factors (ours only).
#   usage: jobs/bench/als.sh [WORK_DIR=/tmp/homefeed-bench] [ROUNDS=3] [ITERS=5]
# Portable build unless HOMEFEED_TARGET_CPU is set (HOMEFEED_TARGET_CPU=haswell jobs/bench/als.sh: AVX2/FMA);
# HOMEFEED_BIN=DIR uses the binaries in DIR instead of building. Needs ../shared/anchors/setup.sh (implicit).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0; }
W=${1:-/tmp/homefeed-bench}; ROUNDS=${2:-3}; ITERS=${3:-5}
PY=${ANCHORS_VENV:-/tmp/homefeed-anchors-venv}/bin/python
REF=$here/../shared/anchors/als_reference.py
ML=$here/../shared/data/quality_runs/ml100k/item_stratified/train.tsv
[ -x "$PY" ] || bash "$here/../shared/anchors/setup.sh" >/dev/null
if [ -n "${HOMEFEED_BIN:-}" ]; then BIN=$HOMEFEED_BIN
else cd "$here"; swift build -c release >/dev/null; BIN=$(swift build -c release --show-bin-path); fi
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | xargs), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), HOMEFEED_TARGET_CPU=${HOMEFEED_TARGET_CPU:-portable}"
mkdir -p "$W"
if [ ! -f "$W/als20m.tsv" ]; then
  [ -f "$W/data1m/interactions.csv" ] || "$BIN/homefeed-batch" generate --out "$W/data1m" --users 1000000 --videos 200000 --seed 1 --quiet
  bash "$here/jobs/bench/als-input.sh" "$W/data1m" "$W/als20m.tsv"
fi
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
min() { sort -g | head -1; }
best() { while read -r l; do kv "$l" seconds_per_iteration; done <"$1" | min; }
ratios=""

# run NAME FILE ITERATIONS REPEAT OURS_ARGS REF_ARGS: ROUNDS alternating rounds, then one ratio line per variant.
run() {
  local name=$1 file=$2 iters=$3 repeat=$4 ours=$5 ref=$6
  : >"$W/als-$name-ref.txt"; : >"$W/als-$name-cg.txt"; : >"$W/als-$name-direct.txt"
  ref_side() { "$PY" "$REF" "$file" --factors 64 --iterations "$iters" --regularization 0.05 --alpha 1 --threads 2 --repeat "$repeat" $ref | tail -1 | tee -a "$W/als-$name-ref.txt"; }
  our_side() {
    "$BIN/homefeed-bench" als --file "$file" --factors 64 --iterations "$iters" --regularization 0.05 --alpha 1 --cg 3 --threads 2 --repeat "$repeat" --no-direct $ours | tail -1 | tee -a "$W/als-$name-cg.txt"
    "$BIN/homefeed-bench" als --file "$file" --factors 64 --iterations "$iters" --regularization 0.05 --alpha 1 --cg 3 --threads 2 --repeat "$repeat" $ours | tail -1 | tee -a "$W/als-$name-direct.txt"
  }
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then ref_side; our_side; else our_side; ref_side; fi
  done
  local i c d
  i=$(best "$W/als-$name-ref.txt"); c=$(best "$W/als-$name-cg.txt"); d=$(best "$W/als-$name-direct.txt")
  ratios+="ratio als $name: implicit ${i} s/iteration; ours CG on every row ${c} s = $(awk -v a="$c" -v b="$i" 'BEGIN { printf "%.2f", a / b }'), ours default ${d} s = $(awk -v a="$d" -v b="$i" 'BEGIN { printf "%.2f", a / b }')"$'\n'
}

# 1. ML-100k (unweighted, as docs/BENCHMARKS.md).
run ml100k "$ML" 15 3 "" "--unweighted"
# 2. The 1 M-user set (weighted: confidence = alpha × summed weight on both sides).
run gen1m "$W/als20m.tsv" "$ITERS" 1 "--weighted" ""
# 3. Fold-in, 1 M users × 20 entries, against the fitted video factors of set 2.
"$BIN/homefeed-bench" als --file "$W/als20m.tsv" --weighted --factors 64 --iterations 1 --threads 2 --repeat 1 --fold-in-users 1000000 --fold-in-entries 20 | tail -2
printf '%s' "$ratios"
