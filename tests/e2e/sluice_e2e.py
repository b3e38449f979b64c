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

The pieces live in e2e_base.py (commands, waits, namespaces from threads),
e2e_hosts.py (processes, topology, backends, etcd), e2e_node.py (sluiced and
its API) and e2e_traffic.py (loads); this module gathers them under one name
and adds the session and main().

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

import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from e2e_base import (SKIP, PID, CMD_TIMEOUT, PYTHON, PREFIX, VIP, VIP_PORT, CLIENT, GATEWAY, DEV, TAP, BIG_MTU,
                      ADMIN_PORT, Failure, Skip, in_ci, require, check, log, run, wait_for, enter_netns, in_netns,
                      sysctl, have_tool)
from e2e_hosts import Processes, Topology, HTTP_SERVER, Backends, Etcd
from e2e_node import toml_value, service, Sluiced, parse_metrics, metric
from e2e_traffic import http_get, Load, summarize, run_burst, LongLived

# One name for the whole toolkit: tests `import sluice_e2e as e2e`.
__all__ = [
    "SKIP", "PID", "CMD_TIMEOUT", "PYTHON", "PREFIX", "VIP", "VIP_PORT", "CLIENT", "GATEWAY", "DEV", "TAP",
    "BIG_MTU", "ADMIN_PORT", "Failure", "Skip", "in_ci", "require", "check", "log", "run", "wait_for",
    "enter_netns", "in_netns", "sysctl", "have_tool", "Processes", "Topology", "HTTP_SERVER", "Backends", "Etcd",
    "toml_value", "service", "Sluiced", "parse_metrics", "metric", "http_get", "Load", "summarize", "run_burst",
    "LongLived", "Env", "Session", "main",
]


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
        except Exception as e:  # Failure, a command that failed or hung, or a bug in the test
            if isinstance(e, (Failure, RuntimeError, subprocess.TimeoutExpired)):
                print(f"FAIL: {e}", file=sys.stderr)
            else:
                print(f"FAIL: {type(e).__name__}: {e}\n{traceback.format_exc()}", file=sys.stderr)
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
