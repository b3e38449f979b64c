// IPv6 targets on ::1 for every check type: address literals in URLs and
// CONNECT_TO need brackets, and ICMPv6 must fail a UDP probe like ICMP.
#include <gtest/gtest.h>

#include "health/checker.h"
#include "test_servers.h"

namespace sluice::health {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Target target_on(const std::string& service, CheckType type, uint16_t port)
{
    Target target;
    target.key = TargetKey{service, testing::loopback6(), port};
    target.spec.type = type;
    target.spec.interval = 100ms;
    target.spec.timeout = 80ms;
    target.spec.rise = 1;
    target.spec.fall = 1;
    target.spec.udp_send = "ping";
    target.spec.udp_expect = "pong";
    return target;
}

// Proves: TCP, UDP and HTTP probes reach [::1]; the default Host header is
// the bracketed address with its port, a configured Host is sent verbatim;
// a closed UDP port on ::1 fails through ICMPv6 port unreachable.
TEST(Ipv6, EveryCheckTypeWorksOnIpv6)
{
    testing::TcpServer tcp;
    testing::UdpServer udp;
    testing::HttpServer http;
    testing::UdpServer closed_udp;
    ASSERT_TRUE(tcp.start(0, true));
    ASSERT_TRUE(udp.start(0, true));
    ASSERT_TRUE(http.start(0, true));
    ASSERT_TRUE(closed_udp.start(0, true));
    const uint16_t closed_port = closed_udp.port();
    closed_udp.stop();

    testing::TransitionLog log;
    auto started = HealthChecker::start(
        [&log](const TargetKey& key, bool healthy, const std::string& reason) {
            log.add(key, healthy, reason);
        });
    ASSERT_TRUE(started.ok()) << started.error();
    auto checker = std::move(started).value();

    const Target t_tcp = target_on("tcp", CheckType::kTcp, tcp.port());
    const Target t_udp = target_on("udp", CheckType::kUdp, udp.port());
    const Target t_http = target_on("http", CheckType::kHttp, http.port());
    Target t_named = target_on("named", CheckType::kHttp, http.port());
    t_named.spec.http_host = "v6.example";
    const Target t_closed = target_on("closed", CheckType::kUdp, closed_port);
    const auto added = Clock::now();
    for (const Target* t : {&t_tcp, &t_udp, &t_http}) ASSERT_TRUE(checker->upsert(*t).ok());
    for (const Target* t : {&t_tcp, &t_udp, &t_http}) {
        auto up = log.wait_for(t->key, true, added, 500ms);
        ASSERT_TRUE(up) << t->key.to_string() << ": "
                        << checker->status(t->key).value_or(TargetStatus{}).last_error;
    }
    EXPECT_EQ(http.last_host(), "[::1]:" + std::to_string(http.port()));

    const auto named_added = Clock::now();
    ASSERT_TRUE(checker->upsert(t_named).ok());
    ASSERT_TRUE(checker->upsert(t_closed).ok());
    ASSERT_TRUE(log.wait_for(t_named.key, true, named_added, 500ms));
    EXPECT_EQ(http.last_host(), "v6.example");
    auto down = log.wait_for(t_closed.key, false, named_added, 500ms);
    ASSERT_TRUE(down);
    EXPECT_NE(down->reason.find("port unreachable"), std::string::npos) << down->reason;
}

}  // namespace
}  // namespace sluice::health
