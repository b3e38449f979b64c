// UDP send/expect checks against a real responder: the expected bytes, a
// wrong reply, no reply, and a closed port reported by ICMP.
#include <gtest/gtest.h>

#include <thread>

#include "health/checker.h"
#include "test_servers.h"

namespace sluice::health {
namespace {

using namespace std::chrono_literals;
using testing::TransitionLog;
using testing::UdpServer;
using Clock = std::chrono::steady_clock;

constexpr auto kInterval = 100ms;
constexpr uint32_t kRise = 2;
constexpr uint32_t kFall = 3;
constexpr auto kMargin = 150ms;

Target udp_target(const std::string& service, uint16_t port)
{
    Target target;
    target.key = TargetKey{service, testing::loopback(), port};
    target.spec.type = CheckType::kUdp;
    target.spec.interval = kInterval;
    target.spec.timeout = 60ms;
    target.spec.rise = kRise;
    target.spec.fall = kFall;
    target.spec.udp_send = "ping";
    target.spec.udp_expect = "ok";
    return target;
}

struct Harness {
    TransitionLog log;
    std::unique_ptr<HealthChecker> checker;

    Harness()
    {
        auto started = HealthChecker::start(
            [this](const TargetKey& key, bool healthy, const std::string& reason) {
                log.add(key, healthy, reason);
            });
        if (started.ok()) checker = std::move(started).value();
    }
};

// Proves: a reply containing the expected bytes is healthy; a reply
// without them is a failure (down after exactly `fall`, within fall x
// interval + margin) and the right reply again recovers within rise x
// interval.
TEST(UdpCheck, WrongReplyFailsAndRightReplyRecovers)
{
    UdpServer server;
    ASSERT_TRUE(server.start());
    server.set_reply("status: ok\n");
    Harness h;
    ASSERT_TRUE(h.checker);
    const Target target = udp_target("dns", server.port());
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, kInterval + kMargin));
    std::this_thread::sleep_for(kInterval);

    const auto broke = Clock::now();
    server.set_reply("status: degraded\n");
    auto down = h.log.wait_for(target.key, false, broke, kFall * kInterval + kMargin);
    ASSERT_TRUE(down) << "wrong reply not detected within fall x interval + margin";
    EXPECT_GE(down->when - broke, (kFall - 1) * kInterval - 10ms);
    EXPECT_NE(down->reason.find("does not contain the expected bytes"), std::string::npos)
        << down->reason;

    const auto fixed = Clock::now();
    server.set_reply("ok");
    auto up = h.log.wait_for(target.key, true, fixed, kRise * kInterval + kMargin);
    ASSERT_TRUE(up) << "not recovered within rise x interval + margin";
    EXPECT_GE(up->when - fixed, (kRise - 1) * kInterval - 10ms);
}

// Proves: no reply at all is a failure at the timeout, reported as such,
// and the probe lasts about the timeout.
TEST(UdpCheck, NoReplyTimesOut)
{
    UdpServer server;
    ASSERT_TRUE(server.start());
    server.set_reply("ok");
    Harness h;
    ASSERT_TRUE(h.checker);
    const Target target = udp_target("dns", server.port());
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, kInterval + kMargin));

    const auto silenced = Clock::now();
    server.set_silent(true);
    auto down = h.log.wait_for(target.key, false, silenced, kFall * kInterval + kMargin);
    ASSERT_TRUE(down) << "silence not detected within fall x interval + margin";
    EXPECT_NE(down->reason.find("timeout after 60 ms waiting for a reply"), std::string::npos)
        << down->reason;
    auto status = h.checker->status(target.key);
    ASSERT_TRUE(status && status->last_latency);
    EXPECT_GE(*status->last_latency, 55ms);
    EXPECT_LT(*status->last_latency, 100ms);
}

// Proves: a closed port fails at once through ICMP port unreachable on the
// connected socket (latency far below the timeout), and a restarted
// responder is healthy again within rise x interval.
TEST(UdpCheck, ClosedPortFailsImmediatelyByIcmp)
{
    UdpServer server;
    ASSERT_TRUE(server.start());
    server.set_reply("ok");
    const uint16_t port = server.port();
    Harness h;
    ASSERT_TRUE(h.checker);
    Target target = udp_target("dns", port);
    target.spec.interval = 400ms;
    target.spec.timeout = 300ms;  // long, so "immediately" is unmistakable
    target.spec.fall = 1;
    target.spec.rise = 1;
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, 400ms + kMargin));

    const auto stopped = Clock::now();
    server.stop();
    auto down = h.log.wait_for(target.key, false, stopped, 400ms + kMargin);
    ASSERT_TRUE(down);
    EXPECT_NE(down->reason.find("port unreachable (ICMP)"), std::string::npos) << down->reason;
    auto status = h.checker->status(target.key);
    ASSERT_TRUE(status && status->last_latency);
    EXPECT_LT(*status->last_latency, 50ms) << "waited for the timeout instead of the ICMP error";

    const auto restarted = Clock::now();
    bool started = false;
    for (int i = 0; i < 50 && !started; ++i) {
        started = server.start(port);
        if (!started) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(started);
    server.set_reply("ok");
    ASSERT_TRUE(h.log.wait_for(target.key, true, restarted, 400ms + kMargin));
}

// Proves: with no expectation any reply is healthy, and an empty payload
// is still sent as a (zero-length) datagram.
TEST(UdpCheck, AnyReplyWhenNothingExpected)
{
    UdpServer server;
    ASSERT_TRUE(server.start());
    server.set_reply("whatever");
    Harness h;
    ASSERT_TRUE(h.checker);
    Target target = udp_target("game", server.port());
    target.spec.udp_send.clear();
    target.spec.udp_expect.reset();
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, kInterval + kMargin));
    EXPECT_GE(server.received(), 1u);
}

}  // namespace
}  // namespace sluice::health
