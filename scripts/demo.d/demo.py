#!/usr/bin/python3
"""scripts/demo's second half: the whole system in network namespaces.

Called by scripts/demo after bootstrap and build. Reuses the tested topology
of tests/integration/dpdk_e2e_test.py (a bridge "switch" namespace, a
client, the sluice node with DPDK on net_af_packet over its veth, a gateway,
backends with the VIP on loopback for L2 DSR), with four backends, each
running a real HTTP server that names itself, and a real etcd in the sluice
node's namespace feeding the service "web" (config/demo.toml).

With --xdp the node runs the XDP data plane instead, set up as
tests/integration/xdp_e2e_test.py does: the node's kernel owns its address
(and ARP), the client routes the VIP to it, the program is attached natively
to the node's veth and its maps are pinned on a bpffs of this run's.

Every process is started by PID file and killed by PID; every namespace
carries this run's PID; all of it goes on exit, error, SIGINT and SIGTERM.
Exit status: 0 done, 1 a step failed, 2 usage / environment.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import dpdk_e2e_test as topo  # noqa: E402  (topology and process helpers; its main() does not run)
import xdp_e2e_test  # noqa: E402  (load_xdp_pass; its main() does not run)

PID = os.getpid()
BACKENDS = ("b1", "b2", "b3", "b4")
DRAIN, REMOVE = "b3", "b4"
SERVICE = "web"
VIP, PORT = topo.VIP_DSR, topo.VIP_PORT
ETCD_URL = "http://127.0.0.1:2379"
ETCD_PREFIX = "/sluice/services/web/"
ADMIN_PORT = 9180

# The topology module's names, made this run's: four backends, "demo-" names.
topo.NS.clear()
topo.NS.update({role: f"sluice-demo-{role}-{PID}" for role in ("sw", "cl", "lb", "gw") + BACKENDS})
topo.ADDR["b4"] = f"{topo.PREFIX}.24"
topo.BACKENDS = BACKENDS
NS, ADDR, DEV = topo.NS, topo.ADDR, topo.DEV
run = topo.run

# The backends' HTTP server (shared with the e2e tests).
SERVER = os.path.join(ROOT, "tests", "common", "http_backend.py")

# Client: `count` HTTP requests, one connection each (Connection: close),
# from source ports base..base+count-1 (below the ephemeral range: no
# leftover connection-table entry of an earlier flow decides where a new
# one goes), over `threads` threads. Prints who answered.
BURST = r"""
import http.client, json, sys, threading, time
vip, port, count, threads, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
seen, errors, lock = {}, [], threading.Lock()
def worker(t):
    for i in range(t, count, threads):
        if len(errors) >= 20:
            return
        try:
            c = http.client.HTTPConnection(vip, port, timeout=3, source_address=("0.0.0.0", base + i))
            c.request("GET", "/", headers={"Connection": "close"})
            r = c.getresponse()
            words = r.read().decode().split()
            c.close()
            if r.status != 200 or len(words) != 2 or words[0] != "backend":
                raise ValueError("unexpected reply %r" % words)
            with lock:
                seen[words[1]] = seen.get(words[1], 0) + 1
        except Exception as e:
            with lock:
                errors.append("%d: %s" % (base + i, e))
start = time.monotonic()
ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps({"seen": seen, "errors": errors, "seconds": time.monotonic() - start}))
"""

# Client: long-lived HTTP/1.1 keep-alive connections (one per source port given), each sending
# a request every 0.25 s until `finish` exists (at most 100 s). Publishes
# each connection's backend, requests answered and error in `status`.
LONG = r"""
import http.client, json, os, sys, threading, time
vip, port, status, finish = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = [{"port": int(p), "backend": None, "ok": 0, "error": None, "other": 0} for p in sys.argv[5:]]
def worker(st):
    try:
        c = http.client.HTTPConnection(vip, port, timeout=3, source_address=("0.0.0.0", st["port"]))
        start = time.monotonic()
        while True:
            c.request("GET", "/")
            r = c.getresponse()
            words = r.read().decode().split()
            if r.status != 200 or len(words) != 2:
                raise ValueError("unexpected reply %r" % words)
            if st["backend"] is None:
                st["backend"] = words[1]
            elif words[1] != st["backend"]:
                st["other"] += 1
            st["ok"] += 1
            if os.path.exists(finish) or time.monotonic() - start > 100:
                break
            time.sleep(0.25)
        c.close()
    except Exception as e:
        st["error"] = "%s: %s" % (type(e).__name__, e)
ts = [threading.Thread(target=worker, args=(st,)) for st in conns]
for t in ts:
    t.start()
def publish(done):
    with open(status + ".tmp", "w") as f:
        json.dump({"conns": conns, "done": done}, f)
    os.rename(status + ".tmp", status)
while any(t.is_alive() for t in ts):
    publish(False)
    time.sleep(0.1)
publish(True)
"""


class Failure(Exception):
    pass


class Demo:
    def __init__(self, args):
        self.args = args
        self.build = args.build_dir
        self.sluiced = os.path.join(self.build, "controlplane", "sluiced")
        self.sluicectl = os.path.join(self.build, "controlplane", "sluicectl", "sluicectl")
        self.workdir = tempfile.mkdtemp(prefix=f"sluice-demo-{PID}-")
        self.procs = topo.Processes(self.workdir)
        self.step_no = args.first_step - 1
        self.total = args.total_steps
        self.started = time.monotonic()
        self.hugepages_before = hugepages()
        self.keeping = False  # --keep: the steps are done, a signal ends the run normally
        self.xdp = args.xdp
        self.bpffs = os.path.join(self.workdir, "bpffs")  # --xdp: pins (maps, the peer's pass program)
        self.bpffs_mounted = False

    # -- output -------------------------------------------------------------

    def step(self, text):
        self.step_no += 1
        print(f"[{self.step_no}/{self.total}] {text} ...", end="", flush=True)
        return time.monotonic()

    @staticmethod
    def ok(t0, extra=""):
        print(f" ok ({time.monotonic() - t0:.1f} s){extra}", flush=True)

    def ctl(self, *args, as_json=False, check_rc=True):
        cmd = [self.sluicectl] + (["--json"] if as_json else []) + ["--timeout", "5", *args]
        r = run(cmd, ns=NS["lb"], check_rc=False)
        if check_rc and r.returncode != 0:
            raise Failure(f"sluicectl {' '.join(args)} exited {r.returncode}: {r.stdout}{r.stderr}")
        if as_json:
            return json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        return r.stdout

    def etcdctl(self, *args, check_rc=True):
        return run(["/usr/bin/etcdctl", "--endpoints", ETCD_URL, "--dial-timeout=2s", "--command-timeout=5s", *args],
                   ns=NS["lb"], check_rc=check_rc)

    def wait_for(self, what, predicate, timeout):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise Failure(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)

    def wait_started(self, name, proc, marker_file=None, log_marker=None, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            if marker_file and os.path.exists(marker_file):
                return
            if log_marker and log_marker in self.procs.log(name):
                return
            if proc.poll() is not None:
                raise Failure(f"{name} exited {proc.returncode} while starting:\n{self.procs.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise Failure(f"{name} did not start within {timeout} s:\n{self.procs.log(name)[-3000:]}")
            time.sleep(0.05)

    # -- the steps ----------------------------------------------------------

    def topology(self):
        t0 = self.step(f"creating namespaces: client, sluice node, gateway, {len(BACKENDS)} backends, switch "
                       f"(sluice-demo-*-{PID})")
        topo.setup()
        if self.xdp:
            self.setup_xdp()
        self.ok(t0)

    def setup_xdp(self):
        """The node as an XDP host: its kernel keeps the interface, its
        address and ARP; the client reaches the VIP by a route to the node
        (what a router or a BGP announcement would give it)."""
        run(["ip", "-n", NS["lb"], "link", "set", DEV, "arp", "on"])
        run(["ip", "-n", NS["lb"], "addr", "add", f"{ADDR['lb']}/24", "dev", DEV])
        run(["ip", "-n", NS["cl"], "route", "add", f"{VIP}/32", "via", ADDR["lb"]])
        os.mkdir(self.bpffs)
        run(["mount", "-t", "bpf", "bpf", self.bpffs])
        self.bpffs_mounted = True
        # Native XDP_TX on a veth needs an XDP program on the peer (the
        # switch's port) for the frames to be received there.
        xdp_e2e_test.load_xdp_pass(os.path.join(self.bpffs, "pass"))
        run(["ip", "-n", NS["sw"], "link", "set", "dev", "plb", "xdpdrv", "pinned", os.path.join(self.bpffs, "pass")])

    def backends(self):
        t0 = self.step(f"starting {len(BACKENDS)} HTTP backends ({', '.join(ADDR[b] for b in BACKENDS)}, VIP "
                       f"{VIP} on their loopback)")
        for b in BACKENDS:
            self.procs.start(f"http-{b}", NS[b], ["/usr/bin/python3", "-u", SERVER, b, "80",
                                                  os.path.join(self.workdir, f"{b}.ready"), str(PID)])
        for b in BACKENDS:
            self.wait_started(f"http-{b}", self.procs.procs[f"http-{b}"][0],
                              marker_file=os.path.join(self.workdir, f"{b}.ready"))
        self.ok(t0)

    def etcd(self):
        t0 = self.step(f"starting etcd in the sluice node's namespace ({ETCD_URL}), registering the backends")
        self.procs.start("etcd", NS["lb"], [
            "/usr/bin/etcd", "--name", "demo", "--data-dir", os.path.join(self.workdir, "etcd"),
            "--listen-client-urls", ETCD_URL, "--advertise-client-urls", ETCD_URL,
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "demo=http://127.0.0.1:2380", "--log-level", "warn"])
        self.wait_for("etcd", lambda: self.etcdctl("endpoint", "health", check_rc=False).returncode == 0, 20)
        for b in BACKENDS:
            self.etcd_put(b)
        self.ok(t0)
        for b in BACKENDS:
            print(f"      etcdctl put {ETCD_PREFIX}{ADDR[b]} '{json.dumps({'address': ADDR[b]})}'")

    def etcd_put(self, b, **extra):
        self.etcdctl("put", ETCD_PREFIX + ADDR[b], json.dumps({"address": ADDR[b], **extra}))

    def start_sluiced(self):
        if self.xdp:
            t0 = self.step(f"starting sluiced (XDP, native on veth {DEV}, maps pinned on this run's bpffs)")
        else:
            t0 = self.step(f"starting sluiced (DPDK, af_packet on veth {DEV}, no hugepages)")
        with open(os.path.join(ROOT, "config", "demo.toml")) as f:
            text = f.read()
        if self.xdp:
            text, n = re.subn(r'(?m)^type = "dpdk"$', 'type = "xdp"', text)
            if n != 1 or "\n[network]\n" not in text:
                raise Failure("config/demo.toml has no [dataplane] type line or [network] section")
            text = text.replace("\n[network]\n", f'\n[dataplane.xdp]\ninterfaces = ["{DEV}"]\n'
                                f'pin_path = "{self.bpffs}/sluice"\n\n[network]\n', 1)
        state = os.path.join(self.workdir, "state")
        text, n = re.subn(r'(?m)^state_dir = ".*"$', f'state_dir = "{state}"', text)
        if n != 1:
            raise Failure("config/demo.toml has no state_dir line to replace")
        self.config = os.path.join(self.workdir, "demo.toml")
        with open(self.config, "w") as f:
            f.write(text)
        proc = self.procs.start("sluiced", NS["lb"], [self.sluiced, "--config", self.config])
        self.wait_started("sluiced", proc, log_marker="running; SIGTERM", timeout=30)
        self.wait_for("sluiced to be ready (sluicectl status)",
                      lambda: run([self.sluicectl, "--timeout", "2", "status"], ns=NS["lb"],
                                  check_rc=False).returncode == 0, 15)
        self.wait_for("four backends in the table", lambda: len(self.in_table()) == len(BACKENDS), 10)
        self.ok(t0, f", pid {self.procs.pid('sluiced')}")
        print(f"      metrics: ip netns exec {NS['lb']} curl -s http://127.0.0.1:{ADMIN_PORT}/metrics")
        print(self.indent(self.ctl("services")))

    def in_table(self):
        return sorted(b["address"] for b in self.ctl("backends", SERVICE, as_json=True).get("backends", [])
                      if b.get("in_table"))

    @staticmethod
    def indent(text):
        return "\n".join("      " + line for line in text.rstrip().splitlines())

    def burst(self, count, base, title):
        t0 = self.step(f"{title}: {count} HTTP requests from the client to {VIP}:{PORT}")
        out = run(["/usr/bin/python3", "-c", BURST, VIP, str(PORT), str(count), "8", str(base)], ns=NS["cl"],
                  timeout=120)
        result = json.loads(out.stdout)
        if result["errors"]:
            raise Failure(f"{len(result['errors'])} requests failed: {result['errors'][:5]}")
        self.ok(t0, f", {count / max(result['seconds'], 1e-3):.0f} req/s")
        return result["seen"]

    def table(self, seen, notes=None):
        total = sum(seen.values()) or 1
        print("      backend  address        requests  share")
        for b in BACKENDS:
            n = seen.get(b, 0)
            bar = "#" * round(40 * n / total)
            note = f"  ({notes[b]})" if notes and b in notes else ""
            print(f"      {b:<8} {ADDR[b]:<14} {n:>8}  {100 * n / total:5.1f}%  {bar}{note}")
        print(f"      {'total':<8} {'':<14} {sum(seen.values()):>8}")

    def pick_ports(self, per_backend):
        """Client source ports whose flows reach each backend `per_backend`
        times, asked of sluice itself (`sluicectl lookup`)."""
        chosen, want = [], {ADDR[b]: per_backend for b in BACKENDS}
        for port in range(30000, 30200):
            if not any(want.values()):
                break
            pick = self.ctl("lookup", f"{ADDR['cl']}:{port}", f"{VIP}:{PORT}", as_json=True)
            if want.get(pick.get("backend"), 0) > 0:
                want[pick["backend"]] -= 1
                chosen.append(port)
        if any(want.values()):
            raise Failure(f"no source ports found for {want} in 200 lookups")
        return chosen

    def open_long(self, per_backend):
        count = per_backend * len(BACKENDS)
        t0 = self.step(f"opening {count} long-lived HTTP keep-alive connections, {per_backend} per backend "
                       f"(a request every 0.25 s each)")
        ports = self.pick_ports(per_backend)
        self.long_status = os.path.join(self.workdir, "long.json")
        self.long_finish = os.path.join(self.workdir, "long.finish")
        proc = self.procs.start("long", NS["cl"], ["/usr/bin/python3", "-u", "-c", LONG, VIP, str(PORT),
                                                   self.long_status, self.long_finish] + [str(p) for p in ports])

        def assigned():
            status = self.read_long()
            if proc.poll() is not None and not status:
                raise Failure(f"long-lived client exited {proc.returncode}: {self.procs.log('long')}")
            return status if status and all(c["backend"] or c["error"] for c in status["conns"]) else None
        status = self.wait_for("the long-lived connections", assigned, 15)
        errors = [c for c in status["conns"] if c["error"]]
        if errors:
            raise Failure(f"long-lived connections failed at once: {errors}")
        per = {}
        for c in status["conns"]:
            per[c["backend"]] = per.get(c["backend"], 0) + 1
        self.ok(t0, ", per backend " + ", ".join(f"{b} {per.get(b, 0)}" for b in BACKENDS))
        return status

    def read_long(self):
        try:
            with open(self.long_status) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def change(self):
        t0 = self.step(f"etcd: {DRAIN} state \"draining\", {REMOVE} key deleted")
        self.long_at_change = {c["port"]: c["ok"] for c in self.read_long()["conns"]}
        self.etcd_put(DRAIN, state="draining")
        self.etcdctl("del", ETCD_PREFIX + ADDR[REMOVE])

        def applied():
            backends = {b["address"]: b for b in self.ctl("backends", SERVICE, as_json=True).get("backends", [])}
            d, r = backends.get(ADDR[DRAIN]), backends.get(ADDR[REMOVE])
            # The removed b4 drains too (drain_source "removed") until drain_deadline_s.
            return (d and d.get("draining") and not d.get("in_table") and r and r.get("draining")
                    and r.get("drain_source") == "removed" and not r.get("in_table"))
        self.wait_for("the change to be published", applied, 10)
        self.ok(t0, " (published)")
        print(f"      etcdctl put {ETCD_PREFIX}{ADDR[DRAIN]} '{json.dumps({'address': ADDR[DRAIN], 'state': 'draining'})}'")
        print(f"      etcdctl del {ETCD_PREFIX}{ADDR[REMOVE]}")
        print(self.indent(self.ctl("backends", SERVICE)))
        # The long-lived connections still pinned to the drained backends.
        print("      sluicectl connections web: the first burst's closed connections count until their "
              "closing timeout (30 s), the long-lived ones until they close")
        print(self.indent(self.ctl("connections", SERVICE)))

    def burst_with_stats(self, count, base):
        """The second burst, with `sluicectl stats --watch` printing alongside."""
        holder = {}

        def traffic():
            try:
                holder["seen"] = self.burst_quiet(count, base)
            except Exception as e:  # reported below
                holder["error"] = e
        t0 = self.step(f"after the change: {count} HTTP requests, with the live `sluicectl stats --watch`")
        print()
        th = threading.Thread(target=traffic)
        th.start()
        watch = run([self.sluicectl, "stats", "--watch", "--interval", "1", "--count", "3"], ns=NS["lb"],
                    check_rc=False, timeout=30)
        print(self.indent(watch.stdout))
        th.join(120)
        if "error" in holder:
            raise holder["error"]
        if "seen" not in holder:
            raise Failure("the second burst did not finish")
        print(f"      ... ok ({time.monotonic() - t0:.1f} s)")
        return holder["seen"]

    def metrics(self):
        """A few series of the Prometheus endpoint, fetched as the printed command does."""
        url = f"http://127.0.0.1:{ADMIN_PORT}/metrics"
        t0 = self.step(f"Prometheus metrics: ip netns exec {NS['lb']} curl -s {url}")
        r = run(["curl", "-sf", "--max-time", "5", url], ns=NS["lb"], check_rc=False)
        if r.returncode != 0:
            raise Failure(f"curl {url} in {NS['lb']} exited {r.returncode}")
        lines = r.stdout.splitlines()
        series = [line for line in lines if line and not line.startswith("#")]
        self.ok(t0, f", {len(series)} series")
        for line in series:
            if line.startswith(("sluice_backend_packets_total", "sluice_backend_draining", "sluice_discovery_up",
                                "sluice_conn_table_live_entries", "sluice_worker_rx_packets_total",
                                "sluice_worker_busy_seconds_total")):
                print("      " + line)

    def burst_quiet(self, count, base):
        out = run(["/usr/bin/python3", "-c", BURST, VIP, str(PORT), str(count), "8", str(base)], ns=NS["cl"],
                  timeout=120)
        result = json.loads(out.stdout)
        if result["errors"]:
            raise Failure(f"{len(result['errors'])} requests failed: {result['errors'][:5]}")
        return result["seen"]

    def close_long(self):
        t0 = self.step("finishing the long-lived connections")
        open(self.long_finish, "w").close()
        rc = self.procs.wait("long", 15)
        status = self.read_long()
        if rc is None or not status or not status["done"]:
            raise Failure(f"the long-lived client did not finish: {self.procs.log('long')}")
        self.ok(t0)
        print("      backend  state     conns  survived  requests after the change  (survived: no error, "
              "same backend, answered after the change)")
        summary = {}
        for b in BACKENDS:
            conns = [c for c in status["conns"] if c["backend"] == b]
            after = [c["ok"] - self.long_at_change.get(c["port"], 0) for c in conns]
            good = [c for c, n in zip(conns, after) if not c["error"] and c["other"] == 0 and n > 0]
            state = {DRAIN: "draining", REMOVE: "removed"}.get(b, "active")
            reqs = "-" if not conns else " ".join(str(n) for n in after)
            print(f"      {b:<8} {state:<9} {len(conns):>5}  {len(good):>8}  {reqs}")
            summary[b] = (len(conns), len(good), [c["error"] for c in conns if c["error"]])
        return summary

    def teardown(self):
        """Everything this run started, by PID and by name; then checks."""
        if "sluiced" in self.procs.procs and self.procs.procs["sluiced"][0].poll() is None:
            self.procs.signal("sluiced", signal.SIGTERM)
            self.procs.wait("sluiced", 10)
        if "long" in self.procs.procs:
            open(os.path.join(self.workdir, "long.finish"), "w").close()
        pids = [p for p in (self.procs.pid(n) for n in self.procs.procs) if p]
        self.procs.kill_all()
        for ns in NS.values():
            run(["ip", "netns", "del", ns], check_rc=False)
        if self.bpffs_mounted:  # the pinned maps and pass program go with it
            run(["umount", self.bpffs], check_rc=False)
        # sluiced's EAL runtime directory (--file-prefix=sluiced-PID), if it made one.
        spid = self.procs.pid("sluiced") if "sluiced" in self.procs.procs else None
        if spid:
            subprocess.run(["rm", "-rf", "--", f"/var/run/dpdk/sluiced-{spid}"], check=False)
        subprocess.run(["rm", "-rf", "--", self.workdir], check=False)
        left = []
        names = set(run(["ip", "netns", "list"], check_rc=False).stdout.split())
        left += [f"namespace {ns}" for ns in NS.values() if ns in names]
        for p in pids:
            if os.path.exists(f"/proc/{p}"):
                left.append(f"process {p}")
        if hugepages() != self.hugepages_before:
            left.append(f"hugepages {hugepages()} (before: {self.hugepages_before})")
        if spid and os.path.exists(f"/var/run/dpdk/sluiced-{spid}"):
            left.append(f"/var/run/dpdk/sluiced-{spid}")
        if self.bpffs_mounted and os.path.ismount(self.bpffs):
            left.append(f"bpffs {self.bpffs}")
        return left


def hugepages():
    """(HugePages_Total, HugePages_Rsvd, files in /dev/hugepages)."""
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            values[k] = v.strip()
    try:
        files = len(os.listdir("/dev/hugepages"))
    except OSError:
        files = 0
    return (values.get("HugePages_Total"), values.get("HugePages_Rsvd"), files)


def main():
    parser = argparse.ArgumentParser(prog="scripts/demo.d/demo.py")
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--xdp", action="store_true", help="the XDP data plane instead of DPDK")
    parser.add_argument("--first-step", type=int, default=3)
    parser.add_argument("--total-steps", type=int, default=13)
    args = parser.parse_args()
    requests = 600 if args.quick else 3000
    long_per_backend = 2 if args.quick else 3

    if args.xdp:
        # The XDP connection table is per CPU (like DPDK's per worker), and a
        # veth runs XDP on the sending CPU, so a client moving between CPUs
        # would show its flows to several partitions; a NIC's RSS keeps a
        # flow on one. The demo's processes stay on one CPU, as a NIC queue would.
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"      (XDP on a veth: the demo runs on CPU {cpu} only, as one RSS queue would deliver it)")
    demo = Demo(args)
    for path in (demo.sluiced, demo.sluicectl, "/usr/bin/etcd", "/usr/bin/etcdctl"):
        if not os.access(path, os.X_OK):
            print(f"demo: {path} missing", file=sys.stderr)
            return 2
    status = 1
    try:
        demo.topology()
        demo.backends()
        demo.etcd()
        demo.start_sluiced()
        seen = demo.burst(requests, 10000, "spread")
        demo.table(seen)
        for b in BACKENDS:
            if seen.get(b, 0) < requests / len(BACKENDS) / 2:
                raise Failure(f"{b} got {seen.get(b, 0)} of {requests} requests: the spread is off")
        demo.open_long(long_per_backend)
        demo.change()
        seen2 = demo.burst_with_stats(requests, 20000)
        demo.table(seen2, notes={DRAIN: "draining", REMOVE: "removed"})
        avoided = seen2.get(DRAIN, 0) == 0 and seen2.get(REMOVE, 0) == 0
        summary = demo.close_long()
        print(demo.indent(demo.ctl("backends", SERVICE)))
        demo.metrics()
        drained_ok = summary[DRAIN][0] == summary[DRAIN][1]
        removed = summary[REMOVE]
        active_ok = all(summary[b][0] == summary[b][1] for b in BACKENDS if b not in (DRAIN, REMOVE))
        print()
        print("summary:")
        print(f"  spread: {requests} requests over {len(BACKENDS)} backends: "
              + ", ".join(f"{b} {seen.get(b, 0)}" for b in BACKENDS))
        print(f"  after draining {DRAIN} and removing {REMOVE} in etcd: {requests} new requests, "
              f"{seen2.get(DRAIN, 0)} to {DRAIN}, {seen2.get(REMOVE, 0)} to {REMOVE}"
              + (" (both avoided)" if avoided else " (NOT avoided)"))
        print(f"  long-lived on the draining {DRAIN}: {summary[DRAIN][1]}/{summary[DRAIN][0]} survived")
        removed_ok = removed[0] == removed[1]
        print(f"  long-lived on the removed {REMOVE}: {removed[1]}/{removed[0]} survived"
              + ("" if removed_ok else
                 f" (first error: {removed[2][0] if removed[2] else 'answered by another backend'})"))
        print(f"  long-lived on active backends: {'all survived' if active_ok else 'SOME FAILED'}")
        print(f"  metrics: ip netns exec {NS['lb']} curl -s http://127.0.0.1:{ADMIN_PORT}/metrics")
        if not (avoided and drained_ok and removed_ok and active_ok):
            raise Failure("new requests reached a drained/removed backend or a long-lived connection failed")
        if args.keep:
            print(f"\n--keep: running until Ctrl-C. Try:\n"
                  f"  ip netns exec {NS['lb']} {demo.sluicectl} backends {SERVICE}\n"
                  f"  ip netns exec {NS['lb']} {demo.sluicectl} stats --watch\n"
                  f"  ip netns exec {NS['lb']} curl -s http://127.0.0.1:{ADMIN_PORT}/metrics\n"
                  f"  ip netns exec {NS['cl']} curl -s http://{VIP}/\n"
                  f"  ip netns exec {NS['lb']} etcdctl put {ETCD_PREFIX}{ADDR[REMOVE]} "
                  f"'{json.dumps({'address': ADDR[REMOVE]})}'", flush=True)
            demo.keeping = True
            while demo.procs.procs["sluiced"][0].poll() is None:
                time.sleep(1)
            print("sluiced exited")
        status = 0
    except (Failure, RuntimeError, subprocess.TimeoutExpired) as e:
        print(" FAILED", flush=True)
        print(f"demo: {e}", file=sys.stderr)
        if "sluiced" in demo.procs.procs:
            print(f"--- sluiced log (last lines) ---\n{demo.procs.log('sluiced')[-3000:]}", file=sys.stderr)
    except KeyboardInterrupt:
        if demo.keeping:
            print("\nstopping (--keep ended by a signal)", flush=True)
            status = 0
        else:
            print("\ninterrupted", flush=True)
            status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.step_no = demo.total - 1
        t0 = demo.step("tearing down (processes by PID, namespaces by name)")
        left = demo.teardown()
        if left:
            print(" FAILED", flush=True)
            print("demo: left behind: " + ", ".join(left), file=sys.stderr)
            status = status or 1
        else:
            demo.ok(t0, ": no namespace, process or hugepage left")
    word = {0: "done", 130: "interrupted, cleaned up"}.get(status, "failed")
    print(f"demo: {word} in {time.monotonic() - demo.started:.1f} s")
    return status


def _terminate(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
