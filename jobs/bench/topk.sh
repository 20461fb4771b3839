#!/usr/bin/env bash
# Top-K retrieval next to faiss on the same raw f32 files, one side after the other (never at the same time),
# ROUNDS rounds alternating which side goes first; prints every figure line, then the ratios of the best times.
#   1. exact: 1000 queries x 100 000 items x 64 dims, k=500, uniform random (topk_reference.py --write-random):
#      faiss IndexFlatIP vs ExactIndex.
#   2. IVF: clustered synthetic embeddings (homefeed-bench topk --write-clustered: 1000 centres in 32 genres,
#      log-normal norms; not real MF factors), NLIST cells, k=100 and k=500, each NPROBE: faiss IndexIVFFlat vs
#      IVFIndex, recall@k of each against its own exact search.
#   usage: jobs/bench/topk.sh [WORK_DIR=/tmp/homefeed-bench] [ROUNDS=3] [NLIST=1024] [NPROBES="16 32 64"]
# The default (portable) build runs the AVX2 kernels when the CPU has AVX2 + FMA (runtime dispatch);
# HOMEFEED_KERNELS=portable runs the portable ones. HOMEFEED_BIN=DIR uses the binaries in DIR instead of building.
# Needs ../shared/anchors/setup.sh (faiss).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0; }
W=${1:-/tmp/homefeed-bench}; ROUNDS=${2:-3}; NLIST=${3:-1024}; NPROBES=${4:-"16 32 64"}
PY=${ANCHORS_VENV:-/tmp/homefeed-anchors-venv}/bin/python
REF=$here/../shared/anchors/topk_reference.py
[ -x "$PY" ] || bash "$here/../shared/anchors/setup.sh" >/dev/null
if [ -n "${HOMEFEED_BIN:-}" ]; then BIN=$HOMEFEED_BIN
else cd "$here"; swift build -c release >/dev/null; BIN=$(swift build -c release --show-bin-path); fi
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | xargs), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), HOMEFEED_TARGET_CPU=${HOMEFEED_TARGET_CPU:-portable}, HOMEFEED_KERNELS=${HOMEFEED_KERNELS:-auto}"
mkdir -p "$W"
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
min() { sort -g | head -1; }
[ -f "$W/topk.items.f32" ] || "$PY" "$REF" --queries 1000 --items 100000 --dim 64 --k 1 --repeat 1 --write-random "$W/topk" >/dev/null
[ -f "$W/clustered.items.f32" ] || "$BIN/homefeed-bench" topk --write-clustered "$W/clustered" >/dev/null

# 1. Exact.
: >"$W/exact-faiss.txt"; : >"$W/exact-ours.txt"
exact_faiss() { "$PY" "$REF" --query-file "$W/topk.queries.f32" --item-file "$W/topk.items.f32" --dim 64 --k 500 --threads 2 --repeat 5 | tail -1 | tee -a "$W/exact-faiss.txt"; }
exact_ours() { "$BIN/homefeed-bench" topk --queries "$W/topk.queries.f32" --items "$W/topk.items.f32" --dim 64 --k 500 --threads 2 --repeat 5 | tail -1 | tee -a "$W/exact-ours.txt"; }
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then exact_faiss; exact_ours; else exact_ours; exact_faiss; fi
done
f=$(while read -r l; do kv "$l" seconds; done <"$W/exact-faiss.txt" | min)
o=$(while read -r l; do kv "$l" seconds; done <"$W/exact-ours.txt" | min)
ratios="ratio topk exact k=500: faiss ${f} s / ours ${o} s = $(awk -v a="$f" -v b="$o" 'BEGIN { printf "%.2f", a / b }')x"

# 2. IVF, k=100 and k=500.
for k in 100 500; do
  : >"$W/ivf-ours-$k.txt"
  for p in $NPROBES; do : >"$W/ivf-faiss-$k-$p.txt"; done
  ivf_faiss() { for p in $NPROBES; do "$PY" "$REF" --query-file "$W/clustered.queries.f32" --item-file "$W/clustered.items.f32" --dim 64 --k "$k" --threads 2 --repeat 5 --ivf "$NLIST" --nprobe "$p" | tail -1 | tee -a "$W/ivf-faiss-$k-$p.txt"; done; }
  ivf_ours() { "$BIN/homefeed-bench" topk --queries "$W/clustered.queries.f32" --items "$W/clustered.items.f32" --dim 64 --k "$k" --threads 2 --repeat 5 --ivf "$NLIST" --nprobe "$(tr ' ' ',' <<<"$NPROBES")" | tail -1 | tee -a "$W/ivf-ours-$k.txt"; }
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then ivf_faiss; ivf_ours; else ivf_ours; ivf_faiss; fi
  done
  i=0
  for p in $NPROBES; do
    i=$((i + 1))
    fs=$(while read -r l; do kv "$l" ivf_seconds; done <"$W/ivf-faiss-$k-$p.txt" | min)
    fr=$(kv "$(tail -1 "$W/ivf-faiss-$k-$p.txt")" ivf_recall)
    os=$(while read -r l; do kv "$l" ivf_seconds | cut -d, -f$i; done <"$W/ivf-ours-$k.txt" | min)
    orc=$(kv "$(tail -1 "$W/ivf-ours-$k.txt")" ivf_recall | cut -d, -f$i)
    # Our exact / our IVF: within each run (same minute, same load), the median over the rounds.
    oe=$(while read -r l; do awk -v a="$(kv "$l" seconds)" -v b="$(kv "$l" ivf_seconds | cut -d, -f$i)" 'BEGIN { print a / b }'; done <"$W/ivf-ours-$k.txt" | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    ratios+=$'\n'"ratio topk ivf k=$k nlist=$NLIST nprobe=$p: faiss ${fs} s (recall ${fr}) / ours ${os} s (recall ${orc}) = $(awk -v a="$fs" -v b="$os" 'BEGIN { printf "%.2f", a / b }')x; ours exact / ours ivf (median of runs) = ${oe}x"
  done
done
echo "$ratios"
