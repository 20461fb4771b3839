#!/usr/bin/env bash
# Every figure of docs/BENCHMARKS.md in one run (release build, one benchmark at a time, references in the same run).
#   usage: jobs/bench/all.sh [WORK_DIR=/tmp/homefeed-bench] [--skip-http]
# Needs ../shared/anchors/setup.sh (pandas, redis) and wrk; prints `bench …` / reference figure lines.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0; }
W=${1:-/tmp/homefeed-bench}; SKIP_HTTP=0; [[ "${2:-}" == "--skip-http" ]] && SKIP_HTTP=1
PY=${ANCHORS_VENV:-/tmp/homefeed-anchors-venv}/bin/python
[ -x "$PY" ] || bash "$here/../shared/anchors/setup.sh" >/dev/null
cd "$here"; swift build -c release >/dev/null; BIN=$(swift build -c release --show-bin-path)
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | xargs), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$W"
# 1. Data: 100 k users.
[ -f "$W/data100k/interactions.csv" ] || "$BIN/homefeed-batch" generate --out "$W/data100k" --users 100000 --videos 20000 --seed 1 --quiet
# 2. CSV parse rate, next to pandas on the same file.
"$BIN/homefeed-bench" csv --data "$W/data100k" | tail -1
"$PY" jobs/bench/pandas_read.py "$W/data100k" 3 | tail -1
# 3. Refresh of 100 k users with the popularity baseline (models off: a store without a model would otherwise train
#    MF and the two-tower model first, which the train and 1 M-user figures measure): wall time and peak RSS.
rm -rf "$W/store100k"
printf '[mf]\nenabled = false\n[two_tower]\nenabled = false\n' >"$W/baseline.toml"
/usr/bin/time -v "$BIN/homefeed-batch" run --data "$W/data100k" --store "$W/store100k" --active-days 0 --config "$W/baseline.toml" --quiet 2>"$W/time.txt" | tail -1
echo "bench refresh100k wall_s=$(awk -F': ' '/Elapsed/ {split($2,a,":"); print (length(a)==3 ? a[1]*3600+a[2]*60+a[3] : a[1]*60+a[2])}' "$W/time.txt") peak_rss_mb=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$W/time.txt")"
# 4. Store write vs a bare SstFileWriter of the same bytes (on tmpfs: the disk's writeback noise hides the CPU cost).
"$BIN/homefeed-bench" store-write --dir /dev/shm/homefeed-bench-sst --users 200000 | tail -1; rm -rf /dev/shm/homefeed-bench-sst
# 5. In-process request cost on a 1 M-user version (random users, warm page cache).
[ -f "$W/store1m/CURRENT" ] || "$BIN/homefeed-bench" synth-store --store "$W/store1m" --users 1000000 --videos 200000 >/dev/null
cat "$W"/store1m/versions/*/*.sst >/dev/null
"$BIN/homefeed-bench" lookup --store "$W/store1m" --users 1000000 --requests 300000 --limit 20 | tail -1
"$BIN/homefeed-bench" lookup --store "$W/store1m" --users 1000000 --requests 300000 --limit 100 | tail -1
# 6. HTTP on loopback next to Redis, pinned, 5 alternating rounds.
[ $SKIP_HTTP = 1 ] || jobs/bench/http-vs-redis.sh "$W/store1m" 5 1000000 10 | tail -6
# 7. The HTTP server alone (GET /healthz, same pinning): what the request handler adds on top of it.
if [ $SKIP_HTTP = 0 ]; then
  taskset -c 0 "$BIN/homefeed-lookupd" --store "$W/store1m" --listen 127.0.0.1:18191 --threads 1 >/dev/null 2>&1 & pid=$!
  for _ in $(seq 200); do curl -sf http://127.0.0.1:18191/readyz >/dev/null 2>&1 && break; sleep 0.05; done
  out=$(taskset -c 1 wrk -t1 -c50 -d10s --latency http://127.0.0.1:18191/healthz); kill $pid; wait $pid 2>/dev/null || true
  echo "bench http-healthz rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out") p50=$(awk '$1=="50%" {print $2}' <<<"$out") p99=$(awk '$1=="99%" {print $2}' <<<"$out")"
fi
# 8. Top-K retrieval next to faiss: exact (random data) and IVF (clustered stand-in for MF factors).
HOMEFEED_BIN="$BIN" jobs/bench/topk.sh "$W/topk" | tail -7
