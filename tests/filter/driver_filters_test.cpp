// Config text -> ForwardingPlan -> filter::FilterConfig, without an EAL:
// the global lists apply to every VIP, a service's lists and rules are
// scoped to its vip_id, rate limits land on that vip_id with their bursts,
// and a config without any filter asks for no FilterSet at all.
#include <gtest/gtest.h>

#include <string>

#include "config/loader.h"
#include "driver/dpdk_state.h"
#include "driver/forwarding_plan.h"

namespace sluice::driver {
namespace {

constexpr const char* kNode = R"(
[dataplane]
type = "dpdk"
[dataplane.dpdk]
worker_lcores = [1]
[[dataplane.dpdk.ports]]
name = "lan"
device = "net_null0"
[network]
source_ipv4 = "192.0.2.2"
)";

constexpr const char* kServices = R"(
[[service]]
name = "web"
vip = "192.0.2.10:80"
table_size = 251
health_check = { type = "none" }
backends = [ { address = "10.1.0.10" } ]
[[service]]
name = "api"
vip = "192.0.2.11:443"
table_size = 251
health_check = { type = "none" }
backends = [ { address = "10.1.0.11" } ]
filter = { deny = ["10.0.0.0/8"], allow = ["10.1.0.0/16", "2001:db8::/32"], payload_rules = [ { id = 3, pattern = "evil", flags = ["caseless"] } ] }
rate_limit = { packets_per_sec = 1000, new_flows_per_sec = 50, new_flows_burst = 10 }
)";

ForwardingPlan plan_of(const std::string& text)
{
    auto r = config::load_string(std::string(kNode) + text, "driver_filters_test.toml");
    std::string diags;
    for (const auto& d : r.diagnostics) diags += d.to_string() + "\n";
    EXPECT_TRUE(r.ok()) << diags;
    PlanBuilder builder;
    auto plan = builder.build(*r.config);
    EXPECT_TRUE(plan.ok()) << plan.error();
    return *plan;
}

// The service's ACL, rules and limits are keyed by its vip_id; the global
// ones are unscoped; each prefix keeps its family and length.
TEST(DriverFilters, ServiceAndGlobalFiltersReachTheirScopes)
{
    const ForwardingPlan plan = plan_of(std::string("[filter]\ndeny = [\"100.64.0.0/10\"]\n"
                                                    "payload_rules = [ { id = 1, pattern = \"x-attack\" } ]\n") +
                                        kServices);
    ASSERT_TRUE(has_filters(plan));
    const uint32_t api = plan.services.at(1).vip_id;
    const filter::FilterConfig fc = build_filter_config(plan);

    ASSERT_EQ(fc.acl.global.deny.size(), 1u);
    EXPECT_EQ(filter::to_string(fc.acl.global.deny[0]), "100.64.0.0/10");
    EXPECT_TRUE(fc.acl.global.allow.empty());
    ASSERT_EQ(fc.acl.per_vip.size(), 1u) << "a service without lists gets no scope of its own";
    const filter::AclScope& scope = fc.acl.per_vip.at(static_cast<uint16_t>(api));
    ASSERT_EQ(scope.deny.size(), 1u);
    EXPECT_EQ(filter::to_string(scope.deny[0]), "10.0.0.0/8");
    ASSERT_EQ(scope.allow.size(), 2u);
    EXPECT_EQ(filter::to_string(scope.allow[1]), "2001:db8::/32");
    EXPECT_EQ(scope.allow[1].family, SLUICE_FAMILY_IPV6);

    ASSERT_EQ(fc.payload_rules.size(), 2u);
    EXPECT_EQ(fc.payload_rules[0].id, 1u);
    EXPECT_TRUE(fc.payload_rules[0].vip_ids.empty()) << "global rules apply to every VIP";
    EXPECT_EQ(fc.payload_rules[1].id, 3u);
    EXPECT_EQ(fc.payload_rules[1].flags, static_cast<uint32_t>(filter::kPayloadCaseless));
    EXPECT_EQ(fc.payload_rules[1].vip_ids, std::vector<uint16_t>{static_cast<uint16_t>(api)});

    const filter::VipRateLimit& limit = fc.rate_limits.vip.at(api);
    EXPECT_EQ(limit.packets_per_sec, 1000u);
    EXPECT_EQ(limit.packets_burst, 1000u) << "the burst defaults to one second of the rate";
    EXPECT_EQ(limit.new_flows_per_sec, 50u);
    EXPECT_EQ(limit.new_flows_burst, 10u);
    EXPECT_EQ(fc.rate_limits.vip.at(plan.services.at(0).vip_id), filter::VipRateLimit{});
}

// No list, rule or limit anywhere: no FilterSet, so no LPM table and no
// Hyperscan database, and the workers run the filterless pipeline.
TEST(DriverFilters, NoFiltersNoFilterSet)
{
    const std::string web_only = std::string(kServices).substr(0, std::string(kServices).find("[[service]]\nname = \"api\""));
    EXPECT_FALSE(has_filters(plan_of(web_only)));
    EXPECT_TRUE(has_filters(plan_of(web_only + "[filter]\ndeny = [\"192.0.2.99/32\"]\n")));
}

}  // namespace
}  // namespace sluice::driver
