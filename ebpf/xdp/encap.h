/* Forwarding writers for xdp_lb: IPIP (4in4, 6in6, 4in6, 6in4), GUE over
 * IPv4/IPv6, L2 DSR. The header choices are the core's (see
 * dataplane/core/encap.h: outer TTL 64, TOS copied, DF/ID rules, IPv6 flow
 * label = hash & 0xfffff, GUE variant 1 with sport from the hash, UDP
 * checksum 0 over IPv4 and computed over IPv6); this file only maps them
 * onto bpf_xdp_adjust_head/tail. Headers are built on the stack and copied
 * into the frame by direct packet access. */
#ifndef SLUICE_XDP_ENCAP_H
#define SLUICE_XDP_ENCAP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/checksum.h"
#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
#include "xdp/csum.h"
#include "xdp/parse.h"

/* Encapsulation outcomes besides XLB_OK and drop reasons. */
#define XLB_MTU_EXCEEDED (-3)

struct xlb_encap_params {
	const __u8 *src_mac;                /* our MAC on the egress port */
	const __u8 *dst_mac;                /* next hop (IPIP/GUE) or backend (L2 DSR) */
	const union sluice_addr *outer_src; /* local address of the backend's family */
	const union sluice_addr *outer_dst; /* backend address */
	__u32 flow_hash;                    /* sluice_flow_hash of the key */
	__be16 gue_dport;                   /* network order */
	__u16 mtu;                          /* egress L3 MTU */
	__u8 keep_vlan;                     /* re-emit the received tag */
};

/* Ethernet (+ tag) as the core writes it: 14 or 18 bytes used. */
struct xlb_l2 {
	__u8 dst[6];
	__u8 src[6];
	__be16 type;      /* ethertype, or the 802.1Q TPID */
	__be16 tci;       /* tag control, when tagged */
	__be16 type2;     /* ethertype, when tagged */
};

static __always_inline void xlb_fill_l2(struct xlb_l2 *l2, const __u8 *dst, const __u8 *src, __u8 tagged,
					__be16 tci, __u16 ethertype)
{
	__builtin_memcpy(l2->dst, dst, 6);
	__builtin_memcpy(l2->src, src, 6);
	if (tagged) {
		l2->type = bpf_htons(SLUICE_ETH_P_VLAN);
		l2->tci = tci;
		l2->type2 = bpf_htons(ethertype);
	} else {
		l2->type = bpf_htons(ethertype);
		l2->tci = 0;
		l2->type2 = 0;
	}
}

/* Outer headers: IP (+ UDP for GUE), 48 bytes at most. */
union xlb_outer {
	struct {
		struct sluice_ipv4_hdr ip;
		struct sluice_udp_hdr udp;
	} v4;
	struct {
		struct sluice_ipv6_hdr ip;
		struct sluice_udp_hdr udp;
	} v6;
	__u8 raw[48];
};

/* Copies the `n` (a constant) bytes at `from` to frame offset `off`; 0, or
 * -1 when they do not fit in the frame (as bpf_xdp_store_bytes fails). */
static __always_inline int xlb_write(struct xdp_md *ctx, __u32 off, const void *from, __u32 n)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *p;

	if (off > XLB_MAX_FRAME_OFF)
		return -1;
	p = data + off;
	if (p + n > end)
		return -1;
	__builtin_memcpy(__builtin_assume_aligned(p, 8), from, n); /* word stores: see xlb_load() */
	return 0;
}

/* Writes L2 (14 or 18 bytes) and the outer IPv6 headers (0, 40 or 48; the
 * IPv4 ones: xlb_write_ipv4_outer) at the frame's start by direct packet
 * access: a constant size per case,
 * so each copy is a few wide stores instead of a helper call. */
static __always_inline int xlb_write_headers(struct xdp_md *ctx, const struct xlb_l2 *l2, __u32 l2_len,
					     const union xlb_outer *o, __u32 overhead)
{
	int r;

	r = l2_len == XLB_ETH_LEN ? xlb_write(ctx, 0, l2, XLB_ETH_LEN)
				  : xlb_write(ctx, 0, l2, XLB_ETH_LEN + XLB_VLAN_LEN);
	if (r)
		return r;
	switch (overhead) {
	case 0:
		return 0;
	case XLB_IPV6_LEN:
		return xlb_write(ctx, l2_len, o, XLB_IPV6_LEN);
	case XLB_IPV6_LEN + XLB_UDP_LEN:
		return xlb_write(ctx, l2_len, o, XLB_IPV6_LEN + XLB_UDP_LEN);
	}
	return -1;
}

/* sluice_ipv4_hdr_csum of an option-less header (check field ignored),
 * from its fields: nine 16-bit terms in memory order (the halves of a
 * 32-bit word are its two 16-bit words, whatever the byte order), so the
 * sum stays below 2^20 and two folds end it where the general helper
 * loads the header back in words and folds five times. The result is the
 * same: a non-zero sum folds to its one representative in 1..0xFFFF. */
static __always_inline __sum16 xlb_ipv4_outer_csum(const struct sluice_ipv4_hdr *ip)
{
	__u32 sum = bpf_htons((__u16)(((__u16)ip->version_ihl << 8) | ip->tos)) + ip->total_len + ip->id +
		    ip->frag_off + bpf_htons((__u16)(((__u16)ip->ttl << 8) | ip->protocol)) +
		    (ip->saddr & 0xFFFFu) + (ip->saddr >> 16) + (ip->daddr & 0xFFFFu) + (ip->daddr >> 16);

	sum = (sum & 0xFFFFu) + (sum >> 16);
	sum = (sum & 0xFFFFu) + (sum >> 16);
	return (__sum16)(__u16)~sum;
}

/* Writes L2 and an outer IPv4 header (+ the GUE UDP header) at the start
 * of a frame whose head has already moved: built here from the packet's
 * fields, after bpf_xdp_adjust_head/tail, and stored straight into the
 * frame. Built before those helper calls, as the other headers are, every
 * field and the checksum's inputs lived across two calls (BPF keeps four
 * callee-saved registers: the rest went to the stack and back). The
 * fields come as values, so the general path (xlb_write_ipv4_outer) and
 * the fast path (fast_path.h) write the same bytes from the same code.
 * `id` and `frag_off` are the outer header's, on the wire; `tci` is used
 * when l2_len says tagged. 0, or -1 when the frame is too short (it never
 * is: the inner packet follows). */
static __always_inline int xlb_write_ipv4_outer_fields(struct xdp_md *ctx, __u8 tos, __be16 id, __be16 frag_off,
						       __be16 tci, __be32 saddr, __be32 daddr, const __u8 *dst_mac,
						       const __u8 *src_mac, __u32 flow_hash, __be16 gue_dport,
						       __u8 mode, __u8 ip_proto, __u32 inner_len, __u32 l2_len)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u32 overhead = sluice_encap_overhead(mode, SLUICE_FAMILY_IPV4);
	struct sluice_ipv4_hdr ip;
	struct sluice_udp_hdr udp;
	__u8 *p;

	ip.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
	ip.tos = tos;
	ip.total_len = bpf_htons((__u16)(inner_len + overhead));
	ip.id = id;
	ip.frag_off = frag_off;
	ip.ttl = 64;
	ip.protocol = ip_proto;
	ip.saddr = saddr;
	ip.daddr = daddr;
	ip.check = xlb_ipv4_outer_csum(&ip);

	if (data + XLB_ETH_LEN + XLB_VLAN_LEN + XLB_IPV4_LEN + XLB_UDP_LEN > end)
		return -1;
	/* The MACs in word loads (map values; see xlb_load() on alignment),
	 * straight into the frame, as xlb_fill_l2 lays them out. */
	__builtin_memcpy(__builtin_assume_aligned(data, 8), __builtin_assume_aligned(dst_mac, 8), 6);
	__builtin_memcpy(__builtin_assume_aligned(data + 6, 2), __builtin_assume_aligned(src_mac, 8), 6);
	if (l2_len == XLB_ETH_LEN) {
		*(__be16 *)(data + 12) = bpf_htons(SLUICE_ETH_P_IPV4);
		p = data + XLB_ETH_LEN;
	} else {
		*(__be16 *)(data + 12) = bpf_htons(SLUICE_ETH_P_VLAN);
		*(__be16 *)(data + 14) = tci;
		*(__be16 *)(data + 16) = bpf_htons(SLUICE_ETH_P_IPV4);
		p = data + XLB_ETH_LEN + XLB_VLAN_LEN;
	}
	__builtin_memcpy(__builtin_assume_aligned(p, 8), &ip, XLB_IPV4_LEN);
	if (mode == SLUICE_FWD_GUE) {
		udp.sport = bpf_htons(sluice_gue_sport(flow_hash));
		udp.dport = gue_dport;
		udp.len = bpf_htons((__u16)(XLB_UDP_LEN + inner_len));
		udp.check = 0; /* RFC 768 / RFC 8086: none over IPv4 */
		__builtin_memcpy(__builtin_assume_aligned(p + XLB_IPV4_LEN, 4), &udp, XLB_UDP_LEN);
	}
	return 0;
}

/* The UDP checksum of GUE over IPv6 (RFC 8200 §8.1: never 0): the
 * pseudo-header of saddr -> daddr, `udp` (its check 0) and the inner
 * packet's `inner_len` bytes at `l3_off`, summed where the packet was
 * received, before the frame moves. Both paths' (xlb_encapsulate and the
 * fast path). 0 with *check set, or -1 when the packet cannot be read. */
static __always_inline int xlb_gue6_udp_check(struct xdp_md *ctx, const union sluice_addr *saddr,
					      const union sluice_addr *daddr, const struct sluice_udp_hdr *udp,
					      __u32 l3_off, __u32 inner_len, __sum16 *check)
{
	__u64 sum = sluice_pseudo_sum_v6(saddr, daddr, SLUICE_IPPROTO_UDP, (__u16)(XLB_UDP_LEN + inner_len));

	sum = sluice_csum_add(sum, udp, sizeof(*udp));
	if (xlb_csum_packet(ctx, l3_off, inner_len, &sum))
		return -1;
	*check = sluice_csum_finish(sum);
	if (*check == 0)
		*check = 0xFFFF;
	return 0;
}

/* Ethernet (+ the received tag when l2_len says tagged) at `data`, as
 * xlb_fill_l2 lays it out; the frame holds at least 18 bytes. `dst_mac`
 * and `src_mac` are map values, at least 2-aligned. */
static __always_inline void xlb_write_l2_fields(__u8 *data, const __u8 *dst_mac, const __u8 *src_mac, __u32 l2_len,
						__be16 tci, __u16 ethertype)
{
	__builtin_memcpy(__builtin_assume_aligned(data, 8), __builtin_assume_aligned(dst_mac, 2), 6);
	__builtin_memcpy(__builtin_assume_aligned(data + 6, 2), __builtin_assume_aligned(src_mac, 2), 6);
	if (l2_len == XLB_ETH_LEN) {
		*(__be16 *)(data + 12) = bpf_htons(ethertype);
	} else {
		*(__be16 *)(data + 12) = bpf_htons(SLUICE_ETH_P_VLAN);
		*(__be16 *)(data + 14) = tci;
		*(__be16 *)(data + 16) = bpf_htons(ethertype);
	}
}

/* L2 and the outer IPv6 header (+ GUE's UDP header, its checksum given)
 * of an IPv4 inner packet of `inner_len` bytes, after the head moved:
 * the bytes xlb_encapsulate builds for IPIP 4in6 and GUE over IPv6, from
 * values, as xlb_write_ipv4_outer_fields does for IPv4. The fast path's
 * (fast_path.h); the general path builds these headers before the frame
 * moves. 0, or -1 when the frame is too short (it never is: the inner
 * packet follows). */
static __always_inline int xlb_write_ipv6_outer_fields(struct xdp_md *ctx, __u8 tos, __be16 tci,
						       const union sluice_addr *saddr, const union sluice_addr *daddr,
						       const __u8 *dst_mac, const __u8 *src_mac, __u32 flow_hash,
						       __be16 gue_dport, __sum16 udp_check, __u8 mode, __u32 inner_len,
						       __u32 l2_len)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u32 overhead = sluice_encap_overhead(mode, SLUICE_FAMILY_IPV6);
	__u8 *p;

	if (data + XLB_ETH_LEN + XLB_VLAN_LEN + XLB_IPV6_LEN + XLB_UDP_LEN > end)
		return -1;
	xlb_write_l2_fields(data, dst_mac, src_mac, l2_len, tci, SLUICE_ETH_P_IPV6);
	p = data + l2_len;
	*(__be32 *)p = bpf_htonl((6u << 28) | ((__u32)tos << 20) | (flow_hash & 0xFFFFFu));
	*(__be16 *)(p + 4) = bpf_htons((__u16)(inner_len + overhead - XLB_IPV6_LEN));
	p[6] = mode == SLUICE_FWD_GUE ? SLUICE_IPPROTO_UDP : SLUICE_IPPROTO_IPIP;
	p[7] = 64;
	__builtin_memcpy(__builtin_assume_aligned(p + 8, 8), __builtin_assume_aligned(saddr, 8), 16);
	__builtin_memcpy(__builtin_assume_aligned(p + 24, 8), __builtin_assume_aligned(daddr, 8), 16);
	if (mode == SLUICE_FWD_GUE) {
		*(__be16 *)(p + 40) = bpf_htons(sluice_gue_sport(flow_hash));
		*(__be16 *)(p + 42) = gue_dport;
		*(__be16 *)(p + 44) = bpf_htons((__u16)(XLB_UDP_LEN + inner_len));
		*(__sum16 *)(p + 46) = udp_check;
	}
	return 0;
}

/* xlb_write_ipv4_outer_fields for the general path: the outer ID and DF
 * follow an IPv4 inner header (the core's rule), an IPv6 inner gets ID 0
 * and DF. */
static __always_inline int xlb_write_ipv4_outer(struct xdp_md *ctx, const struct xlb_parsed *pp,
						const struct xlb_encap_params *ep, __u8 mode, __u8 ip_proto,
						__u32 inner_len, __u32 l2_len)
{
	__be16 id, frag_off;

	if (pp->family == SLUICE_FAMILY_IPV4) {
		id = pp->ipv4_id;
		frag_off = pp->ipv4_df ? bpf_htons(SLUICE_IPV4_DF) : 0;
	} else {
		id = 0;
		frag_off = bpf_htons(SLUICE_IPV4_DF);
	}
	return xlb_write_ipv4_outer_fields(ctx, pp->tos, id, frag_off, pp->vlan_tci, ep->outer_src->v4,
					   ep->outer_dst->v4, ep->dst_mac, ep->src_mac, ep->flow_hash, ep->gue_dport,
					   mode, ip_proto, inner_len, l2_len);
}

/* Rewrites the frame to [L2][outer][inner IP packet], padding cut off.
 * Returns XLB_OK, XLB_MTU_EXCEEDED, or a drop reason. */
static __always_inline int xlb_encapsulate(struct xdp_md *ctx, const struct xlb_parsed *pp,
					   const struct xlb_encap_params *ep, __u8 mode, __u8 outer_family)
{
	__u32 overhead = sluice_encap_overhead(mode, outer_family);
	__u32 inner_len = pp->l3_len;
	__u32 l2_len = ep->keep_vlan ? XLB_ETH_LEN + XLB_VLAN_LEN : XLB_ETH_LEN;
	__u8 inner4 = pp->family == SLUICE_FAMILY_IPV4;
	__u8 ip_proto = mode == SLUICE_FWD_GUE ? SLUICE_IPPROTO_UDP : inner4 ? SLUICE_IPPROTO_IPIP : SLUICE_IPPROTO_IPV6;
	__u8 outer4 = mode != SLUICE_FWD_L2DSR && outer_family == SLUICE_FAMILY_IPV4;
	union xlb_outer o;
	struct xlb_l2 l2;
	int tail, head;

	if (inner_len + overhead > ep->mtu)
		return XLB_MTU_EXCEEDED;

	/* IPv6 outer (and L2 DSR's none): built before the frame moves, since
	 * the GUE checksum sums the inner packet where it was received. */
	if (!outer4) {
		__builtin_memset(&o, 0, sizeof(o));
		if (mode != SLUICE_FWD_L2DSR) {
			o.v6.ip.ver_tc_flow =
				bpf_htonl((6u << 28) | ((__u32)pp->tos << 20) | (ep->flow_hash & 0xFFFFFu));
			o.v6.ip.payload_len = bpf_htons((__u16)(inner_len + overhead - XLB_IPV6_LEN));
			o.v6.ip.nexthdr = ip_proto;
			o.v6.ip.hop_limit = 64;
			o.v6.ip.saddr = *ep->outer_src;
			o.v6.ip.daddr = *ep->outer_dst;
			if (mode == SLUICE_FWD_GUE) {
				__sum16 check;

				o.v6.udp.sport = bpf_htons(sluice_gue_sport(ep->flow_hash));
				o.v6.udp.dport = ep->gue_dport;
				o.v6.udp.len = bpf_htons((__u16)(XLB_UDP_LEN + inner_len));
				o.v6.udp.check = 0;
				if (xlb_gue6_udp_check(ctx, ep->outer_src, ep->outer_dst, &o.v6.udp, pp->l3_off, inner_len,
						       &check))
					return SLUICE_DROP_INTERNAL;
				o.v6.udp.check = check;
			}
		}
		xlb_fill_l2(&l2, ep->dst_mac, ep->src_mac, ep->keep_vlan, pp->vlan_tci,
			    outer_family == SLUICE_FAMILY_IPV4 ? SLUICE_ETH_P_IPV4 : SLUICE_ETH_P_IPV6);
	}

	/* The inner packet stays; the head moves to fit the new headers
	 * (negative: grows into the headroom) and padding is cut. */
	head = (int)pp->l3_off - (int)(overhead + l2_len);
	if (head != 0 && bpf_xdp_adjust_head(ctx, head))
		return SLUICE_DROP_NO_HEADROOM;
	tail = (int)(pp->l3_off + inner_len) - (int)pp->frame_len;
	if (tail != 0 && bpf_xdp_adjust_tail(ctx, tail))
		return SLUICE_DROP_INTERNAL;
	if (outer4)
		return xlb_write_ipv4_outer(ctx, pp, ep, mode, ip_proto, inner_len, l2_len) ? SLUICE_DROP_INTERNAL
											      : XLB_OK;
	if (xlb_write_headers(ctx, &l2, l2_len, &o, overhead))
		return SLUICE_DROP_INTERNAL;
	return XLB_OK;
}

#endif /* SLUICE_XDP_ENCAP_H */
