// Forwarding writers: IP-in-IP (4in4, 6in6, 4in6, 6in4), GUE over IPv4 or
// IPv6, and L2 DSR. One always_inline template specialised by (mode, outer
// family, inner family), as VPP's lb plugin does per node, so each variant
// compiles to straight-line stores; the named wrappers below are the only
// combinations that exist, and the static_asserts refuse any other.
//
// Header choices, the same on the XDP plane (parity):
// - outer TTL / hop limit 64; the inner TTL is left alone: the LB is a
//   tunnel entry point, not a router hop (as Katran and GLB).
// - outer DSCP/ECN copied from the inner TOS / traffic class (RFC 2003 §3.1,
//   RFC 6040 normal mode), so QoS and ECN survive the tunnel.
// - outer IPv4 DF copied from an inner IPv4 header (the sender asked for
//   PMTU discovery or not); set for inner IPv6, which routers never fragment.
// - outer IPv4 ID: the inner IPv4 ID (already unique per datagram at the
//   client, so fragments of the outer packet reassemble correctly); 0 for
//   inner IPv6, whose outer packet has DF set (RFC 6864 §4.1: atomic).
// - outer IPv6 flow label: the low 20 bits of the flow hash (RFC 6438), so
//   ECMP and RSS toward the backend spread flows.
// - GUE: variant 1 (no GUE header), UDP source port sluice_gue_sport(hash),
//   destination port the service's. UDP checksum 0 over IPv4 (RFC 768
//   permits it, RFC 8086 too); over IPv6 zero is forbidden (RFC 8200 §8.1;
//   RFC 6935's exception needs the backend to opt in), so it is computed
//   over the whole packet: a NIC offload is a runtime optimisation.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/packet.h"
#include "core/parse.h"

extern "C" {
#include "abi/checksum.h"
#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::core {

// The VIP's sluice_forwarding, as the writers' template argument.
enum class Encap : uint8_t { kIpip = SLUICE_FWD_IPIP, kGue = SLUICE_FWD_GUE, kL2Dsr = SLUICE_FWD_L2DSR };

// Bytes an encapsulation adds in front of the inner IP packet (the ABI's
// one definition, which the XDP program and the MTU warnings use too).
constexpr uint32_t encap_overhead(Encap mode, uint8_t outer_family)
{
    return sluice_encap_overhead(static_cast<uint8_t>(mode), outer_family);
}
static_assert(encap_overhead(Encap::kIpip, SLUICE_FAMILY_IPV4) == kIpv4HdrLen);
static_assert(encap_overhead(Encap::kGue, SLUICE_FAMILY_IPV6) == kIpv6HdrLen + kUdpHdrLen);
static_assert(encap_overhead(Encap::kL2Dsr, SLUICE_FAMILY_IPV6) == 0);

// Everything a writer needs besides the packet; the pipeline fills it from
// the snapshot.
struct EncapParams {
    const uint8_t* src_mac;          // our MAC on the egress port
    const uint8_t* dst_mac;          // next hop (IPIP/GUE) or backend (L2 DSR)
    const sluice_addr* outer_src;    // local address of the backend's family
    const sluice_addr* outer_dst;    // backend address
    uint32_t flow_hash;              // sluice_flow_hash of the flow key
    uint16_t gue_dport;              // network order
    uint16_t mtu;                    // egress L3 MTU
    bool keep_vlan;                  // re-emit the received 802.1Q tag
};

enum class EncapStatus : uint8_t { kOk, kMtuExceeded, kNoHeadroom };

// The 16-bit word whose two bytes in memory are `first`, `second`: how a
// checksum routine reading the header as native words sees them.
SLUICE_ALWAYS_INLINE uint32_t wire_word(uint8_t first, uint8_t second)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // By shifts: the two bytes stored apart and loaded as one word stalled
    // every packet on store forwarding, which cannot merge two stores.
    return static_cast<uint32_t>(first) | static_cast<uint32_t>(second) << 8;
#else
    return static_cast<uint32_t>(first) << 8 | static_cast<uint32_t>(second);
#endif
}

// Rewrites `pkt` in place to [Ethernet (+ tag)][outer headers][inner IP
// packet]. The inner packet does not move; the new headers are written in
// front of it, over the old L2 header and into the headroom. Frame padding
// after the inner packet is cut off.
template <Encap kMode, uint8_t kOuter, uint8_t kInner>
SLUICE_ALWAYS_INLINE EncapStatus encapsulate(Packet& pkt, const ParsedPacket& pp, const EncapParams& ep)
{
    static_assert(kOuter == SLUICE_FAMILY_IPV4 || kOuter == SLUICE_FAMILY_IPV6, "outer family");
    static_assert(kInner == SLUICE_FAMILY_IPV4 || kInner == SLUICE_FAMILY_IPV6, "inner family");
    static_assert(kMode != Encap::kL2Dsr || kOuter == kInner, "L2 DSR has no outer IP header");

    constexpr uint32_t overhead = encap_overhead(kMode, kOuter);
    const uint32_t inner_len = pp.l3_len;
    if (inner_len + overhead > ep.mtu) return EncapStatus::kMtuExceeded;
    const uint32_t l2_len = ep.keep_vlan ? kEthHdrLen + kVlanHdrLen : kEthHdrLen;
    const uint32_t need = overhead + l2_len;
    const uint32_t have = pkt.headroom + pp.l3_offset;
    if (need > have) return EncapStatus::kNoHeadroom;

    uint8_t* const inner = pkt.data + pp.l3_offset;
    uint8_t* const outer = inner - overhead;
    constexpr uint8_t ip_proto = kMode == Encap::kGue         ? SLUICE_IPPROTO_UDP
                                 : kInner == SLUICE_FAMILY_IPV4 ? SLUICE_IPPROTO_IPIP
                                                                : SLUICE_IPPROTO_IPV6;
    constexpr uint32_t ip_hdr_len = kOuter == SLUICE_FAMILY_IPV4 ? kIpv4HdrLen : kIpv6HdrLen;

    if constexpr (kMode != Encap::kL2Dsr) {
        if constexpr (kOuter == SLUICE_FAMILY_IPV4) {
            sluice_ipv4_hdr h{};
            h.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
            h.tos = pp.tos;
            h.total_len = hton16(static_cast<uint16_t>(inner_len + overhead));
            if constexpr (kInner == SLUICE_FAMILY_IPV4) {
                h.id = pp.ipv4_id;
                h.frag_off = pp.ipv4_df ? hton16(SLUICE_IPV4_DF) : 0;
            } else {
                h.id = 0;
                h.frag_off = hton16(SLUICE_IPV4_DF);
            }
            h.ttl = 64;
            h.protocol = ip_proto;
            h.check = 0;
            h.saddr = ep.outer_src->v4;
            h.daddr = ep.outer_dst->v4;
            // The RFC 1071 sum from the values in registers rather than
            // over the header's bytes: summing a built struct made the
            // compiler store it to the stack and load it back as words.
            // A one's complement sum may add 32-bit words (it folds to the
            // same 16 bits), and each 16-bit word here is the native load
            // of its two wire bytes, as sluice_csum_add reads them, so the
            // checksum is bit for bit the one sluice_ipv4_hdr_csum gives.
            uint64_t sum = static_cast<uint64_t>(h.saddr) + h.daddr;
            sum += wire_word(h.version_ihl, h.tos) + h.total_len + h.id + h.frag_off + wire_word(h.ttl, h.protocol);
            h.check = sluice_csum_finish(sum);
            store(outer, h);
        } else {
            sluice_ipv6_hdr h{};
            h.ver_tc_flow = hton32((6u << 28) | (static_cast<uint32_t>(pp.tos) << 20) | (ep.flow_hash & 0xFFFFFu));
            h.payload_len = hton16(static_cast<uint16_t>(inner_len + overhead - kIpv6HdrLen));
            h.nexthdr = ip_proto;
            h.hop_limit = 64;
            h.saddr = *ep.outer_src;
            h.daddr = *ep.outer_dst;
            store(outer, h);
        }
        if constexpr (kMode == Encap::kGue) {
            sluice_udp_hdr u{};
            const uint16_t udp_len = static_cast<uint16_t>(kUdpHdrLen + inner_len);
            u.sport = hton16(sluice_gue_sport(ep.flow_hash));
            u.dport = ep.gue_dport;
            u.len = hton16(udp_len);
            u.check = 0;
            if constexpr (kOuter == SLUICE_FAMILY_IPV6) {
                uint64_t sum = sluice_pseudo_sum_v6(ep.outer_src, ep.outer_dst, SLUICE_IPPROTO_UDP, udp_len);
                sum = sluice_csum_add(sum, &u, sizeof(u));
                sum = sluice_csum_add(sum, inner, inner_len);
                u.check = sluice_csum_finish(sum);
                if (u.check == 0) u.check = 0xFFFF;  // 0 means "no checksum" (RFC 768)
            }
            store(outer + ip_hdr_len, u);
        }
    }

    // L2 last: the outer headers may have overwritten the old one, and the
    // tag (saved by the parser) is re-emitted only on the same link.
    uint8_t* const l2 = outer - l2_len;
    std::memcpy(l2, ep.dst_mac, SLUICE_ETH_ALEN);
    std::memcpy(l2 + 6, ep.src_mac, SLUICE_ETH_ALEN);
    constexpr uint16_t ethertype = kOuter == SLUICE_FAMILY_IPV4 ? SLUICE_ETH_P_IPV4 : SLUICE_ETH_P_IPV6;
    if (ep.keep_vlan) {
        store<uint16_t>(l2 + 12, hton16(SLUICE_ETH_P_VLAN));
        store<uint16_t>(l2 + 14, pp.vlan_tci);
        store<uint16_t>(l2 + 16, hton16(ethertype));
    } else {
        store<uint16_t>(l2 + 12, hton16(ethertype));
    }

    pkt.data = l2;
    pkt.len = need + inner_len;
    pkt.headroom = have - need;
    return EncapStatus::kOk;
}

// The named variants (the only instantiations). Always inline, as VPP's
// per-node specialisations: an out-of-line call made the pipeline build
// EncapParams in memory and the callee load it back.
SLUICE_ALWAYS_INLINE EncapStatus encap_ipip_4in4(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kIpip, SLUICE_FAMILY_IPV4, SLUICE_FAMILY_IPV4>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus encap_ipip_6in6(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kIpip, SLUICE_FAMILY_IPV6, SLUICE_FAMILY_IPV6>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus encap_ipip_4in6(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kIpip, SLUICE_FAMILY_IPV6, SLUICE_FAMILY_IPV4>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus encap_ipip_6in4(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kIpip, SLUICE_FAMILY_IPV4, SLUICE_FAMILY_IPV6>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus encap_gue_4in4(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kGue, SLUICE_FAMILY_IPV4, SLUICE_FAMILY_IPV4>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus encap_gue_6in6(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kGue, SLUICE_FAMILY_IPV6, SLUICE_FAMILY_IPV6>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus encap_gue_4in6(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kGue, SLUICE_FAMILY_IPV6, SLUICE_FAMILY_IPV4>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus encap_gue_6in4(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kGue, SLUICE_FAMILY_IPV4, SLUICE_FAMILY_IPV6>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus l2dsr_v4(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kL2Dsr, SLUICE_FAMILY_IPV4, SLUICE_FAMILY_IPV4>(p, pp, e);
}
SLUICE_ALWAYS_INLINE EncapStatus l2dsr_v6(Packet& p, const ParsedPacket& pp, const EncapParams& e)
{
    return encapsulate<Encap::kL2Dsr, SLUICE_FAMILY_IPV6, SLUICE_FAMILY_IPV6>(p, pp, e);
}

// Runtime dispatch to the named variant for a packet's (mode, backend
// family, packet family).
SLUICE_ALWAYS_INLINE EncapStatus forward_packet(Encap mode, uint8_t outer, Packet& p, const ParsedPacket& pp,
                                                const EncapParams& e)
{
    const bool in4 = pp.family == SLUICE_FAMILY_IPV4;
    const bool out4 = outer == SLUICE_FAMILY_IPV4;
    switch (mode) {
    case Encap::kIpip:
        return out4 ? (in4 ? encap_ipip_4in4(p, pp, e) : encap_ipip_6in4(p, pp, e))
                    : (in4 ? encap_ipip_4in6(p, pp, e) : encap_ipip_6in6(p, pp, e));
    case Encap::kGue:
        return out4 ? (in4 ? encap_gue_4in4(p, pp, e) : encap_gue_6in4(p, pp, e))
                    : (in4 ? encap_gue_4in6(p, pp, e) : encap_gue_6in6(p, pp, e));
    case Encap::kL2Dsr:
        return in4 ? l2dsr_v4(p, pp, e) : l2dsr_v6(p, pp, e);
    }
    return EncapStatus::kNoHeadroom;  // unreachable: Encap has three values
}

}  // namespace sluice::core
