// The DPDK driver's EAL memory check for the source ACL: two snapshots'
// LPM tables (64 MiB per address family) must fit besides the mbuf pool,
// and a config without prefixes needs nothing. Pure: no EAL.
#include <gtest/gtest.h>

#include "driver/dpdk_driver.h"
#include "filter/filter_set.h"

namespace sluice::driver {
namespace {

model::DpdkSettings settings(std::vector<std::string> eal_args, uint32_t pool = 4095)
{
    model::DpdkSettings s;
    s.eal_args = std::move(eal_args);
    s.mbuf_pool_size = pool;
    return s;
}

filter::FilterConfig acl(std::initializer_list<const char*> deny)
{
    filter::FilterConfig fc;
    for (const char* text : deny) fc.acl.per_vip[3].deny.push_back(*filter::parse_prefix(text));
    return fc;
}

// IPv4 prefixes only: one family, twice 66 MiB plus the pool fit in 256 MiB.
TEST(FilterMemory, OneFamilyFitsInTheDemoSettings)
{
    EXPECT_TRUE(DpdkDriver::check_filter_memory(settings({"--no-huge", "-m", "256"}), acl({"10.0.0.0/8"})).ok());
}

// Both families need two 64 MiB tables per snapshot: 256 MiB is refused,
// with the amount to ask for; 512 MiB (also as -m512 or --socket-mem) fits.
TEST(FilterMemory, BothFamiliesNeedMoreAndTheErrorSaysHowMuch)
{
    const auto both = acl({"10.0.0.0/8", "2001:db8::/32"});
    auto r = DpdkDriver::check_filter_memory(settings({"--no-huge", "-m", "256"}), both);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("IPv4 and IPv6"), std::string::npos) << r.error();
    EXPECT_NE(r.error().find("use -m 306"), std::string::npos) << r.error();
    EXPECT_TRUE(DpdkDriver::check_filter_memory(settings({"--no-huge", "-m", "512"}), both).ok());
    EXPECT_TRUE(DpdkDriver::check_filter_memory(settings({"--no-huge", "-m512"}), both).ok());
    EXPECT_TRUE(DpdkDriver::check_filter_memory(settings({"--socket-mem=256,256"}), both).ok());
}

// --no-huge without -m is DPDK's 64 MiB: no ACL fits; hugepages without a
// limit cannot be judged here and pass.
TEST(FilterMemory, DefaultsWithAndWithoutHugepages)
{
    EXPECT_FALSE(DpdkDriver::check_filter_memory(settings({"--no-huge"}), acl({"10.0.0.0/8"})).ok());
    EXPECT_TRUE(DpdkDriver::check_filter_memory(settings({"--in-memory"}), acl({"10.0.0.0/8"})).ok());
}

// Payload rules and rate limits alone create no LPM table: nothing to check.
TEST(FilterMemory, NoPrefixesNeedNoTables)
{
    filter::FilterConfig fc;
    fc.rate_limits.vip[1] = filter::VipRateLimit{100, 100, 0, 0};
    fc.payload_rules.push_back(filter::PayloadRule{1, "x", 0, {}});
    EXPECT_TRUE(DpdkDriver::check_filter_memory(settings({"--no-huge"}), fc).ok());
}

}  // namespace
}  // namespace sluice::driver
