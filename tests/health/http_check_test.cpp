// HTTP and HTTPS GET checks against real servers: expected status (list and
// range), wrong status, slow responses, request path and Host header, a
// stopped server, and TLS with and without verification.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "health/checker.h"
#include "test_env.h"
#include "test_servers.h"

namespace sluice::health {
namespace {

using namespace std::chrono_literals;
using testing::HttpServer;
using testing::TransitionLog;
using Clock = std::chrono::steady_clock;

constexpr auto kInterval = 100ms;
constexpr uint32_t kRise = 2;
constexpr uint32_t kFall = 3;
constexpr auto kMargin = 150ms;

Target http_target(const std::string& service, uint16_t port)
{
    Target target;
    target.key = TargetKey{service, testing::loopback(), port};
    target.spec.type = CheckType::kHttp;
    target.spec.interval = kInterval;
    target.spec.timeout = 80ms;
    target.spec.rise = kRise;
    target.spec.fall = kFall;
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

// Proves: a 200 marks the target up; the configured path (with query) and
// Host header (verbatim, port included) reach the server while the
// connection goes to the target's address and port.
TEST(HttpCheck, SendsPathAndHostAndAcceptsExpectedStatus)
{
    HttpServer server;
    ASSERT_TRUE(server.start());
    Harness h;
    ASSERT_TRUE(h.checker);
    Target target = http_target("web", server.port());
    target.spec.http_path = "/healthz?deep=1";
    target.spec.http_host = "backend.example:8443";
    const auto added = Clock::now();
    ASSERT_TRUE(h.checker->upsert(target).ok());
    auto up = h.log.wait_for(target.key, true, added, kInterval + kMargin);
    ASSERT_TRUE(up);
    EXPECT_EQ(server.last_request_line(), "GET /healthz?deep=1 HTTP/1.1");
    EXPECT_EQ(server.last_host(), "backend.example:8443");
}

// Proves: without http_host the Host header is the target's address.
TEST(HttpCheck, DefaultHostIsTheAddress)
{
    HttpServer server;
    ASSERT_TRUE(server.start());
    Harness h;
    ASSERT_TRUE(h.checker);
    const Target target = http_target("web", server.port());
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, kInterval + kMargin));
    EXPECT_EQ(server.last_host(), "127.0.0.1:" + std::to_string(server.port()));
}

// Proves: an unexpected status is a failed probe: a 503 takes the target
// down after exactly `fall` probes (within fall x interval + margin), and
// 200 again brings it back within rise x interval; the reason names the
// status.
TEST(HttpCheck, WrongStatusFailsWithinFallAndRecoversWithinRise)
{
    HttpServer server;
    ASSERT_TRUE(server.start());
    Harness h;
    ASSERT_TRUE(h.checker);
    const Target target = http_target("web", server.port());
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, kInterval + kMargin));
    std::this_thread::sleep_for(kInterval);

    const auto broke = Clock::now();
    server.set_status(503);
    auto down = h.log.wait_for(target.key, false, broke, kFall * kInterval + kMargin);
    ASSERT_TRUE(down) << "503 not detected within fall x interval + margin";
    EXPECT_GE(down->when - broke, (kFall - 1) * kInterval - 10ms);
    EXPECT_NE(down->reason.find("HTTP status 503 not expected"), std::string::npos)
        << down->reason;

    const auto fixed = Clock::now();
    server.set_status(200);
    auto up = h.log.wait_for(target.key, true, fixed, kRise * kInterval + kMargin);
    ASSERT_TRUE(up) << "not recovered within rise x interval + margin";
    EXPECT_GE(up->when - fixed, (kRise - 1) * kInterval - 10ms);
}

// Proves: expected statuses are a list of inclusive ranges: 204 passes
// {200-299}, 302 fails it, 302 passes {200, 301-302}; redirects are judged,
// not followed.
TEST(HttpCheck, ExpectedStatusRanges)
{
    HttpServer server;
    ASSERT_TRUE(server.start());
    Harness h;
    ASSERT_TRUE(h.checker);
    Target target = http_target("web", server.port());
    target.spec.http_expect = {{200, 299}};
    target.spec.rise = target.spec.fall = 1;
    server.set_status(204);
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, kInterval + kMargin));

    auto t = Clock::now();
    server.set_status(302);
    auto down = h.log.wait_for(target.key, false, t, kInterval + kMargin);
    ASSERT_TRUE(down);
    EXPECT_NE(down->reason.find("302"), std::string::npos) << down->reason;

    t = Clock::now();
    target.spec.http_expect = {{200, 200}, {301, 302}};
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, t, kInterval + kMargin));
}

// Proves: a response slower than the timeout is a failure, reported as a
// timeout, and the probe ends at the timeout rather than when the server
// finally answers.
TEST(HttpCheck, SlowResponseBeyondTimeoutFails)
{
    HttpServer server;
    ASSERT_TRUE(server.start());
    Harness h;
    ASSERT_TRUE(h.checker);
    Target target = http_target("web", server.port());
    target.spec.interval = 250ms;
    target.spec.timeout = 100ms;
    target.spec.fall = 2;
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, 250ms + kMargin));

    const auto slowed = Clock::now();
    server.set_delay(400ms);
    auto down = h.log.wait_for(target.key, false, slowed, 2 * 250ms + kMargin);
    ASSERT_TRUE(down) << "slow responses not detected";
    EXPECT_NE(down->reason.find("timeout after 100 ms"), std::string::npos) << down->reason;
    auto status = h.checker->status(target.key);
    ASSERT_TRUE(status && status->last_latency);
    EXPECT_GE(*status->last_latency, 95ms);
    EXPECT_LT(*status->last_latency, 250ms) << "probe waited for the slow server";
}

// Proves: a stopped HTTP server (connection refused) is detected within
// fall x interval, the reason carrying curl's error.
TEST(HttpCheck, StoppedServerIsDetected)
{
    HttpServer server;
    ASSERT_TRUE(server.start());
    Harness h;
    ASSERT_TRUE(h.checker);
    const Target target = http_target("web", server.port());
    ASSERT_TRUE(h.checker->upsert(target).ok());
    ASSERT_TRUE(h.log.wait_for(target.key, true, Clock::now() - 1s, kInterval + kMargin));
    const auto stopped = Clock::now();
    server.stop();
    auto down = h.log.wait_for(target.key, false, stopped, kFall * kInterval + kMargin);
    ASSERT_TRUE(down);
    EXPECT_NE(down->reason.find("http: "), std::string::npos) << down->reason;
}

// A python3 HTTPS server (tests/health/https_server.py) as a child process,
// killed by PID when this object goes, on every exit path of a test.
class HttpsServer {
public:
    HttpsServer()
    {
        const char* python = std::getenv("SLUICE_PYTHON3");
        script_ = sluice::testing::source_path("tests/health/https_server.py");
        port_file_ = "/tmp/sluice-health-https-" + std::to_string(::getpid()) + ".port";
        ::unlink(port_file_.c_str());
        const std::string interpreter = python != nullptr ? python : "python3";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no server
            ::execlp(interpreter.c_str(), interpreter.c_str(), script_.c_str(), "--port-file",
                     port_file_.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~HttpsServer()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::unlink(port_file_.c_str());
    }
    // The port once the server listens; 0 after 10 s or if it died.
    uint16_t wait_port()
    {
        uint16_t port = 0;
        testing::eventually(
            [&] {
                std::ifstream in(port_file_);
                int value = 0;
                if (in >> value) port = static_cast<uint16_t>(value);
                return port != 0 || ::waitpid(pid_, nullptr, WNOHANG) == pid_;
            },
            10s);
        return port;
    }

private:
    std::string script_;
    std::string port_file_;
    pid_t pid_ = -1;
};

// Proves: HTTPS probes complete a TLS handshake with verification off (the
// default: backends are probed by IP) against a self-signed certificate,
// and fail with a certificate error when verification is on.
TEST(HttpsCheck, VerifyOffAcceptsSelfSignedVerifyOnRefusesIt)
{
    HttpsServer server;
    const uint16_t port = server.wait_port();
    SLUICE_REQUIRE(port != 0, "python3 + openssl HTTPS test server");
    Harness h;
    ASSERT_TRUE(h.checker);
    Target lax = http_target("lax", port);
    lax.spec.type = CheckType::kHttps;
    lax.spec.interval = 500ms;  // TLS handshakes in python are slow on a busy box
    lax.spec.timeout = 400ms;
    lax.spec.http_host = "backend.test";
    Target strict = lax;
    strict.key.service = "strict";
    strict.spec.tls_verify = true;
    const auto added = Clock::now();
    ASSERT_TRUE(h.checker->upsert(lax).ok());
    ASSERT_TRUE(h.checker->upsert(strict).ok());
    auto up = h.log.wait_for(lax.key, true, added, 500ms + 500ms);
    ASSERT_TRUE(up) << (h.checker->status(lax.key) ? h.checker->status(lax.key)->last_error : "");
    auto down = h.log.wait_for(strict.key, false, added, 500ms + 500ms);
    ASSERT_TRUE(down);
    EXPECT_NE(down->reason.find("certificate"), std::string::npos) << down->reason;
}

}  // namespace
}  // namespace sluice::health
