/* The connection table of xdp_lb: dataplane/core/conn_table.h's algorithm
 * (8-way buckets, per-state idle timeouts, least recently seen evicted from
 * a full bucket) on this CPU's partition of sluice_conns_v3. Keep the two in
 * step: tests/ebpf/xdp_conn_table_test.cpp runs the DPDK table's cases here. */
#ifndef SLUICE_XDP_CONN_TABLE_H
#define SLUICE_XDP_CONN_TABLE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"

/* log2 of the buckets per CPU, set by the loader before loading (read-only
 * data: the verifier folds it into the index computation). */
const volatile __u32 xlb_conn_shift = 0;

/* Which partition a CPU uses: its id & this. ~0: each CPU its own (no
 * writes shared between CPUs; for NICs, whose RSS keeps a flow on one
 * CPU). 0: one table shared by every CPU, for interfaces where a flow can
 * change CPU mid-flow (a veth runs the program on the sending CPU, which
 * the scheduler moves): in partitions such a flow would miss on its new
 * CPU and be picked again by the current ring, leaving its backend if the
 * ring changed since it began. Set by the loader
 * (dataplane.xdp.conn_table_mode; read-only, so the verifier knows it).
 * Shared, two CPUs may write one bucket at once without a lock: a new
 * entry can be lost to another CPU's claim of the same way, and its flow
 * is picked again on its next packet (as after an eviction). */
const volatile __u32 xlb_conn_cpu_mask = ~0u;

/* Nanoseconds per jiffy (10^9 / CONFIG_HZ), set by the loader before
 * loading; 0 when it could not read the kernel's HZ. */
const volatile __u64 xlb_ns_per_tick = 0;

/* The connection table's clock, in ns: the time of every last_seen, to
 * which the node's conn_timeout_ns apply. jiffies x tick length, where the
 * loader knows the tick: bpf_jiffies64 is inlined on 64-bit JITs (a load),
 * where bpf_ktime_get_coarse_ns was a helper call, measured at about an
 * eighth of an established packet (perf/xdp_bench). Both are the tick's
 * resolution; idle timeouts are seconds. The epoch is not CLOCK_MONOTONIC's:
 * user space reads this clock through the loader
 * (XdpDataplane::connection_clock_ns), never through clock_gettime. Without
 * the tick length, the coarse monotonic clock (the same resolution). */
static __always_inline __u64 xlb_conn_now(void)
{
	__u64 tick = xlb_ns_per_tick;

	if (tick)
		return bpf_jiffies64() * tick;
	return bpf_ktime_get_coarse_ns();
}

/* This CPU's bucket for a flow hash in `table` (sluice_conns_v3; a
 * parameter so perf/xdp_bench_harness can measure the table alone); NULL
 * on a CPU without a partition (the loader makes one per CPU id up to the
 * highest online at load, or one for all: xlb_conn_cpu_mask). */
static __always_inline struct sluice_conn_bucket *xlb_conn_bucket(void *table, __u32 hash)
{
	__u32 cpu = bpf_get_smp_processor_id() & xlb_conn_cpu_mask;
	__u32 index = (cpu << xlb_conn_shift) | (hash & ((1u << xlb_conn_shift) - 1));

	return bpf_map_lookup_elem(table, &index);
}

/* Keys are zero-padded and 8-byte aligned (xlb_parsed.key, entries): five
 * word compares. */
static __always_inline int xlb_key_equal(const struct sluice_flow_key *a, const struct sluice_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/* The way holding this flow, live or expired, or NULL: a key is in at most
 * one way, since an expired entry is reused by its own flow in place. */
static __always_inline struct sluice_conn_entry *xlb_conn_find(struct sluice_conn_bucket *b,
							       const struct sluice_flow_key *key, __u32 hash)
{
	__u32 used = b->used;

#pragma unroll
	for (int i = 0; i < SLUICE_CONN_WAYS; i++) {
		if (((used >> i) & 1) && b->sig[i] == hash && xlb_key_equal(&b->entries[i].key, key))
			return &b->entries[i];
	}
	return 0;
}

/* Idle for its state's timeout at `now`. In a shared table another CPU
 * may have touched the entry at a later tick than the `now` this CPU
 * read: a last_seen ahead of now is live (the age as signed; timeouts
 * are far below 2^63 ns), as sluice_conn_live_for_reader judges for user
 * space. Unsigned, that entry read as idle for 584 years: a spurious
 * miss that picked the flow again by the current ring (xdp_bench
 * two_cpus same_flow: about one per 400 000 packets of one flow sent
 * from two CPUs at once). */
static __always_inline int xlb_conn_expired(const struct sluice_conn_entry *e, __u64 now,
					    const struct sluice_node_config *node)
{
	return (__s64)(now - e->last_seen) >= (__s64)node->conn_timeout_ns[e->state & (SLUICE_CONN_STATES - 1)];
}

/* A way for a new entry: a free one, else one whose entry expired (its flow
 * is over: not an eviction), else the least recently seen live one
 * (*evicted = 1). Bounded by the ways whatever the load. */
static __always_inline struct sluice_conn_entry *xlb_conn_claim(struct sluice_conn_bucket *b, __u32 hash, __u64 now,
								const struct sluice_node_config *node, int *evicted)
{
	__u32 used = b->used, way = SLUICE_CONN_WAYS, oldest = 0;
	__u64 oldest_seen;

	if (used != SLUICE_CONN_ALL_WAYS) {
#pragma unroll
		for (__u32 i = 0; i < SLUICE_CONN_WAYS; i++) {
			if (!((used >> i) & 1)) {
				way = i;
				break;
			}
		}
		b->used = used | (1u << (way & (SLUICE_CONN_WAYS - 1)));
	} else {
		oldest_seen = b->entries[0].last_seen;
#pragma unroll
		for (__u32 i = 0; i < SLUICE_CONN_WAYS; i++) {
			const struct sluice_conn_entry *e = &b->entries[i];

			if (xlb_conn_expired(e, now, node)) {
				way = i;
				break;
			}
			if (e->last_seen < oldest_seen) {
				oldest = i;
				oldest_seen = e->last_seen;
			}
		}
		if (way == SLUICE_CONN_WAYS) {
			way = oldest;
			*evicted = 1;
		}
	}
	way &= SLUICE_CONN_WAYS - 1;
	b->sig[way] = hash;
	return &b->entries[way];
}

static __always_inline __u8 xlb_conn_initial_state(__u8 proto, __u8 tcp_flags)
{
	if (proto != SLUICE_IPPROTO_TCP)
		return SLUICE_CONN_UDP;
	if (tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST))
		return SLUICE_CONN_TCP_CLOSING;
	if ((tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN)
		return SLUICE_CONN_TCP_TRANSITORY;
	return SLUICE_CONN_TCP_ESTABLISHED; /* mid-flow pick-up (e.g. after a restart): trust it */
}

/* TCP life cycle without sequence numbers (one direction seen): FIN or RST
 * shortens the entry's life to the closing timeout and later packets of the
 * close do not lengthen it again; a new SYN (port reuse) starts over. */
static __always_inline void xlb_conn_touch(struct sluice_conn_entry *e, __u64 now, __u8 tcp_flags)
{
	__u8 state = e->state;

	/* Written once per tick, not per packet: `now` has the tick's
	 * resolution, and an unwritten line stays shared, where a shared
	 * table's other CPUs read it (xdp_bench two_cpus same_flow). */
	if (e->last_seen != now)
		e->last_seen = now;
	if (state == SLUICE_CONN_UDP)
		return;
	if (tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST))
		state = SLUICE_CONN_TCP_CLOSING;
	else if ((tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN)
		state = SLUICE_CONN_TCP_TRANSITORY;
	else if (state == SLUICE_CONN_TCP_TRANSITORY)
		state = SLUICE_CONN_TCP_ESTABLISHED;
	if (state != e->state)
		e->state = state;
}

#endif /* SLUICE_XDP_CONN_TABLE_H */
