// ServiceManager against a fake driver with real discovery sources (etcd
// started by the test) and real health checks (TCP listeners of the test):
// what reaches driver.publish, and how fast.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "../discovery/etcd_server.h"
#include "config_text.h"
#include "daemon/state_file.h"
#include "harness.h"
#include "test_env.h"

namespace sluice::daemon {
namespace {

using namespace sluice::daemon::testing;
using namespace std::chrono_literals;
namespace dt = sluice::discovery::testing;

constexpr auto kBound = 5000ms;  // generous for a loaded CI box; the bench measures the real figure

std::string etcd_backend(const std::string& address, int weight = 100, bool draining = false)
{
    return "{\"address\": \"" + address + "\", \"weight\": " + std::to_string(weight) +
           (draining ? ", \"state\": \"draining\"" : "") + "}";
}

// A TCP listener on address:port (port 0 = any), closed on destruction.
class Listener {
public:
    explicit Listener(const std::string& address, uint16_t port = 0) { open(address, port); }
    ~Listener() { close(); }
    void open(const std::string& address, uint16_t port)
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd_, 64), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    void close()
    {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    uint16_t port_ = 0;
};

// The loader refuses loopback backends (right for production); the health
// tests need them, so 10.0.0.N becomes 127.0.0.N after loading.
void to_loopback(model::Config& config)
{
    for (auto& s : config.services) {
        for (auto& b : s.backends) b.address.bytes[0] = 127;
    }
}

// etcd put and delete reach driver.publish with exactly the discovered set,
// within a bound; a discovery outage keeps the last good set and says so.
TEST(ServiceManager, EtcdChangesArePublished)
{
    SLUICE_REQUIRE(dt::have_program(dt::kEtcd) && dt::have_program(dt::kEtcdctl), "etcd and etcdctl");
    dt::EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << dt::read_file(etcd.log_path());
    const std::string prefix = "/sluice/services/api/";
    ASSERT_TRUE(etcd.put(prefix + "a", etcd_backend("10.0.0.1")));

    ManagerOptions options;
    options.source_options.backoff_initial = 100ms;
    options.source_options.backoff_max = 300ms;
    ManagerRunner runner(options);
    ASSERT_TRUE(runner.start(load(std::string(kNode) +
                                  service("api", "192.0.2.10:80",
                                          "health_check = { type = \"none\" }\ndiscovery = { type = \"etcd\", "
                                          "endpoints = [\"" + etcd.url() + "\"], prefix = \"" + prefix + "\" }")))
                    .ok());
    auto& fake = runner.driver();
    EXPECT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.1"; }, kBound));
    EXPECT_TRUE(dt::wait_until([&] { return runner.manager().ready(); }, kBound));

    const auto put_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(etcd.put(prefix + "b", etcd_backend("10.0.0.2", 50)));
    FakeDriver::Published got;
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.1 10.0.0.2"; }, kBound,
                              &got));
    std::printf("put -> publish: %.1f ms (etcdctl included)\n",
                std::chrono::duration<double, std::milli>(got.at - put_at).count());
    EXPECT_EQ(empty_slots(got.plan, "api"), 0u);
    EXPECT_GT(slots_of(got.plan, "api", "10.0.0.1"), slots_of(got.plan, "api", "10.0.0.2"));  // weight 100 vs 50

    // A deleted key drains (drain_deadline 300 s here): see RemovedBackendDrainsUntilDeadline.
    ASSERT_TRUE(etcd.del(prefix + "a"));
    EXPECT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.1~ 10.0.0.2"; }, kBound));

    // Outage: the set stays, the view says "stale".
    const size_t before = fake.count();
    etcd.stop();
    EXPECT_TRUE(dt::wait_until(
        [&] {
            auto v = runner.manager().view({});
            return !v.empty() && v[0].discovery_state == "stale";
        },
        kBound));
    EXPECT_EQ(backends_text(fake.last().plan, "api"), "10.0.0.1~ 10.0.0.2");
    EXPECT_LE(fake.count(), before + 1);
}

// An etcd key deleted: the next plan keeps the backend as draining (weight
// 0, no slot, drain_source "removed" in the view, not persisted as part of
// the set) until drain_deadline, then it leaves the plan. One that comes
// back before its deadline owns slots again.
TEST(ServiceManager, RemovedBackendDrainsUntilDeadline)
{
    SLUICE_REQUIRE(dt::have_program(dt::kEtcd) && dt::have_program(dt::kEtcdctl), "etcd and etcdctl");
    dt::EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << dt::read_file(etcd.log_path());
    dt::TempDir state;
    const std::string prefix = "/sluice/services/api/";
    for (const char* k : {"a", "b", "c"}) {
        ASSERT_TRUE(etcd.put(prefix + k, etcd_backend(std::string("10.0.0.") + std::to_string(k[0] - 'a' + 1))));
    }
    ManagerOptions options;
    options.state_dir = state.path();
    ManagerRunner runner(options);
    auto config = load(std::string(kNode) +
                       service("api", "192.0.2.10:80",
                               "health_check = { type = \"none\" }\ndiscovery = { type = \"etcd\", endpoints = [\"" +
                                   etcd.url() + "\"], prefix = \"" + prefix + "\" }"));
    config.services[0].drain_deadline = 800ms;
    ASSERT_TRUE(runner.start(config).ok());
    auto& fake = runner.driver();
    ASSERT_TRUE(fake.wait_for(
        [](const auto& p) { return backends_text(p, "api") == "10.0.0.1 10.0.0.2 10.0.0.3"; }, kBound));

    const auto del_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(etcd.del(prefix + "b"));
    FakeDriver::Published got;
    ASSERT_TRUE(fake.wait_for(
        [](const auto& p) { return backends_text(p, "api") == "10.0.0.1 10.0.0.2~ 10.0.0.3"; }, kBound, &got));
    EXPECT_EQ(slots_of(got.plan, "api", "10.0.0.2"), 0u);
    EXPECT_EQ(find_service(got.plan, "api")->backends[1].weight, 0u);
    EXPECT_EQ(empty_slots(got.plan, "api"), 0u);
    EXPECT_TRUE(dt::wait_until(
        [&] {
            const auto v = runner.manager().view({});
            return v.size() == 1 && v[0].backends.size() == 3 && v[0].backends[2].address == "10.0.0.2" &&
                   v[0].backends[2].draining && v[0].backends[2].drain_source == "removed" &&
                   !v[0].backends[2].in_table;
        },
        kBound));
    auto saved = read_state_file(state.path(), "api");
    ASSERT_TRUE(saved.ok() && *saved);
    EXPECT_EQ((*saved)->set.backends.size(), 2u);  // the discovered set only

    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.1 10.0.0.3"; }, kBound,
                              &got));
    EXPECT_GE(got.at - del_at, 800ms);
    EXPECT_EQ(runner.manager().view({})[0].backends.size(), 2u);  // forgotten

    // Back before the deadline: active again, with slots.
    ASSERT_TRUE(etcd.del(prefix + "c"));
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.1 10.0.0.3~"; }, kBound));
    ASSERT_TRUE(etcd.put(prefix + "c", etcd_backend("10.0.0.3")));
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.1 10.0.0.3"; }, kBound,
                              &got));
    EXPECT_GT(slots_of(got.plan, "api", "10.0.0.3"), 0u);
    EXPECT_FALSE(runner.manager().view({})[0].backends[1].draining);
}

// A backend whose TCP check fails leaves the plan within fall x interval
// (plus the debounce and one interval of probe phase), and returns when it
// answers again; the view reports its health.
TEST(ServiceManager, UnhealthyBackendLeavesAndReturns)
{
    Listener one("127.0.0.1");
    auto two = std::make_unique<Listener>("127.0.0.2");
    const uint16_t port_two = two->port();
    ManagerRunner runner;
    const std::string hc = "health_check = { type = \"tcp\", interval_ms = 100, timeout_ms = 50, rise = 1, fall = 2 }";
    auto config = load(std::string(kNode) +
                       service("web", "192.0.2.10:80",
                               hc + "\nbackends = [ { address = \"10.0.0.1\", port = " + std::to_string(one.port()) +
                                   " }, { address = \"10.0.0.2\", port = " + std::to_string(port_two) + " } ]"));
    to_loopback(config);
    ASSERT_TRUE(runner.start(config).ok());
    auto& fake = runner.driver();
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "127.0.0.1 127.0.0.2"; }, kBound));
    // What the data plane counted per id, for the counters in the view.
    ASSERT_TRUE(dt::wait_until([&] { return runner.manager().view({})[0].backends[1].in_table; }, kBound));
    const auto first_view = runner.manager().view({});
    driver::DataplaneStats counted;
    counted.backends.push_back({first_view[0].backends[0].backend_id, sluice_counter{10, 1000}});
    counted.backends.push_back({first_view[0].backends[1].backend_id, sluice_counter{20, 2000}});
    EXPECT_EQ(runner.manager().view(counted)[0].packets, 30u);

    two.reset();  // connection refused from now on
    const auto down_at = std::chrono::steady_clock::now();
    FakeDriver::Published got;
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "127.0.0.1"; }, kBound, &got));
    const auto took = got.at - down_at;
    std::printf("down -> out of the plan: %.0f ms (fall 2 x interval 100 ms)\n",
                std::chrono::duration<double, std::milli>(took).count());
    EXPECT_LT(took, 2 * 100ms + 100ms + 150ms);  // fall x interval + phase + debounce and scheduling slack
    // The view follows once the manager has recorded the publication.
    EXPECT_TRUE(dt::wait_until(
        [&] {
            const auto view = runner.manager().view({});
            return view.size() == 1 && view[0].backends.size() == 2 && view[0].backends[1].health == "down" &&
                   !view[0].backends[1].in_table && view[0].backends[0].health == "up" && view[0].backends[0].in_table;
        },
        kBound));
    // Out of the table, its counters (and the VIP's sum) stay where they
    // were: Prometheus counters must not go back on a health flap.
    const auto down_view = runner.manager().view(counted);
    EXPECT_EQ(down_view[0].backends[1].packets, 20u);
    EXPECT_EQ(down_view[0].backends[1].bytes, 2000u);
    EXPECT_EQ(down_view[0].packets, 30u);

    Listener back("127.0.0.2", port_two);
    EXPECT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "127.0.0.1 127.0.0.2"; }, kBound));
    // Back within the quarantine: the same id, so the same counters.
    EXPECT_TRUE(dt::wait_until([&] { return runner.manager().view({})[0].backends[1].in_table; }, kBound));
    EXPECT_EQ(runner.manager().view({})[0].backends[1].backend_id, first_view[0].backends[1].backend_id);
    EXPECT_EQ(runner.manager().view(counted)[0].backends[1].packets, 20u);
}

// A removed backend keeps its health probe while it drains; once that check
// fails it leaves the plan at once instead of at drain_deadline (300 s).
TEST(ServiceManager, RemovedBackendFailingItsCheckLeavesAtOnce)
{
    Listener one("127.0.0.1");
    auto two = std::make_unique<Listener>("127.0.0.2");
    const std::string hc = "health_check = { type = \"tcp\", interval_ms = 100, timeout_ms = 50, rise = 1, fall = 2 }";
    const auto backend = [](const char* address, uint16_t port) {
        return std::string("{ address = \"") + address + "\", port = " + std::to_string(port) + " }";
    };
    auto config = load(std::string(kNode) +
                       service("web", "192.0.2.10:80",
                               hc + "\nbackends = [ " + backend("10.0.0.1", one.port()) + ", " +
                                   backend("10.0.0.2", two->port()) + " ]"));
    to_loopback(config);
    ManagerRunner runner;
    ASSERT_TRUE(runner.start(config).ok());
    auto& fake = runner.driver();
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "127.0.0.1 127.0.0.2"; }, kBound));

    auto smaller = load(std::string(kNode) + service("web", "192.0.2.10:80",
                                                     hc + "\nbackends = [ " + backend("10.0.0.1", one.port()) + " ]"));
    to_loopback(smaller);
    ASSERT_TRUE(runner.manager().apply(smaller).ok());
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "127.0.0.1 127.0.0.2~"; }, kBound));
    std::this_thread::sleep_for(300ms);  // still probed and up: still draining
    EXPECT_EQ(backends_text(fake.last().plan, "web"), "127.0.0.1 127.0.0.2~");
    EXPECT_EQ(runner.manager().view({})[0].backends[1].health, "up");

    two.reset();  // connection refused from now on
    EXPECT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "127.0.0.1"; }, kBound));
    EXPECT_TRUE(dt::wait_until([&] { return runner.manager().view({})[0].backends.size() == 1; }, kBound));
}

// Draining (API or discovery) keeps a backend in the plan, VALID|DRAINING
// with weight 0 and no slot, until drain_deadline; then it leaves the plan.
// Undrain brings it back with slots. The drain source is tracked.
TEST(ServiceManager, DrainKeepsBackendUntilDeadline)
{
    ManagerRunner runner;
    auto config = load(std::string(kNode) +
                       service("web", "192.0.2.10:80",
                               "health_check = { type = \"none\" }\nbackends = [ { address = \"10.0.0.1\" }, "
                               "{ address = \"10.0.0.2\" }, { address = \"10.0.0.3\", state = \"draining\" } ]"));
    config.services[0].drain_deadline = 600ms;
    ASSERT_TRUE(runner.start(config).ok());
    auto& fake = runner.driver();
    // Discovery-marked drain: present, no slot, then gone after the deadline.
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "10.0.0.1 10.0.0.2 10.0.0.3~"; },
                              kBound));
    EXPECT_EQ(slots_of(fake.last().plan, "web", "10.0.0.3"), 0u);
    EXPECT_EQ(runner.manager().view({})[0].backends[2].drain_source, "discovery");
    EXPECT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "10.0.0.1 10.0.0.2"; }, kBound));

    // API drain.
    const auto drain_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(runner.manager().set_drain("web", "10.0.0.2", true).ok());
    FakeDriver::Published got;
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "10.0.0.1 10.0.0.2~"; }, kBound,
                              &got));
    const auto* s = find_service(got.plan, "web");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->backends[1].weight, 0u);
    EXPECT_EQ(slots_of(got.plan, "web", "10.0.0.2"), 0u);
    EXPECT_EQ(slots_of(got.plan, "web", "10.0.0.1"), 251u);
    const auto view = runner.manager().view({});
    EXPECT_TRUE(view[0].backends[1].draining);
    EXPECT_EQ(view[0].backends[1].drain_source, "api");
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "10.0.0.1"; }, kBound, &got));
    EXPECT_GE(got.at - drain_at, 600ms);
    EXPECT_LT(got.at - drain_at, 600ms + 300ms);

    ASSERT_TRUE(runner.manager().set_drain("web", "10.0.0.2", false).ok());
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "10.0.0.1 10.0.0.2"; }, kBound,
                              &got));
    EXPECT_GT(slots_of(got.plan, "web", "10.0.0.2"), 0u);

    EXPECT_FALSE(runner.manager().set_drain("web", "10.9.9.9", true).ok());
    EXPECT_FALSE(runner.manager().set_drain("nope", "10.0.0.1", true).ok());
    EXPECT_FALSE(runner.manager().set_drain("web", "not-an-address", true).ok());
}

// Every backend down: keep_all spreads over all of them (fail open), drop
// leaves the ring empty (fail closed); both count one all-down episode.
TEST(ServiceManager, AllDownKeepAllVersusDrop)
{
    // Ports with no listener: every probe is refused.
    Listener a("127.0.0.1"), b("127.0.0.2");
    const uint16_t pa = a.port(), pb = b.port();
    a.close();
    b.close();
    const std::string hc = "health_check = { type = \"tcp\", interval_ms = 100, timeout_ms = 50, rise = 1, fall = 1 }";
    const std::string backends = "backends = [ { address = \"10.0.0.1\", port = " + std::to_string(pa) +
                                 " }, { address = \"10.0.0.2\", port = " + std::to_string(pb) + " } ]";
    ManagerRunner runner;
    auto config = load(std::string(kNode) +
                       service("open", "192.0.2.10:80", hc + "\non_all_backends_down = \"keep_all\"\n" + backends) +
                       service("closed", "192.0.2.11:80", hc + "\non_all_backends_down = \"drop\"\n" + backends));
    to_loopback(config);
    ASSERT_TRUE(runner.start(config).ok());
    auto& fake = runner.driver();
    ASSERT_TRUE(dt::wait_until(
        [&] {
            auto v = runner.manager().view({});
            return v.size() == 2 && v[0].all_backends_down && v[1].all_backends_down &&
                   v[0].backends[0].health == "down" && v[1].backends[1].health == "down";
        },
        kBound));
    const auto plan = *runner.manager().current_plan();
    EXPECT_EQ(backends_text(plan, "open"), "127.0.0.1 127.0.0.2");
    EXPECT_EQ(empty_slots(plan, "open"), 0u);
    EXPECT_EQ(backends_text(plan, "closed"), "");
    EXPECT_EQ(empty_slots(plan, "closed"), 251u);
    const auto v = runner.manager().view({});
    EXPECT_EQ(v[0].all_down_events, 1u);
    EXPECT_EQ(v[1].all_down_events, 1u);
    (void)fake;
}

// The last good set of a discovered service is written to state_dir and
// served at the next start while discovery is unreachable.
TEST(ServiceManager, PersistedSetServesDuringOutageAtStart)
{
    SLUICE_REQUIRE(dt::have_program(dt::kEtcd) && dt::have_program(dt::kEtcdctl), "etcd and etcdctl");
    dt::TempDir state;
    dt::EtcdServer etcd;
    ASSERT_TRUE(etcd.start());
    const std::string prefix = "/sluice/services/api/";
    ASSERT_TRUE(etcd.put(prefix + "a", etcd_backend("10.0.0.7")));
    const std::string text =
        std::string(kNode) + service("api", "192.0.2.10:80",
                                     "health_check = { type = \"none\" }\ndiscovery = { type = \"etcd\", endpoints "
                                     "= [\"" + etcd.url() + "\"], prefix = \"" + prefix + "\", dial_timeout_ms = 200 }");
    ManagerOptions options;
    options.state_dir = state.path();
    {
        ManagerRunner runner(options);
        ASSERT_TRUE(runner.start(load(text)).ok());
        ASSERT_TRUE(runner.driver().wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.7"; },
                                             kBound));
    }
    etcd.stop();
    ManagerRunner runner(options);
    ASSERT_TRUE(runner.start(load(text)).ok());
    // The very first plan (the one the driver starts with) has the set.
    EXPECT_EQ(backends_text(*runner.manager().current_plan(), "api"), "10.0.0.7");
    EXPECT_TRUE(dt::wait_until([&] { return runner.manager().view({})[0].discovery_state == "stale"; }, kBound));
    EXPECT_TRUE(dt::wait_until([&] { return runner.manager().ready(); }, kBound));
}

// A set saved from one etcd prefix does not stand in for a service whose
// config (changed while sluiced was down) points at another: the service
// waits for its source, /readyz says not ready, the log says why.
TEST(ServiceManager, PersistedSetFromAnotherSourceIsIgnored)
{
    SLUICE_REQUIRE(dt::have_program(dt::kEtcd) && dt::have_program(dt::kEtcdctl), "etcd and etcdctl");
    dt::TempDir state;
    dt::EtcdServer etcd;
    ASSERT_TRUE(etcd.start());
    auto text_for = [&](const std::string& prefix) {
        return std::string(kNode) +
               service("api", "192.0.2.10:80",
                       "health_check = { type = \"none\" }\ndiscovery = { type = \"etcd\", endpoints = [\"" +
                           etcd.url() + "\"], prefix = \"" + prefix + "\", dial_timeout_ms = 200 }");
    };
    ASSERT_TRUE(etcd.put("/old/a", etcd_backend("10.0.0.7")));
    ManagerOptions options;
    options.state_dir = state.path();
    {
        ManagerRunner runner(options);
        ASSERT_TRUE(runner.start(load(text_for("/old/"))).ok());
        ASSERT_TRUE(runner.driver().wait_for([](const auto& p) { return backends_text(p, "api") == "10.0.0.7"; },
                                             kBound));
        ASSERT_TRUE(dt::wait_until([&] {
            auto saved = read_state_file(state.path(), "api");
            return saved.ok() && *saved && (*saved)->source == "port=80;etcd;prefix=/old/";
        }, kBound));
    }
    etcd.stop();

    std::vector<std::string> logs;
    std::mutex logs_mu;
    ManagerRunner moved(options, [&](driver::LogSeverity, std::string_view line) {
        std::lock_guard lock(logs_mu);
        logs.emplace_back(line);
    });
    ASSERT_TRUE(moved.start(load(text_for("/new/"))).ok());
    EXPECT_EQ(backends_text(*moved.manager().current_plan(), "api"), "");
    EXPECT_TRUE(dt::wait_until([&] { return moved.manager().publish_stats().publications >= 1; }, kBound));
    EXPECT_FALSE(moved.manager().ready());
    std::lock_guard lock(logs_mu);
    const bool said = std::any_of(logs.begin(), logs.end(), [](const std::string& l) {
        return l.find("came from another discovery source") != std::string::npos &&
               l.find("saved=\"port=80;etcd;prefix=/old/\"") != std::string::npos;
    });
    EXPECT_TRUE(said);
}

// A publish the driver refuses leaves the previous plan in force and is
// retried without waiting for another change.
TEST(ServiceManager, RefusedPublishIsRetried)
{
    ManagerRunner runner;
    ASSERT_TRUE(runner.start(load(std::string(kNode) +
                                  service("web", "192.0.2.10:80",
                                          "health_check = { type = \"none\" }\nbackends = [ { address = "
                                          "\"10.0.0.1\" }, { address = \"10.0.0.2\" } ]")))
                    .ok());
    ASSERT_TRUE(runner.wait_first_publish(kBound));
    auto& fake = runner.driver();
    fake.set_refuse(true);
    ASSERT_TRUE(runner.manager().set_drain("web", "10.0.0.2", true).ok());
    ASSERT_TRUE(dt::wait_until([&] { return runner.manager().publish_stats().publish_failures >= 1; }, kBound));
    EXPECT_EQ(backends_text(*runner.manager().current_plan(), "web"), "10.0.0.1 10.0.0.2");
    fake.set_refuse(false);
    EXPECT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "web") == "10.0.0.1 10.0.0.2~"; }, kBound));
}

}  // namespace
}  // namespace sluice::daemon
