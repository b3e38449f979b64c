/* The harness of perf/xdp_bench: BPF_PROG_TEST_RUN with repeat=N reuses
 * the frame, so bench_restore undoes the previous iteration (cuts the
 * encapsulation, writes the original headers back), gives the frame the
 * iteration's flow and tail-calls the program under test; the frame the
 * target sees is then the same packet of a fresh flow every time. Two
 * targets measured in the same run besides xdp_lb: bench_pass (the
 * harness's own cost, subtracted), bench_min_ipip (the least an IPIP
 * forwarder must do: no lookup, a fixed outer header) and bench_conn_ipip
 * (bench_min_ipip after one lookup, and on a miss one insert, in xdp_lb's
 * own connection table: the floor that table's kernel code sets). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"

/* Ethernet + IPv4 + the TCP ports: what the harness writes back. */
#define BENCH_HEAD 38

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

/* xdp_lb's sluice_conns_v1 (xdp_bench reuses its fd before loading). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct sluice_flow_key);
	__type(value, struct sluice_conn);
} bench_conns SEC(".maps");

/* Set by xdp_bench before a run (the skeleton's .bss). */
__u32 frame_len;              /* bytes of the frame as given to the run */
__u8 frame_head[BENCH_HEAD];  /* its first bytes */
__u32 flows;                  /* 0: a new flow per iteration; else cycle through this many */
__u32 next_flow;              /* iteration counter, kept across runs */
__u32 restore_failures;       /* frames the harness could not restore (must stay 0) */

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
	f = next_flow++;
	if (flows)
		f %= flows;
	bench_set_flow(data, f + 1);
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

/* The connection-table step alone: xdp_lb's key for the IPv4 TCP frame,
 * one lookup, an insert on a miss (backend 0), then bench_fixed_ipip. */
SEC("xdp")
int bench_conn_ipip(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	struct sluice_flow_key key __attribute__((aligned(8)));
	struct sluice_conn fresh = {}, *c;

	if (data + BENCH_HEAD > end)
		return XDP_ABORTED;
	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memcpy(&key.src.v4, data + 26, 4);
	__builtin_memcpy(&key.dst.v4, data + 30, 4);
	__builtin_memcpy(&key.sport, data + 34, 2);
	__builtin_memcpy(&key.dport, data + 36, 2);
	key.proto = SLUICE_IPPROTO_TCP;
	key.family = SLUICE_FAMILY_IPV4;
	c = bpf_map_lookup_elem(&bench_conns, &key);
	if (!c)
		bpf_map_update_elem(&bench_conns, &key, &fresh, BPF_ANY);
	return bench_fixed_ipip(ctx);
}

char LICENSE[] SEC("license") = "Apache-2.0";
