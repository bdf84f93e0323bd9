#!/usr/bin/env bash
# Installs every Debian package the project builds, tests and benchmarks with.
# Idempotent: only missing packages are installed. Uses sudo when not root.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  libboost1.81-dev libboost-url1.81-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libnghttp2-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev zlib1g-dev libre2-dev
  python3 curl wrk nginx-light haproxy nghttp2-client iproute2 iptables procps psmisc time openssl
  libcap2-bin util-linux
  # tests/e2e/proxy/test_metrics.py: promtool checks the exposition, and a real Prometheus
  # server (started by the test on a free loopback port) scrapes and queries it.
  prometheus
  # tests/e2e/intercept: real protocols between network namespaces. The tests run their own
  # redis/postgres inside their namespaces; the host services these packages may start are
  # neither used nor touched.
  redis-server redis-tools postgresql-15 postgresql-client-15
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
