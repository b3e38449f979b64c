#!/usr/bin/python3
"""scripts/sluice-devbind's refusals, without binding anything (no spare NIC here).

Proves: --help and --status work (dpdk-devbind.py found); a veth, a bridge
and a tap in a private namespace are refused as not PCI, with the net_af_packet
/ net_af_xdp alternative in the message, both with --dry-run and without;
the machine's PCI NIC that is up with addresses (the way into this machine)
is refused with its addresses named (only ever run with --dry-run, so a bug
here cannot cut the machine off); restore of something never bound is a
no-op; usage errors exit 2.

Exit status: 0 pass, 1 fail, 77 skip (no root / netns, only when CI is not "true").
"""

import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from sluice_testlib import SKIP, Failure, check, in_ci, require, run  # noqa: E402

PID = os.getpid()
NS = f"sl-devb-{PID}"


def pci_nic_in_use():
    """A kernel interface backed by a PCI device, up, with a global address: (name, address) or None."""
    for link in json.loads(run(["ip", "-j", "addr", "show"]).stdout):
        name = link["ifname"]
        dev = f"/sys/class/net/{name}/device"
        if not os.path.exists(dev) or "UP" not in link.get("flags", []):
            continue
        if not os.path.realpath(dev).startswith("/sys/devices/pci"):
            continue
        addrs = [a["local"] for a in link.get("addr_info", []) if a.get("scope") == "global"]
        if addrs:
            return name, addrs[0]
    return None


def main():
    require(os.geteuid() == 0, "root (network namespaces)")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    script = os.path.join(source_root, "scripts", "sluice-devbind")
    state = tempfile.mkdtemp(prefix=f"sluice-devbind-{PID}-")
    env = dict(os.environ, SLUICE_DEVBIND_STATE_DIR=state)

    def devbind(*args, ns=None):
        return run([script, *args], ns=ns, check_rc=False, env=env)

    try:
        r = devbind("--help")
        check(r.returncode == 0 and "restore" in r.stdout and "net_af_packet" in r.stdout, f"--help:\n{r.stdout}")
        r = devbind()
        check(r.returncode == 2, f"no arguments exited {r.returncode}")
        r = devbind("bind")
        check(r.returncode == 2, f"bind without a device exited {r.returncode}")
        r = devbind("bind", "eth0", "--driver", "e1000")
        check(r.returncode == 2, f"bind to a kernel driver exited {r.returncode}")
        print("ok   --help; usage errors exit 2")

        r = devbind("--status")
        require(r.returncode == 0 or "dpdk-devbind.py not found" not in r.stderr, "dpdk-devbind.py (package dpdk)")
        check(r.returncode == 0 and "Network devices" in r.stdout and "nothing recorded" in r.stdout,
              f"--status exited {r.returncode}:\n{r.stdout}{r.stderr}")
        print("ok   --status: dpdk-devbind.py's view and our (empty) records")

        try:
            run(["ip", "netns", "add", NS])
            run(["ip", "-n", NS, "link", "add", "dv0", "type", "veth", "peer", "name", "dv1"])
            run(["ip", "-n", NS, "link", "add", "dbr0", "type", "bridge"])
            run(["ip", "-n", NS, "tuntap", "add", "dev", "dtap0", "mode", "tap"])
            run(["ip", "-n", NS, "addr", "add", "192.0.2.1/24", "dev", "dv0"])
            for dev in ("dv0", "dv1", "dbr0"):
                run(["ip", "-n", NS, "link", "set", dev, "up"])
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            require(False, f"netns, veth, bridge, tap ({e})")
        for dev, kind in (("dv0", "veth"), ("dbr0", "bridge"), ("dtap0", "tun")):
            for extra in (["--dry-run"], []):
                r = devbind("bind", dev, *extra, ns=NS)
                msg = r.stderr
                check(r.returncode == 1 and f"{dev} (" in msg and kind in msg and "not a PCI NIC" in msg
                      and f"net_af_packet0,iface={dev}" in msg and "net_af_xdp" in msg,
                      f"bind {dev} {extra}: exit {r.returncode}\n{r.stdout}{msg}")
        check(os.listdir(state) == [], f"a refused bind wrote state: {os.listdir(state)}")
        print("ok   veth, bridge and tap refused as not PCI, with the af_packet/af_xdp alternative (dry run or not)")

        nic = pci_nic_in_use()
        require(nic is not None, "a PCI NIC that is up with an address (the refusal of an interface in use)")
        name, address = nic
        # Only ever with --dry-run: this is the machine's own NIC.
        for extra in ([], ["--driver", "uio_pci_generic"]):
            r = devbind("bind", name, "--dry-run", *extra)
            check(r.returncode == 1 and "refusing to bind" in r.stderr and address in r.stderr
                  and "--force" in r.stderr and "SSH" in r.stderr,
                  f"bind {name} --dry-run {extra}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        print(f"ok   {name} (PCI, up, {address}) refused with its addresses named and --force offered")

        # With --force the refusal is lifted; what remains is this machine's driver/IOMMU reality, and the
        # dry run must report it (here: modules not installed / no IOMMU) or print a valid plan.
        r = devbind("bind", name, "--dry-run", "--force")
        if r.returncode == 0:
            check("dry run: plan valid" in r.stdout and "--bind=vfio-pci" in r.stdout, f"plan:\n{r.stdout}")
        else:
            check(r.returncode == 1 and ("modprobe cannot find" in r.stderr or "IOMMU" in r.stderr),
                  f"bind {name} --dry-run --force: exit {r.returncode}\n{r.stdout}{r.stderr}")
        print(f"ok   bind {name} --force --dry-run: {(r.stdout + r.stderr).strip().splitlines()[0][:110]}")

        r = devbind("restore", name, "--dry-run")
        check(r.returncode == 0 and "nothing to restore" in r.stdout, f"restore: {r.returncode}\n{r.stdout}{r.stderr}")
        r = devbind("restore", "no-such-dev")
        check(r.returncode == 1 and "no interface or PCI device" in r.stderr, f"restore unknown: {r.stderr}")
        print("ok   restore of a device never bound: nothing to do; of an unknown name: refused")
        print("devbind: all checks passed")
        return 0
    except (Failure, RuntimeError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        run(["ip", "netns", "del", NS], check_rc=False)
        subprocess.run(["rm", "-rf", "--", state], check=False)


def _terminate(signum, frame):
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
