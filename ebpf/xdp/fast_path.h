/* The fast path of xdp_lb for the common packet, as dataplane/core/fast_path.h
 * is the DPDK plane's: Ethernet (+ one 802.1Q tag), IPv4 without options,
 * not a fragment, TCP or UDP, tunnelled by IPIP or GUE to an IPv4 or an
 * IPv6 backend; and the same packets when they are not for a service (the
 * host's, passed; a VIP address without the port, dropped). L2 DSR is
 * declined as soon as the service is known (see below: the verifier).
 * It parses into a handful of scalars instead of the general path's
 * 120-byte struct xlb_parsed (whose fields clang kept in registers, then
 * spilled around the helper calls: 176 of the 934 instructions of an
 * established packet), and uses the general path's own pieces for
 * everything else: the service cache (lookup.h), the
 * connection table (conn_table.h), the counters (stats.h), the outer
 * headers' writers and the GUE-over-IPv6 checksum (encap.h).
 *
 * It either does exactly what xlb_process does with the packet or
 * declines (XLB_FAST_DECLINED) before writing anything, and xlb_process
 * then takes the packet as if the fast path did not exist: every condition
 * it does not handle (another L2/L3/L4, IPv4 options, fragments, anything
 * the general parser would drop, L2 DSR, ACL denial, a rate-limited
 * service, an invalid backend, a missing port, an unresolved next hop, a
 * packet over the MTU) is checked by reads alone, and only then are
 * the counters, the connection table and the frame written, in that
 * order. The one write before a decline is a memo that changes no result:
 * the service cache's fill on a cache miss (what the general path's lookup
 * returns anyway); the GUE-over-IPv6 checksum also uses the per-CPU
 * scratch buffer, which holds nothing between packets.
 * tests/ebpf/xdp_fast_path_test.cpp checks both: the same bytes and
 * counters as with the fast path off, taken for the common packet,
 * declined for each boundary. */
#ifndef SLUICE_XDP_FAST_PATH_H
#define SLUICE_XDP_FAST_PATH_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
#include "xdp/conn_table.h"
#include "xdp/encap.h"
#include "xdp/filters.h"
#include "xdp/lookup.h"
#include "xdp/maps.h"
#include "xdp/parse.h"
#include "xdp/stats.h"

/* Set by the loader before loading: 0 the general path only, 1 the fast
 * path first (the default), 2 the same and every packet it takes counted
 * in xlb_fast_path_packets (tests; the verifier prunes the count
 * otherwise). */
const volatile __u8 xlb_fast_path_mode = 1;

/* Packets the fast path took, all CPUs (mode 2 only: a shared line). */
__u64 xlb_fast_path_packets = 0;

/* What xlb_fast_path did: declined (nothing written, see above), or took
 * the packet (*v set). */
#define XLB_FAST_DECLINED 0
#define XLB_FAST_TAKEN 1

/* `rx_len` is the frame's length as received. */
static __always_inline int xlb_fast_path(struct xdp_md *ctx, struct sluice_stats *st, __u32 rx_len,
					 struct xlb_verdict *v)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	struct sluice_flow_key key __attribute__((aligned(8))); /* compared in words by conn_table.h */
	struct sluice_ifport_record *ports;
	struct sluice_node_config *node;
	struct sluice_conn_bucket *b;
	struct sluice_conn_entry *e;
	struct sluice_vip_meta *meta;
	struct sluice_backend *be, *pinned = 0;
	struct sluice_ipv4_hdr *ip;
	__u32 ifindex = ctx->ingress_ifindex, zero = 0, l3 = XLB_ETH_LEN, total, avail, l4_avail, hash, id;
	__u32 overhead, l2_len, vip_id;
	__sum16 udp_check = 0;
	__u64 now;
	__be16 type, tci = 0, ports_sport, ports_dport;
	__u8 proto, tcp_flags = 0, mode, has_vlan = 0, hit, live, outer4;
	int evicted = 0, head, tail;

	if (xlb_fast_path_mode == 0)
		return XLB_FAST_DECLINED;
	/* Ethernet (+ one tag), then an option-less IPv4 header and the 8
	 * bytes the UDP header needs, in the frame. */
	if (data + XLB_ETH_LEN + XLB_VLAN_LEN > end)
		return XLB_FAST_DECLINED;
	type = *(__be16 *)(data + 12);
	if (type == bpf_htons(SLUICE_ETH_P_VLAN)) {
		tci = *(__be16 *)(data + 14);
		type = *(__be16 *)(data + 16);
		has_vlan = 1;
		l3 = XLB_ETH_LEN + XLB_VLAN_LEN;
	}
	if (type != bpf_htons(SLUICE_ETH_P_IPV4))
		return XLB_FAST_DECLINED;
	ip = (struct sluice_ipv4_hdr *)(data + l3);
	if ((__u8 *)ip + XLB_IPV4_LEN + XLB_UDP_LEN > end)
		return XLB_FAST_DECLINED;
	/* The general parser's checks, in a form that accepts the same
	 * packets: version 4, IHL 5 (options: declined), IHL <= total <=
	 * the bytes after L2; no MF, no offset. */
	total = bpf_ntohs(ip->total_len);
	avail = rx_len - l3;
	if (ip->version_ihl != SLUICE_IPV4_VERSION_IHL(5) || total < XLB_IPV4_LEN || total > avail ||
	    (ip->frag_off & bpf_htons(SLUICE_IPV4_MF | SLUICE_IPV4_OFFSET_MASK)))
		return XLB_FAST_DECLINED;
	proto = ip->protocol;
	l4_avail = total - XLB_IPV4_LEN;
	if (proto == SLUICE_IPPROTO_TCP) {
		__u8 *th = (__u8 *)(ip + 1);
		__u32 doff;

		if (l4_avail < XLB_TCP_LEN || th + XLB_TCP_LEN > end)
			return XLB_FAST_DECLINED;
		doff = (th[12] >> 4) * 4u;
		if (doff < XLB_TCP_LEN || doff > l4_avail)
			return XLB_FAST_DECLINED;
		tcp_flags = th[13];
	} else if (proto == SLUICE_IPPROTO_UDP) {
		struct sluice_udp_hdr *uh = (struct sluice_udp_hdr *)(ip + 1);
		__u32 ulen = bpf_ntohs(uh->len);

		if (l4_avail < XLB_UDP_LEN || ulen < XLB_UDP_LEN || ulen > l4_avail)
			return XLB_FAST_DECLINED;
	} else {
		return XLB_FAST_DECLINED;
	}
	ports_sport = *(__be16 *)(ip + 1);
	ports_dport = *((__be16 *)(ip + 1) + 1);

	/* The general path's flow key, zero-padded (the service cache, the
	 * hash and the connection table read it). */
	__builtin_memset(&key, 0, sizeof(key));
	key.src.v4 = ip->saddr;
	key.dst.v4 = ip->daddr;
	key.sport = ports_sport;
	key.dport = ports_dport;
	key.proto = proto;
	key.family = SLUICE_FAMILY_IPV4;
	meta = xlb_find_service_cached(&key);
	if (!meta) {
		/* What the general path decides for this packet after the same
		 * parse and the same service probe: the host's when no VIP has
		 * its address (IPv4: no neighbour discovery to pass first),
		 * else a port miss. Decided here, port-miss and host packets
		 * no longer pay for a second parse and a second service probe
		 * (two hash lookups). */
		if (xlb_vip_address(SLUICE_FAMILY_IPV4, &key.dst)) {
			v->action = XDP_DROP;
			v->reason = SLUICE_DROP_VIP_PORT_MISS;
		} else {
			v->action = XDP_PASS;
			v->reason = SLUICE_DROP_MAX;
		}
		goto taken;
	}
	mode = meta->forwarding;
	vip_id = meta->vip_id;
	if (mode >= SLUICE_FWD_MAX || vip_id >= SLUICE_MAX_VIPS || (meta->flags & SLUICE_VIP_F_RATE_LIMIT))
		return XLB_FAST_DECLINED;
	/* L2 DSR could be taken too (xdp_bench: 61 -> 33 ns), but its own
	 * way through the writes made the verifier process 981 555 of the
	 * 1 000 000 instructions it allows, against 768 734 with this
	 * decline (the loader's read-only data). Kept as a statement of its
	 * own: folded into the test above, clang's code took 100 000 more. */
	if (mode == SLUICE_FWD_L2DSR)
		return XLB_FAST_DECLINED;
	if (meta->flags & SLUICE_VIP_F_HASH_NO_SPORT)
		key.sport = 0;
	node = bpf_map_lookup_elem(&sluice_node_v3, &zero);
	if (!node || xlb_acl_check(node->flags, meta->flags, SLUICE_FAMILY_IPV4, &key.src, vip_id) >= 0)
		return XLB_FAST_DECLINED;

	/* Ports: the general path's lookup. */
	ports = xlb_egress_port(ifindex);
	if (!ports)
		return XLB_FAST_DECLINED;

	/* xlb_choose_backend's decision, from reads alone. */
	hash = sluice_flow_hash(&key);
	now = xlb_conn_now();
	b = xlb_conn_bucket(&sluice_conns_v3, hash);
	e = b ? xlb_conn_find(b, &key, hash) : 0;
	live = e && !xlb_conn_expired(e, now, node);
	if (live)
		pinned = xlb_valid_backend(e->backend_id);
	hit = pinned && !((pinned->flags & SLUICE_BACKEND_F_DRAINING) &&
			  (tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN);
	if (hit) {
		id = e->backend_id;
		be = pinned;
	} else {
		id = xlb_ring_pick(meta, hash);
		be = xlb_valid_backend(id);
	}
	if (!be)
		return XLB_FAST_DECLINED;

	/* xlb_encapsulate's checks: the outer header's family is the
	 * backend's. */
	outer4 = be->family == SLUICE_FAMILY_IPV4;
	overhead = sluice_encap_overhead(mode, outer4 ? SLUICE_FAMILY_IPV4 : SLUICE_FAMILY_IPV6);
	if (total + overhead > ports->eg_mtu)
		return XLB_FAST_DECLINED; /* the general path's ICMP or drop */
	{
		const __u8 *m = ports->eg_nexthop_mac;

		if ((m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0)
			return XLB_FAST_DECLINED;
	}
	/* Taken: from here on the general path's writes, in its order. */
	xlb_count_counter(&sluice_vip_stats_v1, vip_id, rx_len);
	if (hit) {
		st->conn_hits++;
		xlb_conn_touch(e, now, tcp_flags);
	} else {
		st->conn_misses++;
		if (!e && b) {
			e = xlb_conn_claim(b, hash, now, node, &evicted);
			e->key = key;
			if (evicted)
				st->conn_evictions++;
		}
		if (e) {
			e->backend_id = id;
			if (live) {
				xlb_conn_touch(e, now, tcp_flags);
			} else {
				e->state = xlb_conn_initial_state(proto, tcp_flags);
				e->last_seen = now;
			}
		}
	}

	/* xlb_encapsulate from here. */
	v->reason = SLUICE_DROP_MAX;
	v->action = XDP_DROP;
	if (mode == SLUICE_FWD_GUE && !outer4) {
		/* Before the frame moves, as xlb_encapsulate sums it (and
		 * fails as it does: after the table's write). */
		struct sluice_udp_hdr udp = {
			.sport = bpf_htons(sluice_gue_sport(hash)),
			.dport = meta->gue_dport,
			.len = bpf_htons((__u16)(XLB_UDP_LEN + total)),
			.check = 0,
		};

		if (xlb_gue6_udp_check(ctx, &node->local_v6, &be->addr, &udp, l3, total, &udp_check)) {
			v->reason = SLUICE_DROP_INTERNAL;
			goto taken;
		}
	}
	l2_len = has_vlan && ports->eg_id == ports->in_id ? XLB_ETH_LEN + XLB_VLAN_LEN : XLB_ETH_LEN;
	head = (int)l3 - (int)(overhead + l2_len);
	{
		/* Read before the frame moves. */
		__u8 tos = ip->tos;
		__be16 ipid = ip->id, df = ip->frag_off & bpf_htons(SLUICE_IPV4_DF);

		if (head != 0 && bpf_xdp_adjust_head(ctx, head)) {
			v->reason = SLUICE_DROP_NO_HEADROOM;
			goto taken;
		}
		tail = (int)(l3 + total) - (int)rx_len;
		if (tail != 0 && bpf_xdp_adjust_tail(ctx, tail)) {
			v->reason = SLUICE_DROP_INTERNAL;
			goto taken;
		}
		if (outer4) {
			if (xlb_write_ipv4_outer_fields(ctx, tos, ipid, df, tci, node->local_v4.v4, be->addr.v4,
							ports->eg_nexthop_mac, ports->eg_mac, hash, meta->gue_dport, mode,
							mode == SLUICE_FWD_GUE ? SLUICE_IPPROTO_UDP : SLUICE_IPPROTO_IPIP,
							total, l2_len)) {
				v->reason = SLUICE_DROP_INTERNAL;
				goto taken;
			}
		} else if (xlb_write_ipv6_outer_fields(ctx, tos, tci, &node->local_v6, &be->addr, ports->eg_nexthop_mac,
						       ports->eg_mac, hash, meta->gue_dport, udp_check, mode, total, l2_len)) {
			v->reason = SLUICE_DROP_INTERNAL;
			goto taken;
		}
	}
	xlb_count_counter(&sluice_backend_stats_v1, id, (__u64)(ctx->data_end - ctx->data));
	v->reason = SLUICE_DROP_MAX;
	v->action = ports->eg_id == ports->in_id ? XDP_TX : (int)bpf_redirect(ports->eg_ifindex, 0);
taken:
	if (xlb_fast_path_mode == 2)
		__sync_fetch_and_add(&xlb_fast_path_packets, 1);
	return XLB_FAST_TAKEN;
}

#endif /* SLUICE_XDP_FAST_PATH_H */
