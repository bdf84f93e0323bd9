#!/usr/bin/env bash
# Benchmark of `pillion logs`: parse + normalize + write to a file, on a log of the seed's format
# (default 1 GiB), next to `cat > /dev/null` of the same file as the physical limit.
# Usage: bench/logs/run.sh [path/to/pillion] [MiB]   (prints a Markdown table row set)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build/pillion}
mib=${2:-1024}
work=$(mktemp -d /tmp/pillion-logs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
log=$work/app.log
lines=$(python3 "$here/gen_log.py" "$log" "$mib")
bytes=$(stat -c %s "$log")
cat "$log" > /dev/null  # warm the page cache: measure CPU work, not the disk

measure() {  # runs "$@" under /usr/bin/time; prints "wall user sys maxrss_kib"
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > /dev/null 2> "$work/stderr"
  cat "$work/time"
}

read -r cat_wall cat_user cat_sys cat_rss < <(measure cat "$log")
best=""
for run in 1 2 3; do
  rm -f "$work/out.ndjson"
  read -r wall user sys rss < <(measure env -u POD_NAME -u POD_NAMESPACE -u CONTAINER_NAME \
      -u NODE_NAME "$bin" logs --path "$log" --format keyvalue --output file \
      --output-path "$work/out.ndjson" --exit-at-eof --log-level warn)
  out_lines=$(wc -l < "$work/out.ndjson")
  [ "$out_lines" -eq "$lines" ] || { echo "expected $lines records, got $out_lines" >&2; exit 1; }
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
  if [ -z "$best" ] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then
    best="$wall $user $sys $rss"; best_cpu=$cpu
  fi
done
read -r wall user sys rss <<< "$best"
out_bytes=$(stat -c %s "$work/out.ndjson")
awk -v b="$bytes" -v l="$lines" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" \
    -v cw="$cat_wall" -v cu="$cat_user" -v cs="$cat_sys" -v ob="$out_bytes" 'BEGIN {
  mib = b / 1048576; cpu = u + s; ccpu = cu + cs; if (ccpu < 0.01) ccpu = 0.01;
  printf "input: %.0f MiB, %d lines (%.1f bytes/line); output %.0f MiB of JSON\n", mib, l, b / l, ob / 1048576;
  printf "| measure | value |\n| --- | --- |\n";
  printf "| pillion logs wall time | %.2f s |\n", w;
  printf "| pillion logs CPU (user+sys) | %.2f s (%.2f + %.2f) |\n", cpu, u, s;
  printf "| throughput per core (input MiB / CPU s) | %.1f MiB/s |\n", mib / cpu;
  printf "| lines per second per core | %.2f M lines/s |\n", l / cpu / 1e6;
  printf "| wall-clock throughput | %.1f MiB/s |\n", mib / w;
  printf "| peak RSS | %.1f MiB |\n", r / 1024;
  printf "| cat > /dev/null (warm cache) | %.2f s wall, %.2f s CPU: %.0f MiB/s |\n", cw, ccpu, mib / (cw > 0.01 ? cw : 0.01);
}'
