#!/usr/bin/env bash
# The weighted-ALS benchmark input: interactions.csv → one TSV `user<TAB>video<TAB>weight` of the engagement rows.
#   usage: jobs/bench/als-input.sh DATA_DIR OUT.tsv
# Weights: watch 1, like 2, comment 2, share 3 (a like is worth more than a plain watch); dislikes, clicks,
# impressions and searches are left out. Repeated (user, video) rows stay separate lines: both readers (homefeed-bench
# als and als_reference.py) sum them, so a watched and liked video weighs 3.
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { usage; exit 0; }
[[ $# -eq 2 ]] || { usage >&2; exit 2; }
in="$1/interactions.csv"; out="$2"
[ -f "$in" ] || { echo "als-input: no $in" >&2; exit 1; }
# The first three columns (user_id, video_id, event) are plain ids and event names, never quoted, so splitting on
# commas is safe for them whatever the later columns hold.
LC_ALL=C awk -F',' -v OFS='\t' '
  NR == 1 { next }
  { e = tolower($3) }
  e == "watch"   { print $1, $2, 1; next }
  e == "like"    { print $1, $2, 2; next }
  e == "comment" { print $1, $2, 2; next }
  e == "share"   { print $1, $2, 3; next }
' "$in" > "$out.tmp"
mv "$out.tmp" "$out"
echo "als-input: $(wc -l < "$out") engagement rows → $out" >&2
