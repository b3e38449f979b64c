/* ICMP "fragmentation needed" / ICMPv6 "packet too big" built in place of a
 * packet that would exceed the egress MTU once encapsulated, with the
 * core's choices (dataplane/core/icmp.h): source = the VIP, the received IP
 * packet quoted up to 576 (IPv4) / 1280 (IPv6) bytes in all, TTL 64, ID 0,
 * no DF, back to the sender's MAC with its VLAN tag. Sent with XDP_TX. */
#ifndef SLUICE_XDP_ICMP_H
#define SLUICE_XDP_ICMP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/checksum.h"
#include "abi/wire.h"
#include "xdp/csum.h"
#include "xdp/encap.h"
#include "xdp/filters.h"
#include "xdp/maps.h"
#include "xdp/parse.h"

#define XLB_ICMP4_MAX_LEN 576u
#define XLB_ICMP6_MAX_LEN 1280u
/* IPv6's minimum link MTU (RFC 8200 §5): no "packet too big" reports less. */
#define XLB_ICMP6_MIN_MTU 1280u

/* 1 when this CPU may generate one more ICMP error now, 0 when its bucket
 * is empty (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8): the core's
 * IcmpErrorLimiter (dataplane/core/icmp_limit.h) per CPU, with the same
 * arithmetic. A node limit different from the one the bucket was set up
 * for (first use, or a reload changed it) resets the bucket, full, now. */
static __always_inline int xlb_icmp_error_allowed(const struct sluice_node_config *node)
{
	__u32 zero = 0;
	struct sluice_carried_bucket *ib = bpf_map_lookup_elem(&sluice_icmp_bucket, &zero);
	__u64 now = bpf_ktime_get_ns();

	if (!ib)
		return 0; /* cannot happen (array of one): send nothing rather than unlimited */
	if (ib->bucket.rate_per_sec != node->icmp_errors_per_sec || ib->bucket.burst != node->icmp_errors_burst) {
		ib->bucket.rate_per_sec = node->icmp_errors_per_sec;
		ib->bucket.burst = node->icmp_errors_burst;
		ib->bucket.tokens = node->icmp_errors_burst << XLB_TOKEN_SHIFT;
		ib->bucket.last_ns = now;
		ib->carry = 0;
	}
	return xlb_token_bucket_take(ib, now);
}

struct xlb_icmp_out {
	union {
		struct sluice_ipv4_hdr v4;
		struct sluice_ipv6_hdr v6;
	} ip;
	struct sluice_icmp_hdr icmp; /* follows the IPv4 header at 20, the IPv6 one at 40 */
};

/* Rewrites the frame into the error; 0, or -1 when the headroom cannot take
 * the new headers or a helper refuses (the caller drops MTU_EXCEEDED). */
static __always_inline int xlb_build_packet_too_big(struct xdp_md *ctx, const struct xlb_parsed *pp,
						    const __u8 *our_mac, __u32 reported_mtu)
{
	__u8 v4 = pp->family == SLUICE_FAMILY_IPV4;
	__u32 ip_len = v4 ? XLB_IPV4_LEN : XLB_IPV6_LEN;
	__u32 hdrs = ip_len + XLB_ICMP_LEN;
	__u32 max_len = v4 ? XLB_ICMP4_MAX_LEN : XLB_ICMP6_MAX_LEN;
	__u32 quoted = pp->l3_len < max_len - hdrs ? pp->l3_len : max_len - hdrs;
	struct sluice_icmp_hdr ih;
	__u8 hdr[XLB_IPV6_LEN + XLB_ICMP_LEN];
	__u8 client_mac[6];
	struct xlb_l2 l2;
	__u64 sum = 0;
	int tail;

	if (xlb_load(ctx, 6, client_mac, sizeof(client_mac)))
		return -1;
	__builtin_memset(&ih, 0, sizeof(ih));
	__builtin_memset(hdr, 0, sizeof(hdr));
	if (v4) {
		struct sluice_ipv4_hdr h;

		ih.type = SLUICE_ICMP_DEST_UNREACH;
		ih.code = SLUICE_ICMP_FRAG_NEEDED;
		ih.un.frag.mtu = bpf_htons((__u16)reported_mtu);
		sum = sluice_csum_add(0, &ih, sizeof(ih));
		if (xlb_csum_packet(ctx, pp->l3_off, quoted, &sum))
			return -1;
		ih.check = sluice_csum_finish(sum);

		__builtin_memset(&h, 0, sizeof(h));
		h.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
		h.total_len = bpf_htons((__u16)(hdrs + quoted));
		h.ttl = 64;
		h.protocol = SLUICE_IPPROTO_ICMP;
		h.saddr = pp->dst.v4;
		h.daddr = pp->src.v4;
		h.check = sluice_ipv4_hdr_csum(&h, sizeof(h));
		__builtin_memcpy(hdr, &h, sizeof(h));
		__builtin_memcpy(hdr + XLB_IPV4_LEN, &ih, sizeof(ih));
	} else {
		struct sluice_ipv6_hdr h;

		ih.type = SLUICE_ICMPV6_PKT_TOOBIG;
		ih.code = 0;
		ih.un.mtu6 = bpf_htonl(reported_mtu);
		sum = sluice_pseudo_sum_v6(&pp->dst, &pp->src, SLUICE_IPPROTO_ICMPV6, XLB_ICMP_LEN + quoted);
		sum = sluice_csum_add(sum, &ih, sizeof(ih));
		if (xlb_csum_packet(ctx, pp->l3_off, quoted, &sum))
			return -1;
		ih.check = sluice_csum_finish(sum);

		__builtin_memset(&h, 0, sizeof(h));
		h.ver_tc_flow = bpf_htonl(6u << 28);
		h.payload_len = bpf_htons((__u16)(XLB_ICMP_LEN + quoted));
		h.nexthdr = SLUICE_IPPROTO_ICMPV6;
		h.hop_limit = 64;
		h.saddr = pp->dst;
		h.daddr = pp->src;
		__builtin_memcpy(hdr, &h, sizeof(h));
		__builtin_memcpy(hdr + XLB_IPV6_LEN, &ih, sizeof(ih));
	}
	xlb_fill_l2(&l2, client_mac, our_mac, pp->has_vlan, pp->vlan_tci,
		    v4 ? SLUICE_ETH_P_IPV4 : SLUICE_ETH_P_IPV6);

	/* The received IP packet stays where it is; the new headers go in
	 * front of it and the quote ends `quoted` bytes into it. */
	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		return -1;
	tail = (int)(pp->l3_off + quoted) - (int)pp->frame_len;
	if (tail != 0 && bpf_xdp_adjust_tail(ctx, tail))
		return -1;
	if (xlb_store(ctx, 0, &l2, pp->l3_off, sizeof(l2)))
		return -1;
	if (xlb_store(ctx, pp->l3_off, hdr, hdrs, sizeof(hdr)))
		return -1;
	return 0;
}

#endif /* SLUICE_XDP_ICMP_H */
