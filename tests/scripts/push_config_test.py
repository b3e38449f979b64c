#!/usr/bin/python3
"""scripts/sluice-push-config against two real sluiced nodes.

Each node is a network namespace of its own running sluiced (DPDK data plane
on net_af_packet over a veth, --no-huge) with its admin API on the
namespace's 127.0.0.1:9180 behind a bearer token. The script reaches n2 as a
`netns=` node and n1 as an `ssh=` node over real OpenSSH: `ssh` (an `ssh -F`
wrapper first in PATH, the only thing the test injects) connects through a
ProxyCommand that runs a real `sshd -i` inside n1's namespace, with a
throw-away host key checked strictly and a throw-away client key, so the
file read, the atomic install with backup, the rollback and sluicectl all
go through the ssh transport. Proves: --dry-run validates and changes nothing; a good push
reloads both nodes, which then serve the new service (reload counters +1,
PATH.bak holds the previous file); pushing it again is harmless and keeps the
backup; an invalid file is refused locally and no node is touched; a file
that passes --check-config but that sluiced refuses on reload (a changed
conn_table_size needs a restart) restores node 1's file, leaves node 2
untouched and exits 1 with the node's diagnostics; a reload that applies but
leaves the node not ready (an etcd source nobody answers) is rolled back and
reloaded; a wrong token fails the pre-flight with nothing touched.

Exit status: 0 pass, 1 fail, 77 skip (no root / 2 CPUs, only when CI is not "true").
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from sluice_testlib import SKIP, Failure, check, in_ci, require, run  # noqa: E402

CMD_TIMEOUT = 60
START_TIMEOUT = 30
PID = os.getpid()
NODES = ("n1", "n2")
NS = {n: f"sl-pc{n}-{PID}" for n in NODES}
DEV = "e0"

CONFIG = """
[daemon]
log_level = "info"
state_dir = "{state}"

[daemon.admin]
listen = "127.0.0.1"
port = 9180
token_file = "{token}"

[dataplane]
type = "dpdk"

[dataplane.dpdk]
eal_args = ["--no-huge", "-m", "128", "--no-pci", "--no-shconf", "--no-telemetry"]
main_lcore = 0
worker_lcores = [1]
mbuf_pool_size = 2047
conn_table_size = {conn_table}
exception_path = false

[[dataplane.dpdk.ports]]
name = "lan"
device = "net_af_packet_pc{pid},iface={dev},qpairs=2"
rx_queues = 2

[network]
source_ipv4 = "192.0.2.2"
gateway_ipv4 = "192.0.2.1"

[[service]]
name = "web"
vip = "192.0.2.100:80"
forwarding = "l2dsr"
table_size = 251
health_check = {{ type = "none" }}
backends = [ {{ address = "192.0.2.21" }}, {{ address = "192.0.2.22" }} ]
{extra}
"""

EXTRA = """
[[service]]
name = "{name}"
vip = "{vip}"
forwarding = "l2dsr"
table_size = 251
health_check = {{ type = "none" }}
{backends}
"""


def config_text(workdir, conn_table=4096, extra=None):
    extras = ""
    if extra == "extra":
        extras = EXTRA.format(name="extra", vip="192.0.2.101:80",
                              backends='backends = [ { address = "192.0.2.21" } ]')
    elif extra == "etcd":  # nobody listens there: the source never syncs, the node is not ready
        extras = EXTRA.format(name="disc", vip="192.0.2.103:80",
                              backends='discovery = { type = "etcd", endpoints = ["http://127.0.0.1:1"], '
                                       'prefix = "/nothing/", dial_timeout_ms = 200 }')
    elif extra == "invalid":
        extras = EXTRA.format(name="bad", vip="192.0.2.102:80", backends="table_size = 1000\nbackends = []")
    return CONFIG.format(state=os.path.join(workdir, "state"), token=os.path.join(workdir, "token"),
                         conn_table=conn_table, pid=PID, dev=DEV, extra=extras)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


class Daemons:
    def __init__(self, workdir, sluiced, sluicectl):
        self.workdir, self.sluiced, self.sluicectl = workdir, sluiced, sluicectl
        self.procs = {}

    def path(self, node):
        return os.path.join(self.workdir, node, "sluice.toml")

    def log(self, node):
        return read(os.path.join(self.workdir, f"{node}.log"))

    def start(self, node):
        pidfile = os.path.join(self.workdir, f"{node}.pid")
        log = open(os.path.join(self.workdir, f"{node}.log"), "w")
        proc = subprocess.Popen(["ip", "netns", "exec", NS[node], "sh", "-c",
                                 f"echo $$ >{pidfile}; exec '{self.sluiced}' --config '{self.path(node)}'"],
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[node] = (proc, pidfile)

    def pid(self, node):
        try:
            return int(read(self.procs[node][1]).strip())
        except (OSError, ValueError):
            return None

    def status(self, node):
        r = run([self.sluicectl, "--json", "--timeout", "5", "--token-file", os.path.join(self.workdir, "token"),
                 "status"], ns=NS[node], check_rc=False)
        return json.loads(r.stdout) if r.stdout.strip().startswith("{") else None

    def wait_ready(self, node):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            proc = self.procs[node][0]
            check(proc.poll() is None, f"sluiced {node} exited {proc.returncode}:\n{self.log(node)[-3000:]}")
            s = self.status(node)
            if s and s.get("ready"):
                return s
            check(time.monotonic() < deadline, f"sluiced {node} not ready in {START_TIMEOUT} s:\n"
                                               f"{self.log(node)[-3000:]}")
            time.sleep(0.2)

    def stop_all(self):
        for node, (proc, _) in self.procs.items():
            pid = self.pid(node)
            if proc.poll() is None and pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=15)


SSHD = "/usr/sbin/sshd"


def setup_ssh(workdir, node):
    """An ssh client config reaching `node` through `sshd -i` in its namespace;
    returns the directory holding the `ssh` wrapper to put first in PATH."""
    require(os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") and os.access("/usr/bin/ssh", os.X_OK),
            "OpenSSH server and client (scripts/bootstrap installs openssh-server)")
    d = os.path.join(workdir, "ssh")
    os.makedirs(d, mode=0o700)
    for key in ("host_key", "client_key"):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"sluice-push-test-{PID}", "-f",
             os.path.join(d, key)])
    write(os.path.join(d, "authorized_keys"), read(os.path.join(d, "client_key.pub")))
    write(os.path.join(d, "known_hosts"), f"{node} {read(os.path.join(d, 'host_key.pub'))}")
    sshd_config = os.path.join(d, "sshd_config")
    write(sshd_config, f"""HostKey {d}/host_key
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PidFile none
LogLevel ERROR
""")
    run([SSHD, "-t", "-f", sshd_config])
    ssh_config = os.path.join(d, "ssh_config")
    write(ssh_config, f"""Host {node}
  ProxyCommand ip netns exec {NS[node]} {SSHD} -i -f {sshd_config}
  User root
  IdentityFile {d}/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {d}/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  LogLevel ERROR
""")
    bindir = os.path.join(d, "bin")
    os.makedirs(bindir)
    wrapper = os.path.join(bindir, "ssh")
    write(wrapper, f'#!/bin/sh\nexec /usr/bin/ssh -F "{ssh_config}" "$@"\n')
    os.chmod(wrapper, 0o755)
    return bindir


def main():
    require(os.geteuid() == 0, "root (network namespaces, DPDK af_packet)")
    require((os.cpu_count() or 1) >= 2, "two CPUs (a DPDK worker lcore besides the main one)")
    build_dir = os.environ.get("SLUICE_BUILD_DIR") or os.environ.get("SLUICE_BUILD_ROOT")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sluiced = os.path.join(build_dir or "", "controlplane", "sluiced")
    sluicectl = os.path.join(build_dir or "", "controlplane", "sluicectl", "sluicectl")
    for path in (sluiced, sluicectl):
        if not build_dir or not os.access(path, os.X_OK):
            print(f"FAIL: {path} missing (SLUICE_BUILD_DIR/SLUICE_BUILD_ROOT = {build_dir})", file=sys.stderr)
            return 1
    script = os.path.join(source_root, "scripts", "sluice-push-config")

    workdir = tempfile.mkdtemp(prefix=f"sluice-push-{PID}-")
    daemons = Daemons(workdir, sluiced, sluicectl)
    started = time.monotonic()
    made_privsep = False
    try:
        try:
            for node in NODES:
                run(["ip", "netns", "add", NS[node]])
                run(["ip", "link", "add", DEV, "netns", NS[node], "type", "veth", "peer", "name", "e0p",
                     "netns", NS[node]])
                for dev in ("lo", DEV, "e0p"):
                    run(["ip", "-n", NS[node], "link", "set", dev, "up"])
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            require(False, f"network namespaces and veths ({e})")
        # sshd's privilege-separation directory (the package's service
        # creates it at boot; nothing here starts that service).
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755)
            made_privsep = True
        ssh_bin = setup_ssh(workdir, "n1")
        os.makedirs(os.path.join(workdir, "state"))
        write(os.path.join(workdir, "token"), f"push-test-{PID}\n")
        write(os.path.join(workdir, "wrong-token"), "not-the-token\n")
        v1 = config_text(workdir)
        for node in NODES:
            os.makedirs(os.path.join(workdir, node))
            write(daemons.path(node), v1)
            daemons.start(node)
        for node in NODES:
            daemons.wait_ready(node)
        print(f"two sluiced nodes ready after {time.monotonic() - started:.1f} s")
        run_cases(workdir, daemons, script, sluiced, sluicectl, v1, ssh_bin)
        print(f"push-config: all checks passed in {time.monotonic() - started:.1f} s")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        for node in daemons.procs:
            print(f"--- sluiced {node} log (tail) ---\n{daemons.log(node)[-3000:]}", file=sys.stderr)
        return 1
    finally:
        daemons.stop_all()
        for ns in NS.values():
            run(["ip", "netns", "del", ns], check_rc=False)
        subprocess.run(["rm", "-rf", "--", workdir], check=False)
        if made_privsep:
            os.rmdir("/run/sshd")


def run_cases(workdir, daemons, script, sluiced, sluicectl, v1, ssh_bin):
    token = os.path.join(workdir, "token")
    env = dict(os.environ, PATH=f"{ssh_bin}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}")
    # n1 over ssh (sluicectl named by path: the remote PATH does not hold the build tree), n2 over netns.
    transport = {"n1": f"ssh=n1,sluicectl={sluicectl}", "n2": f"netns={NS['n2']}"}

    def push(config_text_, *extra, token_file=token):
        new = os.path.join(workdir, "new.toml")
        write(new, config_text_)
        argv = [script, "--config", new, "--sluiced", sluiced, "--sluicectl", sluicectl,
                "--token-file", token_file, "--ready-timeout", "4", *extra]
        for node in NODES:
            argv += ["--node", f"http://127.0.0.1:9180,{daemons.path(node)},{transport[node]},name={node}"]
        r = run(argv, check_rc=False, timeout=120, env=env)
        return r.returncode, r.stdout + r.stderr

    def reloads(node):
        s = daemons.status(node)
        check(s is not None, f"{node}: no status")
        return s["stats"]["reloads"]["ok"], s["stats"]["reloads"]["failed"]

    def services(node):
        return sorted(s["name"] for s in daemons.status(node)["services"])

    def state():
        return {n: (read(daemons.path(n)), reloads(n)) for n in NODES}

    # --help and a usage error.
    r = run([script, "--help"], check_rc=False)
    check(r.returncode == 0 and "API_URL,CONFIG_PATH" in r.stdout, f"--help: {r.returncode} {r.stdout}")
    r = run([script, "--config", "/nonexistent", "--node", "not-a-url"], check_rc=False)
    check(r.returncode == 2, f"usage error exited {r.returncode}: {r.stderr}")

    v2 = config_text(workdir, extra="extra")

    # Dry run: plan printed, nothing touched.
    before = state()
    rc, out = push(v2, "--dry-run")
    check(rc == 0, f"dry run exited {rc}:\n{out}")
    check("plan valid" in out and "reload" in out and f"netns exec {NS['n2']}" in out and "on n1:" in out,
          f"dry-run output:\n{out}")
    check(state() == before, "dry run changed a file or reloaded a node")
    print("ok   --dry-run: validates, prints every node's commands, changes nothing")

    # Good rollout.
    rc, out = push(v2)
    check(rc == 0, f"good push exited {rc}:\n{out}")
    for node in NODES:
        check(read(daemons.path(node)) == v2, f"{node}: file is not the pushed one")
        check(read(daemons.path(node) + ".bak") == v1, f"{node}: .bak is not the previous file")
        check(reloads(node) == (before[node][1][0] + 1, before[node][1][1]),
              f"{node}: reload counters {reloads(node)}, before {before[node][1]}")
        check(services(node) == ["extra", "web"], f"{node}: serves {services(node)}")
        # sluiced's own digest of the config in force is the pushed file's.
        running = daemons.status(node)["stats"]["config"]["sha256"]
        check(running == hashlib.sha256(v2.encode()).hexdigest(), f"{node}: runs config sha256 {running}")
    check(out.count("in force") == len(NODES), f"push output does not name the config in force per node:\n{out}")
    check(os.stat(daemons.path("n1") + ".bak").st_mode == os.stat(daemons.path("n2") + ".bak").st_mode,
          "the ssh install and the local install left different modes on PATH.bak")
    print("ok   good push: both nodes (n1 over ssh, n2 over netns) reloaded and serve the new service (sha256 of the file in force); "
          "PATH.bak holds the previous file")

    # Same file again: idempotent, the backup of v1 stays.
    rc, out = push(v2)
    check(rc == 0, f"second identical push exited {rc}:\n{out}")
    for node in NODES:
        check(read(daemons.path(node) + ".bak") == v1, f"{node}: re-push overwrote the backup")
    print("ok   pushing the same file again: exit 0, backup of the previous config kept")

    # Invalid file: local validation fails, nothing touched.
    before = state()
    rc, out = push(config_text(workdir, extra="invalid"))
    check(rc == 2, f"invalid config exited {rc}, want 2:\n{out}")
    check("new.toml:" in out and "no node was touched" in out, f"invalid-config output:\n{out}")
    check(state() == before, "an invalid config changed a node")
    print("ok   invalid file: refused locally with file:line diagnostics (exit 2), no node touched")

    # Wrong token: the pre-flight fails, nothing touched.
    rc, out = push(config_text(workdir, extra="extra", conn_table=8192), token_file=os.path.join(workdir,
                                                                                                 "wrong-token"))
    check(rc == 3 and "token" in out, f"wrong token exited {rc}, want 3:\n{out}")
    check(state() == before, "a failed pre-flight changed a node")
    print("ok   wrong token: pre-flight fails (exit 3), no node touched")

    # Passes --check-config, refused by the node: restart-only setting changed.
    before = state()
    rc, out = push(config_text(workdir, extra="extra", conn_table=8192))
    check(rc == 1, f"restart-requiring change exited {rc}, want 1:\n{out}")
    check("conn_table_size changed" in out, f"the node's diagnostic is missing:\n{out}")
    check("not touched: n2" in out, f"output does not say n2 was not touched:\n{out}")
    check(read(daemons.path("n1")) == v2, "n1: the refused file was not replaced by the previous one")
    check(reloads("n1") == (before["n1"][1][0], before["n1"][1][1] + 1), f"n1 reload counters {reloads('n1')}")
    check(state()["n2"] == before["n2"], "n2 was touched after n1 refused")
    check(services("n1") == ["extra", "web"], f"n1 serves {services('n1')}")
    print("ok   refused on reload: n1's file restored, n2 untouched, exit 1 with the node's diagnostic")

    # Applied but not ready: the node gets its previous file back and reloads it.
    before = state()
    rc, out = push(config_text(workdir, extra="etcd"))
    check(rc == 1, f"not-ready push exited {rc}, want 1:\n{out}")
    check("not ready" in out and "ready again" in out and "not touched: n2" in out and "disc: etcd discovery" in out,
          f"not-ready output:\n{out}")
    check(read(daemons.path("n1")) == v2, "n1: file not restored after the not-ready node")
    check(reloads("n1")[0] == before["n1"][1][0] + 2, f"n1 should have reloaded twice: {reloads('n1')}")
    check(daemons.status("n1")["ready"], "n1 is not ready after the rollback")
    check(state()["n2"] == before["n2"], "n2 was touched after n1 failed")
    print("ok   applied but not ready: n1 rolled back and reloaded (ready again), n2 untouched, exit 1")

    # n1 really is reached over ssh: with another host key on record the
    # pre-flight stops at ssh's host key check, nothing touched.
    known_hosts = os.path.join(workdir, "ssh", "known_hosts")
    good_hosts = read(known_hosts)
    other = os.path.join(workdir, "ssh", "other_key")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other])
    write(known_hosts, f"n1 {read(other + '.pub')}")
    before = state()
    rc, out = push(config_text(workdir, extra="extra"))
    write(known_hosts, good_hosts)
    check(rc == 3 and "Host key verification failed" in out, f"wrong host key exited {rc}, want 3:\n{out}")
    check(state() == before, "a failed ssh pre-flight changed a node")
    print("ok   ssh transport: a host key that does not match stops the pre-flight (exit 3), no node touched")


def _terminate(signum, frame):
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
