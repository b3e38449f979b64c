/* The contract between tc_decap.bpf.c and its loader (sluice-decap-tool):
 * the load-time configuration, the address-map key and the outcome counters.
 * Plain C on linux/types.h, included unchanged by BPF C and C++ like
 * dataplane/abi/. Private to the decapsulator (no other plane reads these
 * maps), so it lives here rather than in dataplane/abi/tables.h; nothing is
 * pinned, so a layout change needs no versioned map name. */
#ifndef SLUICE_DECAP_ABI_H
#define SLUICE_DECAP_ABI_H

#include "abi/types.h"

/* Capacity of the local-address and VIP maps. A backend has a handful of
 * each; raise with -D for hosts that carry many VIPs. */
#ifndef SLUICE_DECAP_MAX_LOCAL_ADDRS
#define SLUICE_DECAP_MAX_LOCAL_ADDRS 64
#endif
#ifndef SLUICE_DECAP_MAX_VIPS
#define SLUICE_DECAP_MAX_VIPS 1024
#endif

/* Load-time configuration, a `const volatile` global in the program's
 * .rodata: the loader writes it between open and load, the kernel freezes it,
 * and the verifier folds it to constants (a disabled VIP filter costs no
 * instruction). Changing it means re-attaching, which tc does atomically. */
struct sluice_decap_config {
	__be16 gue_port;            /* UDP destination port of GUE, network order */
	__u8 vip_filter;            /* 1: decapsulate only inner destinations in decap_vips */
	__u8 pad[5];                /* zero */
};

/* Key of the local-address map (outer destinations this host accepts) and
 * of the VIP map (inner destinations). IPv4 lives in addr.v4 with the other
 * 12 bytes zero, and the family keeps 10.0.0.1 apart from 0a00:1::. */
struct sluice_decap_addr_key {
	union sluice_addr addr;     /* address, network order */
	__u8 family;                /* SLUICE_FAMILY_IPV4 or _IPV6 */
	__u8 pad[3];                /* zero: hashed as raw bytes by the kernel */
};

/* Every packet the program sees ends as exactly one of these; the per-CPU
 * counter array is indexed by them. Decapsulated kinds come first (the
 * program tests `<= DECAP_GUE_6IN6`) and are named inner-in-outer. The
 * numbers may change between builds (nothing is pinned, and
 * `sluice-decap stats` prints by label).
 * X(enum suffix, label, description) */
#define SLUICE_DECAP_OUTCOMES(X)                                                                \
	X(DECAP_IPIP_4IN4, "decap_ipip_4in4", "IPv4 in IPv4 (proto 4) decapsulated")              \
	X(DECAP_IPIP_6IN6, "decap_ipip_6in6", "IPv6 in IPv6 (next header 41) decapsulated")       \
	X(DECAP_IPIP_4IN6, "decap_ipip_4in6", "IPv4 in IPv6 (next header 4) decapsulated")        \
	X(DECAP_IPIP_6IN4, "decap_ipip_6in4", "IPv6 in IPv4 (proto 41) decapsulated")             \
	X(DECAP_GUE_4IN4, "decap_gue_4in4", "GUE: IPv4 in UDP over IPv4 decapsulated")            \
	X(DECAP_GUE_6IN4, "decap_gue_6in4", "GUE: IPv6 in UDP over IPv4 decapsulated")            \
	X(DECAP_GUE_4IN6, "decap_gue_4in6", "GUE: IPv4 in UDP over IPv6 decapsulated")            \
	X(DECAP_GUE_6IN6, "decap_gue_6in6", "GUE: IPv6 in UDP over IPv6 decapsulated")            \
	X(PASS_NOT_ENCAP, "pass_not_encap", "not an encapsulation sluice writes: passed untouched") \
	X(PASS_NOT_LOCAL, "pass_not_local", "encapsulated, outer destination not a local address: passed") \
	X(PASS_NOT_VIP, "pass_not_vip", "encapsulated to us, inner destination not a configured VIP: passed") \
	X(PASS_FRAGMENT, "pass_fragment", "outer header is a fragment (cannot be decapsulated alone): passed") \
	X(DROP_MALFORMED, "drop_malformed", "encapsulated to us but the inner packet is truncated or inconsistent") \
	X(DROP_UNSUPPORTED, "drop_unsupported", "GUE control message, unknown GUE version or inner protocol") \
	X(DROP_DECAP_FAILED, "drop_decap_failed", "a kernel helper refused to strip the outer headers")

enum sluice_decap_outcome {
#define SLUICE_DECAP_ENUM_(name, label, text) SLUICE_DECAP_##name,
	SLUICE_DECAP_OUTCOMES(SLUICE_DECAP_ENUM_)
#undef SLUICE_DECAP_ENUM_
	SLUICE_DECAP_OUTCOME_MAX
};

/* Names of the maps and program the loader looks up (kernel object names are
 * limited to 15 characters). */
#define SLUICE_DECAP_PROG_NAME "sluice_tc_decap"
#define SLUICE_DECAP_MAP_LOCAL "decap_local"
#define SLUICE_DECAP_MAP_VIPS "decap_vips"
#define SLUICE_DECAP_MAP_STATS "decap_stats"

#endif /* SLUICE_DECAP_ABI_H */
