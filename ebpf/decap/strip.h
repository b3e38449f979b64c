/* Removal of the outer headers for tc_decap.bpf.c, once parse.h has decided
 * the packet is ours. After it the skb looks as if the inner packet had
 * arrived on the device: the stack routes it to the VIP on loopback. */
#ifndef SLUICE_DECAP_STRIP_H
#define SLUICE_DECAP_STRIP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/wire.h"
#include "decap/parse.h"

/* IPv6 minus IPv4 header size: what bpf_skb_change_proto adds or removes. */
#define DECAP_FAMILY_DELTA ((__s32)(sizeof(struct sluice_ipv6_hdr) - sizeof(struct sluice_ipv4_hdr)))

/* Returns 0, or < 0 when a helper failed; the packet may then be half
 * rewritten and must be dropped. BPF_ADJ_ROOM_MAC removes bytes right after
 * the Ethernet header. FIXED_GSO: a GRO-merged packet keeps its segment
 * size, since every inner segment is as long as before.
 *
 * When the families differ (4in6, 6in4), bpf_skb_adjust_room alone would
 * leave skb->protocol on the outer family (kernels before 6.3 have no
 * DECAP_L3 flags), so bpf_skb_change_proto switches it first; it also moves
 * the headroom by 20 bytes (pops for 6->4, pushes for 4->6), which the
 * following shrink accounts for. The Ethernet type is rewritten too, so
 * packet sockets (tcpdump) see a consistent frame. */
static __always_inline int decap_strip(struct __sk_buff *skb, const struct decap_plan *plan)
{
	const __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	__s32 room = -(__s32)plan->strip_len;

	if (plan->inner_family != plan->outer_family) {
		__be16 inner_proto;

		if (plan->inner_family == SLUICE_FAMILY_IPV4) {
			inner_proto = bpf_htons(ETH_P_IP);
			room += DECAP_FAMILY_DELTA;
		} else {
			inner_proto = bpf_htons(ETH_P_IPV6);
			room -= DECAP_FAMILY_DELTA;
		}
		if (bpf_skb_change_proto(skb, inner_proto, 0) < 0)
			return -1;
		if (bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, flags) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, __builtin_offsetof(struct sluice_eth_hdr, ethertype), &inner_proto,
					sizeof(inner_proto), 0) < 0)
			return -1;
	} else if (bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, flags) < 0) {
		return -1;
	}
	/* The receive hash was taken over the outer header: let RPS and
	 * sockets hash the inner flow. */
	bpf_set_hash_invalid(skb);
	return 0;
}

#endif /* SLUICE_DECAP_STRIP_H */
