// FilterSet: the per-burst worker call gives each packet exactly the drop
// reason of the first filter it fails, in the documented order; and sets
// free their EAL tables when destroyed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_malloc.h>

#include <cstring>
#include <string>
#include <vector>

#include "filter/filter_set.h"

namespace sluice::filter {
namespace {

constexpr uint64_t kNow = 1'000'000'000'000ull;

FilterPacket packet(const char* src, uint16_t vip, const std::string* payload = nullptr, bool new_flow = false)
{
    FilterPacket p{};
    const bool v6 = std::strchr(src, ':') != nullptr;
    p.family = v6 ? SLUICE_FAMILY_IPV6 : SLUICE_FAMILY_IPV4;
    EXPECT_EQ(1, inet_pton(v6 ? AF_INET6 : AF_INET, src, p.src.bytes)) << src;
    p.vip_id = vip;
    p.new_flow = new_flow ? 1 : 0;
    if (payload != nullptr) {
        p.payload = reinterpret_cast<const uint8_t*>(payload->data());
        p.payload_len = static_cast<uint32_t>(payload->size());
    }
    return p;
}

FilterConfig sample_config()
{
    FilterConfig c;
    c.acl.global = *parse_acl_scope({}, {"192.0.2.0/24"});
    c.acl.per_vip[2] = *parse_acl_scope({"2001:db8::/32"}, {});
    c.rate_limits.vip[1] = VipRateLimit{1000, 3, 0, 0};  // 3 packets at once
    c.rate_limits.vip[3] = VipRateLimit{0, 0, 1000, 1};  // 1 new flow at once
    c.payload_rules = {{7, "attack", kPayloadCaseless, {}}};
    return c;
}

// Proves each filter yields its own drop reason, that a burst mixing IPv4,
// IPv6 and all outcomes is classified packet by packet, and that a packet
// denied by the ACL does not spend its VIP's tokens.
TEST(FilterSet, ReasonsInOrder)
{
    auto set = FilterSet::build(sample_config(), 2);
    ASSERT_TRUE(set.ok()) << set.error();
    WorkerRateLimiter limiter(0, 1);
    const std::string clean = "hello";
    const std::string bad = "an ATTACK here";
    struct Case {
        FilterPacket pkt;
        uint8_t expected;
        const char* what;
    } cases[] = {
        {packet("10.0.0.1", 0, &clean), kFilterPass, "clean"},
        {packet("192.0.2.9", 1, &clean), SLUICE_DROP_ACL_DENY, "global deny (must not spend a VIP 1 token)"},
        {packet("192.0.2.10", 1, &bad), SLUICE_DROP_ACL_DENY, "ACL before payload"},
        {packet("2001:db8::1", 2, &clean), kFilterPass, "v6 allowed on VIP 2"},
        {packet("10.0.0.1", 2, &clean), SLUICE_DROP_ACL_DENY, "VIP 2 allows only its v6 /32"},
        {packet("10.0.0.1", 1, &clean), kFilterPass, "VIP 1 token 1"},
        {packet("10.0.0.2", 1, &bad), SLUICE_DROP_PAYLOAD_RULE, "VIP 1 token 2, then payload"},
        {packet("10.0.0.3", 1, &clean), kFilterPass, "VIP 1 token 3"},
        {packet("10.0.0.4", 1, &clean), SLUICE_DROP_RATE_LIMIT_PACKETS, "VIP 1 bucket empty"},
        {packet("10.0.0.5", 1, &bad), SLUICE_DROP_RATE_LIMIT_PACKETS, "rate limit before payload"},
        {packet("10.0.0.1", 3, &clean, true), kFilterPass, "VIP 3 first new flow"},
        {packet("10.0.0.1", 3, &clean, false), kFilterPass, "VIP 3 established: not limited"},
        {packet("10.0.0.2", 3, &clean, true), SLUICE_DROP_RATE_LIMIT_NEW_FLOWS, "VIP 3 second new flow"},
        {packet("2001:db8::5", 4, &bad), SLUICE_DROP_PAYLOAD_RULE, "v6 payload drop"},
        {packet("10.0.0.1", SLUICE_MAX_VIPS, &clean), kFilterPass, "no VIP yet: ACL global, no bucket"},
    };
    constexpr size_t n = sizeof cases / sizeof cases[0];
    FilterPacket pkts[n];
    for (size_t i = 0; i < n; ++i) {
        pkts[i] = cases[i].pkt;
    }
    uint8_t result[n];
    (*set)->filter_burst(limiter, 1, pkts, static_cast<uint16_t>(n), kNow, result);
    for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(int(result[i]), int(cases[i].expected)) << "#" << i << ": " << cases[i].what;
    }
    EXPECT_EQ((*set)->payload_rules().hits(7), 2u);
    // 1 ms later VIP 1 has earned exactly one token again.
    FilterPacket later[2] = {packet("10.0.0.1", 1, &clean), packet("10.0.0.1", 1, &clean)};
    uint8_t later_result[2];
    (*set)->filter_burst(limiter, 1, later, 2, kNow + 1'000'000, later_result);
    EXPECT_EQ(later_result[0], kFilterPass);
    EXPECT_EQ(later_result[1], SLUICE_DROP_RATE_LIMIT_PACKETS);
}

// Proves bursts longer than one internal chunk (64) are classified in full:
// 200 packets alternating allowed and denied sources.
TEST(FilterSet, LongBurst)
{
    auto set = FilterSet::build(sample_config(), 1);
    ASSERT_TRUE(set.ok()) << set.error();
    WorkerRateLimiter limiter(0, 1);
    std::vector<FilterPacket> pkts;
    for (int i = 0; i < 200; ++i) {
        pkts.push_back(packet(i % 2 ? "192.0.2.1" : "198.51.100.1", 0));
    }
    std::vector<uint8_t> result(pkts.size());
    (*set)->filter_burst(limiter, 0, pkts.data(), static_cast<uint16_t>(pkts.size()), kNow, result.data());
    for (size_t i = 0; i < pkts.size(); ++i) {
        ASSERT_EQ(int(result[i]), i % 2 ? int(SLUICE_DROP_ACL_DENY) : int(kFilterPass)) << i;
    }
}

// Proves a bad part of the config fails the whole build with that part's
// message: ACL, rate limit and payload rule.
TEST(FilterSet, BuildErrors)
{
    FilterConfig acl = sample_config();
    acl.acl.per_vip[900] = AclScope{};
    auto a = FilterSet::build(acl, 1);
    ASSERT_FALSE(a.ok());
    EXPECT_NE(a.error().find("vip 900"), std::string::npos) << a.error();

    FilterConfig limit = sample_config();
    limit.rate_limits.vip[9] = VipRateLimit{100, 0, 0, 0};
    auto l = FilterSet::build(limit, 1);
    ASSERT_FALSE(l.ok());
    EXPECT_NE(l.error().find("rate limit of vip 9"), std::string::npos) << l.error();

    FilterConfig rule = sample_config();
    rule.payload_rules.push_back({99, "[z-a]", 0, {}});
    auto r = FilterSet::build(rule, 1);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("payload rule 99"), std::string::npos) << r.error();
}

size_t eal_heap_allocated()
{
    rte_malloc_socket_stats stats{};
    size_t total = 0;
    for (int socket = 0; socket < RTE_MAX_NUMA_NODES; ++socket) {
        if (rte_malloc_get_socket_stats(socket, &stats) == 0) {
            total += stats.heap_allocsz_bytes;
        }
    }
    return total;
}

// Proves destroying a FilterSet frees its rte_lpm / rte_lpm6 tables: 1,000
// sets with IPv4 and IPv6 prefixes (~128 MiB each, in a 256 MiB EAL) are
// built and destroyed in turn, and EAL heap usage returns to where it was.
// A leak exhausts EAL memory within three iterations; a reused table name
// fails rte_lpm_create.
TEST(FilterSet, DestroyFreesTables)
{
    FilterConfig c = sample_config();
    c.acl.per_vip[5] = *parse_acl_scope({"10.0.0.0/8", "2001:db8::/48", "2001:db8::1/128"}, {"10.1.2.3/32"});
    const size_t before = eal_heap_allocated();
    for (int i = 0; i < 1000; ++i) {
        auto set = FilterSet::build(c, 2);
        ASSERT_TRUE(set.ok()) << "iteration " << i << ": " << set.error();
        ASSERT_EQ((*set)->acl().check_v4(htonl(0x0A010203), 5), SLUICE_ACL_DENY);
    }
    EXPECT_EQ(eal_heap_allocated(), before);
}

}  // namespace
}  // namespace sluice::filter
