#!/usr/bin/env bash
# The README's first command ends here: start a demo app and `pillion proxy` in front of it,
# send a few requests through the sidecar, then show the access log and the proxy's stats.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pillion="${PILLION_BIN:-$root/build/pillion}"
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
app_port=$(free_port)
proxy_port=$(free_port)
admin_port=$(free_port)
down_port=$(free_port)
down_admin_port=$(free_port)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

python3 "$root/scripts/demo_upstream.py" "$app_port" & pids+=($!)
wait_port "$app_port"
"$pillion" proxy --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$app_port" \
  --admin "127.0.0.1:$admin_port" --access-log "$work/access.log" --workers 2 \
  2>"$work/proxy.log" & pids+=($!)
wait_port "$proxy_port"

say "the app asks its sidecar (127.0.0.1:$proxy_port) instead of the service directly"
curl -sS -i "http://127.0.0.1:$proxy_port/orders/42" -H 'Host: orders'
say "a caller that already has a request id keeps it end to end"
curl -sS -o /dev/null -D - "http://127.0.0.1:$proxy_port/orders/43" -H 'X-Request-ID: demo-req-1' | grep -i x-request-id
say "a POST with a body"
curl -sS "http://127.0.0.1:$proxy_port/orders" -H 'Content-Type: application/json' -d '{"item":"book"}'
say "the app failing is passed through as it is"
curl -sS -o /dev/null -w 'status %{http_code}\n' "http://127.0.0.1:$proxy_port/fail"
say "an upstream that is down: the sidecar answers 502 with the reason and the request id"
"$pillion" proxy --listen "127.0.0.1:$down_port" --upstream http://127.0.0.1:1 \
  --admin "127.0.0.1:$down_admin_port" \
  --access-log "$work/access-down.log" --workers 1 2>/dev/null & pids+=($!)
wait_port "$down_port"
curl -sS -i "http://127.0.0.1:$down_port/anything"
sleep 0.3
say "access log (one line per request, written off the data path)"
cat "$work/access.log" "$work/access-down.log"
say "stats (curl http://127.0.0.1:$admin_port/stats)"
curl -sS "http://127.0.0.1:$admin_port/stats" | grep -E '^(downstream_rq_total|downstream_rq_[245]xx|upstream_cx_total|upstream_rq_pool_reused|downstream_cx_total):'
say "Prometheus (curl http://127.0.0.1:$admin_port/stats/prometheus), first lines"
curl -sS "http://127.0.0.1:$admin_port/stats/prometheus" | awk '!/^#/ && n++ < 8'  # not head: it reads all, no SIGPIPE under pipefail
say "demo done: try it yourself with $pillion proxy --upstream http://127.0.0.1:PORT"
