// The fast path for the common packet: Ethernet (+ at most one 802.1Q tag),
// IPv4 without options, not a fragment, TCP or UDP to a configured service,
// tunnelled (IPIP or GUE) to an IPv4 backend. Each function either does
// exactly what the general path (parse.h, classify() in pipeline_impl.h,
// encap.h) does for the packet, or declines before writing anything, and the
// general path then takes the packet as if the fast path did not exist.
// tests/dataplane/fast_path_test.cpp checks both: same results where it
// accepts, a decline at each condition it does not handle.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/bytes.h"
#include "core/encap.h"
#include "core/forwarding_state.h"
#include "core/packet.h"
#include "core/parse.h"

extern "C" {
#include "abi/checksum.h"
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::core {

// Parses and classifies a packet the fast path takes, filling `pp` as
// parse_l2(), parse_ipv4() and parse_tcp_udp() would. Returns its service,
// or nullptr (nothing written) for anything else: non-IPv4, QinQ, IPv4
// options, fragments, other protocols, anything the general parser would
// drop (its drop reason is its to count), and packets to no service (the
// general path tells "wrong port" from "not a VIP").
SLUICE_ALWAYS_INLINE const VipRuntime* classify_fast(const Packet& pkt, const ForwardingState& st, ParsedPacket& pp)
{
    const uint8_t* const d = pkt.data;
    const uint32_t len = pkt.len;
    // The shortest frame taken (UDP, no tag); reads below stay inside it
    // until the IP total length, checked against it, bounds them.
    if (SLUICE_UNLIKELY(len < kEthHdrLen + kIpv4HdrLen + kUdpHdrLen)) return nullptr;
    uint32_t l3 = kEthHdrLen;
    uint16_t type = load<uint16_t>(d + 12);  // wire order, compared with wire-order constants
    uint16_t tci = 0;
    if (type == hton16(SLUICE_ETH_P_VLAN)) {
        tci = load<uint16_t>(d + 14);
        type = load<uint16_t>(d + 16);
        l3 = kEthHdrLen + kVlanHdrLen;
    }
    if (type != hton16(SLUICE_ETH_P_IPV4)) return nullptr;
    const uint8_t* const ip = d + l3;
    const uint32_t total = ntoh16(load<uint16_t>(ip + 2));
    const uint16_t frag = load<uint16_t>(ip + 6);
    if (ip[0] != SLUICE_IPV4_VERSION_IHL(5) || total < kIpv4HdrLen || total > len - l3 ||
        (frag & hton16(SLUICE_IPV4_MF | SLUICE_IPV4_OFFSET_MASK)) != 0)
        return nullptr;
    const uint8_t proto = ip[9];
    const uint8_t* const l4 = ip + kIpv4HdrLen;
    const uint32_t avail = total - kIpv4HdrLen;
    uint8_t tcp_flags = 0;
    if (proto == SLUICE_IPPROTO_TCP) {
        if (avail < kTcpHdrLen) return nullptr;
        const uint32_t doff = (l4[12] >> 4) * 4u;
        if (doff < kTcpHdrLen || doff > avail) return nullptr;
        tcp_flags = l4[13];
    } else if (proto == SLUICE_IPPROTO_UDP) {
        if (avail < kUdpHdrLen) return nullptr;
        const uint32_t ulen = ntoh16(load<uint16_t>(l4 + 4));
        if (ulen < kUdpHdrLen || ulen > avail) return nullptr;
    } else {
        return nullptr;
    }
    const uint32_t saddr = load<uint32_t>(ip + 12);
    const uint32_t daddr = load<uint32_t>(ip + 16);
    const uint16_t sport = load<uint16_t>(l4);
    const uint16_t dport = load<uint16_t>(l4 + 2);
    const VipRuntime* const vip = st.find_service_v4(daddr, dport, proto);
    if (vip == nullptr) return nullptr;

    pp.l3_offset = static_cast<uint16_t>(l3);
    pp.l4_offset = static_cast<uint16_t>(l3 + kIpv4HdrLen);
    pp.l3_len = total;
    pp.vlan_tci = tci;
    pp.ipv4_id = load<uint16_t>(ip + 4);
    pp.family = SLUICE_FAMILY_IPV4;
    pp.l4_proto = proto;
    pp.tos = ip[1];
    pp.tcp_flags = tcp_flags;
    pp.has_vlan = l3 != kEthHdrLen;
    pp.ipv4_df = (frag & hton16(SLUICE_IPV4_DF)) != 0;
    pp.fragment = false;
    pp.icmp_error = false;
    pp.src = {};
    pp.src.v4 = saddr;
    pp.dst = {};
    pp.dst.v4 = daddr;
    pp.key = {};
    pp.key.src.v4 = saddr;
    pp.key.dst.v4 = daddr;
    pp.key.sport = sport;
    pp.key.dport = dport;
    pp.key.proto = proto;
    pp.key.family = SLUICE_FAMILY_IPV4;
    return vip;
}

// IPIP or GUE of an IPv4 packet to an IPv4 backend: the bytes
// encapsulate<kMode, IPv4, IPv4>() writes, from the ingress port's
// precomputed Ethernet header and the backend's precomputed outer-header
// sum. Returns false having written nothing when the general path must
// decide: a VLAN tag to keep (one-arm), the MTU exceeded (ICMP or drop) or
// too little headroom. The caller has checked fi.tunnel_ready.
template <Encap kMode>
SLUICE_ALWAYS_INLINE bool tunnel_fast_v4(Packet& pkt, const ParsedPacket& pp, const FastIngress& fi,
                                         const FastOuterV4& o, uint32_t flow_hash, uint16_t gue_dport)
{
    static_assert(kMode == Encap::kIpip || kMode == Encap::kGue, "tunnels only");
    constexpr uint32_t overhead = encap_overhead(kMode, SLUICE_FAMILY_IPV4);
    constexpr uint8_t ip_proto = kMode == Encap::kGue ? SLUICE_IPPROTO_UDP : SLUICE_IPPROTO_IPIP;
    const uint32_t inner_len = pp.l3_len;
    const uint32_t have = pkt.headroom + pp.l3_offset;
    if (SLUICE_UNLIKELY(inner_len + overhead > fi.mtu || overhead + kEthHdrLen > have || (pp.has_vlan && fi.one_arm)))
        return false;

    uint8_t* const outer = pkt.data + pp.l3_offset - overhead;
    uint8_t* const l2 = outer - kEthHdrLen;
    // One 16-byte store: the Ethernet header and two bytes the IP header
    // overwrites just below.
    std::memcpy(l2, fi.l2_ipv4, sizeof fi.l2_ipv4);

    sluice_ipv4_hdr h;
    h.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
    h.tos = pp.tos;
    h.total_len = hton16(static_cast<uint16_t>(inner_len + overhead));
    h.id = pp.ipv4_id;
    h.frag_off = pp.ipv4_df ? hton16(SLUICE_IPV4_DF) : 0;
    h.ttl = 64;
    h.protocol = ip_proto;
    h.saddr = o.saddr;
    h.daddr = o.daddr;
    // The sum encapsulate() forms, in the same one's complement class: its
    // wire_word(0x45, tos) and wire_word(64, proto) split into the constant
    // bytes, pre-folded in o.sum, and the packet's. Six 16-bit terms stay
    // below 2^19, so two end-around-carry steps fold them, and a folded
    // value is the one sluice_csum_fold gives for the unsplit sum (a
    // non-zero sum folds to its residue mod 0xFFFF, 0xFFFF for a multiple).
    uint32_t sum = o.sum + wire_word(0, h.tos) + wire_word(0, ip_proto) + h.total_len + h.id + h.frag_off;
    sum = (sum & 0xFFFFu) + (sum >> 16);
    sum = (sum & 0xFFFFu) + (sum >> 16);
    h.check = static_cast<__sum16>(static_cast<uint16_t>(~sum));
    store(outer, h);
    if constexpr (kMode == Encap::kGue) {
        sluice_udp_hdr u;
        u.sport = hton16(sluice_gue_sport(flow_hash));
        u.dport = gue_dport;
        u.len = hton16(static_cast<uint16_t>(kUdpHdrLen + inner_len));
        u.check = 0;  // over IPv4, as encapsulate() (RFC 768, RFC 8086)
        store(outer + kIpv4HdrLen, u);
    } else {
        (void)flow_hash;
        (void)gue_dport;
    }

    pkt.data = l2;
    pkt.len = kEthHdrLen + overhead + inner_len;
    pkt.headroom = have - overhead - kEthHdrLen;
    return true;
}

}  // namespace sluice::core
