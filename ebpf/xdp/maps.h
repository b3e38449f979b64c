/* Maps of xdp_lb.bpf.c. Every value type is an ABI struct from
 * dataplane/abi/tables.h, so the loader (ebpf/loader/) and the DPDK path
 * share one definition. Names carry a layout version: change a value layout
 * only with a new suffix, so a restarted sluiced never adopts a pinned map
 * of the old shape. */
#ifndef SLUICE_XDP_MAPS_H
#define SLUICE_XDP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/flow.h"
#include "abi/tables.h"

/* Services (VIP address, port, protocol): several per VIP address. */
#ifndef SLUICE_XDP_MAX_SERVICES
#define SLUICE_XDP_MAX_SERVICES SLUICE_MAX_VIPS
#endif
/* Prefixes per ACL trie (all scopes of one family). */
#ifndef SLUICE_XDP_ACL_ENTRIES
#define SLUICE_XDP_ACL_ENTRIES 65536
#endif
/* Two Maglev rings per VIP: ring_id = 2 * vip_id + generation (0 or 1). */
#define SLUICE_XDP_RING_SLOTS (2 * SLUICE_MAX_VIPS)
/* Token buckets per VIP: packets/s and new flows/s. */
#define SLUICE_XDP_BUCKET_PACKETS 0
#define SLUICE_XDP_BUCKET_NEW_FLOWS 1

/* Services: (VIP address, port or 0, protocol, family) → meta. A hash map on
 * purpose: an update replaces the element as a whole (RCU), so a reader sees
 * the old or the new (ring_id, ring_size) pair, never a mix; an array
 * element is rewritten in place and could be read half-done. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_XDP_MAX_SERVICES);
	__type(key, struct sluice_vip_key);
	__type(value, struct sluice_vip_meta);
} sluice_vips_v1 SEC(".maps");

/* Per-CPU cache of service lookups, so an established packet does not pay
 * the hash map's jhash of the 20-byte key: a direct-mapped slot per
 * (VIP address, port, protocol) holding a copy of the meta found, valid
 * while its generation equals sluice_vip_gen's. The loader bumps that
 * generation after every change to sluice_vips_v1 and before it waits for
 * readers (ring reuse), so no packet that starts after a change uses a
 * copy from before it. Working memory of one load: never pinned. */
#define SLUICE_XDP_VIP_CACHE 64
struct xlb_vip_cache_entry {
	struct sluice_vip_key key;   /* the packet's (address, port, protocol, family) */
	__u32 pad;                   /* zero; puts gen on 8 bytes */
	__u64 gen;                   /* sluice_vip_gen when filled; 0 = empty */
	struct sluice_vip_meta meta; /* what xlb_find_service returned for key */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_XDP_VIP_CACHE);
	__type(key, __u32);
	__type(value, struct xlb_vip_cache_entry);
} sluice_vip_cache SEC(".maps");

/* The service table's generation (one entry, >= 1): see sluice_vip_cache. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sluice_vip_gen SEC(".maps");

/* VIP addresses (port 0, proto 0 in the key) → where fragments go. A miss
 * means "not VIP traffic": XDP_PASS. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_VIPS);
	__type(key, struct sluice_vip_key);
	__type(value, struct sluice_vip_addr_info);
} sluice_vip_addrs_v1 SEC(".maps");

/* One Maglev ring: ring_size backend ids. Each ring is its own inner map
 * of exactly its size (BPF_F_INNER_MAP lets sizes differ), so memory is the
 * sum of the real ring sizes rather than 2 × SLUICE_MAX_VIPS × the largest
 * M (2.7 GB at M = 655373 and 512 VIPs). */
struct sluice_ring_inner_v1 {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, sluice_ring_entry);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SLUICE_XDP_RING_SLOTS);
	__type(key, __u32);
	__array(values, struct sluice_ring_inner_v1);
} sluice_rings_v1 SEC(".maps");

/* Backends by dense id. Written in place by the loader: a backend is
 * written before any ring names it and cleared only after none does. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sluice_backend);
} sluice_backends_v1 SEC(".maps");

/* Connection table: the DPDK plane's set-associative table (see
 * dataplane/abi/tables.h) in one array of buckets, partitioned per CPU:
 * bucket (cpu << xlb_conn_shift) | (hash & mask), so each CPU writes only
 * its own partition and needs no lock (XDP never runs concurrently with
 * itself on one CPU). An array lookup is inlined by the verifier (an
 * address computation): no hashing of the key, no LRU list, no spin lock,
 * which the kernel's LRU hash paid for on every packet. The loader sets
 * max_entries (CPUs x buckets per CPU) before loading; the array is
 * mmapable so the loader reads and edits it without a syscall per bucket.
 * v1 was a BPF_MAP_TYPE_LRU_HASH of struct sluice_conn; v2 the same
 * buckets with last_seen on CLOCK_MONOTONIC_COARSE, where v3 keeps it on
 * the jiffies clock (conn_table.h: xlb_conn_now), another epoch. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);  /* set by the loader */
	__type(key, __u32);
	__type(value, struct sluice_conn_bucket);
} sluice_conns_v3 SEC(".maps");

/* Ports by id, as configured. The packet path reads them only through
 * the records of sluice_ifport_records_v1 below, which the loader derives
 * from this map and the bindings; a restart reads both back. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct sluice_port_config);
} sluice_ports_v1 SEC(".maps");

/* Ingress interface → what its packets need of both ports (struct
 * sluice_ifport_record), one inlined array lookup per packet where the
 * chain ifindex → port id → ingress port → egress port took three. Element
 * ifindex for ifindexes below SLUICE_XDP_IFINDEX_DIRECT; element
 * SLUICE_XDP_IFINDEX_DIRECT + port id for a port's interfaces above it,
 * which sluice_ifports_v1 maps to their port first. The loader rewrites
 * the records after every write of sluice_ports_v1 or of a binding.
 * 32 bytes x 64k elements: 2 MiB, of which a packet touches one line.
 * Replaces sluice_ifport_index_v1 (ifindex → port id + 1), whose pin a
 * restart reads for the bindings it holds, then removes. */
#ifndef SLUICE_XDP_IFINDEX_DIRECT
#define SLUICE_XDP_IFINDEX_DIRECT 65536
#endif
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_XDP_IFINDEX_DIRECT + SLUICE_MAX_PORTS);
	__type(key, __u32); /* ifindex, or SLUICE_XDP_IFINDEX_DIRECT + port id */
	__type(value, struct sluice_ifport_record);
} sluice_ifport_records_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_PORTS);
	__type(key, __u32);   /* ifindex >= SLUICE_XDP_IFINDEX_DIRECT */
	__type(value, __u32); /* port id */
} sluice_ifports_v1 SEC(".maps");

/* Node settings: one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_node_config);
} sluice_node_v3 SEC(".maps");  /* v1: one conn timeout; v2: no ICMP-error limit */

/* Source ACL, one trie per family; the key's vip_id (big-endian) scopes
 * every prefix, so a longest match never crosses scopes. Value:
 * SLUICE_ACL_ALLOW or SLUICE_ACL_DENY. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_XDP_ACL_ENTRIES);
	__type(key, struct sluice_acl_key);
	__type(value, __u32);
} sluice_acl4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_XDP_ACL_ENTRIES);
	__type(key, struct sluice_acl_key);
	__type(value, __u32);
} sluice_acl6_v1 SEC(".maps");

/* Per-CPU token buckets: index 2 * vip_id + SLUICE_XDP_BUCKET_*. The loader
 * gives each CPU its share of the rate, as the DPDK path does per worker.
 * v1: struct sluice_token_bucket, no refill remainder. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * SLUICE_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct sluice_carried_bucket);
} sluice_buckets_v2 SEC(".maps");

/* Counters, per CPU: node totals, per VIP, per backend. v1: sluice_stats
 * without icmp_rate_limited. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_stats);
} sluice_stats_v2 SEC(".maps");

/* Each CPU's bucket of ICMP errors it may still generate (xdp/icmp.h), set
 * up from the node map's icmp_errors_per_sec / _burst on first use and
 * again whenever they change. Working memory of one load, never pinned: a
 * restart starts every bucket full, as a DPDK restart does. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_carried_bucket); /* rate and burst: those it was set up for */
} sluice_icmp_bucket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct sluice_counter);
} sluice_vip_stats_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sluice_counter);
} sluice_backend_stats_v1 SEC(".maps");

/* Checksum scratch: one chunk of packet bytes plus a zero word of padding. */
#define XLB_CSUM_CHUNK 512
struct xlb_scratch {
	__u8 buf[XLB_CSUM_CHUNK + 4]; /* chunk; bytes past it zeroed per use */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_scratch);
} sluice_xdp_scratch SEC(".maps");

#endif /* SLUICE_XDP_MAPS_H */
