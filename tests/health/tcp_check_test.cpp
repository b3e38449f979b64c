// TCP-connect checks against real listeners the test starts, stops and
// restarts: detection and recovery times, initial states, and adding,
// updating and removing targets while the loop runs.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "health/checker.h"
#include "test_servers.h"

namespace sluice::health {
namespace {

using namespace std::chrono_literals;
using testing::TcpServer;
using testing::TransitionLog;
using Clock = std::chrono::steady_clock;

constexpr auto kInterval = 100ms;
constexpr uint32_t kRise = 2;
constexpr uint32_t kFall = 3;
// Scheduling and wake-up noise on a busy 2-core machine.
constexpr auto kMargin = 150ms;

Target tcp_target(const std::string& service, uint16_t port)
{
    Target target;
    target.key = TargetKey{service, testing::loopback(), port};
    target.spec.type = CheckType::kTcp;
    target.spec.interval = kInterval;
    target.spec.timeout = 50ms;
    target.spec.rise = kRise;
    target.spec.fall = kFall;
    return target;
}

std::unique_ptr<HealthChecker> start_checker(TransitionLog& log)
{
    auto checker = HealthChecker::start(
        [&log](const TargetKey& key, bool healthy, const std::string& reason) {
            log.add(key, healthy, reason);
        });
    EXPECT_TRUE(checker.ok()) << checker.error();
    return checker.ok() ? std::move(checker).value() : nullptr;
}

// Restarting on the same port can race with an ephemeral port; retry briefly.
bool restart(TcpServer& server, uint16_t port)
{
    for (int i = 0; i < 50; ++i) {
        if (server.start(port)) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

// Proves: a stopped listener is marked down after exactly `fall` failed
// probes, i.e. between (fall-1) and fall intervals after it stops (+ margin),
// and a restarted one comes back after exactly `rise` good probes, within
// rise intervals; the reasons name the counts and the connect error.
TEST(TcpCheck, DetectsDownWithinFallAndRecoversWithinRise)
{
    TcpServer server;
    ASSERT_TRUE(server.start());
    const uint16_t port = server.port();
    TransitionLog log;
    auto checker = start_checker(log);
    ASSERT_TRUE(checker);
    const Target target = tcp_target("web", port);
    const auto added = Clock::now();
    ASSERT_TRUE(checker->upsert(target).ok());

    // Unknown -> up on the first probe, which is jittered within one interval.
    auto up = log.wait_for(target.key, true, added, kInterval + kMargin);
    ASSERT_TRUE(up) << "first probe did not mark the target up";
    EXPECT_EQ(up->reason, "first probe succeeded");
    std::this_thread::sleep_for(2 * kInterval);

    const auto stopped = Clock::now();
    server.stop();
    auto down = log.wait_for(target.key, false, stopped, kFall * kInterval + kMargin);
    ASSERT_TRUE(down) << "not detected within fall x interval + margin";
    EXPECT_GE(down->when - stopped, (kFall - 1) * kInterval - 10ms) << "went down too early";
    EXPECT_EQ(down->reason.rfind("3 consecutive failed probes, last: connect", 0), 0u)
        << down->reason;
    auto status = checker->status(target.key);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->state, HealthState::kUnhealthy);
    EXPECT_NE(status->last_error.find("refused"), std::string::npos) << status->last_error;

    const auto restarted = Clock::now();
    ASSERT_TRUE(restart(server, port));
    auto recovered = log.wait_for(target.key, true, restarted, kRise * kInterval + kMargin);
    ASSERT_TRUE(recovered) << "not recovered within rise x interval + margin";
    EXPECT_GE(recovered->when - restarted, (kRise - 1) * kInterval - 10ms);
    EXPECT_EQ(recovered->reason, "2 consecutive successful probes");
    status = checker->status(target.key);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->checked);
    EXPECT_EQ(status->transitions, 3u);
    EXPECT_TRUE(status->last_latency.has_value());
    EXPECT_TRUE(status->last_error.empty());
}

// Proves: initial state kDown needs `rise` successes before the first "up",
// and kUp produces no callback while the backend answers.
TEST(TcpCheck, ExplicitInitialStatesFollowRiseAndFall)
{
    TcpServer server;
    ASSERT_TRUE(server.start());
    TransitionLog log;
    auto checker = start_checker(log);
    ASSERT_TRUE(checker);
    Target down_first = tcp_target("down-first", server.port());
    down_first.spec.initial = InitialState::kDown;
    down_first.spec.rise = 3;
    Target up_first = tcp_target("up-first", server.port());
    up_first.spec.initial = InitialState::kUp;
    const auto added = Clock::now();
    ASSERT_TRUE(checker->upsert(down_first).ok());
    ASSERT_TRUE(checker->upsert(up_first).ok());

    auto up = log.wait_for(down_first.key, true, added, 3 * kInterval + kMargin);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->reason, "3 consecutive successful probes");
    EXPECT_GE(up->when - added, 2 * kInterval - 10ms);
    std::this_thread::sleep_for(2 * kInterval);
    for (const auto& event : log.events()) EXPECT_NE(event.key, up_first.key) << event.reason;
    auto status = checker->status(up_first.key);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->state, HealthState::kHealthy);
    EXPECT_GE(status->probes, 2u);
}

// Proves: targets can be added, updated and removed while the loop runs: an
// added one is probed and reported, an update keeps its state (no new
// callback) while a new interval takes effect, a removed one is no longer
// probed and leaves status().
TEST(TcpCheck, AddUpdateRemoveWhileRunning)
{
    TcpServer a, b, c;
    ASSERT_TRUE(a.start());
    ASSERT_TRUE(b.start());
    ASSERT_TRUE(c.start());
    TransitionLog log;
    auto checker = start_checker(log);
    ASSERT_TRUE(checker);
    const auto t0 = Clock::now();
    const Target ta = tcp_target("svc", a.port());
    const Target tb = tcp_target("svc", b.port());
    ASSERT_TRUE(checker->upsert(ta).ok());
    ASSERT_TRUE(checker->upsert(tb).ok());
    ASSERT_TRUE(log.wait_for(ta.key, true, t0, kInterval + kMargin));
    ASSERT_TRUE(log.wait_for(tb.key, true, t0, kInterval + kMargin));

    const Target tc = tcp_target("svc", c.port());
    const auto t1 = Clock::now();
    ASSERT_TRUE(checker->upsert(tc).ok());
    ASSERT_TRUE(log.wait_for(tc.key, true, t1, kInterval + kMargin));

    // Update: a shorter interval; the state stays, no callback.
    const size_t events_before = log.events().size();
    Target faster = ta;
    faster.spec.interval = 40ms;
    faster.spec.timeout = 30ms;
    ASSERT_TRUE(checker->upsert(faster).ok());
    ASSERT_TRUE(testing::eventually([&] { return checker->pending_commands() == 0; }, 1s));
    std::this_thread::sleep_for(50ms);  // first probe under the new schedule
    const uint64_t a_before = a.accepted();
    std::this_thread::sleep_for(400ms);
    const uint64_t a_probes = a.accepted() - a_before;
    EXPECT_GE(a_probes, 7u) << "40 ms interval over 400 ms";  // 10 expected
    EXPECT_LE(a_probes, 12u);

    // Remove b: no more connects reach it.
    checker->remove(tb.key);
    ASSERT_TRUE(testing::eventually([&] { return checker->pending_commands() == 0; }, 1s));
    std::this_thread::sleep_for(20ms);  // a connect in flight at removal may still land
    const uint64_t b_before = b.accepted();
    std::this_thread::sleep_for(4 * kInterval);
    EXPECT_EQ(b.accepted(), b_before);
    EXPECT_FALSE(checker->status(tb.key));
    EXPECT_EQ(checker->status().size(), 2u);
    EXPECT_EQ(log.events().size(), events_before) << "update or remove produced a callback";

    // Re-adding starts over from unknown.
    const auto t2 = Clock::now();
    ASSERT_TRUE(checker->upsert(tb).ok());
    auto again = log.wait_for(tb.key, true, t2, kInterval + kMargin);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->reason, "first probe succeeded");
}

// Proves: type none is healthy at once without probing (and counts as
// checked); switching it to tcp against a closed port takes it down after
// `fall` probes, keeping the state in between.
TEST(TcpCheck, NoneIsHealthyWithoutProbes)
{
    TransitionLog log;
    auto checker = start_checker(log);
    ASSERT_TRUE(checker);
    TcpServer closed;
    ASSERT_TRUE(closed.start());
    const uint16_t port = closed.port();
    closed.stop();
    Target target = tcp_target("udp-svc", port);
    target.spec.type = CheckType::kNone;
    const auto added = Clock::now();
    ASSERT_TRUE(checker->upsert(target).ok());
    auto up = log.wait_for(target.key, true, added, 1s);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->reason, "no health check configured");
    auto status = checker->status(target.key);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->checked);
    EXPECT_EQ(status->probes, 0u);

    const auto switched = Clock::now();
    target.spec.type = CheckType::kTcp;
    ASSERT_TRUE(checker->upsert(target).ok());
    auto down = log.wait_for(target.key, false, switched, (kFall + 1) * kInterval + kMargin);
    ASSERT_TRUE(down);
    EXPECT_EQ(down->reason.rfind("3 consecutive failed probes", 0), 0u) << down->reason;
}

// Proves: a connect that never completes (a listener whose accept queue is
// full drops SYNs) fails at the timeout, reported as a timeout while
// connecting, and the probe lasts about the timeout.
TEST(TcpCheck, UnansweredConnectTimesOut)
{
    // listen(fd, 0) and never accept: after the queue holds one
    // connection (ours, below) the kernel drops further SYNs.
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(::listen(listener, 0), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    std::vector<int> fillers;
    for (int i = 0; i < 2; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
        fillers.push_back(fd);
    }
    std::this_thread::sleep_for(20ms);

    TransitionLog log;
    auto checker = start_checker(log);
    ASSERT_TRUE(checker);
    Target target = tcp_target("full", ntohs(addr.sin_port));
    target.spec.fall = 1;
    const auto added = Clock::now();
    ASSERT_TRUE(checker->upsert(target).ok());
    auto down = log.wait_for(target.key, false, added, kInterval + kMargin);
    checker.reset();
    for (int fd : fillers) ::close(fd);
    ::close(listener);
    ASSERT_TRUE(down);
    EXPECT_EQ(down->reason, "first probe failed: timeout after 50 ms connecting");
}

// Proves: upsert refuses what the loop cannot run (timeout >= interval,
// rise 0, port 0) with a message naming the target.
TEST(TcpCheck, UpsertValidates)
{
    TransitionLog log;
    auto checker = start_checker(log);
    ASSERT_TRUE(checker);
    Target target = tcp_target("svc", 80);
    target.spec.timeout = target.spec.interval;
    auto result = checker->upsert(target);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("svc/127.0.0.1:80"), std::string::npos) << result.error();
    target = tcp_target("svc", 80);
    target.spec.rise = 0;
    EXPECT_FALSE(checker->upsert(target).ok());
    target = tcp_target("svc", 0);
    EXPECT_FALSE(checker->upsert(target).ok());
    EXPECT_TRUE(checker->status().empty());
}

}  // namespace
}  // namespace sluice::health
