#!/usr/bin/python3
"""scripts/sluice-backend-setup in a fresh network namespace, proven with real packets.

A "sender" namespace plays sluice and a "backend" namespace is set up by the
script (run with `ip netns exec`). The sender encapsulates with plain raw
sockets (IPPROTO_IPIP, IPPROTO_IPV6 and a UDP socket for GUE: the kernel
writes the outer header), and a UDP listener bound to the VIPs on the
backend's loopback says what arrived. Proves: --dry-run prints the plan and
changes nothing; with --decap none the VIPs and sysctls are in place but an
IPIP packet is not delivered (this kernel has no ipip module), with --decap
ipip IPIP 4in4 and 6in6 are; a re-run is idempotent; --decap gue --gue-port
re-attaches for GUE on that port; --status shows it; --remove restores every
sysctl, takes the VIPs off, detaches, puts lo back down, and a second
--remove is a no-op.

Exit status: 0 pass, 1 fail, 77 skip (no root / netns / clsact, only when CI is not "true").
"""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from sluice_testlib import SKIP, Failure, check, in_ci, require, run  # noqa: E402

CMD_TIMEOUT = 30
DELIVERY_TIMEOUT = 3.0
ABSENCE_WAIT = 1.0
PID = os.getpid()
NS_S, NS_B = f"sl-bss-{PID}", f"sl-bsb-{PID}"
DEV_S, DEV_B = f"bss{PID}", f"bsb{PID}"
SENDER4, BACKEND4 = "192.0.2.1", "192.0.2.2"
SENDER6, BACKEND6 = "2001:db8:1::1", "2001:db8:1::2"
VIP4, VIP6 = "10.200.0.1", "fd00:200::1"
CLIENT4, CLIENT6 = "198.51.100.7", "2001:db8:c::7"
UDP_PORT, GUE_PORT = 9000, 7777
SYSCTLS = [f"net.ipv4.conf.{scope}.{key}" for scope in ("all", DEV_B)
           for key in ("arp_ignore", "arp_announce", "rp_filter", "accept_local")]

LISTENER = r"""
import select, socket, sys
socks = []
for family, addr in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, int(sys.argv[3])))
    socks.append(s)
import os
print("READY", os.getpid(), flush=True)
while True:
    ready, _, _ = select.select(socks, [], [], 120)
    if not ready:
        break
    for s in ready:
        data, peer = s.recvfrom(65535)
        print(data.decode(errors="replace"), peer[0], flush=True)
"""

# Encapsulates one UDP datagram to a VIP the way sluice would, with sockets
# only: the kernel adds the outer header (proto 4 / next header 41 / UDP).
SENDER = r"""
import socket, struct, sys
kind, payload = sys.argv[1], sys.argv[2].encode()
vip4, vip6, c4, c6, b4, b6 = sys.argv[3:9]
port, gue_port = int(sys.argv[9]), int(sys.argv[10])
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def inner4():
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                      socket.inet_aton(c4), socket.inet_aton(vip4))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + udp
def inner6():
    src, dst = socket.inet_pton(socket.AF_INET6, c6), socket.inet_pton(socket.AF_INET6, vip6)
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    pseudo = src + dst + struct.pack("!IxxxB", len(udp), 17)
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xffff) + udp[8:]
    return struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, src, dst) + udp
if kind == "ipip4":
    socket.socket(socket.AF_INET, socket.SOCK_RAW, 4).sendto(inner4(), (b4, 0))
elif kind == "ipip6":
    socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41).sendto(inner6(), (b6, 0))
elif kind == "gue4":
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(inner4(), (b4, gue_port))
"""


class Listener:
    def __init__(self):
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS_B, "/usr/bin/python3", "-u", "-c", LISTENER,
                                      VIP4, VIP6, str(UDP_PORT)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        line = self._readline(CMD_TIMEOUT)
        check(line is not None and line.startswith("READY "), f"listener did not start: {line!r}")
        self.pid = int(line.split()[1])

    def _readline(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return line.rstrip("\n") if line else None

    def got(self, payload, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if any(line.split(" ")[0] == payload for line in self.lines):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            line = self._readline(left)
            if line is not None:
                self.lines.append(line)

    def stop(self):
        for pid in {self.pid, self.proc.pid}:  # by the PID it reported, never by name
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=CMD_TIMEOUT)


def main():
    require(os.geteuid() == 0, "root (network namespaces, sysctls, tc BPF)")
    build_dir = os.environ.get("SLUICE_BUILD_DIR") or os.environ.get("SLUICE_BUILD_ROOT")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    if not build_dir or not os.access(os.path.join(build_dir, "ebpf", "sluice-decap-tool"), os.X_OK):
        print(f"FAIL: no sluice-decap-tool under SLUICE_BUILD_DIR/SLUICE_BUILD_ROOT ({build_dir})", file=sys.stderr)
        return 1
    script = os.path.join(source_root, "scripts", "sluice-backend-setup")
    workdir = tempfile.mkdtemp(prefix=f"sluice-bsetup-{PID}-")
    env = dict(os.environ, SLUICE_BUILD_DIR=build_dir, SLUICE_BACKEND_STATE_DIR=os.path.join(workdir, "state"))
    listener = None
    started = time.monotonic()
    try:
        try:
            run(["ip", "netns", "add", NS_S])
            run(["ip", "netns", "add", NS_B])
            run(["ip", "link", "add", DEV_S, "netns", NS_S, "type", "veth", "peer", "name", DEV_B, "netns", NS_B])
            for ns, dev, a4, a6 in ((NS_S, DEV_S, SENDER4, SENDER6), (NS_B, DEV_B, BACKEND4, BACKEND6)):
                run(["ip", "-n", ns, "addr", "add", f"{a4}/24", "dev", dev])
                run(["ip", "-n", ns, "-6", "addr", "add", f"{a6}/64", "dev", dev, "nodad"])
                run(["ip", "-n", ns, "link", "set", dev, "up"])
            run(["ip", "-n", NS_S, "link", "set", "lo", "up"])
            # The backend's way back to clients (and so the device the script picks by default).
            run(["ip", "-n", NS_B, "route", "add", "default", "via", SENDER4])
            run(["ip", "-n", NS_B, "-6", "route", "add", "default", "via", SENDER6])
            run(["tc", "qdisc", "add", "dev", DEV_B, "clsact"], ns=NS_B)  # feature probe
            run(["tc", "qdisc", "del", "dev", DEV_B, "clsact"], ns=NS_B)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            require(False, f"netns, veth and clsact ({e})")

        def setup(*args, check_rc=True):
            return run([script, *args], ns=NS_B, check_rc=check_rc, env=env)

        def send(kind, payload):
            run(["/usr/bin/python3", "-c", SENDER, kind, payload, VIP4, VIP6, CLIENT4, CLIENT6, BACKEND4,
                 BACKEND6, str(UDP_PORT), str(GUE_PORT)], ns=NS_S)

        def sysctls():
            return {k: run(["sysctl", "-n", k], ns=NS_B).stdout.strip() for k in SYSCTLS}

        def lo_addrs():
            out = json.loads(run(["ip", "-n", NS_B, "-j", "addr", "show", "dev", "lo"]).stdout)
            return sorted(a["local"] for link in out for a in link.get("addr_info", [])
                          if a["local"] not in ("127.0.0.1", "::1"))

        def filters():
            out = run(["tc", "filter", "show", "dev", DEV_B, "ingress"], ns=NS_B, check_rc=False).stdout
            return [line for line in out.splitlines() if "sluice_tc_decap" in line]

        def lo_up():
            return "UP" in json.loads(run(["ip", "-n", NS_B, "-j", "link", "show", "dev", "lo"]).stdout)[0]["flags"]

        base = (sysctls(), lo_addrs(), lo_up())
        vips = ["--vip", VIP4, "--vip", VIP6]

        r = setup("--help")
        check(r.returncode == 0 and "--remove" in r.stdout, "--help")
        r = setup("--vip", "10.0.0.0/24", check_rc=False)
        check(r.returncode == 2 and "prefix" in r.stderr, f"a prefix as VIP: exit {r.returncode} {r.stderr}")

        r = setup(*vips, "--dry-run")
        for want in (f"ip addr add {VIP4}/32 dev lo", f"ip -6 addr add {VIP6}/128 dev lo nodad",
                     "sysctl -w net.ipv4.conf.all.arp_ignore=1", f"sysctl -w net.ipv4.conf.{DEV_B}.rp_filter=2",
                     f"sluice-decap attach {DEV_B} --local {BACKEND4} --local {BACKEND6} --vip {VIP4} --vip {VIP6}",
                     "ip link set lo up"):
            check(want in r.stdout, f"dry run does not show `{want}`:\n{r.stdout}")
        check((sysctls(), lo_addrs(), lo_up()) == base and not filters(), "--dry-run changed something")
        check(not os.path.exists(os.path.join(workdir, "state")) or not os.listdir(os.path.join(workdir, "state")),
              "--dry-run wrote a state file")
        print("ok   --dry-run: every command printed, nothing changed")

        setup(*vips, "--decap", "none")
        check(lo_addrs() == sorted([VIP4, VIP6]) and lo_up(), f"VIPs on lo: {lo_addrs()}")
        now = sysctls()
        for scope in ("all", DEV_B):
            for key, value in (("arp_ignore", "1"), ("arp_announce", "2"), ("rp_filter", "2")):
                check(now[f"net.ipv4.conf.{scope}.{key}"] == value, f"{scope}.{key} = "
                      f"{now[f'net.ipv4.conf.{scope}.{key}']}, want {value}")
        check(not filters(), "--decap none attached a filter")
        listener = Listener()
        p = f"none-{PID}"
        send("ipip4", p)
        check(not listener.got(p, ABSENCE_WAIT), "IPIP delivered without the decapsulator: the test proves nothing")
        print("ok   --decap none: VIPs on lo, arp_ignore=1, arp_announce=2, rp_filter=2; IPIP not delivered")

        for attempt in (1, 2):  # the second run must change nothing and still succeed
            r = setup(*vips, "--decap", "ipip")
            check(len(filters()) == 1, f"run {attempt}: want one decap filter, have {filters()}")
            check(lo_addrs() == sorted([VIP4, VIP6]), f"run {attempt}: lo has {lo_addrs()}")
        check("sysctl" not in r.stdout and "addr add" not in r.stdout, f"re-run redid steps:\n{r.stdout}")
        for kind in ("ipip4", "ipip6"):
            p = f"{kind}-{PID}"
            send(kind, p)
            check(listener.got(p, DELIVERY_TIMEOUT), f"{kind}: payload did not reach the VIP's socket")
        print("ok   --decap ipip (run twice, idempotent): IPIP 4in4 and 6in6 reach the sockets on the VIPs")

        setup(*vips, "--decap", "gue", "--gue-port", str(GUE_PORT))
        check(len(filters()) == 1, f"gue: filters {filters()}")
        p = f"gue4-{PID}"
        send("gue4", p)
        check(listener.got(p, DELIVERY_TIMEOUT), f"GUE to port {GUE_PORT}: payload did not reach the VIP's socket")
        print(f"ok   --decap gue --gue-port {GUE_PORT}: GUE reaches the VIP's socket")

        r = setup("--status")
        check(f"{VIP4}/32 (ours)" in r.stdout and f"decap on {DEV_B}: attached" in r.stdout
              and "decap_gue_4in4" in r.stdout, f"--status:\n{r.stdout}")
        print("ok   --status shows the VIPs, the sysctls and the attached decapsulator")

        listener.stop()
        listener = None
        r = setup("--remove", "--dry-run")
        check(f"sluice-decap detach {DEV_B}" in r.stdout and len(filters()) == 1, f"--remove --dry-run:\n{r.stdout}")
        setup("--remove")
        check((sysctls(), lo_addrs(), lo_up()) == base, f"--remove left {(sysctls(), lo_addrs(), lo_up())}, "
                                                        f"want {base}")
        check(not filters(), f"--remove left filters {filters()}")
        r = setup("--remove")
        check("nothing to remove" in r.stdout, f"second --remove:\n{r.stdout}")
        print("ok   --remove: sysctls, lo and its addresses as before, decapsulator detached; again: no-op")
        print(f"backend-setup: all checks passed in {time.monotonic() - started:.1f} s")
        return 0
    except (Failure, RuntimeError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        if listener is not None:
            listener.stop()
        for ns in (NS_S, NS_B):
            run(["ip", "netns", "del", ns], check_rc=False)
        subprocess.run(["rm", "-rf", "--", workdir], check=False)


def _terminate(signum, frame):
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
