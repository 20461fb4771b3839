#!/usr/bin/env bash
# HTTP serving next to Redis, the way docs/BENCHMARKS.md reports it: homefeed-lookupd pinned to CPU 0 with one
# worker and wrk pinned to CPU 1 (50 connections, random users), then redis_reference.sh pinned the same way with
# the same connection count and key count, alternating for ROUNDS rounds; prints each round and the medians.
#   usage: jobs/bench/http-vs-redis.sh STORE_DIR [ROUNDS=5] [USERS=1000000] [SECONDS=10]
# Needs: a release build, wrk, and ../shared/anchors (setup.sh installs redis).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
[[ "${1:-}" == "" || "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0; }
STORE=$1 ROUNDS=${2:-5} USERS=${3:-1000000} SECS=${4:-10}
BIN=$(cd "$here" && swift build -c release --show-bin-path)
ANCHORS=$here/../shared/anchors
PORT=18181
body=0 failed=0
medians() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: >/tmp/hf-http-rounds.txt
for r in $(seq "$ROUNDS"); do
  taskset -c 0 "$BIN/homefeed-lookupd" --store "$STORE" --listen 127.0.0.1:$PORT --threads 1 >/tmp/hf-lookupd.log 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  body=$(curl -s "http://127.0.0.1:$PORT/v1/users/u0000001/recommendations?limit=20" | wc -c)
  # Warm the block cache with one pass, then measure.
  HOMEFEED_USERS=$USERS taskset -c 1 wrk -t1 -c50 -d3s -s "$here/jobs/bench/random-user.lua" "http://127.0.0.1:$PORT" >/dev/null
  out=$(HOMEFEED_USERS=$USERS taskset -c 1 wrk -t1 -c50 -d"${SECS}s" --latency -s "$here/jobs/bench/random-user.lua" "http://127.0.0.1:$PORT")
  kill $pid; wait $pid 2>/dev/null || true
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  tous() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else {sub(/s$/,"",v); print v*1000} }'; }
  p50=$(tous "$p50"); p99=$(tous "$p99")
  red=$(bash "$ANCHORS/redis_reference.sh" --keys "$USERS" --value-bytes "$body" --clients 50 --requests 300000 \
        --server-cpu 0 --client-cpu 1 | tail -1)
  rrps=$(sed 's/.*rps=\([^ ]*\).*/\1/' <<<"$red"); rp50=$(sed 's/.*p50_ms=\([^ ]*\).*/\1/' <<<"$red"); rp99=$(sed 's/.*p99_ms=\([^ ]*\).*/\1/' <<<"$red")
  echo "round $r: homefeed rps=$rps p50_ms=$p50 p99_ms=$p99 ${errs:+($errs)} | redis rps=$rrps p50_ms=$rp50 p99_ms=$rp99 (value $body B)"
  echo "$rps $p50 $p99 $rrps $rp50 $rp99" >>/tmp/hf-http-rounds.txt
  [ -z "$errs" ] || failed=1
done
m() { awk -v c="$1" '{print $c}' /tmp/hf-http-rounds.txt | medians; }
hr=$(m 1) hp50=$(m 2) hp99=$(m 3) rr=$(m 4) rp50=$(m 5) rp99=$(m 6)
echo "bench http homefeed_rps=$hr homefeed_p50_ms=$hp50 homefeed_p99_ms=$hp99 redis_rps=$rr redis_p50_ms=$rp50 redis_p99_ms=$rp99 rps_ratio=$(awk -v a="$hr" -v b="$rr" 'BEGIN{printf "%.3f", a/b}') p99_ratio=$(awk -v a="$hp99" -v b="$rp99" 'BEGIN{printf "%.3f", a/b}') rounds=$ROUNDS body_bytes=$body"
[ "$failed" = 0 ] || { echo "http-vs-redis: some rounds had non-2xx responses or socket errors (see above)" >&2; exit 1; }
