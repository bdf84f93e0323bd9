#!/usr/bin/env python3
"""The sidecar-tax benchmark behind `make bench` (method: docs/bench.md).

Same load, interleaved in rounds (each round runs every target once), against:
direct (the upstream itself), nginx reverse proxy, HAProxy, and pillion. Every proxy runs one
worker with upstream keep-alive, an access log written to a file, and adds X-Request-ID.

Per target: closed-loop requests/s (wrk -t1 -c32, keep-alive); the proxy's CPU us per request
from /proc/PID/stat over the wrk run, and that divided by the upstream nginx's own CPU per request
in the same run; added latency p50/p99/p99.9 against direct at fixed open-loop rates
(pillion bench); idle RSS after start and peak RSS (VmHWM) at the end.

Pinning (2 CPUs): the proxy under test on CPU 1; upstream, wrk and pillion bench on CPU 0.

Environment: BENCH_QUICK=1 (~2 min), BENCH_ROUNDS, PILLION_BIN (proxy, default build/pillion),
PILLION_BENCH_BIN (load generator, default PILLION_BIN), BENCH_RESULTS (default bench/RESULTS.md,
'-' for none), BENCH_KEEP=1 keeps the temp dir (logs, configs).
"""

import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from harness import free_port, wait_port  # noqa: E402
from nginx import NGINX, nginx_command, write_nginx_config  # noqa: E402

HAPROXY = os.environ.get("BENCH_HAPROXY", "/usr/sbin/haproxy")
PILLION = os.environ.get("PILLION_BIN", os.path.join(ROOT, "build", "pillion"))
PILLION_BENCH = os.environ.get("PILLION_BENCH_BIN", PILLION)
QUICK = os.environ.get("BENCH_QUICK") == "1"

if QUICK:
    ROUNDS, WRK_SECONDS, OPEN_SECONDS, WARMUP = 2, 3, 2, "500ms"
else:
    ROUNDS, WRK_SECONDS, OPEN_SECONDS, WARMUP = 5, 10, 5, "500ms"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", ROUNDS))
WRK_CONNECTIONS = 32
OPEN_RATES = [1000, 5000]
OPEN_CONNECTIONS = 32
PERCENTILES = ["p50", "p99", "p99.9"]
TARGETS = ["direct", "nginx", "haproxy", "pillion", "pillion_traced", "pillion_routes"]
LABELS = {"direct": "direct (no proxy)", "nginx": "nginx 1.22 reverse proxy",
          "haproxy": "HAProxy 2.6", "pillion": "pillion",
          "pillion_traced": "pillion + metrics server + tracing 1% exported (OTLP)",
          "pillion_routes": "pillion, 100 routes / 20 clusters, retries + breakers + outliers"}
CLK_TCK = os.sysconf("SC_CLK_TCK")

PROXY_CPU = "1"
LOAD_CPU = "0"
PIN = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


def pinned(cpu, args):
    return ["taskset", "-c", cpu, *args] if PIN else list(args)


def log(message):
    print(message, file=sys.stderr, flush=True)


class Processes:
    """Every process this script starts, ended by PID (never by name) on exit."""

    def __init__(self):
        self.procs = []

    def start(self, args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        proc = subprocess.Popen(args, stdout=stdout, stderr=stderr)
        self.procs.append(proc)
        return proc

    def stop_all(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_busy_ticks(cpu):
    """Ticks CPU `cpu` spent on anything but idle and iowait, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%s " % cpu):
                values = [int(v) for v in line.split()[1:]]
                return sum(values) - values[3] - values[4]
    return 0


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def check_request_id(port):
    """One request through the target; returns (status, X-Request-ID the upstream saw)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Seen-Request-ID")
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# The processes under test


def start_upstream(procs, work, port):
    directory = os.path.join(work, "upstream")
    # Echo the X-Request-ID a proxy added, so the script can check each proxy really adds one.
    config = write_nginx_config(directory, port,
                                extra_server_conf="add_header X-Seen-Request-ID "
                                                  "$http_x_request_id;")
    proc = procs.start(pinned(LOAD_CPU, nginx_command(directory, config)))
    wait_port(port, proc=proc)
    return proc


def start_nginx_proxy(procs, work, port, upstream_port):
    directory = os.path.join(work, "nginx")
    # buffer=: nginx's own batching of log writes, the fair match for pillion's batched writer.
    access_log = os.path.join(directory, "access.log") + " combined buffer=64k flush=1s"
    config = write_nginx_config(
        directory, port, access_log=access_log,
        extra_http_conf="upstream origin { server 127.0.0.1:%d; keepalive 64; "
                        "keepalive_requests 10000000; keepalive_timeout 300s; }" % upstream_port,
        location_conf="proxy_pass http://origin; proxy_http_version 1.1; "
                      "proxy_set_header Connection \"\"; "
                      "proxy_set_header X-Request-ID $request_id;")
    proc = procs.start(pinned(PROXY_CPU, nginx_command(directory, config)))
    wait_port(port, proc=proc)
    return proc


HAPROXY_CONFIG = """global
  nbthread 1
  maxconn 4096
  log stdout format raw local0 info
defaults
  mode http
  log global
  option httplog
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:{port}
  unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
  http-request set-header X-Request-ID %[unique-id]
  default_backend origin
backend origin
  server up 127.0.0.1:{upstream_port}
"""


def start_haproxy(procs, work, port, upstream_port):
    directory = os.path.join(work, "haproxy")
    os.makedirs(directory, exist_ok=True)
    config = os.path.join(directory, "haproxy.cfg")
    with open(config, "w") as f:
        f.write(HAPROXY_CONFIG.format(port=port, upstream_port=upstream_port))
    # `log stdout`, with stdout sent to a file: the container way to give HAProxy a log file.
    access_log = open(os.path.join(directory, "access.log"), "w")
    errors = open(os.path.join(directory, "stderr.log"), "w")
    proc = procs.start(pinned(PROXY_CPU, [HAPROXY, "-db", "-f", config]), stdout=access_log,
                       stderr=errors)
    access_log.close()
    errors.close()
    wait_port(port, proc=proc)
    return proc


def start_pillion(procs, work, port, upstream_port):
    directory = os.path.join(work, "pillion")
    os.makedirs(directory, exist_ok=True)
    admin_port = free_port()
    args = [PILLION, "proxy", "--listen", "127.0.0.1:%d" % port,
            "--upstream", "http://127.0.0.1:%d" % upstream_port, "--workers", "1",
            "--access-log", os.path.join(directory, "access.log"),
            "--admin", "127.0.0.1:%d" % admin_port]
    with open(os.path.join(directory, "stdout.log"), "w") as out, \
            open(os.path.join(directory, "stderr.log"), "w") as err:
        proc = procs.start(pinned(PROXY_CPU, args), stdout=out, stderr=err)
    wait_port(port, proc=proc, timeout=10)
    return proc


# A span collector for the traced variant: accepts every POST, so export costs what it costs.
COLLECTOR = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def start_pillion_traced(procs, work, port, upstream_port):
    """pillion as above plus what issue 4 adds on the request path: spans for 1% of requests
    exported to a collector, and a Prometheus server being available."""
    directory = os.path.join(work, "pillion_traced")
    os.makedirs(directory, exist_ok=True)
    collector_port = free_port()
    procs.start(pinned(LOAD_CPU, [sys.executable, "-c", COLLECTOR, str(collector_port)]))
    wait_port(collector_port)
    config = os.path.join(directory, "pillion.yaml")
    with open(config, "w") as f:
        f.write("\n".join([
            "workers: 1",
            "admin: { address: 127.0.0.1:%d }" % free_port(),
            "metrics: { address: 127.0.0.1:%d }" % free_port(),
            "listeners: [ { name: main, address: 127.0.0.1:%d } ]" % port,
            "routes: { default: [ { cluster: app } ] }",
            "clusters: [ { name: app, endpoints: [ \"127.0.0.1:%d\" ] } ]" % upstream_port,
            "access_log: { path: %s }" % os.path.join(directory, "access.log"),
            "tracing:",
            "  sampling: 0.01",
            "  export: { endpoint: http://127.0.0.1:%d/v1/traces }" % collector_port,
            ""]))
    with open(os.path.join(directory, "stdout.log"), "w") as out, \
            open(os.path.join(directory, "stderr.log"), "w") as err:
        proc = procs.start(pinned(PROXY_CPU, [PILLION, "proxy", "-c", config]), stdout=out,
                           stderr=err)
    wait_port(port, proc=proc, timeout=10)
    return proc


def start_pillion_routes(procs, work, port, upstream_port):
    """pillion with the route table of a real service mesh sidecar (issue 3): 100 routes over
    20 clusters, the request matching the last one (the whole table is scanned), with a retry
    policy, circuit breakers, outlier detection and least-request balancing on its cluster."""
    directory = os.path.join(work, "pillion_routes")
    os.makedirs(directory, exist_ok=True)
    lines = [
        "workers: 1",
        "admin: { address: 127.0.0.1:%d }" % free_port(),
        "listeners: [ { name: main, address: 127.0.0.1:%d } ]" % port,
        "routes:",
        "  default:",
    ]
    for i in range(99):
        match = ("{ host: \"svc-%d.example.com\", path_prefix: /api/ }" % i if i % 2
                 else "{ path_prefix: /svc-%d/, methods: [GET, POST] }" % i)
        lines.append("    - { match: %s, cluster: c%d }" % (match, i % 19))
    lines.append("    - { match: { path_prefix: / }, cluster: app, retry: { on: [connect-failure,"
                 " reset, 5xx], attempts: 2 } }")
    lines.append("clusters:")
    for i in range(19):
        lines.append("  - { name: c%d, endpoints: [ \"127.0.0.1:%d\", \"127.0.0.1:%d\" ] }"
                     % (i, 40000 + 2 * i, 40001 + 2 * i))
    lines.append("  - name: app")
    lines.append("    endpoints: [ \"127.0.0.1:%d\" ]" % upstream_port)
    lines.append("    circuit_breakers: { max_requests: 10000, max_connections: 10000 }")
    lines.append("    outlier_detection: { consecutive_failures: 5 }")
    lines.append("access_log: { path: %s }" % os.path.join(directory, "access.log"))
    config = os.path.join(directory, "pillion.yaml")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(directory, "stdout.log"), "w") as out, \
            open(os.path.join(directory, "stderr.log"), "w") as err:
        proc = procs.start(pinned(PROXY_CPU, [PILLION, "proxy", "-c", config]), stdout=out,
                           stderr=err)
    wait_port(port, proc=proc, timeout=10)
    return proc


# ---------------------------------------------------------------------------------------------
# Measurements


def run_wrk(port, seconds):
    out = subprocess.run(
        pinned(LOAD_CPU, ["wrk", "-t1", "-c%d" % WRK_CONNECTIONS, "-d%ds" % seconds,
                          "http://127.0.0.1:%d/" % port]),
        capture_output=True, text=True, timeout=seconds + 60).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = 0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match:
        errors += int(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if match:
        errors += sum(int(g) for g in match.groups())
    return requests, rate, errors


def closed_loop(port, proxy_pid, upstream_pid, seconds):
    proxy_before, upstream_before = cpu_ticks(proxy_pid), cpu_ticks(upstream_pid)
    cpu1_before = cpu_busy_ticks(PROXY_CPU)
    wall = time.monotonic()
    requests, rate, errors = run_wrk(port, seconds)
    wall = time.monotonic() - wall
    cpu1_ticks = cpu_busy_ticks(PROXY_CPU) - cpu1_before
    proxy_ticks = cpu_ticks(proxy_pid) - proxy_before
    upstream_ticks = cpu_ticks(upstream_pid) - upstream_before
    us = 1e6 / CLK_TCK
    proxy_us = proxy_ticks * us / max(requests, 1)
    upstream_us = upstream_ticks * us / max(requests, 1)
    return {"rps": rate, "requests": requests, "errors": errors, "cpu_us": proxy_us,
            "upstream_cpu_us": upstream_us,
            # Near 100%: the proxy's CPU was the bottleneck; well below: something else was.
            "busy_pct": 100.0 * proxy_ticks / CLK_TCK / wall,
            # Other processes on the proxy's CPU: anything above a few % makes req/s and the
            # latency tail measure the scheduler, not the proxy (the CPU ratio suffers least).
            "others_on_proxy_cpu_pct": max(0.0, 100.0 * (cpu1_ticks - proxy_ticks) / CLK_TCK
                                           / wall) if PIN and proxy_pid != upstream_pid else None,
            "ratio": proxy_us / upstream_us if upstream_us > 0 else None}


def open_loop(port, rate):
    args = pinned(LOAD_CPU, [PILLION_BENCH, "bench", "http://127.0.0.1:%d/" % port,
                             "--rate", str(rate), "--connections", str(OPEN_CONNECTIONS),
                             "--duration", "%ds" % OPEN_SECONDS, "--warmup", WARMUP, "--json"])
    result = subprocess.run(args, capture_output=True, text=True, timeout=OPEN_SECONDS + 60)
    if result.returncode not in (0, 1):
        raise RuntimeError("pillion bench failed: %s" % result.stderr.strip())
    target = json.loads(result.stdout)["targets"][0]
    return {"latency_us": target["latency_us"], "errors": target["errors"]["total"],
            "achieved": target["achieved_rate"]}


# ---------------------------------------------------------------------------------------------
# Aggregation and report


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=1, suffix=""):
    if value is None:
        return "n/a"
    return ("%." + str(digits) + "f%s") % (value, suffix)


def fmt_signed(value):
    return "n/a" if value is None else "%+.0f" % value


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def summarize(rounds, alive, rss):
    """Medians over rounds of every metric, per target. Added latency is computed within a round
    (target minus direct, measured minutes apart at most) before taking the median."""
    summary = {}
    for name in TARGETS:
        if name not in alive:
            summary[name] = None
            continue
        per_round = [r[name] for r in rounds if name in r]
        s = {
            "rps": median([r["closed"]["rps"] for r in per_round]),
            "cpu_us": median([r["closed"]["cpu_us"] for r in per_round]),
            "ratio": median([r["closed"]["ratio"] for r in per_round]),
            "upstream_cpu_us": median([r["closed"]["upstream_cpu_us"] for r in per_round]),
            "busy_pct": median([r["closed"]["busy_pct"] for r in per_round]),
            "errors": sum(r["closed"]["errors"] + sum(r["open"][str(rate)]["errors"]
                                                      for rate in OPEN_RATES)
                          for r in per_round),
            "idle_rss_kib": rss[name]["idle"],
            "peak_rss_kib": rss[name]["peak"],
        }
        for rate in OPEN_RATES:
            for p in PERCENTILES:
                s["lat_%d_%s" % (rate, p)] = median(
                    [r[name]["open"][str(rate)]["latency_us"][p] for r in rounds if name in r])
                s["added_%d_%s" % (rate, p)] = median(
                    [r[name]["open"][str(rate)]["latency_us"][p]
                     - r["direct"]["open"][str(rate)]["latency_us"][p]
                     for r in rounds if name in r and "direct" in r])
        summary[name] = s
    return summary


def markdown(summary):
    lines = []
    added_header = " | ".join("added %s @%dk/s (µs)" % ("/".join(PERCENTILES), rate // 1000)
                              for rate in OPEN_RATES)
    lines.append("| target | req/s closed loop | CPU busy | CPU µs/req | ÷ upstream | %s "
                 "| idle RSS MiB | peak RSS MiB | errors |" % added_header)
    lines.append("|" + " --- |" * (9 + len(OPEN_RATES) - 1))
    for name in TARGETS:
        s = summary[name]
        if s is None:
            lines.append("| %s | n/a |%s" % (LABELS[name], " n/a |" * (6 + len(OPEN_RATES))))
            continue
        added = []
        for rate in OPEN_RATES:
            if name == "direct":
                added.append("(" + " / ".join(fmt(s["lat_%d_%s" % (rate, p)], 0)
                                              for p in PERCENTILES) + " absolute)")
            else:
                added.append(" / ".join(fmt_signed(s["added_%d_%s" % (rate, p)])
                                        for p in PERCENTILES))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
            LABELS[name], fmt(s["rps"], 0), fmt(s["busy_pct"], 0, "%"), fmt(s["cpu_us"], 1),
            fmt(s["ratio"], 2),
            " | ".join(added), fmt(kib_to_mib(s["idle_rss_kib"]), 1),
            fmt(kib_to_mib(s["peak_rss_kib"]), 1), s["errors"]))
    lines.append("")
    # Ratios: how each proxy compares with the two established ones, metric by metric.
    columns = [("haproxy", "nginx"), ("pillion", "nginx"), ("pillion", "haproxy"),
               ("pillion_traced", "pillion"), ("pillion_routes", "pillion")]
    lines.append("| metric (lower is better unless noted) | "
                 + " | ".join("%s ÷ %s" % (a, b) for a, b in columns) + " |")
    lines.append("|" + " --- |" * (1 + len(columns)))
    metrics = [("req/s closed loop (higher is better)", "rps"),
               ("CPU per request, ÷ upstream (steady ratio)", "ratio"),
               ("CPU µs per request (raw)", "cpu_us")]
    for rate in OPEN_RATES:
        for p in PERCENTILES:
            metrics.append(("added latency %s @%d/s" % (p, rate), "added_%d_%s" % (rate, p)))
    metrics += [("idle RSS", "idle_rss_kib"), ("peak RSS", "peak_rss_kib")]
    for title, key in metrics:
        cells = []
        for a, b in columns:
            sa, sb = summary[a], summary[b]
            cells.append(fmt(ratio(sa[key] if sa else None, sb[key] if sb else None), 2))
        lines.append("| %s | %s |" % (title, " | ".join(cells)))
    return "\n".join(lines) + "\n"


def contention_note(rounds):
    shares = [entry["closed"]["others_on_proxy_cpu_pct"] for r in rounds for entry in r.values()
              if entry["closed"].get("others_on_proxy_cpu_pct") is not None]
    if not shares:
        return ""
    worst = max(shares)
    verdict = ("clean" if worst < 5 else
               "NOT clean: other work shared the proxy's CPU; rerun on an idle machine")
    return ("\nOther processes on the proxy's CPU during closed-loop runs: median %.0f%%, worst "
            "%.0f%% (%s).\n" % (statistics.median(shares), worst, verdict))


def kib_to_mib(kib):
    return None if kib is None else kib / 1024.0


def version(args):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "n/a"


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = status_mem_total()
    return "%s, %d CPUs, %s, Linux %s" % (model, os.cpu_count() or 0, mem, platform.release())


def status_mem_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return "%.0f GiB RAM" % (int(line.split()[1]) / 1024 / 1024)
    return "? RAM"


def write_results(path, table, rounds, started, elapsed, load_before):
    versions = [version([NGINX, "-v"]), version([HAPROXY, "-v"]), version(["wrk", "-v"]),
                version([PILLION, "--version"])]
    # Keep the first words of each banner: "nginx version: nginx/1.22.1" -> "nginx/1.22.1".
    versions = [re.sub(r"^nginx version: ", "", v) for v in versions]
    versions = [re.sub(r" - https?://\S+$", "", re.sub(r" Copyright.*$", "", v))
                for v in versions]
    quick = " with `BENCH_QUICK=1` (a short run: indicative only)" if QUICK else ""
    pinning = ("proxy under test on CPU %s; upstream nginx, wrk and pillion bench on CPU %s"
               % (PROXY_CPU, LOAD_CPU) if PIN else "none (fewer than 2 CPUs)")
    rates = " and ".join("{:,}".format(r) for r in OPEN_RATES)
    text = f"""## Sidecar tax: direct vs nginx vs HAProxy vs pillion

Produced by `make bench`{quick}. Method: [docs/bench.md](../docs/bench.md).

- Date: {started.strftime("%Y-%m-%d %H:%M UTC")}; the run took {elapsed:.0f} s.
- Machine: {machine()}. Load average before the run: {load_before:.2f} (well above 0 means other work shared the CPUs; see the contention line below the tables).
- Software: {"; ".join(versions)}.
- Pinning: {pinning}.
- {ROUNDS} interleaved rounds. Per round and target: `wrk -t1 -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s` (keep-alive), then `pillion bench` open loop at {rates} req/s, {OPEN_CONNECTIONS} connections, {WARMUP} warmup + {OPEN_SECONDS} s measured. Figures are medians over rounds; added latency is the target minus direct within each round, then the median.
- Every proxy: one worker/thread, upstream keep-alive, access log to a file, adds X-Request-ID. Upstream: one nginx process, 400-byte body.

{table}
*CPU busy*: the proxy's CPU time ÷ wall time during the wrk run (near 100%: the proxy was the bottleneck). *CPU µs/req*: the proxy process's utime+stime over the wrk run ÷ requests (for direct, the upstream's own). *÷ upstream*: that figure divided by the upstream nginx's CPU per request in the same run; it stays steady when the shared machine's speed drifts, so compare proxies by it. On loopback a process's CPU time includes kernel network work done for its peers, so only compare within one run.

<details><summary>per-round raw data (latency in µs)</summary>

```
{raw_lines(rounds)}
```
</details>
"""
    replace_section(path, text)


def raw_lines(rounds):
    def rounded(value):
        if isinstance(value, float):
            return round(value, 2)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value
    return "\n".join("round %d %s: %s" % (i + 1, name, json.dumps(rounded(entry)))
                     for i, r in enumerate(rounds) for name, entry in r.items())


BEGIN_MARK = "<!-- make bench: begin (generated by bench/run.py) -->"
END_MARK = "<!-- make bench: end -->"


def replace_section(path, section, begin_mark=BEGIN_MARK, end_mark=END_MARK):
    """Writes `section` between the markers in `path`, keeping what other benchmarks wrote."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmark results\n"
    block = "%s\n%s%s\n" % (begin_mark, section, end_mark)
    begin, end = text.find(begin_mark), text.find(end_mark)
    if begin >= 0 and end > begin:
        text = text[:begin] + block + text[end + len(end_mark):].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------


def main():
    for tool in (NGINX, HAPROXY, shutil.which("wrk") or "wrk", PILLION_BENCH):
        if not os.path.exists(tool):
            log("bench: missing %s" % tool)
            return 1
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="pillion-bench-")
    procs = Processes()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        upstream_port = free_port()
        upstream = start_upstream(procs, work, upstream_port)
        servers = {"direct": (upstream_port, upstream)}
        starters = {"nginx": start_nginx_proxy, "haproxy": start_haproxy,
                    "pillion": start_pillion, "pillion_traced": start_pillion_traced,
                    "pillion_routes": start_pillion_routes}
        for name, starter in starters.items():
            port = free_port()
            try:
                proc = starter(procs, work, port, upstream_port)
                status, request_id = check_request_id(port)
                if status != 200:
                    raise RuntimeError("answered %d" % status)
                if not request_id:
                    log("bench: warning: %s did not add X-Request-ID" % name)
                servers[name] = (port, proc)
            except (OSError, RuntimeError, TimeoutError, http.client.HTTPException) as e:
                log("bench: %s unavailable (%s): its column says n/a" % (name, e))
        time.sleep(0.5)
        rss = {name: {"idle": status_kib(proc.pid, "VmRSS"), "peak": None}
               for name, (port, proc) in servers.items()}
        log("bench: %d rounds of %s; pinning %s; work dir %s" % (
            ROUNDS, ", ".join(servers), "on" if PIN else "off", work))

        rounds = []
        for i in range(ROUNDS):
            result = {}
            # Rotate the order each round so no target always runs right after the same one.
            order = TARGETS[i % len(TARGETS):] + TARGETS[:i % len(TARGETS)]
            for name in order:
                if name not in servers:
                    continue
                port, proc = servers[name]
                if proc.poll() is not None:
                    log("bench: %s exited (%s)" % (name, proc.returncode))
                    continue
                try:
                    entry = {"closed": closed_loop(port, proc.pid, upstream.pid, WRK_SECONDS),
                             "open": {}}
                    for rate in OPEN_RATES:
                        entry["open"][str(rate)] = open_loop(port, rate)
                except (AttributeError, OSError, RuntimeError, ValueError,
                        subprocess.TimeoutExpired) as e:
                    # wrk found nothing to parse, the generator failed, or the target died.
                    log("bench: round %d %s failed: %s" % (i + 1, name, e))
                    continue
                result[name] = entry
                others = entry["closed"]["others_on_proxy_cpu_pct"]
                log("bench: round %d/%d %-8s %8.0f req/s  cpu %.1f us/req (x%.2f, busy %.0f%%, "
                    "others %s)  p50@1k %.0f us  p99@5k %.0f us" % (
                        i + 1, ROUNDS, name, entry["closed"]["rps"], entry["closed"]["cpu_us"],
                        entry["closed"]["ratio"] or 0, entry["closed"]["busy_pct"],
                        "-" if others is None else "%.0f%%" % others,
                        entry["open"][str(OPEN_RATES[0])]["latency_us"]["p50"],
                        entry["open"][str(OPEN_RATES[-1])]["latency_us"]["p99"]))
            rounds.append(result)
        alive = set()
        for name, (port, proc) in servers.items():
            if proc.poll() is None:
                rss[name]["peak"] = status_kib(proc.pid, "VmHWM")
                alive.add(name)
        summary = summarize(rounds, alive, rss)
        table = markdown(summary) + contention_note(rounds)
        print(table)
        destination = os.environ.get("BENCH_RESULTS", os.path.join(ROOT, "bench", "RESULTS.md"))
        if destination != "-":
            write_results(destination, table, rounds, started, time.monotonic() - t0,
                          load_before)
            log("bench: wrote %s" % destination)
        return 0
    except KeyboardInterrupt:
        log("bench: interrupted")
        return 130
    finally:
        procs.stop_all()
        if os.environ.get("BENCH_KEEP") == "1":
            log("bench: kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main_with_transparent():
    """The explicit-mode comparison, then (BENCH_TRANSPARENT=0 skips it) the transparent-mode
    one: two sidecars in network namespaces, bench/transparent.py, which needs root."""
    status = main()
    if status == 0 and os.environ.get("BENCH_TRANSPARENT", "1") != "0":
        import transparent
        status = transparent.main()
    return status


if __name__ == "__main__":
    sys.exit(main_with_transparent())
