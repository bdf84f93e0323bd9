"""`pillion ca`: init and issue, checked with the openssl CLI. The CA is self-signed with the
trust domain as its URI SAN; a workload certificate verifies against it, carries its SPIFFE ID
as the only URI SAN, has its key in a 0600 file, and works for a mutual-TLS handshake between
openssl s_server and s_client; an expired one (--ttl 1h --backdate 2h) fails verification. Also
the error cases: existing CA without --force, missing CA, bad ID, wrong trust domain, bad DNS
name, unwritable output. No private key is ever printed."""

import os
import re
import shutil
import stat
import subprocess
import time
import unittest

from harness import PILLION, ProcessTestCase, free_port, wait_port

OPENSSL = shutil.which("openssl")
ID = "spiffe://cluster.local/ns/prod/sa/payments"


def pillion(*args):
    return subprocess.run([PILLION, "ca", *args], capture_output=True, text=True, timeout=60)


def openssl(*args, **kwargs):
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30, **kwargs)


def read(path):
    with open(path) as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@unittest.skipUnless(OPENSSL, "openssl CLI not installed")
class CaCase(ProcessTestCase):
    def ok(self, *args):
        proc = pillion(*args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("PRIVATE KEY", proc.stdout + proc.stderr)
        return proc

    def fails(self, *args, message):
        proc = pillion(*args)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertIn(message, proc.stderr)
        self.assertNotIn("PRIVATE KEY", proc.stdout + proc.stderr)
        return proc

    def text(self, cert):
        proc = openssl("x509", "-in", cert, "-noout", "-text")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def san(self, cert):
        proc = openssl("x509", "-in", cert, "-noout", "-ext", "subjectAltName")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def init(self, *extra, name="ca"):
        ca = self.path(name)
        self.ok("init", "--dir", ca, *extra)
        return ca

    def issue(self, ca, out_name, *extra, spiffe_id=ID):
        out = self.path(out_name)
        self.ok("issue", "--dir", ca, "--id", spiffe_id, "--out", out, *extra)
        return out


class Init(CaCase):
    def test_default_ca(self):
        ca = self.init()
        self.assertEqual(sorted(os.listdir(ca)), ["ca.key", "ca.pem"])
        self.assertEqual(mode(os.path.join(ca, "ca.key")), 0o600)
        text = self.text(os.path.join(ca, "ca.pem"))
        self.assertRegex(text, r"CA:TRUE")
        self.assertRegex(text, r"Certificate Sign")
        self.assertIn("URI:spiffe://cluster.local", text)
        self.assertIn("prime256v1", text)  # ECDSA P-256
        self.assertIn("ecdsa-with-SHA256", text)
        # Self-signed: verifies against itself.
        pem = os.path.join(ca, "ca.pem")
        self.assertEqual(openssl("verify", "-CAfile", pem, pem).returncode, 0)
        # About ten years.
        end = openssl("x509", "-in", pem, "-noout", "-enddate").stdout
        year = int(re.search(r"(\d{4}) GMT", end).group(1))
        self.assertIn(year - time.gmtime().tm_year, (9, 10))

    def test_rsa_and_trust_domain(self):
        ca = self.init("--key-type", "rsa", "--trust-domain", "example.org", "--ttl", "48h")
        text = self.text(os.path.join(ca, "ca.pem"))
        self.assertIn("Public-Key: (2048 bit)", text)
        self.assertIn("rsaEncryption", text)
        self.assertIn("URI:spiffe://example.org", text)

    def test_refuses_to_overwrite_without_force(self):
        ca = self.init()
        before = read(os.path.join(ca, "ca.pem"))
        self.fails("init", "--dir", ca, message="--force")
        self.assertEqual(read(os.path.join(ca, "ca.pem")), before)
        self.ok("init", "--dir", ca, "--force")
        self.assertNotEqual(read(os.path.join(ca, "ca.pem")), before)
        self.assertEqual(mode(os.path.join(ca, "ca.key")), 0o600)

    def test_bad_flags(self):
        self.fails("init", "--dir", self.path("a"), "--trust-domain", "Bad.Domain",
                   message="lowercase")
        self.fails("init", "--dir", self.path("b"), "--ttl", "ten", message="--ttl")
        self.fails("init", "--dir", self.path("c"), "--key-type", "dsa", message="--key-type")
        self.fails("init", "--dir", self.path("d"), "--ttl", "0s", message="--ttl")


class Issue(CaCase):
    def test_workload_certificate(self):
        ca = self.init()
        out = self.issue(ca, "w", "--dns", "payments.prod.svc", "--dns", "*.prod.svc")
        self.assertEqual(sorted(os.listdir(out)), ["ca.pem", "cert.pem", "key.pem"])
        cert, key, bundle = (os.path.join(out, n) for n in ("cert.pem", "key.pem", "ca.pem"))
        self.assertEqual(mode(key), 0o600)
        proc = openssl("verify", "-CAfile", bundle, cert)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("OK", proc.stdout)
        san = self.san(cert)
        self.assertIn("URI:" + ID, san)
        self.assertEqual(san.count("URI:"), 1)
        self.assertIn("DNS:payments.prod.svc", san)
        self.assertIn("DNS:*.prod.svc", san)
        text = self.text(cert)
        self.assertIn("CA:FALSE", text)
        self.assertIn("Digital Signature", text)
        self.assertNotIn("Key Encipherment", text)
        self.assertIn("TLS Web Server Authentication, TLS Web Client Authentication", text)
        serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip()
        self.assertEqual(len(serial.split("=")[1]), 32)  # 128 bits
        # The key matches the certificate.
        pub_cert = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
        pub_key = openssl("pkey", "-in", key, "-pubout").stdout
        self.assertEqual(pub_cert, pub_key)
        # ca.pem is the CA's certificate.
        self.assertEqual(read(bundle), read(os.path.join(ca, "ca.pem")))
        # Default lifetime 24h.
        self.assertEqual(openssl("x509", "-in", cert, "-noout", "-checkend", "86000").returncode,
                         0)
        self.assertNotEqual(
            openssl("x509", "-in", cert, "-noout", "-checkend", "86500").returncode, 0)

    def test_rsa_leaf_has_key_encipherment(self):
        ca = self.init()
        out = self.issue(ca, "w", "--key-type", "rsa")
        self.assertIn("Key Encipherment", self.text(os.path.join(out, "cert.pem")))
        self.assertEqual(openssl("verify", "-CAfile", os.path.join(out, "ca.pem"),
                                 os.path.join(out, "cert.pem")).returncode, 0)

    def test_reissue_replaces_files(self):
        ca = self.init()
        out = self.issue(ca, "w")
        first = read(os.path.join(out, "cert.pem"))
        self.issue(ca, "w")
        self.assertNotEqual(read(os.path.join(out, "cert.pem")), first)
        self.assertEqual(mode(os.path.join(out, "key.pem")), 0o600)
        self.assertEqual(sorted(os.listdir(out)), ["ca.pem", "cert.pem", "key.pem"])  # no temps

    def test_expired_certificate_fails_verification(self):
        ca = self.init()
        out = self.issue(ca, "old", "--ttl", "1h", "--backdate", "2h")
        proc = openssl("verify", "-CAfile", os.path.join(out, "ca.pem"),
                       os.path.join(out, "cert.pem"))
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("certificate has expired", proc.stdout + proc.stderr)

    def test_errors(self):
        missing = self.path("nothing")
        self.fails("issue", "--dir", missing, "--id", ID, "--out", self.path("w"),
                   message="pillion ca init --dir")
        ca = self.init()
        for bad, why in (("spiffe://cluster.local/ns/prod/", "must not end with '/'"),
                         ("spiffe://cluster.local/a/../b", "'..' segment"),
                         ("http://cluster.local/x", "scheme must be 'spiffe'"),
                         ("spiffe://cluster.local", "needs a path")):
            self.fails("issue", "--dir", ca, "--id", bad, "--out", self.path("w"), message=why)
        self.fails("issue", "--dir", ca, "--id", "spiffe://other.org/x", "--out",
                   self.path("w"), message="trust domain 'other.org'")
        self.fails("issue", "--dir", ca, "--id", ID, "--out", self.path("w"), "--dns",
                   "a,URI:spiffe://evil/x", message="--dns")
        # An output path below a regular file cannot be created, even by root.
        blocker = self.path("file")
        open(blocker, "w").close()
        self.fails("issue", "--dir", ca, "--id", ID, "--out", os.path.join(blocker, "w"),
                   message=blocker)
        self.assertFalse(os.path.exists(self.path("w")))
        # A CA key that does not match its certificate.
        other = self.init(name="other")
        shutil.copy(os.path.join(other, "ca.key"), os.path.join(ca, "ca.key"))
        self.fails("issue", "--dir", ca, "--id", ID, "--out", self.path("w"),
                   message="does not match")

    def test_other_ca_does_not_verify(self):
        ca = self.init()
        other = self.init(name="other")
        out = self.issue(ca, "w")
        proc = openssl("verify", "-CAfile", os.path.join(other, "ca.pem"),
                       os.path.join(out, "cert.pem"))
        self.assertNotEqual(proc.returncode, 0)


class Handshake(CaCase):
    """Mutual TLS between openssl s_server (client certificate required) and s_client."""

    def handshake(self, server, client, ca_file):
        port = free_port()
        srv = self.start(
            [OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "2",
             "-cert", os.path.join(server, "cert.pem"), "-key", os.path.join(server, "key.pem"),
             "-CAfile", ca_file, "-Verify", "1", "-verify_return_error", "-brief"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # The readiness probe is the first of the two accepted connections.
        wait_port(port, proc=srv)
        cli = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
             "-cert", os.path.join(client, "cert.pem"), "-key", os.path.join(client, "key.pem"),
             "-CAfile", ca_file, "-verify_return_error", "-verify_hostname", "localhost",
             "-brief"],
            input="ping\n", capture_output=True, text=True, timeout=30)
        try:
            server_out, _ = srv.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            server_out, _ = srv.communicate()
        return cli, server_out

    def test_mutual_tls(self):
        ca = self.init()
        server = self.issue(ca, "server", "--dns", "localhost",
                            spiffe_id="spiffe://cluster.local/ns/prod/sa/server")
        client = self.issue(ca, "client", spiffe_id="spiffe://cluster.local/ns/prod/sa/client")
        cli, server_out = self.handshake(server, client, os.path.join(ca, "ca.pem"))
        self.assertEqual(cli.returncode, 0, cli.stdout + cli.stderr + server_out)
        self.assertIn("Verification: OK", cli.stderr)
        self.assertIn("Verification: OK", server_out)  # the client certificate was checked

    def test_expired_client_is_refused(self):
        ca = self.init()
        server = self.issue(ca, "server", "--dns", "localhost",
                            spiffe_id="spiffe://cluster.local/ns/prod/sa/server")
        client = self.issue(ca, "client", "--ttl", "1h", "--backdate", "2h",
                            spiffe_id="spiffe://cluster.local/ns/prod/sa/client")
        cli, server_out = self.handshake(server, client, os.path.join(ca, "ca.pem"))
        self.assertIn("certificate has expired", server_out)
        self.assertNotIn("ping", server_out)

    def test_client_from_another_ca_is_refused(self):
        ca = self.init()
        other = self.init(name="other")
        server = self.issue(ca, "server", "--dns", "localhost",
                            spiffe_id="spiffe://cluster.local/ns/prod/sa/server")
        client = self.issue(other, "client", spiffe_id="spiffe://cluster.local/ns/prod/sa/x")
        cli, server_out = self.handshake(server, client, os.path.join(ca, "ca.pem"))
        self.assertNotIn("ping", server_out)
        self.assertIn("unable to get local issuer certificate", server_out)


if __name__ == "__main__":
    unittest.main()
