/* Source ACL and per-VIP token buckets for xdp_lb, with the semantics of
 * dataplane/filter/ (acl.h, rate_limit.h): ACL first (a denied source must
 * not spend a VIP's tokens), then packets/s, then new flows/s on a
 * connection-table miss. The loader compiles each ACL scope into the LPM
 * tries so that one longest-prefix lookup per scope decides: deny wins for a
 * prefix in both lists, and a scope with an allow list gets a /0 deny. */
#ifndef SLUICE_XDP_FILTERS_H
#define SLUICE_XDP_FILTERS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/tables.h"
#include "xdp/maps.h"

/* SLUICE_ACL_DENY when the scope's longest match denies, else allow (a
 * scope without a match admits: default-deny scopes carry a /0 entry). */
static __always_inline int xlb_acl_denied(__u8 family, const union sluice_addr *src, __u32 vip_id)
{
	struct sluice_acl_key key;
	__u32 *verdict;

	__builtin_memset(&key, 0, sizeof(key));
	key.vip_id = bpf_htonl(vip_id);
	key.addr = *src;
	if (family == SLUICE_FAMILY_IPV4) {
		key.prefixlen = 32 + 32;
		verdict = bpf_map_lookup_elem(&sluice_acl4_v1, &key);
	} else {
		key.prefixlen = 32 + 128;
		verdict = bpf_map_lookup_elem(&sluice_acl6_v1, &key);
	}
	return verdict && *verdict == SLUICE_ACL_DENY;
}

/* Both scopes must admit: the global one (when it has entries), then the
 * VIP's own (when it has one). */
static __always_inline int xlb_acl_check(__u8 node_flags, __u8 vip_flags, __u8 family,
					 const union sluice_addr *src, __u32 vip_id)
{
	if ((node_flags & SLUICE_NODE_F_GLOBAL_ACL) && xlb_acl_denied(family, src, SLUICE_MAX_VIPS))
		return SLUICE_DROP_ACL_DENY;
	if ((vip_flags & SLUICE_VIP_F_ACL) && xlb_acl_denied(family, src, vip_id))
		return SLUICE_DROP_ACL_DENY;
	return -1;
}

#define XLB_TOKEN_SHIFT 10
#define XLB_NS_PER_SEC 1000000000ull

/* Refills and takes one token from *cb: 1 when taken (or unlimited, rate
 * 0), 0 when empty. The DPDK bucket's arithmetic (core/token_bucket.h),
 * split so every product fits in 64 bits: whole seconds earn rate × 1024
 * units exactly, and the rest of the second (< 2^30 ns) × rate × 2 is
 * divided by 1e9 / 1024 = 1953125 / 2. The sub-unit remainder of that
 * division is carried to the next refill (cb->carry, the DPDK carry / 512),
 * so over any run of refills a bucket earns exactly rate × elapsed however
 * often it is refilled: every packet refills, and without the carry a
 * bucket taking packets faster than rate × 1024 per second would round
 * every refill down to nothing and never refill. The result is the DPDK
 * bucket's exactly for rates up to 2^32/s and bursts below 2^20 (idle
 * 2^20 s or more reads as full, as it does there for such bursts). Rates
 * are capped at 2^32 tokens/s per CPU. */
static __always_inline int xlb_token_bucket_take(struct sluice_carried_bucket *cb, __u64 now)
{
	struct sluice_token_bucket *b = &cb->bucket;
	__u64 one = 1ull << XLB_TOKEN_SHIFT, brim, elapsed, secs, rem, rate, earned, part;

	if (b->rate_per_sec == 0)
		return 1;
	rate = b->rate_per_sec > (1ull << 32) ? (1ull << 32) : b->rate_per_sec;
	brim = (b->burst << XLB_TOKEN_SHIFT) + (one - 1);
	if (now > b->last_ns) {
		elapsed = now - b->last_ns;
		b->last_ns = now;
		secs = elapsed / XLB_NS_PER_SEC;
		rem = elapsed % XLB_NS_PER_SEC;
		if (secs >= (1ull << 20) || b->tokens >= brim) {
			b->tokens = brim;
			cb->carry = 0;
		} else {
			part = rem * rate * 2 + cb->carry;
			earned = secs * (rate << XLB_TOKEN_SHIFT) + part / 1953125;
			if (earned >= brim - b->tokens) {
				b->tokens = brim;
				cb->carry = 0;
			} else {
				b->tokens += earned;
				cb->carry = part % 1953125;
			}
		}
	}
	if (b->tokens < one)
		return 0;
	b->tokens -= one;
	return 1;
}

/* The per-VIP bucket `index` of this CPU (2 * vip_id + SLUICE_XDP_BUCKET_*).
 * A failed lookup (cannot happen: an array within max_entries) admits. */
static __always_inline int xlb_bucket_take(__u32 index, __u64 now)
{
	struct sluice_carried_bucket *cb = bpf_map_lookup_elem(&sluice_buckets_v2, &index);

	return cb ? xlb_token_bucket_take(cb, now) : 1;
}

#endif /* SLUICE_XDP_FILTERS_H */
