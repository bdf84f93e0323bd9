"""`pillion init` against real iptables (the nft backend Debian uses), always inside network
namespaces the test creates and deletes, so the host's rules are never touched: --dry-run, apply,
apply twice, --cleanup, IPv6, missing CAP_NET_ADMIN, a missing iptables, bad flags, and real
traffic: outbound TCP reaches the stand-in proxy on 15001 unless it is the proxy's own (uid or gid
1337) or the app talking to itself; inbound TCP reaches 15006 except the excluded ports."""

import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import unittest

from harness import PILLION, ProcessTestCase

IP = shutil.which("ip") or "/usr/sbin/ip"
_names = itertools.count()

# Listens on each HOST:PORT argument; prints "ready", then one JSON line per accepted connection
# with the listener's port and the connection's original destination (SO_ORIGINAL_DST).
SERVER = r"""
import json, select, socket, struct, sys
socks = []
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(16)
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        conn, peer = s.accept()
        try:
            raw = conn.getsockopt(socket.SOL_IP, 80, 16)
            orig = "%s:%d" % (socket.inet_ntoa(raw[4:8]), struct.unpack("!H", raw[2:4])[0])
        except OSError:
            orig = None
        print(json.dumps({"listener": s.getsockname()[1], "orig": orig}), flush=True)
        conn.close()
"""

# Connects to HOST PORT within TIMEOUT seconds: exit 0 when connected, 1 otherwise.
CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print("connect failed:", e)
    sys.exit(1)
print("connected")
"""


def run(args, **kwargs):
    kwargs.setdefault("timeout", 30)
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def normalized(save_output):
    """iptables-save without its timestamped comments and with the packet counters zeroed."""
    lines = [l for l in save_output.splitlines() if not l.startswith("#")]
    return "\n".join(re.sub(r"\[\d+:\d+\]", "[0:0]", l) for l in lines)


def sections(dry_run_output):
    """Splits the dry-run output into its IPv4 and IPv6 restore inputs."""
    parts = re.split(r"(?m)^(?=# pillion init: IPv[46])", dry_run_output)
    found = {}
    for part in parts:
        match = re.match(r"# pillion init: (IPv[46])", part)
        if match:
            found[match.group(1)] = part
    return found


def rule_lines(text):
    return sorted(l for l in text.splitlines() if l.startswith("-A ") and "PILLION_" in l)


class Help(unittest.TestCase):
    def test_help_explains_every_flag(self):
        proc = run([PILLION, "init", "--help"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for flag in ("--dry-run", "--cleanup", "--inbound-port", "--outbound-port", "--proxy-uid",
                     "--proxy-gid", "--include-inbound-ports", "--exclude-inbound-ports",
                     "--exclude-outbound-ports", "--exclude-outbound-cidrs",
                     "--include-outbound-cidrs", "15090,15021,15020", "15006", "15001", "1337",
                     "CAP_NET_ADMIN"):
            self.assertIn(flag, proc.stdout)
        self.assertRegex(run([PILLION, "--help"]).stdout, r"\n\s+init\s")


class NamespaceCase(ProcessTestCase):
    """Each test gets its own network namespace, deleted afterwards even when the test fails."""

    def setUp(self):
        super().setUp()
        self.ns = self.add_namespace()
        self.nsexec(IP, "link", "set", "lo", "up", check=True)

    def add_namespace(self):
        name = "pillion-init-%d-%d" % (os.getpid(), next(_names))
        proc = run([IP, "netns", "add", name])
        if proc.returncode != 0:
            if re.search(r"not permitted|Permission denied", proc.stderr):
                self.skipTest("ip netns add refused: " + proc.stderr.strip().splitlines()[0])
            self.fail("ip netns add %s: %s" % (name, proc.stderr))
        self.addCleanup(run, [IP, "netns", "delete", name])
        return name

    def nsexec(self, *args, ns=None, check=False, env=None):
        proc = run([IP, "netns", "exec", ns or self.ns, *args], env=env)
        if check:
            self.assertEqual(proc.returncode, 0, "%s: %s" % (args, proc.stderr))
        return proc

    def init(self, *args, **kwargs):
        return self.nsexec(PILLION, "init", *args, **kwargs)

    def save(self, family=4):
        proc = self.nsexec("iptables-save" if family == 4 else "ip6tables-save", "-t", "nat",
                           check=True)
        return normalized(proc.stdout)

    def saves(self):
        return self.save(4), self.save(6)


class Rules(NamespaceCase):
    def test_dry_run_prints_both_families_and_changes_nothing(self):
        before = self.saves()
        proc = self.init("--dry-run")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        both = sections(proc.stdout)
        self.assertEqual(sorted(both), ["IPv4", "IPv6"], proc.stdout)
        v4, v6 = both["IPv4"], both["IPv6"]
        for text in (v4, v6):
            self.assertIn("\n*nat\n", text)
            self.assertTrue(text.endswith("COMMIT\n"), text)
            self.assertIn("-A PILLION_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n", text)
            self.assertIn("-A PILLION_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n", text)
            self.assertIn("-A PREROUTING -p tcp -j PILLION_INBOUND\n", text)
            self.assertIn("-A OUTPUT -p tcp -j PILLION_OUTPUT\n", text)
            for port in (15090, 15021, 15020):
                self.assertIn("-A PILLION_INBOUND -p tcp -m tcp --dport %d -j RETURN\n" % port,
                              text)
        self.assertIn("-A PILLION_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n", v4)
        self.assertIn("-A PILLION_OUTPUT -s ::6/128 -o lo -j RETURN\n", v6)
        self.assertEqual(self.saves(), before)

    def test_apply_installs_exactly_the_dry_run_rules(self):
        dry = sections(self.init("--dry-run").stdout)
        proc = self.init()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        v4, v6 = self.saves()
        for chain in ("PILLION_INBOUND", "PILLION_IN_REDIRECT", "PILLION_OUTPUT",
                      "PILLION_REDIRECT"):
            self.assertIn(":%s - [0:0]" % chain, v4)
            self.assertIn(":%s - [0:0]" % chain, v6)
        # iptables printed back exactly what the dry run showed, each rule once.
        self.assertEqual(rule_lines(v4), rule_lines(dry["IPv4"]))
        self.assertEqual(rule_lines(v6), rule_lines(dry["IPv6"]))
        self.assertIn("-A PILLION_OUTPUT -m owner --uid-owner 1337 -j RETURN", v4)
        self.assertIn("-A PILLION_OUTPUT -m owner --gid-owner 1337 -j RETURN", v4)
        self.assertIn("-A PILLION_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN", v4)
        self.assertIn("-A PILLION_OUTPUT -d ::1/128 -j RETURN", v6)

    def test_apply_twice_is_idempotent(self):
        self.assertEqual(self.init().returncode, 0)
        once = self.saves()
        proc = self.init()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.saves(), once)
        self.assertEqual(once[0].count("-A OUTPUT -p tcp -j PILLION_OUTPUT"), 1)
        self.assertEqual(once[0].count("-A PREROUTING -p tcp -j PILLION_INBOUND"), 1)

    def test_rerun_with_other_flags_replaces_the_rules(self):
        self.assertEqual(self.init().returncode, 0)
        proc = self.init("--outbound-port", "16001", "--exclude-outbound-ports", "5432")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        v4 = self.save(4)
        self.assertIn("--to-ports 16001", v4)
        self.assertNotIn("--to-ports 15001", v4)
        self.assertIn("-A PILLION_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN", v4)
        self.assertEqual(v4.count("-A OUTPUT -p tcp -j PILLION_OUTPUT"), 1)

    def test_cleanup_restores_the_table_and_keeps_other_rules(self):
        # Rules that are not ours must survive cleanup untouched.
        for tool in ("iptables", "ip6tables"):
            self.nsexec(tool, "-t", "nat", "-N", "OTHER", check=True)
            self.nsexec(tool, "-t", "nat", "-A", "OUTPUT", "-p", "udp", "--dport", "53", "-j",
                        "OTHER", check=True)
            self.nsexec(tool, "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9",
                        "-j", "RETURN", check=True)
        before = self.saves()
        self.assertEqual(self.init().returncode, 0)
        self.assertNotEqual(self.saves(), before)
        proc = self.init("--cleanup")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.saves(), before)
        again = self.init("--cleanup")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("no pillion rules to remove", again.stderr)
        self.assertEqual(self.saves(), before)

    def test_cleanup_dry_run_changes_nothing(self):
        self.assertEqual(self.init().returncode, 0)
        installed = self.saves()
        proc = self.init("--cleanup", "--dry-run")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("-D OUTPUT -p tcp -j PILLION_OUTPUT\n", proc.stdout)
        self.assertIn("-X PILLION_REDIRECT\n", proc.stdout)
        self.assertEqual(self.saves(), installed)

    def test_flags_and_cidrs_go_to_their_family(self):
        proc = self.init("--include-inbound-ports", "8080,9090", "--exclude-inbound-ports", "22",
                         "--exclude-outbound-cidrs", "10.96.0.0/12,fd00:10::/64",
                         "--include-outbound-cidrs", "10.0.0.0/8,2001:db8::/32",
                         "--proxy-uid", "2000", "--proxy-gid", "3000",
                         "--inbound-port", "16006")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        v4, v6 = self.saves()
        for text in (v4, v6):
            self.assertIn("-A PILLION_INBOUND -p tcp -m tcp --dport 22 -j RETURN", text)
            self.assertIn("-A PILLION_INBOUND -p tcp -m tcp --dport 8080 -j PILLION_IN_REDIRECT",
                          text)
            self.assertNotIn("--dport 15090", text)
            self.assertNotIn("-A PILLION_INBOUND -p tcp -j PILLION_IN_REDIRECT", text)
            self.assertIn("-A PILLION_OUTPUT -m owner --uid-owner 2000 -j RETURN", text)
            self.assertIn("-A PILLION_OUTPUT -m owner --gid-owner 3000 -j RETURN", text)
            self.assertIn("--to-ports 16006", text)
        self.assertIn("-A PILLION_OUTPUT -d 10.96.0.0/12 -j RETURN", v4)
        self.assertIn("-A PILLION_OUTPUT -d 10.0.0.0/8 -j PILLION_REDIRECT", v4)
        self.assertNotIn("fd00:10::", v4)
        self.assertNotIn("2001:db8::", v4)
        self.assertIn("-A PILLION_OUTPUT -d fd00:10::/64 -j RETURN", v6)
        self.assertIn("-A PILLION_OUTPUT -d 2001:db8::/32 -j PILLION_REDIRECT", v6)
        self.assertNotIn("10.96.0.0", v6)
        self.assertNotIn("10.0.0.0/8", v6)

    def test_bad_flags_are_rejected_and_nothing_changes(self):
        before = self.saves()
        for args, message in (
                (("--inbound-port", "70000"), "--inbound-port: '70000' is not a TCP port"),
                (("--outbound-port", "0"), "--outbound-port: '0' is not a TCP port"),
                (("--proxy-uid", "istio"), "--proxy-uid: 'istio' is not a numeric id"),
                (("--exclude-outbound-cidrs", "10.0.0.0/33"), "bad prefix length"),
                (("--include-outbound-cidrs", "example.com"), "is not an IP address"),
                (("--exclude-inbound-ports", "80,x"), "'x' is not a TCP port")):
            proc = self.init(*args)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertIn(message, proc.stderr)
        self.assertEqual(self.saves(), before)

    def test_without_cap_net_admin_fails_naming_it(self):
        before = self.saves()
        dropped = self.nsexec("capsh", "--drop=cap_net_admin", "--", "-c", 'exec "$@"', "capsh",
                              PILLION, "init")
        self.assertNotEqual(dropped.returncode, 0)
        self.assertIn("CAP_NET_ADMIN is missing", dropped.stderr)
        # In a user namespace the capability is there but the network namespace refuses it.
        userns = self.nsexec("unshare", "--user", "--map-root-user", PILLION, "init")
        self.assertNotEqual(userns.returncode, 0)
        self.assertIn("CAP_NET_ADMIN is missing", userns.stderr)
        self.assertEqual(self.saves(), before)
        # A dry run needs no privilege.
        dry = self.nsexec("capsh", "--drop=cap_net_admin", "--", "-c", 'exec "$@"', "capsh",
                          PILLION, "init", "--dry-run")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertIn("-A OUTPUT -p tcp -j PILLION_OUTPUT", dry.stdout)

    def test_missing_iptables_is_named(self):
        env = dict(os.environ, PATH=self.path("empty"))
        os.mkdir(self.path("empty"))
        proc = self.init(env=env)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("iptables-save not found in PATH", proc.stderr)


class Traffic(NamespaceCase):
    """Real connections in the namespace; Python servers stand in for the proxy and the app."""

    def setUp(self):
        super().setUp()
        self.records = queue.Queue()
        # A non-local network for outbound connects: the route exists, nothing answers. Kernels
        # without the dummy module get a veth to a second namespace where nothing listens.
        if self.nsexec(IP, "link", "add", "dummy0", "type", "dummy").returncode == 0:
            self.nsexec(IP, "addr", "add", "10.99.0.1/24", "dev", "dummy0", check=True)
            self.nsexec(IP, "link", "set", "dummy0", "up", check=True)
        else:
            self.link_to_new_namespace("dv0", "10.99.0.1/24", "10.99.0.2/24")

    def link_to_new_namespace(self, name, address, peer_address):
        """A veth pair from our namespace to a new one; returns the new namespace."""
        peer = self.add_namespace()
        self.nsexec(IP, "link", "add", name, "type", "veth", "peer", "name", name + "p", "netns",
                    peer, check=True)
        self.nsexec(IP, "addr", "add", address, "dev", name, check=True)
        self.nsexec(IP, "link", "set", name, "up", check=True)
        self.nsexec(IP, "addr", "add", peer_address, "dev", name + "p", ns=peer, check=True)
        self.nsexec(IP, "link", "set", name + "p", "up", ns=peer, check=True)
        return peer

    def serve(self, *specs, ns=None):
        proc = self.start([IP, "netns", "exec", ns or self.ns, "python3", "-c", SERVER, *specs],
                          stdout=subprocess.PIPE, text=True)
        ready = queue.Queue()

        def read():
            try:
                for line in proc.stdout:
                    (ready if line.strip() == "ready" else self.records).put(line)
            except (OSError, ValueError):
                pass  # tearDown closed the pipe

        threading.Thread(target=read, daemon=True).start()
        try:
            ready.get(timeout=10)
        except queue.Empty:
            self.fail("test server on %s did not start" % (specs,))

    def connect(self, host, port, uid=1000, gid=1000, timeout=2.0, ns=None):
        ids = ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups"]
        return self.nsexec(*ids, "python3", "-c", CLIENT, host, str(port), str(timeout), ns=ns)

    def record(self):
        try:
            return json.loads(self.records.get(timeout=5))
        except queue.Empty:
            self.fail("no connection reached a test server")

    def assert_no_record(self):
        try:
            self.fail("unexpected connection: %s" % self.records.get(timeout=0.5))
        except queue.Empty:
            pass

    def test_outbound_goes_to_15001_except_the_proxys_own_and_loopback(self):
        self.serve("127.0.0.1:15001", "0.0.0.0:8080")
        proc = self.init()
        self.assertEqual(proc.returncode, 0, proc.stderr)

        app = self.connect("10.99.0.2", 80)
        self.assertEqual(app.returncode, 0, app.stdout)
        self.assertEqual(self.record(), {"listener": 15001, "orig": "10.99.0.2:80"})

        for uid, gid in ((1337, 1000), (1000, 1337)):
            proxy = self.connect("10.99.0.2", 80, uid=uid, gid=gid, timeout=1.0)
            self.assertNotEqual(proxy.returncode, 0, "uid %d gid %d was redirected" % (uid, gid))
            self.assert_no_record()

        # The app talking to itself, on 127.0.0.1 or on its own address, stays direct.
        for host in ("127.0.0.1", "10.99.0.1"):
            local = self.connect(host, 8080)
            self.assertEqual(local.returncode, 0, local.stdout)
            self.assertEqual(self.record()["listener"], 8080, host)

    def test_without_rules_nothing_is_redirected(self):
        self.serve("127.0.0.1:15001")
        proc = self.connect("10.99.0.2", 80, timeout=1.0)
        self.assertNotEqual(proc.returncode, 0)
        self.assert_no_record()

    def test_inbound_goes_to_15006_except_excluded_ports(self):
        peer = self.link_to_new_namespace("pv0", "10.98.0.1/24", "10.98.0.2/24")
        self.serve("0.0.0.0:15006", "0.0.0.0:8080", "0.0.0.0:15021")
        proc = self.init()
        self.assertEqual(proc.returncode, 0, proc.stderr)

        to_app = self.connect("10.98.0.1", 8080, ns=peer)
        self.assertEqual(to_app.returncode, 0, to_app.stdout)
        self.assertEqual(self.record(), {"listener": 15006, "orig": "10.98.0.1:8080"})

        probe = self.connect("10.98.0.1", 15021, ns=peer)
        self.assertEqual(probe.returncode, 0, probe.stdout)
        self.assertEqual(self.record()["listener"], 15021)

        self.assertEqual(self.init("--cleanup").returncode, 0)
        after = self.connect("10.98.0.1", 8080, ns=peer)
        self.assertEqual(after.returncode, 0, after.stdout)
        self.assertEqual(self.record()["listener"], 8080)


if __name__ == "__main__":
    unittest.main()
