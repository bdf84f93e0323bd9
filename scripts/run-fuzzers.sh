#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR for SECONDS each, starting from the seed corpus
# (copied, so the committed corpus is not modified). Fails on the first crash, leak or timeout.
set -euo pipefail
build_dir=${1:?build dir}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
found=0
for target in "$build_dir"/tests/fuzz/*_fuzz; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  found=$((found + 1))
  mkdir -p "$work/$name"
  cp -r "$root/tests/fuzz/corpus/$name/." "$work/$name/" 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s"
  "$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/$name" 2>"$work/$name.log" || {
    tail -50 "$work/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
  grep -E 'stat::number_of_executed_units|Done' "$work/$name.log" | tail -2
done
echo "fuzz: $found passed, 0 failed"
[ "$found" -gt 0 ]
