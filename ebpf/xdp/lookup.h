/* Service, backend and connection lookups of xdp_lb: the VIP table (exact
 * port, then port 0), the fragment service of a VIP address, the Maglev
 * pick (slot = sluice_flow_hash % M, as the core's fastmod computes it) from
 * the ring the VIP entry names. The connection table is in conn_table.h. */
#ifndef SLUICE_XDP_LOOKUP_H
#define SLUICE_XDP_LOOKUP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/flow.h"
#include "abi/tables.h"
#include "xdp/maps.h"
#include "xdp/parse.h"

static __always_inline struct sluice_vip_addr_info *xlb_vip_address(__u8 family, const union sluice_addr *addr)
{
	struct sluice_vip_key vk;

	__builtin_memset(&vk, 0, sizeof(vk));
	vk.addr = *addr;
	vk.family = family;
	return bpf_map_lookup_elem(&sluice_vip_addrs_v1, &vk);
}

/* The core's ForwardingState::find_service. */
static __always_inline struct sluice_vip_meta *xlb_find_service(const struct sluice_flow_key *key)
{
	struct sluice_vip_meta *meta;
	struct sluice_vip_key vk;

	__builtin_memset(&vk, 0, sizeof(vk));
	vk.addr = key->dst;
	vk.port = key->dport;
	vk.proto = key->proto;
	vk.family = key->family;
	meta = bpf_map_lookup_elem(&sluice_vips_v1, &vk);
	if (!meta && key->dport != 0) {
		vk.port = 0;
		meta = bpf_map_lookup_elem(&sluice_vips_v1, &vk);
	}
	return meta;
}

/* Set by the loader before loading: 1 where loads are not reordered with
 * other loads (x86-64, TSO). The cache needs that: a packet that reads the
 * new generation must not then find the old service entry, and BPF has no
 * read barrier to say so on a weakly ordered CPU, where the cache is off. */
const volatile __u8 xlb_vip_cache_on = 0;

/* xlb_find_service through this CPU's cache (see sluice_vip_cache in
 * maps.h). The meta returned may be the cache's copy; *slot is then its
 * cache entry, else NULL. */
static __always_inline struct sluice_vip_meta *xlb_find_service_slot(const struct sluice_flow_key *key,
								      struct xlb_vip_cache_entry **slot)
{
	const __u32 *a = key->dst.v6;
	struct xlb_vip_cache_entry *c;
	struct sluice_vip_meta *meta;
	__u32 zero = 0, h;
	__u64 *gen, g;

	*slot = 0;
	if (!xlb_vip_cache_on)
		return xlb_find_service(key);
	gen = bpf_map_lookup_elem(&sluice_vip_gen, &zero);
	h = a[0] ^ a[1] ^ a[2] ^ a[3] ^ ((__u32)key->dport << 8) ^ key->proto;
	h ^= h >> 16;
	h ^= h >> 8;
	h &= SLUICE_XDP_VIP_CACHE - 1;
	c = bpf_map_lookup_elem(&sluice_vip_cache, &h);
	if (!gen || !c)
		return xlb_find_service(key);
	/* Read once: the slot is filled with the generation read before the
	 * service lookup, never a newer one read after it. */
	g = *(volatile __u64 *)gen;
	if (c->gen == g && c->key.port == key->dport && c->key.proto == key->proto &&
	    c->key.family == key->family && c->key.addr.v6[0] == a[0] && c->key.addr.v6[1] == a[1] &&
	    c->key.addr.v6[2] == a[2] && c->key.addr.v6[3] == a[3]) {
		*slot = c;
		return &c->meta;
	}
	meta = xlb_find_service(key);
	if (meta) {
		c->gen = g;
		c->key.addr = key->dst;
		c->key.port = key->dport;
		c->key.proto = key->proto;
		c->key.family = key->family;
		c->meta = *meta;
		*slot = c;
		return &c->meta;
	}
	return 0;
}

static __always_inline struct sluice_vip_meta *xlb_find_service_cached(const struct sluice_flow_key *key)
{
	struct xlb_vip_cache_entry *slot;

	return xlb_find_service_slot(key, &slot);
}

/* The core's find_fragment_service: the port-0 service of (address,
 * protocol), else its only one. *ambiguous is set for several without a
 * port-0 one. */
static __always_inline struct sluice_vip_meta *xlb_find_fragment_service(const struct sluice_flow_key *key,
									 int *ambiguous)
{
	struct sluice_vip_addr_info *info = xlb_vip_address(key->family, &key->dst);
	struct sluice_vip_key vk;
	__u8 state;

	*ambiguous = 0;
	if (!info)
		return 0;
	state = key->proto == SLUICE_IPPROTO_TCP ? info->frag_tcp : info->frag_udp;
	if (state == SLUICE_FRAG_AMBIGUOUS) {
		*ambiguous = 1;
		return 0;
	}
	if (state != SLUICE_FRAG_SERVICE)
		return 0;
	__builtin_memset(&vk, 0, sizeof(vk));
	vk.addr = key->dst;
	vk.port = key->proto == SLUICE_IPPROTO_TCP ? info->frag_port_tcp : info->frag_port_udp;
	vk.proto = key->proto;
	vk.family = key->family;
	return bpf_map_lookup_elem(&sluice_vips_v1, &vk);
}

/* What the ingress interface's packets need of their two ports (struct
 * sluice_ifport_record: the egress port's MACs, MTU and ifindex, the
 * ingress port's MAC, both ids); NULL when the loader did not map the
 * interface or either port is not present. One copy for the fast path and
 * the general path, so they cannot disagree about which packets have a way
 * out. One array lookup below SLUICE_XDP_IFINDEX_DIRECT; above it the hash
 * map gives the port, whose record sits at SLUICE_XDP_IFINDEX_DIRECT + id
 * of the same map (one map: the verifier's states after the lookup stay
 * the same whichever way it went). */
static __always_inline struct sluice_ifport_record *xlb_egress_port(__u32 ifindex)
{
	struct sluice_ifport_record *rec;
	__u32 *port_id, slot = ifindex;

	if (ifindex >= SLUICE_XDP_IFINDEX_DIRECT) {
		port_id = bpf_map_lookup_elem(&sluice_ifports_v1, &ifindex);
		if (!port_id || *port_id >= SLUICE_MAX_PORTS)
			return 0;
		slot = SLUICE_XDP_IFINDEX_DIRECT + *port_id;
	}
	rec = bpf_map_lookup_elem(&sluice_ifport_records_v1, &slot);
	if (!rec || !(rec->flags & SLUICE_IFPORT_F_READY))
		return 0;
	return rec;
}

/* The backend if it exists and may take packets (live or draining). */
static __always_inline struct sluice_backend *xlb_valid_backend(__u32 id)
{
	struct sluice_backend *b;

	if (id >= SLUICE_MAX_BACKENDS)
		return 0;
	b = bpf_map_lookup_elem(&sluice_backends_v1, &id);
	return b && (b->flags & SLUICE_BACKEND_F_VALID) ? b : 0;
}

/* Maglev: ring[hash % M] of the ring the VIP entry names. ring_id and
 * ring_size come from one hash-map element, so they always belong together.
 * SLUICE_BACKEND_NONE also when the ring is missing (fail closed). */
static __always_inline __u32 xlb_ring_pick(const struct sluice_vip_meta *meta, __u32 hash)
{
	__u32 ring_id = meta->ring_id, slot;
	__u32 *entry;
	void *ring;

	if (meta->ring_size == 0)
		return SLUICE_BACKEND_NONE;
	ring = bpf_map_lookup_elem(&sluice_rings_v1, &ring_id);
	if (!ring)
		return SLUICE_BACKEND_NONE;
	slot = hash % meta->ring_size;
	entry = bpf_map_lookup_elem(ring, &slot);
	return entry ? *entry : SLUICE_BACKEND_NONE;
}

#endif /* SLUICE_XDP_LOOKUP_H */
