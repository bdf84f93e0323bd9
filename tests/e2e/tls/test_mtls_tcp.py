"""Opaque TCP inside the sidecars' mutual TLS, through the real binary, between two pods.

Two network namespaces with `pillion init` capture and sidecars running as UID 1337. Pod A's
sidecar has `transparent.outbound_tls`; pod B's inbound capture is STRICT (or PERMISSIVE). A
program in A opens plain TCP sockets to B's apps (an echo server, server-first banners, a sink
that answers after the client's FIN); A's sidecar tunnels them in mutual TLS (ALPN
"pillion-mtls-tcp"), B's terminates, authorizes the caller's SPIFFE ID and relays to the app.

Covered: bytes round-trip; server-first ports (listed in server_first_ports and not); 8 MiB each
way byte-identical; a client half-close still gets the whole reply; session resumption; B's access
log carries the caller's peer_id; a denied caller gets its connection closed with no byte from the
app, and B logs the denial with the peer ID; PERMISSIVE takes both the tunnel and plain TCP;
without outbound_tls a STRICT destination still refuses plain TCP.

Run as `python3 test_mtls_tcp.py app PORTS` it is the app: see serve_apps()."""

import hashlib
import json
import os
import socket
import socketserver
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ECHO_PORT = 7000      # echoes every byte
BANNER_PORT = 7001    # server-first, not in server_first_ports: the caller's detection times out
LISTED_PORT = 3306    # server-first and in the default server_first_ports (never detected)
SINK_PORT = 7002      # reads to EOF, then answers with what it got and a 1 MiB tail
SINK_TAIL = 1 << 20
APP_PORTS = (ECHO_PORT, BANNER_PORT, LISTED_PORT, SINK_PORT)
PROXY_UID = 1337
PLAIN_PORT = 8081     # excluded from inbound capture (as in test_mtls.py)
INBOUND_SOURCE = "127.0.0.6"


# -- the app (runs in pod B as its own process) ---------------------------------------------------

class _App(socketserver.BaseRequestHandler):
    def handle(self):
        port = self.server.server_address[1]
        sock = self.request
        if port in (BANNER_PORT, LISTED_PORT):
            sock.sendall(b"220 banner %d from-peer %s\r\n" % (
                port, self.client_address[0].encode()))
        if port == SINK_PORT:
            digest, total = hashlib.sha256(), 0
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                digest.update(data)
                total += len(data)
            sock.sendall(b"got %d %s\n" % (total, digest.hexdigest().encode()))
            sock.sendall(tail_bytes())
            return
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)


def tail_bytes():
    return bytes(i % 251 for i in range(SINK_TAIL))


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve_apps(ports):
    servers = [_Server(("0.0.0.0", port), _App) for port in ports]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "app":
    serve_apps([int(p) for p in sys.argv[2:]])
    sys.exit(0)


from mtls_case import ID_A, ID_B, PILLION, TD, MtlsCase, start_pod_sidecar  # noqa: E402

ID_EVIL = TD + "/ns/prod/sa/evil"
AUTHORIZATION = '{ allow: ["%s/ns/prod/*"], deny: ["%s"] }' % (TD, ID_EVIL)


def read_all(sock):
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def read_line(sock):
    line = b""
    while not line.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        line += data
    return line


class PodPair(MtlsCase):
    """Pods A (caller) and B (callee) with sidecars; B runs the apps. Subclasses choose A's
    identity, B's inbound TLS and whether A has outbound_tls."""

    A_ID = ID_A
    B_INBOUND = "tls: strict, authorization: " + AUTHORIZATION
    OUTBOUND_TLS = True
    EXPECTED_ID = ID_B  # A's outbound_tls.expected_ids

    def setUp(self):
        super().setUp()
        sys.path.insert(0, os.path.join(HERE, "..", "intercept"))
        import pods
        reason = pods.netns_unavailable()
        if reason:
            self.skipTest(reason)
        self.net = pods.PodNetwork("pt")
        self.addCleanup(self.net.cleanup)
        self.net.create()
        a_certs = self.issue(self.A_ID, os.path.join(self.net.dir, "certs-a"))
        b_certs = self.issue(ID_B, os.path.join(self.net.dir, "certs-b"))
        top = ("transparent: { outbound_tls: { expected_ids: [\"%s\"] } }\n" % self.EXPECTED_ID
               if self.OUTBOUND_TLS else "")
        self.sidecar_a, self.a_log = self.pod_sidecar(self.net.a, a_certs, "tls: strict", top)
        self.sidecar_b, self.b_log = self.pod_sidecar(self.net.b, b_certs, self.B_INBOUND, "")
        self.app = self.net.b.start([sys.executable, "-u", os.path.abspath(__file__), "app",
                                     *APP_PORTS], "apps")
        for port in APP_PORTS:
            self.net.b.wait_port(port, proc=self.app)

    def pod_sidecar(self, pod, certs, inbound, top):
        return start_pod_sidecar(self, self.net, pod, certs, inbound, top, PLAIN_PORT)

    # -- helpers ------------------------------------------------------------------------------

    def connect(self, port, timeout=10.0, pod=None):
        """A TCP connection from the app side of pod A (captured) to B's `port`."""
        return (pod or self.net.a).connect(self.net.b.address, port, timeout=timeout)

    def entries(self, path):
        try:
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except (FileNotFoundError, ValueError):
            return []

    def entry(self, path, **fields):
        """The first access-log entry of `path` with these fields (waits for the flush)."""
        return self.wait_for("an access-log line with %r in %s" % (fields, path), lambda: next(
            (e for e in self.entries(path)
             if all(str(e.get(k)) == str(v) for k, v in fields.items())), None))

    def pod_metric(self, pod, name):
        status, _, body = pod.http_get("127.0.0.1", 9901, "/stats/prometheus")
        self.assertEqual(status, 200)
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    def sidecar_log(self, proc):
        return self.net.log_tail(proc, 400)

    def wait_sidecar_log(self, proc, text):
        return self.wait_for("%r in the sidecar's log" % text, lambda: next(
            (line for line in self.sidecar_log(proc).splitlines() if text in line), None))


class StrictTunnel(PodPair):
    def test_echo_round_trip_with_peer_id(self):
        sent = 0
        with self.connect(ECHO_PORT) as sock:
            for i in range(5):
                message = b"line %d across the mesh\n" % i
                sock.sendall(message)
                self.assertEqual(read_line(sock), message)
                sent += len(message)
            local = sock.getsockname()
        # B's inbound line: the caller's identity, the bytes both ways, the app on loopback.
        b_entry = self.entry(self.b_log, listener="inbound", upstream="127.0.0.1:%d" % ECHO_PORT)
        self.assertEqual(b_entry.get("peer_id"), ID_A, b_entry)
        self.assertEqual(b_entry["protocol"], "tcp")
        self.assertEqual(b_entry["flags"], "-")
        self.assertEqual((b_entry["bytes_in"], b_entry["bytes"]), (sent, sent), b_entry)
        # A's outbound line: the plain client, the original destination, no peer.
        a_entry = self.entry(self.a_log, listener="outbound",
                             client="%s:%d" % (local[0], local[1]))
        self.assertEqual(a_entry["upstream"], "%s:%d" % (self.net.b.address, ECHO_PORT))
        self.assertNotIn("peer_id", a_entry)
        self.assertEqual((a_entry["bytes_in"], a_entry["bytes"]), (sent, sent), a_entry)
        self.assertGreaterEqual(self.pod_metric(self.net.a, "pillion_upstream_tls_handshakes_total"),
                                1)
        self.assertEqual(
            self.pod_metric(self.net.a, "pillion_upstream_tls_handshake_failures_total"), 0)
        self.assertGreaterEqual(
            self.pod_metric(self.net.b, "pillion_downstream_tls_handshakes_total"), 1)
        self.assertEqual(self.pod_metric(self.net.b,
                                         "pillion_downstream_tls_plaintext_refused_total"), 0)

    def test_new_connections_resume_the_session(self):
        for i in range(4):
            with self.connect(ECHO_PORT) as sock:
                sock.sendall(b"ping %d\n" % i)
                self.assertEqual(read_line(sock), b"ping %d\n" % i)
        self.assertGreater(self.pod_metric(self.net.a, "pillion_upstream_tls_resumed_total"), 0)
        # Resumed or not, every connection carried the caller's identity to B.
        self.wait_for("4 inbound lines", lambda: len(
            [e for e in self.entries(self.b_log) if e.get("listener") == "inbound"]) == 4)
        for e in self.entries(self.b_log):
            self.assertEqual(e.get("peer_id"), ID_A, e)

    def test_server_first_ports_get_their_banner(self):
        for port in (LISTED_PORT, BANNER_PORT):
            with self.subTest(port=port), self.connect(port) as sock:
                started = time.monotonic()
                banner = read_line(sock)
                waited = time.monotonic() - started
                # The banner names who connected to the app: B's inbound sidecar.
                self.assertEqual(banner, b"220 banner %d from-peer %s\r\n" % (
                    port, INBOUND_SOURCE.encode()))
                self.assertLess(waited, 2.0, "banner on %d took %.2fs" % (port, waited))
                sock.sendall(b"after the banner\n")
                self.assertEqual(read_line(sock), b"after the banner\n")
            entry = self.entry(self.b_log, upstream="127.0.0.1:%d" % port)
            self.assertEqual(entry.get("peer_id"), ID_A, entry)

    def test_large_transfer_is_byte_identical(self):
        size = 8 << 20
        payload = os.urandom(size)
        received = []
        with self.connect(ECHO_PORT, timeout=60) as sock:
            def reader():
                total = 0
                while total < size:
                    data = sock.recv(1 << 16)
                    if not data:
                        break
                    received.append(data)
                    total += len(data)
            thread = threading.Thread(target=reader)
            thread.start()
            sock.sendall(payload)
            thread.join(timeout=60)
            self.assertFalse(thread.is_alive(), "the echo did not come back")
        echoed = b"".join(received)
        self.assertEqual(len(echoed), size)
        self.assertEqual(hashlib.sha256(echoed).hexdigest(), hashlib.sha256(payload).hexdigest())
        entry = self.entry(self.b_log, upstream="127.0.0.1:%d" % ECHO_PORT)
        self.assertEqual((entry["bytes_in"], entry["bytes"]), (size, size), entry)

    def test_client_half_close_still_gets_the_reply(self):
        payload = os.urandom(300 * 1024)
        with self.connect(SINK_PORT, timeout=30) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)  # the sink answers only after our FIN reached it
            reply = read_all(sock)
        head, _, tail = reply.partition(b"\n")
        self.assertEqual(head, b"got %d %s" % (len(payload),
                                               hashlib.sha256(payload).hexdigest().encode()))
        self.assertEqual(tail, tail_bytes())
        # Both sidecars saw a clean end (no reset, no timeout).
        entry = self.entry(self.b_log, upstream="127.0.0.1:%d" % SINK_PORT)
        self.assertEqual(entry["flags"], "-", entry)
        self.assertEqual(entry["bytes_in"], len(payload))
        self.assertEqual(entry["bytes"], len(reply))
        a_entry = self.entry(self.a_log, upstream="%s:%d" % (self.net.b.address, SINK_PORT))
        self.assertEqual(a_entry["flags"], "-", a_entry)


class DeniedCaller(PodPair):
    A_ID = ID_EVIL

    def test_denied_caller_gets_no_byte_from_the_app(self):
        for port in (BANNER_PORT, ECHO_PORT):
            with self.subTest(port=port), self.connect(port) as sock:
                try:
                    sock.sendall(b"let me in\n")
                    got = read_all(sock)
                except ConnectionResetError:
                    got = b""
                self.assertEqual(got, b"", "the app answered a denied caller")
            line = self.wait_sidecar_log(self.sidecar_b, "to port %d" % port)
            self.assertIn("denied TCP connection from", line)
            self.assertIn("(peer %s)" % ID_EVIL, line)
        # B never connected to the app; its access log says why, with the caller's ID.
        self.wait_for("2 denied lines", lambda: len(
            [e for e in self.entries(self.b_log) if e.get("flags") == "AD"]) == 2)
        for e in self.entries(self.b_log):
            self.assertEqual((e["flags"], e["upstream"], e.get("peer_id")), ("AD", "", ID_EVIL))
        self.assertEqual(self.pod_metric(self.net.b, "pillion_downstream_denied_total"), 2)
        self.assertEqual(self.pod_metric(self.net.b,
                                         "pillion_downstream_tls_handshake_failures_total"), 0)


class PermissiveInbound(PodPair):
    B_INBOUND = "tls: permissive"

    def test_tunnel_and_plain_tcp_both_served(self):
        with self.connect(ECHO_PORT) as sock:
            sock.sendall(b"through the tunnel\n")
            self.assertEqual(read_line(sock), b"through the tunnel\n")
        tunnelled = self.entry(self.b_log, upstream="127.0.0.1:%d" % ECHO_PORT)
        self.assertEqual(tunnelled.get("peer_id"), ID_A, tunnelled)
        # Plain TCP from A's proxy uid (never captured by A) is captured by B and relayed.
        result = self.net.a.run([sys.executable, "-c",
                                 "import socket; s = socket.create_connection((%r, %d), 5);"
                                 "s.sendall(b'plain\\n'); print(s.recv(100))"
                                 % (self.net.b.address, ECHO_PORT)], user=PROXY_UID, timeout=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "b'plain\\n'")
        self.wait_for("the plain line", lambda: len(
            [e for e in self.entries(self.b_log) if e.get("listener") == "inbound"]) == 2)
        plain = [e for e in self.entries(self.b_log) if "peer_id" not in e]
        self.assertEqual(len(plain), 1, self.entries(self.b_log))
        self.assertEqual(plain[0]["bytes"], len(b"plain\n"))
        # A silent plain client of a server-first port still gets its banner (after detection).
        result = self.net.a.run([sys.executable, "-c",
                                 "import socket; s = socket.create_connection((%r, %d), 5);"
                                 "print(s.recv(100))" % (self.net.b.address, LISTED_PORT)],
                                user=PROXY_UID, timeout=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("220 banner %d" % LISTED_PORT, result.stdout)
        # A listed port stays opaque when the client speaks first: bytes that look like HTTP
        # are relayed to the app as they are, not parsed.
        request = "GET / HTTP/1.1\\r\\nHost: b\\r\\n\\r\\n"
        result = self.net.a.run([sys.executable, "-c",
                                 "import socket, time; s = socket.create_connection((%r, %d), 5);"
                                 "s.sendall(b'%s'); time.sleep(0.5); got = b''\n"
                                 "while b'Host: b' not in got:\n"
                                 "    chunk = s.recv(1000)\n"
                                 "    if not chunk: break\n"
                                 "    got += chunk\n"
                                 "print(got)" % (self.net.b.address, LISTED_PORT, request)],
                                user=PROXY_UID, timeout=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("220 banner %d" % LISTED_PORT, result.stdout)
        self.assertIn(request, result.stdout)  # echoed back: the app got the bytes themselves
        self.assertNotIn("HTTP/1.1 ", result.stdout.replace(request, ""))


class UnexpectedIdentity(PodPair):
    EXPECTED_ID = TD + "/ns/prod/sa/c"

    def test_handshake_failure_closes_the_client(self):
        with self.connect(ECHO_PORT) as sock:
            try:
                sock.sendall(b"hello\n")
                got = read_all(sock)
            except ConnectionResetError:
                got = b""
        self.assertEqual(got, b"")
        entry = self.entry(self.a_log, upstream="%s:%d" % (self.net.b.address, ECHO_PORT))
        self.assertEqual(entry["flags"], "UF", entry)
        line = self.wait_sidecar_log(self.sidecar_a, "is not one the cluster expects")
        self.assertIn(ID_B, line)
        self.assertEqual(
            self.pod_metric(self.net.a, "pillion_upstream_tls_handshake_failures_total"), 1)
        self.assertEqual(self.pod_metric(self.net.a, "pillion_upstream_tls_handshakes_total"), 0)


class NoOutboundTls(PodPair):
    OUTBOUND_TLS = False

    def test_strict_destination_refuses_plain_tcp(self):
        with self.connect(ECHO_PORT) as sock:
            try:
                sock.sendall(b"plaintext\n")
                got = read_all(sock)
            except ConnectionResetError:
                got = b""
        self.assertEqual(got, b"")
        line = self.wait_sidecar_log(self.sidecar_b, "refused plaintext connection")
        self.assertIn("to port %d" % ECHO_PORT, line)
        self.assertEqual(self.pod_metric(self.net.b,
                                         "pillion_downstream_tls_plaintext_refused_total"), 1)
        self.assertEqual(self.pod_metric(self.net.a, "pillion_upstream_tls_handshakes_total"), 0)


if __name__ == "__main__":
    unittest.main()
