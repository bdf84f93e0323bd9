"""Pods for transparent-interception tests: network namespaces this process creates (named with
its pid), joined by a veth pair, commands and background processes run inside them (optionally as
another uid), and a cleanup that ends every process started here by PID and deletes the
namespaces. Nothing here touches the host's own network namespace beyond creating the pair."""

import ctypes
import http.client
import itertools
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)
_pair_numbers = itertools.count(1)
# Environment for commands in pods: a proxy configured on the host must not apply inside.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
               "ALL_PROXY", "NO_PROXY")


def netns_unavailable():
    """None when this process can create network namespaces, else a one-line reason."""
    if os.geteuid() != 0:
        return "network namespaces need root (euid %d)" % os.geteuid()
    for tool in ("ip", "setpriv", "unshare"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":") + ["/usr/sbin"]):
            return "%s is not installed (scripts/install-deps.sh)" % tool
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "the kernel refuses network namespaces: " + (
            probe.stderr.strip().splitlines() or ["unshare --net failed"])[-1]
    return None


def pod_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env.update(extra or {})
    return env


class Pod:
    """One network namespace. Processes started here are owned by the PodNetwork."""

    def __init__(self, network, name, address, interface):
        self.network = network
        self.name = name
        self.address = address
        self.interface = interface

    def command(self, args, user=None):
        """argv that runs args in this pod; user (uid or name) drops to that uid/gid, no caps."""
        prefix = ["ip", "netns", "exec", self.name]
        if user is not None:
            prefix += ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups",
                       "--inh-caps=-all"]
        return prefix + [str(a) for a in args]

    def run(self, args, user=None, timeout=60, env=None, **kwargs):
        """Runs to completion; returns the CompletedProcess (text, stdout and stderr captured)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(args, user), timeout=timeout, env=pod_env(env),
                              **kwargs)

    def start(self, args, name, user=None, env=None, cwd=None):
        """Background process in its own process group; its output goes to a log file in the
        network's directory (see PodNetwork.log)."""
        return self.network.start(self, args, name, user=user, env=env, cwd=cwd)

    def socket(self, family=socket.AF_INET, kind=socket.SOCK_STREAM):
        """A socket that lives in this pod's network namespace, usable from any thread: it is
        created on a helper thread that joined the namespace (network namespaces are
        per-thread), so the test process itself never leaves the host's namespace."""
        result = {}

        def body():
            try:
                fd = os.open(os.path.join(NETNS_DIR, self.name), os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, "setns(%s): %s" % (self.name, os.strerror(err)))
                finally:
                    os.close(fd)
                result["socket"] = socket.socket(family, kind)
            except BaseException as e:  # handed to the caller's thread
                result["error"] = e

        thread = threading.Thread(target=body, name="netns-" + self.name)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["socket"]

    def connect(self, host, port, timeout=5.0):
        sock = self.socket()
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def wait_port(self, port, host="127.0.0.1", timeout=15.0, proc=None):
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("%s exited with %s before listening on %s:%d in %s\n%s" % (
                    self.network.process_name(proc), proc.returncode, host, port, self.name,
                    self.network.log_tail(proc)))
            try:
                self.connect(host, port, timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("nothing listening on %s:%d in %s after %ss" % (
                        host, port, self.name, timeout))
                time.sleep(0.05)

    def http_get(self, host, port, path="/", timeout=5.0, headers=None):
        """(status, headers dict with lower-case names, body bytes) from a GET made in this pod."""
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = self.connect(host, port, timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()


class PodNetwork:
    """Two pods, a and b, joined by a veth pair: a has 10.231.N.1/24, b has 10.231.N.2/24.

    Every process started through it is tracked and ended by PID in cleanup(), which also
    deletes the namespaces; register cleanup with addCleanup/addClassCleanup *before* create()
    so a half-built network is torn down too."""

    def __init__(self, prefix="pl"):
        number = next(_pair_numbers)
        self.subnet_index = 200 + (os.getpid() + number) % 50
        suffix = "%d-%d" % (number, os.getpid())
        self.names = ["%s-a%s" % (prefix, suffix), "%s-b%s" % (prefix, suffix)]
        self.created = []
        self.procs = []
        self._logs = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="pillion-pods-")
        self.dir = self._tmp.name
        os.chmod(self.dir, 0o755)  # processes that run as other uids write below it
        self.a = Pod(self, self.names[0], "10.231.%d.1" % self.subnet_index, "eth0")
        self.b = Pod(self, self.names[1], "10.231.%d.2" % self.subnet_index, "eth0")

    def create(self):
        for name in self.names:
            _ip("netns", "add", name)
            self.created.append(name)
        # Both ends are created directly in their namespaces: no name is taken on the host.
        _ip("link", "add", "eth0", "netns", self.a.name, "type", "veth", "peer", "name", "eth0",
            "netns", self.b.name)
        for pod in (self.a, self.b):
            _ip("-n", pod.name, "link", "set", "lo", "up")
            _ip("-n", pod.name, "addr", "add", pod.address + "/24", "dev", pod.interface)
            _ip("-n", pod.name, "link", "set", pod.interface, "up")
        return self

    def subdir(self, name, owner=None):
        """A directory under the network's temp dir, owned by uid/gid `owner` when given."""
        path = os.path.join(self.dir, name)
        os.makedirs(path, exist_ok=True)
        if owner is not None:
            os.chown(path, owner, owner)
        return path

    def start(self, pod, args, name, user=None, env=None, cwd=None):
        log_path = os.path.join(self.dir, "%s.%s.log" % (pod.name, name))
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(pod.command(args, user), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=pod_env(env),
                                    cwd=cwd, start_new_session=True)
        self.procs.append(proc)
        self._logs[proc.pid] = log_path
        return proc

    def process_name(self, proc):
        return os.path.basename(self._logs.get(proc.pid, "process")).rsplit(".", 2)[-2]

    def log_tail(self, proc, lines=20):
        path = self._logs.get(proc.pid)
        if not path or not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def stop(self, proc, timeout=10.0):
        """Ends one process early (SIGTERM to its group, SIGKILL after timeout), e.g. a server
        whose port the next test reuses; cleanup() would end it only at the very end."""
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)

    def cleanup(self, term_timeout=5.0):
        """SIGTERM each started process group (the group id is the PID we started), SIGKILL what
        is left after term_timeout, reap, then delete the namespaces. Safe to call twice."""
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + term_timeout
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:
            _signal_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for name in reversed(self.created):
            # Anything still inside a namespace we created descends from what we started
            # (e.g. a daemon that left its process group): end it by PID before deleting.
            for pid in netns_pids(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.created = []
        self._tmp.cleanup()

    def remaining_namespaces(self):
        return [n for n in self.names if n in list_namespaces()]


def list_namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(name):
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def process_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _signal_group(proc, sig):
    if proc.returncode is not None:
        return  # reaped: its PID may belong to someone else now
    try:
        os.killpg(proc.pid, sig)  # start_new_session=True: the group id is the child's PID
    except (ProcessLookupError, PermissionError):
        pass


def _ip(*args):
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), proc.stderr.strip()))
