// 500 targets on one loop: every target keeps its 50 ms schedule (no
// drift, bounded lateness) and the checker adds exactly one thread, HTTP
// probes through libcurl included.
#include <dirent.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "health/checker.h"
#include "test_servers.h"

namespace sluice::health {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// tid -> thread name of every thread of this process.
std::map<int, std::string> threads()
{
    std::map<int, std::string> out;
    DIR* dir = ::opendir("/proc/self/task");
    if (dir == nullptr) return out;
    while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
        std::string name;
        std::getline(comm, name);
        out[std::stoi(entry->d_name)] = name;
    }
    ::closedir(dir);
    return out;
}

// Proves: 500 TCP targets at a 50 ms interval plus 20 HTTP targets run on a
// single loop thread (the only thread the checker adds; curl starts none),
// every TCP target completes interval-many probes over a 3 s window (within
// +-2: the fixed-rate schedule does not drift), no probe starts more than
// one interval late, and (almost) none fails.
TEST(Scale, FiveHundredTargetsKeepTheirScheduleOnOneThread)
{
    constexpr int kTcpTargets = 500;
    constexpr int kHttpTargets = 20;
    constexpr auto kInterval = 50ms;
    constexpr auto kWindow = 3000ms;

    std::vector<std::unique_ptr<testing::TcpServer>> listeners;
    for (int i = 0; i < 5; ++i) {
        listeners.push_back(std::make_unique<testing::TcpServer>());
        ASSERT_TRUE(listeners.back()->start());
    }
    testing::HttpServer http;
    ASSERT_TRUE(http.start());
    const auto before = threads();

    auto started = HealthChecker::start(nullptr);
    ASSERT_TRUE(started.ok()) << started.error();
    auto checker = std::move(started).value();
    std::vector<TargetKey> tcp_keys;
    for (int i = 0; i < kTcpTargets; ++i) {
        Target target;
        target.key = TargetKey{"svc-" + std::to_string(i), testing::loopback(),
                               listeners[static_cast<size_t>(i) % listeners.size()]->port()};
        target.spec.interval = kInterval;
        target.spec.timeout = 40ms;
        tcp_keys.push_back(target.key);
        ASSERT_TRUE(checker->upsert(target).ok());
    }
    for (int i = 0; i < kHttpTargets; ++i) {
        Target target;
        target.key = TargetKey{"http-" + std::to_string(i), testing::loopback(), http.port()};
        target.spec.type = CheckType::kHttp;
        target.spec.interval = 250ms;
        target.spec.timeout = 200ms;
        ASSERT_TRUE(checker->upsert(target).ok());
    }
    ASSERT_TRUE(testing::eventually(
        [&] {
            for (const auto& status : checker->status()) {
                if (!status.checked) return false;
            }
            return true;
        },
        2s))
        << "not every target was probed within its first intervals";

    std::map<TargetKey, uint64_t> start_counts;
    const auto window_start = Clock::now();
    for (const auto& status : checker->status()) start_counts[status.key] = status.probes;
    std::this_thread::sleep_for(kWindow);
    const auto statuses = checker->status();
    const auto window = Clock::now() - window_start;

    const auto expected = static_cast<int64_t>(window / kInterval);
    int64_t min_probes = INT64_MAX, max_probes = 0;
    uint64_t failures = 0, probes = 0, skipped = 0;
    std::chrono::microseconds worst_lateness{0};
    for (const auto& status : statuses) {
        worst_lateness = std::max(worst_lateness, status.max_start_lateness);
        skipped += status.skipped_slots;
        failures += status.failed_probes;
        probes += status.probes;
        if (status.type != CheckType::kTcp) continue;
        const auto done = static_cast<int64_t>(status.probes - start_counts[status.key]);
        min_probes = std::min(min_probes, done);
        max_probes = std::max(max_probes, done);
    }
    RecordProperty("expected_probes_per_target", static_cast<int>(expected));
    RecordProperty("min_probes", static_cast<int>(min_probes));
    RecordProperty("max_probes", static_cast<int>(max_probes));
    RecordProperty("worst_lateness_us", static_cast<int>(worst_lateness.count()));
    std::cout << "window " << std::chrono::duration_cast<std::chrono::milliseconds>(window).count()
              << " ms: expected " << expected << " probes per TCP target, got " << min_probes
              << ".." << max_probes << "; worst start lateness " << worst_lateness.count()
              << " us; skipped slots " << skipped << "; failed " << failures << "/" << probes
              << "\n";
    EXPECT_GE(min_probes, expected - 2) << "a target fell behind its schedule";
    EXPECT_LE(max_probes, expected + 2);
    EXPECT_LT(worst_lateness, std::chrono::microseconds(kInterval)) << "a probe started an interval late";
    EXPECT_EQ(skipped, 0u);
    EXPECT_LE(failures * 1000, probes) << "more than 0.1% of probes failed";

    const auto after = threads();
    std::vector<std::string> added;
    for (const auto& [tid, name] : after) {
        if (before.count(tid) == 0 && name != "test-srv") added.push_back(name);
    }
    ASSERT_EQ(added.size(), 1u) << "the checker added more than its loop thread";
    EXPECT_EQ(added[0], "sluice-health");
    for (const auto& key : tcp_keys) ASSERT_EQ(checker->status(key)->state, HealthState::kHealthy);
}

}  // namespace
}  // namespace sluice::health
