#!/bin/sh
# `make bench`: the sidecar-tax benchmark (direct vs nginx vs HAProxy vs pillion).
# BENCH_QUICK=1 for a ~2 minute run. Method and knobs: docs/bench.md.
set -e
cd "$(dirname "$0")/.."
exec python3 bench/run.py "$@"
