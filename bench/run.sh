#!/bin/sh
# `make bench`: the sidecar-tax benchmark (direct vs nginx vs HAProxy vs pillion), then the
# mutual TLS one (bench/mtls.py; BENCH_MTLS=0 skips it).
# BENCH_QUICK=1 for a short run. Method and knobs: docs/bench.md.
set -e
cd "$(dirname "$0")/.."
python3 bench/run.py "$@"
if [ "${BENCH_MTLS:-1}" != 0 ]; then
  python3 bench/mtls.py
fi
