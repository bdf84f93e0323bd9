"""Helpers for the mutual-TLS end-to-end suite: a CA made with `pillion ca`, workload
certificates (optionally in a Kubernetes-style `..data` symlink layout that can be swapped
atomically), sidecars started from YAML with the top-level `tls` identity, the Prometheus metrics
and `/certs` of a running proxy, and real TLS clients (curl, openssl s_client)."""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proxy"))

from harness import PILLION, free_port, wait_port  # noqa: E402
from misbehaving import Proxy, ProxyCase, parse_log_line, start_upstream  # noqa: E402,F401

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")

TD = "spiffe://cluster.local"
ID_A = TD + "/ns/prod/sa/a"
ID_B = TD + "/ns/prod/sa/b"


def run(args, timeout=30, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def parse_metrics(text):
    """Prometheus text -> {name: value} for unlabelled samples and {name{labels}: value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out


def parse_time(text):
    """`2026-01-02T03:04:05Z` -> Unix seconds."""
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


POD_PROXY_UID = 1337  # the sidecar's user in the two-pod tests (`pillion init`'s default)


def start_pod_sidecar(case, net, pod, certs, inbound="tls: strict", top="", plain_port=8081):
    """Intercepts `pod` with `pillion init` (the readiness, metrics and `plain_port` ports left
    out of inbound capture) and starts its transparent sidecar with `certs` as its identity:
    `inbound` is the rest of the inbound listener's map, `top` extra top-level YAML. Returns
    (process, access-log path)."""
    for path in (certs.dir, certs.cert, certs.key, certs.ca):
        os.chown(path, POD_PROXY_UID, POD_PROXY_UID)
    logs = net.subdir("logs-" + pod.name, owner=POD_PROXY_UID)
    config = os.path.join(logs, "pillion.yaml")
    with open(config, "w") as f:
        f.write(
            "workers: 1\n"
            "tls: { cert: %s, key: %s, ca: %s }\n"
            "admin: { address: 127.0.0.1:9901 }\n"
            "readiness: { address: 0.0.0.0:15021 }\n"
            "access_log: { path: %s, format: json }\n"
            "listeners:\n"
            "  - { name: outbound, address: 0.0.0.0:15001, mode: transparent_outbound }\n"
            "  - { name: inbound, address: 0.0.0.0:15006, mode: transparent_inbound, %s }\n"
            "%s" % (certs.cert, certs.key, certs.ca, os.path.join(logs, "access.log"),
                    inbound, top))
    init = pod.run([PILLION, "init", "--exclude-inbound-ports", "15021,15090,%d" % plain_port])
    case.assertEqual(init.returncode, 0, init.stdout + init.stderr)
    proc = pod.start([PILLION, "proxy", "-c", config], "sidecar", user=POD_PROXY_UID)
    for port in (15001, 15006, 15021):
        pod.wait_port(port, proc=proc)
    return proc, os.path.join(logs, "access.log")


class Certs:
    """The three files of one workload: cert.pem, key.pem, ca.pem in `dir`."""

    def __init__(self, directory):
        self.dir = directory
        self.cert = os.path.join(directory, "cert.pem")
        self.key = os.path.join(directory, "key.pem")
        self.ca = os.path.join(directory, "ca.pem")

    def serial(self):
        proc = run([OPENSSL, "x509", "-in", self.cert, "-noout", "-serial"])
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.strip().split("=", 1)[1], 16)


class MtlsCase(ProxyCase):
    """A ProxyCase with a CA, workload certificates and two-sidecar plumbing."""

    def setUp(self):
        super().setUp()
        if not OPENSSL or not CURL:
            self.skipTest("needs the openssl and curl CLIs")
        self.ca_dir = self.ca_init("ca")

    # -- certificates ---------------------------------------------------------------------------

    def ca_init(self, name):
        directory = self.path(name)
        proc = run([PILLION, "ca", "init", "--dir", directory])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return directory

    def issue(self, spiffe_id, out, *extra, ca=None):
        """Issues into `out` (a path under the test's temp dir if relative); returns Certs."""
        out = out if os.path.isabs(out) else self.path(out)
        proc = run([PILLION, "ca", "issue", "--dir", ca or self.ca_dir, "--id", spiffe_id,
                    "--out", out, *extra])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("PRIVATE KEY", proc.stdout + proc.stderr)
        return Certs(out)

    def k8s_mount(self, name, spiffe_id, *extra):
        """A Secret-volume layout: NAME/{cert,key,ca}.pem -> ..data/X, ..data -> ..<stamp>.
        Returns Certs for NAME (the paths the proxy is given)."""
        mount = self.path(name)
        os.makedirs(mount)
        self.k8s_swap(mount, spiffe_id, *extra)
        for file in ("cert.pem", "key.pem", "ca.pem"):
            os.symlink(os.path.join("..data", file), os.path.join(mount, file))
        return Certs(mount)

    _stamp = 0

    def k8s_swap(self, mount, spiffe_id=None, *extra, files=None):
        """What the kubelet does on a Secret update: write a new timestamped directory, point
        `..data_tmp` at it, rename it over `..data`, remove the old directory. The new files are
        freshly issued for `spiffe_id`, or copied from `files` ({name: source path}).
        Returns Certs of the new directory."""
        MtlsCase._stamp += 1
        stamp = "..%s_%06d" % (time.strftime("%Y_%m_%d_%H_%M_%S"), MtlsCase._stamp)
        target = os.path.join(mount, stamp)
        if files is None:
            self.issue(spiffe_id, target, *extra)
        else:
            os.makedirs(target)
            for name, source in files.items():
                if isinstance(source, bytes):
                    with open(os.path.join(target, name), "wb") as f:
                        f.write(source)
                else:
                    shutil.copyfile(source, os.path.join(target, name))
        data = os.path.join(mount, "..data")
        old = os.readlink(data) if os.path.islink(data) else None
        tmp = os.path.join(mount, "..data_tmp")
        os.symlink(stamp, tmp)
        os.rename(tmp, data)
        if old:
            shutil.rmtree(os.path.join(mount, old))
        return Certs(target)

    # -- sidecars --------------------------------------------------------------------------------

    def sidecar(self, name, certs, body, workers=1, wait=(), extra_args=()):
        """Starts `pillion proxy` with `body` (YAML: listeners, routes, clusters) plus the
        identity, admin and access log. `wait`: ports to wait for. Returns a Proxy whose `port`
        is the first of `wait` (or 0)."""
        admin_port = free_port()
        log_path = self.path(name + ".access.log")
        config_path = self.path(name + ".yaml")
        text = "workers: %d\nadmin: { address: 127.0.0.1:%d }\n" % (workers, admin_port)
        if certs is not None:
            text += "tls: { cert: %s, key: %s, ca: %s, poll_interval: 500ms }\n" % (
                json.dumps(certs.cert), json.dumps(certs.key), json.dumps(certs.ca))
        text += "access_log: { path: %s }\n" % json.dumps(log_path)
        text += body.strip("\n") + "\n"
        with open(config_path, "w") as f:
            f.write(text)
        stderr_path = self.path(name + ".stderr")
        err = open(stderr_path, "w")
        self.addCleanup(err.close)
        proc = self.start([PILLION, "proxy", "-c", config_path, *extra_args], stdout=err,
                          stderr=subprocess.STDOUT)
        try:
            for port in wait:
                wait_port(port, proc=proc)
            wait_port(admin_port, proc=proc)
        except (RuntimeError, TimeoutError):
            with open(stderr_path) as f:
                raise AssertionError("%s did not start:\n%s\n%s" % (name, text, f.read()))
        return Proxy(proc, wait[0] if wait else 0, admin_port, log_path, config_path,
                     stderr_path)

    def inbound(self, certs, app_port, tls="strict", authorization=None, name="b",
                routes=None, workers=1):
        """Sidecar B: an explicit inbound listener terminating mutual TLS in front of the app."""
        port = free_port()
        listener = "{ name: inbound, address: 127.0.0.1:%d, tls: %s%s }" % (
            port, tls, ", authorization: %s" % authorization if authorization else "")
        routes = routes or "    - { match: { path_prefix: / }, cluster: app }"
        body = ("listeners:\n  - %s\nroutes:\n  default:\n%s\nclusters:\n"
                "  - { name: app, endpoints: [\"127.0.0.1:%d\"] }\n" % (listener, routes, app_port))
        return self.sidecar(name, certs, body, workers=workers, wait=[port])

    def outbound(self, certs, b_port, expected=(ID_B,), name="a", pool="", extra_listeners="",
                 extra_wait=(), workers=1):
        """Sidecar A: a plaintext explicit listener for the app, originating mutual TLS to B
        (cluster `b`, pooled; cluster `b_fresh` for paths under /fresh, never pooled, so each
        request is a new TLS connection)."""
        port = free_port()
        tls = "{ expected_ids: %s }" % json.dumps(list(expected))
        body = (
            "listeners:\n"
            "  - { name: outbound, address: 127.0.0.1:%d }\n%s"
            "routes:\n  default:\n"
            "    - { match: { path_prefix: /fresh }, cluster: b_fresh }\n"
            "    - { match: { path_prefix: / }, cluster: b }\n"
            "clusters:\n"
            "  - { name: b, endpoints: [\"localhost:%d\"], tls: %s%s }\n"
            "  - { name: b_fresh, endpoints: [\"localhost:%d\"], tls: %s, pool: { max_idle: 0 } }\n"
            % (port, extra_listeners, b_port, tls, ", pool: { %s }" % pool if pool else "",
               b_port, tls))
        return self.sidecar(name, certs, body, workers=workers, wait=[port, *extra_wait])

    # -- observing a proxy ------------------------------------------------------------------------

    def metrics(self, proxy):
        status, text = proxy.admin("/stats/prometheus")
        self.assertEqual(status, 200, text)
        return parse_metrics(text)

    def metric(self, proxy, name):
        return self.metrics(proxy).get(name, 0.0)

    def certs_json(self, proxy):
        status, text = proxy.admin("/certs")
        self.assertEqual(status, 200, text)
        return json.loads(text)

    def wait_for(self, what, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + what)
            time.sleep(0.05)

    def wait_log(self, proxy, text, timeout=5.0):
        """Waits until the proxy's stderr (its log) contains `text`; returns that line."""
        def find():
            for line in proxy.stderr().splitlines():
                if text in line:
                    return line
            return None
        return self.wait_for("%r in the log of %s" % (text, proxy.config_path), find, timeout)

    def log_where(self, proxy, timeout=3.0, **fields):
        """The first access-log entry whose fields equal `fields` (waits for the flush)."""
        def find():
            for line in proxy.log_lines():
                entry = parse_log_line(line)
                if all(entry.get(k) == v for k, v in fields.items()):
                    return entry
            return None
        return self.wait_for("an access-log line with %r" % fields, find, timeout)

    # -- clients -----------------------------------------------------------------------------------

    def curl(self, url, certs=None, cacert=None, extra=(), timeout=5):
        """curl; returns (status or 0, headers, body, exit code, stderr). `certs`: present that
        workload's cert and key; `cacert`: verify the server against that bundle (default:
        certs.ca, else the test CA's)."""
        args = [CURL, "-sS", "--max-time", str(timeout), "-D", "-", "-o", "-"]
        if certs is not None:
            args += ["--cert", certs.cert, "--key", certs.key]
        if url.startswith("https:"):
            args += ["--cacert", cacert or (certs.ca if certs else
                                            os.path.join(self.ca_dir, "ca.pem"))]
        proc = subprocess.run([*args, *extra, url], capture_output=True, timeout=timeout + 5)
        head, _, body = proc.stdout.partition(b"\r\n\r\n")
        status, headers = 0, {}
        if head.startswith(b"HTTP/"):
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return status, headers, body, proc.returncode, proc.stderr.decode(errors="replace")

    def s_client(self, port, certs=None, cafile=None, extra=()):
        """openssl s_client to 127.0.0.1:port (SNI localhost), sending nothing. Returns the
        CompletedProcess (stdout has the server's certificate and the verify result)."""
        args = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
                "localhost", "-CAfile", cafile or os.path.join(self.ca_dir, "ca.pem")]
        if certs is not None:
            args += ["-cert", certs.cert, "-key", certs.key]
        return run([*args, *extra], input="", timeout=15)

    def served_serial(self, port, client):
        """The serial of the certificate a new TLS connection to `port` is shown."""
        proc = self.s_client(port, client)
        self.assertIn("BEGIN CERTIFICATE", proc.stdout, proc.stdout + proc.stderr)
        x509 = run([OPENSSL, "x509", "-noout", "-serial"], input=proc.stdout)
        self.assertEqual(x509.returncode, 0, x509.stderr)
        return int(x509.stdout.strip().split("=", 1)[1], 16)
