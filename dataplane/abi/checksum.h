/* Internet checksum helpers (RFC 1071) shared by the DPDK core, the BPF
 * programs and the tests: full sums over a buffer, the IPv4 header checksum,
 * TCP/UDP pseudo-header sums and the RFC 1624 incremental update.
 *
 * All sums are kept in *memory order*: 16-bit words are loaded as the host
 * reads them, and the folded result is stored back the same way. The one's
 * complement sum commutes with byte swapping (RFC 1071 §2(B)), so this gives
 * the right bytes on the wire without a single byte swap (the Linux csum_*
 * convention). Compiles as C11, C++20 and BPF C; BPF programs should sum
 * payloads with bpf_csum_diff() and use these for fixed-size headers only,
 * where the loops below have constant bounds the verifier accepts. */
#ifndef SLUICE_ABI_CHECKSUM_H
#define SLUICE_ABI_CHECKSUM_H

#include "types.h"
#include "wire.h"

/* Adds `len` bytes at `data` to a running 64-bit sum. Eight bytes per step:
 * each step adds two 32-bit halves, so the accumulator cannot overflow for
 * any packet size (2^33 per step, far below 2^64). An odd trailing byte is
 * padded with a zero byte after it, as RFC 1071 requires. */
SLUICE_ABI_INLINE __u64 sluice_csum_add(__u64 sum, const void *data, __u32 len)
{
	const __u8 *p = (const __u8 *)data;
	__u32 i = 0;

	for (; i + 8 <= len; i += 8) {
		__u64 w;
		__builtin_memcpy(&w, p + i, 8);
		sum += (w & 0xFFFFFFFFull) + (w >> 32);
	}
	for (; i + 2 <= len; i += 2) {
		__u16 w;
		__builtin_memcpy(&w, p + i, 2);
		sum += w;
	}
	if (i < len) {
		__u8 last[2] = {p[i], 0};
		__u16 w;
		__builtin_memcpy(&w, last, 2);
		sum += w;
	}
	return sum;
}

/* Folds a running sum to 16 bits (end-around carry), not complemented. */
SLUICE_ABI_INLINE __u16 sluice_csum_fold(__u64 sum)
{
	sum = (sum & 0xFFFFFFFFull) + (sum >> 32);
	sum = (sum & 0xFFFFFFFFull) + (sum >> 32);
	sum = (sum & 0xFFFFu) + (sum >> 16);
	sum = (sum & 0xFFFFu) + (sum >> 16);
	sum = (sum & 0xFFFFu) + (sum >> 16);
	return (__u16)sum;
}

/* The checksum field value for a running sum: the complemented fold. */
SLUICE_ABI_INLINE __sum16 sluice_csum_finish(__u64 sum)
{
	return (__sum16)(__u16)~sluice_csum_fold(sum);
}

/* IPv4 header checksum over `hdr_len` bytes (20 + options). The header's
 * check field must be zero when this is called; store the result in it. */
SLUICE_ABI_INLINE __sum16 sluice_ipv4_hdr_csum(const void *hdr, __u32 hdr_len)
{
	return sluice_csum_finish(sluice_csum_add(0, hdr, hdr_len));
}

/* Pseudo-header sum for TCP/UDP/ICMPv6 over IPv4 (RFC 768 / RFC 793):
 * addresses, zero + protocol, and the L4 length (host order argument). */
SLUICE_ABI_INLINE __u64 sluice_pseudo_sum_v4(__be32 saddr, __be32 daddr, __u8 proto, __u16 l4_len)
{
	__u64 sum = (__u64)saddr + (__u64)daddr;
	sum += SLUICE_HTONS((__u16)proto);
	sum += SLUICE_HTONS(l4_len);
	return sum;
}

/* Pseudo-header sum over IPv6 (RFC 8200 §8.1): addresses, the 32-bit
 * upper-layer length and the next header value. */
SLUICE_ABI_INLINE __u64 sluice_pseudo_sum_v6(const union sluice_addr *saddr, const union sluice_addr *daddr,
					     __u8 proto, __u32 l4_len)
{
	__u64 sum = 0;
	int i;

	for (i = 0; i < 4; i++)
		sum += (__u64)saddr->v6[i] + (__u64)daddr->v6[i];
	sum += SLUICE_HTONL(l4_len);
	sum += SLUICE_HTONL((__u32)proto);
	return sum;
}

/* RFC 1624 eqn. 3 incremental update, HC' = ~(~HC + ~m + m'), for one
 * 16-bit field changed from `old_val` to `new_val` (both as stored). Eqn. 3
 * rather than RFC 1141's HC - ~m - m', which can yield -0 (0xFFFF) where a
 * full recomputation gives 0x0000 (RFC 1624 §3); Linux csum_replace2 too. */
SLUICE_ABI_INLINE __sum16 sluice_csum_replace16(__sum16 check, __be16 old_val, __be16 new_val)
{
	__u64 sum = (__u16)~(__u16)check;
	sum += (__u16)~(__u16)old_val;
	sum += (__u16)new_val;
	return sluice_csum_finish(sum);
}

/* The same for a 32-bit field (an IPv4 address). */
SLUICE_ABI_INLINE __sum16 sluice_csum_replace32(__sum16 check, __be32 old_val, __be32 new_val)
{
	__u64 sum = (__u16)~(__u16)check;
	sum += (__u32)~(__u32)old_val & 0xFFFFu;
	sum += (__u32)~(__u32)old_val >> 16;
	sum += (__u32)new_val & 0xFFFFu;
	sum += (__u32)new_val >> 16;
	return sluice_csum_finish(sum);
}

#endif /* SLUICE_ABI_CHECKSUM_H */
