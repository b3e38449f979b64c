// ICMP "fragmentation needed" (IPv4, type 3 code 4) and ICMPv6 "packet too
// big" built in place of a packet that would exceed the egress MTU once
// encapsulated, so the client's PMTU discovery lowers its MSS/packet size
// instead of the flow black-holing.
//
// Choices (same on the XDP plane):
// - source address: the VIP. The client sent to the VIP and only the VIP is
//   routed to every LB node (anycast/ECMP); a node address could be
//   filtered by uRPF or firewalls on the way and would reveal node
//   addresses. Linux matches the error to the socket by the quoted header,
//   so the source does not affect PMTU handling.
// - body: the received IP packet (inner TTL as received) truncated so the
//   whole error is at most 576 bytes (IPv4, RFC 1812 §4.3.2.3) or 1280
//   bytes (IPv6, RFC 4443 §2.4(c)).
// - L2: back out of the ingress port to the MAC it came from, with its VLAN
//   tag; TTL/hop limit 64, IPv4 ID 0 and no DF.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/packet.h"
#include "core/parse.h"

extern "C" {
#include "abi/checksum.h"
#include "abi/wire.h"
}

namespace sluice::core {

constexpr uint32_t kIcmpV4MaxLen = 576;
constexpr uint32_t kIcmpV6MaxLen = 1280;
// IPv6's minimum link MTU (RFC 8200 §5): no "packet too big" reports less.
constexpr uint32_t kIcmpV6MinMtu = 1280;

// Rewrites `pkt` into the error for `reported_mtu` (the largest inner
// packet that fits). False when the headroom cannot hold the new headers
// (the caller then just drops).
template <uint8_t kFamily>
SLUICE_ALWAYS_INLINE bool build_packet_too_big(Packet& pkt, const ParsedPacket& pp, const uint8_t* our_mac,
                                               uint32_t reported_mtu)
{
    static_assert(kFamily == SLUICE_FAMILY_IPV4 || kFamily == SLUICE_FAMILY_IPV6, "family");
    constexpr uint32_t ip_len = kFamily == SLUICE_FAMILY_IPV4 ? kIpv4HdrLen : kIpv6HdrLen;
    constexpr uint32_t hdrs = ip_len + kIcmpHdrLen;
    constexpr uint32_t max_len = kFamily == SLUICE_FAMILY_IPV4 ? kIcmpV4MaxLen : kIcmpV6MaxLen;
    if (pkt.headroom < hdrs) return false;

    const uint32_t quoted = pp.l3_len < max_len - hdrs ? pp.l3_len : max_len - hdrs;
    uint8_t* const body = pkt.data + pp.l3_offset;  // the received IP packet stays where it is
    uint8_t* const ip = body - hdrs;
    uint8_t* const icmp = body - kIcmpHdrLen;
    uint8_t* const l2 = ip - pp.l3_offset;

    uint8_t client_mac[SLUICE_ETH_ALEN];
    std::memcpy(client_mac, pkt.data + 6, SLUICE_ETH_ALEN);

    sluice_icmp_hdr ih{};
    if constexpr (kFamily == SLUICE_FAMILY_IPV4) {
        ih.type = SLUICE_ICMP_DEST_UNREACH;
        ih.code = SLUICE_ICMP_FRAG_NEEDED;
        ih.un.frag.mtu = hton16(static_cast<uint16_t>(reported_mtu));
        uint64_t sum = sluice_csum_add(0, &ih, sizeof(ih));
        sum = sluice_csum_add(sum, body, quoted);
        ih.check = sluice_csum_finish(sum);

        sluice_ipv4_hdr h{};
        h.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
        h.total_len = hton16(static_cast<uint16_t>(hdrs + quoted));
        h.ttl = 64;
        h.protocol = SLUICE_IPPROTO_ICMP;
        h.saddr = pp.dst.v4;
        h.daddr = pp.src.v4;
        h.check = sluice_ipv4_hdr_csum(&h, sizeof(h));
        store(ip, h);
    } else {
        ih.type = SLUICE_ICMPV6_PKT_TOOBIG;
        ih.code = 0;
        ih.un.mtu6 = hton32(reported_mtu);
        uint64_t sum = sluice_pseudo_sum_v6(&pp.dst, &pp.src, SLUICE_IPPROTO_ICMPV6, kIcmpHdrLen + quoted);
        sum = sluice_csum_add(sum, &ih, sizeof(ih));
        sum = sluice_csum_add(sum, body, quoted);
        ih.check = sluice_csum_finish(sum);

        sluice_ipv6_hdr h{};
        h.ver_tc_flow = hton32(6u << 28);
        h.payload_len = hton16(static_cast<uint16_t>(kIcmpHdrLen + quoted));
        h.nexthdr = SLUICE_IPPROTO_ICMPV6;
        h.hop_limit = 64;
        h.saddr = pp.dst;
        h.daddr = pp.src;
        store(ip, h);
    }
    store(icmp, ih);

    // L2: same layout as received (tag kept), addressed back to the sender.
    if (pp.has_vlan) {
        store<uint16_t>(l2 + 12, hton16(SLUICE_ETH_P_VLAN));
        store<uint16_t>(l2 + 14, pp.vlan_tci);
        store<uint16_t>(l2 + 16, hton16(kFamily == SLUICE_FAMILY_IPV4 ? SLUICE_ETH_P_IPV4 : SLUICE_ETH_P_IPV6));
    } else {
        store<uint16_t>(l2 + 12, hton16(kFamily == SLUICE_FAMILY_IPV4 ? SLUICE_ETH_P_IPV4 : SLUICE_ETH_P_IPV6));
    }
    std::memcpy(l2, client_mac, SLUICE_ETH_ALEN);
    std::memcpy(l2 + 6, our_mac, SLUICE_ETH_ALEN);

    pkt.data = l2;
    pkt.len = pp.l3_offset + hdrs + quoted;
    pkt.headroom -= hdrs;
    return true;
}

inline bool build_icmp4_frag_needed(Packet& p, const ParsedPacket& pp, const uint8_t* mac, uint32_t mtu)
{
    return build_packet_too_big<SLUICE_FAMILY_IPV4>(p, pp, mac, mtu);
}
inline bool build_icmp6_packet_too_big(Packet& p, const ParsedPacket& pp, const uint8_t* mac, uint32_t mtu)
{
    return build_packet_too_big<SLUICE_FAMILY_IPV6>(p, pp, mac, mtu);
}

}  // namespace sluice::core
