/* The flow key and the flow hash. Both data planes hash the same key with
 * the same function, so a packet picks the same Maglev slot (and the same
 * GUE source port) whether a DPDK or an XDP node receives it; the test
 * tests/ebpf/flow_hash_parity_test.cpp proves it bit for bit. */
#ifndef SLUICE_ABI_FLOW_H
#define SLUICE_ABI_FLOW_H

#include "types.h"

/* A client→VIP 5-tuple. For ICMP errors the data planes build the key of
 * the embedded flow as the client sent it (embedded source and destination
 * swapped back), so the error follows its flow. For IP fragments the ports
 * are zero (a non-first fragment has none), which steers every fragment of
 * a datagram to one backend. Unused address bytes and pad are zero, so a key
 * can be compared and hashed as raw memory. */
struct sluice_flow_key {
	union sluice_addr src;      /* client address */
	union sluice_addr dst;      /* VIP address */
	__be16 sport;               /* client port, 0 for fragments */
	__be16 dport;               /* VIP port, 0 for fragments */
	__u8 proto;                 /* SLUICE_IPPROTO_TCP or _UDP */
	__u8 family;                /* SLUICE_FAMILY_IPV4 or _IPV6 */
	__u8 pad[2];                /* zero */
};

/* Multiplicative mixing with 64-bit multiplies and shifts only: no CRC32C
 * (not in BPF), no rotate (three BPF instructions each), no table lookups.
 * Each 64-bit word is folded with xor-multiply-xorshift, and the result is
 * finished with MurmurHash3's fmix64, so that every input bit reaches the
 * low bits that `hash % M` and the GUE source port use (Linux picks
 * ephemeral ports of one parity: low bits alone would send all of a
 * client's connections to one backend). */
#define SLUICE_FLOW_HASH_SEED 0x736c756963650001ULL /* "sluice" + version 1 */
#define SLUICE_FLOW_HASH_MUL 0x9E3779B97F4A7C15ULL

SLUICE_ABI_INLINE __u64 sluice_hash_fold(__u64 h, __u64 word)
{
	h ^= word;
	h *= SLUICE_FLOW_HASH_MUL;
	h ^= h >> 32;
	return h;
}

SLUICE_ABI_INLINE __u32 sluice_hash_finish(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (__u32)h;
}

/* The flow hash. Words are the key's fields as they lie in memory (network
 * order bytes read as host words), so no byte swapping is spent on it. The
 * family selects how many address words enter: two for IPv4, eight for
 * IPv6; ports, protocol and family always do. */
SLUICE_ABI_INLINE __u32 sluice_flow_hash(const struct sluice_flow_key *key)
{
	__u64 h = SLUICE_FLOW_HASH_SEED;
	__u64 ports = ((__u64)key->sport << 48) | ((__u64)key->dport << 32) |
		      ((__u64)key->proto << 8) | (__u64)key->family;

	if (key->family == SLUICE_FAMILY_IPV6) {
		h = sluice_hash_fold(h, ((__u64)key->src.v6[0] << 32) | key->src.v6[1]);
		h = sluice_hash_fold(h, ((__u64)key->src.v6[2] << 32) | key->src.v6[3]);
		h = sluice_hash_fold(h, ((__u64)key->dst.v6[0] << 32) | key->dst.v6[1]);
		h = sluice_hash_fold(h, ((__u64)key->dst.v6[2] << 32) | key->dst.v6[3]);
	} else {
		h = sluice_hash_fold(h, ((__u64)key->src.v4 << 32) | key->dst.v4);
	}
	h = sluice_hash_fold(h, ports);
	return sluice_hash_finish(h);
}

/* GUE source port from the flow hash: in the dynamic range 49152-65535 so
 * it never collides with a service port, varied per flow so the backend's
 * NIC RSS spreads flows over its queues. Host order. */
SLUICE_ABI_INLINE __u16 sluice_gue_sport(__u32 flow_hash)
{
	return (__u16)(49152u | (flow_hash >> 18));
}

#endif /* SLUICE_ABI_FLOW_H */
