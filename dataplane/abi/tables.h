/* Layouts of the forwarding tables both data planes read: the VIP table,
 * the backend table, Maglev rings, connection-table entries, ACL keys and
 * statistics. The control plane fills them (DPDK: an immutable snapshot in
 * process memory; XDP: BPF maps of exactly these value types). Change a
 * layout only together with its map's version suffix (see ebpf/), so a
 * restarted sluiced never reads a pinned map of the old shape. */
#ifndef SLUICE_ABI_TABLES_H
#define SLUICE_ABI_TABLES_H

#include "types.h"
#include "drop_reason.h"
#include "flow.h"
#include "wire.h"

/* Limits, overridable at build time (-D) for larger deployments. */
#ifndef SLUICE_MAX_VIPS
#define SLUICE_MAX_VIPS 512
#endif
/* Backends node-wide (every service's, draining ones included): 100
 * services x 1000 backends fit with room for ids in quarantine. Memory per
 * entry: DPDK 16 B of counters per worker; XDP 16 B of counters per CPU
 * (2 MiB per CPU) plus the backend array. */
#ifndef SLUICE_MAX_BACKENDS
#define SLUICE_MAX_BACKENDS 131072
#endif
/* Largest Maglev table size M accepted (prime). The paper's 65537 suits up
 * to a few hundred backends per service; 655373 leaves 1% imbalance at
 * several thousand. */
#ifndef SLUICE_MAX_RING_SIZE
#define SLUICE_MAX_RING_SIZE 655373
#endif
#define SLUICE_DEFAULT_RING_SIZE 65537
/* Bound on IPv6 extension headers walked before giving up. */
#ifndef SLUICE_MAX_IPV6_EXTHDRS
#define SLUICE_MAX_IPV6_EXTHDRS 4
#endif

/* Marks "no backend" in rings and connection entries. */
#define SLUICE_BACKEND_NONE 0xFFFFFFFFu

/* How a service reaches its backends. */
enum sluice_forwarding {
	SLUICE_FWD_IPIP = 0,   /* IP-in-IP: 4in4, 6in6, 4in6 or 6in4 by families */
	SLUICE_FWD_GUE = 1,    /* UDP encapsulation (GUE variant 1) */
	SLUICE_FWD_L2DSR = 2,  /* rewrite destination MAC only; backends on our segment */
	SLUICE_FWD_MAX
};

/* Bytes a forwarding mode puts in front of the inner IP packet when the
 * outer header is of `outer_family` (L2 DSR: none). The one definition:
 * the DPDK writers, the XDP program and the control plane's MTU warnings
 * all size the tunnel with it. */
SLUICE_ABI_CONSTEXPR __u32 sluice_encap_overhead(__u8 mode, __u8 outer_family)
{
	__u32 ip;

	if (mode == SLUICE_FWD_L2DSR)
		return 0;
	ip = outer_family == SLUICE_FAMILY_IPV4 ? (__u32)sizeof(struct sluice_ipv4_hdr)
						 : (__u32)sizeof(struct sluice_ipv6_hdr);
	return mode == SLUICE_FWD_GUE ? ip + (__u32)sizeof(struct sluice_udp_hdr) : ip;
}

/* VIP table key: port 0 with the VIP's protocol is the "all ports" entry,
 * looked up after the exact port misses. */
struct sluice_vip_key {
	union sluice_addr addr;     /* VIP address */
	__be16 port;                /* VIP port, 0 = all ports */
	__u8 proto;                 /* SLUICE_IPPROTO_TCP or _UDP */
	__u8 family;                /* SLUICE_FAMILY_IPV4 or _IPV6 */
};

#define SLUICE_VIP_F_HASH_NO_SPORT 0x01  /* hash without the client port (sticky per client) */
#define SLUICE_VIP_F_ACL 0x02            /* service has its own source ACL */
#define SLUICE_VIP_F_RATE_LIMIT 0x04     /* service has token-bucket limits */

/* VIP table value. */
struct sluice_vip_meta {
	__u32 vip_id;               /* dense index 0..SLUICE_MAX_VIPS-1: stats, rings, limits */
	__u32 ring_size;            /* Maglev table size M (prime) */
	__u32 ring_id;              /* ring currently live for this VIP (XDP: flips between two) */
	__u8 forwarding;            /* enum sluice_forwarding */
	__u8 flags;                 /* SLUICE_VIP_F_* */
	__be16 gue_dport;           /* GUE destination port, network order */
};

#define SLUICE_BACKEND_F_VALID 0x01      /* may receive packets (live or draining) */
#define SLUICE_BACKEND_F_DRAINING 0x02   /* in no ring; keeps its established flows */

/* Backend table value, indexed by backend id (dense, 0..SLUICE_MAX_BACKENDS-1).
 * A connection entry names a backend id; a hit on an id without
 * SLUICE_BACKEND_F_VALID falls back to the Maglev ring. */
struct sluice_backend {
	union sluice_addr addr;     /* backend address: the outer destination, or for L2 DSR the next hop */
	__u8 family;                /* SLUICE_FAMILY_IPV4 or _IPV6 */
	__u8 flags;                 /* SLUICE_BACKEND_F_* */
	__u8 mac[6];                /* L2 DSR: resolved MAC; zero until resolved */
};

/* A Maglev ring is ring_size consecutive __u32 backend ids (or
 * SLUICE_BACKEND_NONE when a service has no usable backend). */
typedef __u32 sluice_ring_entry;

/* Connection table (both planes): set-associative, SLUICE_CONN_WAYS-way
 * buckets chosen by the flow hash, one table per worker (DPDK: per lcore;
 * XDP: one partition per CPU of one array map, index
 * cpu * buckets_per_cpu + (hash & (buckets_per_cpu - 1))). A flow lives in
 * at most one way of its bucket; a full bucket reuses an expired way, else
 * evicts its least recently seen entry. Entry states say which idle timeout
 * applies (the node's conn_timeout_ns[state]). */
#define SLUICE_CONN_WAYS 8
#define SLUICE_CONN_ALL_WAYS 0xFFu           /* sluice_conn_bucket.used when full */

#define SLUICE_CONN_TCP_TRANSITORY 0         /* SYN seen, handshake not finished */
#define SLUICE_CONN_TCP_ESTABLISHED 1        /* ACK or data after SYN, or picked up mid-flow */
#define SLUICE_CONN_TCP_CLOSING 2            /* FIN or RST seen: ages as transitory */
#define SLUICE_CONN_UDP 3
#define SLUICE_CONN_STATES 4

/* One remembered flow: 56 bytes. */
struct sluice_conn_entry {
	struct sluice_flow_key key;  /* client→VIP flow */
	__u32 backend_id;            /* backend it is pinned to; SLUICE_BACKEND_NONE = forgotten */
	__u8 state;                  /* SLUICE_CONN_* */
	__u8 pad[3];                 /* zero */
	__u64 last_seen;             /* time of the last packet (XDP: ns on the jiffies clock, ebpf/xdp/conn_table.h) */
};

/* Whether an entry read by a thread other than the table's owner (sluicectl
 * lookup) is live at `now`, on the table's own clock. The owner may touch the
 * entry after the reader took `now`, so a last_seen ahead of now is live; the
 * owner itself never sees that and tests `now - last_seen >= timeout` alone. */
SLUICE_ABI_INLINE int sluice_conn_live_for_reader(__u64 last_seen, __u64 now, __u64 timeout)
{
	return last_seen > now || now - last_seen < timeout;
}

/* One bucket: 512 bytes, eight cache lines. Signatures first, so a lookup
 * compares one 32-byte line before any 40-byte key. */
struct sluice_conn_bucket {
	__u32 sig[SLUICE_CONN_WAYS]; /* flow hash per way */
	__u32 used;                  /* bit i: way i holds an entry */
	__u32 pad;                   /* zero */
	struct sluice_conn_entry entries[SLUICE_CONN_WAYS];
	__u8 tail[24];               /* zero: pads to 512 bytes */
};

/* Source ACL key for LPM lookup: prefix length in bits first, as the
 * kernel's LPM trie requires, then the address. vip_id scopes per-service
 * lists; SLUICE_MAX_VIPS means the global list. */
struct sluice_acl_key {
	__u32 prefixlen;            /* 32 (vip_id) + address bits matched */
	__u32 vip_id;               /* service scope, big-endian so it is part of the prefix */
	union sluice_addr addr;     /* source prefix */
};

#define SLUICE_ACL_ALLOW 1
#define SLUICE_ACL_DENY 2

/* Token bucket for per-VIP limits. Tokens in units of 1/1024 packet so
 * refill at low rates stays exact in integer arithmetic. */
struct sluice_token_bucket {
	__u64 tokens;               /* available tokens << 10 */
	__u64 last_ns;              /* time of the last refill */
	__u64 rate_per_sec;         /* refill rate, whole tokens per second; 0 = unlimited */
	__u64 burst;                /* bucket depth in whole tokens */
};

/* A token bucket with the sub-unit remainder of its refills, both planes'
 * bucket: XDP's per-VIP (map sluice_buckets_v2) and ICMP-error (per-CPU
 * sluice_icmp_bucket) buckets, DPDK's core::TokenBucket
 * (dataplane/core/token_bucket.h, the same struct). Without the remainder
 * every refill rounds down, and a bucket refilled more often than every
 * 1e9 / (rate × 1024) ns (every packet refills) would never refill at all.
 * Both planes credit the same tokens and keep the same carry for the same
 * refill times (ebpf/xdp/filters.h says within which range). */
struct sluice_carried_bucket {
	struct sluice_token_bucket bucket; /* tokens, last refill, rate, burst */
	__u64 carry;                /* (elapsed_ns × rate × 2 + carry) mod 1953125 not yet credited:
				     * 1953125 of these make one 1/1024 token; 0 in a new bucket */
};

/* A packets/bytes pair (per VIP, per backend). */
struct sluice_counter {
	__u64 packets;
	__u64 bytes;
};

/* Per-core data-plane counters. Each core writes only its own copy
 * (DPDK: one per lcore, cache aligned; XDP: a per-CPU array of one); readers
 * sum over cores. */
struct sluice_stats {
	__u64 rx_packets;           /* packets received */
	__u64 rx_bytes;             /* bytes received */
	__u64 tx_packets;           /* packets forwarded to a backend */
	__u64 tx_bytes;             /* bytes forwarded (after encapsulation) */
	__u64 exception_packets;    /* handed to the host kernel (TAP / XDP_PASS) */
	__u64 control_packets;      /* ARP/ND answered or learned by the data plane */
	__u64 icmp_sent;            /* ICMP errors generated (MTU exceeded) */
	__u64 conn_hits;            /* connection-table hits */
	__u64 conn_misses;          /* connection-table misses (new flows) */
	__u64 conn_evictions;       /* entries evicted to make room */
	__u64 icmp_rate_limited;    /* ICMP errors not generated: this core's ICMP-error bucket was
				     * empty (the packet is still one MTU_EXCEEDED drop) */
	__u64 drops[SLUICE_DROP_MAX]; /* by enum sluice_drop_reason; last: it grows as reasons are added */
};

/* ---- XDP plane configuration (appended; the DPDK path keeps these in its
 * ForwardingState). Versioned together with the XDP map names. ---- */

/* Largest port id + 1 the XDP plane configures (as core::kMaxPorts). */
#define SLUICE_MAX_PORTS 16

#define SLUICE_PORT_F_PRESENT 0x01      /* port is configured */
/* Smallest port MTU either plane accepts: IPv4's minimum link MTU (RFC 791).
 * Above it every MTU is accepted; where one leaves a client too little room
 * the control plane warns (controlplane/driver/mtu_check.h). */
#define SLUICE_MIN_PORT_MTU 68

/* One port of the node (XDP: array map indexed by port id; the ingress
 * interface is mapped to its port id by a second map keyed by ifindex). */
struct sluice_port_config {
	__u8 mac[6];                /* our MAC on this port: source of what we send on it */
	__u8 nexthop_mac[6];        /* router toward the backends (IPIP/GUE); zero = unresolved */
	__u16 mtu;                  /* L3 MTU, host order: the largest IP packet we may send */
	__u16 egress_port;          /* port id VIP traffic received here leaves by; itself = one-arm */
	__u32 ifindex;              /* kernel interface index (XDP redirect target), host order */
	__u8 flags;                 /* SLUICE_PORT_F_* */
	__u8 pad[3];                /* zero */
};

#define SLUICE_IFPORT_F_BOUND 0x01      /* the interface is bound to port in_id (the loader's record of it) */
#define SLUICE_IFPORT_F_READY 0x02      /* bound, and in_id and eg_id are both present: packets may use it */

/* XDP only: what the packet path reads of the two ports an ingress
 * interface's packets go through, in one array element per ifindex (the
 * loader's copy of sluice_port_config fields, rewritten whenever a port or
 * a binding changes), so a packet makes one lookup where the chain
 * ifindex → port id → ingress port → egress port made three. 32 bytes: an
 * element never straddles a cache line. Not READY: the packet path treats
 * the interface as one the loader did not map. */
struct sluice_ifport_record {
	__u8 eg_mac[6];             /* egress port's mac: source of what we send */
	__u8 eg_nexthop_mac[6];     /* egress port's nexthop_mac; zero = unresolved */
	__u16 eg_mtu;               /* egress port's mtu (L3, host order) */
	__u8 in_id;                 /* ingress port id: the port the interface is bound to */
	__u8 eg_id;                 /* egress port id (in_id's egress_port); == in_id: one-arm */
	__u32 eg_ifindex;           /* egress port's ifindex: redirect target, host order */
	__u8 in_mac[6];             /* ingress port's mac: source of an ICMP error sent back to the client */
	__u8 flags;                 /* SLUICE_IFPORT_F_* */
	__u8 pad[5];                /* zero */
};

#define SLUICE_NODE_F_GLOBAL_ACL 0x01   /* the global ACL scope has entries */
/* Largest icmp_errors_per_sec and icmp_errors_burst accepted (config loader,
 * both planes): within the buckets' exact range, and a burst below 2^20 so
 * that both planes' arithmetic give the same answers (ebpf/xdp/filters.h). */
#define SLUICE_ICMP_ERRORS_MAX 1000000

/* Per-node settings (XDP: array map of one entry). */
struct sluice_node_config {
	union sluice_addr local_v4; /* outer source address of IPv4 tunnels */
	union sluice_addr local_v6; /* outer source address of IPv6 tunnels */
	__u64 conn_timeout_ns[SLUICE_CONN_STATES]; /* idle time after which an entry in state SLUICE_CONN_* expires */
	__u8 exception_path;        /* 1: non-VIP traffic to the host (XDP always passes it) */
	__u8 flags;                 /* SLUICE_NODE_F_* */
	__u8 pad[6];                /* zero */
	__u64 icmp_errors_per_sec;  /* ICMP errors each CPU may generate per second; 0 = unlimited */
	__u64 icmp_errors_burst;    /* depth of each CPU's ICMP-error bucket, whole errors */
};

/* Where fragments to a VIP address go, per protocol. */
#define SLUICE_FRAG_NONE 0              /* no service of this protocol: VIP_PORT_MISS */
#define SLUICE_FRAG_SERVICE 1           /* the service at frag_port (0 = the all-ports one) */
#define SLUICE_FRAG_AMBIGUOUS 2         /* several services, none port 0: FRAGMENT_UNSUPPORTED */

/* Value of the VIP-address map (key: struct sluice_vip_key with port 0 and
 * proto 0): tells "a VIP, wrong port" from "not ours", and names the
 * service fragments of each protocol are steered to (ports are unknown in
 * a fragment). */
struct sluice_vip_addr_info {
	__be16 frag_port_tcp;       /* service port TCP fragments use (valid when frag_tcp == SERVICE) */
	__be16 frag_port_udp;       /* the same for UDP */
	__u8 frag_tcp;              /* SLUICE_FRAG_* for TCP */
	__u8 frag_udp;              /* SLUICE_FRAG_* for UDP */
	__u8 pad[2];                /* zero */
};

#endif /* SLUICE_ABI_TABLES_H */
