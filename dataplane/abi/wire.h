/* Wire formats sluice parses and writes, identical for the DPDK path, the
 * control plane and the BPF programs. Structs have natural alignment and no
 * bitfields (as the kernel's own headers): headers after a 14-byte Ethernet
 * header sit 2-byte aligned, which x86-64, arm64 and the BPF verifier all
 * accept; sizes and offsets are pinned by static_asserts in
 * tests/unit/abi_layout_test.cpp. Multi-byte fields are network byte order. */
#ifndef SLUICE_ABI_WIRE_H
#define SLUICE_ABI_WIRE_H

#include "types.h"

/* Byte-order helpers that constant-fold and exist in every target. */
#define SLUICE_BSWAP16(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define SLUICE_BSWAP32(x) ((__u32)__builtin_bswap32((__u32)(x)))
#define SLUICE_HTONS(x) SLUICE_BSWAP16(x)
#define SLUICE_NTOHS(x) SLUICE_BSWAP16(x)
#define SLUICE_HTONL(x) SLUICE_BSWAP32(x)
#define SLUICE_NTOHL(x) SLUICE_BSWAP32(x)

/* EtherTypes (host order). */
#define SLUICE_ETH_P_IPV4 0x0800
#define SLUICE_ETH_P_ARP 0x0806
#define SLUICE_ETH_P_VLAN 0x8100
#define SLUICE_ETH_P_QINQ 0x88A8
#define SLUICE_ETH_P_IPV6 0x86DD

/* IP protocol numbers. */
#define SLUICE_IPPROTO_HOPOPTS 0
#define SLUICE_IPPROTO_ICMP 1
#define SLUICE_IPPROTO_IPIP 4
#define SLUICE_IPPROTO_TCP 6
#define SLUICE_IPPROTO_UDP 17
#define SLUICE_IPPROTO_IPV6 41
#define SLUICE_IPPROTO_ROUTING 43
#define SLUICE_IPPROTO_FRAGMENT 44
#define SLUICE_IPPROTO_ESP 50
#define SLUICE_IPPROTO_AH 51
#define SLUICE_IPPROTO_ICMPV6 58
#define SLUICE_IPPROTO_NONE 59
#define SLUICE_IPPROTO_DSTOPTS 60

#define SLUICE_ETH_ALEN 6

struct sluice_eth_hdr {
	__u8 dst[SLUICE_ETH_ALEN];  /* destination MAC */
	__u8 src[SLUICE_ETH_ALEN];  /* source MAC */
	__be16 ethertype;           /* SLUICE_ETH_P_*, or VLAN TPID */
};

/* The 4 bytes that follow the TPID of an 802.1Q tag. */
struct sluice_vlan_hdr {
	__be16 tci;                 /* PCP(3) DEI(1) VID(12) */
	__be16 ethertype;           /* encapsulated EtherType */
};

#define SLUICE_IPV4_VERSION_IHL(ihl_words) ((__u8)(0x40 | (ihl_words)))
#define SLUICE_IPV4_DF 0x4000       /* frag_off flag, host order */
#define SLUICE_IPV4_MF 0x2000       /* frag_off flag, host order */
#define SLUICE_IPV4_OFFSET_MASK 0x1FFF

struct sluice_ipv4_hdr {
	__u8 version_ihl;           /* version (4) << 4 | header length in 32-bit words */
	__u8 tos;                   /* DSCP << 2 | ECN */
	__be16 total_len;           /* header + payload bytes */
	__be16 id;                  /* identification */
	__be16 frag_off;            /* flags (DF, MF) << 13 | fragment offset in 8-byte units */
	__u8 ttl;                   /* time to live */
	__u8 protocol;              /* SLUICE_IPPROTO_* of the payload */
	__sum16 check;              /* header checksum */
	__be32 saddr;               /* source address */
	__be32 daddr;               /* destination address */
};

struct sluice_ipv6_hdr {
	__be32 ver_tc_flow;         /* version (6) << 28 | traffic class << 20 | flow label */
	__be16 payload_len;         /* bytes after this 40-byte header */
	__u8 nexthdr;               /* SLUICE_IPPROTO_* of the next header */
	__u8 hop_limit;             /* hop limit */
	union sluice_addr saddr;    /* source address */
	union sluice_addr daddr;    /* destination address */
};

/* Generic IPv6 extension header prefix (hop-by-hop, routing, destination
 * options): length in 8-octet units not counting the first 8. */
struct sluice_ipv6_opt_hdr {
	__u8 nexthdr;               /* next header */
	__u8 hdrlen;                /* (length / 8) - 1 */
};

struct sluice_ipv6_frag_hdr {
	__u8 nexthdr;               /* next header */
	__u8 reserved;              /* zero */
	__be16 frag_off;            /* offset << 3 | M flag (bit 0) */
	__be32 identification;      /* datagram id */
};

#define SLUICE_TCP_FIN 0x01
#define SLUICE_TCP_SYN 0x02
#define SLUICE_TCP_RST 0x04
#define SLUICE_TCP_PSH 0x08
#define SLUICE_TCP_ACK 0x10

struct sluice_tcp_hdr {
	__be16 sport;               /* source port */
	__be16 dport;               /* destination port */
	__be32 seq;                 /* sequence number */
	__be32 ack_seq;             /* acknowledgement number */
	__u8 doff_res;              /* data offset in 32-bit words << 4 | reserved */
	__u8 flags;                 /* SLUICE_TCP_* */
	__be16 window;              /* receive window */
	__sum16 check;              /* checksum over pseudo header + segment */
	__be16 urg_ptr;             /* urgent pointer */
};

struct sluice_udp_hdr {
	__be16 sport;               /* source port */
	__be16 dport;               /* destination port */
	__be16 len;                 /* header + payload bytes */
	__sum16 check;              /* checksum; 0 = none (IPv4 only) */
};

/* ICMPv4 types and codes sluice acts on. */
#define SLUICE_ICMP_ECHO_REPLY 0
#define SLUICE_ICMP_DEST_UNREACH 3
#define SLUICE_ICMP_FRAG_NEEDED 4   /* code of DEST_UNREACH */
#define SLUICE_ICMP_ECHO_REQUEST 8
#define SLUICE_ICMP_TIME_EXCEEDED 11

/* ICMPv6 types sluice acts on. */
#define SLUICE_ICMPV6_DEST_UNREACH 1
#define SLUICE_ICMPV6_PKT_TOOBIG 2
#define SLUICE_ICMPV6_TIME_EXCEED 3
#define SLUICE_ICMPV6_ECHO_REQUEST 128
#define SLUICE_ICMPV6_ECHO_REPLY 129
#define SLUICE_ICMPV6_NEIGH_SOLICIT 135
#define SLUICE_ICMPV6_NEIGH_ADVERT 136

/* ICMP and ICMPv6 share this 8-byte header; errors carry the offending
 * packet's IP header and first 8+ payload bytes after it. */
struct sluice_icmp_hdr {
	__u8 type;                  /* message type */
	__u8 code;                  /* message code */
	__sum16 check;              /* checksum (ICMPv6: with pseudo header) */
	union {
		__be32 unused;          /* errors without a parameter */
		struct {
			__be16 id;          /* echo identifier */
			__be16 seq;         /* echo sequence */
		} echo;
		struct {
			__be16 unused;      /* zero */
			__be16 mtu;         /* ICMPv4 fragmentation needed: next-hop MTU */
		} frag;
		__be32 mtu6;            /* ICMPv6 packet too big: MTU */
	} un;
};

/* GUE (draft-ietf-intarea-gue) variant 1: no GUE header at all, the UDP
 * payload is the inner IP packet, whose version nibble tells IPv4 from IPv6.
 * This is what sluice writes (as Katran and GLB do); the destination port is
 * configured per service. Variant 0 headers are listed for the decapsulator,
 * which must recognise and skip them. */
struct sluice_gue_hdr {
	__u8 ver_c_hlen;            /* version (2 bits) << 6 | C << 5 | hlen (5 bits, 4-byte words) */
	__u8 proto_ctype;           /* inner IP protocol, or control type if C */
	__be16 flags;               /* flag bits */
};

#define SLUICE_GUE_DEFAULT_PORT 6080 /* host order */

/* ARP for Ethernet + IPv4 (RFC 826). The IPv4 addresses sit at 2-byte
 * alignment on the wire, so they are byte arrays here. */
#define SLUICE_ARP_HRD_ETHER 1
#define SLUICE_ARP_OP_REQUEST 1
#define SLUICE_ARP_OP_REPLY 2

struct sluice_arp_hdr {
	__be16 hrd;                 /* hardware type: 1 = Ethernet */
	__be16 pro;                 /* protocol type: 0x0800 */
	__u8 hln;                   /* hardware address length: 6 */
	__u8 pln;                   /* protocol address length: 4 */
	__be16 op;                  /* SLUICE_ARP_OP_* */
	__u8 sha[SLUICE_ETH_ALEN];  /* sender MAC */
	__u8 spa[4];                /* sender IPv4 */
	__u8 tha[SLUICE_ETH_ALEN];  /* target MAC */
	__u8 tpa[4];                /* target IPv4 */
};

#endif /* SLUICE_ABI_WIRE_H */
