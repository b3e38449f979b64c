"""The machines of an e2e topology: processes by PID, the namespaces and the
segment, HTTP backends, a real etcd."""

import json
import os
import signal
import subprocess

from e2e_base import (BIG_MTU, CLIENT, CMD_TIMEOUT, DEV, GATEWAY, PID, PREFIX, PYTHON, VIP, VIP_PORT, check, run,
                      sysctl, wait_for)


# -- processes --------------------------------------------------------------

class Processes:
    """Processes started in namespaces, each known by its own PID (never by name).

    A PID is only signalled while its Popen is unreaped (poll() is None), so
    it cannot have been reused by someone else's process.
    """

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = {}      # name -> (Popen of `ip netns exec`, pidfile, logfile), the latest run
        self.started = []    # (Popen, pidfile) of every run, restarted ones too

    def start(self, name, ns, argv, env=None):
        pidfile = os.path.join(self.workdir, f"{name}.pid")
        logfile = os.path.join(self.workdir, f"{name}.log")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        out = open(logfile, "ab")
        # `ip netns exec ... &` gives ip's PID: record the command's own.
        cmd = ["ip", "netns", "exec", ns, "sh", "-c", 'echo $$ >"$0"; exec "$@"', pidfile] + list(argv)
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        out.close()
        self.procs[name] = (proc, pidfile, logfile)
        self.started.append((proc, pidfile))
        wait_for(f"{name}'s PID file", lambda: self.pid(name) or proc.poll() is not None, CMD_TIMEOUT, 0.01)
        return proc

    def pid(self, name):
        try:
            with open(self.procs[name][1]) as f:
                return int(f.read().strip())
        except (OSError, ValueError, KeyError):
            return None

    def running(self, name):
        return name in self.procs and self.procs[name][0].poll() is None

    def log(self, name):
        try:
            with open(self.procs[name][2], errors="replace") as f:
                return f.read()
        except (OSError, KeyError):
            return ""

    def send(self, name, signo):
        if name in self.procs:
            _signal_live(*self.procs[name][:2], signo)

    def wait(self, name, timeout):
        """The exit status, or None if still running after `timeout` s."""
        try:
            return self.procs[name][0].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, name, signo=signal.SIGTERM, timeout=10):
        """Signals, waits, then SIGKILLs; returns the exit status."""
        self.send(name, signo)
        rc = self.wait(name, timeout)
        if rc is None:
            self.send(name, signal.SIGKILL)
            rc = self.wait(name, CMD_TIMEOUT)
        return rc

    def kill_all(self):
        """SIGKILLs every process still running; returns the PIDs that would not go."""
        for proc, pidfile in self.started:
            _signal_live(proc, pidfile, signal.SIGCONT)  # a stopped etcd, say
            _signal_live(proc, pidfile, signal.SIGKILL)
            try:
                proc.wait(timeout=CMD_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        return [proc.pid for proc, _ in self.started if proc.poll() is None]


def _signal_live(proc, pidfile, signo):
    """Signals the command (its PID file's PID: `ip netns exec` and `sh` exec into it,
    so it is the Popen's own) while the Popen is unreaped."""
    if proc.poll() is not None:
        return
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pid = proc.pid
    try:
        os.kill(pid, signo)
    except ProcessLookupError:
        pass


# -- topology ----------------------------------------------------------------

class Topology:
    """The switch, client, gateway, sluice nodes and backends of one test.

    ns[role] is the namespace name, addr[role] the address on the segment;
    a node also has tap_addr[role] (its kernel behind a DPDK TAP). `hosts`
    are plain machines on the segment (.5, .6, ...), e.g. an etcd that
    several nodes share.
    """

    def __init__(self, tag, lbs=("lb",), backends=("b1", "b2", "b3"), vips=(VIP,), hosts=()):
        self.lbs, self.backends, self.vips, self.hosts = tuple(lbs), tuple(backends), tuple(vips), tuple(hosts)
        roles = ("sw", CLIENT, GATEWAY) + self.lbs + self.backends + self.hosts
        self.ns = {r: f"sl{tag}-{r}-{PID}" for r in roles}
        self.addr = {CLIENT: f"{PREFIX}.10", GATEWAY: f"{PREFIX}.1"}
        self.tap_addr = {}
        for i, lb in enumerate(self.lbs):
            self.addr[lb] = f"{PREFIX}.{2 + 2 * i}"
            self.tap_addr[lb] = f"{PREFIX}.{3 + 2 * i}"
        for i, b in enumerate(self.backends):
            self.addr[b] = f"{PREFIX}.{21 + i}"
        for i, h in enumerate(self.hosts):
            self.addr[h] = f"{PREFIX}.{5 + i}"
        self.created = []

    def backend_of(self, address):
        return next((b for b in self.backends if self.addr[b] == address), None)

    def setup(self):
        sw = self.ns["sw"]
        self._add_ns(sw)
        run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", "br0", "up"])
        for role in (CLIENT, GATEWAY) + self.lbs + self.backends + self.hosts:
            ns = self.ns[role]
            mtu = "1500" if role == CLIENT else str(BIG_MTU)
            self._add_ns(ns)
            sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
            run(["ip", "link", "add", DEV, "netns", ns, "mtu", mtu, "type", "veth",
                 "peer", "name", f"p{role}", "netns", sw, "mtu", mtu])
            run(["ip", "-n", sw, "link", "set", f"p{role}", "master", "br0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", DEV, "up"])
            if role not in self.lbs:  # a node's interface is its data plane's: see Sluiced
                run(["ip", "-n", ns, "addr", "add", f"{self.addr[role]}/24", "dev", DEV])
        # A veth leaves TCP checksums to an offload that never happens on frames
        # a packet socket copies (DPDK's af_packet port, then its TAP) or XDP
        # turns raw: everyone who talks to or through a node sends them whole.
        for role in (CLIENT, GATEWAY) + self.backends + self.hosts:
            run(["ethtool", "-K", DEV, "tx", "off"], ns=self.ns[role])
        gw = self.ns[GATEWAY]
        sysctl(gw, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
               f"net.ipv4.conf.{DEV}.send_redirects=0", "net.ipv4.conf.all.rp_filter=0",
               f"net.ipv4.conf.{DEV}.rp_filter=0")
        for b in self.backends:
            ns = self.ns[b]
            for vip in self.vips:
                run(["ip", "-n", ns, "addr", "add", f"{vip}/32", "dev", "lo"])
            # The VIPs are sluice's to answer ARP for; decapsulated packets come
            # from a client the outer header does not explain.
            sysctl(ns, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
                   f"net.ipv4.conf.{DEV}.arp_ignore=1", f"net.ipv4.conf.{DEV}.arp_announce=2",
                   "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                   f"net.ipv4.conf.{DEV}.rp_filter=0", "net.ipv4.conf.lo.rp_filter=0")

    def route_vip(self, vip, via_lbs):
        """The client reaches `vip` through these nodes (ECMP when several), as after BGP."""
        hops = [self.addr[lb] for lb in via_lbs]
        if len(hops) == 1:
            cmd = ["ip", "-n", self.ns[CLIENT], "route", "replace", f"{vip}/32", "via", hops[0]]
        else:
            # Hash on ports too (policy 1), or every flow of one client takes one node.
            sysctl(self.ns[CLIENT], "net.ipv4.fib_multipath_hash_policy=1")
            cmd = ["ip", "-n", self.ns[CLIENT], "route", "replace", f"{vip}/32"]
            for h in hops:
                cmd += ["nexthop", "via", h]
        run(cmd)

    def _add_ns(self, ns):
        run(["ip", "netns", "add", ns])
        self.created.append(ns)

    def attach_decap(self, env):
        """scripts/sluice-decap on every backend: IPIP to its address is unwrapped at tc ingress."""
        for b in self.backends:
            run([env.decap, "attach", DEV, "--local", self.addr[b]], ns=self.ns[b], env=env.tool_env)

    def decapsulated(self, env, b):
        """Packets backend `b`'s tc decapsulator unwrapped: what sluice sent it, as the backend saw it."""
        r = run([env.decap, "stats", DEV, "--json"], ns=self.ns[b], env=env.tool_env)
        return sum(v["packets"] for k, v in json.loads(r.stdout).items() if k.startswith("decap_"))

    def teardown(self):
        for ns in reversed(self.created):
            run(["ip", "netns", "del", ns], check_rc=False)
        self.created = []


# -- backends ----------------------------------------------------------------

# The backends' HTTP server: "backend NAME" on every GET (tests/common).
HTTP_SERVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "common",
                           "http_backend.py")


class Backends:
    """The backends' HTTP servers: start, kill (SIGKILL, as a crash) and restart by PID."""

    def __init__(self, session, topo, port=VIP_PORT, cpu=None):
        self.s, self.topo, self.port = session, topo, port
        self.pin = ["taskset", "-c", str(cpu)] if cpu is not None else []  # see LongLived's cpu

    def start(self, b):
        ready = os.path.join(self.s.workdir, f"http-{b}.ready")
        if os.path.exists(ready):
            os.unlink(ready)
        proc = self.s.procs.start(f"http-{b}", self.topo.ns[b],
                                  self.pin + [PYTHON, "-u", HTTP_SERVER, b, str(self.port), ready, str(PID)])
        wait_for(f"{b}'s HTTP server", lambda: os.path.exists(ready) or proc.poll() is not None, CMD_TIMEOUT)
        check(proc.poll() is None, f"{b}'s HTTP server exited {proc.returncode}: {self.s.procs.log('http-' + b)}")

    def start_all(self):
        for b in self.topo.backends:
            self.start(b)

    def kill(self, b):
        self.s.procs.stop(f"http-{b}", signal.SIGKILL)


# -- etcd --------------------------------------------------------------------

class Etcd:
    """A real etcd in namespace `ns` on host:port, data in the session's workdir.

    stop() kills it (SIGKILL: a crash), start() brings it back on the same
    data; pause()/resume() freeze it (SIGSTOP/SIGCONT) with its sockets open.
    Backend keys are PREFIX + address, values the discovery JSON schema.
    """

    def __init__(self, session, ns, host="127.0.0.1", port=2379, prefix="/sluice/services/web/"):
        self.s, self.ns, self.host, self.port, self.prefix = session, ns, host, port, prefix
        self.url = f"http://{host}:{port}"
        self.datadir = os.path.join(session.workdir, f"etcd-{port}")
        self.name = f"etcd-{port}"

    def start(self):
        peer = f"http://127.0.0.1:{self.port + 1}"
        listen = self.url if self.host == "127.0.0.1" else f"{self.url},http://127.0.0.1:{self.port}"
        proc = self.s.procs.start(self.name, self.ns, [
            "/usr/bin/etcd", "--name", "e2e", "--data-dir", self.datadir,
            "--listen-client-urls", listen, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"e2e={peer}", "--log-level", "warn"])
        wait_for("etcd to answer", lambda: proc.poll() is not None or self.healthy(), 20, 0.1)
        check(proc.poll() is None, f"etcd exited {proc.returncode}: {self.s.procs.log(self.name)[-2000:]}")

    def stop(self):
        self.s.procs.stop(self.name, signal.SIGKILL)

    def pause(self):
        self.s.procs.send(self.name, signal.SIGSTOP)

    def resume(self):
        self.s.procs.send(self.name, signal.SIGCONT)

    def ctl(self, *args, check_rc=True):
        return run(["/usr/bin/etcdctl", "--endpoints", f"http://127.0.0.1:{self.port}", "--dial-timeout=2s",
                    "--command-timeout=5s", *args], ns=self.ns, check_rc=check_rc)

    def healthy(self):
        return self.ctl("endpoint", "health", check_rc=False).returncode == 0

    def put_backend(self, address, **fields):
        self.ctl("put", self.prefix + address, json.dumps({"address": address, **fields}))

    def delete_backend(self, address):
        self.ctl("del", self.prefix + address)
