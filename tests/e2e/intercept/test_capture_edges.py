"""Edges of transparent capture, with a sidecar in pod A only and plain servers in pod B:
protocol detection that waits for a request split across reads but not for a silent client,
TLS passed through untouched (openssl s_client to s_server), keep-alive to the original
destination, connect failures reported per protocol, a connection to the capture port itself
refused instead of looping, and the metrics and readiness servers reachable from outside."""

import os
import socket
import subprocess
import sys
import time
import unittest

import pods
import test_two_pods as two_pods

APPS = two_pods.APPS
HTTP_PORT, SILENT_PORT, SERVER_FIRST_PORT, TLS_PORT, CLOSED_PORT = 8080, 2525, 3306, 8443, 9
V6_HTTP_PORT = 8086
CONFIG = """listeners:
  - { name: outbound, address: 0.0.0.0:15001, mode: transparent_outbound, routes: outbound }
  - { name: inbound, address: 0.0.0.0:15006, mode: transparent_inbound }
  - { name: outbound-ipv6, address: "[::]:15001", mode: transparent_outbound, routes: outbound }
routes:
  outbound:
    - { match: { host: reviews }, cluster: reviews }
clusters:
  - { name: reviews, endpoints: [ "%(b)s:8080" ] }
metrics: { address: 0.0.0.0:15090 }
readiness: { address: 0.0.0.0:15021 }
# 500 ms rather than the default 100 ms: the split request's second part must come within it
# on a busy (sanitizer-built, two-core CI) machine; a silent client's banner still comes far
# within two_pods.BANNER_BOUND (2 s).
transparent: { detect_timeout: 500ms }
"""


def setUpModule():
    reason = pods.netns_unavailable()
    if reason:
        raise unittest.SkipTest(reason)


class CaptureEdges(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = pods.PodNetwork("pe")
        cls.addClassCleanup(cls.net.cleanup)
        cls.net.create()
        cls.a, cls.b = cls.net.a, cls.net.b
        # IPv6 beside IPv4 (nodad: usable at once), so IPv6 capture is exercised too.
        cls.v6 = {}
        for pod, host in ((cls.a, 1), (cls.b, 2)):
            cls.v6[pod.name] = "fd00:231:%x::%d" % (cls.net.subnet_index, host)
            subprocess.run(["ip", "-n", pod.name, "addr", "add", cls.v6[pod.name] + "/64", "dev",
                            pod.interface, "nodad"], check=True, capture_output=True)
        # A config rather than zero-config: outbound routes by Host come before the original
        # destination.
        config = os.path.join(cls.net.subdir("config"), "pillion.yaml")
        with open(config, "w") as f:
            f.write(CONFIG % {"b": cls.b.address})
        cls.sidecar = two_pods.Sidecar(cls.a, proxy_args=["-c", config])
        cls.sidecar.start()
        app = cls.b.start([sys.executable, "-u", APPS, "http", HTTP_PORT], "app")
        banner = cls.b.start([sys.executable, "-u", APPS, "banner", SILENT_PORT, SERVER_FIRST_PORT],
                             "banner")
        cls.b.wait_port(HTTP_PORT, proc=app)
        cls.b.wait_port(SERVER_FIRST_PORT, proc=banner)

    def connect_from_a(self, port, host=None):
        sock = self.a.connect(host or self.b.address, port, timeout=5.0)
        self.addCleanup(sock.close)
        return sock

    def read_until(self, sock, marker):
        """Bytes up to marker, or what came before the peer closed (EOF or reset: a closed
        socket with our unread bytes in it answers with RST)."""
        data = b""
        while marker not in data:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def test_request_split_across_reads_is_still_http(self):
        mark = self.sidecar.mark()
        sock = self.connect_from_a(HTTP_PORT)
        sock.sendall(b"GE")  # a prefix of a method: detection must wait for more
        time.sleep(0.03)  # (well within the 500 ms detect_timeout)
        sock.sendall(b"T /split HTTP/1.1\r\nHost: b\r\n\r\n")
        response = self.read_until(sock, b"}")
        self.assertTrue(response.startswith(b"HTTP/1.1 200"), response[:200])
        self.assertIn(b"x-request-id", response.lower())
        entry = self.sidecar.wait_for(lambda e: e.get("path") == "/split", "split GET", mark)[0]
        self.assertEqual(entry["listener"], "outbound")

    def test_a_route_by_host_comes_before_the_original_destination(self):
        mark = self.sidecar.mark()
        # Dialled port 9 (nothing listens there): the Host matches a route, which wins.
        sock = self.connect_from_a(CLOSED_PORT)
        sock.sendall(b"GET /routed HTTP/1.1\r\nHost: reviews\r\n\r\n")
        response = self.read_until(sock, b"}")
        self.assertTrue(response.startswith(b"HTTP/1.1 200"), response[:200])
        entry = self.sidecar.wait_for(lambda e: e.get("path") == "/routed", "routed GET", mark)[0]
        self.assertEqual(entry["upstream"], "%s:%d" % (self.b.address, HTTP_PORT))

    def test_keep_alive_to_the_original_destination_reuses_one_upstream_connection(self):
        mark = self.sidecar.mark()
        sock = self.connect_from_a(HTTP_PORT)
        peers = []
        for i in range(3):
            sock.sendall(b"GET /keep-%d HTTP/1.1\r\nHost: b\r\n\r\n" % i)
            response = self.read_until(sock, b"}")
            self.assertTrue(response.startswith(b"HTTP/1.1 200"), response[:200])
            body = response.split(b"\r\n\r\n", 1)[1]
            peers.append(two_pods.json.loads(body)["peer"][1])
        # The app saw one connection (one source port) for all three requests.
        self.assertEqual(len(set(peers)), 1, peers)
        self.sidecar.wait_for(lambda e: str(e.get("path", "")).startswith("/keep-"),
                              "keep-alive requests", mark, count=3)

    def test_silent_client_gets_the_servers_banner(self):
        # Port 2525 is not a known server-first port: the sidecar waits for the client's first
        # bytes only for the detection timeout, then passes the connection through.
        for port in (SILENT_PORT, SERVER_FIRST_PORT):
            mark = self.sidecar.mark()
            sock = self.connect_from_a(port)
            started = time.monotonic()
            banner = self.read_until(sock, b"\r\n")
            waited = time.monotonic() - started
            self.assertTrue(banner.startswith(b"220 banner %d" % port), banner)
            self.assertLess(waited, two_pods.BANNER_BOUND, "banner on %d took %.2fs" % (port, waited))
            sock.sendall(b"ping\n")
            self.assertEqual(self.read_until(sock, b"ping\n"), b"ping\n")
            sock.close()
            entry = self.sidecar.wait_for(
                lambda e: e.get("protocol") == "tcp" and two_pods.upstream_port(e) == port,
                "tcp line for %d" % port, mark)[0]
            self.assertGreater(two_pods.as_int(entry.get("bytes")), 0, entry)

    def test_tls_passes_through_untouched(self):
        workdir = self.net.subdir("tls")
        key, cert = os.path.join(workdir, "key.pem"), os.path.join(workdir, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=pod-b"], check=True, capture_output=True)
        server = self.b.start(["openssl", "s_server", "-accept", TLS_PORT, "-key", key, "-cert",
                               cert, "-www", "-quiet"], "tls-server")
        self.b.wait_port(TLS_PORT, proc=server)
        mark = self.sidecar.mark()
        client = self.a.run(["openssl", "s_client", "-connect", "%s:%d" % (self.b.address, TLS_PORT),
                             "-CAfile", cert, "-verify_return_error", "-servername", "pod-b",
                             "-ign_eof"],
                            input="GET / HTTP/1.0\r\n\r\n", timeout=20)
        self.assertIn("Verify return code: 0 (ok)", client.stdout, client.stderr)
        self.assertIn("HTTP/1.0 200 ok", client.stdout)
        entry = self.sidecar.wait_for(lambda e: e.get("protocol") == "tls", "tls line", mark)[0]
        self.assertEqual(two_pods.upstream_port(entry), TLS_PORT)

    def test_ipv6_is_captured_as_well(self):
        server = self.b.start([sys.executable, "-m", "http.server", "--bind", "::",
                               V6_HTTP_PORT], "v6-app", cwd=self.net.subdir("v6-root"))
        deadline = time.monotonic() + 15
        while True:  # pods.wait_port speaks IPv4 only
            probe = self.b.socket(socket.AF_INET6)
            try:
                probe.connect(("::1", V6_HTTP_PORT))
                break
            except OSError:
                self.assertIsNone(server.poll(), self.net.log_tail(server))
                self.assertLess(time.monotonic(), deadline, "IPv6 app not listening")
                time.sleep(0.05)
            finally:
                probe.close()
        mark = self.sidecar.mark()
        address = self.v6[self.b.name]
        proc = self.a.run(["curl", "-sS", "-g", "--noproxy", "*", "--max-time", "10", "-D", "-",
                           "-o", "/dev/null", "http://[%s]:%d/v6-probe" % (address, V6_HTTP_PORT)])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("x-request-id:", proc.stdout.lower())
        entry = self.sidecar.wait_for(lambda e: e.get("path") == "/v6-probe", "IPv6 GET", mark)[0]
        self.assertEqual(entry["listener"], "outbound-ipv6")
        self.assertEqual(entry["upstream"], "[%s]:%d" % (address, V6_HTTP_PORT))

    def test_connect_failures_are_reported_per_protocol(self):
        mark = self.sidecar.mark()
        sock = self.connect_from_a(CLOSED_PORT)
        sock.sendall(b"GET /nobody HTTP/1.1\r\nHost: b\r\n\r\n")
        response = self.read_until(sock, b"\r\n\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 502"), response[:200])
        entry = self.sidecar.wait_for(lambda e: e.get("path") == "/nobody", "502 line", mark)[0]
        self.assertIn("UF", entry["flags"])
        # Opaque bytes have no way to say 502: the connection is closed, the log says UF.
        sock = self.connect_from_a(CLOSED_PORT)
        sock.sendall(b"\x00\x01opaque")
        self.assertEqual(self.read_until(sock, b"never"), b"")
        self.sidecar.wait_for(lambda e: e.get("protocol") == "tcp" and "UF" in str(e.get("flags")),
                              "tcp UF line", mark)

    def test_inbound_capture_never_reaches_the_loopback_admin_api(self):
        # Pod B dials pod A's 9901: A's rules send it to inbound capture, which would deliver
        # it to 127.0.0.1:9901, the admin API that can drain and stop the proxy. Refused.
        sock = self.b.connect(self.a.address, 9901, timeout=5.0)
        self.addCleanup(sock.close)
        sock.sendall(b"POST /quitquitquit HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(self.read_until(sock, b"never"), b"")
        self.assertIsNone(self.sidecar.proc.poll(), "the sidecar obeyed another pod")
        self.assertIn("is the proxy's admin API", self.net.log_tail(self.sidecar.proc, lines=50))
        status, _, _ = self.a.http_get("127.0.0.1", 15021, "/healthz/ready")
        self.assertEqual(status, 200)

    def test_connection_to_the_capture_port_itself_is_refused_not_looped(self):
        sock = self.connect_from_a(15001, host="127.0.0.1")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.read_until(sock, b"never"), b"")
        status, _, body = self.a.http_get("127.0.0.1", 15090, "/stats/prometheus")
        self.assertEqual(status, 200)
        refused = [line for line in body.decode().splitlines()
                   if line.startswith("pillion_capture_refused_total ")]
        self.assertEqual(len(refused), 1, body[:500])
        self.assertGreaterEqual(float(refused[0].split()[1]), 1)
        log = self.net.log_tail(self.sidecar.proc, lines=50)
        self.assertIn("is the proxy itself", log)

    def test_metrics_and_readiness_answer_from_outside_the_pod(self):
        # Excluded from inbound capture by init: kubelet and Prometheus reach them directly.
        status, _, body = self.b.http_get(self.a.address, 15021, "/healthz/ready")
        self.assertEqual((status, body), (200, b"ready\n"))
        status, headers, body = self.b.http_get(self.a.address, 15090, "/stats/prometheus")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", headers["content-type"])
        self.assertIn(b"# TYPE pillion_requests_total counter", body)


if __name__ == "__main__":
    unittest.main()
