/* The harness of perf/xdp_bench: BPF_PROG_TEST_RUN with repeat=N reuses
 * the frame, so bench_restore undoes the previous iteration (cuts the
 * encapsulation, writes the original headers back), gives the frame the
 * iteration's flow and tail-calls the program under test; the frame the
 * target sees is then the same packet of a fresh flow every time. Two
 * targets measured in the same run besides xdp_lb: bench_pass (the
 * harness's own cost, subtracted), bench_min_ipip (the least an IPIP
 * forwarder must do: no lookup, a fixed outer header), bench_table_ipip
 * (bench_min_ipip after the flow hash and one probe of xdp_lb's own
 * connection table, on a miss one insert: the floor the table sets, with
 * xdp_lb's own conn_table.h code) and bench_lru_ipip (the same with a
 * kernel BPF_MAP_TYPE_LRU_HASH of 1M entries, what xdp_lb used before
 * sluice_conns_v3: the floor that map's kernel code set). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
#include "xdp/conn_table.h"
#include "xdp_bench_lane.h"

/* Ethernet + IPv4 + the TCP ports: what the harness writes back. */
#define BENCH_HEAD 38

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

/* xdp_lb's sluice_conns_v3 (xdp_bench reuses its fd before loading, and
 * sets xlb_conn_shift and xlb_ns_per_tick as the loader did: one clock for
 * both programs' timestamps). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_conn_bucket);
} bench_conns SEC(".maps");

/* The previous connection table's map type and size (sluice_conns_v1). */
struct bench_lru_value {
	__u32 backend_id;
	__u32 flags;
	__u64 last_seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1048576);
	__type(key, struct sluice_flow_key);
	__type(value, struct bench_lru_value);
} bench_lru SEC(".maps");

/* Timeouts for bench_table_ipip's aging checks (as xdp_bench's node). */
static const struct sluice_node_config bench_node = {
	.conn_timeout_ns = {30000000000ull, 3600000000000ull, 30000000000ull, 60000000000ull},
};

/* Set by xdp_bench before a run (the skeleton's .bss). */
__u32 frame_len;              /* bytes of the frame as given to the run */
__u8 frame_head[BENCH_HEAD];  /* its first bytes */
__u32 flows;                  /* 0: a new flow per iteration; else cycle through this many */
__u32 restore_failures;       /* frames the harness could not restore (must stay 0) */

struct bench_lane lanes[BENCH_LANES]; /* by CPU id & (BENCH_LANES - 1) */

/* The flow number f as xdp_bench's packet() writes it: client
 * 100.(f>>16).(f>>8).f, source port (0x80 | f>>24 & 0x3f, f & 0xff). */
static __always_inline void bench_set_flow(__u8 *h, __u32 f)
{
	h[27] = (__u8)(f >> 16);
	h[28] = (__u8)(f >> 8);
	h[29] = (__u8)f;
	h[34] = (__u8)(0x80 | ((f >> 24) & 0x3f));
	h[35] = (__u8)f;
}

SEC("xdp")
int bench_restore(struct xdp_md *ctx)
{
	int delta = (int)(ctx->data_end - ctx->data) - (int)frame_len;
	struct bench_lane *lane;
	__u8 *data, *end;
	__u32 f;

	/* The target only prepends headers (and leaves the inner packet as
	 * it was): cutting the difference leaves the inner packet at the
	 * original L3 offset. */
	if (delta != 0 && bpf_xdp_adjust_head(ctx, delta))
		goto fail;
	data = (__u8 *)(long)ctx->data;
	end = (__u8 *)(long)ctx->data_end;
	if (data + BENCH_HEAD > end)
		goto fail;
	__builtin_memcpy(data, frame_head, BENCH_HEAD);
	lane = &lanes[bpf_get_smp_processor_id() & (BENCH_LANES - 1)];
	f = lane->next_flow++;
	if (flows)
		f %= flows;
	bench_set_flow(data, lane->flow_base + f + 1);
	bpf_tail_call(ctx, &bench_target, 0);
fail:
	restore_failures++;
	return XDP_ABORTED;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* IPIP with a fixed outer header: grow the head by 20 bytes, write
 * Ethernet and the outer IPv4 header (checksum from a constant partial sum
 * plus the length), send back. */
static __always_inline int bench_fixed_ipip(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u16 total = (__u16)(len - 14 + 20);
	__u32 sum;
	__u8 *data, *end;
	__u16 *w;

	if (bpf_xdp_adjust_head(ctx, -20))
		return XDP_ABORTED;
	data = (__u8 *)(long)ctx->data;
	end = (__u8 *)(long)ctx->data_end;
	if (data + 34 > end)
		return XDP_ABORTED;
	w = (__u16 *)data;
	w[0] = 0x0002; w[1] = 0; w[2] = 0xfe00;     /* 02:00:00:00:00:fe */
	w[3] = 0x0002; w[4] = 0; w[5] = 0x1000;     /* 02:00:00:00:00:10 */
	w[6] = bpf_htons(0x0800);
	w[7] = bpf_htons(0x4500);
	w[8] = bpf_htons(total);
	w[9] = 0; w[10] = 0;
	w[11] = bpf_htons(0x4004);                  /* TTL 64, IPIP */
	w[13] = bpf_htons(0x0a00); w[14] = bpf_htons(0x0001); /* 10.0.0.1 */
	w[15] = bpf_htons(0x0a01); w[16] = bpf_htons(0x0001); /* 10.1.0.1 */
	sum = 0x4500 + 0x4004 + 0x0a00 + 0x0001 + 0x0a01 + 0x0001 + (__u32)total;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	w[12] = bpf_htons((__u16)~sum);
	return XDP_TX;
}

SEC("xdp")
int bench_min_ipip(struct xdp_md *ctx)
{
	return bench_fixed_ipip(ctx);
}

/* xdp_lb's key for the IPv4 TCP frame. */
static __always_inline int bench_key(struct xdp_md *ctx, struct sluice_flow_key *key)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;

	if (data + BENCH_HEAD > end)
		return -1;
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(&key->src.v4, data + 26, 4);
	__builtin_memcpy(&key->dst.v4, data + 30, 4);
	__builtin_memcpy(&key->sport, data + 34, 2);
	__builtin_memcpy(&key->dport, data + 36, 2);
	key->proto = SLUICE_IPPROTO_TCP;
	key->family = SLUICE_FAMILY_IPV4;
	return 0;
}

/* The connection-table step alone on sluice_conns_v3: the flow hash, this
 * CPU's bucket, the probe; on a miss (or an expired entry) an insert
 * pinning backend 0, as xdp_lb would write it; then bench_fixed_ipip. */
SEC("xdp")
int bench_table_ipip(struct xdp_md *ctx)
{
	struct sluice_flow_key key __attribute__((aligned(8)));
	struct sluice_conn_bucket *b;
	struct sluice_conn_entry *e;
	__u64 now = xlb_conn_now();
	__u32 hash;
	int evicted = 0;

	if (bench_key(ctx, &key))
		return XDP_ABORTED;
	hash = sluice_flow_hash(&key);
	b = xlb_conn_bucket(&bench_conns, hash);
	if (!b)
		return XDP_ABORTED;
	e = xlb_conn_find(b, &key, hash);
	if (e && !xlb_conn_expired(e, now, &bench_node)) {
		xlb_conn_touch(e, now, SLUICE_TCP_ACK);
	} else {
		if (!e) {
			e = xlb_conn_claim(b, hash, now, &bench_node, &evicted);
			e->key = key;
		}
		e->backend_id = 0;
		e->state = SLUICE_CONN_TCP_ESTABLISHED;
		e->last_seen = now;
	}
	return bench_fixed_ipip(ctx);
}

/* The same with the kernel LRU hash: one lookup, an insert on a miss. */
SEC("xdp")
int bench_lru_ipip(struct xdp_md *ctx)
{
	struct sluice_flow_key key __attribute__((aligned(8)));
	struct bench_lru_value fresh = {}, *c;

	if (bench_key(ctx, &key))
		return XDP_ABORTED;
	c = bpf_map_lookup_elem(&bench_lru, &key);
	if (!c)
		bpf_map_update_elem(&bench_lru, &key, &fresh, BPF_ANY);
	return bench_fixed_ipip(ctx);
}

char LICENSE[] SEC("license") = "Apache-2.0";
