#!/usr/bin/python3
"""dataplane.type = "auto": DPDK when it can take the ports, else XDP.

The node's config has both sections; its DPDK port names an interface that
does not exist, so the DPDK plane cannot start. Proves: sluiced says why
DPDK failed and that it falls back, runs the XDP plane (the API says
"xdp"), real TCP connections through it reach every backend, and a reload
of the same file (still "auto") with one backend more is applied, not
refused as a data-plane change needing a restart.

Exit status: 0 pass, 1 fail, 77 skip (no root, a missing kernel feature or
tool; only when CI is not "true").
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_e2e as e2e  # noqa: E402
from sluice_e2e import check, log  # noqa: E402

DPDK_SECTION = """[dataplane.dpdk]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"]
main_lcore = 0
worker_lcores = [1]
mbuf_pool_size = 4095
conn_table_size = 16384

[[dataplane.dpdk.ports]]
name = "lan"
device = "net_af_packet_auto{pid},iface=nosuch{pid}"
"""


def auto_text(node, services):
    text = node.config_text(services)
    check('type = "xdp"' in text, "the XDP node's config has no type line to turn into auto")
    text = text.replace('type = "xdp"', 'type = "auto"', 1)
    return text.replace("[network]", DPDK_SECTION.format(pid=os.getpid()) + "\n[network]", 1)


def scenario(s):
    topo = s.topology(backends=("b1", "b2", "b3"))
    topo.attach_decap(s.env)
    e2e.Backends(s, topo).start_all()
    hc = {"type": "tcp", "interval_ms": 300, "timeout_ms": 200, "rise": 1, "fall": 2}
    two = e2e.service(health_check=hc, backends=[{"address": topo.addr[b]} for b in ("b1", "b2")])
    node = s.sluiced(topo, [two], plane="xdp")
    node.write_config(auto_text(node, [two]))
    node.start()
    out = node.log()
    check("cannot start the DPDK data plane" in out and "falling back to XDP" in out,
          f"sluiced did not say that DPDK failed and it falls back:\n{out[-3000:]}")
    check("running the xdp data plane" in out, "sluiced did not say which plane auto chose")
    stats = node.api("/v1/stats")
    check(stats["dataplane"] == "xdp", f"the API says dataplane {stats['dataplane']!r}, want xdp")
    log("ok   auto: DPDK could not take the port, sluiced fell back to XDP and says so")

    summ = e2e.summarize(e2e.run_burst(topo, range(10000, 10200)))
    check(summ["failed"] == 0 and set(summ["per_backend"]) == {"b1", "b2"},
          f"through the fallen-back node: {summ}")
    log(f"ok   {summ['ok']} connections through the XDP plane: {summ['per_backend']}")

    three = dict(two, backends=[{"address": topo.addr[b]} for b in topo.backends])
    node.write_config(auto_text(node, [three]))
    reply = node.ctl("reload", as_json=True, check_rc=False)
    check(reply.get("applied") is True, f"a reload of the same auto config was not applied: {reply}")

    def b3_in():
        return node.backends().get(topo.addr["b3"], {}).get("in_table")
    e2e.wait_for("b3 in the table after the reload", b3_in, 10, 0.1)
    summ = e2e.summarize(e2e.run_burst(topo, range(20000, 20300)))
    check(summ["failed"] == 0 and set(summ["per_backend"]) == {"b1", "b2", "b3"}, f"after the reload: {summ}")
    log(f"ok   reload with dataplane.type still auto applied on the XDP plane: {summ['per_backend']}")
    rc = node.stop()
    check(rc == 0, f"sluiced exited {rc} on SIGTERM")


if __name__ == "__main__":
    sys.exit(e2e.main(scenario, "auto falls back to XDP", tag="auto"))
