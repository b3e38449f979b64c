// ARP and NS/NA parsing and building; see neighbor_wire.h. Offsets are
// written out against the RFC layouts rather than through packed structs,
// since ND fields sit at 2-byte alignment after a VLAN tag.
#include "dataplane/dpdk/neighbor_wire.h"

#include <arpa/inet.h>

extern "C" {
#include "abi/checksum.h"
}

namespace sluice::dpdk {
namespace {

constexpr uint32_t kEth = 14;
constexpr uint32_t kIp6 = 40;
constexpr uint32_t kNdBody = 24;          // type, code, checksum, flags/reserved, target
constexpr uint8_t kOptSourceLl = 1;       // RFC 4861 §4.6.1
constexpr uint8_t kOptTargetLl = 2;
constexpr uint8_t kNaSolicited = 0x40;    // first flags byte: R 0x80, S 0x40, O 0x20
constexpr uint8_t kNaOverride = 0x20;

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

void put16(uint8_t* p, uint16_t v)
{
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

// Ethernet (+ tag) header; returns the bytes written.
uint32_t put_eth(uint8_t* out, const MacAddress& dst, const MacAddress& src, uint16_t type, VlanTag vlan)
{
    std::memcpy(out, dst.data(), 6);
    std::memcpy(out + 6, src.data(), 6);
    if (!vlan.present) {
        put16(out + 12, type);
        return kEth;
    }
    put16(out + 12, SLUICE_ETH_P_VLAN);
    std::memcpy(out + 14, &vlan.tci, 2);
    put16(out + 16, type);
    return kEth + 4;
}

// ICMPv6 checksum over the pseudo header and `len` bytes at `icmp`.
uint16_t icmp6_checksum(const uint8_t* ip6, const uint8_t* icmp, uint32_t len)
{
    sluice_addr s, d;
    std::memcpy(&s, ip6 + 8, 16);
    std::memcpy(&d, ip6 + 24, 16);
    uint64_t sum = sluice_pseudo_sum_v6(&s, &d, SLUICE_IPPROTO_ICMPV6, len);
    sum = sluice_csum_add(sum, icmp, len);
    return sluice_csum_finish(sum);
}

// IPv6 header for an ND message of `payload` bytes, hop limit 255.
void put_ip6(uint8_t* ip, const NeighborAddress& src, const NeighborAddress& dst, uint16_t payload)
{
    ip[0] = 0x60;
    ip[1] = ip[2] = ip[3] = 0;
    put16(ip + 4, payload);
    ip[6] = SLUICE_IPPROTO_ICMPV6;
    ip[7] = 255;
    std::memcpy(ip + 8, src.bytes.data(), 16);
    std::memcpy(ip + 24, dst.bytes.data(), 16);
}

MacAddress multicast_mac(const NeighborAddress& group)
{
    return {0x33, 0x33, group.bytes[12], group.bytes[13], group.bytes[14], group.bytes[15]};
}

std::optional<NeighborMessage> parse_arp(const uint8_t* a, uint32_t avail, NeighborMessage m)
{
    if (avail < sizeof(sluice_arp_hdr)) return std::nullopt;
    if (get16(a) != SLUICE_ARP_HRD_ETHER || get16(a + 2) != SLUICE_ETH_P_IPV4 || a[4] != 6 || a[5] != 4)
        return std::nullopt;
    const uint16_t op = get16(a + 6);
    if (op == SLUICE_ARP_OP_REQUEST) {
        m.kind = NeighborMessage::Kind::kArpRequest;
    } else if (op == SLUICE_ARP_OP_REPLY) {
        m.kind = NeighborMessage::Kind::kArpReply;
    } else {
        return std::nullopt;
    }
    MacAddress sha;
    std::memcpy(sha.data(), a + 8, 6);
    m.sender = NeighborAddress::v4(a + 14);
    m.target = NeighborAddress::v4(a + 24);
    m.announced = m.sender;
    // An ARP probe (sender 0.0.0.0, RFC 5227) announces nothing.
    if (!m.sender.is_unspecified()) m.announced_mac = sha;
    return m;
}

// The first option of `type` with a 6-byte link-layer address, walking
// every option so a zero-length one (RFC 4861 §4.6: discard) is caught.
bool find_ll_option(const uint8_t* opt, uint32_t len, uint8_t type, std::optional<MacAddress>& out)
{
    while (len != 0) {
        if (len < 2 || opt[1] == 0 || opt[1] * 8u > len) return false;
        if (opt[0] == type && opt[1] == 1 && !out) {
            MacAddress mac;
            std::memcpy(mac.data(), opt + 2, 6);
            out = mac;
        }
        len -= opt[1] * 8u;
        opt += opt[1] * 8u;
    }
    return true;
}

std::optional<NeighborMessage> parse_nd(const uint8_t* ip, uint32_t avail, NeighborMessage m)
{
    if (avail < kIp6 + kNdBody || (ip[0] >> 4) != 6) return std::nullopt;
    const uint32_t payload = get16(ip + 4);
    if (ip[6] != SLUICE_IPPROTO_ICMPV6 || ip[7] != 255 || payload < kNdBody || kIp6 + payload > avail)
        return std::nullopt;
    const uint8_t* icmp = ip + kIp6;
    if (icmp[1] != 0 || icmp6_checksum(ip, icmp, payload) != 0) return std::nullopt;
    m.sender = NeighborAddress::v6(ip + 8);
    m.target = NeighborAddress::v6(icmp + 8);
    if (m.target.bytes[0] == 0xFF) return std::nullopt;
    std::optional<MacAddress> ll;
    if (icmp[0] == SLUICE_ICMPV6_NEIGH_SOLICIT) {
        m.kind = NeighborMessage::Kind::kSolicit;
        if (!find_ll_option(icmp + kNdBody, payload - kNdBody, kOptSourceLl, ll)) return std::nullopt;
        // DAD (source ::) must not carry the option and announces nothing.
        if (m.sender.is_unspecified() && ll) return std::nullopt;
        m.announced = m.sender;
    } else if (icmp[0] == SLUICE_ICMPV6_NEIGH_ADVERT) {
        m.kind = NeighborMessage::Kind::kAdvert;
        if (!find_ll_option(icmp + kNdBody, payload - kNdBody, kOptTargetLl, ll)) return std::nullopt;
        m.solicited = (icmp[4] & kNaSolicited) != 0;
        m.override_flag = (icmp[4] & kNaOverride) != 0;
        m.announced = m.target;
    } else {
        return std::nullopt;
    }
    m.announced_mac = ll;
    return m;
}

}  // namespace

NeighborAddress NeighborAddress::v4(const uint8_t b[4])
{
    NeighborAddress a;
    a.family = SLUICE_FAMILY_IPV4;
    std::memcpy(a.bytes.data(), b, 4);
    return a;
}

NeighborAddress NeighborAddress::v6(const uint8_t b[16])
{
    NeighborAddress a;
    a.family = SLUICE_FAMILY_IPV6;
    std::memcpy(a.bytes.data(), b, 16);
    return a;
}

std::optional<NeighborAddress> NeighborAddress::parse(const char* text)
{
    uint8_t buf[16] = {};
    if (inet_pton(AF_INET, text, buf) == 1) return v4(buf);
    if (inet_pton(AF_INET6, text, buf) == 1) return v6(buf);
    return std::nullopt;
}

bool NeighborAddress::is_unspecified() const
{
    for (uint8_t b : bytes)
        if (b != 0) return false;
    return true;
}

size_t NeighborAddressHash::operator()(const NeighborAddress& a) const
{
    uint64_t lo, hi;
    std::memcpy(&lo, a.bytes.data(), 8);
    std::memcpy(&hi, a.bytes.data() + 8, 8);
    return std::hash<uint64_t>{}(lo * 0x9E3779B97F4A7C15ull ^ hi ^ a.family);
}

NeighborAddress solicited_node(const NeighborAddress& a)
{
    static constexpr uint8_t kPrefix[13] = {0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xFF};
    uint8_t b[16];
    std::memcpy(b, kPrefix, 13);
    std::memcpy(b + 13, a.bytes.data() + 13, 3);
    return NeighborAddress::v6(b);
}

std::optional<NeighborMessage> parse_neighbor_message(const uint8_t* frame, uint32_t len)
{
    if (len < kEth) return std::nullopt;
    NeighborMessage m;
    std::memcpy(m.eth_src.data(), frame + 6, 6);
    uint32_t off = kEth;
    uint16_t type = get16(frame + 12);
    if (type == SLUICE_ETH_P_VLAN) {
        if (len < kEth + 4) return std::nullopt;
        m.has_vlan = true;
        std::memcpy(&m.vlan_tci, frame + 14, 2);
        type = get16(frame + 16);
        off += 4;
    }
    if (type == SLUICE_ETH_P_ARP) return parse_arp(frame + off, len - off, m);
    if (type == SLUICE_ETH_P_IPV6) return parse_nd(frame + off, len - off, m);
    return std::nullopt;
}

uint32_t build_arp(uint8_t* out, uint16_t op, const MacAddress& eth_dst, const MacAddress& sha,
                   const NeighborAddress& spa, const MacAddress& tha, const NeighborAddress& tpa, VlanTag vlan)
{
    const uint32_t l2 = put_eth(out, eth_dst, sha, SLUICE_ETH_P_ARP, vlan);
    uint8_t* a = out + l2;
    put16(a, SLUICE_ARP_HRD_ETHER);
    put16(a + 2, SLUICE_ETH_P_IPV4);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    std::memcpy(a + 8, sha.data(), 6);
    std::memcpy(a + 14, spa.bytes.data(), 4);
    std::memcpy(a + 18, tha.data(), 6);
    std::memcpy(a + 24, tpa.bytes.data(), 4);
    const uint32_t used = l2 + static_cast<uint32_t>(sizeof(sluice_arp_hdr));
    const uint32_t total = kArpFrameLen + (vlan.present ? 4 : 0);
    std::memset(out + used, 0, total - used);
    return total;
}

uint32_t build_neighbor_solicit(uint8_t* out, const MacAddress& src_mac, const NeighborAddress& src_ip,
                                const NeighborAddress& target, const std::optional<MacAddress>& unicast_mac,
                                VlanTag vlan)
{
    const NeighborAddress dst_ip = unicast_mac ? target : solicited_node(target);
    const MacAddress dst_mac = unicast_mac ? *unicast_mac : multicast_mac(dst_ip);
    const uint32_t l2 = put_eth(out, dst_mac, src_mac, SLUICE_ETH_P_IPV6, vlan);
    uint8_t* ip = out + l2;
    put_ip6(ip, src_ip, dst_ip, kNdBody + 8);
    uint8_t* icmp = ip + kIp6;
    std::memset(icmp, 0, kNdBody);
    icmp[0] = SLUICE_ICMPV6_NEIGH_SOLICIT;
    std::memcpy(icmp + 8, target.bytes.data(), 16);
    icmp[24] = kOptSourceLl;
    icmp[25] = 1;
    std::memcpy(icmp + 26, src_mac.data(), 6);
    const uint16_t c = icmp6_checksum(ip, icmp, kNdBody + 8);
    std::memcpy(icmp + 2, &c, 2);
    return l2 + kIp6 + kNdBody + 8;
}

uint32_t build_neighbor_advert(uint8_t* out, const MacAddress& our_mac, const NeighborAddress& target,
                               const MacAddress& dst_mac, const NeighborAddress& dst_ip, VlanTag vlan)
{
    const uint32_t l2 = put_eth(out, dst_mac, our_mac, SLUICE_ETH_P_IPV6, vlan);
    uint8_t* ip = out + l2;
    put_ip6(ip, target, dst_ip, kNdBody + 8);
    uint8_t* icmp = ip + kIp6;
    std::memset(icmp, 0, kNdBody);
    icmp[0] = SLUICE_ICMPV6_NEIGH_ADVERT;
    icmp[4] = kNaSolicited | kNaOverride;
    std::memcpy(icmp + 8, target.bytes.data(), 16);
    icmp[24] = kOptTargetLl;
    icmp[25] = 1;
    std::memcpy(icmp + 26, our_mac.data(), 6);
    const uint16_t c = icmp6_checksum(ip, icmp, kNdBody + 8);
    std::memcpy(icmp + 2, &c, 2);
    return l2 + kIp6 + kNdBody + 8;
}

}  // namespace sluice::dpdk
