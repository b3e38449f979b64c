/* Classification for tc_decap.bpf.c: decides whether a packet is one of the
 * encapsulations sluice writes, addressed to this host, and where its inner
 * IP header starts. Reads only (bpf_skb_load_bytes, so non-linear skbs and
 * variable header lengths need no verifier-friendly pointer juggling); the
 * packet is changed afterwards by strip.h, and only when this says so. */
#ifndef SLUICE_DECAP_PARSE_H
#define SLUICE_DECAP_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/tables.h"
#include "abi/wire.h"
#include "decap/decap_abi.h"
#include "decap/maps.h"

/* tc ingress hands BPF the frame from its MAC header; the loader accepts
 * Ethernet devices only, so the network header is at a fixed offset
 * (VLAN tags are already removed into skb metadata before tc ingress). */
#define DECAP_L2_LEN ((__u32)sizeof(struct sluice_eth_hdr))

/* Internal: "not decided yet". Never counted, never returned by the entry. */
#define DECAP_CONTINUE SLUICE_DECAP_OUTCOME_MAX

enum decap_fragment {
	DECAP_NOT_FRAGMENT = 0,     /* whole datagram */
	DECAP_FIRST_FRAGMENT = 1,   /* offset 0, more follow: carries the next header */
	DECAP_LATER_FRAGMENT = 2,   /* offset > 0: payload bytes only */
};

/* The outer IP header as far as decapsulation cares. */
struct decap_outer {
	union sluice_addr dst;      /* outer destination, checked against decap_local */
	__u32 payload_off;          /* offset of the header after the outer IP (and IPv6 extension) headers */
	__u8 family;                /* SLUICE_FAMILY_IPV4 or _IPV6 */
	__u8 proto;                 /* protocol / next header after the outer IP headers */
	__u8 fragment;              /* enum decap_fragment */
	__u8 pad;                   /* zero */
};

/* What strip.h needs to remove the outer headers. */
struct decap_plan {
	__u32 strip_len;            /* bytes from the end of L2 to the inner IP header */
	__u8 outer_family;          /* SLUICE_FAMILY_IPV4 or _IPV6 */
	__u8 inner_family;          /* SLUICE_FAMILY_IPV4 or _IPV6 */
	__u8 pad[2];                /* zero */
};

/* decap_abi.h lists the decapsulated kinds first. */
static __always_inline int decap_outcome_is_decap(enum sluice_decap_outcome outcome)
{
	return outcome <= SLUICE_DECAP_DECAP_GUE_6IN6;
}

/* The counter of a successful decapsulation, by encapsulation and families.
 * Written out rather than computed from the enum order so the mapping reads
 * against decap_abi.h. */
static __always_inline enum sluice_decap_outcome decap_kind(int gue, __u8 outer, __u8 inner)
{
	if (gue) {
		if (outer == SLUICE_FAMILY_IPV4)
			return inner == SLUICE_FAMILY_IPV4 ? SLUICE_DECAP_DECAP_GUE_4IN4 : SLUICE_DECAP_DECAP_GUE_6IN4;
		return inner == SLUICE_FAMILY_IPV4 ? SLUICE_DECAP_DECAP_GUE_4IN6 : SLUICE_DECAP_DECAP_GUE_6IN6;
	}
	if (outer == SLUICE_FAMILY_IPV4)
		return inner == SLUICE_FAMILY_IPV4 ? SLUICE_DECAP_DECAP_IPIP_4IN4 : SLUICE_DECAP_DECAP_IPIP_6IN4;
	return inner == SLUICE_FAMILY_IPV4 ? SLUICE_DECAP_DECAP_IPIP_4IN6 : SLUICE_DECAP_DECAP_IPIP_6IN6;
}

/* A header the kernel would reject itself is not ours to judge: pass it. */
static __always_inline enum sluice_decap_outcome
decap_parse_outer_ipv4(struct __sk_buff *skb, struct decap_outer *outer)
{
	struct sluice_ipv4_hdr ip;
	__u32 ihl_bytes;
	__u16 frag_off;

	if (bpf_skb_load_bytes(skb, DECAP_L2_LEN, &ip, sizeof(ip)) < 0)
		return SLUICE_DECAP_PASS_NOT_ENCAP;
	ihl_bytes = (__u32)(ip.version_ihl & 0x0f) * 4;
	if ((ip.version_ihl >> 4) != 4 || ihl_bytes < sizeof(ip))
		return SLUICE_DECAP_PASS_NOT_ENCAP;

	frag_off = bpf_ntohs(ip.frag_off);
	if (frag_off & SLUICE_IPV4_OFFSET_MASK)
		outer->fragment = DECAP_LATER_FRAGMENT;
	else if (frag_off & SLUICE_IPV4_MF)
		outer->fragment = DECAP_FIRST_FRAGMENT;
	outer->dst.v4 = ip.daddr;
	outer->family = SLUICE_FAMILY_IPV4;
	outer->proto = ip.protocol;
	outer->payload_off = DECAP_L2_LEN + ihl_bytes;
	return DECAP_CONTINUE;
}

/* Walks hop-by-hop, destination-options and fragment headers (Linux ip6tnl
 * senders add a tunnel-encapsulation-limit destination option). A routing
 * header means the destination field may not be the final one: the kernel
 * decides, so the packet passes. */
static __always_inline enum sluice_decap_outcome
decap_parse_outer_ipv6(struct __sk_buff *skb, struct decap_outer *outer)
{
	struct sluice_ipv6_hdr ip6;
	__u32 off = DECAP_L2_LEN + sizeof(ip6);
	__u8 nexthdr;

	if (bpf_skb_load_bytes(skb, DECAP_L2_LEN, &ip6, sizeof(ip6)) < 0)
		return SLUICE_DECAP_PASS_NOT_ENCAP;
	if ((bpf_ntohl(ip6.ver_tc_flow) >> 28) != 6)
		return SLUICE_DECAP_PASS_NOT_ENCAP;
	nexthdr = ip6.nexthdr;

	for (int i = 0; i < SLUICE_MAX_IPV6_EXTHDRS; i++) {
		if (nexthdr == SLUICE_IPPROTO_HOPOPTS || nexthdr == SLUICE_IPPROTO_DSTOPTS) {
			struct sluice_ipv6_opt_hdr opt;

			if (bpf_skb_load_bytes(skb, off, &opt, sizeof(opt)) < 0)
				return SLUICE_DECAP_PASS_NOT_ENCAP;
			nexthdr = opt.nexthdr;
			off += ((__u32)opt.hdrlen + 1) * 8;
		} else if (nexthdr == SLUICE_IPPROTO_FRAGMENT) {
			struct sluice_ipv6_frag_hdr frag;
			__u16 frag_off;

			if (bpf_skb_load_bytes(skb, off, &frag, sizeof(frag)) < 0)
				return SLUICE_DECAP_PASS_NOT_ENCAP;
			frag_off = bpf_ntohs(frag.frag_off);
			if (frag_off & ~7u)
				outer->fragment = DECAP_LATER_FRAGMENT;
			else if (frag_off & 1u)
				outer->fragment = DECAP_FIRST_FRAGMENT;
			/* else an atomic fragment (RFC 6946): a whole datagram */
			nexthdr = frag.nexthdr;
			off += sizeof(frag);
		} else {
			break;
		}
	}

	outer->dst = ip6.daddr;
	outer->family = SLUICE_FAMILY_IPV6;
	outer->proto = nexthdr;  /* still an extension header if the walk ran out: not ours */
	outer->payload_off = off;
	return DECAP_CONTINUE;
}

/* GUE (draft-ietf-intarea-gue): variant 1 has no header, the first byte is
 * the inner IP version nibble (0x4_ or 0x6_, so the two variant bits read
 * 01); variant 0 has a 4-byte header plus hlen words of options, skipped
 * unread. Advances *off to the inner IP header. */
static __always_inline enum sluice_decap_outcome
decap_skip_gue(struct __sk_buff *skb, __u32 *off, __u8 *inner_family)
{
	struct sluice_gue_hdr gue;
	__u8 variant;

	if (bpf_skb_load_bytes(skb, *off, &gue, sizeof(gue)) < 0)
		return SLUICE_DECAP_DROP_MALFORMED;
	variant = gue.ver_c_hlen >> 6;

	if (variant == 1) {
		__u8 version = gue.ver_c_hlen >> 4;

		if (version != SLUICE_FAMILY_IPV4 && version != SLUICE_FAMILY_IPV6)
			return SLUICE_DECAP_DROP_UNSUPPORTED;
		*inner_family = version;
		return DECAP_CONTINUE;
	}
	if (variant != 0 || (gue.ver_c_hlen & 0x20))  /* unknown variant, or C: control message */
		return SLUICE_DECAP_DROP_UNSUPPORTED;
	if (gue.proto_ctype == SLUICE_IPPROTO_IPIP)
		*inner_family = SLUICE_FAMILY_IPV4;
	else if (gue.proto_ctype == SLUICE_IPPROTO_IPV6)
		*inner_family = SLUICE_FAMILY_IPV6;
	else
		return SLUICE_DECAP_DROP_UNSUPPORTED;
	*off += sizeof(gue) + (__u32)(gue.ver_c_hlen & 0x1f) * 4;
	return DECAP_CONTINUE;
}

/* The inner header must be a whole IP header of the family the outer
 * announced; once we know a packet is ours, anything else is malformed. */
static __always_inline enum sluice_decap_outcome
decap_read_inner(struct __sk_buff *skb, __u32 off, __u8 family, union sluice_addr *dst)
{
	__builtin_memset(dst, 0, sizeof(*dst));
	if (family == SLUICE_FAMILY_IPV4) {
		struct sluice_ipv4_hdr ip;

		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return SLUICE_DECAP_DROP_MALFORMED;
		if ((ip.version_ihl >> 4) != 4 || (ip.version_ihl & 0x0f) < 5)
			return SLUICE_DECAP_DROP_MALFORMED;
		dst->v4 = ip.daddr;
	} else {
		struct sluice_ipv6_hdr ip6;

		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return SLUICE_DECAP_DROP_MALFORMED;
		if ((bpf_ntohl(ip6.ver_tc_flow) >> 28) != 6)
			return SLUICE_DECAP_DROP_MALFORMED;
		*dst = ip6.daddr;
	}
	return DECAP_CONTINUE;
}

/* Returns a DECAP_* outcome with *plan filled, or the PASS_/DROP_ outcome
 * that ends the packet. Cheap tests first: most traffic is not
 * encapsulated and leaves after one header read. */
static __always_inline enum sluice_decap_outcome
decap_classify(struct __sk_buff *skb, struct decap_plan *plan)
{
	struct decap_outer outer;
	union sluice_addr inner_dst;
	enum sluice_decap_outcome outcome;
	__u8 inner_family;
	__u32 off;
	int gue = 0;

	__builtin_memset(&outer, 0, sizeof(outer));
	if (skb->protocol == bpf_htons(ETH_P_IP))
		outcome = decap_parse_outer_ipv4(skb, &outer);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		outcome = decap_parse_outer_ipv6(skb, &outer);
	else
		outcome = SLUICE_DECAP_PASS_NOT_ENCAP;
	if (outcome != DECAP_CONTINUE)
		return outcome;
	off = outer.payload_off;

	if (outer.proto == SLUICE_IPPROTO_IPIP) {
		inner_family = SLUICE_FAMILY_IPV4;
	} else if (outer.proto == SLUICE_IPPROTO_IPV6) {
		inner_family = SLUICE_FAMILY_IPV6;
	} else if (outer.proto == SLUICE_IPPROTO_UDP && outer.fragment != DECAP_LATER_FRAGMENT) {
		struct sluice_udp_hdr udp;

		if (bpf_skb_load_bytes(skb, off, &udp, sizeof(udp)) < 0 ||
		    udp.dport != decap_config.gue_port)
			return SLUICE_DECAP_PASS_NOT_ENCAP;
		/* The outer UDP checksum is not verified: the inner transport
		 * checksum covers what the socket receives. */
		off += sizeof(udp);
		gue = 1;
		inner_family = 0;  /* set by decap_skip_gue */
	} else {
		return SLUICE_DECAP_PASS_NOT_ENCAP;
	}

	if (!decap_addr_known(&decap_local, &outer.dst, outer.family))
		return SLUICE_DECAP_PASS_NOT_LOCAL;
	/* sluice never fragments what it encapsulates (it sends ICMP
	 * "too big" instead); a fragment here cannot be stripped alone, and the
	 * kernel cannot decapsulate the reassembled datagram either. Counted so
	 * an MTU problem upstream shows. */
	if (outer.fragment != DECAP_NOT_FRAGMENT)
		return SLUICE_DECAP_PASS_FRAGMENT;

	if (gue) {
		outcome = decap_skip_gue(skb, &off, &inner_family);
		if (outcome != DECAP_CONTINUE)
			return outcome;
	}
	outcome = decap_read_inner(skb, off, inner_family, &inner_dst);
	if (outcome != DECAP_CONTINUE)
		return outcome;
	if (decap_config.vip_filter && !decap_addr_known(&decap_vips, &inner_dst, inner_family))
		return SLUICE_DECAP_PASS_NOT_VIP;

	plan->strip_len = off - DECAP_L2_LEN;
	plan->outer_family = outer.family;
	plan->inner_family = inner_family;
	return decap_kind(gue, outer.family, inner_family);
}

#endif /* SLUICE_DECAP_PARSE_H */
