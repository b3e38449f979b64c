#!/usr/bin/python3
"""End to end through the XDP data plane, in network namespaces.

One L2 segment (a bridge in a "switch" namespace) joins a client, sluiced
(dataplane.type = "xdp", the program attached natively to its veth), a
gateway and three backends. sluice's kernel owns the node's address and
answers ARP for it; the client routes the VIPs to that address, as a router
(or a BGP announcement) would. Each backend has the VIPs on loopback
(arp_ignore/arp_announce), decapsulates IPIP and GUE with scripts/sluice-decap
and runs a TCP server that says which backend it is. sluiced serves one L2
DSR, one IPIP and one GUE VIP; IPIP and GUE leave through the gateway, whose
MAC, like the backends', sluiced learns from its kernel's neighbour table.

Proves, for each mode: every real TCP connection succeeds (some with 64 KiB
uploads, encapsulated beyond 1500 bytes), they spread over all three
backends, replies come straight from the backends' MACs, and sluice forwarded
exactly the client's packets to the VIPs and dropped none. A backend whose
MAC changes is lost, re-resolved through the kernel and reached again. Then sluiced is
restarted (SIGTERM, started again with the same config): the maps stay
pinned, and a long-lived connection per VIP keeps working on the same
backend, through the pinned connection table (hits, no new misses). Against
the running XDP sluiced: sluicectl status/services/backends/stats/
fingerprint/lookup --json answer, /metrics passes promtool, /readyz is 200.
A start that fails on its second interface leaves the first detached. At
the end the pins are removed and nothing is left attached.

Exit status: 0 pass, 1 fail, 77 skip (missing root or a kernel feature, only
when CI is not "true": in CI those fail).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import dpdk_e2e_test as e2e  # shared helpers (its main() does not run)
from dpdk_e2e_test import Failure, check, counters_from_log, link_mac, require, run, sysctl

CMD_TIMEOUT = e2e.CMD_TIMEOUT
START_TIMEOUT = 30       # seconds for sluiced to report it is running
STOP_TIMEOUT = 15        # seconds for sluiced to exit after SIGTERM
CONNECTIONS = 90         # per VIP
MIN_SHARE = 0.10         # each backend gets at least this share (a third expected; 0.10 is > 4 sigma below)

PID = os.getpid()
NS = {role: f"sx-{role}-{PID}" for role in ("sw", "cl", "lb", "gw", "b1", "b2", "b3")}
BACKENDS = ("b1", "b2", "b3")
BRIDGE = "br0"
DEV = "e0"  # the interface name inside every non-switch namespace

PREFIX = "192.0.2"  # RFC 5737, inside namespaces of our own
ADDR = {"cl": f"{PREFIX}.10", "lb": f"{PREFIX}.2", "gw": f"{PREFIX}.1",
        "b1": f"{PREFIX}.21", "b2": f"{PREFIX}.22", "b3": f"{PREFIX}.23"}
VIPS = {"dsr": f"{PREFIX}.100", "ipip": f"{PREFIX}.101", "gue": f"{PREFIX}.102"}
MODES = {"dsr": "L2 DSR", "ipip": "IPIP", "gue": "GUE"}
VIP_PORT = 80
GUE_PORT = 6080
ADMIN_PORT = 9180        # loopback of sluice's own namespace
BIG_MTU = 1600           # encapsulation adds 20 (IPIP) / 28 (GUE) bytes

CONFIG = """
[daemon]
log_level = "info"
state_dir = "{state}"

[dataplane]
type = "xdp"

[dataplane.xdp]
interfaces = ["{dev}"]
mode = "native"
pin_path = "{pins}"

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

[[service]]
name = "gue"
vip = "{vip_gue}:{port}"
forwarding = "gue"
gue_port = {gue_port}
table_size = 1009
health_check = {{ type = "none" }}
backends = [ {{ address = "{b1}" }}, {{ address = "{b2}" }}, {{ address = "{b3}" }} ]
"""

# A backend: per connection, each line "hello" is answered "NAME hello", and
# "upload N" followed by N bytes is answered "NAME N".
SERVER = r"""
import socket, socketserver, sys, time
name, ready, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.request.settimeout(60)
        while True:
            line = self.rfile.readline()
            if not line:
                return
            words = line.split()
            if len(words) == 2 and words[0] == b"upload":
                n = int(words[1]); got = 0
                while got < n:
                    chunk = self.rfile.read(min(65536, n - got))
                    if not chunk:
                        return
                    got += len(chunk)
                self.wfile.write(("%s %d\n" % (name, got)).encode())
            else:
                self.wfile.write(("%s %s\n" % (name, line.decode().strip())).encode())
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
server = Server(("0.0.0.0", port), Handler)
server.timeout = 1
open(ready, "w").close()
start = time.monotonic()
while time.monotonic() - start < 170:   # never outlive the test by much
    server.handle_request()
"""

# In the client namespace: CONNECTIONS short TCP connections per VIP, and a
# packet socket that sees every frame the client sends and receives.
CLIENT = r"""
import json, socket, sys, time
dev, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
vips = sys.argv[4:]
UPLOAD = 64 * 1024
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
def read_line(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()
results = {v: {"ok": 0, "errors": [], "backends": {}} for v in vips}
for vip in vips:
    for i in range(count):
        try:
            upload = UPLOAD if i % 10 == 0 else 0
            with socket.create_connection((vip, port), timeout=3) as s:
                if upload:
                    s.sendall(b"upload %d\n" % upload + b"x" * upload)
                    want = str(upload)
                else:
                    s.sendall(b"hello\n")
                    want = "hello"
                words = read_line(s).split()
            if len(words) != 2 or words[1] != want:
                raise ValueError("unexpected reply %r" % words)
            results[vip]["ok"] += 1
            results[vip]["backends"][words[0]] = results[vip]["backends"].get(words[0], 0) + 1
        except Exception as e:
            results[vip]["errors"].append("%d: %s" % (i, e))
            if len(results[vip]["errors"]) >= 5:
                break  # bounded: a broken path fails in seconds, not count * timeout
        drain()
time.sleep(0.3)
drain()
print(json.dumps({"results": results, "to_vip": to_vip, "reply_macs": reply_macs}))
"""

# In the client namespace: one connection per VIP kept open across
# sluiced's restart. Prints the backends after a first exchange, waits for a
# line on stdin, exchanges again on the same connections, prints again.
LONG_LIVED = r"""
import json, socket, sys
port, vips = int(sys.argv[1]), sys.argv[2:]
conns = {v: socket.create_connection((v, port), timeout=5) for v in vips}
def exchange(tag):
    out = {}
    for v, s in conns.items():
        try:
            s.settimeout(30)  # TCP retransmits across the restart's gap
            s.sendall(("%s\n" % tag).encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            words = data.decode().split()
            out[v] = words[0] if len(words) == 2 and words[1] == tag else "bad reply %r" % data
        except Exception as e:
            out[v] = "error %s" % e
    print(json.dumps(out), flush=True)
exchange("before")
sys.stdin.readline()
exchange("after")
"""


class Processes(e2e.Processes):
    """dpdk_e2e_test's processes (started by PID file, killed by PID), plus
    one whose stdin and stdout are pipes to this test."""

    def start_piped(self, name, ns, argv):
        pidfile = os.path.join(self.workdir, f"{name}.pid")
        logpath = os.path.join(self.workdir, f"{name}.log")
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        with open(logpath, "w") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", f"echo $$ >{pidfile}; exec {quoted}"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.procs[name] = (proc, pidfile, logpath)
        return proc


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
        run(["ip", "-n", ns, "addr", "add", f"{ADDR[role]}/24", "dev", DEV])
    # The client's veth leaves TCP checksums to an offload that XDP's
    # rewritten frames never get.
    run(["ethtool", "-K", DEV, "tx", "off"], ns=NS["cl"])
    # The client's router: the VIPs are reached through sluice's address
    # (what a static route or a BGP announcement gives a real router).
    for vip in VIPS.values():
        run(["ip", "-n", NS["cl"], "route", "add", f"{vip}/32", "via", ADDR["lb"]])
    # The gateway routes IPIP and GUE back out of the interface they came in on.
    sysctl(NS["gw"], "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
           f"net.ipv4.conf.{DEV}.send_redirects=0", "net.ipv4.conf.all.rp_filter=0",
           f"net.ipv4.conf.{DEV}.rp_filter=0")
    for b in BACKENDS:
        ns = NS[b]
        for vip in VIPS.values():
            run(["ip", "-n", ns, "addr", "add", f"{vip}/32", "dev", "lo"])
        sysctl(ns, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
               f"net.ipv4.conf.{DEV}.arp_ignore=1", f"net.ipv4.conf.{DEV}.arp_announce=2",
               "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
               f"net.ipv4.conf.{DEV}.rp_filter=0", "net.ipv4.conf.lo.rp_filter=0")


def load_xdp_pass(pin):
    """Loads a two-instruction XDP program that returns XDP_PASS and pins it
    at `pin` (bpf(2) through ctypes: no compiler or object file needed)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    sys_bpf = 321  # x86_64
    insns = (ctypes.c_uint64 * 2)(0x00000002000000b7, 0x0000000000000095)  # r0 = XDP_PASS; exit
    license = ctypes.create_string_buffer(b"GPL")
    attr = (ctypes.c_uint8 * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(6, 2), 8)  # BPF_PROG_TYPE_XDP, insn_cnt
    ctypes.memmove(ctypes.byref(attr, 8), (ctypes.c_uint64 * 2)(ctypes.addressof(insns),
                                                                 ctypes.addressof(license)), 16)
    fd = libc.syscall(sys_bpf, 5, attr, 128)  # BPF_PROG_LOAD
    if fd < 0:
        raise RuntimeError(f"BPF_PROG_LOAD: {os.strerror(ctypes.get_errno())}")
    path = ctypes.create_string_buffer(pin.encode())
    pin_attr = (ctypes.c_uint8 * 16)()
    ctypes.memmove(pin_attr, (ctypes.c_uint64 * 1)(ctypes.addressof(path)), 8)
    ctypes.memmove(ctypes.byref(pin_attr, 8), (ctypes.c_uint32 * 1)(fd), 4)
    rc = libc.syscall(sys_bpf, 6, pin_attr, 16)  # BPF_OBJ_PIN
    os.close(fd)
    if rc != 0:
        raise RuntimeError(f"BPF_OBJ_PIN {pin}: {os.strerror(ctypes.get_errno())}")


def xdp_attached(ns):
    info = json.loads(run(["ip", "-n", ns, "-j", "link", "show", "dev", DEV]).stdout)[0]
    return "xdp" in info


def main():
    require(os.geteuid() == 0, "root (netns, veth, bridge, XDP, tc BPF, bpffs)")
    # Every process this test starts (client, backends, sluiced) on one CPU,
    # so the restart check ("hits, no new misses") is about the pinned table
    # alone, whatever its layout (on this veth "auto" shares it across CPUs;
    # tests/e2e/failure_e2e_test.py's cpu-move moves senders on purpose).
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    require(os.uname().machine == "x86_64", "x86_64 (the test loads a BPF program by syscall number)")
    for tool in ("ip", "ethtool", "tc", "sysctl", "mount", "umount"):
        require(shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is not None,
                f"the {tool} command")
    require(os.path.exists("/usr/bin/promtool"), "promtool (Debian package prometheus)")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    build_dir = os.environ.get("SLUICE_BUILD_DIR") or os.environ.get("SLUICE_BUILD_ROOT")
    sluiced = os.path.join(build_dir or "", "controlplane", "sluiced")
    sluicectl = os.path.join(build_dir or "", "controlplane", "sluicectl", "sluicectl")
    decap_tool = os.path.join(build_dir or "", "ebpf", "sluice-decap-tool")
    # A missing build product is a broken build, never a reason to skip.
    for path in (sluiced, sluicectl, decap_tool):
        if not build_dir or not os.access(path, os.X_OK):
            print(f"FAIL: {path} missing (SLUICE_BUILD_DIR/SLUICE_BUILD_ROOT = {build_dir})", file=sys.stderr)
            return 1
    tools = {"sluiced": sluiced, "sluicectl": sluicectl, "decap": os.path.join(source_root, "scripts", "sluice-decap"),
             "build_dir": build_dir}

    workdir = tempfile.mkdtemp(prefix=f"sluice-xdp-e2e-{PID}-")
    # `ip netns exec` remounts /sys, so /sys/fs/bpf is not bpffs inside it:
    # the pins live on a bpffs of our own, mounted before and seen through it.
    bpffs = os.path.join(workdir, "bpffs")
    os.mkdir(bpffs)
    mounted = False
    procs = Processes(workdir)
    started = time.monotonic()
    try:
        try:
            run(["mount", "-t", "bpf", "bpf", bpffs])
            mounted = True
            setup()
            run(["tc", "qdisc", "add", "dev", DEV, "clsact"], ns=NS["b1"])  # feature probe
            # Native XDP_TX on a veth hands the frame to the peer's NAPI,
            # which runs only when the peer (the bridge port) has an XDP
            # program of its own: one that passes everything.
            load_xdp_pass(os.path.join(bpffs, "pass"))
            run(["ip", "-n", NS["sw"], "link", "set", "dev", "plb", "xdpdrv", "pinned", os.path.join(bpffs, "pass")])
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            require(False, f"netns, veth, bridge, bpffs and clsact ({e})")
        return run_test(procs, workdir, os.path.join(bpffs, "sluice"), tools, started)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        for name in procs.procs:
            if name.startswith("sluiced"):
                print(f"--- {name} log ---\n{procs.log(name)}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
        for ns in NS.values():
            run(["ip", "netns", "del", ns], check_rc=False)
        if mounted:
            run(["umount", bpffs], check_rc=False)
        shutil.rmtree(workdir, ignore_errors=True)


def start_sluiced(procs, name, sluiced, config_path):
    proc = procs.start(name, NS["lb"], [sluiced, "--config", config_path])
    deadline = time.monotonic() + START_TIMEOUT
    while "running; SIGTERM" not in procs.log(name):
        check(proc.poll() is None, f"{name} exited {proc.returncode} during start-up:\n{procs.log(name)}")
        check(time.monotonic() < deadline, f"{name} did not start within {START_TIMEOUT} s")
        time.sleep(0.1)
    return proc


def stop_sluiced(procs, name):
    procs.signal(name, signal.SIGTERM)
    rc = procs.wait(name, STOP_TIMEOUT)
    check(rc == 0, f"{name} exited {rc} after SIGTERM, want 0")
    counters, sent = counters_from_log(procs.log(name))
    check(counters is not None, f"{name} printed no final counters")
    return counters, sent


def sluicectl_json(tools, *args):
    r = run([tools["sluicectl"], "--api", f"http://127.0.0.1:{ADMIN_PORT}", "--json"] + list(args),
            ns=NS["lb"], check_rc=False)
    check(r.returncode == 0, f"sluicectl {' '.join(args)} exited {r.returncode}: {r.stdout}{r.stderr}")
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise Failure(f"sluicectl {' '.join(args)} --json printed no JSON: {r.stdout[:200]}")


def run_test(procs, workdir, pins, tools, started):
    macs = {role: link_mac(NS[role], DEV) for role in ("cl", "lb", "gw") + BACKENDS}
    for b in BACKENDS:
        run(["env", f"SLUICE_BUILD_DIR={tools['build_dir']}", tools["decap"], "attach", DEV, "--local", ADDR[b],
             "--gue-port", str(GUE_PORT)], ns=NS[b])
        ready = os.path.join(workdir, f"{b}.ready")
        procs.start(f"server-{b}", NS[b], ["/usr/bin/python3", "-u", "-c", SERVER, b, ready, str(VIP_PORT)])
    deadline = time.monotonic() + CMD_TIMEOUT
    while not all(os.path.exists(os.path.join(workdir, f"{b}.ready")) for b in BACKENDS):
        check(time.monotonic() < deadline, "backend servers did not start")
        time.sleep(0.05)

    config_path = os.path.join(workdir, "sluice.toml")
    with open(config_path, "w") as f:
        f.write(CONFIG.format(state=os.path.join(workdir, "state"), dev=DEV, pins=pins, lb=ADDR["lb"],
                              gw=ADDR["gw"], vip_dsr=VIPS["dsr"], vip_ipip=VIPS["ipip"], vip_gue=VIPS["gue"],
                              port=VIP_PORT, gue_port=GUE_PORT, b1=ADDR["b1"], b2=ADDR["b2"], b3=ADDR["b3"]))
    # A start that fails half way leaves nothing attached: e0 attaches, then
    # lo refuses native XDP (generic is not allowed), so e0 must be detached.
    bad_path = os.path.join(workdir, "bad.toml")
    with open(bad_path, "w") as f:
        f.write(open(config_path).read().replace(f'interfaces = ["{DEV}"]', f'interfaces = ["{DEV}", "lo"]'))
    bad = procs.start("sluiced-bad", NS["lb"], [tools["sluiced"], "--config", bad_path])
    check(bad.wait(timeout=START_TIMEOUT) == 1, f"sluiced on lo (native) exited {bad.returncode}, want 1")
    check("interface lo: native XDP attach" in procs.log("sluiced-bad"), "the failed start did not name lo")
    check(not xdp_attached(NS["lb"]), "a failed start left XDP attached to e0")
    print("ok   a start that fails on its second interface leaves nothing attached")

    # No static neighbour anywhere: sluiced asks its kernel for the backends'
    # and the gateway's MACs.
    start_sluiced(procs, "sluiced-1", tools["sluiced"], config_path)
    log = procs.log("sluiced-1")
    print(f"sluiced (xdp) running after {time.monotonic() - started:.1f} s")
    check("XDP attached in native mode" in log, "sluiced did not attach in native mode")
    check(f"MTU {BIG_MTU}" in log, f"sluiced did not take the interface's MTU {BIG_MTU}")
    check(xdp_attached(NS["lb"]), "no XDP program on sluice's interface")
    for hop in (ADDR["gw"],) + tuple(ADDR[b] for b in BACKENDS):
        role = "gw" if hop == ADDR["gw"] else next(b for b in BACKENDS if ADDR[b] == hop)
        check(f"next hop {hop} is at {macs[role]}" in log, f"sluiced did not learn {hop}'s MAC {macs[role]}")
    print("ok   attached natively; gateway and backends resolved through the kernel's neighbour table")

    vips = [VIPS[s] for s in ("dsr", "ipip", "gue")]
    out = run(["/usr/bin/python3", "-c", CLIENT, DEV, str(VIP_PORT), str(CONNECTIONS)] + vips,
              ns=NS["cl"], timeout=120)
    report = json.loads(out.stdout)
    stats1 = sluicectl_json(tools, "stats")

    backend_macs = {macs[b] for b in BACKENDS}
    for service in ("dsr", "ipip", "gue"):
        vip, mode = VIPS[service], MODES[service]
        r = report["results"][vip]
        check(not r["errors"], f"{mode}: {len(r['errors'])} of {CONNECTIONS} connections failed: {r['errors'][:5]}")
        shares = {b: r["backends"].get(b, 0) for b in BACKENDS}
        print(f"ok   {mode}: {r['ok']}/{CONNECTIONS} connections, per backend {shares}")
        for b, n in shares.items():
            check(n >= MIN_SHARE * CONNECTIONS, f"{mode}: backend {b} got {n} of {CONNECTIONS} connections, "
                                                f"want >= {MIN_SHARE:.0%}")
        seen = report["reply_macs"][vip]
        check(set(seen) == backend_macs, f"{mode}: replies came from MACs {seen}, want exactly the backends' "
                                         f"{sorted(backend_macs)} (sluice is {macs['lb']})")
    print("ok   replies straight from the backends' MACs, none from sluice")

    check_neighbor_change(procs, tools, vips)

    # Long-lived connections, opened before the restart.
    long_lived = procs.start_piped("long-lived", NS["cl"], ["/usr/bin/python3", "-u", "-c", LONG_LIVED, str(VIP_PORT)]
                                   + vips)
    before = json.loads(long_lived.stdout.readline() or "{}")
    check(set(before) == set(vips) and all(v in BACKENDS for v in before.values()),
          f"long-lived connections did not start: {before} {procs.log('long-lived')}")

    counters, sent = stop_sluiced(procs, "sluiced-1")
    client_frames = sum(report["to_vip"].values())
    check(not xdp_attached(NS["lb"]), "XDP still attached after SIGTERM")
    check(os.path.exists(os.path.join(pins, "sluice_conns_v3")), f"no pinned connection table under {pins}")
    print("ok   SIGTERM: exit 0, XDP detached, maps still pinned")
    for service in ("dsr", "ipip", "gue"):
        for b in BACKENDS:
            check(sent.get((service, ADDR[b]), 0) > 0, f"{MODES[service]}: sluice sent nothing to {b} ({sent})")
    check(counters["tx_packets"] == sum(sent.values()), f"per-backend counters {sent} do not add up to "
                                                        f"tx_packets {counters['tx_packets']}")
    drops = {k: v for k, v in counters.items() if k.startswith("drop_") and v}
    check(not drops, f"sluice dropped VIP traffic: {drops}")
    check(stats_tx(stats1) == client_frames,
          f"sluice forwarded {stats_tx(stats1)} packets, the client sent {client_frames} to the VIPs")
    print(f"ok   sluice forwarded exactly the client's {client_frames} packets to the VIPs, dropped none")

    start_sluiced(procs, "sluiced-2", tools["sluiced"], config_path)
    check(xdp_attached(NS["lb"]), "no XDP program after the restart")
    stats2 = sluicectl_json(tools, "stats")
    long_lived.stdin.write("go\n")
    long_lived.stdin.flush()
    after = json.loads(long_lived.stdout.readline() or "{}")
    check(after == before, f"after the restart the long-lived connections answered {after}, before {before}")
    stats3 = sluicectl_json(tools, "stats")
    hits = stat(stats3, "conn_hits") - stat(stats2, "conn_hits")
    misses = stat(stats3, "conn_misses") - stat(stats2, "conn_misses")
    check(hits > 0 and misses == 0, f"after the restart the long-lived flows made {hits} connection-table hits "
                                    f"and {misses} misses, want hits and no misses (pinned table)")
    print(f"ok   restart: long-lived connections kept their backends {after} through the pinned "
          f"connection table ({hits} hits, no misses)")

    check_api(tools, vips)

    stop_sluiced(procs, "sluiced-2")
    long_lived.stdin.close()
    procs.wait("long-lived", CMD_TIMEOUT)
    check(not xdp_attached(NS["lb"]), "XDP still attached after the second SIGTERM")
    shutil.rmtree(pins)
    check(not os.path.exists(pins), "pins not removed")
    print("ok   pins removed")
    print(f"xdp e2e: all checks passed in {time.monotonic() - started:.1f} s")
    return 0


def wait_for_log(procs, name, text, timeout):
    deadline = time.monotonic() + timeout
    while text not in procs.log(name):
        check(time.monotonic() < deadline, f"{name} did not log {text!r} within {timeout} s")
        time.sleep(0.05)


def check_neighbor_change(procs, tools, vips):
    """b1 gets a new MAC and sluice's kernel forgets the old one (as when an
    entry expires): sluiced must notice the loss, ask the kernel to resolve
    b1 again, learn the new MAC and republish it, so L2 DSR reaches b1 again."""
    new_mac = "02:00:5e:00:53:21"
    run(["ip", "-n", NS["b1"], "link", "set", DEV, "address", new_mac])
    run(["ip", "-n", NS["lb"], "neigh", "del", ADDR["b1"], "dev", DEV])
    # The gateway (IPIP/GUE to b1) and the client must not keep b1's old MAC either.
    for role in ("gw", "cl"):
        run(["ip", "-n", NS[role], "neigh", "flush", "to", ADDR["b1"], "dev", DEV])
    wait_for_log(procs, "sluiced-1", f"next hop {ADDR['b1']} lost its MAC", 10)
    wait_for_log(procs, "sluiced-1", f"next hop {ADDR['b1']} is at {new_mac}", 10)
    out = run(["/usr/bin/python3", "-c", CLIENT, DEV, str(VIP_PORT), "30", VIPS["dsr"]], ns=NS["cl"], timeout=60)
    r = json.loads(out.stdout)["results"][VIPS["dsr"]]
    check(not r["errors"] and r["backends"].get("b1", 0) > 0,
          f"L2 DSR after b1's MAC changed: {r['ok']}/30 ok, per backend {r['backends']}, errors {r['errors'][:3]}")
    print(f"ok   b1's new MAC learned from the kernel and republished: L2 DSR reaches it again ({r['backends']})")


def stat(stats, name):
    """A counter from `sluicectl stats --json`."""
    value = stats.get("totals", {}).get(name)
    if isinstance(value, int):
        return value
    raise Failure(f"sluicectl stats --json has no {name}: {json.dumps(stats)[:300]}")


def stats_tx(stats):
    return stat(stats, "tx_packets")


def check_api(tools, vips):
    sluicectl_json(tools, "status")  # exits 1 unless ready
    services = sluicectl_json(tools, "services")
    check(len(json.dumps(services)) > 2 and all(s in json.dumps(services) for s in ("dsr", "ipip", "gue")),
          f"sluicectl services: {services}")
    for s in ("dsr", "ipip", "gue"):
        backends = sluicectl_json(tools, "backends", s)
        check(all(ADDR[b] in json.dumps(backends) for b in BACKENDS), f"sluicectl backends {s}: {backends}")
    stats = sluicectl_json(tools, "stats")
    check(stats.get("dataplane") == "xdp" and stats.get("workers") == os.cpu_count(),
          f"sluicectl stats names plane {stats.get('dataplane')!r} with {stats.get('workers')} workers, "
          f"want 'xdp' and the {os.cpu_count()} CPUs")
    fingerprint = sluicectl_json(tools, "fingerprint")
    check(all(s in json.dumps(fingerprint) for s in ("dsr", "ipip", "gue")), f"sluicectl fingerprint: {fingerprint}")
    lookup = sluicectl_json(tools, "lookup", f"{ADDR['cl']}:40000", f"{VIPS['ipip']}:{VIP_PORT}")
    check(any(ADDR[b] in json.dumps(lookup) for b in BACKENDS), f"sluicectl lookup: {lookup}")
    ready = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{ADMIN_PORT}/readyz"],
                ns=NS["lb"], check_rc=False)
    check(ready.stdout.strip() == "200", f"/readyz answered {ready.stdout!r}")
    metrics = run(["curl", "-sf", f"http://127.0.0.1:{ADMIN_PORT}/metrics"], ns=NS["lb"], check_rc=False)
    check(metrics.returncode == 0 and metrics.stdout, f"/metrics failed: {metrics.stderr}")
    prom = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=metrics.stdout, capture_output=True,
                          text=True, timeout=CMD_TIMEOUT)
    check(prom.returncode == 0, f"promtool check metrics: {prom.stdout}{prom.stderr}")
    check('dataplane="xdp"' in metrics.stdout, "/metrics sluice_info does not name the xdp plane")
    print("ok   API on XDP: sluicectl status/services/backends/stats/fingerprint/lookup --json, "
          "/readyz 200, /metrics passes promtool")


def _terminate(signum, frame):
    # meson's timeout sends SIGTERM: unwind through main's cleanup.
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
