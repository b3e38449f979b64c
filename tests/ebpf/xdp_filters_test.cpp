// xdp_lb's filters with the semantics of dataplane/filter/acl.h and
// rate_limit.h: longest prefix per scope with deny winning a tie, default
// deny for a scope with an allow list (both families), global and per-VIP
// scopes both required; per-CPU token buckets for packets and new flows.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sched.h>

#include <arpa/inet.h>
#include <cstring>
#include <string>
#include <vector>

#include <bpf/libbpf.h>

#include "fixture_loader.h"
#include "fixture_table.h"
#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

// A TCP SYN to VIP 0 (192.0.2.10:80) or VIP 2 (2001:db8::10:80) from `src`.
std::vector<uint8_t> syn_from(const std::string& src, uint16_t sport = 40000)
{
    sluice_addr a{};
    std::vector<uint8_t> f;
    if (inet_pton(AF_INET, src.c_str(), &a.v4) == 1) {
        f = fixture_named("ipip_4in4_tcp_syn").input;
        std::memcpy(f.data() + 26, &a.v4, 4);
        f[34] = static_cast<uint8_t>(sport >> 8);
        f[35] = static_cast<uint8_t>(sport);
    } else {
        EXPECT_EQ(inet_pton(AF_INET6, src.c_str(), a.bytes), 1);
        f = fixture_named("ipip_6in6_tcp_syn").input;
        std::memcpy(f.data() + 22, a.bytes, 16);
        f[54] = static_cast<uint8_t>(sport >> 8);
        f[55] = static_cast<uint8_t>(sport);
    }
    return f;
}

xdp::AclPrefixSpec prefix(uint32_t scope, const std::string& text, uint8_t len, bool deny)
{
    xdp::AclPrefixSpec p;
    p.scope = scope;
    p.prefix_len = len;
    p.deny = deny;
    p.family = inet_pton(AF_INET, text.c_str(), &p.addr.v4) == 1 ? SLUICE_FAMILY_IPV4 : SLUICE_FAMILY_IPV6;
    if (p.family == SLUICE_FAMILY_IPV6) {
        EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), p.addr.bytes), 1);
    }
    return p;
}

std::unique_ptr<XdpRunner> runner_with(const std::vector<xdp::AclPrefixSpec>& acl)
{
    auto r = XdpRunner::create(table().base_config);
    EXPECT_TRUE(r) << r.error();
    if (!r) return nullptr;
    xdp::Description d = (*r)->description();
    d.acl = acl;
    auto applied = (*r)->dataplane().apply(d);
    EXPECT_TRUE(applied) << applied.error();
    return std::move(*r);
}

// Within a scope the longest prefix decides; a global deny cannot be
// overridden by a VIP's allow; an allow list denies everything else, IPv6
// included; the same prefix in both lists is denied.
TEST(XdpFilters, AclScopesAndLongestPrefix)
{
    SLUICE_REQUIRE_ROOT();
    auto r = runner_with({
        prefix(SLUICE_MAX_VIPS, "10.0.0.0", 8, true),    // global: deny 10/8 ...
        prefix(SLUICE_MAX_VIPS, "10.1.0.0", 16, false),  // ... allow 10.1/16 (so the global scope is default-deny)
        prefix(SLUICE_MAX_VIPS, "0.0.0.0", 0, false),    // ... and allow the rest of IPv4
        prefix(SLUICE_MAX_VIPS, "::", 0, false),         // ... and of IPv6
        prefix(SLUICE_MAX_VIPS, "198.51.100.0", 24, true),
        prefix(0, "10.2.0.0", 16, false),                // VIP 0: allow 10.2/16 (globally denied)
        prefix(0, "203.0.113.0", 24, false),             // VIP 0: allow 203.0.113/24
        prefix(0, "203.0.113.128", 25, false),
        prefix(0, "203.0.113.128", 25, true),            // same prefix in both lists: deny
    });
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->run(syn_from("10.1.2.3"), 0).account, "drop:acl_deny") << "VIP 0's allow list lacks 10.1/16";
    EXPECT_EQ(r->run(syn_from("10.2.3.4"), 0).account, "drop:acl_deny") << "global deny wins over a VIP allow";
    EXPECT_EQ(r->run(syn_from("203.0.113.5"), 0).account, "tx");
    EXPECT_EQ(r->run(syn_from("203.0.113.200"), 0).account, "drop:acl_deny") << "deny wins a tie";
    EXPECT_EQ(r->run(syn_from("192.0.2.99"), 0).account, "drop:acl_deny") << "VIP 0 is default-deny";
    // VIP 2 (IPv6) has no scope of its own: only the global one applies.
    EXPECT_EQ(r->run(syn_from("2001:db8:99::1"), 0).account, "tx");
    // Global scope alone, through another VIP's service port: VIP 1 is UDP,
    // so use VIP 4 (192.0.2.20:443) with the 4in4 SYN's addresses patched.
    std::vector<uint8_t> to_vip4 = syn_from("10.1.2.3");
    to_vip4[33] = 20;
    to_vip4[36] = 443 >> 8;
    to_vip4[37] = 443 & 0xff;
    EXPECT_EQ(r->run(to_vip4, 0).account, "tx") << "10.1/16 allowed globally";
    to_vip4 = syn_from("10.3.0.1");
    to_vip4[33] = 20;
    to_vip4[36] = 443 >> 8;
    to_vip4[37] = 443 & 0xff;
    EXPECT_EQ(r->run(to_vip4, 0).account, "drop:acl_deny") << "10/8 denied globally";
    to_vip4 = syn_from("198.51.100.1");
    to_vip4[33] = 20;
    to_vip4[36] = 443 >> 8;
    to_vip4[37] = 443 & 0xff;
    EXPECT_EQ(r->run(to_vip4, 0).account, "drop:acl_deny");

    // Removing the lists admits again (stale entries are deleted).
    xdp::Description d = r->description();
    ASSERT_TRUE(r->dataplane().apply(d));
    EXPECT_EQ(r->run(syn_from("10.2.3.4"), 0).account, "tx");
}

// A VIP allowing only IPv4 denies every IPv6 client (fail closed).
TEST(XdpFilters, AllowListOfOneFamilyDeniesTheOther)
{
    SLUICE_REQUIRE_ROOT();
    auto r = runner_with({prefix(2, "192.0.2.0", 24, false)});
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->run(syn_from("2001:db8:99::1"), 0).account, "drop:acl_deny");
}

// Packets/s and new-flows/s buckets: a burst passes, then the limit drops;
// established flows are not new flows.
TEST(XdpFilters, TokenBuckets)
{
    SLUICE_REQUIRE_ROOT();
    // Test runs execute on the calling CPU: stay on one so its share is known.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    const uint32_t cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());

    auto r = runner_with({});
    ASSERT_NE(r, nullptr);
    xdp::Description d = r->description();
    d.node.rate_limit_shares = cpus;           // each CPU enforces its share, as in production
    d.vips[0].limits.new_flows_per_sec = 1;    // share: 1 per CPU (at least 1)
    d.vips[0].limits.new_flows_burst = 3 * cpus;
    d.vips[2].limits.packets_per_sec = 1;
    d.vips[2].limits.packets_burst = 5 * cpus;
    ASSERT_TRUE(r->dataplane().apply(d));

    // New flows to VIP 0: three pass, the fourth new flow is dropped ...
    for (uint16_t i = 0; i < 3; ++i) EXPECT_EQ(r->run(syn_from("203.0.113.9", 41000 + i), 0).account, "tx");
    EXPECT_EQ(r->run(syn_from("203.0.113.9", 41003), 0).account, "drop:rate_limit_new_flows");
    // ... while an established one keeps going (its ACKs hit the
    // connection table, which is what "not a new flow" means here).
    std::vector<uint8_t> ack = syn_from("203.0.113.9", 41000);
    ack[47] = SLUICE_TCP_ACK;
    for (int i = 0; i < 10; ++i) EXPECT_EQ(r->run(ack, 0).account, "tx");

    // Packets to VIP 2: five pass whatever the flow, then drops.
    for (int i = 0; i < 5; ++i) EXPECT_EQ(r->run(syn_from("2001:db8:99::1"), 0).account, "tx");
    EXPECT_EQ(r->run(syn_from("2001:db8:99::1"), 0).account, "drop:rate_limit_packets");
    EXPECT_EQ(r->run(syn_from("2001:db8:99::2"), 0).account, "drop:rate_limit_packets");
}

}  // namespace
}  // namespace sluice::testing
