// Parser details the fixture table shows only through verdicts: offsets,
// lengths, saved VLAN TCI, extension-header walking and the ICMP key swap.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <vector>

#include "core/parse.h"

namespace sluice::core {
namespace {

std::vector<uint8_t> eth(uint16_t type, bool vlan = false)
{
    std::vector<uint8_t> f(12, 0x02);
    if (vlan) f.insert(f.end(), {0x81, 0x00, 0x60, 0x64});  // PCP 3, VID 100
    f.push_back(static_cast<uint8_t>(type >> 8));
    f.push_back(static_cast<uint8_t>(type));
    return f;
}

// The 802.1Q TCI is kept as on the wire and the L3 offset moves to 18.
TEST(Parse, VlanTagSaved)
{
    auto f = eth(SLUICE_ETH_P_IPV4, true);
    ParsedPacket pp{};
    ASSERT_EQ(parse_l2(f.data(), static_cast<uint32_t>(f.size()), pp).kind, ParseResult::kOk);
    EXPECT_TRUE(pp.has_vlan);
    EXPECT_EQ(pp.l3_offset, 18);
    EXPECT_EQ(ntohs(pp.vlan_tci), 0x6064);
    EXPECT_EQ(pp.family, SLUICE_FAMILY_IPV4);
}

// Trailing frame padding is excluded from l3_len; options move l4_offset;
// MF or a non-zero offset mark a fragment, DF alone does not.
TEST(Parse, Ipv4LengthsAndFragmentFlags)
{
    auto f = eth(SLUICE_ETH_P_IPV4);
    const uint8_t ip[] = {0x46, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 1};
    f.insert(f.end(), ip, ip + sizeof ip);
    f.resize(f.size() + 8 + 20, 0);  // UDP header + padding
    ParsedPacket pp{};
    ASSERT_EQ(parse_l2(f.data(), static_cast<uint32_t>(f.size()), pp).kind, ParseResult::kOk);
    ASSERT_EQ(parse_ipv4(f.data(), static_cast<uint32_t>(f.size()), pp).kind, ParseResult::kOk);
    EXPECT_EQ(pp.l3_len, 32u);
    EXPECT_EQ(pp.l4_offset, 14 + 24);
    EXPECT_TRUE(pp.ipv4_df);
    EXPECT_FALSE(pp.fragment);
    for (uint16_t frag : {0x2000, 0x0001, 0x3FFF}) {
        f[14 + 6] = static_cast<uint8_t>(frag >> 8);
        f[14 + 7] = static_cast<uint8_t>(frag);
        ASSERT_EQ(parse_ipv4(f.data(), static_cast<uint32_t>(f.size()), pp).kind, ParseResult::kOk);
        EXPECT_TRUE(pp.fragment) << frag;
    }
}

// Builds a chain of `n` 8-byte destination-options headers then TCP.
std::vector<uint8_t> chain(int n)
{
    std::vector<uint8_t> b;
    for (int i = 0; i < n; ++i) {
        const uint8_t next = i + 1 < n ? SLUICE_IPPROTO_DSTOPTS : SLUICE_IPPROTO_TCP;
        b.insert(b.end(), {next, 0, 1, 4, 0, 0, 0, 0});
    }
    b.resize(b.size() + 20, 0);
    return b;
}

// Up to SLUICE_MAX_IPV6_EXTHDRS headers are walked; one more is refused.
TEST(Parse, Ipv6ExtensionHeaderLimit)
{
    for (int n = 0; n <= SLUICE_MAX_IPV6_EXTHDRS + 1; ++n) {
        auto b = chain(n);
        Ipv6Walk w{};
        const ParseResult r = walk_ipv6_exthdrs(b.data(), 0, static_cast<uint32_t>(b.size()),
                                                n ? SLUICE_IPPROTO_DSTOPTS : SLUICE_IPPROTO_TCP, w);
        if (n <= SLUICE_MAX_IPV6_EXTHDRS) {
            ASSERT_EQ(r.kind, ParseResult::kOk) << n;
            EXPECT_EQ(w.offset, 8u * n);
            EXPECT_EQ(w.proto, SLUICE_IPPROTO_TCP);
        } else {
            EXPECT_EQ(r.kind, ParseResult::kDrop);
            EXPECT_EQ(r.reason, SLUICE_DROP_IPV6_EXTHDR_LIMIT);
        }
    }
}

// A real fragment header stops the walk with its next header; an atomic
// fragment (offset 0, M 0) is walked past to the upper layer.
TEST(Parse, Ipv6FragmentHeader)
{
    std::vector<uint8_t> b = {SLUICE_IPPROTO_UDP, 0, 0x00, 0x01, 0, 0, 0, 9};  // offset 0, M=1
    b.resize(40, 0);
    Ipv6Walk w{};
    ASSERT_EQ(walk_ipv6_exthdrs(b.data(), 0, 40, SLUICE_IPPROTO_FRAGMENT, w).kind, ParseResult::kOk);
    EXPECT_TRUE(w.fragment);
    EXPECT_EQ(w.proto, SLUICE_IPPROTO_UDP);
    b[3] = 0;  // atomic
    ASSERT_EQ(walk_ipv6_exthdrs(b.data(), 0, 40, SLUICE_IPPROTO_FRAGMENT, w).kind, ParseResult::kOk);
    EXPECT_FALSE(w.fragment);
    EXPECT_EQ(w.offset, 8u);
    EXPECT_EQ(w.proto, SLUICE_IPPROTO_UDP);
}

// An ICMP error's key is the quoted VIP->client packet turned around:
// client address and port as source, VIP address and port as destination.
TEST(Parse, IcmpErrorKeyIsClientToVip)
{
    auto f = eth(SLUICE_ETH_P_IPV4);
    const uint8_t outer[] = {0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 203, 0, 113, 1, 192, 0, 2, 10};
    const uint8_t icmp[] = {3, 4, 0, 0, 0, 0, 0x05, 0x78};
    const uint8_t quoted[] = {0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 10, 198, 51, 100, 7,
                              0, 80, 0x9c, 0x40, 0, 0, 0, 0};
    f.insert(f.end(), outer, outer + sizeof outer);
    f.insert(f.end(), icmp, icmp + sizeof icmp);
    f.insert(f.end(), quoted, quoted + sizeof quoted);
    ParsedPacket pp{};
    ASSERT_EQ(parse_l2(f.data(), static_cast<uint32_t>(f.size()), pp).kind, ParseResult::kOk);
    ASSERT_EQ(parse_ipv4(f.data(), static_cast<uint32_t>(f.size()), pp).kind, ParseResult::kOk);
    ASSERT_EQ(parse_icmp_error(f.data(), pp).kind, ParseResult::kOk);
    EXPECT_TRUE(pp.icmp_error);
    EXPECT_EQ(pp.key.src.v4, htonl(0xC6336407));  // 198.51.100.7
    EXPECT_EQ(pp.key.dst.v4, htonl(0xC000020A));  // 192.0.2.10
    EXPECT_EQ(ntohs(pp.key.sport), 40000);
    EXPECT_EQ(ntohs(pp.key.dport), 80);
    EXPECT_EQ(pp.key.proto, SLUICE_IPPROTO_TCP);
}

}  // namespace
}  // namespace sluice::core
