"""sluice_e2e: the building blocks of sluice's end-to-end tests (stdlib only).

One L2 segment (a bridge in a "switch" namespace) joins a client, a gateway,
one or more sluice nodes and HTTP backends, each in a network namespace named
after this process's PID. Backends carry the VIPs on loopback (arp_ignore /
arp_announce), decapsulate IPIP with scripts/sluice-decap and run real HTTP
servers that answer "backend NAME". A real etcd runs on a loopback port with
a data dir of its own. sluiced runs from a generated config on the DPDK plane
(net_af_packet over the node's veth, no hugepages, the host kernel behind a
TAP for health probes and etcd) or the XDP plane (native mode on the node's
veth, maps pinned in a bpffs of this run).

Everything is started by PID file and stopped by PID; `main()` tears it all
down in `finally`, also on SIGTERM (meson's timeout) and SIGINT. Tests exit
0 pass, 1 fail, 77 skip (only when CI is not "true": in CI a missing
requirement fails).

    import sluice_e2e as e2e
    def scenario(s):                      # s: a Session
        topo = s.topology(backends=("b1", "b2"))
        ...
    sys.exit(e2e.main(scenario, "what it proves"))
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SKIP = 77
PID = os.getpid()
CMD_TIMEOUT = 15
PYTHON = "/usr/bin/python3"

PREFIX = "192.0.2"           # RFC 5737, only inside our namespaces
VIP = f"{PREFIX}.100"
VIP_PORT = 80
CLIENT = "cl"
GATEWAY = "gw"
DEV = "e0"                   # every node's interface on the segment
TAP = "sl0"                  # a DPDK node's exception-path TAP
BIG_MTU = 1600               # encapsulation adds 20 bytes: every link but the client's
ADMIN_PORT = 9180            # each node's admin API, on its own namespace's loopback


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def in_ci():
    return os.environ.get("CI") == "true"


def require(condition, why):
    """Skips on a developer machine, fails under CI=true, when `condition` is false."""
    if not condition:
        raise Skip(why)


def check(condition, message):
    if not condition:
        raise Failure(message)


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(cmd, ns=None, check_rc=True, timeout=CMD_TIMEOUT, env=None):
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns] + list(cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r


def wait_for(what, predicate, timeout, interval=0.05):
    """Polls `predicate` until it returns something true (returned) or `timeout` s pass (Failure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- network namespaces from Python threads --------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def enter_netns(ns):
    """Moves the calling thread (only it: the network namespace is per thread) into `ns`."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(ns, fn, *args, timeout=60):
    """Runs fn(*args) on a fresh thread inside namespace `ns` and returns its result."""
    out = {}

    def body():
        try:
            enter_netns(ns)
            out["value"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["error"] = e
    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise Failure(f"{getattr(fn, '__name__', fn)} in {ns} did not finish within {timeout} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


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


def sysctl(ns, *settings):
    for s in settings:
        run(["sysctl", "-qw", s], ns=ns)


# -- backends ----------------------------------------------------------------

# HTTP/1.1 with keep-alive; every answer is "backend NAME". Leaves on its own
# when the test process is gone, so a SIGKILLed test leaves no server for long.
HTTP_SERVER = r"""
import http.server, os, sys, threading, time
name, port, ready, parent = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("backend %s\n" % name).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    allow_reuse_address = True
    daemon_threads = True
server = Server(("0.0.0.0", port), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
open(ready, "w").close()
while True:
    time.sleep(0.5)
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
"""


class Backends:
    """The backends' HTTP servers: start, kill (SIGKILL, as a crash) and restart by PID."""

    def __init__(self, session, topo, port=VIP_PORT):
        self.s, self.topo, self.port = session, topo, port

    def start(self, b):
        ready = os.path.join(self.s.workdir, f"http-{b}.ready")
        if os.path.exists(ready):
            os.unlink(ready)
        proc = self.s.procs.start(f"http-{b}", self.topo.ns[b],
                                  [PYTHON, "-u", "-c", HTTP_SERVER, b, str(self.port), ready, str(PID)])
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


# -- sluiced -------------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for everything we write
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def service(name="web", vip=VIP, port=VIP_PORT, **keys):
    """A [[service]] table as a dict: forwarding ipip, table_size 1009 unless given."""
    return {"name": name, "vip": f"{vip}:{port}", "forwarding": "ipip", "table_size": 1009, **keys}


class Sluiced:
    """One sluice node: its config, process, admin API and sluicectl.

    plane "dpdk": net_af_packet over the node's veth, one worker lcore, no
    hugepages; the kernel has no address on the veth (as with a NIC bound to
    DPDK) and reaches the segment through the exception-path TAP, which
    start() addresses with topo.tap_addr[lb] (health probes and etcd go that
    way); sluice answers ARP for the VIPs. plane "xdp": the node's kernel
    owns the veth (topo.addr[lb]) but not the VIPs, which the client routes
    via the node; the program attaches natively and pins its maps in a bpffs
    of this run, so a restart finds them.
    """

    def __init__(self, session, topo, services, plane="dpdk", lb="lb", extra_toml=""):
        check(plane in ("dpdk", "xdp"), f"unknown data plane {plane}")
        self.s, self.topo, self.services, self.plane, self.lb = session, topo, services, plane, lb
        self.ns = topo.ns[lb]
        self.name = f"sluiced-{lb}"
        self.extra_toml = extra_toml
        self.config_path = os.path.join(session.workdir, f"{lb}.toml")
        self.state_dir = os.path.join(session.workdir, f"{lb}-state")
        self.bpffs = os.path.join(session.workdir, f"{lb}-bpffs")
        self.pins = os.path.join(self.bpffs, "sluice")
        self.pids = []
        self._prepared = False

    def config_text(self, services=None):
        lines = ["[daemon]", 'log_level = "info"', f"state_dir = {toml_value(self.state_dir)}",
                 f'admin = {{ listen = "127.0.0.1", port = {ADMIN_PORT} }}', "",
                 "[dataplane]", f'type = "{self.plane}"', ""]
        if self.plane == "dpdk":
            lines += ["[dataplane.dpdk]",
                      'eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"]',
                      "main_lcore = 0", "worker_lcores = [1]", "mbuf_pool_size = 4095",
                      "conn_table_size = 16384", "exception_path = true", f'exception_tap = "{TAP}"', "",
                      "[[dataplane.dpdk.ports]]", 'name = "lan"',
                      f'device = "net_af_packet_{self.lb}{PID},iface={DEV},qpairs=2"', "rx_queues = 2", ""]
        else:
            lines += ["[dataplane.xdp]", f'interfaces = ["{DEV}"]', 'mode = "native"',
                      f"pin_path = {toml_value(self.pins)}", ""]
        lines += ["[network]", f'source_ipv4 = "{self.topo.addr[self.lb]}"',
                  f'gateway_ipv4 = "{self.topo.addr[GATEWAY]}"', ""]
        if self.extra_toml:
            lines += [self.extra_toml, ""]
        for svc in services if services is not None else self.services:
            lines.append("[[service]]")
            lines += [f"{k} = {toml_value(v)}" for k, v in svc.items()]
            lines.append("")
        return "\n".join(lines)

    def write_config(self, text=None):
        with open(self.config_path + ".tmp", "w") as f:
            f.write(self.config_text() if text is None else text)
        os.rename(self.config_path + ".tmp", self.config_path)

    def _prepare_node(self):
        if self._prepared:
            return
        ns = self.ns
        if self.plane == "dpdk":
            # The kernel must not answer what arrives on DPDK's interface: no
            # ARP, strict reverse-path filtering (its route back is the TAP).
            run(["ip", "-n", ns, "link", "set", DEV, "arp", "off"])
            sysctl(ns, "net.ipv4.conf.all.rp_filter=1", f"net.ipv4.conf.{DEV}.rp_filter=1")
        else:
            # The node's kernel owns its address, never the VIPs: while no
            # program is attached (a restart) it drops VIP packets instead of
            # resetting the connections. The client routes the VIPs via the
            # node, as an upstream router would after BGP.
            run(["ip", "-n", ns, "addr", "add", f"{self.topo.addr[self.lb]}/24", "dev", DEV])
            for vip in self.topo.vips:
                self.topo.route_vip(vip, [self.lb])
            # Native XDP_TX on a veth needs NAPI on the peer: an XDP program
            # there (ENV.md trap 1; GRO alone is not enough for XDP_TX).
            run(["ip", "-n", self.topo.ns["sw"], "link", "set", "dev", f"p{self.lb}", "xdpdrv",
                 "obj", self.s.xdp_pass_object(), "sec", "xdp"])
            os.makedirs(self.bpffs, exist_ok=True)
            run(["mount", "-t", "bpf", "bpf", self.bpffs])
            self.s.mounts.append(self.bpffs)
        self._prepared = True

    def start(self, wait_ready=True, timeout=40):
        """Starts sluiced; waits for "running" (and /readyz when wait_ready)."""
        self._prepare_node()
        if not os.path.exists(self.config_path):
            self.write_config()
        os.makedirs(self.state_dir, exist_ok=True)
        proc = self.s.procs.start(self.name, self.ns, [self.s.env.sluiced, "--config", self.config_path])
        self.pids.append(self.s.procs.pid(self.name))
        self.s.sluiced_pids.append(self.s.procs.pid(self.name))
        deadline = time.monotonic() + timeout

        def started():
            check(proc.poll() is None, f"{self.name} exited {proc.returncode} while starting:\n{self.log()[-3000:]}")
            return "running; SIGTERM" in self.log()
        wait_for(f"{self.name} to run", started, timeout, 0.1)
        if self.plane == "dpdk":
            run(["ip", "-n", self.ns, "addr", "replace", f"{self.topo.tap_addr[self.lb]}/24", "dev", TAP])
            run(["ip", "-n", self.ns, "link", "set", TAP, "up"])
        if wait_ready:
            wait_for(f"{self.name} /readyz", lambda: self.get("/readyz")[0] == 200,
                     max(1.0, deadline - time.monotonic()), 0.1)
        return proc

    def stop(self, signo=signal.SIGTERM, timeout=15):
        return self.s.procs.stop(self.name, signo, timeout)

    def running(self):
        return self.s.procs.running(self.name)

    def log(self):
        return self.s.procs.log(self.name)

    # -- admin API, from a thread inside the node's namespace --

    def request(self, method, path, timeout=5):
        """(status, parsed JSON or text); status 0 when the API does not answer."""
        def call():
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=timeout)
            try:
                c.request(method, path)
                r = c.getresponse()
                body = r.read().decode(errors="replace")
                try:
                    return r.status, json.loads(body)
                except ValueError:
                    return r.status, body
            except OSError as e:
                return 0, str(e)
            finally:
                c.close()
        return in_netns(self.ns, call, timeout=timeout + 5)

    def get(self, path):
        return self.request("GET", path)

    def api(self, path):
        status, body = self.get(path)
        check(status == 200, f"GET {path} on {self.lb}: {status} {body}")
        return body

    def backends(self, svc="web"):
        """{address: BACKEND json} of a service."""
        return {b["address"]: b for b in self.api(f"/v1/services/{svc}/backends")["backends"]}

    def fingerprint(self, svc="web"):
        return self.api("/v1/fingerprints")["fingerprints"].get(svc)

    def service(self, svc="web"):
        return self.api(f"/v1/services/{svc}")

    def metrics(self):
        """{(name, ((label, value), ...)): float} from /metrics."""
        status, text = self.get("/metrics")
        check(status == 200, f"/metrics on {self.lb}: {status}")
        return parse_metrics(text)

    def lookups(self, client, ports, vip=VIP, vip_port=VIP_PORT):
        """{client port: backend address} for TCP flows client:port -> vip.

        One connection per request: on a kept-alive connection each answer
        waits ~40 ms for a delayed ACK (the server writes head and body apart).
        """
        def call():
            import http.client
            out = {}
            for p in ports:
                q = urllib.parse.urlencode({"client": client, "client_port": p, "vip": vip,
                                            "vip_port": vip_port, "protocol": "tcp"})
                c = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=5)
                try:
                    c.request("GET", "/v1/lookup?" + q, headers={"Connection": "close"})
                    out[p] = json.loads(c.getresponse().read()).get("backend")
                finally:
                    c.close()
            return out
        return in_netns(self.ns, call, timeout=120)

    def ctl(self, *args, as_json=False, check_rc=True):
        cmd = [self.s.env.sluicectl] + (["--json"] if as_json else []) + ["--timeout", "5", *args]
        r = run(cmd, ns=self.ns, check_rc=False)
        if check_rc and r.returncode != 0:
            raise Failure(f"sluicectl {' '.join(args)} exited {r.returncode}: {r.stdout}{r.stderr}")
        if as_json:
            return json.loads(r.stdout)
        return r


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, ()
        if "{" in head:
            name, _, rest = head.partition("{")
            pairs = []
            for item in rest.rstrip("}").split('",'):
                if "=" in item:
                    k, _, v = item.partition("=")
                    pairs.append((k.strip(), v.strip().strip('"')))
            labels = tuple(sorted(pairs))
        out[(name, labels)] = float(value)
    return out


def metric(metrics, name, **labels):
    """One series' value, or None."""
    return metrics.get((name, tuple(sorted(labels.items()))))


# -- traffic -----------------------------------------------------------------

def http_get(vip, port, source_port, timeout):
    """One connection, one request; the answering backend's name."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind(("0.0.0.0", source_port))
        s.connect((vip, port))
        s.sendall(f"GET / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    words = body.decode(errors="replace").split()
    if not head.startswith(b"HTTP/1.1 200") or len(words) != 2 or words[0] != "backend":
        raise ValueError(f"unexpected reply {data[:80]!r}")
    return words[1]


class Load:
    """New TCP connections (one HTTP GET each) from the client to a VIP, on threads inside
    the client namespace, until stop(), `max_seconds` or `ports` run out.

    Each connection uses the next source port of `ports` (never reused, so no
    connection-table entry of an earlier flow decides where it goes) and is
    recorded as {"port", "t0", "t1" (time.monotonic()), "backend" or "error"}.
    """

    def __init__(self, topo, ports, vip=VIP, port=VIP_PORT, threads=4, pause=0.02, max_seconds=60,
                 timeout=2.0, max_failures=None):
        self.topo, self.vip, self.port = topo, vip, port
        self.max_failures = max_failures  # stop early once this many failed (a broken path)
        self.failures = 0
        self.ports = list(ports)
        self.threads_n, self.pause, self.max_seconds, self.timeout = threads, pause, max_seconds, timeout
        self.results = []
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = []

    def _take_port(self):
        with self._lock:
            if self._next >= len(self.ports):
                return None
            self._next += 1
            return self.ports[self._next - 1]

    def _worker(self):
        enter_netns(self.topo.ns[CLIENT])
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < end:
            p = self._take_port()
            if p is None:
                return
            rec = {"port": p, "t0": time.monotonic()}
            try:
                rec["backend"] = http_get(self.vip, self.port, p, self.timeout)
            except Exception as e:
                rec["error"] = f"{type(e).__name__}: {e}"
            rec["t1"] = time.monotonic()
            with self._lock:
                self.results.append(rec)
                self.failures += "error" in rec
                if self.max_failures is not None and self.failures >= self.max_failures:
                    self._stop.set()
            self._stop.wait(self.pause)

    def start(self):
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.threads_n)]
        for t in self._threads:
            t.start()
        return self

    def running(self):
        return any(t.is_alive() for t in self._threads)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        check(not self.running(), "the load generator did not stop")
        return self.results

    def snapshot(self):
        with self._lock:
            return list(self.results)


def summarize(results):
    ok = [r for r in results if "backend" in r]
    per = {}
    for r in ok:
        per[r["backend"]] = per.get(r["backend"], 0) + 1
    return {"connections": len(results), "ok": len(ok), "failed": len(results) - len(ok),
            "per_backend": dict(sorted(per.items()))}


def run_burst(topo, ports, threads=8):
    """A bounded burst: one connection per port, as fast as `threads` allow."""
    load = Load(topo, ports, threads=threads, pause=0, max_seconds=60, max_failures=20).start()
    deadline = time.monotonic() + 70
    while load.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    return load.stop()


class LongLived:
    """Keep-alive HTTP connections (one per source port) that send a request
    every `period` s, each recording its backends and error, until stop()."""

    def __init__(self, topo, ports, vip=VIP, port=VIP_PORT, period=0.2, max_seconds=150, timeout=10):
        self.topo, self.vip, self.port, self.period, self.max_seconds = topo, vip, port, period, max_seconds
        self.timeout = timeout  # per request: long enough for TCP to retransmit across a short outage
        self.conns = [{"port": p, "backends": [], "ok": 0, "error": None, "opened": False} for p in ports]
        self._stop = threading.Event()
        self._threads = []

    def _worker(self, st):
        import http.client
        enter_netns(self.topo.ns[CLIENT])
        end = time.monotonic() + self.max_seconds
        try:
            c = http.client.HTTPConnection(self.vip, self.port, timeout=self.timeout,
                                           source_address=("0.0.0.0", st["port"]))
            c.connect()
            st["opened"] = True
            while not self._stop.is_set() and time.monotonic() < end:
                c.request("GET", "/")
                r = c.getresponse()
                words = r.read().decode().split()
                if r.status != 200 or len(words) != 2:
                    raise ValueError(f"unexpected reply {words!r}")
                if words[1] not in st["backends"]:
                    st["backends"].append(words[1])
                st["ok"] += 1
                self._stop.wait(self.period)
            c.close()
        except Exception as e:
            st["error"] = f"{type(e).__name__}: {e} (after {st['ok']} answers)"

    def start(self):
        self._threads = [threading.Thread(target=self._worker, args=(st,), daemon=True) for st in self.conns]
        for t in self._threads:
            t.start()
        wait_for("the long-lived connections' first answers",
                 lambda: all(st["ok"] or st["error"] for st in self.conns), 15)
        return self

    def answers(self):
        return {st["port"]: st["ok"] for st in self.conns}

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)
        return self.conns


# -- session: environment, workdir, cleanup ---------------------------------

class Env:
    """Paths of the build products and tools a test uses. A missing build product is a
    broken build (Failure), never a reason to skip."""

    def __init__(self):
        here = os.path.dirname(os.path.abspath(__file__))
        self.source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(here)))
        self.build_dir = os.environ.get("SLUICE_BUILD_DIR") or os.environ.get("SLUICE_BUILD_ROOT") or ""
        self.sluiced = os.path.join(self.build_dir, "controlplane", "sluiced")
        self.sluicectl = os.path.join(self.build_dir, "controlplane", "sluicectl", "sluicectl")
        self.decap_tool = os.path.join(self.build_dir, "ebpf", "sluice-decap-tool")
        self.decap = os.path.join(self.source_root, "scripts", "sluice-decap")
        self.push_config = os.path.join(self.source_root, "scripts", "sluice-push-config")
        self.tool_env = dict(os.environ, SLUICE_BUILD_DIR=self.build_dir)
        for path in (self.sluiced, self.sluicectl, self.decap_tool):
            check(self.build_dir and os.access(path, os.X_OK),
                  f"{path} missing (SLUICE_BUILD_DIR/SLUICE_BUILD_ROOT = {self.build_dir!r})")


def have_tool(name):
    return any(os.access(os.path.join(d, name), os.X_OK)
               for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin", "/usr/bin"])


class Session:
    """What one test run owns: workdir, processes, topologies, bpffs mounts."""

    def __init__(self, tag):
        self.tag = tag
        self.env = None
        self.workdir = tempfile.mkdtemp(prefix=f"sluice-{tag}-{PID}-")
        self.procs = Processes(self.workdir)
        self.topologies = []
        self.mounts = []
        self.sluiced_pids = []
        self.nodes = []

    def topology(self, **kw):
        topo = Topology(self.tag, **kw)
        self.topologies.append(topo)
        try:
            topo.setup()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            raise Skip(f"netns, veth and bridge ({e})")
        return topo

    def xdp_pass_object(self):
        """A BPF object whose one XDP program passes everything (built once, with clang)."""
        obj = os.path.join(self.workdir, "xdp_pass.o")
        if not os.path.exists(obj):
            require(have_tool("clang"), "clang (an XDP_PASS program for the XDP node's veth peer)")
            src = os.path.join(self.workdir, "xdp_pass.c")
            with open(src, "w") as f:
                f.write('__attribute__((section("xdp"), used)) int xdp_pass(void *ctx) { return 2; /* XDP_PASS */ }\n'
                        'char _license[] __attribute__((section("license"), used)) = "GPL";\n')
            run(["clang", "-O2", "-target", "bpf", "-c", src, "-o", obj])
        return obj

    def sluiced(self, *args, **kw):
        node = Sluiced(self, *args, **kw)
        self.nodes.append(node)
        return node

    def cleanup(self):
        """Processes by PID, namespaces, bpffs mounts, EAL run dirs, the workdir;
        returns what could not be removed."""
        for node in self.nodes:  # SIGTERM first: sluiced detaches and prints its counters
            if node.running():
                node.stop(timeout=10)
        left = [f"pid {p}" for p in self.procs.kill_all()]
        for topo in self.topologies:
            topo.teardown()
        for m in reversed(self.mounts):
            run(["umount", m], check_rc=False)
        for pid in self.sluiced_pids:  # the EAL's run dir, unless the PID is someone else's by now
            if pid and not os.path.exists(f"/proc/{pid}"):
                subprocess.run(["rm", "-rf", "--", f"/var/run/dpdk/sluiced-{pid}"], check=False)
        names = set(run(["ip", "netns", "list"], check_rc=False).stdout.split())
        for topo in self.topologies:
            left += [ns for ns in topo.ns.values() if ns in names]
        subprocess.run(["rm", "-rf", "--", self.workdir], check=False)
        return left


def _terminate(signum, frame):
    raise SystemExit(f"signal {signum}")  # unwinds through main()'s finally


def main(scenario, title, tag="e2e", needs=("ip", "ethtool", "tc", "sysctl", "mount")):
    """Runs scenario(session) with cleanup; returns the exit status (0, 1 or 77)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    started = time.monotonic()
    session = None
    status = 1
    try:
        try:
            require(os.geteuid() == 0, "root (netns, veth, bridge, BPF)")
            require((os.cpu_count() or 1) >= 2, "two CPUs (a DPDK worker lcore besides the main one)")
            for tool in needs + ("/usr/bin/etcd", "/usr/bin/etcdctl"):
                require(have_tool(tool) if "/" not in tool else os.access(tool, os.X_OK), f"the {tool} command")
            session = Session(tag)
            session.env = Env()
            log(f"{title}: workdir {session.workdir}")
            scenario(session)
            status = 0
            log(f"PASS {title} in {time.monotonic() - started:.1f} s")
        except Skip as e:
            if in_ci():
                print(f"FAIL: required in CI but missing: {e}", file=sys.stderr)
                status = 1
            else:
                print(f"SKIP: missing {e} (would fail with CI=true)")
                status = SKIP
        except (Failure, RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL: {e}", file=sys.stderr)
            if session:
                for node in session.nodes:
                    print(f"--- {node.name} log (last lines) ---\n{node.log()[-4000:]}", file=sys.stderr)
            status = 1
    except SystemExit as e:
        print(f"interrupted ({e}); cleaning up", file=sys.stderr)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if session:
            left = session.cleanup()
            if left:
                print(f"FAIL: left behind: {left}", file=sys.stderr)
                status = 1
    print(f"{title}: exit {status} after {time.monotonic() - started:.1f} s", flush=True)
    return status
