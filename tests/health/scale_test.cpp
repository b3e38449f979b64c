// 500 targets on one loop: every target keeps its 50 ms schedule (no
// drift, bounded lateness) and the checker adds exactly one thread, HTTP
// probes through libcurl included.
#include <dirent.h>
#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
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

// Measures how late a 1 ms sleeper wakes: the process's own scheduling
// stalls, which no event loop can beat.
class Canary {
public:
    Canary()
        : thread_([this] {
              pthread_setname_np(pthread_self(), "test-srv");
              while (!stop_.load()) {
                  const auto before = Clock::now();
                  std::this_thread::sleep_for(1ms);
                  const auto late = std::chrono::duration_cast<std::chrono::microseconds>(
                      Clock::now() - before - 1ms);
                  if (late > worst_.load()) worst_.store(late);
              }
          })
    {
    }
    ~Canary() { stop(); }
    std::chrono::microseconds stop()
    {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
        return worst_.load();
    }

private:
    std::atomic<bool> stop_{false};
    std::atomic<std::chrono::microseconds> worst_{std::chrono::microseconds(0)};
    std::thread thread_;
};

// Proves: 500 TCP targets at a 50 ms interval plus 20 HTTP targets run on a
// single loop thread (the only thread the checker adds; curl starts none),
// every TCP target completes interval-many probes over a 3 s window (within
// +-2: the fixed-rate schedule does not drift), no probe starts more than
// one interval late, no slot is skipped and (almost) no probe fails.
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

    // Each window measures the schedule; a window in which the canary (a
    // thread of this process sleeping 1 ms at a time) was itself held off
    // the CPU for more than 20 ms says nothing about the checker, only that
    // the machine was starved (other builds on 2 shared cores): such a
    // window is retried, up to 5 times. A bad window without a stall fails.
    bool passed = false;
    for (int attempt = 0; attempt < 5 && !passed; ++attempt) {
        std::map<TargetKey, TargetStatus> before_window;
        for (const auto& status : checker->status()) before_window[status.key] = status;
        Canary canary;
        const auto window_start = Clock::now();
        std::this_thread::sleep_for(kWindow);
        const auto statuses = checker->status();
        const auto window = Clock::now() - window_start;
        const auto stall = canary.stop();

        const auto expected = static_cast<int64_t>(window / kInterval);
        int64_t min_probes = INT64_MAX, max_probes = 0;
        uint64_t failures = 0, probes = 0, skipped = 0;
        std::chrono::microseconds worst_lateness{0};
        for (const auto& status : statuses) {
            const TargetStatus& old = before_window[status.key];
            worst_lateness = std::max(worst_lateness, status.max_start_lateness);
            skipped += status.skipped_slots - old.skipped_slots;
            failures += status.failed_probes - old.failed_probes;
            probes += status.probes - old.probes;
            if (status.type != CheckType::kTcp) continue;
            const auto done = static_cast<int64_t>(status.probes - old.probes);
            min_probes = std::min(min_probes, done);
            max_probes = std::max(max_probes, done);
        }
        const auto window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(window);
        std::cout << "window " << window_ms.count() << " ms: expected " << expected << " probes per TCP target, got " << min_probes
                  << ".." << max_probes << "; worst start lateness " << worst_lateness.count()
                  << " us (since start); skipped slots " << skipped << "; failed " << failures
                  << "/" << probes << "; canary stall " << stall.count() << " us\n";
        // max_start_lateness is a lifetime maximum: a stall in an earlier,
        // retried window still shows; judge lateness only on a first try.
        passed = min_probes >= expected - 2 && max_probes <= expected + 2 &&
                 (attempt > 0 || worst_lateness < std::chrono::microseconds(kInterval)) &&
                 skipped == 0 && failures * 1000 <= probes;
        if (!passed && stall < 20ms) {
            ADD_FAILURE() << "schedule broken without the machine stalling (canary "
                          << stall.count() << " us)";
            break;
        }
    }
    EXPECT_TRUE(passed) << "5 windows, each starved or out of bounds";

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
