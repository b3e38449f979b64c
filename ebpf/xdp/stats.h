/* Per-CPU counters of xdp_lb: every packet ends in exactly one of tx,
 * exception (XDP_PASS) or one drop reason, as on the DPDK path (an ICMP
 * error sent in place of an oversized packet counts as drop MTU_EXCEEDED
 * plus icmp_sent). No atomics: each CPU writes its own copy. */
#ifndef SLUICE_XDP_STATS_H
#define SLUICE_XDP_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/tables.h"
#include "xdp/maps.h"

/* What happened to a packet, for the accounting at the single exit. */
struct xlb_verdict {
	int action;     /* XDP_TX, XDP_REDIRECT, XDP_PASS or XDP_DROP */
	__u8 reason;    /* drop reason; SLUICE_DROP_MAX when none */
	__u8 icmp;      /* an ICMP error replaced the packet (action TX, reason MTU_EXCEEDED) */
};

static __always_inline void xlb_count_counter(void *map, __u32 index, __u64 bytes)
{
	struct sluice_counter *c = bpf_map_lookup_elem(map, &index);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* Adds the packet to the node counters by its verdict. */
static __always_inline void xlb_account(struct sluice_stats *st, const struct xlb_verdict *v, __u64 out_len)
{
	__u32 reason = v->reason;

	if ((v->action == XDP_TX || v->action == XDP_REDIRECT) && !v->icmp) {
		st->tx_packets++;
		st->tx_bytes += out_len;
		return;
	}
	if (v->action == XDP_PASS) {
		st->exception_packets++;
		return;
	}
	if (v->icmp)
		st->icmp_sent++;
	if (reason >= SLUICE_DROP_MAX)
		reason = SLUICE_DROP_INTERNAL;
	st->drops[reason]++;
}

#endif /* SLUICE_XDP_STATS_H */
