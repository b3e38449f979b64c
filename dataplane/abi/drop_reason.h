/* The one drop-reason enum used by the DPDK worker, the XDP program, the
 * statistics layout and the metrics names. Every packet a data plane receives
 * ends as sent, handed to the kernel, or dropped with exactly one of these.
 * Append only: the numeric values are a stable ABI (per-CPU stats maps and
 * dashboards index by them). */
#ifndef SLUICE_ABI_DROP_REASON_H
#define SLUICE_ABI_DROP_REASON_H

/* X(enum suffix, metrics label, human description) */
#define SLUICE_DROP_REASONS(X)                                                              \
	X(MALFORMED_L2, "malformed_l2", "truncated Ethernet or VLAN header")                    \
	X(MALFORMED_L3, "malformed_l3", "truncated IP header, bad IHL, version or total length") \
	X(MALFORMED_L4, "malformed_l4", "truncated TCP/UDP/ICMP header or bad TCP data offset") \
	X(IPV6_EXTHDR_LIMIT, "ipv6_exthdr_limit", "too many or truncated IPv6 extension headers") \
	X(UNSUPPORTED_L4, "unsupported_l4", "VIP traffic that is neither TCP, UDP nor an ICMP error") \
	X(ICMP_NOT_ERROR, "icmp_not_error", "ICMP to a VIP that is not a forwardable error")    \
	X(VIP_PORT_MISS, "vip_port_miss", "VIP address matched but no service on that port/protocol") \
	X(NOT_FOR_VIP, "not_for_vip", "not VIP traffic and the exception path is disabled")     \
	X(NO_BACKEND, "no_backend", "service has no usable backend")                             \
	X(ACL_DENY, "acl_deny", "source prefix denied by an ACL")                                 \
	X(RATE_LIMIT_PACKETS, "rate_limit_packets", "per-VIP packet rate limit exceeded")         \
	X(RATE_LIMIT_NEW_FLOWS, "rate_limit_new_flows", "per-VIP new-flow rate limit exceeded")   \
	X(PAYLOAD_RULE, "payload_rule", "payload matched a Hyperscan drop rule")                  \
	X(MTU_EXCEEDED, "mtu_exceeded", "encapsulated packet exceeds egress MTU (ICMP sent if DF)") \
	X(TTL_EXCEEDED, "ttl_exceeded", "TTL or hop limit would reach zero")                      \
	X(NO_NEXTHOP, "no_nexthop", "next-hop MAC address not resolved yet")                      \
	X(NO_HEADROOM, "no_headroom", "no room in the buffer for the encapsulation header")       \
	X(TX_FULL, "tx_full", "transmit queue full, packet freed")                                \
	X(EXCEPTION_FULL, "exception_full", "exception (TAP) queue full, packet freed")           \
	X(FRAGMENT_UNSUPPORTED, "fragment_unsupported", "fragment that cannot be steered (e.g. ICMP fragment)") \
	X(INTERNAL, "internal", "internal error: a bug, report it")                               \
	X(CONTROL_FULL, "control_full", "ARP/ND queue to the control thread full, packet freed")

enum sluice_drop_reason {
#define SLUICE_DROP_ENUM_(name, label, text) SLUICE_DROP_##name,
	SLUICE_DROP_REASONS(SLUICE_DROP_ENUM_)
#undef SLUICE_DROP_ENUM_
	SLUICE_DROP_MAX
};

#endif /* SLUICE_ABI_DROP_REASON_H */
