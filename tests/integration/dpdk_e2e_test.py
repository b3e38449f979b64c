#!/usr/bin/python3
"""End to end through the DPDK data plane, in network namespaces.

One L2 segment (a bridge in a "switch" namespace) joins a client, sluiced
(DPDK on net_af_packet over a veth, one worker lcore, a TAP exception path
to its own namespace's kernel), a gateway and three backends. Each backend has both VIPs on loopback (arp_ignore/arp_announce so
it never answers ARP for them), decapsulates IPIP with scripts/sluice-decap
and runs a real HTTP server that says which backend it is. sluiced serves
one L2 DSR VIP and one IPIP VIP (IPIP leaves through the gateway: the core
sends encapsulated packets to the port's next hop).

Proves, for both modes: every real TCP connection from the client succeeds,
the connections spread over all three backends, the replies reach the client
straight from the backends (their source MACs are the backends', never
sluice's, and sluice forwarded exactly the client's packets to the VIPs and
nothing else), the client learned the VIP's MAC by ARP through the data
plane (no static entry anywhere: sluice resolves backends and gateway by
ARP too), the host kernel behind sluice's TAP serves TCP to the client
(exception path), and sluiced stops cleanly on SIGTERM.

Exit status: 0 pass, 1 fail, 77 skip (missing root or a kernel feature, only
when CI is not "true": in CI those fail).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from sluice_testlib import Failure, check, in_ci, require, run  # noqa: E402,F401  (demo.py uses them too)

SKIP = 77
CMD_TIMEOUT = 15
START_TIMEOUT = 30       # seconds for sluiced to report it is running
STOP_TIMEOUT = 15        # seconds for sluiced to exit after SIGTERM
CONNECTIONS = 90         # per VIP
MIN_SHARE = 0.15         # each backend gets at least this share of a VIP's connections

PID = os.getpid()
NS = {role: f"sl-{role}-{PID}" for role in ("sw", "cl", "lb", "gw", "b1", "b2", "b3")}
BACKENDS = ("b1", "b2", "b3")
BRIDGE = "br0"
DEV = "e0"  # the interface name inside every non-switch namespace
TAP = "sl0"  # sluice's exception-path TAP in its namespace

# Documentation prefix (RFC 5737) inside namespaces of our own.
PREFIX = "192.0.2"
ADDR = {"cl": f"{PREFIX}.10", "lb": f"{PREFIX}.2", "gw": f"{PREFIX}.1", "host": f"{PREFIX}.3",
        "b1": f"{PREFIX}.21", "b2": f"{PREFIX}.22", "b3": f"{PREFIX}.23"}
VIP_DSR = f"{PREFIX}.100"
VIP_IPIP = f"{PREFIX}.101"
VIP_PORT = 80
# Encapsulation adds 20 bytes: every link but the client's carries 1600.
BIG_MTU = 1600

CONFIG = """
[daemon]
log_level = "info"

[dataplane]
type = "dpdk"

[dataplane.dpdk]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"]
main_lcore = 0
worker_lcores = [1]
mbuf_pool_size = 4095
conn_table_size = 4096
exception_path = true
exception_tap = "{tap}"

[[dataplane.dpdk.ports]]
name = "lan"
device = "net_af_packet_e2e{pid},iface={dev},qpairs=2"
rx_queues = 2

[network]
source_ipv4 = "{lb}"
gateway_ipv4 = "{gw}"

[[service]]
name = "dsr"
vip = "{vip_dsr}:{port}"
forwarding = "l2dsr"
table_size = 1009
health_check = {{ type = "none" }}
backends = [ {{ address = "{b1}" }}, {{ address = "{b2}" }}, {{ address = "{b3}" }} ]

[[service]]
name = "ipip"
vip = "{vip_ipip}:{port}"
forwarding = "ipip"
table_size = 1009
health_check = {{ type = "none" }}
backends = [ {{ address = "{b1}" }}, {{ address = "{b2}" }}, {{ address = "{b3}" }} ]
"""

SERVER = r"""
import http.server, os, socketserver, sys
name, ready = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        self.reply(0)
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        got = 0
        while got < length:
            chunk = self.rfile.read(min(65536, length - got))
            if not chunk:
                break
            got += len(chunk)
        self.reply(got)
    def reply(self, received):
        body = ("backend %s %d\n" % (name, received)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
server = Server(("0.0.0.0", @PORT@), Handler)
server.timeout = 1
open(ready, "w").close()
import time
start = time.monotonic()
while time.monotonic() - start < 170:   # never outlive the test by much
    server.handle_request()
""".replace("@PORT@", str(VIP_PORT))

# Runs in the client namespace: real TCP connections to each VIP, and a
# packet socket on the client's interface that sees every frame it sends
# and receives, to tell who the replies came from.
CLIENT = r"""
import json, socket, struct, sys
dev, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
UPLOAD = 64 * 1024  # every tenth connection: full-sized segments, encapsulated beyond 1500
vips = sys.argv[4:]
ETH_P_ALL, PACKET_OUTGOING = 3, 4
cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
cap.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
cap.bind((dev, 0))
cap.setblocking(False)
to_vip = {v: 0 for v in vips}
reply_macs = {v: {} for v in vips}
def drain():
    while True:
        try:
            frame, addr = cap.recvfrom(65535)
        except BlockingIOError:
            return
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        src_mac = frame[6:12].hex(":")
        src, dst = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
        if addr[2] == PACKET_OUTGOING and dst in to_vip:
            to_vip[dst] += 1
        elif addr[2] != PACKET_OUTGOING and src in reply_macs:
            reply_macs[src][src_mac] = reply_macs[src].get(src_mac, 0) + 1
results = {v: {"ok": 0, "errors": [], "backends": {}} for v in vips}
for vip in vips:
    for i in range(count):
        try:
            upload = UPLOAD if i % 10 == 0 else 0
            with socket.create_connection((vip, port), timeout=3) as s:
                if upload:
                    s.sendall(b"POST / HTTP/1.0\r\nHost: " + vip.encode() + b"\r\nContent-Length: " +
                              str(upload).encode() + b"\r\n\r\n" + b"x" * upload)
                else:
                    s.sendall(b"GET / HTTP/1.0\r\nHost: " + vip.encode() + b"\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            body = data.split(b"\r\n\r\n", 1)[-1].decode().strip()
            words = body.split()
            if len(words) != 3 or words[0] != "backend" or int(words[2]) != upload:
                raise ValueError("unexpected reply %r" % data[:80])
            who = words[1]
            results[vip]["ok"] += 1
            results[vip]["backends"][who] = results[vip]["backends"].get(who, 0) + 1
        except Exception as e:
            results[vip]["errors"].append("%d: %s" % (i, e))
            if len(results[vip]["errors"]) >= 5:
                break  # bounded: a broken path fails in seconds, not count * timeout
        drain()
import time
time.sleep(0.3)
drain()
print(json.dumps({"results": results, "to_vip": to_vip, "reply_macs": reply_macs}))
"""


# One HTTP GET from the client to the host kernel behind sluice's TAP.
HOST_FETCH = r"""
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
print(data.split(b"\r\n\r\n", 1)[-1].decode().strip())
"""


def sysctl(ns, *settings):
    for s in settings:
        run(["sysctl", "-qw", s], ns=ns)


def link_mac(ns, dev):
    return json.loads(run(["ip", "-n", ns, "-j", "link", "show", "dev", dev]).stdout)[0]["address"]


class Processes:
    """Background processes started as `sh -c 'echo $$ >PIDFILE; exec CMD'`
    inside a namespace, so each is killed by its own PID, never by name."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = {}  # name -> (Popen of `ip netns exec`, pidfile, logfile)

    def start(self, name, ns, argv):
        pidfile = os.path.join(self.workdir, f"{name}.pid")
        logpath = os.path.join(self.workdir, f"{name}.log")
        log = open(logpath, "w")
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", f"echo $$ >{pidfile}; exec {quoted}"],
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = (proc, pidfile, logpath)
        return proc

    def pid(self, name):
        _, pidfile, _ = self.procs[name]
        try:
            with open(pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def log(self, name):
        with open(self.procs[name][2], errors="replace") as f:
            return f.read()

    def signal(self, name, signo):
        pid = self.pid(name)
        if pid is not None:
            try:
                os.kill(pid, signo)
            except ProcessLookupError:
                pass

    def wait(self, name, timeout):
        try:
            return self.procs[name][0].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_all(self):
        for name, (proc, _, _) in self.procs.items():
            if proc.poll() is None:
                self.signal(name, signal.SIGKILL)
                try:
                    proc.wait(timeout=CMD_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()


def setup():
    run(["ip", "netns", "add", NS["sw"]])
    run(["ip", "-n", NS["sw"], "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "-n", NS["sw"], "link", "set", BRIDGE, "up"])
    for role in ("cl", "lb", "gw") + BACKENDS:
        ns = NS[role]
        mtu = "1500" if role == "cl" else str(BIG_MTU)
        run(["ip", "netns", "add", ns])
        sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        run(["ip", "link", "add", DEV, "netns", ns, "mtu", mtu, "type", "veth",
             "peer", "name", f"p{role}", "netns", NS["sw"], "mtu", mtu])
        run(["ip", "-n", NS["sw"], "link", "set", f"p{role}", "master", BRIDGE, "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "link", "set", DEV, "up"])
        if role != "lb":  # sluice's interface belongs to DPDK: no kernel address
            run(["ip", "-n", ns, "addr", "add", f"{ADDR[role]}/24", "dev", DEV])
    # DPDK owns sluice's interface: the kernel there must not answer what
    # arrives on it (a NIC bound to DPDK is invisible to it), or the host
    # behind the TAP would be reached twice. No ARP on it, and strict
    # reverse-path filtering (the route back to the client is the TAP)
    # drops IP on it; af_packet sees every frame regardless.
    run(["ip", "-n", NS["lb"], "link", "set", DEV, "arp", "off"])
    sysctl(NS["lb"], "net.ipv4.conf.all.rp_filter=1", f"net.ipv4.conf.{DEV}.rp_filter=1")
    # The client's veth would leave TCP checksums to an offload that never
    # happens on the frames sluice's af_packet port copies.
    run(["ethtool", "-K", DEV, "tx", "off"], ns=NS["cl"])
    # The gateway routes IPIP back out of the interface it came in on.
    sysctl(NS["gw"], "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
           f"net.ipv4.conf.{DEV}.send_redirects=0", "net.ipv4.conf.all.rp_filter=0",
           f"net.ipv4.conf.{DEV}.rp_filter=0")
    for b in BACKENDS:
        ns = NS[b]
        for vip in (VIP_DSR, VIP_IPIP):
            run(["ip", "-n", ns, "addr", "add", f"{vip}/32", "dev", "lo"])
        # The VIPs are sluice's to answer ARP for; decapsulated packets come
        # from a client address the tunnel's outer header does not explain.
        sysctl(ns, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
               f"net.ipv4.conf.{DEV}.arp_ignore=1", f"net.ipv4.conf.{DEV}.arp_announce=2",
               "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
               f"net.ipv4.conf.{DEV}.rp_filter=0", "net.ipv4.conf.lo.rp_filter=0")


def counters_from_log(text):
    """The "final counters:" block sluiced prints on exit."""
    counters, backends = {}, {}
    lines = text.splitlines()
    if "final counters:" not in lines:
        return None, None
    for line in lines[lines.index("final counters:") + 1:]:
        if not line.startswith("  "):
            break
        parts = line.split()
        if parts[0] == "backend":  # backend SERVICE ADDRESS id N packets P bytes B
            backends[(parts[1], parts[2])] = int(parts[6])
        else:
            counters[parts[0]] = int(parts[1])
    return counters, backends


def main():
    require(os.geteuid() == 0, "root (netns, veth, bridge, tc BPF)")
    require((os.cpu_count() or 1) >= 2, "two CPUs (a DPDK worker lcore besides the main one)")
    for tool in ("ip", "ethtool", "tc", "sysctl"):
        require(any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":")
                    + ["/usr/sbin", "/sbin"]), f"the {tool} command")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    build_dir = os.environ.get("SLUICE_BUILD_DIR") or os.environ.get("SLUICE_BUILD_ROOT")
    sluiced = os.path.join(build_dir or "", "controlplane", "sluiced")
    decap_tool = os.path.join(build_dir or "", "ebpf", "sluice-decap-tool")
    # A missing build product is a broken build, never a reason to skip.
    for path in (sluiced, decap_tool):
        if not build_dir or not os.access(path, os.X_OK):
            print(f"FAIL: {path} missing (SLUICE_BUILD_DIR/SLUICE_BUILD_ROOT = {build_dir})", file=sys.stderr)
            return 1
    decap = os.path.join(source_root, "scripts", "sluice-decap")

    workdir = tempfile.mkdtemp(prefix=f"sluice-e2e-{PID}-")
    procs = Processes(workdir)
    started = time.monotonic()
    try:
        try:
            setup()
            run(["tc", "qdisc", "add", "dev", DEV, "clsact"], ns=NS["b1"])  # feature probe
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            require(False, f"netns, veth, bridge and clsact ({e})")
        return run_test(procs, workdir, sluiced, decap, build_dir, started)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        for name in procs.procs:
            if name == "sluiced":
                print(f"--- sluiced log ---\n{procs.log(name)}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
        for ns in NS.values():
            run(["ip", "netns", "del", ns], check_rc=False)
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))
        os.rmdir(workdir)


def run_test(procs, workdir, sluiced, decap, build_dir, started):
    macs = {role: link_mac(NS[role], DEV) for role in ("cl", "lb", "gw") + BACKENDS}
    env_build = dict(os.environ, SLUICE_BUILD_DIR=build_dir)
    for b in BACKENDS:
        subprocess.run(["ip", "netns", "exec", NS[b], decap, "attach", DEV, "--local", ADDR[b]],
                       check=True, capture_output=True, timeout=CMD_TIMEOUT, env=env_build)
        ready = os.path.join(workdir, f"{b}.ready")
        procs.start(f"server-{b}", NS[b], ["/usr/bin/python3", "-u", "-c", SERVER, b, ready])
    deadline = time.monotonic() + CMD_TIMEOUT
    while not all(os.path.exists(os.path.join(workdir, f"{b}.ready")) for b in BACKENDS):
        check(time.monotonic() < deadline, "backend HTTP servers did not start")
        time.sleep(0.05)

    config_path = os.path.join(workdir, "sluice.toml")
    with open(config_path, "w") as f:
        f.write(CONFIG.format(pid=PID, dev=DEV, tap=TAP, lb=ADDR["lb"], gw=ADDR["gw"], vip_dsr=VIP_DSR,
                              vip_ipip=VIP_IPIP, port=VIP_PORT, b1=ADDR["b1"], b2=ADDR["b2"], b3=ADDR["b3"]))
    # No static neighbour anywhere: sluice resolves the backends and the
    # gateway, and answers the client's ARP for the VIPs, in its data plane.
    proc = procs.start("sluiced", NS["lb"], [sluiced, "--config", config_path])
    deadline = time.monotonic() + START_TIMEOUT
    while "running; SIGTERM" not in procs.log("sluiced"):
        check(proc.poll() is None, f"sluiced exited {proc.returncode} during start-up")
        check(time.monotonic() < deadline, f"sluiced did not start within {START_TIMEOUT} s")
        time.sleep(0.1)
    print(f"sluiced running (MAC {macs['lb']}) after {time.monotonic() - started:.1f} s")
    check(f"MTU {BIG_MTU}," in procs.log("sluiced"), f"sluiced did not take the interface's MTU {BIG_MTU}")

    # The exception path: the host kernel behind sluice (its TAP) owns a
    # management address and runs a service there (think SSH); the client
    # reaches it through the data plane, ARP included.
    run(["ip", "-n", NS["lb"], "addr", "add", f"{ADDR['host']}/24", "dev", TAP])
    run(["ip", "-n", NS["lb"], "link", "set", TAP, "up"])
    ready = os.path.join(workdir, "host.ready")
    procs.start("server-host", NS["lb"], ["/usr/bin/python3", "-u", "-c", SERVER, "host", ready])
    deadline = time.monotonic() + CMD_TIMEOUT
    while not os.path.exists(ready):
        check(time.monotonic() < deadline, "the host's HTTP server did not start")
        time.sleep(0.05)
    fetch = run(["/usr/bin/python3", "-c", HOST_FETCH, ADDR["host"], str(VIP_PORT)], ns=NS["cl"], check_rc=False)
    check(fetch.returncode == 0 and fetch.stdout.strip() == "backend host 0",
          f"the host behind sluice's TAP did not answer: {fetch.stdout}{fetch.stderr}")
    print("ok   exception path: the host kernel behind sluice serves TCP through the TAP")

    out = run(["/usr/bin/python3", "-c", CLIENT, DEV, str(VIP_PORT), str(CONNECTIONS), VIP_DSR, VIP_IPIP],
              ns=NS["cl"], timeout=120)
    report = json.loads(out.stdout)

    procs.signal("sluiced", signal.SIGTERM)
    rc = procs.wait("sluiced", STOP_TIMEOUT)
    log = procs.log("sluiced")
    check(rc == 0, f"sluiced exited {rc} after SIGTERM, want 0")
    counters, sent = counters_from_log(log)
    check(counters is not None, "sluiced printed no final counters")

    backend_macs = {macs[b] for b in BACKENDS}
    for vip, mode, service in ((VIP_DSR, "L2 DSR", "dsr"), (VIP_IPIP, "IPIP", "ipip")):
        r = report["results"][vip]
        check(not r["errors"], f"{mode}: {len(r['errors'])} of {CONNECTIONS} connections failed: "
                               f"{r['errors'][:5]}")
        shares = {b: r["backends"].get(b, 0) for b in BACKENDS}
        print(f"ok   {mode}: {r['ok']}/{CONNECTIONS} connections, per backend {shares}")
        for b, n in shares.items():
            check(n >= MIN_SHARE * CONNECTIONS, f"{mode}: backend {b} got {n} of {CONNECTIONS} connections, "
                                                f"want >= {MIN_SHARE:.0%}")
        seen = report["reply_macs"][vip]
        check(set(seen) == backend_macs, f"{mode}: replies came from MACs {seen}, want exactly the backends' "
                                         f"{sorted(backend_macs)} (sluice is {macs['lb']})")
        for b in BACKENDS:
            check(sent.get((service, ADDR[b]), 0) > 0, f"{mode}: sluice sent nothing to {b} ({sent})")
        print(f"ok   {mode}: replies straight from the backends' MACs, none from sluice")

    # Everything sluice transmitted is the client's traffic to the VIPs:
    # no reply went through it.
    client_frames = sum(report["to_vip"].values())
    check(counters["tx_packets"] == client_frames,
          f"sluice forwarded {counters['tx_packets']} packets, the client sent {client_frames} to the VIPs")
    check(sum(sent.values()) == client_frames, f"per-backend counters {sent} do not add up to {client_frames}")
    drops = {k: v for k, v in counters.items() if k.startswith("drop_")}
    check(not drops and counters["icmp_sent"] == 0, f"sluice dropped VIP traffic: {drops}, "
                                                    f"icmp_sent {counters['icmp_sent']}")
    print(f"ok   sluice forwarded exactly the client's {client_frames} packets to the VIPs, dropped none")

    neigh = json.loads(run(["ip", "-n", NS["cl"], "-j", "neigh", "show", "dev", DEV]).stdout)
    for vip in (VIP_DSR, VIP_IPIP):
        entry = next((n for n in neigh if n.get("dst") == vip), None)
        check(entry is not None and entry.get("lladdr") == macs["lb"],
              f"client's neighbour entry for {vip} is {entry}, want sluice's MAC {macs['lb']}")
        check("PERMANENT" not in entry.get("state", []), f"client's entry for {vip} is static: {entry}")
    check(counters["control_packets"] > 0, "sluice's data plane handled no ARP")
    print("ok   client learned the VIPs' MAC (sluice's) by ARP through the data plane")
    print("sluiced counters: " + ", ".join(f"{k} {counters[k]}" for k in (
        "rx_packets", "tx_packets", "exception_packets", "control_packets", "conn_misses")))
    print(f"dpdk e2e: all checks passed in {time.monotonic() - started:.1f} s")
    return 0


def _terminate(signum, frame):
    # meson's timeout sends SIGTERM: unwind through main's cleanup.
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
