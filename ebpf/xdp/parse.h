/* Parsing for xdp_lb: Ethernet (+ one 802.1Q tag), IPv4/IPv6 (extension
 * headers walked to SLUICE_MAX_IPV6_EXTHDRS), TCP/UDP, ICMP/ICMPv6 errors to
 * the flow they quote. A line-by-line port of dataplane/core/parse.h: the
 * same checks in the same order give the same drop reason (parity).
 * Variable offsets are read with bpf_xdp_load_bytes into stack copies, so
 * no packet pointer with a variable offset has to satisfy the verifier;
 * every length is checked against the IP length before the load, and a
 * failed load fails closed with the reason the check would have given. */
#ifndef SLUICE_XDP_PARSE_H
#define SLUICE_XDP_PARSE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"

/* Results of a step besides a drop reason (0..SLUICE_DROP_MAX-1). */
#define XLB_OK (-1)   /* go on */
#define XLB_PASS (-2) /* hand to the kernel: not VIP traffic, ARP, ND */

#define XLB_ETH_LEN 14u
#define XLB_VLAN_LEN 4u
#define XLB_IPV4_LEN 20u
#define XLB_IPV6_LEN 40u
#define XLB_UDP_LEN 8u
#define XLB_TCP_LEN 20u
#define XLB_ICMP_LEN 8u

/* Everything the pipeline learns about a packet; offsets from ctx->data as
 * received (the core's ParsedPacket). */
struct xlb_parsed {
	__u32 frame_len;            /* bytes received */
	__u32 l3_off;               /* 14 or 18 */
	__u32 l4_off;               /* TCP/UDP/ICMP header */
	__u32 l3_len;               /* IP packet bytes per its header */
	__be16 vlan_tci;            /* TCI as on the wire, when has_vlan */
	__be16 ipv4_id;             /* IPv4 identification as on the wire; 0 for IPv6 */
	__u8 family;                /* SLUICE_FAMILY_* */
	__u8 l4_proto;              /* upper-layer protocol */
	__u8 tos;                   /* IPv4 TOS or IPv6 traffic class */
	__u8 tcp_flags;             /* SLUICE_TCP_* or 0 */
	__u8 has_vlan;              /* one 802.1Q tag */
	__u8 ipv4_df;               /* IPv4 DF */
	__u8 fragment;              /* an IP fragment (ports unknown) */
	__u8 icmp_error;            /* key is the quoted flow */
	__u32 pad;                  /* puts key on 8 bytes: the connection table compares it in words */
	union sluice_addr src;      /* received source */
	union sluice_addr dst;      /* received destination */
	struct sluice_flow_key key; /* client→VIP flow */
};

/* Frame offsets never exceed a page (xdp_lb declares no multi-buffer
 * support); the bound lets the verifier accept a packet pointer moved by a
 * variable offset. */
#define XLB_MAX_FRAME_OFF 4096u

/* Copies `len` (a constant) bytes at frame offset `off`; 0 on success, -1
 * when they are not all in the frame (as bpf_xdp_load_bytes fails). Direct
 * packet access: the copy is usually folded into loads of the fields the
 * caller reads, without a helper call or a stack round trip. */
static __always_inline int xlb_load(struct xdp_md *ctx, __u32 off, void *to, __u32 len)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *p;

	if (off > XLB_MAX_FRAME_OFF)
		return -1;
	p = data + off;
	if (p + len > end)
		return -1;
	/* Word loads, not byte loads: the verifier accepts unaligned packet
	 * access (no BPF_F_STRICT_ALIGNMENT), and without the hint clang
	 * assembles every field from single bytes. */
	__builtin_memcpy(to, __builtin_assume_aligned(p, 8), len);
	return 0;
}

/* Writes `len` bytes from `from` (a buffer of at least `max` bytes) at frame
 * offset `off`; 0 on success. The two bounds checks are kept apart
 * (barrier_var) because clang would fold them into one unsigned compare
 * the verifier cannot read as a lower bound. */
static __always_inline int xlb_store(struct xdp_md *ctx, __u32 off, const void *from, __u64 len, __u64 max)
{
	if (len < 1)
		return -1;
	barrier_var(len);
	if (len > max)
		return -1;
	return bpf_xdp_store_bytes(ctx, off, (void *)from, len);
}

static __always_inline int xlb_parse_l2(struct xdp_md *ctx, struct xlb_parsed *pp)
{
	struct sluice_eth_hdr eth;
	struct sluice_vlan_hdr vlan;
	__u16 type;

	if (pp->frame_len < XLB_ETH_LEN || xlb_load(ctx, 0, &eth, sizeof(eth)))
		return SLUICE_DROP_MALFORMED_L2;
	type = bpf_ntohs(eth.ethertype);
	pp->l3_off = XLB_ETH_LEN;
	pp->has_vlan = 0;
	pp->vlan_tci = 0;
	if (type == SLUICE_ETH_P_VLAN) {
		if (pp->frame_len < XLB_ETH_LEN + XLB_VLAN_LEN ||
		    xlb_load(ctx, XLB_ETH_LEN, &vlan, sizeof(vlan)))
			return SLUICE_DROP_MALFORMED_L2;
		pp->has_vlan = 1;
		pp->vlan_tci = vlan.tci;
		type = bpf_ntohs(vlan.ethertype);
		pp->l3_off = XLB_ETH_LEN + XLB_VLAN_LEN;
	}
	if (type == SLUICE_ETH_P_IPV4)
		pp->family = SLUICE_FAMILY_IPV4;
	else if (type == SLUICE_ETH_P_IPV6)
		pp->family = SLUICE_FAMILY_IPV6;
	else
		return XLB_PASS; /* ARP, QinQ, LLDP, ...: the kernel decides */
	return XLB_OK;
}

static __always_inline int xlb_parse_ipv4(struct xdp_md *ctx, struct xlb_parsed *pp)
{
	__u32 avail = pp->frame_len - pp->l3_off;
	struct sluice_ipv4_hdr ip;
	__u32 ihl, total;
	__u16 frag;

	if (avail < XLB_IPV4_LEN || xlb_load(ctx, pp->l3_off, &ip, sizeof(ip)))
		return SLUICE_DROP_MALFORMED_L3;
	ihl = (ip.version_ihl & 0x0Fu) * 4u;
	total = bpf_ntohs(ip.total_len);
	if ((ip.version_ihl >> 4) != 4 || ihl < XLB_IPV4_LEN || ihl > total || total > avail)
		return SLUICE_DROP_MALFORMED_L3;
	frag = bpf_ntohs(ip.frag_off);
	pp->l3_len = total;
	pp->l4_off = pp->l3_off + ihl;
	pp->l4_proto = ip.protocol;
	pp->tos = ip.tos;
	pp->ipv4_id = ip.id;
	pp->ipv4_df = (frag & SLUICE_IPV4_DF) != 0;
	pp->fragment = (frag & (SLUICE_IPV4_MF | SLUICE_IPV4_OFFSET_MASK)) != 0;
	__builtin_memset(&pp->src, 0, sizeof(pp->src));
	__builtin_memset(&pp->dst, 0, sizeof(pp->dst));
	pp->src.v4 = ip.saddr;
	pp->dst.v4 = ip.daddr;
	return XLB_OK;
}

static __always_inline int xlb_parse_ipv6(struct xdp_md *ctx, struct xlb_parsed *pp)
{
	__u32 avail = pp->frame_len - pp->l3_off;
	struct sluice_ipv6_hdr ip;
	__u32 vtf, total;

	if (avail < XLB_IPV6_LEN || xlb_load(ctx, pp->l3_off, &ip, sizeof(ip)))
		return SLUICE_DROP_MALFORMED_L3;
	vtf = bpf_ntohl(ip.ver_tc_flow);
	total = XLB_IPV6_LEN + bpf_ntohs(ip.payload_len);
	if ((vtf >> 28) != 6 || total > avail)
		return SLUICE_DROP_MALFORMED_L3;
	pp->l3_len = total;
	pp->l4_off = pp->l3_off + XLB_IPV6_LEN;
	pp->l4_proto = ip.nexthdr;
	pp->tos = (__u8)(vtf >> 20);
	pp->ipv4_id = 0;
	pp->ipv4_df = 0;
	pp->fragment = 0;
	pp->src = ip.saddr;
	pp->dst = ip.daddr;
	return XLB_OK;
}

/* IPv6 NS/NA with hop limit 255 directly after the fixed header: the
 * kernel's (core: the control thread's), checked before the VIP test since
 * neighbour unreachability detection addresses the VIP itself. */
static __always_inline int xlb_is_neighbor_discovery(struct xdp_md *ctx, const struct xlb_parsed *pp)
{
	__u8 hop_limit, type;

	if (pp->l4_proto != SLUICE_IPPROTO_ICMPV6 || pp->l3_len < XLB_IPV6_LEN + 24u)
		return 0;
	if (xlb_load(ctx, pp->l3_off + 7, &hop_limit, 1) || xlb_load(ctx, pp->l4_off, &type, 1))
		return 0;
	return hop_limit == 255 && (type == SLUICE_ICMPV6_NEIGH_SOLICIT || type == SLUICE_ICMPV6_NEIGH_ADVERT);
}

struct xlb_walk {
	__u32 offset;   /* upper-layer header (frame offset) */
	__u8 proto;     /* upper-layer protocol, or the fragment header's next header */
	__u8 fragment;  /* a non-atomic fragment header was found */
};

static __always_inline int xlb_is_exthdr(__u8 nexthdr)
{
	return nexthdr == SLUICE_IPPROTO_HOPOPTS || nexthdr == SLUICE_IPPROTO_ROUTING ||
	       nexthdr == SLUICE_IPPROTO_DSTOPTS || nexthdr == SLUICE_IPPROTO_FRAGMENT;
}

/* The core's walk_ipv6_exthdrs over frame offsets [off, end): at most
 * SLUICE_MAX_IPV6_EXTHDRS headers, a real fragment ends the walk, an atomic
 * fragment is walked past. */
static __always_inline int xlb_walk_ipv6_exthdrs(struct xdp_md *ctx, __u32 off, __u32 end, __u8 nexthdr,
						 struct xlb_walk *out)
{
	struct sluice_ipv6_frag_hdr fh;
	__u8 opt[2];
	__u32 hlen;
	int i;

	out->fragment = 0;
#pragma unroll
	for (i = 0; i <= SLUICE_MAX_IPV6_EXTHDRS; i++) {
		if (!xlb_is_exthdr(nexthdr))
			break;
		if (i == SLUICE_MAX_IPV6_EXTHDRS || end - off < 8u)
			return SLUICE_DROP_IPV6_EXTHDR_LIMIT;
		if (nexthdr == SLUICE_IPPROTO_FRAGMENT) {
			if (xlb_load(ctx, off, &fh, sizeof(fh)))
				return SLUICE_DROP_IPV6_EXTHDR_LIMIT;
			if ((bpf_ntohs(fh.frag_off) & 0xFFF9u) != 0) {
				out->offset = off;
				out->proto = fh.nexthdr;
				out->fragment = 1;
				return XLB_OK;
			}
			nexthdr = fh.nexthdr;
			off += 8;
		} else {
			if (xlb_load(ctx, off, opt, sizeof(opt)))
				return SLUICE_DROP_IPV6_EXTHDR_LIMIT;
			hlen = ((__u32)opt[1] + 1u) * 8u;
			if (hlen > end - off)
				return SLUICE_DROP_IPV6_EXTHDR_LIMIT;
			nexthdr = opt[0];
			off += hlen;
		}
	}
	out->offset = off;
	out->proto = nexthdr;
	return XLB_OK;
}

static __always_inline void xlb_set_fragment_key(struct xlb_parsed *pp)
{
	__builtin_memset(&pp->key, 0, sizeof(pp->key));
	pp->key.src = pp->src;
	pp->key.dst = pp->dst;
	pp->key.proto = pp->l4_proto;
	pp->key.family = pp->family;
}

static __always_inline int xlb_parse_tcp_udp(struct xdp_md *ctx, struct xlb_parsed *pp)
{
	__u32 end = pp->l3_off + pp->l3_len;
	__u32 avail = end - pp->l4_off;
	__be16 ports[2];

	pp->tcp_flags = 0;
	if (pp->l4_proto == SLUICE_IPPROTO_TCP) {
		__u8 doff_flags[2];
		__u32 doff;

		if (avail < XLB_TCP_LEN || xlb_load(ctx, pp->l4_off + 12, doff_flags, 2))
			return SLUICE_DROP_MALFORMED_L4;
		doff = (doff_flags[0] >> 4) * 4u;
		if (doff < XLB_TCP_LEN || doff > avail)
			return SLUICE_DROP_MALFORMED_L4;
		pp->tcp_flags = doff_flags[1];
	} else {
		__be16 ulen_be;
		__u32 ulen;

		if (avail < XLB_UDP_LEN || xlb_load(ctx, pp->l4_off + 4, &ulen_be, 2))
			return SLUICE_DROP_MALFORMED_L4;
		ulen = bpf_ntohs(ulen_be);
		if (ulen < XLB_UDP_LEN || ulen > avail)
			return SLUICE_DROP_MALFORMED_L4;
	}
	if (xlb_load(ctx, pp->l4_off, ports, sizeof(ports)))
		return SLUICE_DROP_MALFORMED_L4;
	__builtin_memset(&pp->key, 0, sizeof(pp->key));
	pp->key.src = pp->src;
	pp->key.dst = pp->dst;
	pp->key.sport = ports[0];
	pp->key.dport = ports[1];
	pp->key.proto = pp->l4_proto;
	pp->key.family = pp->family;
	return XLB_OK;
}

static __always_inline int xlb_is_icmp_error(__u8 family, __u8 type)
{
	if (family == SLUICE_FAMILY_IPV4)
		return type == SLUICE_ICMP_DEST_UNREACH || type == SLUICE_ICMP_TIME_EXCEEDED;
	return type == SLUICE_ICMPV6_DEST_UNREACH || type == SLUICE_ICMPV6_PKT_TOOBIG ||
	       type == SLUICE_ICMPV6_TIME_EXCEED;
}

/* The core's parse_icmp_error: the quoted packet (backend→client, DSR)
 * gives the client→VIP key with addresses and ports swapped back. */
static __always_inline int xlb_parse_icmp_error(struct xdp_md *ctx, struct xlb_parsed *pp)
{
	__u32 end = pp->l3_off + pp->l3_len;
	__u32 inner = pp->l4_off + XLB_ICMP_LEN;
	__u32 avail, l4;
	union sluice_addr esrc, edst;
	__be16 ports[2];
	__u8 type, proto, frag;
	int r;

	if (end - pp->l4_off < XLB_ICMP_LEN || xlb_load(ctx, pp->l4_off, &type, 1))
		return SLUICE_DROP_MALFORMED_L4;
	if (!xlb_is_icmp_error(pp->family, type))
		return SLUICE_DROP_ICMP_NOT_ERROR;
	avail = end - inner;
	__builtin_memset(&esrc, 0, sizeof(esrc));
	__builtin_memset(&edst, 0, sizeof(edst));
	if (pp->family == SLUICE_FAMILY_IPV4) {
		struct sluice_ipv4_hdr h;
		__u32 ihl;

		if (avail < XLB_IPV4_LEN || xlb_load(ctx, inner, &h, sizeof(h)))
			return SLUICE_DROP_MALFORMED_L4;
		ihl = (h.version_ihl & 0x0Fu) * 4u;
		if ((h.version_ihl >> 4) != 4 || ihl < XLB_IPV4_LEN || ihl > avail)
			return SLUICE_DROP_MALFORMED_L4;
		esrc.v4 = h.saddr;
		edst.v4 = h.daddr;
		proto = h.protocol;
		l4 = ihl;
		frag = (bpf_ntohs(h.frag_off) & (SLUICE_IPV4_MF | SLUICE_IPV4_OFFSET_MASK)) != 0;
	} else {
		struct sluice_ipv6_hdr h;
		struct xlb_walk w;

		if (avail < XLB_IPV6_LEN || xlb_load(ctx, inner, &h, sizeof(h)))
			return SLUICE_DROP_MALFORMED_L4;
		if ((bpf_ntohl(h.ver_tc_flow) >> 28) != 6)
			return SLUICE_DROP_MALFORMED_L4;
		r = xlb_walk_ipv6_exthdrs(ctx, inner + XLB_IPV6_LEN, end, h.nexthdr, &w);
		if (r != XLB_OK)
			return r;
		esrc = h.saddr;
		edst = h.daddr;
		proto = w.proto;
		l4 = w.offset - inner;
		frag = w.fragment;
	}
	if (proto != SLUICE_IPPROTO_TCP && proto != SLUICE_IPPROTO_UDP)
		return SLUICE_DROP_UNSUPPORTED_L4;
	__builtin_memset(&pp->key, 0, sizeof(pp->key));
	pp->key.src = edst;
	pp->key.dst = esrc;
	pp->key.proto = proto;
	pp->key.family = pp->family;
	if (!frag) {
		if (avail - l4 < 8u || xlb_load(ctx, inner + l4, ports, sizeof(ports)))
			return SLUICE_DROP_MALFORMED_L4;
		pp->key.sport = ports[1];
		pp->key.dport = ports[0];
	}
	pp->fragment = frag;
	pp->icmp_error = 1;
	pp->tcp_flags = 0;
	return XLB_OK;
}

#endif /* SLUICE_XDP_PARSE_H */
