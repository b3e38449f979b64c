"""A sluice node in an e2e topology: generated config, sluiced, its admin API,
/metrics and sluicectl."""

import json
import os
import signal
import time
import urllib.parse

from e2e_base import (ADMIN_PORT, DEV, GATEWAY, PID, TAP, VIP, VIP_PORT, Failure, check, in_netns, run, sysctl,
                      wait_for)


# -- sluiced -------------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for everything we write
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def service(name="web", vip=VIP, port=VIP_PORT, **keys):
    """A [[service]] table as a dict: forwarding ipip, table_size 1009 unless given."""
    return {"name": name, "vip": f"{vip}:{port}", "forwarding": "ipip", "table_size": 1009, **keys}


class Sluiced:
    """One sluice node: its config, process, admin API and sluicectl.

    plane "dpdk": net_af_packet over the node's veth, one worker lcore, no
    hugepages; the kernel has no address on the veth (as with a NIC bound to
    DPDK) and reaches the segment through the exception-path TAP, which
    start() addresses with topo.tap_addr[lb] (health probes and etcd go that
    way); sluice answers ARP for the VIPs. plane "xdp": the node's kernel
    owns the veth (topo.addr[lb]) but not the VIPs, which the client routes
    via the node; the program attaches natively and pins its maps in a bpffs
    of this run, so a restart finds them.
    """

    def __init__(self, session, topo, services, plane="dpdk", lb="lb", extra_toml="", xdp_toml=(),
                 conn_table_size=None):
        check(plane in ("dpdk", "xdp"), f"unknown data plane {plane}")
        self.s, self.topo, self.services, self.plane, self.lb = session, topo, services, plane, lb
        self.ns = topo.ns[lb]
        self.name = f"sluiced-{lb}"
        self.extra_toml = extra_toml
        self.xdp_toml = list(xdp_toml)  # more lines of [dataplane.xdp]
        # Entries per worker (DPDK, 16384 unless given) or per CPU / in all
        # (XDP, the default 1048576 unless given).
        self.conn_table_size = conn_table_size
        self.config_path = os.path.join(session.workdir, f"{lb}.toml")
        self.state_dir = os.path.join(session.workdir, f"{lb}-state")
        self.bpffs = os.path.join(session.workdir, f"{lb}-bpffs")
        self.pins = os.path.join(self.bpffs, "sluice")
        self.pids = []
        self._prepared = False

    def config_text(self, services=None):
        lines = ["[daemon]", 'log_level = "info"', f"state_dir = {toml_value(self.state_dir)}",
                 f'admin = {{ listen = "127.0.0.1", port = {ADMIN_PORT} }}', "",
                 "[dataplane]", f'type = "{self.plane}"', ""]
        if self.plane == "dpdk":
            lines += ["[dataplane.dpdk]",
                      'eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"]',
                      "main_lcore = 0", "worker_lcores = [1]", "mbuf_pool_size = 4095",
                      f"conn_table_size = {self.conn_table_size or 16384}", "exception_path = true",
                      f'exception_tap = "{TAP}"', "",
                      "[[dataplane.dpdk.ports]]", 'name = "lan"',
                      f'device = "net_af_packet_{self.lb}{PID},iface={DEV},qpairs=2"', "rx_queues = 2", ""]
        else:
            lines += ["[dataplane.xdp]", f'interfaces = ["{DEV}"]', 'mode = "native"',
                      f"pin_path = {toml_value(self.pins)}", *self.xdp_toml,
                      *([f"conn_table_size = {self.conn_table_size}"] if self.conn_table_size else []), ""]
        lines += ["[network]", f'source_ipv4 = "{self.topo.addr[self.lb]}"',
                  f'gateway_ipv4 = "{self.topo.addr[GATEWAY]}"', ""]
        if self.extra_toml:
            lines += [self.extra_toml, ""]
        for svc in services if services is not None else self.services:
            lines.append("[[service]]")
            lines += [f"{k} = {toml_value(v)}" for k, v in svc.items()]
            lines.append("")
        return "\n".join(lines)

    def write_config(self, text=None):
        with open(self.config_path + ".tmp", "w") as f:
            f.write(self.config_text() if text is None else text)
        os.rename(self.config_path + ".tmp", self.config_path)

    def _prepare_node(self):
        if self._prepared:
            return
        ns = self.ns
        if self.plane == "dpdk":
            # The kernel must not answer what arrives on DPDK's interface: no
            # ARP, strict reverse-path filtering (its route back is the TAP).
            run(["ip", "-n", ns, "link", "set", DEV, "arp", "off"])
            sysctl(ns, "net.ipv4.conf.all.rp_filter=1", f"net.ipv4.conf.{DEV}.rp_filter=1")
        else:
            # The node's kernel owns its address, never the VIPs: while no
            # program is attached (a restart) it drops VIP packets instead of
            # resetting the connections. The client routes the VIPs via the
            # node, as an upstream router would after BGP.
            run(["ip", "-n", ns, "addr", "add", f"{self.topo.addr[self.lb]}/24", "dev", DEV])
            for vip in self.topo.vips:
                self.topo.route_vip(vip, [self.lb])
            # Native XDP_TX on a veth needs NAPI on the peer: an XDP program
            # there (ENV.md trap 1; GRO alone is not enough for XDP_TX).
            run(["ip", "-n", self.topo.ns["sw"], "link", "set", "dev", f"p{self.lb}", "xdpdrv",
                 "obj", self.s.xdp_pass_object(), "sec", "xdp"])
            os.makedirs(self.bpffs, exist_ok=True)
            run(["mount", "-t", "bpf", "bpf", self.bpffs])
            self.s.mounts.append(self.bpffs)
        self._prepared = True

    def start(self, wait_ready=True, timeout=40):
        """Starts sluiced; waits for "running" (and /readyz when wait_ready)."""
        self._prepare_node()
        if not os.path.exists(self.config_path):
            self.write_config()
        os.makedirs(self.state_dir, exist_ok=True)
        proc = self.s.procs.start(self.name, self.ns, [self.s.env.sluiced, "--config", self.config_path])
        self.pids.append(self.s.procs.pid(self.name))
        self.s.sluiced_pids.append(self.s.procs.pid(self.name))
        deadline = time.monotonic() + timeout

        def started():
            check(proc.poll() is None, f"{self.name} exited {proc.returncode} while starting:\n{self.log()[-3000:]}")
            return "running; SIGTERM" in self.log()
        wait_for(f"{self.name} to run", started, timeout, 0.1)
        if self.plane == "dpdk":
            run(["ip", "-n", self.ns, "addr", "replace", f"{self.topo.tap_addr[self.lb]}/24", "dev", TAP])
            run(["ip", "-n", self.ns, "link", "set", TAP, "up"])
        if wait_ready:
            wait_for(f"{self.name} /readyz", lambda: self.get("/readyz")[0] == 200,
                     max(1.0, deadline - time.monotonic()), 0.1)
        return proc

    def stop(self, signo=signal.SIGTERM, timeout=15):
        return self.s.procs.stop(self.name, signo, timeout)

    def running(self):
        return self.s.procs.running(self.name)

    def log(self):
        return self.s.procs.log(self.name)

    # -- admin API, from a thread inside the node's namespace --

    def request(self, method, path, timeout=5):
        """(status, parsed JSON or text); status 0 when the API does not answer."""
        def call():
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=timeout)
            try:
                c.request(method, path)
                r = c.getresponse()
                body = r.read().decode(errors="replace")
                try:
                    return r.status, json.loads(body)
                except ValueError:
                    return r.status, body
            except OSError as e:
                return 0, str(e)
            finally:
                c.close()
        return in_netns(self.ns, call, timeout=timeout + 5)

    def get(self, path):
        return self.request("GET", path)

    def api(self, path):
        status, body = self.get(path)
        check(status == 200, f"GET {path} on {self.lb}: {status} {body}")
        return body

    def backends(self, svc="web"):
        """{address: BACKEND json} of a service."""
        return {b["address"]: b for b in self.api(f"/v1/services/{svc}/backends")["backends"]}

    def fingerprint(self, svc="web"):
        return self.api("/v1/fingerprints")["fingerprints"].get(svc)

    def service(self, svc="web"):
        return self.api(f"/v1/services/{svc}")

    def metrics(self):
        """{(name, ((label, value), ...)): float} from /metrics."""
        status, text = self.get("/metrics")
        check(status == 200, f"/metrics on {self.lb}: {status}")
        return parse_metrics(text)

    def lookups(self, client, ports, vip=VIP, vip_port=VIP_PORT):
        """{client port: backend address} for TCP flows client:port -> vip.

        One connection per request: on a kept-alive connection each answer
        waits ~40 ms for a delayed ACK (the server writes head and body apart).
        """
        def call():
            import http.client
            out = {}
            for p in ports:
                q = urllib.parse.urlencode({"client": client, "client_port": p, "vip": vip,
                                            "vip_port": vip_port, "protocol": "tcp"})
                c = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=5)
                try:
                    c.request("GET", "/v1/lookup?" + q, headers={"Connection": "close"})
                    out[p] = json.loads(c.getresponse().read()).get("backend")
                finally:
                    c.close()
            return out
        return in_netns(self.ns, call, timeout=120)

    def ctl(self, *args, as_json=False, check_rc=True):
        cmd = [self.s.env.sluicectl] + (["--json"] if as_json else []) + ["--timeout", "5", *args]
        r = run(cmd, ns=self.ns, check_rc=False)
        if check_rc and r.returncode != 0:
            raise Failure(f"sluicectl {' '.join(args)} exited {r.returncode}: {r.stdout}{r.stderr}")
        if as_json:
            return json.loads(r.stdout)
        return r


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, ()
        if "{" in head:
            name, _, rest = head.partition("{")
            pairs = []
            for item in rest.rstrip("}").split('",'):
                if "=" in item:
                    k, _, v = item.partition("=")
                    pairs.append((k.strip(), v.strip().strip('"')))
            labels = tuple(sorted(pairs))
        out[(name, labels)] = float(value)
    return out


def metric(metrics, name, **labels):
    """One series' value, or None."""
    return metrics.get((name, tuple(sorted(labels.items()))))
