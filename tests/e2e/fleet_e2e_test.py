#!/usr/bin/python3
"""Fleet end to end: a DPDK node and an XDP node behind one ECMP route.

Two sluice nodes read the same etcd prefix (etcd on a host of the segment):
lb1 runs the DPDK data plane, lb2 the XDP one. The client reaches the VIP
through either (a route via one node, then an ECMP route over both, hashed
on ports as a router would). Proves:

  - both nodes publish the same table fingerprint, after start and after
    every change of the backends in etcd;
  - both answer `lookup` with the same backend for every one of 2000 flows;
  - real TCP flows reach the same backend whichever node carries them (the
    same client ports sent through lb1, then through lb2);
  - under ECMP every connection succeeds and both nodes carry traffic;
  - long-lived connections opened through both nodes keep their backends
    while a backend is removed from etcd and another added, and the nodes
    converge on the new set.

Environment: SLUICE_FLEET_XDP_CONN_TABLE_MODE sets the XDP node's
dataplane.xdp.conn_table_mode (default: unset, "auto", shared on its
veth); "per-cpu" shows what a moved sender costs without the shared table
(docs/operations.md, "The connection table").

Exit status: 0 pass, 1 fail, 77 skip (no root, a missing kernel feature or
tool; only when CI is not "true").
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_e2e as e2e  # noqa: E402
from sluice_e2e import check, log  # noqa: E402

LOOKUP_PORTS = range(40000, 42000)
SAME_FLOW_PORTS = range(40000, 40150)  # inside LOOKUP_PORTS
ECMP_PORTS = range(44000, 44600)
LONG_PORTS = range(45000, 45024)


def fingerprints(nodes):
    return [n.fingerprint() for n in nodes]


def wait_converged(nodes, active, what, timeout=20):
    """Until every node has exactly `active` in its table and all fingerprints agree."""
    want = sorted(active)

    def converged():
        for n in nodes:
            b = n.backends()
            if sorted(a for a, v in b.items() if v["in_table"]) != want:
                return None
        fps = fingerprints(nodes)
        return fps[0] if fps[0] and len(set(fps)) == 1 else None
    fp = e2e.wait_for(f"both nodes to converge on {want} ({what})", converged, timeout, 0.1)
    log(f"ok   {what}: both nodes have {len(want)} backends, fingerprint {fp}")
    return fp


def same_lookups(nodes, client, ports=LOOKUP_PORTS):
    maps = [n.lookups(client, ports) for n in nodes]
    diff = [p for p in ports if maps[0][p] != maps[1][p]]
    check(not diff, f"lookup differs between the nodes for {len(diff)} of {len(ports)} flows, e.g. "
                    f"{[(p, maps[0][p], maps[1][p]) for p in diff[:5]]}")
    check(all(maps[0][p] for p in ports), "lookup named no backend for some flows")
    spread = {}
    for p in ports:
        spread[maps[0][p]] = spread.get(maps[0][p], 0) + 1
    log(f"ok   lookup: {len(ports)} flows, the same backend on both nodes; spread {dict(sorted(spread.items()))}")
    return maps[0]


def forwarded(node):
    """Packets the node forwarded to backends (VIP traffic only; /metrics, plane-neutral)."""
    return sum(v for (name, _), v in node.metrics().items() if name == "sluice_backend_packets_total")


def fleet(s):
    topo = s.topology(lbs=("lb1", "lb2"), backends=("b1", "b2", "b3", "b4", "b5"), hosts=("etcd",))
    topo.attach_decap(s.env)
    # Backends and clients wherever the scheduler runs them: on the veth the
    # XDP program runs on the sending CPU, so a long-lived flow can change
    # CPU mid-flow. The XDP node shares one connection table across CPUs
    # there (conn_table_mode "auto"): 15 of 15 runs kept every long-lived
    # connection; with conn_table_mode = "per-cpu" 6 of 15 runs lost one
    # (reset by the backend the changed ring picked on its new CPU).
    servers = e2e.Backends(s, topo)
    servers.start_all()
    etcd = e2e.Etcd(s, topo.ns["etcd"], host=topo.addr["etcd"])
    etcd.start()
    first = ("b1", "b2", "b3", "b4")
    for b in first:
        etcd.put_backend(topo.addr[b])
    svc = e2e.service(health_check={"type": "tcp", "interval_ms": 500, "timeout_ms": 300, "rise": 1, "fall": 2},
                      discovery={"type": "etcd", "endpoints": [etcd.url], "prefix": etcd.prefix,
                                 "dial_timeout_ms": 500})
    dpdk = s.sluiced(topo, [svc], plane="dpdk", lb="lb1")
    mode = os.environ.get("SLUICE_FLEET_XDP_CONN_TABLE_MODE")
    xdp = s.sluiced(topo, [svc], plane="xdp", lb="lb2", xdp_toml=[f'conn_table_mode = "{mode}"'] if mode else ())
    nodes = (dpdk, xdp)
    for n in nodes:
        t0 = time.monotonic()
        n.start()
        log(f"{n.name} ({n.plane}) ready in {time.monotonic() - t0:.1f} s")
    client = topo.addr[e2e.CLIENT]
    fp0 = wait_converged(nodes, [topo.addr[b] for b in first], "start")
    mapping = same_lookups(nodes, client)

    # The same client ports through one node, then through the other.
    by_node = {}
    for n in nodes:
        topo.route_vip(e2e.VIP, [n.lb])
        results = e2e.run_burst(topo, SAME_FLOW_PORTS, threads=6)
        summ = e2e.summarize(results)
        check(summ["failed"] == 0, f"via {n.lb} ({n.plane}): {summ['failed']} connections failed: "
                                   f"{[r for r in results if 'error' in r][:5]}")
        by_node[n.lb] = {r["port"]: r["backend"] for r in results}
        log(f"ok   via {n.lb} ({n.plane}) only: {summ['ok']} connections, {summ['per_backend']}")
    moved = [p for p in SAME_FLOW_PORTS if by_node["lb1"][p] != by_node["lb2"][p]]
    check(not moved, f"{len(moved)} of {len(SAME_FLOW_PORTS)} flows reached another backend through the other node, "
                     f"e.g. {[(p, by_node['lb1'][p], by_node['lb2'][p]) for p in moved[:5]]}")
    wrong = [p for p in SAME_FLOW_PORTS if topo.addr[by_node["lb1"][p]] != mapping[p]]
    check(not wrong, f"{len(wrong)} flows reached another backend than lookup said, e.g. "
                     f"{[(p, by_node['lb1'][p], mapping[p]) for p in wrong[:5]]}")
    log(f"ok   {len(SAME_FLOW_PORTS)} flows: the same backend through the DPDK and the XDP node, as lookup said")

    # ECMP over both nodes, hashed on ports.
    topo.route_vip(e2e.VIP, [n.lb for n in nodes])
    before = [forwarded(n) for n in nodes]
    results = e2e.run_burst(topo, ECMP_PORTS, threads=8)
    summ = e2e.summarize(results)
    check(summ["failed"] == 0, f"ECMP: {summ['failed']} of {summ['connections']} connections failed: "
                               f"{[r for r in results if 'error' in r][:5]}")
    carried = [forwarded(n) - b for n, b in zip(nodes, before)]
    for n, c in zip(nodes, carried):
        check(c >= 0.15 * len(ECMP_PORTS), f"ECMP: {n.lb} ({n.plane}) forwarded only {c} packets for "
                                           f"{len(ECMP_PORTS)} connections")
    check(set(summ["per_backend"]) == set(first), f"ECMP: answers from {summ['per_backend']}, want {first}")
    log(f"ok   ECMP: {summ['ok']}/{summ['connections']} connections, packets forwarded per node {carried}, "
        f"{summ['per_backend']}")

    # Long-lived connections through both nodes, then b4 leaves etcd and b5 joins.
    long = e2e.LongLived(topo, LONG_PORTS, period=0.2, max_seconds=120).start()
    opened = {st["port"]: st["backends"][0] for st in long.conns if st["backends"]}
    check(len(opened) == len(LONG_PORTS), f"only {len(opened)} of {len(LONG_PORTS)} long-lived connections opened: "
                                          f"{[st['error'] for st in long.conns if st['error']][:3]}")
    # The node that carries each connection explains it by its connection
    # table entry (the other node has none and answers by Maglev slot).
    explained = 0
    for p, b in opened.items():
        q = f"/v1/lookup?client={client}&client_port={p}&vip={e2e.VIP}&vip_port={e2e.VIP_PORT}&protocol=tcp"
        answers = [n.api(q) for n in nodes]
        pinned = [a for a in answers if a["reason"] == "connection table"]
        check(pinned, f"port {p}: no node explains the connection by its connection table: {answers}")
        check(all(a["backend"] == topo.addr[b] for a in pinned), f"port {p} reached {b}, lookup says {answers}")
        explained += 1
    log(f"ok   lookup: {explained} long-lived connections explained by a connection-table entry on the node "
        f"that carries them")
    etcd.delete_backend(topo.addr["b4"])
    fp1 = wait_converged(nodes, [topo.addr[b] for b in ("b1", "b2", "b3")], "b4 deleted from etcd")
    check(fp1 != fp0, "the fingerprint did not change when b4 left")
    etcd.put_backend(topo.addr["b5"])
    fp2 = wait_converged(nodes, [topo.addr[b] for b in ("b1", "b2", "b3", "b5")], "b5 added to etcd")
    check(fp2 not in (fp0, fp1), "the fingerprint did not change when b5 joined")
    answered = long.answers()
    surviving = [p for p in answered if opened[p] != "b4"]

    def lagging():
        now = long.answers()
        return [p for p in surviving if now[p] < answered[p] + 3]

    def all_answered_again():
        broken = [st for st in long.conns if st["port"] in surviving and st["error"]]
        check(not broken, "long-lived connections broke after the changes: " +
              "; ".join(f"port {st['port']} to {opened[st['port']]}: {st['error']}" for st in broken))
        return not lagging()
    try:
        e2e.wait_for("every long-lived connection to answer again after the changes", all_answered_again, 15, 0.1)
    except e2e.Failure as e:
        # Which ones, to where, and whether they moved: enough to tell a
        # stalled flow from a starved client thread.
        now = long.answers()
        raise e2e.Failure(f"{e}: {len(lagging())} of {len(surviving)} lag: " + ", ".join(
            f"port {p} to {opened[p]} {now[p] - answered[p]} answers since, backends {st['backends']}"
            for st in long.conns for p in [st["port"]] if p in lagging())) from None
    conns = long.stop()
    for st in conns:
        if opened[st["port"]] == "b4":
            continue  # drained with b4: kept, but not this test's point
        check(st["error"] is None, f"long-lived connection from port {st['port']} to {opened[st['port']]} broke: "
                                   f"{st['error']}")
        check(st["backends"] == [opened[st["port"]]],
              f"long-lived connection from port {st['port']} moved: {st['backends']}")
    survivors = sum(1 for p in opened if opened[p] != "b4")
    log(f"ok   {survivors} long-lived connections to surviving backends kept their backend through both changes")
    # Flows never sent (the same-flow ports still have closing entries that
    # name b4, which drains: lookup rightly reports those).
    fresh = [p for p in LOOKUP_PORTS if p not in SAME_FLOW_PORTS]
    mapping = same_lookups(nodes, client, fresh)
    check(topo.addr["b4"] not in mapping.values(), "lookup still names b4 for new flows after its removal")
    check(topo.addr["b5"] in mapping.values(), "lookup never names the new b5")

    for n in nodes:
        rc = n.stop()
        check(rc == 0, f"{n.name} ({n.plane}) exited {rc} on SIGTERM")


if __name__ == "__main__":
    sys.exit(e2e.main(fleet, "fleet: a DPDK and an XDP node on one etcd prefix", tag="fl"))
