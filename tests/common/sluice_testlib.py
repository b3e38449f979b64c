"""Helpers every Python test of sluice shares (stdlib only).

Exit status convention of the test programs: 0 pass, 1 fail, 77 skip; a
skip happens only when CI is not "true" (in CI a missing requirement fails).

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
    from sluice_testlib import SKIP, Failure, check, in_ci, require, run
"""

import os
import subprocess
import sys

SKIP = 77


def in_ci():
    return os.environ.get("CI") == "true"


def require(condition, why):
    """Exits: skip on a developer machine, fail under CI=true, when `condition` is false."""
    if condition:
        return
    if in_ci():
        print(f"FAIL: required in CI but missing: {why}", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: missing {why} (would fail with CI=true)")
    sys.exit(SKIP)


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(cmd, ns=None, check_rc=True, env=None, timeout=60):
    """Runs `cmd` (in network namespace `ns` if given); output captured; RuntimeError on failure."""
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns] + list(cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r
