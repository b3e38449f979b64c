// Pins the layout of every struct in dataplane/abi/: the BPF programs, the
// DPDK path and pinned maps of a running node all depend on these exact
// sizes and offsets, so any change must show up here first.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <set>
#include <vector>

extern "C" {
#include "abi/sluice_abi.h"
}

#define SLUICE_ASSERT_LAYOUT(type, size, align) \
    static_assert(sizeof(type) == (size), #type " size");  \
    static_assert(alignof(type) == (align), #type " alignment")
#define SLUICE_ASSERT_OFFSET(type, field, off) \
    static_assert(offsetof(type, field) == (off), #type "." #field " offset")

// Wire headers: exactly the on-the-wire sizes.
SLUICE_ASSERT_LAYOUT(struct sluice_eth_hdr, 14, 2);
SLUICE_ASSERT_OFFSET(struct sluice_eth_hdr, src, 6);
SLUICE_ASSERT_OFFSET(struct sluice_eth_hdr, ethertype, 12);
SLUICE_ASSERT_LAYOUT(struct sluice_vlan_hdr, 4, 2);
SLUICE_ASSERT_OFFSET(struct sluice_vlan_hdr, ethertype, 2);
SLUICE_ASSERT_LAYOUT(struct sluice_ipv4_hdr, 20, 4);
SLUICE_ASSERT_OFFSET(struct sluice_ipv4_hdr, total_len, 2);
SLUICE_ASSERT_OFFSET(struct sluice_ipv4_hdr, frag_off, 6);
SLUICE_ASSERT_OFFSET(struct sluice_ipv4_hdr, ttl, 8);
SLUICE_ASSERT_OFFSET(struct sluice_ipv4_hdr, protocol, 9);
SLUICE_ASSERT_OFFSET(struct sluice_ipv4_hdr, check, 10);
SLUICE_ASSERT_OFFSET(struct sluice_ipv4_hdr, saddr, 12);
SLUICE_ASSERT_OFFSET(struct sluice_ipv4_hdr, daddr, 16);
SLUICE_ASSERT_LAYOUT(struct sluice_ipv6_hdr, 40, 4);
SLUICE_ASSERT_OFFSET(struct sluice_ipv6_hdr, payload_len, 4);
SLUICE_ASSERT_OFFSET(struct sluice_ipv6_hdr, nexthdr, 6);
SLUICE_ASSERT_OFFSET(struct sluice_ipv6_hdr, hop_limit, 7);
SLUICE_ASSERT_OFFSET(struct sluice_ipv6_hdr, saddr, 8);
SLUICE_ASSERT_OFFSET(struct sluice_ipv6_hdr, daddr, 24);
SLUICE_ASSERT_LAYOUT(struct sluice_ipv6_opt_hdr, 2, 1);
SLUICE_ASSERT_LAYOUT(struct sluice_ipv6_frag_hdr, 8, 4);
SLUICE_ASSERT_OFFSET(struct sluice_ipv6_frag_hdr, frag_off, 2);
SLUICE_ASSERT_OFFSET(struct sluice_ipv6_frag_hdr, identification, 4);
SLUICE_ASSERT_LAYOUT(struct sluice_tcp_hdr, 20, 4);
SLUICE_ASSERT_OFFSET(struct sluice_tcp_hdr, seq, 4);
SLUICE_ASSERT_OFFSET(struct sluice_tcp_hdr, ack_seq, 8);
SLUICE_ASSERT_OFFSET(struct sluice_tcp_hdr, doff_res, 12);
SLUICE_ASSERT_OFFSET(struct sluice_tcp_hdr, flags, 13);
SLUICE_ASSERT_OFFSET(struct sluice_tcp_hdr, window, 14);
SLUICE_ASSERT_OFFSET(struct sluice_tcp_hdr, check, 16);
SLUICE_ASSERT_OFFSET(struct sluice_tcp_hdr, urg_ptr, 18);
SLUICE_ASSERT_LAYOUT(struct sluice_udp_hdr, 8, 2);
SLUICE_ASSERT_OFFSET(struct sluice_udp_hdr, len, 4);
SLUICE_ASSERT_OFFSET(struct sluice_udp_hdr, check, 6);
SLUICE_ASSERT_LAYOUT(struct sluice_icmp_hdr, 8, 4);
SLUICE_ASSERT_OFFSET(struct sluice_icmp_hdr, check, 2);
SLUICE_ASSERT_OFFSET(struct sluice_icmp_hdr, un.frag.mtu, 6);
SLUICE_ASSERT_OFFSET(struct sluice_icmp_hdr, un.mtu6, 4);
SLUICE_ASSERT_LAYOUT(struct sluice_gue_hdr, 4, 2);
SLUICE_ASSERT_LAYOUT(struct sluice_arp_hdr, 28, 2);
SLUICE_ASSERT_OFFSET(struct sluice_arp_hdr, op, 6);
SLUICE_ASSERT_OFFSET(struct sluice_arp_hdr, sha, 8);
SLUICE_ASSERT_OFFSET(struct sluice_arp_hdr, spa, 14);
SLUICE_ASSERT_OFFSET(struct sluice_arp_hdr, tha, 18);
SLUICE_ASSERT_OFFSET(struct sluice_arp_hdr, tpa, 24);

// Shared tables: no implicit padding anywhere (a hole would make memcmp
// keys and BPF map keys differ by garbage).
SLUICE_ASSERT_LAYOUT(union sluice_addr, 16, 4);
SLUICE_ASSERT_LAYOUT(struct sluice_flow_key, 40, 4);
SLUICE_ASSERT_OFFSET(struct sluice_flow_key, dst, 16);
SLUICE_ASSERT_OFFSET(struct sluice_flow_key, sport, 32);
SLUICE_ASSERT_OFFSET(struct sluice_flow_key, dport, 34);
SLUICE_ASSERT_OFFSET(struct sluice_flow_key, proto, 36);
SLUICE_ASSERT_OFFSET(struct sluice_flow_key, family, 37);
SLUICE_ASSERT_OFFSET(struct sluice_flow_key, pad, 38);
SLUICE_ASSERT_LAYOUT(struct sluice_vip_key, 20, 4);
SLUICE_ASSERT_OFFSET(struct sluice_vip_key, port, 16);
SLUICE_ASSERT_OFFSET(struct sluice_vip_key, proto, 18);
SLUICE_ASSERT_OFFSET(struct sluice_vip_key, family, 19);
SLUICE_ASSERT_LAYOUT(struct sluice_vip_meta, 16, 4);
SLUICE_ASSERT_OFFSET(struct sluice_vip_meta, ring_size, 4);
SLUICE_ASSERT_OFFSET(struct sluice_vip_meta, ring_id, 8);
SLUICE_ASSERT_OFFSET(struct sluice_vip_meta, forwarding, 12);
SLUICE_ASSERT_OFFSET(struct sluice_vip_meta, flags, 13);
SLUICE_ASSERT_OFFSET(struct sluice_vip_meta, gue_dport, 14);
SLUICE_ASSERT_LAYOUT(struct sluice_backend, 24, 4);
SLUICE_ASSERT_OFFSET(struct sluice_backend, family, 16);
SLUICE_ASSERT_OFFSET(struct sluice_backend, flags, 17);
SLUICE_ASSERT_OFFSET(struct sluice_backend, mac, 18);
SLUICE_ASSERT_LAYOUT(sluice_ring_entry, 4, 4);
SLUICE_ASSERT_LAYOUT(struct sluice_conn_entry, 56, 8);
SLUICE_ASSERT_OFFSET(struct sluice_conn_entry, backend_id, 40);
SLUICE_ASSERT_OFFSET(struct sluice_conn_entry, state, 44);
SLUICE_ASSERT_OFFSET(struct sluice_conn_entry, last_seen, 48);
SLUICE_ASSERT_LAYOUT(struct sluice_conn_bucket, 512, 8);
SLUICE_ASSERT_OFFSET(struct sluice_conn_bucket, used, 32);
SLUICE_ASSERT_OFFSET(struct sluice_conn_bucket, entries, 40);
SLUICE_ASSERT_LAYOUT(struct sluice_acl_key, 24, 4);
SLUICE_ASSERT_OFFSET(struct sluice_acl_key, vip_id, 4);
SLUICE_ASSERT_OFFSET(struct sluice_acl_key, addr, 8);
SLUICE_ASSERT_LAYOUT(struct sluice_token_bucket, 32, 8);
SLUICE_ASSERT_LAYOUT(struct sluice_carried_bucket, 40, 8);
SLUICE_ASSERT_OFFSET(struct sluice_carried_bucket, carry, 32);
SLUICE_ASSERT_LAYOUT(struct sluice_counter, 16, 8);
SLUICE_ASSERT_OFFSET(struct sluice_stats, icmp_rate_limited, 80);
SLUICE_ASSERT_OFFSET(struct sluice_stats, drops, 88);
static_assert(sizeof(struct sluice_stats) == 88 + 8 * SLUICE_DROP_MAX, "sluice_stats size");
static_assert(SLUICE_DROP_MAX == 22, "append drop reasons at the end and update this count");
static_assert(SLUICE_DROP_INTERNAL == 20, "values are a stable ABI: never renumber");

namespace {

sluice_flow_key v4_key(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto)
{
    sluice_flow_key key;
    std::memset(&key, 0, sizeof(key));
    key.src.v4 = SLUICE_HTONL(src);
    key.dst.v4 = SLUICE_HTONL(dst);
    key.sport = SLUICE_HTONS(sport);
    key.dport = SLUICE_HTONS(dport);
    key.proto = proto;
    key.family = SLUICE_FAMILY_IPV4;
    return key;
}

// The flow hash is part of the fleet contract: nodes of different versions
// behind one ECMP group must agree. These values pin it; changing the hash
// needs a new SLUICE_FLOW_HASH_SEED version and a rollout plan.
TEST(FlowHash, GoldenValuesArePinned)
{
    const auto a = v4_key(0x0a000001, 0xc0000201, 40000, 80, SLUICE_IPPROTO_TCP);
    const auto b = v4_key(0x0a000001, 0xc0000201, 40002, 80, SLUICE_IPPROTO_TCP);
    sluice_flow_key c;
    std::memset(&c, 0, sizeof(c));
    c.family = SLUICE_FAMILY_IPV6;
    c.proto = SLUICE_IPPROTO_UDP;
    c.src.bytes[0] = 0x20;
    c.src.bytes[1] = 0x01;
    c.src.bytes[15] = 0x01;
    c.dst.bytes[0] = 0x20;
    c.dst.bytes[1] = 0x01;
    c.dst.bytes[15] = 0x80;
    c.sport = SLUICE_HTONS(5353);
    c.dport = SLUICE_HTONS(53);
    EXPECT_EQ(sluice_flow_hash(&a), 0x7dbc33d8u) << std::hex << sluice_flow_hash(&a);
    EXPECT_EQ(sluice_flow_hash(&b), 0x7dedacb0u) << std::hex << sluice_flow_hash(&b);
    EXPECT_EQ(sluice_flow_hash(&c), 0x71413fddu) << std::hex << sluice_flow_hash(&c);
}

// Linux hands out ephemeral ports of one parity; consecutive same-parity
// ports from one client must still spread evenly over slots modulo a prime
// and over the low bits the GUE source port and RSS use.
TEST(FlowHash, SameParityPortsSpreadOverSlots)
{
    constexpr uint32_t kSlots = 7;
    std::array<int, kSlots> hits{};
    std::array<int, 2> parity{};
    constexpr int kFlows = 14000;
    for (int i = 0; i < kFlows; ++i) {
        const auto key = v4_key(0x0a000001, 0xc0000201, static_cast<uint16_t>(32768 + 2 * i), 80,
                                SLUICE_IPPROTO_TCP);
        const uint32_t h = sluice_flow_hash(&key);
        ++hits[h % kSlots];
        ++parity[h & 1];
    }
    for (int n : hits) {
        EXPECT_NEAR(n, kFlows / kSlots, kFlows / kSlots / 10);  // within 10% of fair
    }
    EXPECT_NEAR(parity[0], kFlows / 2, kFlows / 20);
}

// Each input field changes the hash: a field left out would silently pin
// all flows differing only in it to one backend.
TEST(FlowHash, EveryFieldContributes)
{
    const auto base = v4_key(0x0a000001, 0xc0000201, 40000, 80, SLUICE_IPPROTO_TCP);
    const uint32_t h = sluice_flow_hash(&base);
    auto k = base;
    k.src.v4 ^= SLUICE_HTONL(1);
    EXPECT_NE(sluice_flow_hash(&k), h);
    k = base;
    k.dst.v4 ^= SLUICE_HTONL(0x80000000);
    EXPECT_NE(sluice_flow_hash(&k), h);
    k = base;
    k.sport ^= SLUICE_HTONS(1);
    EXPECT_NE(sluice_flow_hash(&k), h);
    k = base;
    k.dport ^= SLUICE_HTONS(0x8000);
    EXPECT_NE(sluice_flow_hash(&k), h);
    k = base;
    k.proto = SLUICE_IPPROTO_UDP;
    EXPECT_NE(sluice_flow_hash(&k), h);

    sluice_flow_key v6;
    std::memset(&v6, 0, sizeof(v6));
    v6.family = SLUICE_FAMILY_IPV6;
    v6.proto = SLUICE_IPPROTO_TCP;
    const uint32_t h6 = sluice_flow_hash(&v6);
    for (int byte = 0; byte < 16; ++byte) {
        auto s = v6;
        s.src.bytes[byte] = 1;
        EXPECT_NE(sluice_flow_hash(&s), h6) << "src byte " << byte;
        auto d = v6;
        d.dst.bytes[byte] = 0x80;
        EXPECT_NE(sluice_flow_hash(&d), h6) << "dst byte " << byte;
    }
}

// The GUE source port stays in the dynamic range and varies with the flow.
TEST(FlowHash, GueSourcePortInDynamicRange)
{
    std::set<uint16_t> seen;
    for (uint32_t i = 0; i < 4096; ++i) {
        const auto key = v4_key(0x0a000000 + i, 0xc0000201, 40000, 80, SLUICE_IPPROTO_UDP);
        const uint16_t port = sluice_gue_sport(sluice_flow_hash(&key));
        EXPECT_GE(port, 49152);
        seen.insert(port);
    }
    EXPECT_GT(seen.size(), 3500u);  // ~3580 distinct expected from 4096 draws over 16384
}

// Drop-reason labels are unique: they become Prometheus label values.
TEST(DropReasons, LabelsAreUnique)
{
    std::set<std::string> labels;
#define SLUICE_COLLECT_(name, label, text) labels.insert(label);
    SLUICE_DROP_REASONS(SLUICE_COLLECT_)
#undef SLUICE_COLLECT_
    EXPECT_EQ(labels.size(), static_cast<size_t>(SLUICE_DROP_MAX));
}

}  // namespace

// XDP plane configuration (appended to abi/tables.h): BPF map values the
// loader writes and pinned maps keep across restarts.
SLUICE_ASSERT_LAYOUT(struct sluice_port_config, 24, 4);
SLUICE_ASSERT_OFFSET(struct sluice_port_config, nexthop_mac, 6);
SLUICE_ASSERT_OFFSET(struct sluice_port_config, mtu, 12);
SLUICE_ASSERT_OFFSET(struct sluice_port_config, egress_port, 14);
SLUICE_ASSERT_OFFSET(struct sluice_port_config, ifindex, 16);
SLUICE_ASSERT_OFFSET(struct sluice_port_config, flags, 20);
SLUICE_ASSERT_LAYOUT(struct sluice_ifport_record, 32, 4);
SLUICE_ASSERT_OFFSET(struct sluice_ifport_record, eg_nexthop_mac, 6);
SLUICE_ASSERT_OFFSET(struct sluice_ifport_record, eg_mtu, 12);
SLUICE_ASSERT_OFFSET(struct sluice_ifport_record, in_id, 14);
SLUICE_ASSERT_OFFSET(struct sluice_ifport_record, eg_id, 15);
SLUICE_ASSERT_OFFSET(struct sluice_ifport_record, eg_ifindex, 16);
SLUICE_ASSERT_OFFSET(struct sluice_ifport_record, in_mac, 20);
SLUICE_ASSERT_OFFSET(struct sluice_ifport_record, flags, 26);
static_assert(SLUICE_MAX_PORTS <= 256, "sluice_ifport_record keeps port ids in one byte");
SLUICE_ASSERT_LAYOUT(struct sluice_node_config, 88, 8);
SLUICE_ASSERT_OFFSET(struct sluice_node_config, local_v6, 16);
SLUICE_ASSERT_OFFSET(struct sluice_node_config, conn_timeout_ns, 32);
SLUICE_ASSERT_OFFSET(struct sluice_node_config, exception_path, 64);
SLUICE_ASSERT_OFFSET(struct sluice_node_config, flags, 65);
SLUICE_ASSERT_OFFSET(struct sluice_node_config, icmp_errors_per_sec, 72);
SLUICE_ASSERT_OFFSET(struct sluice_node_config, icmp_errors_burst, 80);
SLUICE_ASSERT_LAYOUT(struct sluice_vip_addr_info, 8, 2);
SLUICE_ASSERT_OFFSET(struct sluice_vip_addr_info, frag_port_udp, 2);
SLUICE_ASSERT_OFFSET(struct sluice_vip_addr_info, frag_tcp, 4);
SLUICE_ASSERT_OFFSET(struct sluice_vip_addr_info, frag_udp, 5);
static_assert(SLUICE_MAX_PORTS == 16, "port maps are sized by it: a change needs new map versions");

// The tunnel each forwarding mode builds: every plane and the MTU warnings
// size it with sluice_encap_overhead, so these are the bytes on the wire.
static_assert(sluice_encap_overhead(SLUICE_FWD_IPIP, SLUICE_FAMILY_IPV4) == 20, "IPIP over IPv4");
static_assert(sluice_encap_overhead(SLUICE_FWD_IPIP, SLUICE_FAMILY_IPV6) == 40, "IPIP over IPv6");
static_assert(sluice_encap_overhead(SLUICE_FWD_GUE, SLUICE_FAMILY_IPV4) == 28, "GUE over IPv4");
static_assert(sluice_encap_overhead(SLUICE_FWD_GUE, SLUICE_FAMILY_IPV6) == 48, "GUE over IPv6");
static_assert(sluice_encap_overhead(SLUICE_FWD_L2DSR, SLUICE_FAMILY_IPV4) == 0, "L2 DSR adds no header");
static_assert(sluice_encap_overhead(SLUICE_FWD_L2DSR, SLUICE_FAMILY_IPV6) == 0, "L2 DSR adds no header");
