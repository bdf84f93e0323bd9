"""Transparent interception between two pods (network namespaces joined by a veth pair), each with
`pillion init` rules and a `pillion proxy` sidecar running as UID 1337, as in a mesh:
HTTP from pod A reaches B's app through A's outbound and B's inbound capture with one request id;
Redis, PostgreSQL and server-first protocols pass through both as TCP without stalling; a port
excluded from inbound capture sees the caller's real address; cleanup leaves nothing behind."""

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import uuid

import pods
from harness import PILLION

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "pod_apps.py")
PROXY_UID = 1337
PG_BIN = "/usr/lib/postgresql/15/bin"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LOCAL_INBOUND_SOURCE = "127.0.0.6"
EXCLUDED_INBOUND = "15021,15090,8081"
APP_PORT, PROBE_PORT = 8080, 8081
# Generous: detection should cost ~0.1 s per sidecar; linkerd's known stall is 10 s.
BANNER_BOUND = 2.0


def parse_entry(line):
    try:
        return json.loads(line)  # the sidecars write JSON lines (--access-log-format json)
    except ValueError:
        return {}


def tool(path_or_name):
    found = shutil.which(path_or_name) or (path_or_name if os.access(path_or_name, os.X_OK)
                                           else None)
    if not found:
        raise AssertionError("%s is not installed: run scripts/install-deps.sh" % path_or_name)
    return found


class Sidecar:
    """`pillion init` + `pillion proxy` (transparent mode, no arguments) in one pod."""

    def __init__(self, pod, proxy_args=()):
        self.pod = pod
        self.proxy_args = list(proxy_args)
        self.log_dir = pod.network.subdir("sidecar-" + pod.name, owner=PROXY_UID)
        self.access_log = os.path.join(self.log_dir, "access.log")
        self.proc = None

    def start(self):
        init = self.pod.run([PILLION, "init", "--exclude-inbound-ports", EXCLUDED_INBOUND])
        if init.returncode != 0:
            raise AssertionError("pillion init failed in %s (%d): %s%s" % (
                self.pod.name, init.returncode, init.stdout, init.stderr))
        self.proc = self.pod.start([PILLION, "proxy", "--access-log", self.access_log,
                                    "--access-log-format", "json", "--drain-time", "1s",
                                    *self.proxy_args],
                                   "sidecar", user=PROXY_UID)
        for port in (15001, 15006, 15021):
            self.pod.wait_port(port, proc=self.proc)
        status, _, _ = self.pod.http_get("127.0.0.1", 15021, "/healthz/ready")
        if status != 200:
            raise AssertionError("%s sidecar not ready: %d" % (self.pod.name, status))

    def entries(self):
        try:
            with open(self.access_log, encoding="utf-8", errors="replace") as f:
                return [e for e in map(parse_entry, f) if e]
        except FileNotFoundError:
            return []

    def mark(self):
        """Where the log ends now: wait_for(since=mark) only looks at later lines."""
        return len(self.entries())

    def wait_for(self, predicate, what, since=0, count=1, timeout=10.0):
        """Entries after `since` matching predicate, once there are `count` of them (the log
        is written in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.entries()[since:] if predicate(e)]
            if len(found) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if len(found) < count:
            raise AssertionError("%s: %d of %d access-log lines for %s after %ss; last lines:"
                                 "\n%s" % (self.pod.name, len(found), count, what, timeout,
                "\n".join(json.dumps(e) for e in self.entries()[-10:])))
        return found


def upstream_port(entry):
    upstream = str(entry.get("upstream", ""))
    return int(upstream.rsplit(":", 1)[1]) if re.search(r":\d+$", upstream) else None


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def setUpModule():
    reason = pods.netns_unavailable()
    if reason:
        raise unittest.SkipTest(reason)


def tearDownModule():
    # Every class has cleaned up by now: no namespace named by this process may remain.
    leftover = [n for n in pods.list_namespaces() if n.endswith("-%d" % os.getpid())]
    if leftover:
        for name in leftover:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        raise AssertionError("namespaces left behind: %s" % leftover)


class TwoPods(unittest.TestCase):
    """One pod pair for the whole class: building it (and waiting for two sidecars) is slow."""

    @classmethod
    def setUpClass(cls):
        cls.net = pods.PodNetwork("pl")
        cls.addClassCleanup(cls.net.cleanup)
        cls.net.create()
        cls.a, cls.b = cls.net.a, cls.net.b
        cls.sidecar_a, cls.sidecar_b = Sidecar(cls.a), Sidecar(cls.b)
        cls.sidecar_a.start()
        cls.sidecar_b.start()
        cls.app = cls.b.start([sys.executable, "-u", APPS, "http", APP_PORT], "app")
        cls.probe = cls.b.start([sys.executable, "-u", APPS, "http", PROBE_PORT], "probe")
        cls.b.wait_port(APP_PORT, proc=cls.app)
        cls.b.wait_port(PROBE_PORT, proc=cls.probe)

    def curl_in_a(self, url, user=None):
        proc = self.a.run(["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-D", "-", url],
                          user=user, timeout=20)
        self.assertEqual(proc.returncode, 0, "curl %s: %s" % (url, proc.stderr))
        # Text mode turned the CRLFs into plain newlines.
        head, _, body = proc.stdout.partition("\n\n")
        status = int(head.split()[1])
        headers = {}
        for line in head.splitlines()[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, json.loads(body) if body.strip() else None

    def test_http_crosses_both_sidecars_with_one_request_id(self):
        path = "/hello-%s?x=1" % uuid.uuid4().hex
        status, headers, seen = self.curl_in_a("http://%s:%d%s" % (self.b.address, APP_PORT,
                                                                   path))
        self.assertEqual(status, 200)
        app_headers = {k.lower(): v for k, v in seen["headers"].items()}
        request_id = app_headers.get("x-request-id", "")
        self.assertRegex(request_id, UUID, "A's sidecar did not add a request id: %s" % seen)
        self.assertEqual(headers.get("x-request-id"), request_id)
        self.assertEqual(seen["peer"][0], LOCAL_INBOUND_SOURCE,
                         "the app in B must be reached by B's inbound sidecar")
        self.assertEqual(seen["path"], path)
        # The caller once: B's inbound adds it; A's outbound (the app's own call) does not.
        self.assertEqual(app_headers.get("x-forwarded-for"), self.a.address)

        outbound = self.sidecar_a.wait_for(lambda e: e.get("request_id") == request_id,
                                           "request %s" % request_id)
        inbound = self.sidecar_b.wait_for(lambda e: e.get("request_id") == request_id,
                                          "request %s" % request_id)
        self.assertEqual(len(outbound), 1, outbound)
        self.assertEqual(len(inbound), 1, inbound)
        out, into = outbound[0], inbound[0]
        self.assertRegex(out.get("listener", ""), r"(?i)outbound", out)
        self.assertRegex(into.get("listener", ""), r"(?i)inbound", into)
        for entry in (out, into):
            self.assertEqual(str(entry.get("status")), "200", entry)
            self.assertEqual(entry.get("path"), path, entry)
            self.assertEqual(entry.get("method"), "GET", entry)
        self.assertEqual(out.get("upstream"), "%s:%d" % (self.b.address, APP_PORT), out)
        self.assertEqual(into.get("upstream"), "127.0.0.1:%d" % APP_PORT, into)
        self.assertTrue(str(into.get("client", "")).startswith(self.a.address + ":"), into)

    def assert_tcp_lines_both_sides(self, port, since_a, since_b, count=1):
        """Connection lines for `port` after the marks, with bytes counted both ways: A's
        outbound to B's address, B's inbound to the app on 127.0.0.1."""
        def tcp_to(expected_host):
            return lambda e: (upstream_port(e) == port and
                              str(e.get("upstream")).startswith(expected_host + ":"))
        lines_a = self.sidecar_a.wait_for(tcp_to(self.b.address), "TCP to %d" % port,
                                          since=since_a, count=count)
        lines_b = self.sidecar_b.wait_for(tcp_to("127.0.0.1"), "TCP to %d" % port,
                                          since=since_b, count=count)
        for entry in lines_a + lines_b:
            self.assertGreater(as_int(entry.get("bytes_in")), 0, entry)
            self.assertGreater(as_int(entry.get("bytes")), 0, entry)
            # A connection line, not a request: no method, not an HTTP protocol.
            self.assertIn(entry.get("method"), (None, "", "-"), entry)
            self.assertNotRegex(str(entry.get("protocol")), r"^HTTP", entry)
        return lines_a, lines_b

    def test_redis_passes_through_as_tcp(self):
        tool("redis-server")
        tool("redis-benchmark")
        data = self.net.subdir("redis")
        redis = self.b.start(["redis-server", "--bind", "0.0.0.0", "--port", "6379",
                              "--protected-mode", "no", "--save", "", "--appendonly", "no",
                              "--dir", data], "redis")
        self.addCleanup(self.net.stop, redis)
        self.b.wait_port(6379, proc=redis)
        before_a, before_b = self.sidecar_a.mark(), self.sidecar_b.mark()

        value = uuid.uuid4().hex
        set_reply = self.a.run(["redis-cli", "-h", self.b.address, "-p", "6379", "SET", "k",
                                value])
        self.assertEqual((set_reply.returncode, set_reply.stdout.strip()), (0, "OK"),
                         set_reply.stderr)
        get_reply = self.a.run(["redis-cli", "-h", self.b.address, "-p", "6379", "GET", "k"])
        self.assertEqual((get_reply.returncode, get_reply.stdout.strip()), (0, value),
                         get_reply.stderr)
        bench = self.a.run(["redis-benchmark", "-h", self.b.address, "-p", "6379", "-q",
                            "-n", "2000", "-t", "set,get"], timeout=120)
        report = bench.stdout + bench.stderr
        self.assertEqual(bench.returncode, 0, report)
        self.assertRegex(report, r"SET: [\d.]+ requests per second")
        self.assertRegex(report, r"GET: [\d.]+ requests per second")
        self.assertNotRegex(report, r"(?i)error|refused|reset|timeout", report)

        # redis-cli twice, then the benchmark's 50 clients: all through both sidecars.
        self.assert_tcp_lines_both_sides(6379, before_a, before_b, count=52)

    def test_postgres_passes_through_as_tcp(self):
        for name in ("initdb", "postgres", "psql", "pgbench"):
            tool(os.path.join(PG_BIN, name))
        pg_uid = pwd.getpwnam("postgres").pw_uid
        data = self.net.subdir("pgdata", owner=pg_uid)
        os.chmod(data, 0o700)
        init = self.b.run([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "postgres",
                           "-A", "trust", "--no-sync"], user=pg_uid, timeout=120)
        self.assertEqual(init.returncode, 0, init.stdout + init.stderr)
        with open(os.path.join(data, "pg_hba.conf"), "a") as hba:
            # B's inbound sidecar connects from 127.0.0.6; pod subnet for direct access.
            hba.write("host all all 127.0.0.0/8 trust\nhost all all 10.231.0.0/16 trust\n")
        postgres = self.b.start([os.path.join(PG_BIN, "postgres"), "-D", data,
                                 "-c", "listen_addresses=0.0.0.0", "-c", "port=5432",
                                 "-c", "unix_socket_directories=" + data, "-c", "fsync=off",
                                 "-c", "max_connections=20"], "postgres", user=pg_uid)
        self.addCleanup(self.net.stop, postgres)
        self.b.wait_port(5432, proc=postgres, timeout=30)
        # An open port is not a ready server ("the database system is starting up").
        deadline = time.monotonic() + 30
        while self.b.run([os.path.join(PG_BIN, "pg_isready"), "-h", "127.0.0.1", "-p", "5432"],
                         timeout=10).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        before_a, before_b = self.sidecar_a.mark(), self.sidecar_b.mark()

        conn = ["-h", self.b.address, "-p", "5432", "-U", "postgres"]
        query = self.a.run([os.path.join(PG_BIN, "psql"), *conn, "-d", "postgres", "-Atc",
                            "select 'through-' || (40 + 2)"])
        self.assertEqual(query.returncode, 0, query.stderr)
        self.assertEqual(query.stdout.strip(), "through-42")
        pgbench = os.path.join(PG_BIN, "pgbench")
        init_bench = self.a.run([pgbench, "-i", "-s", "1", *conn, "postgres"], timeout=120)
        self.assertEqual(init_bench.returncode, 0, init_bench.stdout + init_bench.stderr)
        run_bench = self.a.run([pgbench, "-t", "50", "-c", "2", *conn, "postgres"], timeout=120)
        self.assertEqual(run_bench.returncode, 0, run_bench.stdout + run_bench.stderr)
        self.assertRegex(run_bench.stdout, r"number of transactions actually processed: 100/100")
        self.assertRegex(run_bench.stdout, r"number of failed transactions: 0 ")

        self.assert_tcp_lines_both_sides(5432, before_a, before_b)

    def test_server_first_protocols_get_their_banner_quickly(self):
        ports = (3306, 2525)  # well-known server-first, and a port the proxy cannot know
        server = self.b.start([sys.executable, "-u", APPS, "banner", *ports], "banner")
        self.addCleanup(self.net.stop, server)
        for port in ports:
            self.b.wait_port(port, proc=server)
        for port in ports:
            with self.subTest(port=port):
                before_a, before_b = self.sidecar_a.mark(), self.sidecar_b.mark()
                with self.a.connect(self.b.address, port, timeout=5) as sock:
                    started = time.monotonic()
                    banner = b""
                    while not banner.endswith(b"\r\n"):
                        sock.settimeout(max(0.01, BANNER_BOUND - (time.monotonic() - started)))
                        try:
                            chunk = sock.recv(4096)
                        except TimeoutError:
                            self.fail("no banner on %d within %ss (got %r): the proxy waited "
                                      "for the client to speak first" % (port, BANNER_BOUND,
                                                                          banner))
                        if not chunk:
                            break
                        banner += chunk
                    waited = time.monotonic() - started
                    self.assertTrue(banner.startswith(b"220 banner %d " % port), banner)
                    self.assertLess(waited, BANNER_BOUND, "banner on %d took %.2fs" % (port, waited))
                    # The banner names who connected to the server: B's inbound sidecar.
                    self.assertIn(b"from-peer " + LOCAL_INBOUND_SOURCE.encode(), banner)
                    message = b"ping %s\n" % uuid.uuid4().hex.encode()
                    sock.settimeout(5)
                    sock.sendall(message)
                    echoed = b""
                    while len(echoed) < len(message):
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        echoed += chunk
                    self.assertEqual(echoed, message)
                self.assert_tcp_lines_both_sides(port, before_a, before_b)

    def test_excluded_inbound_port_sees_the_callers_real_address(self):
        marker = uuid.uuid4().hex
        status, _, seen = self.curl_in_a("http://%s:%d/probe-%s" % (self.b.address, PROBE_PORT,
                                                                      marker), user=PROXY_UID)
        self.assertEqual(status, 200)
        self.assertEqual(seen["peer"][0], self.a.address,
                         "an excluded port must not go through B's inbound sidecar")
        self.assertNotIn("x-request-id", {k.lower() for k in seen["headers"]})
        # A request through capture after the probe: once B logged it, B would have logged the
        # probe too if it had seen it.
        _, _, after = self.curl_in_a("http://%s:%d/after-%s" % (self.b.address, APP_PORT,
                                                                  marker))
        sentinel = {k.lower(): v for k, v in after["headers"].items()}["x-request-id"]
        self.sidecar_b.wait_for(lambda e: e.get("request_id") == sentinel, "the sentinel")
        self.sidecar_a.wait_for(lambda e: e.get("request_id") == sentinel, "the sentinel")
        for sidecar in (self.sidecar_a, self.sidecar_b):
            for entry in sidecar.entries():
                self.assertNotIn("probe-" + marker, json.dumps(entry), entry)
                self.assertNotEqual(upstream_port(entry), PROBE_PORT, entry)


class Cleanup(unittest.TestCase):
    def test_cleanup_ends_every_process_and_deletes_the_namespaces(self):
        net = pods.PodNetwork("pl")
        self.addCleanup(net.cleanup)
        net.create()
        self.assertEqual(sorted(net.remaining_namespaces()), sorted(net.names))
        sidecar = Sidecar(net.a)
        sidecar.start()
        app = net.b.start([sys.executable, "-u", APPS, "http", APP_PORT], "app")
        # One process that ignores SIGTERM: cleanup must escalate to SIGKILL.
        stubborn = net.b.start([sys.executable, "-c",
                                "import signal, time\n"
                                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                "print('ready', flush=True)\n"
                                "time.sleep(600)"], "stubborn", user=PROXY_UID)
        net.b.wait_port(APP_PORT, proc=app)
        deadline = time.monotonic() + 10
        while "ready" not in net.log_tail(stubborn) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [p.pid for p in net.procs]
        self.assertEqual(len(pids), 3)
        self.assertTrue(all(pods.process_alive(pid) for pid in pids))

        started = time.monotonic()
        net.cleanup(term_timeout=2.0)
        self.assertLess(time.monotonic() - started, 15)
        self.assertEqual(net.remaining_namespaces(), [])
        for proc in net.procs:
            self.assertIsNotNone(proc.returncode, proc.args)
            self.assertFalse(pods.process_alive(proc.pid), proc.args)
        self.assertEqual(stubborn.returncode, -signal.SIGKILL)
        self.assertEqual(sidecar.proc.returncode, 0, "an idle sidecar exits 0 on SIGTERM")
        self.assertFalse(os.path.exists(net.dir))

    def test_a_failing_test_still_cleans_up(self):
        seen = {}

        class Failing(unittest.TestCase):
            def test_fails_with_a_pod_running(self):
                net = pods.PodNetwork("pl")
                self.addCleanup(net.cleanup)  # registered before create(), as tests here do
                net.create()
                seen["names"] = net.names
                seen["proc"] = net.b.start(["sleep", "600"], "sleeper")
                self.fail("on purpose")

        result = unittest.TestResult()
        unittest.defaultTestLoader.loadTestsFromTestCase(Failing).run(result)
        self.assertEqual(len(result.failures), 1, result.errors)
        self.assertFalse(set(seen["names"]) & set(pods.list_namespaces()))
        self.assertFalse(pods.process_alive(seen["proc"].pid))


if __name__ == "__main__":
    unittest.main()
