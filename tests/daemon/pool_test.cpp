// The pure pool rules behind the manager: which backends a table is built
// from, drain sources and deadlines, backend names as operators type them,
// and which settings a reload may not change.
#include <gtest/gtest.h>

#include "config_text.h"
#include "daemon/pool.h"
#include "daemon/reload.h"

namespace sluice::daemon {
namespace {

using namespace std::chrono_literals;

discovery::BackendEntry entry(const std::string& address, uint32_t weight = 100, bool draining = false)
{
    return discovery::BackendEntry{*model::parse_ip_address(address), 80, weight, draining};
}

// A drain that changes source (discovery, then the API) keeps its start
// time, so the deadline is not pushed back; an ended drain is forgotten.
TEST(DrainTracker, DeadlineCountsFromTheFirstRequest)
{
    DrainTracker t;
    const auto t0 = Clock::now();
    const auto a = *model::parse_ip_address("10.0.0.1");
    t.update({entry("10.0.0.1", 100, true)}, {}, 10s, t0);
    ASSERT_NE(t.find(a), nullptr);
    EXPECT_EQ(t.find(a)->source, std::string(kDrainDiscovery));
    t.update({entry("10.0.0.1")}, {a}, 10s, t0 + 5s);
    EXPECT_EQ(t.find(a)->source, std::string(kDrainApi));
    EXPECT_EQ(t.find(a)->since, t0);
    EXPECT_FALSE(t.expired(a, 10s, t0 + 9s));
    EXPECT_TRUE(t.expired(a, 10s, t0 + 10s));
    EXPECT_EQ(t.next_expiry(10s, t0 + 1s), t0 + 10s);
    t.update({entry("10.0.0.1", 0)}, {}, 10s, t0 + 6s);  // weight 0 drains too
    EXPECT_EQ(t.find(a)->source, std::string(kDrainWeight));
    t.update({entry("10.0.0.1")}, {}, 10s, t0 + 7s);
    EXPECT_EQ(t.find(a), nullptr);
}

// A backend that leaves the discovered set drains (source "removed", its
// last entry kept) from the moment it left, and is forgotten once the
// deadline has passed: removal -> draining -> expiry -> gone.
TEST(DrainTracker, RemovedBackendDrainsUntilTheDeadlineThenIsForgotten)
{
    DrainTracker t;
    const auto t0 = Clock::now();
    const auto a = *model::parse_ip_address("10.0.0.1");
    EXPECT_FALSE(t.update({entry("10.0.0.1", 70), entry("10.0.0.2")}, {}, 10s, t0));
    EXPECT_EQ(t.find(a), nullptr);
    EXPECT_TRUE(t.update({entry("10.0.0.2")}, {}, 10s, t0 + 1s));  // removed
    ASSERT_NE(t.find(a), nullptr);
    EXPECT_EQ(t.find(a)->source, std::string(kDrainRemoved));
    EXPECT_EQ(t.find(a)->since, t0 + 1s);
    ASSERT_EQ(t.departed().size(), 1u);
    EXPECT_EQ(t.departed()[0], entry("10.0.0.1", 70));
    EXPECT_EQ(t.next_expiry(10s, t0 + 2s), t0 + 11s);
    EXPECT_FALSE(t.update({entry("10.0.0.2")}, {}, 10s, t0 + 10s));  // still draining, unchanged
    EXPECT_EQ(t.departed().size(), 1u);
    EXPECT_TRUE(t.update({entry("10.0.0.2")}, {}, 10s, t0 + 11s));   // past the deadline
    EXPECT_EQ(t.find(a), nullptr);
    EXPECT_TRUE(t.departed().empty());
    EXPECT_FALSE(t.update({entry("10.0.0.2")}, {}, 10s, t0 + 12s));  // and stays forgotten
    EXPECT_EQ(t.find(a), nullptr);
}

// A removed backend that comes back before its deadline is an ordinary
// (not draining) backend again; removed again later, its clock restarts.
TEST(DrainTracker, RemovedBackendThatReturnsIsNormalAgain)
{
    DrainTracker t;
    const auto t0 = Clock::now();
    const auto a = *model::parse_ip_address("10.0.0.1");
    t.update({entry("10.0.0.1"), entry("10.0.0.2")}, {}, 10s, t0);
    t.update({entry("10.0.0.2")}, {}, 10s, t0 + 1s);
    ASSERT_NE(t.find(a), nullptr);
    EXPECT_TRUE(t.update({entry("10.0.0.1"), entry("10.0.0.2")}, {}, 10s, t0 + 5s));  // back
    EXPECT_EQ(t.find(a), nullptr);
    EXPECT_TRUE(t.departed().empty());
    t.update({entry("10.0.0.2")}, {}, 10s, t0 + 20s);
    ASSERT_NE(t.find(a), nullptr);
    EXPECT_EQ(t.find(a)->since, t0 + 20s);
}

// A backend already draining when it is removed keeps its drain's start:
// removal gives no new grace period, and one whose drain expired leaves at
// once. forget_departed drops a departed backend before its deadline.
TEST(DrainTracker, RemovalKeepsAnEarlierDrainsClock)
{
    DrainTracker t;
    const auto t0 = Clock::now();
    const auto a = *model::parse_ip_address("10.0.0.1");
    const auto b = *model::parse_ip_address("10.0.0.3");
    t.update({entry("10.0.0.1"), entry("10.0.0.2"), entry("10.0.0.3")}, {a}, 10s, t0);
    t.update({entry("10.0.0.2")}, {a}, 10s, t0 + 4s);
    ASSERT_NE(t.find(a), nullptr);
    EXPECT_EQ(t.find(a)->source, std::string(kDrainRemoved));
    EXPECT_EQ(t.find(a)->since, t0);
    EXPECT_EQ(t.departed().size(), 2u);
    t.forget_departed(b);
    EXPECT_EQ(t.find(b), nullptr);
    t.update({entry("10.0.0.2")}, {a}, 10s, t0 + 5s);
    EXPECT_EQ(t.find(b), nullptr);
    DrainTracker late;
    late.update({entry("10.0.0.1"), entry("10.0.0.2")}, {a}, 10s, t0);
    late.update({entry("10.0.0.2")}, {a}, 10s, t0 + 30s);  // drained past its deadline, then removed
    EXPECT_EQ(late.find(a), nullptr);
}

// Draining backends stay in the plan input as draining (no slots) until
// expired, whatever their health; active ones go through the all-down policy.
TEST(BuildPool, DrainingStaysActivePoolFollowsHealth)
{
    std::vector<Candidate> c = {{entry("10.0.0.1"), true, false, false},
                                {entry("10.0.0.2"), false, false, false},
                                {entry("10.0.0.3"), false, true, false},
                                {entry("10.0.0.4"), true, true, true}};
    Pool p = build_pool(c, model::AllDownPolicy::kDrop);
    ASSERT_EQ(p.backends.size(), 2u);
    EXPECT_EQ(p.backends[0].address.to_string(), "10.0.0.1");
    EXPECT_EQ(p.backends[1].address.to_string(), "10.0.0.3");
    EXPECT_EQ(p.backends[1].state, model::BackendState::kDraining);
    EXPECT_EQ(p.mode, health::PoolMode::kNormal);
    c[0].healthy = false;
    p = build_pool(c, model::AllDownPolicy::kDrop);
    EXPECT_EQ(p.mode, health::PoolMode::kAllDownDrop);
    ASSERT_EQ(p.backends.size(), 1u);  // only the draining one
    p = build_pool(c, model::AllDownPolicy::kKeepAll);
    EXPECT_EQ(p.mode, health::PoolMode::kAllDownKeepAll);
    EXPECT_EQ(p.backends.size(), 3u);
}

// Backends as operators name them in the API and sluicectl.
TEST(BackendRef, AddressOrEndpoint)
{
    EXPECT_EQ(parse_backend_ref("10.0.0.1")->port, 0);
    EXPECT_EQ(parse_backend_ref("10.0.0.1:8080")->port, 8080);
    EXPECT_EQ(parse_backend_ref("2001:db8::1")->address.to_string(), "2001:db8::1");
    EXPECT_EQ(parse_backend_ref("[2001:db8::1]:443")->port, 443);
    EXPECT_FALSE(parse_backend_ref("web01").ok());
}

// Services, filters, network and the log level reload live; data-plane,
// conntrack and admin settings are refused, each by name.
TEST(RestartRequired, NamesEachSettingTakenAtStart)
{
    using testing::kNode;
    using testing::load;
    const auto base = load(std::string(kNode) + testing::service("a", "192.0.2.10:80", "backends = [ { address = "
                                                                                       "\"10.0.0.1\" } ]"));
    auto live = base;
    live.services.clear();
    live.daemon.log_level = model::LogLevel::kDebug;
    live.network.gateway_ipv4 = *model::parse_ip_address("192.0.2.254");
    EXPECT_TRUE(restart_required(base, live).empty());
    auto restart = base;
    restart.dataplane.dpdk->ports[0].device = "net_null1";
    restart.timeouts.udp = 5s;
    restart.daemon.admin.port = 9999;
    const auto why = restart_required(base, restart);
    ASSERT_EQ(why.size(), 3u);
    EXPECT_NE(why[0].find("dataplane.dpdk.ports"), std::string::npos);
    EXPECT_NE(why[1].find("conntrack.udp_s"), std::string::npos);
    EXPECT_NE(why[2].find("daemon.admin.port"), std::string::npos);
    // The XDP connection table's layout is fixed at load.
    auto xdp = base;
    xdp.dataplane.xdp = model::XdpSettings{};
    xdp.dataplane.xdp->interfaces = {"eth0"};
    auto shared = xdp;
    shared.dataplane.xdp->conn_table_mode = model::XdpConnTableMode::kShared;
    const auto mode = restart_required(xdp, shared);
    ASSERT_EQ(mode.size(), 1u);
    EXPECT_NE(mode[0].find("dataplane.xdp.conn_table_mode"), std::string::npos) << mode[0];
}

}  // namespace
}  // namespace sluice::daemon
