"""Basics every sluice e2e module uses: constants, failures and skips, running
commands (in a namespace), bounded waits, and entering a network namespace
from a Python thread."""

import ctypes
import os
import subprocess
import threading
import time

SKIP = 77
PID = os.getpid()
CMD_TIMEOUT = 15
PYTHON = "/usr/bin/python3"

PREFIX = "192.0.2"           # RFC 5737, only inside our namespaces
VIP = f"{PREFIX}.100"
VIP_PORT = 80
CLIENT = "cl"
GATEWAY = "gw"
DEV = "e0"                   # every node's interface on the segment
TAP = "sl0"                  # a DPDK node's exception-path TAP
BIG_MTU = 1600               # encapsulation adds 20 bytes: every link but the client's
ADMIN_PORT = 9180            # each node's admin API, on its own namespace's loopback


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def in_ci():
    return os.environ.get("CI") == "true"


def require(condition, why):
    """Skips on a developer machine, fails under CI=true, when `condition` is false."""
    if not condition:
        raise Skip(why)


def check(condition, message):
    if not condition:
        raise Failure(message)


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(cmd, ns=None, check_rc=True, timeout=CMD_TIMEOUT, env=None):
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns] + list(cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r


def wait_for(what, predicate, timeout, interval=0.05):
    """Polls `predicate` until it returns something true (returned) or `timeout` s pass (Failure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- network namespaces from Python threads --------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def enter_netns(ns):
    """Moves the calling thread (only it: the network namespace is per thread) into `ns`."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(ns, fn, *args, timeout=60):
    """Runs fn(*args) on a fresh thread inside namespace `ns` and returns its result."""
    out = {}

    def body():
        try:
            enter_netns(ns)
            out["value"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["error"] = e
    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise Failure(f"{getattr(fn, '__name__', fn)} in {ns} did not finish within {timeout} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


def sysctl(ns, *settings):
    for s in settings:
        run(["sysctl", "-qw", s], ns=ns)


def have_tool(name):
    return any(os.access(os.path.join(d, name), os.X_OK)
               for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin", "/usr/bin"])
