#!/usr/bin/python3
"""sluiced end to end with its control plane: reloads and drains under traffic.

Reuses the DPDK end-to-end topology (tests/integration/dpdk_e2e_test.py:
a client, sluiced on DPDK af_packet, a gateway and three backends in
network namespaces on one bridge). Proves:

1. Reload loses no packet: while the client sends a steady UDP stream and
   keeps opening TCP connections, three SIGHUP reloads apply (a weight
   change, a service added, a backend removed). Every datagram reaches a
   backend, every connection succeeds, and sluice transmitted exactly the
   client's frames to the VIPs with no drop.
2. An invalid config and a restart-requiring change are refused by SIGHUP:
   the log says why (file:line:column for the former, the setting's name
   for the latter) and the running config keeps serving.
3. `sluicectl drain` end to end: new connections avoid the drained backend
   while a long-lived TCP connection to it keeps working to its end; the
   API reports the drain's source; undrain brings the backend back.
4. Discovery wired: a service fed by a real etcd (in sluiced's namespace)
   follows puts and deletes; with etcd stopped the API says "stale", the
   last good set keeps serving and is persisted in daemon.state_dir.

Exit status: 0 pass, 1 fail, 77 skip (no root / kernel feature, CI unset).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import dpdk_e2e_test as topo  # noqa: E402  (the topology and process helpers; its main() does not run)
from dpdk_e2e_test import ADDR, BACKENDS, DEV, NS, VIP_DSR, VIP_IPIP, VIP_PORT, Failure, check, run  # noqa: E402

UDP_PORT = 5353
UDP_RATE = 1000          # datagrams per second
STREAM_SECONDS = 6.0
VIP_EXTRA = f"{topo.PREFIX}.102"
VIP_DISC = f"{topo.PREFIX}.103"
ETCD_PORT = 2379          # etcd runs in sluiced's namespace, on its loopback
ETCD_PREFIX = "/sluice/services/disc/"

CONFIG = """
[daemon]
log_level = "info"
state_dir = "{state}"

[dataplane]
type = "dpdk"

[dataplane.dpdk]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"]
main_lcore = 0
worker_lcores = [1]
mbuf_pool_size = 4095
conn_table_size = {conn_table}
exception_path = false

[[dataplane.dpdk.ports]]
name = "lan"
device = "net_af_packet_rl{pid},iface={dev},qpairs=2"
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
table_size = {ipip_table}
health_check = {{ type = "none" }}
backends = [ {{ address = "{b1}", weight = {b1_weight} }}, {{ address = "{b2}" }}, {{ address = "{b3}" }} ]

[[service]]
name = "udp"
vip = "{vip_dsr}:{udp_port}"
protocol = "udp"
forwarding = "l2dsr"
table_size = 1009
health_check = {{ type = "none" }}
backends = [ {udp_backends} ]

[[service]]
name = "disc"
vip = "{vip_disc}:{port}"
forwarding = "l2dsr"
table_size = 251
health_check = {{ type = "none" }}
discovery = {{ type = "etcd", endpoints = ["http://127.0.0.1:{etcd_port}"], prefix = "{etcd_prefix}", dial_timeout_ms = 500 }}
{extra}
"""

EXTRA = """
[[service]]
name = "extra"
vip = "{vip_extra}:{port}"
forwarding = "l2dsr"
table_size = 251
health_check = {{ type = "none" }}
backends = [ {{ address = "{b1}" }}, {{ address = "{b2}" }} ]
"""

# Backend side: counts datagrams on the UDP port, publishing the count in a file.
UDP_SINK = r"""
import os, socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("0.0.0.0", port))
s.settimeout(0.05)
n, last, start = 0, 0.0, time.monotonic()
def publish():
    with open(out + ".tmp", "w") as f:
        f.write(str(n))
    os.rename(out + ".tmp", out)
publish()
while time.monotonic() - start < 170:
    try:
        s.recv(2048)
        n += 1
    except socket.timeout:
        pass
    now = time.monotonic()
    if now - last > 0.05:
        publish()
        last = now
"""

# Client side: a paced UDP stream over 32 source ports and back-to-back TCP
# connections for `duration` seconds, counting its own frames to the VIPs.
STREAM = r"""
import json, socket, sys, threading, time
dev, duration, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
udp_vip, udp_port, tcp_port = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
tcp_vips = sys.argv[7:]
ETH_P_ALL, PACKET_OUTGOING = 3, 4
cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
cap.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
cap.bind((dev, 0))
cap.setblocking(False)
vips = set([udp_vip] + tcp_vips)
frames = [0]
def drain():
    while True:
        try:
            frame, addr = cap.recvfrom(65535)
        except BlockingIOError:
            return
        if addr[2] == PACKET_OUTGOING and len(frame) >= 34 and frame[12:14] == b"\x08\x00" \
                and socket.inet_ntoa(frame[30:34]) in vips:
            frames[0] += 1
udp = {"sent": 0}
def udp_sender():
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(32)]
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < duration:
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        socks[i % 32].sendto(b"seq %d" % i, (udp_vip, udp_port))
        i += 1
    udp["sent"] = i
tcp = {"ok": 0, "errors": [], "backends": {}}
def tcp_client():
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < duration and len(tcp["errors"]) < 5:
        vip = tcp_vips[k % len(tcp_vips)]
        k += 1
        try:
            with socket.create_connection((vip, tcp_port), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            words = data.split(b"\r\n\r\n", 1)[-1].decode().split()
            if len(words) != 3 or words[0] != "backend":
                raise ValueError("unexpected reply %r" % data[:80])
            tcp["ok"] += 1
            key = vip + " " + words[1]
            tcp["backends"][key] = tcp["backends"].get(key, 0) + 1
        except Exception as e:
            tcp["errors"].append("%s #%d: %s" % (vip, k, e))
threads = [threading.Thread(target=udp_sender), threading.Thread(target=tcp_client)]
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    drain()
    time.sleep(0.01)
time.sleep(0.3)
drain()
print(json.dumps({"udp_sent": udp["sent"], "tcp": tcp, "frames_to_vips": frames[0]}))
"""

# Client side: one long-lived TCP connection (an HTTP POST whose body trickles
# in) that stays open until a "finish" file appears, then expects the reply.
LONG = r"""
import json, os, socket, sys, time
vip, port, portfile, finish = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
total, chunk = 200 * 1000, b"y" * 1000
s = socket.create_connection((vip, port), timeout=5)
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
s.sendall(b"POST / HTTP/1.0\r\nHost: x\r\nContent-Length: " + str(total).encode() + b"\r\n\r\n")
sent, start = 0, time.monotonic()
while sent < total - len(chunk) * 10 and not os.path.exists(finish) and time.monotonic() - start < 60:
    s.sendall(chunk)
    sent += len(chunk)
    time.sleep(0.05)
s.sendall(b"y" * (total - sent))
data = b""
while True:
    c = s.recv(4096)
    if not c:
        break
    data += c
words = data.split(b"\r\n\r\n", 1)[-1].decode().split()
print(json.dumps({"reply": words, "total": total, "seconds": time.monotonic() - start}))
"""

# Client side: `count` short connections to one VIP; which backends served them.
# With a base port, connection i uses source port base + i: ports the
# ephemeral range never handed out, so no stale connection-table entry (the
# data plane keys flows by 5-tuple, and a SYN that matches a live entry
# follows it) can decide where the connection goes.
SHORT = r"""
import json, socket, sys
vip, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = int(sys.argv[4]) if len(sys.argv) > 4 else 0
seen, errors = {}, []
for i in range(count):
    try:
        with socket.create_connection((vip, port), timeout=3,
                                      source_address=("0.0.0.0", base + i) if base else None) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                c = s.recv(4096)
                if not c:
                    break
                data += c
        who = data.split(b"\r\n\r\n", 1)[-1].decode().split()[1]
        seen[who] = seen.get(who, 0) + 1
    except Exception as e:
        errors.append(str(e))
        if len(errors) >= 5:
            break
print(json.dumps({"seen": seen, "errors": errors}))
"""


def write_config(path, workdir, conn_table=4096, b1_weight=100, udp_backends=BACKENDS, extra=False, ipip_table=1009):
    fmt = dict(pid=topo.PID, dev=DEV, lb=ADDR["lb"], gw=ADDR["gw"], vip_dsr=VIP_DSR, vip_ipip=VIP_IPIP,
               vip_extra=VIP_EXTRA, vip_disc=VIP_DISC, etcd_port=ETCD_PORT, etcd_prefix=ETCD_PREFIX, port=VIP_PORT, udp_port=UDP_PORT, b1=ADDR["b1"], b2=ADDR["b2"], b3=ADDR["b3"])
    text = CONFIG.format(state=os.path.join(workdir, "state"), conn_table=conn_table, b1_weight=b1_weight,
                         ipip_table=ipip_table,
                         udp_backends=", ".join('{ address = "%s" }' % ADDR[b] for b in udp_backends),
                         extra=EXTRA.format(**fmt) if extra else "", **fmt)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)  # sluiced never reads half a file


class Daemon:
    """sluiced plus the sluicectl calls the test makes against it."""

    def __init__(self, procs, sluicectl):
        self.procs, self.sluicectl = procs, sluicectl

    def log(self):
        return self.procs.log("sluiced")

    def ctl(self, *args, check_rc=True):
        r = run([self.sluicectl, "--json", "--timeout", "5", *args], ns=NS["lb"], check_rc=False)
        if check_rc and r.returncode != 0:
            raise Failure(f"sluicectl {' '.join(args)} exited {r.returncode}: {r.stdout}{r.stderr}")
        return json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}

    def sighup_and_wait(self, marker):
        """SIGHUP, then wait for one more log line containing `marker`."""
        before = self.log().count(marker)
        self.procs.signal("sluiced", signal.SIGHUP)
        deadline = time.monotonic() + 5
        while self.log().count(marker) <= before:
            check(time.monotonic() < deadline, f"no '{marker}' within 5 s of SIGHUP:\n{self.log()[-2000:]}")
            time.sleep(0.02)

    def wait_for(self, what, predicate, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            check(time.monotonic() < deadline, f"timed out waiting for {what}")
            time.sleep(0.05)


def backend_by_name(service_json, address):
    return next((b for b in service_json.get("backends", []) if b["address"] == address), None)


def test_reloads(procs, workdir, config_path, d):
    # Warm up ARP on every path before counting.
    warm = run(["/usr/bin/python3", "-c", SHORT, VIP_DSR, str(VIP_PORT), "3"], ns=NS["cl"], timeout=30)
    check(not json.loads(warm.stdout)["errors"], f"warm-up failed: {warm.stdout}")
    before = d.ctl("stats")
    stream = procs.start("stream", NS["cl"], ["/usr/bin/python3", "-u", "-c", STREAM, DEV, str(STREAM_SECONDS),
                                              str(UDP_RATE), VIP_DSR, str(UDP_PORT), str(VIP_PORT), VIP_DSR,
                                              VIP_IPIP])
    time.sleep(0.8)
    t0 = time.monotonic()
    write_config(config_path, workdir, b1_weight=300)
    d.sighup_and_wait("reload applied")
    time.sleep(0.5)
    write_config(config_path, workdir, b1_weight=300, extra=True)
    d.sighup_and_wait("reload applied")
    time.sleep(0.5)
    write_config(config_path, workdir, b1_weight=300, extra=True, udp_backends=("b1", "b2"))
    d.sighup_and_wait("reload applied")
    time.sleep(0.5)
    write_config(config_path, workdir, b1_weight=300, extra=True, udp_backends=("b1", "b2"), ipip_table=1000)
    d.sighup_and_wait("reload refused")
    time.sleep(0.3)
    write_config(config_path, workdir, conn_table=8192, b1_weight=300, extra=True, udp_backends=("b1", "b2"))
    d.sighup_and_wait("reload refused")
    print(f"ok   3 reloads applied and 2 refused within {time.monotonic() - t0:.1f} s of a "
          f"{STREAM_SECONDS:.0f} s stream")
    rc = procs.wait("stream", STREAM_SECONDS + 30)
    check(rc == 0, f"stream client exited {rc}: {procs.log('stream')}")
    report = json.loads(procs.log("stream").strip().splitlines()[-1])
    time.sleep(0.5)
    after = d.ctl("stats")

    tcp = report["tcp"]
    check(not tcp["errors"], f"{len(tcp['errors'])} TCP connections failed during reloads: {tcp['errors']}")
    check(tcp["ok"] >= 20, f"only {tcp['ok']} TCP connections in {STREAM_SECONDS} s")
    print(f"ok   {tcp['ok']} TCP connections during the reloads, none failed ({tcp['backends']})")
    received = {}
    for b in BACKENDS:
        with open(os.path.join(workdir, f"udp-{b}.count")) as f:
            received[b] = int(f.read().strip() or 0)
    got = sum(received.values())
    check(got == report["udp_sent"], f"client sent {report['udp_sent']} datagrams, backends received {got} "
                                     f"({received})")
    print(f"ok   {got}/{report['udp_sent']} UDP datagrams reached a backend across the reloads ({received})")
    delta = {k: after["totals"][k] - before["totals"][k] for k in
             ("rx_packets", "tx_packets", "control_packets", "exception_packets")}
    drops = {k: after["drops"][k] - before["drops"].get(k, 0) for k in after["drops"]}
    dropped = sum(drops.values())
    # Every packet sluice received in the window ended sent, handled (ARP)
    # or dropped with a reason; none of the VIP traffic was dropped: only
    # frames for no VIP (the segment's broadcasts) may be.
    check(delta["rx_packets"] == delta["tx_packets"] + delta["control_packets"] + delta["exception_packets"] +
          dropped, f"rx != tx + control + exception + drops over the window: {delta}, drops {drops}")
    vip_drops = {k: v for k, v in drops.items() if v and k != "not_for_vip"}
    check(not vip_drops, f"sluice dropped VIP traffic during the reloads: {vip_drops}")
    check(delta["tx_packets"] == report["frames_to_vips"],
          f"sluice sent {delta['tx_packets']} packets, the client sent {report['frames_to_vips']} frames to the VIPs")
    print(f"ok   sluice transmitted exactly the client's {delta['tx_packets']} frames; rx {delta['rx_packets']} = "
          f"tx + {delta['control_packets']} ARP + {dropped} counted drops (not for a VIP)")
    check(after["reloads"]["ok"] == 3 and after["reloads"]["failed"] == 2, f"reload counters {after['reloads']}")

    log = d.log()
    check(f"{config_path}:" in log and "table_size" in log, "the invalid reload's file:line:col diagnostic is "
                                                            "missing from the log")
    check("dataplane.dpdk.conn_table_size changed: restart sluiced" in log, "restart-required reason not logged")
    # The last good config serves: the extra service exists, udp has two backends, b1 weighs 300.
    services = {s["name"]: s for s in d.ctl("services")["services"]}
    check(set(services) == {"dsr", "ipip", "udp", "extra", "disc"}, f"services after reloads: {sorted(services)}")
    udp = d.ctl("backends", "udp")
    check(sorted(b["address"] for b in udp["backends"] if b["drain_source"] != "removed") == [ADDR["b1"], ADDR["b2"]]
          and all(not b["in_table"] for b in udp["backends"] if b["drain_source"] == "removed"),
          f"udp backends: {udp}")  # the backend the reload dropped drains until drain_deadline_s
    ipip = d.ctl("backends", "ipip")
    check(backend_by_name(ipip, ADDR["b1"])["weight"] == 300, f"ipip backends: {ipip}")
    short = run(["/usr/bin/python3", "-c", SHORT, VIP_EXTRA, str(VIP_PORT), "6"], ns=NS["cl"], timeout=30)
    check(not json.loads(short.stdout)["errors"], f"the service added by reload does not serve: {short.stdout}")
    print("ok   refused reloads left the last good config serving (added service answers, removed backend draining)")


def test_drain(procs, workdir, d):
    portfile, finish = os.path.join(workdir, "long.port"), os.path.join(workdir, "long.finish")
    long_proc = procs.start("long", NS["cl"], ["/usr/bin/python3", "-u", "-c", LONG, VIP_DSR, str(VIP_PORT),
                                               portfile, finish])
    d.wait_for("the long-lived connection", lambda: os.path.exists(portfile), timeout=10)
    with open(portfile) as f:
        local_port = int(f.read())
    pick = d.ctl("lookup", f"{ADDR['cl']}:{local_port}", f"{VIP_DSR}:{VIP_PORT}")
    target = pick["backend"]
    check(target in [ADDR[b] for b in BACKENDS], f"lookup gave {pick}")
    d.ctl("drain", "dsr", target)
    t0 = time.monotonic()
    backend = d.wait_for("the drain to be published", lambda: (lambda b: b if b and b["draining"] and
                                                               not b["in_table"] else None)(
        backend_by_name(d.ctl("backends", "dsr"), target)))
    check(backend["drain_source"] == "api" and backend["slots"] == 0, f"drained backend: {backend}")
    print(f"ok   sluicectl drain dsr {target}: published in {time.monotonic() - t0:.2f} s, source api, 0 slots")
    name = next(b for b in BACKENDS if ADDR[b] == target)
    short = json.loads(run(["/usr/bin/python3", "-c", SHORT, VIP_DSR, str(VIP_PORT), "30", "20000"],
                           ns=NS["cl"], timeout=60).stdout)
    check(not short["errors"], f"new connections failed during the drain: {short['errors']}")
    check(name not in short["seen"], f"the drained backend {name} got new connections: {short['seen']}")
    print(f"ok   30 new connections avoided the drained backend: {short['seen']}")
    time.sleep(1.0)  # the drained backend's connection keeps trickling well past the drain
    open(finish, "w").close()
    rc = procs.wait("long", 30)
    check(rc == 0, f"long-lived client exited {rc}: {procs.log('long')}")
    result = json.loads(procs.log("long").strip().splitlines()[-1])
    check(result["reply"] == ["backend", name, str(result["total"])],
          f"long-lived connection to {name} did not complete: {result}")
    print(f"ok   the long-lived connection to the drained {name} kept working "
          f"({result['total']} bytes over {result['seconds']:.1f} s)")
    d.ctl("undrain", "dsr", target)
    d.wait_for("the undrain", lambda: (lambda b: b and not b["draining"] and b["in_table"])(
        backend_by_name(d.ctl("backends", "dsr"), target)))
    print("ok   undrain: the backend owns slots again")
    del long_proc


class Etcd:
    """A real etcd in sluiced's namespace (its loopback), stopped by PID."""

    def __init__(self, procs, workdir):
        self.procs = procs
        url = f"http://127.0.0.1:{ETCD_PORT}"
        procs.start("etcd", NS["lb"], ["/usr/bin/etcd", "--name", "e2e", "--data-dir", os.path.join(workdir, "etcd"),
                                       "--listen-client-urls", url, "--advertise-client-urls", url,
                                       "--listen-peer-urls", "http://127.0.0.1:2380",
                                       "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                                       "--initial-cluster", "e2e=http://127.0.0.1:2380", "--log-level", "warn"])
        deadline = time.monotonic() + 20
        while self.ctl("endpoint", "health", check_rc=False).returncode != 0:
            check(time.monotonic() < deadline, f"etcd did not start: {procs.log('etcd')[-1000:]}")
            time.sleep(0.1)

    def ctl(self, *args, check_rc=True):
        return run(["/usr/bin/etcdctl", "--endpoints", f"http://127.0.0.1:{ETCD_PORT}", "--dial-timeout=2s",
                    "--command-timeout=5s", *args], ns=NS["lb"], check_rc=check_rc)

    def put(self, address):
        self.ctl("put", ETCD_PREFIX + address, json.dumps({"address": address}))

    def delete(self, address):
        self.ctl("del", ETCD_PREFIX + address)

    def stop(self):
        self.procs.signal("etcd", signal.SIGTERM)
        self.procs.wait("etcd", 10)


def test_discovery(procs, workdir, d, etcd):
    def addresses():
        return sorted(b["address"] for b in d.ctl("backends", "disc")["backends"] if b["in_table"])

    def serve(expected_names, base):
        out = json.loads(run(["/usr/bin/python3", "-c", SHORT, VIP_DISC, str(VIP_PORT), "24", str(base)],
                             ns=NS["cl"], timeout=60).stdout)
        check(not out["errors"], f"connections to the discovered service failed: {out['errors']}")
        check(set(out["seen"]) == set(expected_names), f"served by {out['seen']}, want {expected_names}")
        return out["seen"]

    check(addresses() == [ADDR["b1"]], f"disc backends at start: {addresses()}")
    serve({"b1"}, 21000)
    t0 = time.monotonic()
    etcd.put(ADDR["b2"])
    etcd.put(ADDR["b3"])
    d.wait_for("b2 and b3 from etcd", lambda: addresses() == sorted(ADDR[b] for b in BACKENDS))
    added = time.monotonic() - t0
    etcd.delete(ADDR["b1"])
    d.wait_for("b1 deleted in etcd", lambda: addresses() == sorted([ADDR["b2"], ADDR["b3"]]))
    seen = serve({"b2", "b3"}, 21100)
    print(f"ok   etcd put/delete reach the data plane (put of two backends visible via the API in {added:.2f} s); "
          f"new connections follow: {seen}")
    etcd.stop()
    service = d.wait_for("the outage to show", lambda: (lambda s: s if s["discovery"]["state"] == "stale" else None)(
        next(s for s in d.ctl("services")["services"] if s["name"] == "disc")), timeout=10)
    serve({"b2", "b3"}, 21200)
    print(f"ok   etcd down: discovery '{service['discovery']['state']}', the last good set keeps serving")
    with open(os.path.join(workdir, "state", "backends-disc.json")) as f:
        saved = sorted(b["address"] for b in json.load(f)["backends"])
    check(saved == sorted([ADDR["b2"], ADDR["b3"]]), f"persisted set {saved}")
    print("ok   the last good set is persisted in daemon.state_dir")


def main():
    topo.require(os.geteuid() == 0, "root (netns, veth, bridge, tc BPF)")
    topo.require((os.cpu_count() or 1) >= 2, "two CPUs (a DPDK worker lcore besides the main one)")
    build_dir = os.environ.get("SLUICE_BUILD_DIR") or os.environ.get("SLUICE_BUILD_ROOT")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT",
                                 os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    sluiced = os.path.join(build_dir or "", "controlplane", "sluiced")
    sluicectl = os.path.join(build_dir or "", "controlplane", "sluicectl", "sluicectl")
    decap_tool = os.path.join(build_dir or "", "ebpf", "sluice-decap-tool")
    for path in (sluiced, sluicectl, decap_tool):
        if not build_dir or not os.access(path, os.X_OK):
            print(f"FAIL: {path} missing (SLUICE_BUILD_DIR/SLUICE_BUILD_ROOT = {build_dir})", file=sys.stderr)
            return 1
    decap = os.path.join(source_root, "scripts", "sluice-decap")
    workdir = tempfile.mkdtemp(prefix=f"sluice-reload-{topo.PID}-")
    procs = topo.Processes(workdir)
    started = time.monotonic()
    try:
        try:
            topo.setup()
            run(["tc", "qdisc", "add", "dev", DEV, "clsact"], ns=NS["b1"])  # feature probe
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            topo.require(False, f"netns, veth, bridge and clsact ({e})")
        env_build = dict(os.environ, SLUICE_BUILD_DIR=build_dir)
        for b in BACKENDS:
            subprocess.run(["ip", "netns", "exec", NS[b], decap, "attach", DEV, "--local", ADDR[b]],
                           check=True, capture_output=True, timeout=topo.CMD_TIMEOUT, env=env_build)
            run(["ip", "-n", NS[b], "addr", "add", f"{VIP_EXTRA}/32", "dev", "lo"])
            run(["ip", "-n", NS[b], "addr", "add", f"{VIP_DISC}/32", "dev", "lo"])
            procs.start(f"server-{b}", NS[b], ["/usr/bin/python3", "-u", "-c", topo.SERVER, b,
                                               os.path.join(workdir, f"{b}.ready")])
            procs.start(f"udp-{b}", NS[b], ["/usr/bin/python3", "-u", "-c", UDP_SINK, str(UDP_PORT),
                                            os.path.join(workdir, f"udp-{b}.count")])
        deadline = time.monotonic() + topo.CMD_TIMEOUT
        while not all(os.path.exists(os.path.join(workdir, f)) for b in BACKENDS
                      for f in (f"{b}.ready", f"udp-{b}.count")):
            check(time.monotonic() < deadline, "backend servers did not start")
            time.sleep(0.05)

        etcd = Etcd(procs, workdir)
        etcd.put(ADDR["b1"])
        config_path = os.path.join(workdir, "sluice.toml")
        write_config(config_path, workdir)
        proc = procs.start("sluiced", NS["lb"], [sluiced, "--config", config_path])
        deadline = time.monotonic() + topo.START_TIMEOUT
        while "running; SIGTERM" not in procs.log("sluiced"):
            check(proc.poll() is None, f"sluiced exited {proc.returncode} during start-up")
            check(time.monotonic() < deadline, f"sluiced did not start within {topo.START_TIMEOUT} s")
            time.sleep(0.1)
        d = Daemon(procs, sluicectl)
        check("allocator=jemalloc" in d.log() and "malloc_is_jemalloc=true" in d.log(),
              "sluiced did not report jemalloc as the allocator malloc() reaches")
        d.wait_for("/readyz", lambda: d.ctl("status", check_rc=False) is not None and
                   run([sluicectl, "status"], ns=NS["lb"], check_rc=False).returncode == 0, timeout=10)
        print(f"sluiced ready after {time.monotonic() - started:.1f} s")

        test_reloads(procs, workdir, config_path, d)
        test_drain(procs, workdir, d)
        test_discovery(procs, workdir, d, etcd)

        procs.signal("sluiced", signal.SIGTERM)
        rc = procs.wait("sluiced", topo.STOP_TIMEOUT)
        check(rc == 0, f"sluiced exited {rc} after SIGTERM, want 0")
        log = d.log()
        order = [log.find(m) for m in ("stopping on SIGTERM", "final counters:", "msg=\"stopped\"")]
        check(all(i >= 0 for i in order) and order == sorted(order), "sluiced did not stop in order")
        print(f"reload e2e: all checks passed in {time.monotonic() - started:.1f} s")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        if "sluiced" in procs.procs:
            print(f"--- sluiced log ---\n{procs.log('sluiced')[-6000:]}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
        for ns in NS.values():
            run(["ip", "netns", "del", ns], check_rc=False)
        subprocess.run(["rm", "-rf", "--", workdir], check=False)


def _terminate(signum, frame):
    raise SystemExit(1)  # meson's timeout sends SIGTERM: unwind through main's cleanup


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
