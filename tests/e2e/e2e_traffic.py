"""Real client traffic for e2e tests: bounded loads of new connections and
long-lived keep-alive connections, from threads inside the client namespace."""

import os
import threading
import time

from e2e_base import CLIENT, VIP, VIP_PORT, check, enter_netns, wait_for


# -- traffic -----------------------------------------------------------------

def http_get(vip, port, source_port, timeout):
    """One connection, one request; the answering backend's name."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind(("0.0.0.0", source_port))
        s.connect((vip, port))
        s.sendall(f"GET / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    words = body.decode(errors="replace").split()
    if not head.startswith(b"HTTP/1.1 200") or len(words) != 2 or words[0] != "backend":
        raise ValueError(f"unexpected reply {data[:80]!r}")
    return words[1]


class Load:
    """New TCP connections (one HTTP GET each) from the client to a VIP, on threads inside
    the client namespace, until stop(), `max_seconds` or `ports` run out.

    Each connection uses the next source port of `ports` (never reused, so no
    connection-table entry of an earlier flow decides where it goes) and is
    recorded as {"port", "t0", "t1" (time.monotonic()), "backend" or "error"}.
    """

    def __init__(self, topo, ports, vip=VIP, port=VIP_PORT, threads=4, pause=0.02, max_seconds=60,
                 timeout=2.0, max_failures=None):
        self.topo, self.vip, self.port = topo, vip, port
        self.max_failures = max_failures  # stop early once this many failed (a broken path)
        self.failures = 0
        self.ports = list(ports)
        self.threads_n, self.pause, self.max_seconds, self.timeout = threads, pause, max_seconds, timeout
        self.results = []
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = []

    def _take_port(self):
        with self._lock:
            if self._next >= len(self.ports):
                return None
            self._next += 1
            return self.ports[self._next - 1]

    def _worker(self):
        enter_netns(self.topo.ns[CLIENT])
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < end:
            p = self._take_port()
            if p is None:
                return
            rec = {"port": p, "t0": time.monotonic()}
            try:
                rec["backend"] = http_get(self.vip, self.port, p, self.timeout)
            except Exception as e:
                rec["error"] = f"{type(e).__name__}: {e}"
            rec["t1"] = time.monotonic()
            with self._lock:
                self.results.append(rec)
                self.failures += "error" in rec
                if self.max_failures is not None and self.failures >= self.max_failures:
                    self._stop.set()
            self._stop.wait(self.pause)

    def start(self):
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.threads_n)]
        for t in self._threads:
            t.start()
        return self

    def running(self):
        return any(t.is_alive() for t in self._threads)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        check(not self.running(), "the load generator did not stop")
        return self.results

    def snapshot(self):
        with self._lock:
            return list(self.results)


def summarize(results):
    ok = [r for r in results if "backend" in r]
    per = {}
    for r in ok:
        per[r["backend"]] = per.get(r["backend"], 0) + 1
    return {"connections": len(results), "ok": len(ok), "failed": len(results) - len(ok),
            "per_backend": dict(sorted(per.items()))}


def run_burst(topo, ports, threads=8):
    """A bounded burst: one connection per port, as fast as `threads` allow."""
    load = Load(topo, ports, threads=threads, pause=0, max_seconds=60, max_failures=20).start()
    deadline = time.monotonic() + 70
    while load.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    return load.stop()


class LongLived:
    """Keep-alive HTTP connections (one per source port) that send a request
    every `period` s, each recording its backends and error, until stop().

    move_to(cpu) pins every connection's thread to `cpu` before its next
    request (as the scheduler moving a sender would); each connection
    records in "moved_at" how many answers it had when it moved (None
    until then) and in "cpu" where it is pinned."""

    def __init__(self, topo, ports, vip=VIP, port=VIP_PORT, period=0.2, max_seconds=150, timeout=10, cpu=None):
        self.topo, self.vip, self.port, self.period, self.max_seconds = topo, vip, port, period, max_seconds
        # Pin every connection's thread to this CPU (None: free). On a veth
        # the XDP program runs on the sending CPU, so a thread the scheduler
        # moves moves its flow to another CPU's connection table, as an RSS
        # change would on a NIC (docs/operations.md, "The connection table").
        self.cpu = cpu
        self.timeout = timeout  # per request: long enough for TCP to retransmit across a short outage
        self.conns = [{"port": p, "backends": [], "ok": 0, "error": None, "opened": False, "cpu": cpu,
                       "moved_at": None} for p in ports]
        self._target = None  # move_to()'s CPU, applied by each thread itself
        self._stop = threading.Event()
        self._threads = []

    def _worker(self, st):
        import http.client
        enter_netns(self.topo.ns[CLIENT])
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})  # this thread only
        end = time.monotonic() + self.max_seconds
        try:
            c = http.client.HTTPConnection(self.vip, self.port, timeout=self.timeout,
                                           source_address=("0.0.0.0", st["port"]))
            c.connect()
            st["opened"] = True
            while not self._stop.is_set() and time.monotonic() < end:
                target = self._target
                if target is not None and st["cpu"] != target:
                    os.sched_setaffinity(0, {target})  # this thread only; it runs there on return
                    st["cpu"], st["moved_at"] = target, st["ok"]
                c.request("GET", "/")
                r = c.getresponse()
                words = r.read().decode().split()
                if r.status != 200 or len(words) != 2:
                    raise ValueError(f"unexpected reply {words!r}")
                if words[1] not in st["backends"]:
                    st["backends"].append(words[1])
                st["ok"] += 1
                self._stop.wait(self.period)
            c.close()
        except Exception as e:
            st["error"] = f"{type(e).__name__}: {e} (after {st['ok']} answers)"

    def start(self):
        self._threads = [threading.Thread(target=self._worker, args=(st,), daemon=True) for st in self.conns]
        for t in self._threads:
            t.start()
        wait_for("the long-lived connections' first answers",
                 lambda: all(st["ok"] or st["error"] for st in self.conns), 15)
        return self

    def answers(self):
        return {st["port"]: st["ok"] for st in self.conns}

    def move_to(self, cpu):
        """Every connection's next request (and all after) from a thread pinned to `cpu`."""
        self._target = cpu

    def moved(self):
        """{port: answers since its move} of the connections that moved to move_to()'s CPU."""
        return {st["port"]: st["ok"] - st["moved_at"] for st in self.conns
                if st["moved_at"] is not None and st["cpu"] == self._target}

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)
        return self.conns
