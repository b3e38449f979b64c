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

// A packet's 5-tuple as classify_fast() compares it with the packet before
// (a train of one flow's packets, TCP segments back to back in one RX
// burst, finds its service once: the service depends on the snapshot and
// (address, port, protocol) only).
// No default initializers: the pipeline keeps one per packet of a chunk on
// the stack and writes each before it is read.
struct FastTuple {
    static constexpr uint64_t kNone = ~uint64_t{0};  // no tuple's `ports`: proto is 8 bits
    uint64_t addrs;  // the IPv4 header's bytes 12-19 (saddr, daddr) as one native word
    uint64_t ports;  // the L4 header's bytes 0-3 (sport, dport) | proto << 32
};

// Parses and classifies a packet the fast path takes, filling `pp` as
// parse_l2(), parse_ipv4() and parse_tcp_udp() would. Returns its service,
// or nullptr (nothing written) for anything else: non-IPv4, QinQ, IPv4
// options, fragments, other protocols, anything the general parser would
// drop (its drop reason is its to count), and packets to no service (the
// general path tells "wrong port" from "not a VIP"). `tuple` gets the
// packet's 5-tuple; `repeat` is set when it is `prev`, whose service
// `prev_vip` (same snapshot) is then returned without a lookup. On nullptr,
// tuple and repeat are unchanged.
SLUICE_ALWAYS_INLINE const VipRuntime* classify_fast(const Packet& pkt, const ForwardingState& st, ParsedPacket& pp,
                                                     const FastTuple& prev, const VipRuntime* prev_vip,
                                                     FastTuple& tuple, bool& repeat)
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
    // The 5-tuple as two words, as FastTuple has it.
    const uint64_t addrs = load<uint64_t>(ip + 12);
    const uint32_t port_word = load<uint32_t>(l4);
    const uint64_t ports = uint64_t{port_word} | uint64_t{proto} << 32;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const auto saddr = static_cast<uint32_t>(addrs);
    const auto daddr = static_cast<uint32_t>(addrs >> 32);
    const auto sport = static_cast<uint16_t>(port_word);
    const auto dport = static_cast<uint16_t>(port_word >> 16);
#else
    const auto saddr = static_cast<uint32_t>(addrs >> 32);
    const auto daddr = static_cast<uint32_t>(addrs);
    const auto sport = static_cast<uint16_t>(port_word >> 16);
    const auto dport = static_cast<uint16_t>(port_word);
#endif
    const VipRuntime* vip;
    if (addrs == prev.addrs && ports == prev.ports) {
        vip = prev_vip;
        repeat = true;
    } else {
        vip = st.find_service_v4(daddr, dport, proto);
        if (vip == nullptr) return nullptr;
        repeat = false;
    }
    tuple.addrs = addrs;
    tuple.ports = ports;

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

// The same for a packet on its own.
SLUICE_ALWAYS_INLINE const VipRuntime* classify_fast(const Packet& pkt, const ForwardingState& st, ParsedPacket& pp)
{
    FastTuple tuple;
    bool repeat = false;
    return classify_fast(pkt, st, pp, FastTuple{0, FastTuple::kNone}, nullptr, tuple, repeat);
}

// IPIP or GUE of an IPv4 packet to an IPv4 backend: the bytes
// encapsulate<kMode, IPv4, IPv4>() writes, from the ingress port's
// precomputed Ethernet header and the backend's precomputed outer-header
// sum; a received 802.1Q tag is re-emitted one-arm, dropped two-arm, as
// there. Returns false having written nothing when the general path must
// decide: the MTU exceeded (ICMP or drop) or too little headroom. The
// caller has checked fi.tunnel_ready. kKeepTag: pp.has_vlan && fi.one_arm
// (a template parameter so the untagged path pays nothing for the tag).
template <Encap kMode, bool kKeepTag>
SLUICE_ALWAYS_INLINE bool tunnel_fast_v4_l2(Packet& pkt, const ParsedPacket& pp, const FastIngress& fi,
                                            const FastOuterV4& o, uint32_t flow_hash, uint16_t gue_dport)
{
    static_assert(kMode == Encap::kIpip || kMode == Encap::kGue, "tunnels only");
    constexpr uint32_t overhead = encap_overhead(kMode, SLUICE_FAMILY_IPV4);
    constexpr uint8_t ip_proto = kMode == Encap::kGue ? SLUICE_IPPROTO_UDP : SLUICE_IPPROTO_IPIP;
    const uint32_t inner_len = pp.l3_len;
    const uint32_t have = pkt.headroom + pp.l3_offset;
    constexpr uint32_t l2_len = kKeepTag ? kEthHdrLen + kVlanHdrLen : kEthHdrLen;
    if (SLUICE_UNLIKELY(inner_len + overhead > fi.mtu || overhead + l2_len > have)) return false;

    uint8_t* const outer = pkt.data + pp.l3_offset - overhead;
    uint8_t* const l2 = outer - l2_len;
    // One 16-byte store: the Ethernet header and two bytes the IP header
    // (or the tag) overwrites just below.
    std::memcpy(l2, fi.l2_ipv4, sizeof fi.l2_ipv4);
    if constexpr (kKeepTag) {
        store<uint16_t>(l2 + 12, hton16(SLUICE_ETH_P_VLAN));
        store<uint16_t>(l2 + 14, pp.vlan_tci);
        store<uint16_t>(l2 + 16, hton16(SLUICE_ETH_P_IPV4));
    }

    const uint16_t total_len = hton16(static_cast<uint16_t>(inner_len + overhead));
    const uint16_t frag_off = pp.ipv4_df ? hton16(SLUICE_IPV4_DF) : 0;
    // The sum encapsulate() forms, in the same one's complement class: its
    // wire_word(0x45, tos) and wire_word(64, proto) split into the constant
    // bytes, pre-folded in o.sum, and the packet's. Six 16-bit terms stay
    // below 2^19, so two end-around-carry steps fold them, and a folded
    // value is the one sluice_csum_fold gives for the unsplit sum (a
    // non-zero sum folds to its residue mod 0xFFFF, 0xFFFF for a multiple).
    uint32_t sum = o.sum + wire_word(0, pp.tos) + wire_word(0, ip_proto) + total_len + pp.ipv4_id + frag_off;
    sum = (sum & 0xFFFFu) + (sum >> 16);
    sum = (sum & 0xFFFFu) + (sum >> 16);
    const auto check = static_cast<uint16_t>(~sum);
    const uint16_t gue_sport = hton16(sluice_gue_sport(flow_hash));
    const uint16_t udp_len = hton16(static_cast<uint16_t>(kUdpHdrLen + inner_len));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // The headers as words in registers, each stored once: built as structs
    // on the stack they were written in pieces and read back whole, which
    // store forwarding cannot serve (a stall of tens of cycles per packet).
    // Every field is already in wire order, so its bytes land where the
    // struct puts them.
    const uint64_t w0 = uint64_t{SLUICE_IPV4_VERSION_IHL(5)} | uint64_t{pp.tos} << 8 | uint64_t{total_len} << 16 |
                        uint64_t{pp.ipv4_id} << 32 | uint64_t{frag_off} << 48;
    const uint64_t w1 = uint64_t{64} | uint64_t{ip_proto} << 8 | uint64_t{check} << 16 | uint64_t{o.saddr} << 32;
    store(outer, w0);
    store(outer + 8, w1);
    store(outer + 16, o.daddr);
    if constexpr (kMode == Encap::kGue) {
        // Checksum 0 over IPv4, as encapsulate() (RFC 768, RFC 8086).
        store(outer + kIpv4HdrLen, uint64_t{gue_sport} | uint64_t{gue_dport} << 16 | uint64_t{udp_len} << 32);
    }
#else
    sluice_ipv4_hdr h;
    h.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
    h.tos = pp.tos;
    h.total_len = total_len;
    h.id = pp.ipv4_id;
    h.frag_off = frag_off;
    h.ttl = 64;
    h.protocol = ip_proto;
    h.check = check;
    h.saddr = o.saddr;
    h.daddr = o.daddr;
    store(outer, h);
    if constexpr (kMode == Encap::kGue) {
        sluice_udp_hdr u;
        u.sport = gue_sport;
        u.dport = gue_dport;
        u.len = udp_len;
        u.check = 0;  // over IPv4, as encapsulate() (RFC 768, RFC 8086)
        store(outer + kIpv4HdrLen, u);
    }
#endif
    if constexpr (kMode != Encap::kGue) {
        (void)gue_sport;
        (void)udp_len;
        (void)gue_dport;
    }

    pkt.data = l2;
    pkt.len = l2_len + overhead + inner_len;
    pkt.headroom = have - overhead - l2_len;
    return true;
}

// The tunnel for either L2 header: see tunnel_fast_v4_l2.
template <Encap kMode>
SLUICE_ALWAYS_INLINE bool tunnel_fast_v4(Packet& pkt, const ParsedPacket& pp, const FastIngress& fi,
                                         const FastOuterV4& o, uint32_t flow_hash, uint16_t gue_dport)
{
    if (SLUICE_UNLIKELY(pp.has_vlan && fi.one_arm))
        return tunnel_fast_v4_l2<kMode, true>(pkt, pp, fi, o, flow_hash, gue_dport);
    return tunnel_fast_v4_l2<kMode, false>(pkt, pp, fi, o, flow_hash, gue_dport);
}

}  // namespace sluice::core
