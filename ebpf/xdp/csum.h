/* Checksums over packet bytes of any length for xdp_lb: the GUE-over-IPv6
 * UDP checksum (whole inner packet) and the ICMP errors (quoted packet).
 * bpf_csum_diff takes at most 512 bytes, a multiple of 4, from memory the
 * verifier can bound, so the bytes are copied chunk by chunk into a per-CPU
 * scratch buffer whose word after the copy is zeroed first: an odd tail is
 * then padded with zero bytes, exactly as RFC 1071 pads it. Chunks start at
 * multiples of 512 from the region's start, so every byte keeps its place in
 * a 16-bit word and the partial sums add up (memory order, as
 * abi/checksum.h). */
#ifndef SLUICE_XDP_CSUM_H
#define SLUICE_XDP_CSUM_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdp/maps.h"

/* Frames never exceed a page without multi-buffer XDP, which xdp_lb does
 * not declare; 8 chunks cover 4096 bytes. */
#ifndef XLB_CSUM_MAX_CHUNKS
#define XLB_CSUM_MAX_CHUNKS 8
#endif

/* Adds `len` packet bytes at frame offset `off` to *sum. 0, or -1 when a
 * helper refuses (the caller fails closed). */
static __always_inline int xlb_csum_packet(struct xdp_md *ctx, __u32 off, __u32 len, __u64 *sum)
{
	__u32 zero = 0;
	__u64 done = 0, n, whole;
	struct xlb_scratch *s = bpf_map_lookup_elem(&sluice_xdp_scratch, &zero);
	__s64 part;
	int i;

	if (!s)
		return -1;
	for (i = 0; i < XLB_CSUM_MAX_CHUNKS; i++) {
		if (done >= len)
			break;
		n = len - done;
		if (n > XLB_CSUM_CHUNK)
			n = XLB_CSUM_CHUNK;
		if (n < 1)
			return -1;
		barrier_var(n); /* keep the bounds apart: see xlb_store() */
		if (n > XLB_CSUM_CHUNK)
			return -1;
		whole = n & ~3ull;
		if (whole > XLB_CSUM_CHUNK)
			return -1;
		*(__u32 *)&s->buf[whole] = 0;
		if (bpf_xdp_load_bytes(ctx, off + (__u32)done, s->buf, n))
			return -1;
		part = bpf_csum_diff(0, 0, (__be32 *)s->buf, (n + 3) & ~3ull, 0);
		if (part < 0)
			return -1;
		*sum += (__u32)part;
		done += n;
	}
	return done >= len ? 0 : -1;
}

#endif /* SLUICE_XDP_CSUM_H */
