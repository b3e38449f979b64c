// ARP and NS/NA building and parsing on plain buffers, against frames scapy
// built (neighbor_frames.txt, from gen_expected.py): same bytes, checksums
// included, and the parser's reading of each.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/dpdk/neighbor_wire.h"
#include "test_env.h"

namespace {

using sluice::dpdk::MacAddress;
using sluice::dpdk::NeighborAddress;
using sluice::dpdk::NeighborMessage;
using sluice::dpdk::VlanTag;

const MacAddress kOurMac = {0x02, 0, 0, 0, 0, 0x01};
const MacAddress kPeerMac = {0x02, 0, 0, 0, 0, 0x99};
const MacAddress kZero = {};
const MacAddress kBroadcast = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

NeighborAddress addr(const char* text) { return *NeighborAddress::parse(text); }

const std::map<std::string, std::vector<uint8_t>>& frames()
{
    static const auto f = [] {
        std::map<std::string, std::vector<uint8_t>> out;
        std::ifstream in(sluice::testing::source_path("tests/dpdk_control/neighbor_frames.txt"));
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream ls(line);
            std::string name, hex;
            ls >> name >> hex;
            std::vector<uint8_t> bytes;
            for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back(std::stoi(hex.substr(i, 2), nullptr, 16));
            out[name] = bytes;
        }
        return out;
    }();
    return f;
}

std::vector<uint8_t> expected(const std::string& name)
{
    auto it = frames().find(name);
    EXPECT_NE(it, frames().end()) << name;
    return it == frames().end() ? std::vector<uint8_t>{} : it->second;
}

std::vector<uint8_t> bytes_of(const uint8_t* p, uint32_t n) { return {p, p + n}; }

// An ARP request and reply, untagged and tagged, are scapy's bytes exactly
// (padded to the Ethernet minimum).
TEST(NeighborWire, ArpMatchesScapy)
{
    uint8_t buf[128];
    uint32_t n = build_arp(buf, SLUICE_ARP_OP_REQUEST, kBroadcast, kOurMac, addr("10.0.0.1"), kZero,
                           addr("10.0.0.99"));
    EXPECT_EQ(bytes_of(buf, n), expected("arp_request"));
    n = build_arp(buf, SLUICE_ARP_OP_REPLY, kPeerMac, kOurMac, addr("10.0.0.1"), kPeerMac, addr("10.0.0.99"));
    EXPECT_EQ(bytes_of(buf, n), expected("arp_reply"));
    const uint16_t tci = htons(7);
    n = build_arp(buf, SLUICE_ARP_OP_REPLY, kPeerMac, kOurMac, addr("10.0.0.1"), kPeerMac, addr("10.0.0.99"),
                  VlanTag{true, tci});
    EXPECT_EQ(bytes_of(buf, n), expected("arp_reply_vlan"));
}

// NS (solicited-node multicast and unicast probe) and a solicited NA carry
// scapy's bytes, so their ICMPv6 checksums and solicited-node mapping match.
TEST(NeighborWire, NdMatchesScapy)
{
    uint8_t buf[128];
    uint32_t n = build_neighbor_solicit(buf, kOurMac, addr("fd00::1"), addr("fd00::99:abcd:ef12"), std::nullopt);
    EXPECT_EQ(bytes_of(buf, n), expected("ns_multicast"));
    n = build_neighbor_solicit(buf, kOurMac, addr("fd00::1"), addr("fd00::99:abcd:ef12"), kPeerMac);
    EXPECT_EQ(bytes_of(buf, n), expected("ns_unicast"));
    n = build_neighbor_advert(buf, kOurMac, addr("fd00::1"), kPeerMac, addr("fd00::99:abcd:ef12"));
    EXPECT_EQ(bytes_of(buf, n), expected("na_solicited"));
    n = build_neighbor_advert(buf, kOurMac, addr("fd00::1"), kPeerMac, addr("fd00::99:abcd:ef12"),
                              VlanTag{true, htons(7)});
    EXPECT_EQ(bytes_of(buf, n), expected("na_solicited_vlan"));
}

// The parser reads what each message announces: ARP sender, NS source
// with its option, NA target with its flags; DAD announces nothing.
TEST(NeighborWire, ParsesWhatEachMessageAnnounces)
{
    auto parse = [](const std::string& name) {
        const auto f = expected(name);
        return sluice::dpdk::parse_neighbor_message(f.data(), static_cast<uint32_t>(f.size()));
    };
    auto m = parse("arp_reply_vlan");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, NeighborMessage::Kind::kArpReply);
    EXPECT_TRUE(m->has_vlan);
    EXPECT_EQ(m->vlan_tci, htons(7));
    EXPECT_EQ(m->announced, addr("10.0.0.1"));
    EXPECT_EQ(m->announced_mac, kOurMac);
    EXPECT_EQ(m->target, addr("10.0.0.99"));

    m = parse("in_ns_peer");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, NeighborMessage::Kind::kSolicit);
    EXPECT_EQ(m->target, addr("fd00::1"));
    EXPECT_EQ(m->announced, addr("fd00::99:abcd:ef12"));
    EXPECT_EQ(m->announced_mac, kPeerMac);

    m = parse("in_na_no_override");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, NeighborMessage::Kind::kAdvert);
    EXPECT_TRUE(m->solicited);
    EXPECT_FALSE(m->override_flag);
    EXPECT_EQ(m->announced, addr("fd00::99:abcd:ef12"));
    EXPECT_EQ(m->announced_mac, kPeerMac);

    m = parse("in_ns_dad");
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->sender.is_unspecified());
    EXPECT_FALSE(m->announced_mac);

    EXPECT_TRUE(parse("na_solicited"));
    EXPECT_TRUE(parse("ns_multicast"));
}

// RFC 4861 §7.1 validation: hop limit below 255, a corrupted checksum or a
// truncated frame is refused, so a forged or damaged NA never teaches us.
TEST(NeighborWire, RefusesInvalidNd)
{
    auto f = expected("in_ns_hlim64");
    EXPECT_FALSE(sluice::dpdk::parse_neighbor_message(f.data(), static_cast<uint32_t>(f.size())));
    f = expected("in_na_no_override");
    f[14 + 40 + 10] ^= 0x01;  // a target byte: the checksum no longer matches
    EXPECT_FALSE(sluice::dpdk::parse_neighbor_message(f.data(), static_cast<uint32_t>(f.size())));
    f = expected("in_na_no_override");
    for (uint32_t len = 0; len < 14 + 40 + 24; ++len)
        EXPECT_FALSE(sluice::dpdk::parse_neighbor_message(f.data(), len)) << len;
    f = expected("arp_reply");
    for (uint32_t len = 0; len < 14 + 28; ++len)
        EXPECT_FALSE(sluice::dpdk::parse_neighbor_message(f.data(), len)) << len;
}

// The solicited-node group keeps the low 24 bits (RFC 4291 §2.7.1).
TEST(NeighborWire, SolicitedNodeAddress)
{
    EXPECT_EQ(sluice::dpdk::solicited_node(addr("2001:db8::12:3456:789a")), addr("ff02::1:ff56:789a"));
}

}  // namespace
