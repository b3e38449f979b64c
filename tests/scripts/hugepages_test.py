#!/usr/bin/python3
"""scripts/sluice-hugepages on the real kernel pool.

Reserves 8 more 2M pages than the machine has now (another program's pages
are left alone), checks sysfs and /proc/meminfo, mounts a hugetlbfs at a
private path, re-runs (no change), reads --status, releases back to the
count found at the start and unmounts. An absurd count is refused with the
shortfall named and nothing changed. The count found at the start is put
back in every case, the mount removed.

Exit status: 0 pass, 1 fail, 77 skip (no root or no 2M hugepages, only when CI is not "true").
"""

import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from sluice_testlib import SKIP, Failure, check, in_ci, require  # noqa: E402

NR = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"


def nr():
    with open(NR) as f:
        return int(f.read())


def meminfo_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Total:"):
                return int(line.split()[1])
    return None


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path and line.split()[2] == "hugetlbfs" for line in f)


def main():
    require(os.geteuid() == 0, "root (writes /sys/kernel/mm/hugepages)")
    require(os.path.exists(NR), "2M hugepages in this kernel")
    source_root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    script = os.path.join(source_root, "scripts", "sluice-hugepages")
    default_2m = True
    with open("/proc/meminfo") as f:
        default_2m = any(line.split() == ["Hugepagesize:", "2048", "kB"] for line in f)

    def hp(*args):
        return subprocess.run([script, *args], capture_output=True, text=True, timeout=60)

    before = nr()
    mount = tempfile.mkdtemp(prefix=f"sluice-huge-{os.getpid()}-")
    want = before + 8
    try:
        r = hp("--help")
        check(r.returncode == 0 and "--release" in r.stdout and "eal_args" in r.stdout, "--help")

        r = hp("--pages", str(want), "--mount", mount, "--dry-run")
        check(r.returncode == 0 and f"echo {want} > {NR}" in r.stdout and f"nodev {mount}" in r.stdout,
              f"dry run: {r.returncode}\n{r.stdout}{r.stderr}")
        check(nr() == before and not mounted(mount), "--dry-run changed the pool or mounted")
        print("ok   --dry-run: prints the write and the mount, changes nothing")

        for attempt in (1, 2):
            r = hp("--pages", str(want), "--mount", mount)
            check(r.returncode == 0, f"reserve (run {attempt}) exited {r.returncode}:\n{r.stdout}{r.stderr}")
            check(nr() == want, f"run {attempt}: nr_hugepages {nr()}, want {want}")
            if default_2m:
                check(meminfo_total() == want, f"HugePages_Total {meminfo_total()}, want {want}")
            check(mounted(mount), f"no hugetlbfs at {mount}")
            check("--socket-mem" in r.stdout, f"no eal_args hint:\n{r.stdout}")
        check("echo" not in r.stdout and "mount -t" not in r.stdout, f"second run redid steps:\n{r.stdout}")
        print(f"ok   reserve {want} x 2M (was {before}): sysfs and /proc/meminfo agree, hugetlbfs mounted; "
              "re-run changes nothing")

        r = hp("--status")
        check(r.returncode == 0 and f"2M: {want} reserved" in r.stdout and mount in r.stdout, f"--status:\n{r.stdout}")
        print("ok   --status shows the reservation and the mount")

        r = hp("--pages", "100000000", "--mount", mount)
        check(r.returncode == 1 and "available" in r.stderr and "at most about" in r.stderr,
              f"absurd count exited {r.returncode}:\n{r.stdout}{r.stderr}")
        check(nr() == want, f"absurd count changed the pool to {nr()}")
        print("ok   absurd count: refused with the shortfall named (exit 1), pool unchanged")

        r = hp("--release", str(before), "--mount", mount, "--umount")
        check(r.returncode == 0, f"release exited {r.returncode}:\n{r.stdout}{r.stderr}")
        check(nr() == before and not mounted(mount), f"after release: {nr()} pages (want {before}), "
                                                     f"mounted {mounted(mount)}")
        print(f"ok   --release {before} --umount: pool back to {before}, unmounted")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        if mounted(mount):
            subprocess.run(["umount", mount], check=False, timeout=30)
        if nr() != before:
            with open(NR, "w") as f:
                f.write(str(before))
        try:
            os.rmdir(mount)
        except OSError:
            pass


def _terminate(signum, frame):
    raise SystemExit(1)  # meson's timeout sends SIGTERM: unwind through main's cleanup (pool restored)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
