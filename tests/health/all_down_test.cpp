// The all-backends-down policy: the effective set under keep_all and drop,
// draining backends, and the per-service episode counter for /metrics.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "health/all_down.h"
#include "health/checker.h"
#include "test_servers.h"

namespace sluice::health {
namespace {

model::Backend backend(const char* address,
                       model::BackendState state = model::BackendState::kActive)
{
    model::Backend b;
    b.address = model::parse_ip_address(address).value();
    b.state = state;
    return b;
}

std::vector<std::string> addresses(const EffectiveBackends& effective)
{
    std::vector<std::string> out;
    for (const model::Backend& b : effective.backends) out.push_back(b.address.to_string());
    return out;
}

// Proves: with some backends healthy, only those enter the table, under
// either policy.
TEST(AllDown, HealthyBackendsOnlyWhenAnyIsUp)
{
    const std::vector<BackendHealth> pool = {
        {backend("10.0.0.1"), true}, {backend("10.0.0.2"), false}, {backend("10.0.0.3"), true}};
    for (auto policy : {model::AllDownPolicy::kKeepAll, model::AllDownPolicy::kDrop}) {
        const EffectiveBackends effective = effective_backends(pool, policy);
        EXPECT_EQ(effective.mode, PoolMode::kNormal);
        EXPECT_FALSE(effective.all_down());
        EXPECT_EQ(addresses(effective), (std::vector<std::string>{"10.0.0.1", "10.0.0.3"}));
    }
}

// Proves: keep_all fails open: every active backend stays in the table
// when none is healthy, and the mode says so.
TEST(AllDown, KeepAllKeepsEveryActiveBackend)
{
    const std::vector<BackendHealth> pool = {
        {backend("10.0.0.1"), false},
        {backend("10.0.0.2"), false},
        {backend("10.0.0.9", model::BackendState::kDraining), true}};
    const EffectiveBackends effective = effective_backends(pool, model::AllDownPolicy::kKeepAll);
    EXPECT_EQ(effective.mode, PoolMode::kAllDownKeepAll);
    EXPECT_TRUE(effective.all_down());
    EXPECT_EQ(addresses(effective), (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}))
        << "a draining backend must not come back, even healthy";
}

// Proves: drop fails closed: an empty set, in all-down mode (the data plane
// then drops the VIP's new flows and counts them).
TEST(AllDown, DropLeavesTheTableEmpty)
{
    const std::vector<BackendHealth> pool = {{backend("10.0.0.1"), false},
                                             {backend("10.0.0.2"), false}};
    const EffectiveBackends effective = effective_backends(pool, model::AllDownPolicy::kDrop);
    EXPECT_EQ(effective.mode, PoolMode::kAllDownDrop);
    EXPECT_TRUE(effective.all_down());
    EXPECT_TRUE(effective.backends.empty());
}

// Proves: a pool with no active backend (empty, or all draining) is not
// "all down": nothing failed, so nothing is counted.
TEST(AllDown, NoActiveBackendIsNotAllDown)
{
    const std::vector<BackendHealth> draining = {
        {backend("10.0.0.1", model::BackendState::kDraining), true}};
    for (auto policy : {model::AllDownPolicy::kKeepAll, model::AllDownPolicy::kDrop}) {
        EXPECT_EQ(effective_backends({}, policy).mode, PoolMode::kNoActive);
        const EffectiveBackends effective = effective_backends(draining, policy);
        EXPECT_EQ(effective.mode, PoolMode::kNoActive);
        EXPECT_FALSE(effective.all_down());
        EXPECT_TRUE(effective.backends.empty());
    }
}

// Proves: the counter counts entries into all-down mode (not evaluations),
// the gauge follows the current mode, services are independent, and a
// forgotten service leaves the snapshot.
TEST(AllDown, CountersCountEpisodes)
{
    AllDownCounters counters;
    counters.record("web", PoolMode::kNormal);
    counters.record("web", PoolMode::kAllDownDrop);
    counters.record("web", PoolMode::kAllDownDrop);  // same episode
    counters.record("web", PoolMode::kNormal);
    counters.record("web", PoolMode::kAllDownKeepAll);  // second episode
    counters.record("dns", PoolMode::kNoActive);

    auto snapshot = counters.snapshot();
    ASSERT_EQ(snapshot.size(), 2u);
    EXPECT_EQ(snapshot[0].service, "dns");
    EXPECT_FALSE(snapshot[0].all_down);
    EXPECT_EQ(snapshot[0].episodes, 0u);
    EXPECT_EQ(snapshot[1].service, "web");
    EXPECT_TRUE(snapshot[1].all_down);
    EXPECT_EQ(snapshot[1].mode, PoolMode::kAllDownKeepAll);
    EXPECT_EQ(snapshot[1].episodes, 2u);

    counters.forget("web");
    snapshot = counters.snapshot();
    ASSERT_EQ(snapshot.size(), 1u);
    EXPECT_EQ(snapshot[0].service, "dns");
}

// Proves, end to end with real listeners and the checker: when every
// backend's checks fail the pool enters all-down mode (keep_all keeps both,
// drop keeps none, one episode counted each), and one recovered backend
// returns the pool to normal with only that backend.
TEST(AllDown, FollowsRealChecks)
{
    using namespace std::chrono_literals;
    testing::TcpServer first, second;
    ASSERT_TRUE(first.start());
    ASSERT_TRUE(second.start());
    auto started = HealthChecker::start(nullptr);
    ASSERT_TRUE(started.ok()) << started.error();
    auto checker = std::move(started).value();
    std::vector<Target> targets;
    for (uint16_t port : {first.port(), second.port()}) {
        Target target;
        target.key = TargetKey{"web", testing::loopback(), port};
        target.spec.interval = 50ms;
        target.spec.timeout = 40ms;
        target.spec.rise = 1;
        target.spec.fall = 2;
        targets.push_back(target);
        ASSERT_TRUE(checker->upsert(target).ok());
    }
    // The pool as the control plane would assemble it from status().
    auto pool = [&] {
        std::vector<BackendHealth> out;
        for (const Target& target : targets) {
            model::Backend b;
            b.address = target.key.address;
            b.port = target.key.port;
            auto status = checker->status(target.key);
            out.push_back({b, status && status->state == HealthState::kHealthy});
        }
        return out;
    };
    auto mode = [&](model::AllDownPolicy policy) {
        return effective_backends(pool(), policy).mode;
    };
    ASSERT_TRUE(testing::eventually(
        [&] {
            const auto effective = effective_backends(pool(), model::AllDownPolicy::kDrop);
            return effective.mode == PoolMode::kNormal && effective.backends.size() == 2;
        },
        2s));

    AllDownCounters counters;
    first.stop();
    second.stop();
    ASSERT_TRUE(testing::eventually(
        [&] { return mode(model::AllDownPolicy::kDrop) == PoolMode::kAllDownDrop; }, 2s));
    const auto keep = effective_backends(pool(), model::AllDownPolicy::kKeepAll);
    EXPECT_EQ(keep.mode, PoolMode::kAllDownKeepAll);
    EXPECT_EQ(keep.backends.size(), 2u);
    const auto drop = effective_backends(pool(), model::AllDownPolicy::kDrop);
    EXPECT_TRUE(drop.backends.empty());
    counters.record("web-keep", keep.mode);
    counters.record("web-drop", drop.mode);

    bool restarted = false;
    for (int i = 0; i < 50 && !restarted; ++i) {
        restarted = second.start(targets[1].key.port);
        if (!restarted) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(restarted);
    ASSERT_TRUE(testing::eventually(
        [&] { return mode(model::AllDownPolicy::kDrop) == PoolMode::kNormal; }, 2s));
    for (auto policy : {model::AllDownPolicy::kKeepAll, model::AllDownPolicy::kDrop}) {
        const auto effective = effective_backends(pool(), policy);
        ASSERT_EQ(effective.backends.size(), 1u);
        EXPECT_EQ(effective.backends[0].port, targets[1].key.port);
        counters.record(policy == model::AllDownPolicy::kKeepAll ? "web-keep" : "web-drop",
                        effective.mode);
    }
    for (const auto& entry : counters.snapshot()) {
        EXPECT_EQ(entry.episodes, 1u) << entry.service;
        EXPECT_FALSE(entry.all_down) << entry.service;
    }
}

}  // namespace
}  // namespace sluice::health
