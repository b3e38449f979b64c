// Packet parsing for the worker: Ethernet (+ one 802.1Q tag), IPv4/IPv6
// (IPv6 extension headers walked to a bound), TCP/UDP, and ICMP/ICMPv6
// errors down to the flow they carry. Every stage checks its bounds against
// the IP packet length taken from the header, never trusting a length field
// past the bytes received. Pure functions of the bytes: no state, no writes.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/packet.h"

extern "C" {
#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::core {

// What a parse stage decided: go on, not IP at all (exception path), ARP
// (control thread), or a drop with a reason.
struct ParseResult {
    enum Kind : uint8_t { kOk, kNotIp, kArp, kDrop };
    Kind kind;
    uint8_t reason;  // sluice_drop_reason when kind == kDrop

    static constexpr ParseResult ok() { return {kOk, 0}; }
    static constexpr ParseResult not_ip() { return {kNotIp, 0}; }
    static constexpr ParseResult arp() { return {kArp, 0}; }
    static constexpr ParseResult drop(sluice_drop_reason r) { return {kDrop, static_cast<uint8_t>(r)}; }
};

// Everything the pipeline learns about a packet. Offsets are from
// Packet::data as received.
struct ParsedPacket {
    uint16_t l3_offset;     // Ethernet (+ VLAN) header bytes: 14 or 18
    uint16_t l4_offset;     // TCP/UDP/ICMP header (unfragmented packets)
    uint32_t l3_len;        // IP packet bytes per its header; frame padding excluded
    uint16_t vlan_tci;      // 802.1Q TCI as on the wire, when has_vlan
    uint16_t ipv4_id;       // IPv4 identification as on the wire; 0 for IPv6
    uint8_t family;         // SLUICE_FAMILY_IPV4 or _IPV6
    uint8_t l4_proto;       // upper-layer protocol after IPv6 extension headers
    uint8_t tos;            // IPv4 TOS or IPv6 traffic class (DSCP + ECN)
    uint8_t tcp_flags;      // SLUICE_TCP_* for TCP, else 0
    bool has_vlan;          // one 802.1Q tag was present
    bool ipv4_df;           // IPv4 DF flag
    bool fragment;          // an IP fragment, first or not (ports unknown)
    bool icmp_error;        // ICMP(v6) error: key is the embedded flow
    union sluice_addr src;  // received source address (zero-padded IPv4)
    union sluice_addr dst;  // received destination address
    struct sluice_flow_key key;  // client→VIP flow (set by parse_l4 / fragments)
};

constexpr uint32_t kEthHdrLen = sizeof(sluice_eth_hdr);
constexpr uint32_t kVlanHdrLen = sizeof(sluice_vlan_hdr);
constexpr uint32_t kIpv4HdrLen = sizeof(sluice_ipv4_hdr);
constexpr uint32_t kIpv6HdrLen = sizeof(sluice_ipv6_hdr);
constexpr uint32_t kUdpHdrLen = sizeof(sluice_udp_hdr);
constexpr uint32_t kTcpHdrLen = sizeof(sluice_tcp_hdr);
constexpr uint32_t kIcmpHdrLen = sizeof(sluice_icmp_hdr);

// Ethernet and at most one 802.1Q tag. ARP goes to the control thread; a
// second tag (QinQ) or another non-IP EtherType is not VIP traffic: the host
// kernel decides (LLDP, ...).
SLUICE_ALWAYS_INLINE ParseResult parse_l2(const uint8_t* data, uint32_t len, ParsedPacket& pp)
{
    if (len < kEthHdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L2);
    uint16_t type = ntoh16(load<uint16_t>(data + 12));
    pp.l3_offset = kEthHdrLen;
    pp.has_vlan = false;
    pp.vlan_tci = 0;
    if (type == SLUICE_ETH_P_VLAN) {
        if (len < kEthHdrLen + kVlanHdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L2);
        pp.has_vlan = true;
        pp.vlan_tci = load<uint16_t>(data + 14);
        type = ntoh16(load<uint16_t>(data + 16));
        pp.l3_offset = kEthHdrLen + kVlanHdrLen;
    }
    if (type == SLUICE_ETH_P_IPV4) {
        pp.family = SLUICE_FAMILY_IPV4;
    } else if (type == SLUICE_ETH_P_IPV6) {
        pp.family = SLUICE_FAMILY_IPV6;
    } else if (type == SLUICE_ETH_P_ARP) {
        return ParseResult::arp();
    } else {
        return ParseResult::not_ip();
    }
    return ParseResult::ok();
}

// The fixed IPv4 header: version, IHL (options are skipped, not read) and
// total length, which must cover the header and fit in the frame (a longer
// frame is Ethernet padding and is ignored).
SLUICE_ALWAYS_INLINE ParseResult parse_ipv4(const uint8_t* data, uint32_t len, ParsedPacket& pp)
{
    const uint32_t avail = len - pp.l3_offset;
    if (avail < kIpv4HdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L3);
    const auto ip = load<sluice_ipv4_hdr>(data + pp.l3_offset);
    const uint32_t ihl = (ip.version_ihl & 0x0Fu) * 4u;
    const uint32_t total = ntoh16(ip.total_len);
    if ((ip.version_ihl >> 4) != 4 || ihl < kIpv4HdrLen || ihl > total || total > avail)
        return ParseResult::drop(SLUICE_DROP_MALFORMED_L3);
    const uint16_t frag = ntoh16(ip.frag_off);
    pp.l3_len = total;
    pp.l4_offset = static_cast<uint16_t>(pp.l3_offset + ihl);
    pp.l4_proto = ip.protocol;
    pp.tos = ip.tos;
    pp.ipv4_id = ip.id;
    pp.ipv4_df = (frag & SLUICE_IPV4_DF) != 0;
    pp.fragment = (frag & (SLUICE_IPV4_MF | SLUICE_IPV4_OFFSET_MASK)) != 0;
    pp.src = {};
    pp.dst = {};
    pp.src.v4 = ip.saddr;
    pp.dst.v4 = ip.daddr;
    return ParseResult::ok();
}

// The fixed IPv6 header. Extension headers are walked separately, and only
// for VIP traffic (the host kernel handles the rest however deep it goes).
SLUICE_ALWAYS_INLINE ParseResult parse_ipv6(const uint8_t* data, uint32_t len, ParsedPacket& pp)
{
    const uint32_t avail = len - pp.l3_offset;
    if (avail < kIpv6HdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L3);
    const auto ip = load<sluice_ipv6_hdr>(data + pp.l3_offset);
    const uint32_t vtf = ntoh32(ip.ver_tc_flow);
    const uint32_t total = kIpv6HdrLen + ntoh16(ip.payload_len);
    if ((vtf >> 28) != 6 || total > avail) return ParseResult::drop(SLUICE_DROP_MALFORMED_L3);
    pp.l3_len = total;
    pp.l4_offset = static_cast<uint16_t>(pp.l3_offset + kIpv6HdrLen);
    pp.l4_proto = ip.nexthdr;
    pp.tos = static_cast<uint8_t>(vtf >> 20);
    pp.ipv4_id = 0;
    pp.ipv4_df = false;
    pp.fragment = false;
    pp.src = ip.saddr;
    pp.dst = ip.daddr;
    return ParseResult::ok();
}

// True for an IPv6 neighbour solicitation or advertisement the control
// thread must see: ICMPv6 type 135/136 directly after the fixed header, hop
// limit 255 (RFC 4861 §7.1.1/7.1.2: anything else was forwarded by a router
// and a receiver must discard it, so the kernel may do that), and at least
// the 24 bytes of header + target address. ND never carries extension
// headers in practice; one that does is left to the kernel.
SLUICE_ALWAYS_INLINE bool is_neighbor_discovery(const uint8_t* data, const ParsedPacket& pp)
{
    if (pp.l4_proto != SLUICE_IPPROTO_ICMPV6 || pp.l3_len < kIpv6HdrLen + 24u) return false;
    const uint8_t hop_limit = data[pp.l3_offset + 7];
    const uint8_t type = data[pp.l4_offset];
    return hop_limit == 255 && (type == SLUICE_ICMPV6_NEIGH_SOLICIT || type == SLUICE_ICMPV6_NEIGH_ADVERT);
}

// Where an IPv6 extension-header walk ended.
struct Ipv6Walk {
    uint32_t offset;  // of the upper-layer header (unfragmented)
    uint8_t proto;    // upper-layer protocol; for fragments the fragment header's next header
    bool fragment;    // a non-atomic fragment header was found
};

// Walks hop-by-hop, routing, destination-options and fragment headers in
// [off, end) of `base`, at most SLUICE_MAX_IPV6_EXTHDRS of them (a bound the
// BPF verifier needs too; both planes must give up at the same depth). A
// fragment with offset or M set ends the walk: the fragmentable part may not
// be here, and all fragments are steered by addresses and the fragment
// header's next header alone. An atomic fragment (RFC 6946) is walked past.
SLUICE_ALWAYS_INLINE ParseResult walk_ipv6_exthdrs(const uint8_t* base, uint32_t off, uint32_t end,
                                                   uint8_t nexthdr, Ipv6Walk& out)
{
    out.fragment = false;
    for (uint32_t i = 0;; ++i) {
        if (nexthdr != SLUICE_IPPROTO_HOPOPTS && nexthdr != SLUICE_IPPROTO_ROUTING &&
            nexthdr != SLUICE_IPPROTO_DSTOPTS && nexthdr != SLUICE_IPPROTO_FRAGMENT)
            break;
        if (i == SLUICE_MAX_IPV6_EXTHDRS || end - off < 8u)
            return ParseResult::drop(SLUICE_DROP_IPV6_EXTHDR_LIMIT);
        if (nexthdr == SLUICE_IPPROTO_FRAGMENT) {
            const auto fh = load<sluice_ipv6_frag_hdr>(base + off);
            // Offset (13 bits << 3) or the M flag (bit 0): a real fragment.
            if ((ntoh16(fh.frag_off) & 0xFFF9u) != 0) {
                out.offset = off;
                out.proto = fh.nexthdr;
                out.fragment = true;
                return ParseResult::ok();
            }
            nexthdr = fh.nexthdr;
            off += 8;
        } else {
            const uint32_t hlen = (static_cast<uint32_t>(base[off + 1]) + 1u) * 8u;
            if (hlen > end - off) return ParseResult::drop(SLUICE_DROP_IPV6_EXTHDR_LIMIT);
            nexthdr = base[off];
            off += hlen;
        }
    }
    out.offset = off;
    out.proto = nexthdr;
    return ParseResult::ok();
}

// Fills the 3-tuple key every fragment of a datagram shares (ports zero).
SLUICE_ALWAYS_INLINE void set_fragment_key(ParsedPacket& pp)
{
    pp.key = {};
    pp.key.src = pp.src;
    pp.key.dst = pp.dst;
    pp.key.proto = pp.l4_proto;
    pp.key.family = pp.family;
}

// TCP (data offset within 5..15 words and inside the packet) or UDP (length
// field covering its header and inside the packet); fills the 5-tuple key.
SLUICE_ALWAYS_INLINE ParseResult parse_tcp_udp(const uint8_t* data, ParsedPacket& pp)
{
    const uint32_t end = pp.l3_offset + pp.l3_len;
    const uint32_t avail = end - pp.l4_offset;
    const uint8_t* l4 = data + pp.l4_offset;
    pp.tcp_flags = 0;
    if (pp.l4_proto == SLUICE_IPPROTO_TCP) {
        if (avail < kTcpHdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        const uint32_t doff = (l4[12] >> 4) * 4u;
        if (doff < kTcpHdrLen || doff > avail) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        pp.tcp_flags = l4[13];
    } else {
        if (avail < kUdpHdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        const uint32_t ulen = ntoh16(load<uint16_t>(l4 + 4));
        if (ulen < kUdpHdrLen || ulen > avail) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
    }
    pp.key = {};
    pp.key.src = pp.src;
    pp.key.dst = pp.dst;
    pp.key.sport = load<uint16_t>(l4);
    pp.key.dport = load<uint16_t>(l4 + 2);
    pp.key.proto = pp.l4_proto;
    pp.key.family = pp.family;
    return ParseResult::ok();
}

// True for the ICMP/ICMPv6 types that report on a packet we forwarded and
// so belong to that packet's flow (RFC 792, RFC 4443).
SLUICE_ALWAYS_INLINE bool is_icmp_error(uint8_t family, uint8_t type)
{
    if (family == SLUICE_FAMILY_IPV4)
        return type == SLUICE_ICMP_DEST_UNREACH || type == SLUICE_ICMP_TIME_EXCEEDED;
    return type == SLUICE_ICMPV6_DEST_UNREACH || type == SLUICE_ICMPV6_PKT_TOOBIG ||
           type == SLUICE_ICMPV6_TIME_EXCEED;
}

// An ICMP(v6) error addressed to a VIP: the embedded packet is one the
// backend sent from the VIP to the client (DSR), so the flow key is its
// 5-tuple with source and destination swapped back to client→VIP. The
// embedded packet is truncated by design: only its header and the first 8
// payload bytes (the ports; RFC 792 guarantees them) are required, and its
// length fields are not checked. An embedded fragment gives the 3-tuple key,
// as the flow's own fragments were steered.
SLUICE_ALWAYS_INLINE ParseResult parse_icmp_error(const uint8_t* data, ParsedPacket& pp)
{
    const uint32_t end = pp.l3_offset + pp.l3_len;
    if (end - pp.l4_offset < kIcmpHdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
    const uint8_t type = data[pp.l4_offset];
    if (!is_icmp_error(pp.family, type)) return ParseResult::drop(SLUICE_DROP_ICMP_NOT_ERROR);

    const uint32_t inner = pp.l4_offset + kIcmpHdrLen;
    const uint32_t avail = end - inner;
    const uint8_t* ip = data + inner;
    union sluice_addr esrc = {}, edst = {};
    uint8_t proto;
    uint32_t l4;
    bool frag;
    if (pp.family == SLUICE_FAMILY_IPV4) {
        if (avail < kIpv4HdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        const auto h = load<sluice_ipv4_hdr>(ip);
        const uint32_t ihl = (h.version_ihl & 0x0Fu) * 4u;
        if ((h.version_ihl >> 4) != 4 || ihl < kIpv4HdrLen || ihl > avail)
            return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        esrc.v4 = h.saddr;
        edst.v4 = h.daddr;
        proto = h.protocol;
        l4 = ihl;
        frag = (ntoh16(h.frag_off) & (SLUICE_IPV4_MF | SLUICE_IPV4_OFFSET_MASK)) != 0;
    } else {
        if (avail < kIpv6HdrLen) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        const auto h = load<sluice_ipv6_hdr>(ip);
        if ((ntoh32(h.ver_tc_flow) >> 28) != 6) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        Ipv6Walk w;
        const ParseResult r = walk_ipv6_exthdrs(ip, kIpv6HdrLen, avail, h.nexthdr, w);
        if (r.kind != ParseResult::kOk) return r;
        esrc = h.saddr;
        edst = h.daddr;
        proto = w.proto;
        l4 = w.offset;
        frag = w.fragment;
    }
    if (proto != SLUICE_IPPROTO_TCP && proto != SLUICE_IPPROTO_UDP)
        return ParseResult::drop(SLUICE_DROP_UNSUPPORTED_L4);
    pp.key = {};
    pp.key.src = edst;
    pp.key.dst = esrc;
    pp.key.proto = proto;
    pp.key.family = pp.family;
    if (!frag) {
        if (avail - l4 < 8u) return ParseResult::drop(SLUICE_DROP_MALFORMED_L4);
        pp.key.sport = load<uint16_t>(ip + l4 + 2);
        pp.key.dport = load<uint16_t>(ip + l4);
    }
    pp.fragment = frag;
    pp.icmp_error = true;
    pp.tcp_flags = 0;
    return ParseResult::ok();
}

}  // namespace sluice::core
