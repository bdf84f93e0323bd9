"""Shared helpers for end-to-end tests: start real processes, find free loopback ports,
wait for readiness, and clean up exactly the processes a test started (by PID)."""

import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import unittest

PILLION = os.environ.get("PILLION_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "pillion")
HERE = os.path.dirname(os.path.abspath(__file__))


# Ports are picked at random below the kernel's ephemeral range (32768-60999 on Linux): a port
# the kernel hands out (bind to 0, or any client connection) can be taken again by the next
# process before the test's server binds it; suites run in parallel. Random picks here collide
# with another suite's only by chance, and the check below skips ports in use.
_PICKED = set()
_RANDOM = random.Random(os.getpid() ^ int(time.time() * 1000))


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        port = _RANDOM.randrange(20000, 32000)
        if port in _PICKED:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _PICKED.add(port)
        return port
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class ProcessTestCase(unittest.TestCase):
    """Tracks every process it starts and ends them (by PID) in tearDown."""

    def setUp(self):
        self._procs = []
        self.tmp = tempfile.TemporaryDirectory(prefix="pillion-e2e-")
        self.addCleanup(self.tmp.cleanup)

    def tearDown(self):
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()

    def start(self, args, **kwargs):
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(args, **kwargs)
        self._procs.append(proc)
        return proc

    def path(self, name):
        return os.path.join(self.tmp.name, name)
