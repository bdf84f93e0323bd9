"""The command line and the admin API: --help, --version, proxy --help, --check (ok and error
cases with FILE:LINE:COL: key: message), the flag-only form with UPSTREAM_URL, --workers as seen
in /server_info, /stats and /stats/prometheus (parsed as Prometheus text; checked with promtool
when it is installed), /ready and POST /logging."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import PILLION, free_port, wait_port
from misbehaving import ProxyCase, get, start_proxy, start_upstream

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "examples",
                       "pillion.yaml")


def run(*args, env=None, timeout=10):
    return subprocess.run([PILLION, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


class Help(unittest.TestCase):
    def test_help(self):
        proc = run("--help")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("Usage", proc.stdout)
        for sub in ("proxy", "bench", "logs"):
            self.assertRegex(proc.stdout, r"\n\s+%s\s" % sub)

    def test_version(self):
        proc = run("--version")
        self.assertEqual(proc.returncode, 0)
        self.assertRegex(proc.stdout.strip(), r"^pillion \d+\.\d+\.\d+")

    def test_proxy_help_lists_every_flag(self):
        proc = run("proxy", "--help")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for flag in ("--config", "--listen", "--upstream", "--check", "--workers",
                     "--access-log", "--access-log-format", "--admin", "--log-level",
                     "UPSTREAM_URL"):
            self.assertIn(flag, proc.stdout)

    def test_no_or_unknown_subcommand_fails(self):
        for args in ((), ("frobnicate",)):
            proc = run(*args)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertTrue(proc.stderr.strip() or proc.stdout.strip())

    def test_proxy_without_config_or_upstream_says_what_is_missing(self):
        env = dict(os.environ)
        env.pop("UPSTREAM_URL", None)
        proc = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), env=env)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--upstream", proc.stderr)
        self.assertIn("UPSTREAM_URL", proc.stderr)

    def test_bad_flag_values_fail_with_a_message(self):
        cases = [
            (("--listen", "nonsense", "--upstream", "http://127.0.0.1:1"), "--listen"),
            (("--listen", "127.0.0.1:0", "--upstream", "ftp://x"), "--upstream"),
            (("--workers", "0", "--upstream", "http://127.0.0.1:1"), "--workers"),
            (("--access-log-format", "xml", "--upstream", "http://127.0.0.1:1"),
             "--access-log-format"),
        ]
        for args, word in cases:
            with self.subTest(args=args):
                proc = run("proxy", "--check", *args)
                self.assertNotEqual(proc.returncode, 0)
                self.assertIn(word, proc.stderr + proc.stdout)


    def test_bad_log_level_is_rejected(self):
        proc = run("proxy", "--check", "--log-level", "loud", "--upstream", "http://127.0.0.1:1")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("level", proc.stderr + proc.stdout)


class Check(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pillion-cli-")
        self.addCleanup(self.tmp.cleanup)

    def write(self, text):
        path = os.path.join(self.tmp.name, "c.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_example_config_checks_ok(self):
        proc = run("proxy", "--check", "-c", EXAMPLE)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("ok", proc.stdout + proc.stderr)

    def test_check_does_not_bind(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            path = self.write("admin: { address: 127.0.0.1:%d }\n"
                              "listeners: [ { name: a, address: 127.0.0.1:%d } ]\n"
                              "routes: { default: [ { cluster: c } ] }\n"
                              "clusters: [ { name: c, endpoints: [ \"127.0.0.1:1\" ] } ]\n"
                              % (port, port))
            proc = run("proxy", "--check", "-c", path)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_check_errors_name_file_line_column_and_key(self):
        base = ("listeners:\n"
                "  - { name: a, address: 127.0.0.1:7000 }\n"
                "routes:\n"
                "  default:\n"
                "    - { cluster: c, timeout: %s }\n"
                "clusters:\n"
                "  - name: c\n"
                "    endpoints: [ %s ]\n"
                "%s")
        cases = [
            (base % ("1s", "\"127.0.0.1:1\"", "    bogus: 1\n"), 9, "clusters[0].bogus",
             "unknown key"),
            (base % ("1.5s", "\"127.0.0.1:1\"", ""), 5, "routes.default[0].timeout", ""),
            (base % ("1s", "\"payments\"", ""), 8, "clusters[0].endpoints[0]", "payments"),
            (base % ("1s", "\"127.0.0.1:1\"", "timeouts: { idle: -1s }\n"), 9,
             "timeouts.idle", ""),
            (base.replace("cluster: c,", "cluster: nope,") % ("1s", "\"127.0.0.1:1\"", ""), 5,
             "routes.default[0].cluster", "nope"),
            (base % ("1s", "\"127.0.0.1:1\"", "limits: { max_request_body_bytes: 10XB }\n"), 9,
             "limits.max_request_body_bytes", ""),
        ]
        for text, line, key, word in cases:
            with self.subTest(key=key):
                path = self.write(text)
                proc = run("proxy", "--check", "-c", path)
                self.assertNotEqual(proc.returncode, 0)
                out = proc.stderr + proc.stdout
                match = re.search(re.escape(path) + r":(\d+):(\d+): (\S+): (.+)", out)
                self.assertIsNotNone(match, out)
                self.assertEqual(int(match.group(1)), line, out)
                self.assertGreaterEqual(int(match.group(2)), 1)
                self.assertEqual(match.group(3), key, out)
                self.assertIn(word, match.group(4))

    def test_yaml_syntax_error(self):
        path = self.write("listeners: [ { name: a, address: 127.0.0.1:7000 }\nroutes: {\n")
        proc = run("proxy", "--check", "-c", path)
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(proc.stderr + proc.stdout, re.escape(path) + r":\d+:\d+: syntax error")

    def test_check_with_flags_only(self):
        proc = run("proxy", "--check", "--listen", "127.0.0.1:%d" % free_port(), "--upstream",
                   "http://127.0.0.1:8080")
        self.assertEqual(proc.returncode, 0, proc.stderr)


def listening_ports(pid):
    """The TCP ports process pid listens on (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


class Running(ProxyCase):
    def start_flags(self, *args, env=None):
        port, admin = free_port(), free_port()
        out = open(self.path("out.log"), "w")
        self.addCleanup(out.close)
        proc = self.start([PILLION, "proxy", "--listen", "127.0.0.1:%d" % port, "--admin",
                           "127.0.0.1:%d" % admin, "--access-log", self.path("access.log"),
                           *args], stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_port(port, proc=proc)
        wait_port(admin, proc=proc)
        return proc, port, admin

    def server_info(self, admin):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/server_info" % admin, timeout=5) as r:
            return json.loads(r.read())

    def test_upstream_url_from_the_environment(self):
        upstream = start_upstream(self)
        env = dict(os.environ, UPSTREAM_URL="http://127.0.0.1:%d" % upstream)
        proc, port, admin = self.start_flags("--workers", "1", env=env)
        resp = get(port, "/ok")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"ok\n")

    def test_upstream_flag_wins_over_the_environment(self):
        upstream = start_upstream(self)
        env = dict(os.environ, UPSTREAM_URL="http://127.0.0.1:1")
        proc, port, admin = self.start_flags("--workers", "1", "--upstream",
                                             "http://127.0.0.1:%d/" % upstream, env=env)
        self.assertEqual(get(port, "/ok").status, 200)

    def test_workers_flag_is_reported_by_server_info(self):
        for workers in (1, 3):
            with self.subTest(workers=workers):
                proc, port, admin = self.start_flags("--workers", str(workers), "--upstream",
                                                     "http://127.0.0.1:1")
                info = self.server_info(admin)
                self.assertEqual(info["workers"], workers)
                self.assertEqual(info["state"], "LIVE")
                self.assertEqual(info["version"], run("--version").stdout.split()[-1])
                self.assertIsInstance(info["uptime_seconds"], int)

    def test_default_workers_is_at_least_one(self):
        proc, port, admin = self.start_flags("--upstream", "http://127.0.0.1:1")
        self.assertGreaterEqual(self.server_info(admin)["workers"], 1)

    def test_workers_flag_overrides_config(self):
        upstream = start_upstream(self)
        proxy = start_proxy(self, upstream, workers=1, extra_args=["--workers", "2"])
        _, text = proxy.admin("/server_info")
        self.assertEqual(json.loads(text)["workers"], 2)

    def test_config_node_in_server_info(self):
        upstream = start_upstream(self)
        proxy = start_proxy(self, upstream, workers=2)
        with open(proxy.config_path, "a") as f:
            f.write("node: { id: pod-7, service: checkout }\n")
        proxy.proc.kill()
        proxy.proc.wait()
        proc = self.start([PILLION, "proxy", "-c", proxy.config_path])
        wait_port(proxy.admin_port, proc=proc)
        info = json.loads(proxy.admin("/server_info")[1])
        self.assertEqual(info["node"], {"id": "pod-7", "service": "checkout"})
        self.assertEqual(info["workers"], 2)

    def test_listener_port_zero_binds_one_port_and_reports_it(self):
        admin = free_port()
        out_path = self.path("zero.log")
        with open(out_path, "w") as out:
            proc = self.start([PILLION, "proxy", "--listen", "127.0.0.1:0", "--admin",
                               "127.0.0.1:%d" % admin, "--workers", "3", "--access-log", "off",
                               "--upstream", "http://127.0.0.1:1"], stdout=out,
                              stderr=subprocess.STDOUT)
            wait_port(admin, proc=proc)
        ports = listening_ports(proc.pid) - {admin}
        self.assertEqual(len(ports), 1, ports)
        with open(out_path) as f:
            self.assertIn("127.0.0.1:%d" % ports.pop(), f.read())

    def test_logging_level_can_be_changed_at_runtime(self):
        upstream = start_upstream(self)
        proxy = start_proxy(self, upstream)
        self.assertEqual(proxy.admin("/logging?level=bogus", method="POST")[0], 400)
        status, text = proxy.admin("/logging?level=debug", method="POST")
        self.assertEqual(status, 200, text)
        resp = get(proxy.port, "/malformed")  # a local reply is logged at debug
        self.assertEqual(resp.status, 502)
        deadline = time.monotonic() + 2
        while "[debug]" not in proxy.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("[debug]", proxy.stderr())
        self.assertIn(resp.header("x-request-id"), proxy.stderr())

    def test_unknown_admin_path_is_404(self):
        upstream = start_upstream(self)
        proxy = start_proxy(self, upstream)
        self.assertEqual(proxy.admin("/nope")[0], 404)
        self.assertEqual(proxy.admin("/ready"), (200, "LIVE\n"))

    def test_stats_count_what_happened(self):
        upstream = start_upstream(self)
        proxy = start_proxy(self, upstream, extra_routes="- { match: { path: /nf }, cluster: "
                            "dead }\n", extra_clusters="- { name: dead, endpoints: "
                            "[ \"127.0.0.1:%d\" ] }\n" % free_port())
        # One warm-up request: with one worker, connections are accepted in order, so once it
        # is answered wait_port's probe connection has been counted too.
        self.assertEqual(get(proxy.port, "/ok").status, 200)
        proxy.wait_stat("downstream_rq_2xx", lambda v: v == 1)  # counted once logged
        before = proxy.stats()
        self.assertEqual(before["downstream_rq_2xx"], 1)
        for _ in range(5):
            self.assertEqual(get(proxy.port, "/ok").status, 200)
        for _ in range(3):
            self.assertEqual(get(proxy.port, "/nf").status, 502)
        self.assertEqual(get(proxy.port, "/ok", host="").status, 200)
        proxy.wait_stat("downstream_cx_active", lambda v: v == 0)
        stats = proxy.stats()
        self.assertEqual(stats["downstream_rq_total"], 10)
        self.assertEqual(stats["downstream_rq_2xx"], 7)
        self.assertEqual(stats["downstream_rq_5xx"], 3)
        self.assertEqual(stats["response_flag_UF"], 3)
        self.assertEqual(stats["upstream_cx_connect_fail"], 3)
        self.assertEqual(stats["downstream_cx_total"] - before["downstream_cx_total"], 9)
        self.assertEqual(stats["downstream_rq_active"], 0)
        self.assertEqual(stats["access_log_dropped"], 0)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)( -?\d+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """A strict parser of the Prometheus text exposition format 0.0.4; returns
    {family: {"type": t, "help": h, "samples": {(name, labels): value}}}; raises on errors."""
    families = {}
    current = None
    if not text.endswith("\n"):
        raise ValueError("exposition must end with a newline")
    for number, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                family = families.setdefault(parts[2], {"type": None, "help": None,
                                                        "samples": {}})
                if parts[1] == "TYPE":
                    if family["type"] is not None or family["samples"]:
                        raise ValueError("line %d: TYPE repeated or after samples" % number)
                    if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ValueError("line %d: bad type %r" % (number, parts[3]))
                    family["type"] = parts[3]
                else:
                    if family["help"] is not None:
                        raise ValueError("line %d: HELP repeated" % number)
                    family["help"] = parts[3] if len(parts) > 3 else ""
                current = parts[2]
            continue
        match = SAMPLE.match(line)
        if not match:
            raise ValueError("line %d: not a sample: %r" % (number, line))
        name, labels_text, value = match.group(1), match.group(2), match.group(3)
        labels = ()
        if labels_text:
            inner = labels_text[1:-1]
            pos, items = 0, []
            while pos < len(inner):
                lm = LABEL.match(inner, pos)
                if not lm:
                    raise ValueError("line %d: bad labels %r" % (number, labels_text))
                items.append((lm.group(1), lm.group(2)))
                pos = lm.end()
            labels = tuple(sorted(items))
        float(value)  # raises on a bad value
        family_name = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in families:
                family_name = name[:-len(suffix)]
        if family_name not in families:
            family_name = current if current and name.startswith(current) else name
            families.setdefault(family_name, {"type": "untyped", "help": None, "samples": {}})
        if family_name != current:
            raise ValueError("line %d: sample %s not grouped with its family" % (number, name))
        samples = families[family_name]["samples"]
        if (name, labels) in samples:
            raise ValueError("line %d: duplicate series %s%s" % (number, name, labels))
        samples[(name, labels)] = float(value)
    return families


class Prometheus(ProxyCase):
    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.proxy = start_proxy(self, self.upstream, workers=2)
        for path in ("/ok", "/ok", "/malformed", "/close"):
            get(self.proxy.port, path)
        self.proxy.wait_stat("downstream_rq_total", lambda v: v == 4)
        # Counted by class once logged, which may be a moment after the client has its answer.
        self.proxy.wait_stat("downstream_rq_2xx", lambda v: v == 2)
        self.proxy.wait_stat("downstream_rq_5xx", lambda v: v == 2)

    def test_exposition_parses_and_agrees_with_stats(self):
        status, text = self.proxy.admin("/stats/prometheus")
        self.assertEqual(status, 200)
        families = parse_prometheus(text)
        self.assertGreater(len(families), 5)
        for name, family in families.items():
            self.assertTrue(name.startswith("pillion_"), name)
            self.assertIn(family["type"], ("counter", "gauge", "histogram", "summary"), name)
            self.assertTrue(family["help"], name)
            self.assertTrue(family["samples"], name)
            if family["type"] == "counter":
                self.assertTrue(name.endswith("_total"), name)
                for value in family["samples"].values():
                    self.assertGreaterEqual(value, 0)
        samples = {}
        for family in families.values():
            samples.update(family["samples"])
        def requests(code_class):  # summed over direction, listener and cluster
            return sum(v for (name, labels), v in samples.items()
                       if name == "pillion_requests_total" and
                       ("code_class", code_class) in labels)
        self.assertEqual(requests("2xx"), 2)
        self.assertEqual(requests("5xx"), 2)
        self.assertEqual(samples[("pillion_response_flags_total", (("flag", "UPE"),))], 1)
        self.assertEqual(samples[("pillion_response_flags_total", (("flag", "UR"),))], 1)
        stats = self.proxy.stats()
        self.assertEqual(samples[("pillion_downstream_connections_total", ())],
                         stats["downstream_cx_total"])

    def test_content_type_is_prometheus_text(self):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/stats/prometheus" %
                                    self.proxy.admin_port, timeout=5) as resp:
            ctype = resp.headers.get("Content-Type", "")
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        self.assertIn("version=0.0.4", ctype)

    @unittest.skipUnless(shutil.which("promtool"), "promtool not installed (Debian: prometheus)")
    def test_promtool_check_metrics(self):
        _, text = self.proxy.admin("/stats/prometheus")
        proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
