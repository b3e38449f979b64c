#!/usr/bin/python3
"""End-to-end test of the backend-side decapsulator (ebpf/tc_decap.bpf.c,
attached with scripts/sluice-decap) on real sockets.

Two network namespaces joined by a veth: a "sender" that plays the load
balancer and crafts encapsulated packets with scapy, and a "backend" with the
VIPs on loopback and UDP/TCP listeners bound to them. Proves that IPIP, 6in6,
4in6, 6in4 and GUE (variant 1 and 0, over IPv4 and IPv6) reach the listener
with the right counter moving, that packets not addressed to a local address
(or, with --vip, to a VIP) and malformed ones are not delivered, that a TCP
handshake answers through IPIP and GUE, and that attach is idempotent and
detach really detaches.

Exit status: 0 pass, 1 fail, 77 skip (missing root or a kernel feature, only
when CI is not "true": in CI those fail).
"""

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from sluice_testlib import in_ci, require  # noqa: E402

SKIP = 77
CMD_TIMEOUT = 15        # seconds for any one command
DELIVERY_TIMEOUT = 3.0  # seconds for a payload to reach the listener
ABSENCE_WAIT = 1.0      # seconds to be sure a packet was not delivered

PID = os.getpid()
NS_SENDER = f"sl-snd-{PID}"
NS_BACKEND = f"sl-bkd-{PID}"
VETH_SENDER = f"sls{PID}"
VETH_BACKEND = f"slb{PID}"

# Documentation prefixes only (RFC 5737 / RFC 3849) and ULAs, inside
# namespaces of our own: nothing here can leak or collide.
SENDER4, BACKEND4, NOT_LOCAL4 = "192.0.2.1", "192.0.2.2", "192.0.2.99"
SENDER6, BACKEND6 = "2001:db8:1::1", "2001:db8:1::2"
CLIENT4, CLIENT6 = "198.51.100.7", "2001:db8:c::7"       # inner sources, routed back via the sender
VIP4, VIP6, OTHER_VIP4 = "10.200.0.1", "fd00:200::1", "10.200.0.2"
UDP_PORT, TCP_PORT, GUE_PORT = 9000, 9001, 6080

LISTENER = r"""
import os, select, socket
binds = [
    ("udp4", socket.AF_INET, socket.SOCK_DGRAM, ("%(vip4)s", %(udp)d)),
    ("udp6", socket.AF_INET6, socket.SOCK_DGRAM, ("%(vip6)s", %(udp)d)),
    ("udp4-other", socket.AF_INET, socket.SOCK_DGRAM, ("%(other4)s", %(udp)d)),
    ("tcp4", socket.AF_INET, socket.SOCK_STREAM, ("%(vip4)s", %(tcp)d)),
    ("tcp6", socket.AF_INET6, socket.SOCK_STREAM, ("%(vip6)s", %(tcp)d)),
]
socks = {}
for name, family, kind, address in binds:
    s = socket.socket(family, kind)
    s.bind(address)
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    socks[s.fileno()] = (name, s)
print("READY", os.getpid(), flush=True)
while True:
    ready, _, _ = select.select(list(socks), [], [], 120)
    if not ready:
        break  # the test is gone and nobody killed us: do not linger
    for fd in ready:
        name, s = socks[fd]
        data, peer = s.recvfrom(65535)
        print(name, data.decode(errors="replace"), peer[0], flush=True)
""" % {"vip4": VIP4, "vip6": VIP6, "other4": OTHER_VIP4, "udp": UDP_PORT, "tcp": TCP_PORT}


def run(cmd, ns=None, check=True, env=None):
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns] + cmd
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT, env=env)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Netns:
    """Enters a network namespace for this process (scapy then sees its
    interfaces) and can go back to where it started."""

    CLONE_NEWNET = 0x40000000

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)

    def _setns(self, fd):
        if self.libc.setns(fd, self.CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    def enter(self, name):
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            self._setns(fd)
        finally:
            os.close(fd)

    def leave(self):
        self._setns(self.home)


class Listener:
    """The UDP/TCP sockets bound to the VIPs in the backend namespace. Killed
    by the PID it reports, never by name."""

    def __init__(self):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS_BACKEND, sys.executable, "-u", "-c", LISTENER],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = None
        line = self._readline(CMD_TIMEOUT)
        if line is None or not line.startswith("READY "):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise RuntimeError(f"listener did not start: {line!r} {err}")
        self.pid = int(line.split()[1])
        self.lines = []

    def _readline(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return line.rstrip("\n") if line else None

    def wait_for(self, socket_name, payload, timeout):
        """True once `payload` arrived on `socket_name` within `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                parts = line.split(" ")
                if len(parts) >= 2 and parts[0] == socket_name and parts[1] == payload:
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            line = self._readline(left)
            if line is not None:
                self.lines.append(line)

    def stop(self):
        for pid in {self.pid, self.proc.pid} - {None}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=CMD_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass


def setup_namespaces():
    run(["ip", "netns", "add", NS_SENDER])
    run(["ip", "netns", "add", NS_BACKEND])
    run(["ip", "link", "add", VETH_SENDER, "netns", NS_SENDER, "type", "veth",
         "peer", "name", VETH_BACKEND, "netns", NS_BACKEND])
    for ns, dev, addr4, addr6 in ((NS_SENDER, VETH_SENDER, SENDER4, SENDER6),
                                  (NS_BACKEND, VETH_BACKEND, BACKEND4, BACKEND6)):
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{addr4}/24", "dev", dev])
        run(["ip", "-n", ns, "-6", "addr", "add", f"{addr6}/64", "dev", dev, "nodad"])
        run(["ip", "-n", ns, "link", "set", dev, "up"])
    # The backend owns the VIPs on loopback and answers clients directly
    # (direct server return) through the sender.
    for vip in (f"{VIP4}/32", f"{OTHER_VIP4}/32"):
        run(["ip", "-n", NS_BACKEND, "addr", "add", vip, "dev", "lo"])
    run(["ip", "-n", NS_BACKEND, "-6", "addr", "add", f"{VIP6}/128", "dev", "lo", "nodad"])
    run(["ip", "-n", NS_BACKEND, "route", "add", "198.51.100.0/24", "via", SENDER4])
    run(["ip", "-n", NS_BACKEND, "-6", "route", "add", "2001:db8:c::/64", "via", SENDER6])
    # The inner source is a client, not reachable through the veth by
    # reverse-path rules; a decapsulating backend must not filter on it.
    for key in ("all", "default", "lo", VETH_BACKEND):
        run(["sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0"], ns=NS_BACKEND)
    # A kernel feature probe as much as setup: without clsact there is no
    # tc BPF hook (sluice-decap tolerates an existing clsact).
    run(["tc", "qdisc", "add", "dev", VETH_BACKEND, "clsact"], ns=NS_BACKEND)


def link_mac(ns, dev):
    info = json.loads(run(["ip", "-n", ns, "-j", "link", "show", "dev", dev]).stdout)
    return info[0]["address"]


class Decap:
    """scripts/sluice-decap run inside the backend namespace."""

    def __init__(self, script, build_dir):
        self.script = script
        self.env = dict(os.environ, SLUICE_BUILD_DIR=build_dir)

    def __call__(self, *args, check=True):
        return run([self.script, *args], ns=NS_BACKEND, check=check, env=self.env)

    def stats(self):
        return json.loads(self("stats", VETH_BACKEND, "--json").stdout)


def main():
    require(os.geteuid() == 0, "root (CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN for netns)")
    try:
        import scapy  # noqa: F401  (imported for real inside the sender namespace)
    except ImportError:
        require(False, f"scapy for {sys.executable} (Debian: python3-scapy)")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    build_dir = os.environ.get("SLUICE_BUILD_DIR") or os.environ.get("SLUICE_BUILD_ROOT")
    script = os.path.join(source_root, "scripts", "sluice-decap")
    # A missing build product is a broken build, never a reason to skip.
    if not build_dir or not os.access(os.path.join(build_dir, "ebpf", "sluice-decap-tool"), os.X_OK):
        print(f"FAIL: no sluice-decap-tool under SLUICE_BUILD_DIR/SLUICE_BUILD_ROOT ({build_dir})", file=sys.stderr)
        return 1

    netns = Netns()
    listener = None
    started = time.monotonic()
    try:
        try:
            setup_namespaces()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            require(False, f"netns, veth and clsact ({e})")
        listener = Listener()
        decap = Decap(script, build_dir)
        result = run_cases(netns, listener, decap)
        print(f"decap e2e: {result} in {time.monotonic() - started:.1f} s")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        try:
            netns.leave()
        except OSError:
            pass
        if listener is not None:
            listener.stop()
        for ns in (NS_SENDER, NS_BACKEND):
            run(["ip", "netns", "del", ns], check=False)


def run_cases(netns, listener, decap):
    backend_mac = link_mac(NS_BACKEND, VETH_BACKEND)
    sender_mac = link_mac(NS_SENDER, VETH_SENDER)

    # Idempotent attach: twice, one filter.
    for _ in range(2):
        decap("attach", VETH_BACKEND, "--local", BACKEND4, "--local", BACKEND6, "--gue-port", str(GUE_PORT))
    filters = run(["tc", "filter", "show", "dev", VETH_BACKEND, "ingress"], ns=NS_BACKEND).stdout
    ours = [line for line in filters.splitlines() if "handle 0x51ce" in line]
    check(len(ours) == 1 and "sluice_tc_decap" in ours[0], f"attach twice should leave one filter:\n{filters}")

    # scapy reads the interfaces and routes of the namespace it starts in.
    netns.enter(NS_SENDER)
    from scapy.all import IP, TCP, UDP, AsyncSniffer, Ether, IPv6, Raw, conf, sendp
    conf.verb = 0

    def outer4(dst=BACKEND4, **kw):
        return Ether(src=sender_mac, dst=backend_mac) / IP(src=SENDER4, dst=dst, **kw)

    def outer6(dst=BACKEND6, **kw):
        return Ether(src=sender_mac, dst=backend_mac) / IPv6(src=SENDER6, dst=dst, **kw)

    def gue(sport=49152):
        return UDP(sport=sport, dport=GUE_PORT)

    def inner4(payload, dst=VIP4):
        return IP(src=CLIENT4, dst=dst) / UDP(sport=40000, dport=UDP_PORT) / Raw(payload.encode())

    def inner6(payload):
        return IPv6(src=CLIENT6, dst=VIP6) / UDP(sport=40000, dport=UDP_PORT) / Raw(payload.encode())

    # GUE variant 0: version 0, C=0, hlen=1 word of (ignored) options; proto
    # names the inner header.
    def gue0(inner_proto):
        return Raw(bytes([0x01, inner_proto, 0, 0]) + b"\xde\xad\xbe\xef")

    def counters_delta(before, after):
        return {k: after[k]["packets"] - before[k]["packets"] for k in after}

    def expect(name, frame, socket_name, payload, counter, delivered=True):
        before = decap.stats()
        sendp(frame, iface=VETH_SENDER)
        if delivered:
            arrived = listener.wait_for(socket_name, payload, DELIVERY_TIMEOUT)
            check(arrived, f"{name}: payload {payload!r} did not reach {socket_name} within {DELIVERY_TIMEOUT} s")
        else:
            arrived = listener.wait_for(socket_name, payload, ABSENCE_WAIT)
            check(not arrived, f"{name}: payload {payload!r} reached {socket_name} but must not")
        delta = counters_delta(before, decap.stats())
        # Neighbour discovery, ARP and the like also end as pass_not_encap.
        moved = delta[counter] >= 1 if counter == "pass_not_encap" else delta[counter] == 1
        check(moved, f"{name}: counter {counter} moved by {delta[counter]}, want 1 (all: {delta})")
        print(f"ok   {name}: {'delivered' if delivered else 'not delivered'}, {counter} +{delta[counter]}")

    n = 0

    def payload(tag):
        nonlocal n
        n += 1
        return f"{tag}-{PID}-{n}"

    # Every encapsulation sluice writes reaches the socket on the VIP.
    p = payload("ipip4in4")
    expect("IPIP 4in4", outer4(proto=4) / inner4(p), "udp4", p, "decap_ipip_4in4")
    p = payload("ipip6in6")
    expect("IPIP 6in6", outer6(nh=41) / inner6(p), "udp6", p, "decap_ipip_6in6")
    p = payload("ipip4in6")
    expect("IPIP 4in6", outer6(nh=4) / inner4(p), "udp4", p, "decap_ipip_4in6")
    p = payload("ipip6in4")
    expect("IPIP 6in4", outer4(proto=41) / inner6(p), "udp6", p, "decap_ipip_6in4")
    p = payload("gue4in4")
    expect("GUE 4in4", outer4() / gue() / inner4(p), "udp4", p, "decap_gue_4in4")
    p = payload("gue6in4")
    expect("GUE 6in4", outer4() / gue() / inner6(p), "udp6", p, "decap_gue_6in4")
    p = payload("gue4in6")
    expect("GUE 4in6", outer6() / gue() / inner4(p), "udp4", p, "decap_gue_4in6")
    p = payload("gue6in6")
    expect("GUE 6in6", outer6() / gue() / inner6(p), "udp6", p, "decap_gue_6in6")
    p = payload("gue0v4")
    expect("GUE variant 0, IPv4 inner", outer4() / gue() / gue0(4) / inner4(p), "udp4", p, "decap_gue_4in4")
    p = payload("gue0v6")
    expect("GUE variant 0, IPv6 inner", outer6() / gue() / gue0(41) / inner6(p), "udp6", p, "decap_gue_6in6")
    # Before a VIP filter, any inner destination on the host is accepted
    # (the positive control for the --vip case below).
    p = payload("othervip")
    expect("IPIP to another local address", outer4(proto=4) / inner4(p, dst=OTHER_VIP4), "udp4-other", p,
           "decap_ipip_4in4")

    # Everything else passes untouched or is dropped, never delivered.
    p = payload("notlocal")
    expect("IPIP to a non-local outer address", outer4(dst=NOT_LOCAL4, proto=4) / inner4(p), "udp4", p,
           "pass_not_local", delivered=False)
    p = payload("otherport")
    expect("GUE to an unconfigured port", outer4() / UDP(sport=49152, dport=GUE_PORT + 1) / inner4(p), "udp4", p,
           "pass_not_encap", delivered=False)
    p = payload("truncated")
    expect("IPIP with a truncated inner header", outer4(proto=4) / Raw(bytes(inner4(p))[:12]), "udp4", p,
           "drop_malformed", delivered=False)
    p = payload("control")
    expect("GUE control message", outer4() / gue() / Raw(bytes([0x20, 0, 0, 0])) / inner4(p), "udp4", p,
           "drop_unsupported", delivered=False)
    p = payload("fragment")
    expect("IPIP outer fragment", outer4(proto=4, flags="MF") / inner4(p), "udp4", p, "pass_fragment",
           delivered=False)

    # A TCP handshake through the tunnel: the backend's SYN-ACK goes straight
    # back to the client address (over the veth), as with a real sluice.
    def handshake(name, frame, client, sport, counter):
        seen = threading.Event()
        sniffer = AsyncSniffer(
            iface=VETH_SENDER, count=1, timeout=DELIVERY_TIMEOUT + 2, started_callback=seen.set,
            lfilter=lambda pkt: TCP in pkt and pkt[TCP].dport == sport and (int(pkt[TCP].flags) & 0x12) == 0x12)
        sniffer.start()
        check(seen.wait(CMD_TIMEOUT), f"{name}: sniffer did not start")
        before = decap.stats()
        sendp(frame, iface=VETH_SENDER)
        sniffer.join(timeout=DELIVERY_TIMEOUT + 5)
        got = sniffer.results or []
        check(len(got) == 1, f"{name}: no SYN-ACK from the VIP reached the client within {DELIVERY_TIMEOUT + 2} s")
        reply = got[0]
        layer = IP if IP in reply else IPv6
        check(reply[layer].dst == client, f"{name}: SYN-ACK went to {reply[layer].dst}, want {client}")
        check(reply[TCP].ack == 1001, f"{name}: SYN-ACK acknowledges {reply[TCP].ack}, want 1001")
        delta = counters_delta(before, decap.stats())
        check(delta[counter] >= 1, f"{name}: counter {counter} did not move ({delta})")
        print(f"ok   {name}: SYN-ACK from the VIP to {client}")

    syn4 = IP(src=CLIENT4, dst=VIP4) / TCP(sport=40100, dport=TCP_PORT, flags="S", seq=1000)
    handshake("TCP SYN through IPIP 4in4", outer4(proto=4) / syn4, CLIENT4, 40100, "decap_ipip_4in4")
    syn6 = IPv6(src=CLIENT6, dst=VIP6) / TCP(sport=40101, dport=TCP_PORT, flags="S", seq=1000)
    handshake("TCP SYN through GUE 6in6", outer6() / gue() / syn6, CLIENT6, 40101, "decap_gue_6in6")

    # Re-attach with a VIP filter: the configuration changes in place.
    netns.leave()
    decap("attach", VETH_BACKEND, "--local", BACKEND4, "--local", BACKEND6, "--vip", VIP4, "--vip", VIP6)
    netns.enter(NS_SENDER)
    p = payload("vipfilter-miss")
    expect("IPIP to a non-VIP inner destination, VIP filter on", outer4(proto=4) / inner4(p, dst=OTHER_VIP4),
           "udp4-other", p, "pass_not_vip", delivered=False)
    p = payload("vipfilter-hit")
    expect("IPIP to a VIP, VIP filter on", outer4(proto=4) / inner4(p), "udp4", p, "decap_ipip_4in4")

    # Detach: the kernel has no ipip module, so nothing decapsulates now.
    netns.leave()
    decap("detach", VETH_BACKEND)
    check(decap("stats", VETH_BACKEND, check=False).returncode != 0, "stats must fail once detached")
    decap("detach", VETH_BACKEND)  # detaching twice is not an error
    filters = run(["tc", "filter", "show", "dev", VETH_BACKEND, "ingress"], ns=NS_BACKEND).stdout
    check("sluice_tc_decap" not in filters, f"filter still present after detach:\n{filters}")
    netns.enter(NS_SENDER)
    p = payload("detached")
    sendp(outer4(proto=4) / inner4(p), iface=VETH_SENDER)
    check(not listener.wait_for("udp4", p, ABSENCE_WAIT), "IPIP delivered after detach")
    print("ok   detach: IPIP no longer delivered")
    netns.leave()
    return "all cases passed"


def _terminate(signum, frame):
    # meson's timeout sends SIGTERM: unwind through main's cleanup.
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
