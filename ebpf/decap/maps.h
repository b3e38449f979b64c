/* Maps and load-time configuration of tc_decap.bpf.c. The loader fills
 * decap_local (and decap_vips) through the object's file descriptors before
 * it attaches the program, so nothing is pinned and no bpffs is needed (which
 * matters inside `ip netns exec`, where /sys is remounted). */
#ifndef SLUICE_DECAP_MAPS_H
#define SLUICE_DECAP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/tables.h"
#include "abi/wire.h"
#include "decap/decap_abi.h"

/* Defaults serve a program loaded by plain `tc ... bpf obj`: GUE on the
 * standard port, no VIP filter. With decap_local empty such a program
 * decapsulates nothing, which is the safe reading of "not configured". */
const volatile struct sluice_decap_config decap_config = {
	.gue_port = bpf_htons(SLUICE_GUE_DEFAULT_PORT),
	.vip_filter = 0,
};

/* Outer destinations this host accepts encapsulated traffic on. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_DECAP_MAX_LOCAL_ADDRS);
	__type(key, struct sluice_decap_addr_key);
	__type(value, __u32); /* reserved, zero */
} decap_local SEC(".maps");

/* Inner destinations (VIPs) accepted when decap_config.vip_filter is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_DECAP_MAX_VIPS);
	__type(key, struct sluice_decap_addr_key);
	__type(value, __u32); /* reserved, zero */
} decap_vips SEC(".maps");

/* Packets and bytes per outcome, per CPU (no atomics on the hot path). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_DECAP_OUTCOME_MAX);
	__type(key, __u32);
	__type(value, struct sluice_counter);
} decap_stats SEC(".maps");

static __always_inline void decap_count(enum sluice_decap_outcome outcome, __u32 bytes)
{
	__u32 index = outcome;
	struct sluice_counter *counter = bpf_map_lookup_elem(&decap_stats, &index);

	if (counter) {
		counter->packets++;
		counter->bytes += bytes;
	}
}

/* Looks an address up in decap_local or decap_vips. The key is built on the
 * stack with every byte written, because the kernel hashes raw key bytes. */
static __always_inline int decap_addr_known(void *map, const union sluice_addr *addr, __u8 family)
{
	struct sluice_decap_addr_key key;

	__builtin_memset(&key, 0, sizeof(key));
	if (family == SLUICE_FAMILY_IPV4)
		key.addr.v4 = addr->v4;
	else
		key.addr = *addr;
	key.family = family;
	return bpf_map_lookup_elem(map, &key) != NULL;
}

#endif /* SLUICE_DECAP_MAPS_H */
