"""Mutual TLS through the real binary with real clients (curl, openssl s_client).

Two sidecars on loopback: A (explicit plaintext listener for its app, originating mutual TLS
to B's cluster) and B (explicit listener terminating mutual TLS in front of an app). Covered:
an mTLS hop with the caller's SPIFFE ID in B's access log, keep-alive and session resumption;
STRICT refusing plaintext; a certificate from another CA, no certificate and an expired one
failing the handshake; authorization (listener and route) answering 403 AD; PERMISSIVE taking
both; three Kubernetes-style `..data` rotations of both sidecars under constant load with not
one failed request; a mismatched or truncated rotation rejected without leaking the key;
refusing to start on an expired certificate; /certs and the expiry metric."""

import http.client
import json
import os
import signal
import sys
import threading
import time
import unittest
import uuid

from mtls_case import (ID_A, ID_B, OPENSSL, PILLION, TD, Certs, MtlsCase, free_port, parse_time, run,
                       start_pod_sidecar, start_upstream)

ALLOW_PROD = '{ allow: ["%s/ns/prod/*"] }' % TD


class Hop(MtlsCase):
    """A -> B -> app over one mutual-TLS hop."""

    def setUp(self):
        super().setUp()
        self.app = start_upstream(self)
        self.a_certs = self.issue(ID_A, "a")
        self.b_certs = self.issue(ID_B, "b", "--dns", "localhost")
        self.b = self.inbound(self.b_certs, self.app, tls="strict", authorization=ALLOW_PROD)
        self.a = self.outbound(self.a_certs, self.b.port)

    def test_request_carries_identity_and_request_id(self):
        rid = str(uuid.uuid4())
        status, headers, body, rc, err = self.curl(
            "http://127.0.0.1:%d/ok" % self.a.port, extra=["-H", "x-request-id: " + rid])
        self.assertEqual((status, rc), (200, 0), err)
        self.assertEqual(body, b"ok\n")
        self.assertEqual(headers.get("x-seen-request-id"), rid)  # the app saw the same id
        a_line = self.a.log_entry(rid)
        b_line = self.b.log_entry(rid)
        self.assertEqual(a_line["status"], "200")
        self.assertEqual(b_line["status"], "200")
        self.assertEqual(b_line.get("peer_id"), ID_A)
        self.assertEqual(b_line.get("listener"), "inbound")
        self.assertNotIn("peer_id", a_line)  # the app talked plaintext to A
        self.assertGreater(self.metric(self.b, "pillion_downstream_tls_handshakes_total"), 0)
        self.assertGreater(self.metric(self.a, "pillion_upstream_tls_handshakes_total"), 0)
        self.assertEqual(self.metric(self.a, "pillion_upstream_tls_handshake_failures_total"), 0)

    def test_sigterm_drains_and_exits_with_tls_watching(self):
        # The certificate watcher's timers must not keep the stopped proxy alive.
        self.b.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.b.proc.wait(timeout=15), 0)  # drain 5 s, then exit

    def test_keep_alive_amortizes_handshakes(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.a.port, timeout=5)
        self.addCleanup(conn.close)
        for i in range(20):
            conn.request("GET", "/ok?i=%d" % i, headers={"Host": "svc"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            resp.read()
        # workers: 1 on both sides: one pooled upstream connection carries all 20 (allow one
        # more for a race with the pool).
        self.assertLessEqual(self.metric(self.a, "pillion_upstream_tls_handshakes_total"), 2)
        self.assertLessEqual(self.metric(self.b, "pillion_downstream_tls_handshakes_total"), 2)
        self.assertGreaterEqual(self.metric(self.b, "pillion_downstream_tls_handshakes_total"), 1)
        # The caller's identity is a (bounded) metric label on B.
        by_peer = 'pillion_inbound_requests_by_peer_total{peer="%s"}' % ID_A
        self.wait_for("20 requests by peer A", lambda: self.metric(self.b, by_peer) == 20)

    def test_new_connection_resumes_session(self):
        # /fresh goes to the same B through a cluster that never pools: every request is a new
        # TCP + TLS connection, and the second onwards resume the first's session (ticket).
        for i in range(4):
            status, _, _, rc, err = self.curl("http://127.0.0.1:%d/fresh/%d" % (self.a.port, i))
            self.assertEqual((status, rc), (200, 0), err)
        self.assertGreaterEqual(self.metric(self.a, "pillion_upstream_tls_handshakes_total"), 4)
        self.assertGreater(self.metric(self.a, "pillion_upstream_tls_resumed_total"), 0)
        # A resumed session still carries the caller's identity to B.
        entry = self.log_where(self.b, path="/fresh/3")
        self.assertEqual(entry.get("peer_id"), ID_A)

    def test_plaintext_refused_on_strict(self):
        status, _, body, rc, err = self.curl("http://127.0.0.1:%d/ok" % self.b.port)
        self.assertEqual(status, 0, "plaintext got an HTTP answer")
        self.assertEqual(body, b"")
        self.assertIn(rc, (52, 56), err)  # empty reply / connection closed
        self.wait_log(self.b, "refused plaintext connection")
        self.assertEqual(self.metric(self.b, "pillion_downstream_tls_plaintext_refused_total"), 1)
        self.assertEqual(self.b.log_lines(), [])  # no request was served

    def test_certificate_from_another_ca_fails(self):
        other_ca = self.ca_init("other-ca")
        stranger = self.issue(ID_A, "stranger", ca=other_ca)
        # curl trusts B (our CA) but presents a certificate our CA never issued.
        status, _, _, rc, err = self.curl("https://localhost:%d/ok" % self.b.port,
                                          certs=stranger, cacert=self.b_certs.ca)
        self.assertEqual(status, 0)
        self.assertNotEqual(rc, 0, err)
        line = self.wait_log(self.b, "TLS handshake with")
        self.assertRegex(line, r"failed: .*(unable to get local issuer|certificate verify)")
        self.assertGreaterEqual(
            self.metric(self.b, "pillion_downstream_tls_handshake_failures_total"), 1)
        self.assertEqual(self.metric(self.b, "pillion_downstream_tls_handshakes_total"), 0)
        # And the other direction: a client trusting only the other CA rejects B's certificate.
        proc = self.s_client(self.b.port, stranger, cafile=os.path.join(other_ca, "ca.pem"),
                             extra=["-verify_return_error"])
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(proc.stdout + proc.stderr, r"unable to get local issuer certificate|"
                                                     r"verify error")

    def test_no_client_certificate_fails(self):
        status, _, _, rc, err = self.curl("https://localhost:%d/ok" % self.b.port,
                                          cacert=self.b_certs.ca)
        self.assertEqual(status, 0)
        self.assertNotEqual(rc, 0, err)
        line = self.wait_log(self.b, "TLS handshake with")
        self.assertIn("no certificate", line)

    def test_expired_client_certificate_fails(self):
        expired = self.issue(ID_A, "expired", "--ttl", "1h", "--backdate", "2h")
        status, _, _, rc, err = self.curl("https://localhost:%d/ok" % self.b.port,
                                          certs=expired)
        self.assertEqual(status, 0)
        self.assertNotEqual(rc, 0, err)
        line = self.wait_log(self.b, "TLS handshake with")
        self.assertIn("certificate has expired", line)

    def test_tls_versions_and_ciphers(self):
        # TLS 1.2 with a modern AEAD suite is accepted (1.2 is the minimum); TLS 1.3 preferred.
        proc = self.s_client(self.b.port, self.a_certs)
        self.assertRegex(proc.stdout, r"New, TLSv1.3, Cipher is TLS_")
        proc = self.s_client(self.b.port, self.a_certs,
                             extra=["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
        self.assertRegex(proc.stdout, r"New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertIn("ALPN", proc.stdout)
        # TLS 1.1, and TLS 1.2 without forward secrecy, are refused.
        proc = self.s_client(self.b.port, self.a_certs,
                             extra=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("protocol version", proc.stdout + proc.stderr)
        proc = self.s_client(self.b.port, self.a_certs,
                             extra=["-tls1_2", "-cipher", "AES128-SHA"])
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("handshake failure", proc.stdout + proc.stderr)
        self.assertEqual(
            self.metric(self.b, "pillion_downstream_tls_handshake_failures_total"), 2)

    def test_handshake_failure_reason_names_the_protocol_problem(self):
        proc = self.s_client(self.b.port, self.a_certs,
                             extra=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertNotEqual(proc.returncode, 0)
        line = self.wait_log(self.b, "TLS handshake with")
        self.assertNotIn("no certificate", line)  # the client had one; its version was too old
        self.assertRegex(line, r"(?i)version|protocol")

    def openssl_signed(self, name, san):
        """A client certificate signed by the test CA with openssl, with `san` as its
        subjectAltName (not something `pillion ca issue` would make)."""
        key, csr, cert = (self.path(name + ext) for ext in (".key", ".csr", ".pem"))
        proc = run([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=" + name])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=clientAuth,serverAuth\n"
                    "keyUsage=digitalSignature\n" % san)
        proc = run([OPENSSL, "x509", "-req", "-in", csr, "-CA",
                    os.path.join(self.ca_dir, "ca.pem"), "-CAkey",
                    os.path.join(self.ca_dir, "ca.key"), "-CAcreateserial", "-days", "1",
                    "-extfile", ext, "-out", cert])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        certs = Certs(self.tmp.name)
        certs.cert, certs.key, certs.ca = cert, key, os.path.join(self.ca_dir, "ca.pem")
        return certs

    def test_chain_ok_but_not_a_spiffe_identity_fails(self):
        for name, san, reason in (
                ("dns-only", "DNS:client.example", "no URI SAN"),
                ("other-td", "URI:spiffe://other.domain/ns/prod/sa/a",
                 "not of a trusted trust domain"),
                ("bad-id", "URI:spiffe://cluster.local/ns/../sa/a", "not a valid SPIFFE ID")):
            certs = self.openssl_signed(name, san)
            status, _, _, rc, err = self.curl("https://localhost:%d/ok" % self.b.port,
                                              certs=certs)
            self.assertEqual(status, 0, name)
            self.assertNotEqual(rc, 0, name)
            self.wait_for("B's reason for %s" % name,
                          lambda: reason in self.b.stderr())
        self.assertEqual(self.metric(self.b, "pillion_downstream_tls_handshakes_total"), 0)
        self.assertEqual(self.b.log_lines(), [])

    def test_upstream_identity_must_be_expected(self):
        # A expects another ID of B's cluster: the handshake is done, the identity refused (502
        # UF), and B's certificate is never trusted for the request.
        other = self.outbound(self.a_certs, self.b.port, expected=[TD + "/ns/prod/sa/c"],
                              name="a2")
        rid = str(uuid.uuid4())
        status, _, body, rc, err = self.curl("http://127.0.0.1:%d/ok" % other.port,
                                             extra=["-H", "x-request-id: " + rid])
        self.assertEqual(status, 502, err)
        self.assertIn(b"not one the cluster expects", body)
        self.assertIn("UF", other.log_entry(rid)["flags"])
        self.assertGreaterEqual(
            self.metric(other, "pillion_upstream_tls_handshake_failures_total"), 1)

    def test_certs_endpoint_and_expiry_metric(self):
        certs = self.certs_json(self.b)
        self.assertEqual(certs["spiffe_id"], ID_B)
        self.assertEqual(certs["trust_domain"], "cluster.local")
        self.assertEqual(int(certs["serial"], 16), self.b_certs.serial())
        self.assertGreater(certs["seconds_left"], 23 * 3600)
        self.assertLessEqual(certs["seconds_left"], 24 * 3600)
        self.assertEqual(certs["rotations_ok"], 0)
        self.assertEqual(certs["rotations_failed"], 0)
        self.assertIsNone(certs["last_error"])
        self.assertEqual(certs["files"]["cert"], self.b_certs.cert)
        self.assertNotIn("PRIVATE KEY", repr(certs))
        metrics = self.metrics(self.b)
        self.assertEqual(
            metrics['pillion_tls_certificate_expiry_timestamp_seconds{certificate="workload"}'],
            parse_time(certs["not_after"]))
        self.assertEqual(
            metrics['pillion_tls_certificate_expiry_timestamp_seconds{certificate="ca"}'],
            parse_time(certs["ca_not_after"]))
        self.assertEqual(metrics['pillion_tls_certificate_rotations_total{result="ok"}'], 0)
        # The served certificate is the one /certs names.
        self.assertEqual(self.served_serial(self.b.port, self.a_certs), self.b_certs.serial())


class Authorization(MtlsCase):
    def setUp(self):
        super().setUp()
        self.app = start_upstream(self)
        self.b_certs = self.issue(ID_B, "b", "--dns", "localhost")
        routes = ("    - { match: { path_prefix: /ops }, cluster: app,"
                  " authorization: { allow: [\"%s/ns/prod/sa/ops\"] } }\n"
                  "    - { match: { path_prefix: / }, cluster: app }" % TD)
        self.b = self.inbound(
            self.b_certs, self.app, tls="strict", routes=routes,
            authorization='{ allow: ["%s/ns/prod/*"], deny: ["%s/ns/prod/sa/evil"] }' % (TD, TD))

    def request(self, who, path):
        certs = self.issue(who, "client-" + who.rsplit("/", 1)[1] + "-" + who.split("/")[4])
        rid = str(uuid.uuid4())
        status, headers, body, rc, err = self.curl(
            "https://localhost:%d%s" % (self.b.port, path), certs=certs,
            extra=["-H", "x-request-id: " + rid])
        self.assertEqual(rc, 0, err)
        return status, body, self.b.log_entry(rid)

    def assertDenied(self, who, path):
        status, body, entry = self.request(who, path)
        self.assertEqual(status, 403, body)
        self.assertIn(who.encode(), body)
        self.assertEqual(entry["flags"], "AD")
        self.assertEqual(entry.get("peer_id"), who)
        self.assertEqual(entry.get("upstream"), "-")

    def test_denied_id_gets_403(self):
        self.assertDenied(TD + "/ns/prod/sa/evil", "/ok")
        self.wait_log(self.b, "denied GET /ok")

    def test_id_outside_allow_gets_403(self):
        self.assertDenied(TD + "/ns/dev/sa/a", "/ok")
        self.assertDenied(TD + "/ns/production/sa/a", "/ok")  # prefix only at a segment
        self.assertEqual(self.metric(self.b, "pillion_downstream_denied_total"), 2)

    def test_route_rule_denies_one_path_allows_another(self):
        status, body, entry = self.request(ID_A, "/ok")
        self.assertEqual(status, 200, body)
        self.assertEqual(entry.get("peer_id"), ID_A)
        self.assertDenied(ID_A, "/ops/restart")
        status, body, entry = self.request(TD + "/ns/prod/sa/ops", "/ops/restart")
        self.assertEqual(status, 200, body)


class Permissive(MtlsCase):
    def test_plaintext_and_mtls_both_served(self):
        app = start_upstream(self)
        b_certs = self.issue(ID_B, "b", "--dns", "localhost")
        b = self.inbound(b_certs, app, tls="permissive")
        a_certs = self.issue(ID_A, "a")
        plain_id, tls_id = str(uuid.uuid4()), str(uuid.uuid4())
        status, _, body, rc, err = self.curl("http://127.0.0.1:%d/ok" % b.port,
                                             extra=["-H", "x-request-id: " + plain_id])
        self.assertEqual((status, rc), (200, 0), err)
        status, _, body, rc, err = self.curl("https://localhost:%d/ok" % b.port, certs=a_certs,
                                             extra=["-H", "x-request-id: " + tls_id])
        self.assertEqual((status, rc), (200, 0), err)
        self.assertNotIn("peer_id", b.log_entry(plain_id))
        self.assertEqual(b.log_entry(tls_id).get("peer_id"), ID_A)
        self.assertEqual(self.metric(b, "pillion_downstream_tls_handshakes_total"), 1)
        self.assertEqual(self.metric(b, "pillion_downstream_tls_plaintext_refused_total"), 0)
        # Through a sidecar too.
        a = self.outbound(a_certs, b.port)
        status, _, _, rc, err = self.curl("http://127.0.0.1:%d/via-a" % a.port)
        self.assertEqual((status, rc), (200, 0), err)
        self.assertEqual(self.log_where(b, path="/via-a").get("peer_id"), ID_A)

    def test_permissive_with_rules_refuses_plaintext_403(self):
        app = start_upstream(self)
        b = self.inbound(self.issue(ID_B, "b", "--dns", "localhost"), app, tls="permissive",
                         authorization=ALLOW_PROD)
        rid = str(uuid.uuid4())
        status, _, body, rc, err = self.curl("http://127.0.0.1:%d/ok" % b.port,
                                             extra=["-H", "x-request-id: " + rid])
        self.assertEqual(status, 403, err)
        self.assertIn(b"client certificate is required", body)
        self.assertEqual(b.log_entry(rid)["flags"], "AD")


class Rotation(MtlsCase):
    LOAD_SECONDS = 9.0
    THREADS = 4

    def load(self, port, stop, results, index):
        """Requests until `stop`: keep-alive, with a new connection every 25 requests."""
        conn = None
        n = 0
        while not stop.is_set():
            if conn is None or n % 25 == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            n += 1
            try:
                conn.request("GET", "/ok?t=%d&n=%d" % (index, n), headers={"Host": "svc"})
                resp = conn.getresponse()
                resp.read()
                results.append(resp.status)
            except (OSError, http.client.HTTPException) as e:
                results.append(repr(e))
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def test_three_rotations_under_load_lose_nothing(self):
        app = start_upstream(self)
        a_mount = self.k8s_mount("a-mount", ID_A)
        b_mount = self.k8s_mount("b-mount", ID_B, "--dns", "localhost")
        probe = self.issue(TD + "/ns/prod/sa/probe", "probe")
        a_probe_port = free_port()
        b = self.inbound(b_mount, app, tls="strict", authorization=ALLOW_PROD, workers=2)
        # A's pool keeps at most one idle connection: with 4 clients, upstream connections (and
        # handshakes) come and go all through the rotations. A also has a STRICT listener so the
        # certificate it presents can be seen from outside.
        a = self.outbound(
            a_mount, b.port, pool="max_idle: 1", workers=2,
            extra_listeners="  - { name: probe, address: 127.0.0.1:%d, tls: strict }\n" %
            a_probe_port, extra_wait=[a_probe_port])
        serials = {"a": [a_mount.serial()], "b": [b_mount.serial()]}
        self.assertEqual(self.served_serial(b.port, probe), serials["b"][0])
        self.assertEqual(self.served_serial(a_probe_port, probe), serials["a"][0])

        results, stop = [], threading.Event()
        threads = [threading.Thread(target=self.load, args=(a.port, stop, results, i))
                   for i in range(self.THREADS)]
        for t in threads:
            t.start()
        try:
            started = time.monotonic()
            for rotation in range(1, 4):
                time.sleep(1.5)
                new_a = self.k8s_swap(a_mount.dir, ID_A)
                new_b = self.k8s_swap(b_mount.dir, ID_B, "--dns", "localhost")
                serials["a"].append(new_a.serial())
                serials["b"].append(new_b.serial())
                for name, proxy in (("a", a), ("b", b)):
                    want = serials[name][-1]
                    self.wait_for("rotation %d of %s" % (rotation, name),
                                  lambda: int(self.certs_json(proxy)["serial"], 16) == want)
                # New connections present the new certificates.
                self.assertEqual(self.served_serial(b.port, probe), serials["b"][-1])
                self.assertEqual(self.served_serial(a_probe_port, probe), serials["a"][-1])
            time.sleep(max(0.5, self.LOAD_SECONDS - (time.monotonic() - started)))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)
        failures = [r for r in results if r != 200]
        self.assertGreater(len(results), 200, "too little load to mean anything")
        self.assertEqual(failures, [], "%d of %d requests failed" % (len(failures), len(results)))
        for name, proxy in (("a", a), ("b", b)):
            self.assertEqual(len(set(serials[name])), 4)
            certs = self.certs_json(proxy)
            self.assertEqual(certs["rotations_ok"], 3, certs)
            self.assertEqual(certs["rotations_failed"], 0, certs)
            metrics = self.metrics(proxy)
            self.assertEqual(metrics['pillion_tls_certificate_rotations_total{result="ok"}'], 3)
            self.assertEqual(metrics['pillion_tls_certificate_rotations_total{result="failed"}'],
                             0)
            self.assertEqual(self.wait_log(proxy, "workload certificate rotated").count(
                "PRIVATE"), 0)
        # The hop really did new handshakes across the rotations, and all of them worked.
        self.assertGreater(self.metric(a, "pillion_upstream_tls_handshakes_total"), 4)
        self.assertEqual(self.metric(a, "pillion_upstream_tls_handshake_failures_total"), 0)
        self.assertEqual(self.metric(b, "pillion_downstream_tls_handshake_failures_total"), 0)

    def test_bad_rotation_keeps_old_identity(self):
        app = start_upstream(self)
        mount = self.k8s_mount("b-mount", ID_B, "--dns", "localhost")
        b = self.inbound(mount, app, tls="strict")
        client = self.issue(ID_A, "client")
        old = mount.serial()
        one = self.issue(ID_B, "one", "--dns", "localhost")
        two = self.issue(ID_B, "two", "--dns", "localhost")
        secrets = []
        for certs in (one, two):
            with open(certs.key) as f:
                key = f.read()
            secrets += [line for line in key.splitlines() if line and "-----" not in line]

        # 1. Cert of one issue, key of another.
        self.k8s_swap(mount.dir, files={"cert.pem": one.cert, "key.pem": two.key,
                                        "ca.pem": one.ca})
        self.wait_for("rejected rotation",
                      lambda: self.certs_json(b)["rotations_failed"] == 1)
        line = self.wait_log(b, "not rotated")
        self.assertIn("does not match", line)
        self.assertIn(mount.key, line)  # names the files, not their content
        certs = self.certs_json(b)
        self.assertEqual(int(certs["serial"], 16), old)
        self.assertIn("does not match", certs["last_error"])
        self.assertEqual(self.served_serial(b.port, client), old)
        status, _, _, rc, err = self.curl("https://localhost:%d/ok" % b.port, certs=client)
        self.assertEqual((status, rc), (200, 0), err)

        # 2. A half-written certificate (the first half of the PEM) with its own key.
        with open(one.cert, "rb") as f:
            pem = f.read()
        self.k8s_swap(mount.dir, files={"cert.pem": pem[:len(pem) // 2], "key.pem": one.key,
                                        "ca.pem": one.ca})
        self.wait_for("second rejected rotation",
                      lambda: self.certs_json(b)["rotations_failed"] == 2)
        self.assertEqual(int(self.certs_json(b)["serial"], 16), old)
        self.assertEqual(self.served_serial(b.port, client), old)

        # 3. A good set is taken.
        self.k8s_swap(mount.dir, files={"cert.pem": one.cert, "key.pem": one.key,
                                        "ca.pem": one.ca})
        self.wait_for("good rotation", lambda: self.certs_json(b)["rotations_ok"] == 1)
        self.assertEqual(self.served_serial(b.port, client), one.serial())
        metrics = self.metrics(b)
        self.assertEqual(metrics['pillion_tls_certificate_rotations_total{result="failed"}'], 2)
        self.assertEqual(metrics['pillion_tls_certificate_rotations_total{result="ok"}'], 1)

        log = b.stderr()
        self.assertNotIn("PRIVATE KEY", log)
        for secret in secrets:
            self.assertNotIn(secret, log)
        status, text = b.admin("/config_dump")
        self.assertNotIn("PRIVATE KEY", text)


class Startup(MtlsCase):
    def test_expired_workload_certificate_refuses_to_start(self):
        expired = self.issue(ID_B, "expired", "--ttl", "1h", "--backdate", "2h")
        config = self.path("expired.yaml")
        with open(config, "w") as f:
            f.write("admin: { address: 127.0.0.1:%d }\n"
                    "tls: { cert: %s, key: %s, ca: %s }\n"
                    "listeners: [{ name: in, address: 127.0.0.1:%d, tls: strict }]\n"
                    "routes: { default: [{ match: { path_prefix: / }, cluster: app }] }\n"
                    "clusters: [{ name: app, endpoints: [\"127.0.0.1:1\"] }]\n" % (
                        free_port(), expired.cert, expired.key, expired.ca, free_port()))
        proc = run([PILLION, "proxy", "-c", config], timeout=20)
        self.assertNotEqual(proc.returncode, 0)
        out = proc.stdout + proc.stderr
        self.assertIn(expired.cert, out)
        self.assertIn("expired", out)
        self.assertNotIn("PRIVATE KEY", out)

    def test_expiry_warning_below_a_quarter_of_lifetime(self):
        app = start_upstream(self)
        # 4 h lifetime, 3.5 h gone: 12.5 % left.
        certs = self.issue(ID_B, "b", "--ttl", "4h", "--backdate", "210m")
        b = self.inbound(certs, app)
        line = self.wait_log(b, "workload certificate expires at")
        self.assertIn("warning", line)
        self.assertGreater(self.certs_json(b)["seconds_left"], 0)
        # A fresh certificate draws no warning.
        fresh = self.inbound(self.issue(ID_B, "fresh"), app, name="fresh")
        self.wait_log(fresh, "workload certificate loaded")
        self.assertNotIn("expires at", fresh.stderr())

    def test_mismatched_key_refuses_to_start(self):
        one = self.issue(ID_B, "one")
        two = self.issue(ID_B, "two")
        config = self.path("bad.yaml")
        with open(config, "w") as f:
            f.write("admin: { address: 127.0.0.1:%d }\n"
                    "tls: { cert: %s, key: %s, ca: %s }\n"
                    "listeners: [{ name: in, address: 127.0.0.1:%d, tls: strict }]\n"
                    "routes: { default: [{ match: { path_prefix: / }, cluster: app }] }\n"
                    "clusters: [{ name: app, endpoints: [\"127.0.0.1:1\"] }]\n" % (
                        free_port(), one.cert, two.key, one.ca, free_port()))
        proc = run([PILLION, "proxy", "-c", config], timeout=20)
        self.assertNotEqual(proc.returncode, 0)
        out = proc.stdout + proc.stderr
        self.assertIn("does not match", out)
        self.assertNotIn("PRIVATE KEY", out)



class TransparentPods(MtlsCase):
    """Two pods (network namespaces, `pillion init`, sidecars as UID 1337): A's captured outbound
    HTTP goes to B over mutual TLS (`transparent.outbound_tls`), B's inbound capture is STRICT."""

    PROXY_UID = 1337
    APP_PORT = 8080
    PLAIN_PORT = 8081  # excluded from B's inbound capture: an app port without a sidecar

    def setUp(self):
        super().setUp()
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "intercept"))
        import pods
        reason = pods.netns_unavailable()
        if reason:
            self.skipTest(reason)
        self.pods = pods
        self.net = pods.PodNetwork("pm")
        self.addCleanup(self.net.cleanup)
        self.net.create()

    def pod_sidecar(self, pod, certs, extra):
        return start_pod_sidecar(self, self.net, pod, certs, extra.get("inbound", "tls: strict"),
                                 extra.get("top", ""), self.PLAIN_PORT)

    def curl_in(self, pod, url, user=None):
        proc = pod.run(["curl", "-sS", "--noproxy", "*", "--max-time", "5", "-o", "/dev/null",
                        "-w", "%{http_code}", url], user=user, timeout=20)
        return int(proc.stdout or 0), proc.returncode, proc.stderr

    def test_app_call_across_pods_is_mutual_tls(self):
        net = self.net
        a_certs = self.issue(ID_A, os.path.join(net.dir, "certs-a"))
        b_certs = self.issue(ID_B, os.path.join(net.dir, "certs-b"))
        sidecar_a, _ = self.pod_sidecar(net.a, a_certs, {
            "top": "transparent: { outbound_tls: { expected_ids: [\"%s\"] } }\n" % ID_B})
        sidecar_b, b_log = self.pod_sidecar(net.b, b_certs, {
            "inbound": "tls: strict, authorization: %s" % ALLOW_PROD})
        apps = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "intercept",
                            "pod_apps.py")
        for port in (self.APP_PORT, self.PLAIN_PORT):
            app = net.b.start([sys.executable, "-u", apps, "http", port], "app%d" % port)
            net.b.wait_port(port, proc=app)

        # The app in A calls B's app: captured, originated as mTLS, terminated by B.
        path = "/across-%s" % uuid.uuid4().hex
        status, rc, err = self.curl_in(net.a, "http://%s:%d%s" % (net.b.address, self.APP_PORT,
                                                                  path))
        self.assertEqual((status, rc), (200, 0), err + net.log_tail(sidecar_a))

        def b_entry():
            try:
                with open(b_log) as f:
                    for line in f:
                        entry = json.loads(line)
                        if entry.get("path") == path:
                            return entry
            except (FileNotFoundError, ValueError):
                return None
        entry = self.wait_for("B's access-log line", b_entry)
        self.assertEqual(entry.get("peer_id"), ID_A, entry)
        self.assertEqual(str(entry.get("status")), "200", entry)

        # Plaintext straight to B's captured app port, from outside any sidecar (A's proxy
        # uid is never captured): refused, no HTTP answer.
        status, rc, err = self.curl_in(net.a, "http://%s:%d/plain" % (net.b.address,
                                                                      self.APP_PORT),
                                       user=self.PROXY_UID)
        self.assertEqual(status, 0)
        self.assertIn(rc, (52, 56), err)
        self.wait_for("B's refusal log line",
                      lambda: "refused plaintext connection" in net.log_tail(sidecar_b, 200))

if __name__ == "__main__":
    unittest.main()
