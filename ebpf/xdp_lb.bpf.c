/* The XDP data plane: the pipeline of dataplane/core/pipeline.cpp on BPF
 * maps, producing the same bytes for the same config and packet (proved by
 * tests/parity/). Thin entry; parsing, maps, lookups, filters,
 * encapsulation, ICMP and counters live in xdp/, one header each. Loaded and
 * fed by ebpf/loader/. Non-VIP traffic, ARP and ND go to the kernel
 * (XDP_PASS): the host keeps SSH, BGP and neighbour resolution. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/flow.h"
#include "abi/tables.h"
#include "xdp/conn_table.h"
#include "xdp/encap.h"
#include "xdp/fast_path.h"
#include "xdp/filters.h"
#include "xdp/icmp.h"
#include "xdp/lookup.h"
#include "xdp/maps.h"
#include "xdp/parse.h"
#include "xdp/stats.h"

static __always_inline int xlb_mac_is_zero(const __u8 *mac)
{
	return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

/* Finds the service for a VIP packet and fills pp->key (the core's
 * classify). Returns the meta, or NULL with *reason set. */
static __always_inline struct sluice_vip_meta *xlb_classify(struct xdp_md *ctx, struct xlb_parsed *pp, int *reason)
{
	struct sluice_vip_meta *meta;
	struct xlb_walk w;
	int tcp_udp, ambiguous = 0, r;

	if (pp->family == SLUICE_FAMILY_IPV6) {
		r = xlb_walk_ipv6_exthdrs(ctx, pp->l4_off, pp->l3_off + pp->l3_len, pp->l4_proto, &w);
		if (r != XLB_OK) {
			*reason = r;
			return 0;
		}
		pp->l4_off = w.offset;
		pp->l4_proto = w.proto;
		pp->fragment = w.fragment;
	}
	tcp_udp = pp->l4_proto == SLUICE_IPPROTO_TCP || pp->l4_proto == SLUICE_IPPROTO_UDP;
	if (pp->fragment) {
		/* Steered by (client, VIP, protocol), ports zero, never in the
		 * connection table: see the core's classify(). */
		if (!tcp_udp) {
			*reason = SLUICE_DROP_FRAGMENT_UNSUPPORTED;
			return 0;
		}
		xlb_set_fragment_key(pp);
		meta = xlb_find_fragment_service(&pp->key, &ambiguous);
		if (!meta)
			*reason = ambiguous ? SLUICE_DROP_FRAGMENT_UNSUPPORTED : SLUICE_DROP_VIP_PORT_MISS;
		return meta;
	}
	if (tcp_udp)
		r = xlb_parse_tcp_udp(ctx, pp);
	else if ((pp->family == SLUICE_FAMILY_IPV4 && pp->l4_proto == SLUICE_IPPROTO_ICMP) ||
		 (pp->family == SLUICE_FAMILY_IPV6 && pp->l4_proto == SLUICE_IPPROTO_ICMPV6))
		r = xlb_parse_icmp_error(ctx, pp);
	else
		r = SLUICE_DROP_UNSUPPORTED_L4;
	if (r != XLB_OK) {
		*reason = r;
		return 0;
	}
	/* An ICMP error quoting a fragment follows the fragments. */
	meta = pp->fragment ? xlb_find_fragment_service(&pp->key, &ambiguous) : xlb_find_service(&pp->key);
	if (!meta)
		*reason = SLUICE_DROP_VIP_PORT_MISS;
	return meta;
}

/* The backend for the flow (the core's connection-table step), or
 * SLUICE_BACKEND_NONE; *reason is set when a filter drops the packet.
 * `hash` is the flow hash (bucket, signature and Maglev slot). On a hit
 * *valid is the backend, already checked valid (one lookup less). */
static __always_inline __u32 xlb_choose_backend(struct xlb_parsed *pp, const struct sluice_vip_meta *meta,
						struct sluice_stats *st, const struct sluice_node_config *node,
						__u32 hash, int *reason, struct sluice_backend **valid)
{
	/* The tick's resolution (see xlb_conn_now): idle timeouts are seconds,
	 * and the precise clock's ordered TSC read was a fifth of an
	 * established packet's cost. The token buckets keep the precise clock. */
	__u64 now = xlb_conn_now();
	struct sluice_conn_bucket *b;
	struct sluice_conn_entry *e;
	struct sluice_backend *pinned = 0;
	int live, evicted = 0;
	__u32 id;

	if (pp->fragment)
		return xlb_ring_pick(meta, hash);
	/* No partition only on a CPU brought online after the load with a
	 * higher id than any then: every packet a miss, nothing pinned. */
	b = xlb_conn_bucket(&sluice_conns_v3, hash);
	e = b ? xlb_conn_find(b, &pp->key, hash) : 0;
	live = e && !xlb_conn_expired(e, now, node);
	if (live)
		pinned = xlb_valid_backend(e->backend_id);
	if (pp->icmp_error) {
		/* Follows the flow, but neither creates nor refreshes it. */
		return pinned ? e->backend_id : xlb_ring_pick(meta, hash);
	}
	/* A pure SYN opens a new connection: on a 5-tuple whose entry names a
	 * draining backend it is picked again, since a draining backend takes
	 * no new flows (as the DPDK core). */
	if (pinned && !((pinned->flags & SLUICE_BACKEND_F_DRAINING) &&
			(pp->tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN)) {
		st->conn_hits++;
		xlb_conn_touch(e, now, pp->tcp_flags);
		*valid = pinned;
		return e->backend_id;
	}
	st->conn_misses++;
	if ((meta->flags & SLUICE_VIP_F_RATE_LIMIT) &&
	    !xlb_bucket_take(2 * meta->vip_id + SLUICE_XDP_BUCKET_NEW_FLOWS, bpf_ktime_get_ns())) {
		*reason = SLUICE_DROP_RATE_LIMIT_NEW_FLOWS;
		return SLUICE_BACKEND_NONE;
	}
	id = xlb_ring_pick(meta, hash);
	if (id == SLUICE_BACKEND_NONE)
		return id;
	if (!e) {
		if (!b)
			return id;
		e = xlb_conn_claim(b, hash, now, node, &evicted);
		e->key = pp->key;
		if (evicted)
			st->conn_evictions++;
	}
	/* A new flow, an expired entry of this 5-tuple (a new connection),
	 * or a live entry whose backend is gone: re-pin in place. */
	e->backend_id = id;
	if (live) {
		xlb_conn_touch(e, now, pp->tcp_flags);
	} else {
		e->state = xlb_conn_initial_state(pp->key.proto, pp->tcp_flags);
		e->last_seen = now;
	}
	return id;
}

/* One packet through the pipeline; the verdict goes to *v. Every path that
 * does not reach a send ends at `drop` with a reason (fail closed). */
static __always_inline void xlb_process(struct xdp_md *ctx, struct sluice_stats *st, __u32 rx_len,
					struct xlb_verdict *v)
{
	struct sluice_ifport_record *ports;
	struct sluice_node_config *node;
	struct sluice_vip_meta *meta;
	struct sluice_backend *be;
	struct xlb_encap_params ep;
	struct xlb_parsed pp __attribute__((aligned(8))); /* memset in 8-byte stores */
	__u32 zero = 0, ifindex = ctx->ingress_ifindex, backend_id, vip_id, hash, reported_mtu;
	__u8 mode, outer;
	int reason = SLUICE_DROP_INTERNAL, r;

	__builtin_memset(&pp, 0, sizeof(pp));
	pp.frame_len = rx_len;
	r = xlb_parse_l2(ctx, &pp);
	if (r == XLB_PASS)
		goto pass;
	if (r != XLB_OK)
		goto drop_r;
	r = pp.family == SLUICE_FAMILY_IPV4 ? xlb_parse_ipv4(ctx, &pp) : xlb_parse_ipv6(ctx, &pp);
	if (r != XLB_OK)
		goto drop_r;
	/* Fast path, as the core's single VIP probe: an unfragmented TCP/UDP
	 * packet (no IPv6 extension header) whose service is found is VIP
	 * traffic, since the loader writes a service's address entry with
	 * it; the address probe is left for everything else, which then
	 * takes the full classification below (parsing again is harmless). */
	meta = 0;
	if (!pp.fragment && (pp.l4_proto == SLUICE_IPPROTO_TCP || pp.l4_proto == SLUICE_IPPROTO_UDP) &&
	    xlb_parse_tcp_udp(ctx, &pp) == XLB_OK)
		meta = xlb_find_service_cached(&pp.key);
	if (!meta) {
		if (pp.family == SLUICE_FAMILY_IPV6 && xlb_is_neighbor_discovery(ctx, &pp))
			goto pass;
		if (!xlb_vip_address(pp.family, &pp.dst))
			goto pass;
		meta = xlb_classify(ctx, &pp, &reason);
		if (!meta)
			goto drop;
	}
	if (meta->flags & SLUICE_VIP_F_HASH_NO_SPORT)
		pp.key.sport = 0;
	vip_id = meta->vip_id;
	reason = SLUICE_DROP_INTERNAL;
	node = bpf_map_lookup_elem(&sluice_node_v3, &zero);
	if (vip_id >= SLUICE_MAX_VIPS || !node)
		goto drop;
	xlb_count_counter(&sluice_vip_stats_v1, vip_id, rx_len);

	r = xlb_acl_check(node->flags, meta->flags, pp.family, &pp.src, vip_id);
	if (r >= 0)
		goto drop_r;
	if ((meta->flags & SLUICE_VIP_F_RATE_LIMIT) &&
	    !xlb_bucket_take(2 * vip_id + SLUICE_XDP_BUCKET_PACKETS, bpf_ktime_get_ns())) {
		reason = SLUICE_DROP_RATE_LIMIT_PACKETS;
		goto drop;
	}

	reason = SLUICE_DROP_NO_BACKEND;
	/* Computed once: the connection table's bucket and signature, the
	 * Maglev slot, the GUE source port and the IPv6 flow label. */
	hash = sluice_flow_hash(&pp.key);
	be = 0;
	backend_id = xlb_choose_backend(&pp, meta, st, node, hash, &reason, &be);
	if (backend_id == SLUICE_BACKEND_NONE)
		goto drop;
	if (!be)
		be = xlb_valid_backend(backend_id);
	if (!be)
		goto drop;

	reason = SLUICE_DROP_INTERNAL; /* an interface the loader did not map */
	ports = xlb_egress_port(ifindex);
	if (!ports)
		goto drop;

	mode = meta->forwarding;
	if (mode >= SLUICE_FWD_MAX)
		goto drop;
	outer = mode == SLUICE_FWD_L2DSR ? pp.family : be->family;
	ep.src_mac = ports->eg_mac;
	ep.dst_mac = mode == SLUICE_FWD_L2DSR ? be->mac : ports->eg_nexthop_mac;
	ep.outer_src = be->family == SLUICE_FAMILY_IPV4 ? &node->local_v4 : &node->local_v6;
	ep.outer_dst = &be->addr;
	ep.flow_hash = hash;
	ep.gue_dport = meta->gue_dport;
	ep.mtu = ports->eg_mtu;
	/* One-arm: the tag names the shared segment and stays; two-arm: it
	 * meant something only on the ingress link. */
	ep.keep_vlan = pp.has_vlan && ports->eg_id == ports->in_id;
	reason = SLUICE_DROP_NO_NEXTHOP;
	if (xlb_mac_is_zero(ep.dst_mac))
		goto drop;

	r = xlb_encapsulate(ctx, &pp, &ep, mode, outer);
	if (r == XLB_MTU_EXCEEDED) {
		/* ICMP back to the client when it asked for PMTU discovery (IPv4
		 * DF, any IPv6), never about an ICMP error (RFC 1122 §3.2.2),
		 * never an IPv6 one reporting less than 1280, and only while
		 * this CPU's ICMP-error bucket has a token: the core's
		 * mtu_exceeded(), in the same order. */
		reason = SLUICE_DROP_MTU_EXCEEDED;
		if (pp.icmp_error || (pp.family == SLUICE_FAMILY_IPV4 && !pp.ipv4_df))
			goto drop;
		reported_mtu = ports->eg_mtu - sluice_encap_overhead(mode, outer);
		if (pp.family == SLUICE_FAMILY_IPV6 && reported_mtu < XLB_ICMP6_MIN_MTU)
			goto drop;
		if (!xlb_icmp_error_allowed(node)) {
			st->icmp_rate_limited++;
			goto drop;
		}
		if (xlb_build_packet_too_big(ctx, &pp, ports->in_mac, reported_mtu))
			goto drop;
		v->action = XDP_TX;
		v->reason = SLUICE_DROP_MTU_EXCEEDED;
		v->icmp = 1;
		return;
	}
	if (r != XLB_OK)
		goto drop_r;
	xlb_count_counter(&sluice_backend_stats_v1, backend_id,
			  (__u64)(ctx->data_end - ctx->data));
	v->reason = SLUICE_DROP_MAX;
	v->action = ports->eg_id == ports->in_id ? XDP_TX : (int)bpf_redirect(ports->eg_ifindex, 0);
	return;

pass:
	v->action = XDP_PASS;
	v->reason = SLUICE_DROP_MAX;
	return;
drop_r:
	reason = r;
drop:
	v->action = XDP_DROP;
	v->reason = reason >= 0 && reason < SLUICE_DROP_MAX ? (__u8)reason : SLUICE_DROP_INTERNAL;
}

SEC("xdp")
int sluice_xdp_lb(struct xdp_md *ctx)
{
	struct xlb_verdict v = {.action = XDP_DROP, .reason = SLUICE_DROP_INTERNAL, .icmp = 0};
	__u32 rx_len = (__u32)(ctx->data_end - ctx->data);
	__u32 zero = 0;
	struct sluice_stats *st = bpf_map_lookup_elem(&sluice_stats_v2, &zero);

	if (!st)
		return XDP_DROP; /* cannot happen (array of one); never forward uncounted */
	st->rx_packets++;
	st->rx_bytes += rx_len;
	/* The common packet in a few registers (xdp/fast_path.h); anything
	 * else, untouched, through the general pipeline. */
	if (xlb_fast_path(ctx, st, rx_len, &v) != XLB_FAST_TAKEN)
		xlb_process(ctx, st, rx_len, &v);
	xlb_account(st, &v, (__u64)(ctx->data_end - ctx->data));
	return v.action;
}

/* The connection table's clock for user space (XdpDataplane::
 * connection_clock_ns; the driver judges entries by it): run by
 * BPF_PROG_TEST_RUN, never attached; writes xlb_conn_now() into the first
 * 8 bytes of the frame it is given, which the run copies out. */
SEC("xdp")
int sluice_xdp_clock(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u64 now = xlb_conn_now();

	if (data + sizeof(now) > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, &now, sizeof(now));
	return XDP_PASS;
}

/* No GPL-only helper is used; the string only has to name a license. */
char LICENSE[] SEC("license") = "Apache-2.0";
