// ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861) messages as the
// neighbour manager reads and writes them: a parser that validates what the
// core only classified, and builders for requests, replies, solicitations
// and advertisements. Plain buffers, no DPDK types, so the bytes are tested
// against scapy without an EAL. Pure functions, callable from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>

extern "C" {
#include "abi/types.h"
#include "abi/wire.h"
}

namespace sluice::dpdk {

using MacAddress = std::array<uint8_t, 6>;

// An IPv4 or IPv6 address: family SLUICE_FAMILY_IPV4/6 and the bytes in
// network order, IPv4 in the first four and the rest zero (the layout of
// union sluice_addr and of model::IpAddress, so converting is a copy).
struct NeighborAddress {
    uint8_t family = SLUICE_FAMILY_IPV4;
    std::array<uint8_t, 16> bytes{};

    static NeighborAddress v4(const uint8_t b[4]);
    static NeighborAddress v6(const uint8_t b[16]);
    // Parses a literal ("10.0.0.1", "2001:db8::1"); nullopt if it is neither.
    static std::optional<NeighborAddress> parse(const char* text);
    bool is_unspecified() const;
    bool operator==(const NeighborAddress&) const = default;
};

struct NeighborAddressHash {
    size_t operator()(const NeighborAddress& a) const;
};

// Frame sizes the builders write. ARP is padded to the 60-byte Ethernet
// minimum (without FCS): ring and TAP devices do not pad.
inline constexpr uint32_t kArpFrameLen = 60;
inline constexpr uint32_t kNdFrameLen = 14 + 40 + 24 + 8;  // header, target, one link-layer option
inline constexpr uint32_t kMaxNeighborFrameLen = kNdFrameLen + 4;  // with one 802.1Q tag

// One ARP or NS/NA message, validated.
struct NeighborMessage {
    enum class Kind : uint8_t { kArpRequest, kArpReply, kSolicit, kAdvert };
    Kind kind = Kind::kArpRequest;
    bool has_vlan = false;
    uint16_t vlan_tci = 0;       // as on the wire, when has_vlan
    MacAddress eth_src{};        // Ethernet source
    NeighborAddress sender;      // ARP sender / IPv6 source (:: for DAD)
    NeighborAddress target;      // ARP target / ND target address
    // The binding the message announces, if any: ARP sender (sha, spa); NS
    // source (source link-layer option, IPv6 source); NA target (target
    // link-layer option, target address).
    std::optional<MacAddress> announced_mac;
    NeighborAddress announced;
    bool solicited = false;      // NA S flag
    bool override_flag = false;  // NA O flag
};

// Parses an Ethernet frame (+ at most one 802.1Q tag) holding ARP for
// Ethernet/IPv4, or ICMPv6 NS/NA with hop limit 255, code 0, a correct
// checksum and a non-multicast target (RFC 4861 §7.1). nullopt otherwise.
std::optional<NeighborMessage> parse_neighbor_message(const uint8_t* frame, uint32_t len);

// Optional 802.1Q tag for the builders: replies keep the request's tag.
struct VlanTag {
    bool present = false;
    uint16_t tci = 0;  // as on the wire
};

// Writes an ARP frame into `out` (at least kArpFrameLen + 4 bytes) and
// returns its length. `eth_dst` broadcast for a request, the asker for a
// reply; `tha` zero in requests (RFC 5227 §2.1.1 style).
uint32_t build_arp(uint8_t* out, uint16_t op, const MacAddress& eth_dst, const MacAddress& sha,
                   const NeighborAddress& spa, const MacAddress& tha, const NeighborAddress& tpa, VlanTag vlan = {});

// Writes a neighbour solicitation for `target` from (`src_mac`, `src_ip`)
// with a source link-layer option. Multicast to the target's solicited-node
// group (RFC 4291 §2.7.1) unless `unicast_mac` is given: then to the target
// itself at that MAC, as a reachability probe (RFC 4861 §7.3.3).
uint32_t build_neighbor_solicit(uint8_t* out, const MacAddress& src_mac, const NeighborAddress& src_ip,
                                const NeighborAddress& target, const std::optional<MacAddress>& unicast_mac,
                                VlanTag vlan = {});

// Writes a solicited neighbour advertisement for `target` (ours) with the
// S and O flags and a target link-layer option `our_mac`, from `target` to
// (`dst_mac`, `dst_ip`). R is clear: sluice is a host on the segment.
uint32_t build_neighbor_advert(uint8_t* out, const MacAddress& our_mac, const NeighborAddress& target,
                               const MacAddress& dst_mac, const NeighborAddress& dst_ip, VlanTag vlan = {});

// The solicited-node multicast address of `a`: ff02::1:ffXX:XXXX.
NeighborAddress solicited_node(const NeighborAddress& a);

}  // namespace sluice::dpdk
