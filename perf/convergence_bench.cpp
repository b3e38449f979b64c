// Control-plane convergence, as JSON lines:
//  1. etcd put/delete -> the new table published to the driver: p50/p99/max
//     over N sequential changes (a real etcd on loopback, the real etcd
//     source and ServiceManager, a driver that builds the DPDK snapshot the
//     way DpdkDriver::publish does and timestamps it);
//  2. one change (a drain) in a big node: rebuild of every table + snapshot
//     build, wall time from the change to publish, for 100 services x as
//     many backends as SLUICE_MAX_BACKENDS allows and for as many services
//     of 1000 backends; then the pure Maglev cost of 100 x 1000 (a node the
//     data plane cannot hold).
// Usage: convergence_bench [changes=300] [services=100] [backends=1000]
// Needs /usr/bin/etcd. Methods and figures: docs/control-plane.md.
#include <curl/curl.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/loader.h"
#include "daemon/service_manager.h"
#include "discovery/etcd_codec.h"
#include "driver/dpdk_state.h"
#include "maglev/maglev.h"
#include "etcd_server.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace dt = sluice::discovery::testing;
using sluice::driver::ForwardingPlan;

// Publishes like DpdkDriver minus the NIC: the ForwardingState snapshot is
// built (the costly part of a real publish); the swap itself is one atomic
// store and is not modelled.
class SnapshotDriver final : public sluice::driver::DataplaneDriver {
public:
    sluice::Result<void> start(const ForwardingPlan& plan) override { return publish(plan); }
    sluice::Result<void> publish(const ForwardingPlan& plan) override
    {
        const std::vector<sluice::driver::StartedPort> ports{sluice::driver::StartedPort{0, {2, 0, 0, 0, 0, 1}, 1500}};
        auto state = sluice::driver::build_dpdk_state(
            plan, ports, [](const sluice::model::IpAddress&) { return sluice::model::MacAddress{{2, 0, 0, 0, 0, 2}}; },
            false);
        if (!state) return sluice::Error{state.error()};
        {
            std::lock_guard lock(mu_);
            size_t backends = 0;
            // Active backends only: a deleted key leaves its backend
            // draining (no slots) until drain_deadline, and that counts as
            // the change having converged.
            for (const auto& s : plan.services) {
                for (const auto& b : s.backends) backends += b.draining ? 0 : 1;
            }
            last_backends_ = backends;
            last_at_ = Clock::now();
            ++count_;
        }
        cv_.notify_all();
        return {};
    }
    void poll() override {}
    sluice::driver::DataplaneStats stats() const override { return {}; }
    sluice::Result<std::optional<uint32_t>> connection_backend(const sluice_flow_key&) const override
    {
        return std::optional<uint32_t>{};
    }
    sluice::Result<sluice::driver::ConnectionTableCensus> connection_census() const override
    {
        return sluice::driver::ConnectionTableCensus{};
    }
    sluice::Result<std::vector<uint64_t>> connections_by_backend() const override
    {
        return std::vector<uint64_t>(SLUICE_MAX_BACKENDS);
    }
    void stop() override {}

    // Waits for a publication after `since` whose plan has `backends` active
    // (not draining) backends.
    std::optional<Clock::time_point> wait(size_t backends, uint64_t after_count, std::chrono::milliseconds timeout)
    {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, timeout, [&] { return count_ > after_count && last_backends_ == backends; })) {
            return std::nullopt;
        }
        return last_at_;
    }
    uint64_t count()
    {
        std::lock_guard lock(mu_);
        return count_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    size_t last_backends_ = 0;
    Clock::time_point last_at_;
    uint64_t count_ = 0;
};

constexpr const char* kNode = R"(
[dataplane]
type = "dpdk"
[dataplane.dpdk]
worker_lcores = [1]
exception_path = false
[[dataplane.dpdk.ports]]
name = "lan"
device = "net_null0"
[network]
source_ipv4 = "192.0.2.2"
gateway_ipv4 = "192.0.2.1"
)";

// The control thread, as in sluiced: process() and sleep on the wake fd.
class Loop {
public:
    explicit Loop(sluice::daemon::ServiceManager& m) : m_(m), t_([this] {
        while (!quit_) {
            const auto wait = m_.process();
            pollfd p{m_.wake_fd(), POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(std::min<long>(wait.count(), 20)));
        }
    }) {}
    ~Loop()
    {
        quit_ = true;
        t_.join();
    }

private:
    sluice::daemon::ServiceManager& m_;
    std::atomic<bool> quit_{false};
    std::thread t_;
};

struct Percentiles {
    double p50, p99, max;
};
Percentiles percentiles(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))]; };
    return {at(0.50), at(0.99), v.back()};
}

void log_warnings(sluice::driver::LogSeverity s, std::string_view m)
{
    if (s >= sluice::driver::LogSeverity::kWarn) std::fprintf(stderr, "%.*s\n", int(m.size()), m.data());
}

// etcd v3 JSON gateway put/delete with a reused libcurl handle (an etcdctl
// process per change would add ~20 ms of fork/exec to every sample).
class EtcdWriter {
public:
    explicit EtcdWriter(std::string url) : url_(std::move(url)), curl_(curl_easy_init()) {}
    ~EtcdWriter() { curl_easy_cleanup(curl_); }
    bool put(const std::string& key, const std::string& value)
    {
        return post("/v3/kv/put", "{\"key\":\"" + sluice::discovery::base64_encode(key) + "\",\"value\":\"" +
                                      sluice::discovery::base64_encode(value) + "\"}");
    }
    bool del(const std::string& key)
    {
        return post("/v3/kv/deleterange", "{\"key\":\"" + sluice::discovery::base64_encode(key) + "\"}");
    }

private:
    static size_t sink(char*, size_t size, size_t n, void*) { return size * n; }
    bool post(const std::string& path, const std::string& body)
    {
        const std::string url = url_ + path;
        curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &EtcdWriter::sink);
        long code = 0;
        const bool ok = curl_easy_perform(curl_) == CURLE_OK &&
                        curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
        return ok;
    }
    std::string url_;
    CURL* curl_;
};

int etcd_convergence(int changes)
{
    dt::EtcdServer etcd;
    if (!etcd.start()) {
        std::fprintf(stderr, "etcd did not start: %s\n", dt::read_file(etcd.log_path()).c_str());
        return 1;
    }
    const std::string prefix = "/sluice/services/api/";
    EtcdWriter writer(etcd.url());
    for (int i = 0; i < 10; ++i) writer.put(prefix + "base" + std::to_string(i), "{\"address\": \"10.0.0." +
                                                                                   std::to_string(i + 1) + "\"}");
    auto r = sluice::config::load_string(
        std::string(kNode) + "[[service]]\nname = \"api\"\nvip = \"192.0.2.10:80\"\ntable_size = 65537\n"
                             "health_check = { type = \"none\" }\ndiscovery = { type = \"etcd\", endpoints = [\"" +
            etcd.url() + "\"], prefix = \"" + prefix + "\" }\n",
        "bench.toml");
    if (!r.ok()) return 1;
    SnapshotDriver driver;
    sluice::daemon::ServiceManager manager(driver, log_warnings);
    auto plan = manager.prepare(*r.config);
    if (!plan || !driver.start(*plan) || !manager.start()) return 1;
    Loop loop(manager);
    if (!driver.wait(10, 0, 10s)) return 1;

    std::vector<double> ms;
    size_t backends = 10;
    for (int i = 0; i < changes; ++i) {
        // Alternate: add backend i, then remove it, so the pool size tells
        // which change a publication carries.
        const std::string key = prefix + "n" + std::to_string(i / 2);
        const uint64_t before = driver.count();
        const auto t0 = Clock::now();
        const bool add = i % 2 == 0;
        const bool ok = add ? writer.put(key, "{\"address\": \"10.1." + std::to_string(i / 512) + "." +
                                                  std::to_string((i / 2) % 256) + "\"}")
                            : writer.del(key);
        backends += add ? 1 : -1;
        auto at = ok ? driver.wait(backends, before, 5s) : std::nullopt;
        if (!at) {
            std::fprintf(stderr, "change %d not published within 5 s\n", i);
            return 1;
        }
        ms.push_back(std::chrono::duration<double, std::milli>(*at - t0).count());
    }
    const Percentiles p = percentiles(ms);
    std::printf("{\"bench\":\"etcd_put_to_publish\",\"changes\":%d,\"table_size\":65537,\"debounce_ms\":10,"
                "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
                changes, p.p50, p.p99, p.max);
    manager.stop();
    return 0;
}

// The Maglev table size the loader recommends (>= 100 slots per backend).
uint32_t table_size_for(int backends) { return backends <= 655 ? 65537 : 131071; }

int big_rebuild(int services, int backends_per_service)
{
    const uint32_t m = table_size_for(backends_per_service);
    std::string text = kNode;
    for (int s = 0; s < services; ++s) {
        text += "[[service]]\nname = \"s" + std::to_string(s) + "\"\nvip = \"198.18." + std::to_string(s / 250) + "." +
                std::to_string(s % 250 + 1) + ":80\"\ntable_size = " + std::to_string(m) + "\nhealth_check = { type = \"none\" }\n"
                "backends = [";
        for (int b = 0; b < backends_per_service; ++b) {
            text += std::string(b ? ", " : "") + "{ address = \"10." + std::to_string(s % 200 + 1) + "." +
                    std::to_string(b / 250) + "." + std::to_string(b % 250 + 1) + "\" }";
        }
        text += "]\n";
    }
    auto r = sluice::config::load_string(text, "bench.toml");
    if (!r.ok()) {
        for (const auto& d : r.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
        return 1;
    }
    SnapshotDriver driver;
    sluice::daemon::ServiceManager manager(driver, log_warnings);
    auto plan = manager.prepare(*r.config);
    if (!plan) {
        std::fprintf(stderr, "%d x %d: %s\n", services, backends_per_service, plan.error().c_str());
        return 1;
    }
    if (!driver.start(*plan) || !manager.start()) return 1;
    Loop loop(manager);
    const size_t total = static_cast<size_t>(services) * backends_per_service;
    if (!driver.wait(total, 1, 120s)) return 1;  // the first publication after start
    std::vector<double> wall, build, publish;
    size_t drained = 0;
    for (int i = 0; i < 5; ++i) {
        const uint64_t before = driver.count();
        const auto t0 = Clock::now();
        // A drain changes one service's table (weight 0, no slots): one
        // active backend fewer. Odd steps undrain a backend that is not
        // drained, which republishes an unchanged pool.
        const bool drain = i % 2 == 0;
        (void)manager.set_drain("s" + std::to_string(i), "10." + std::to_string(i % 200 + 1) + ".0.1", drain);
        drained += drain ? 1 : 0;
        auto at = driver.wait(total - drained, before, 120s);
        if (!at) return 1;
        wall.push_back(std::chrono::duration<double, std::milli>(*at - t0).count());
        const auto ps = manager.publish_stats();
        build.push_back(std::chrono::duration<double, std::milli>(ps.last_build).count());
        publish.push_back(std::chrono::duration<double, std::milli>(ps.last_publish).count());
    }
    const Percentiles w = percentiles(wall), b = percentiles(build), p = percentiles(publish);
    std::printf("{\"bench\":\"rebuild_and_publish\",\"services\":%d,\"backends_per_service\":%d,\"table_size\":%u,"
                "\"samples\":5,\"wall_p50_ms\":%.1f,\"wall_max_ms\":%.1f,\"plan_build_p50_ms\":%.1f,"
                "\"snapshot_build_p50_ms\":%.1f}\n",
                services, backends_per_service, m, w.p50, w.max, b.p50, p.p50);
    manager.stop();
    return 0;
}

// Every Maglev table of `services` x `backends` rebuilt, without ids or a
// data plane: what a full rebuild costs where the data plane's backend
// limit (SLUICE_MAX_BACKENDS) does not allow publishing it.
void maglev_only(int services, int backends)
{
    const uint32_t m = table_size_for(backends);
    std::vector<sluice::maglev::Backend> input;
    for (int b = 0; b < backends; ++b) input.push_back(sluice::maglev::Backend{"10.0." + std::to_string(b), 100});
    std::vector<double> ms;
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = Clock::now();
        for (int s = 0; s < services; ++s) {
            input[s % backends].weight = 100 + rep;  // a different table each time
            auto t = sluice::maglev::build_table(input, m);
            if (!t) return;
        }
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    const Percentiles p = percentiles(ms);
    std::printf("{\"bench\":\"maglev_rebuild_all\",\"services\":%d,\"backends_per_service\":%d,\"table_size\":%u,"
                "\"samples\":3,\"p50_ms\":%.1f,\"max_ms\":%.1f}\n",
                services, backends, m, p.p50, p.max);
}

}  // namespace

int main(int argc, char** argv)
{
    const int changes = argc > 1 ? std::atoi(argv[1]) : 300;
    const int services = argc > 2 ? std::atoi(argv[2]) : 100;
    const int backends = argc > 3 ? std::atoi(argv[3]) : 1000;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!dt::have_program(dt::kEtcd)) {
        std::fprintf(stderr, "convergence_bench: %s missing (etcd-server)\n", dt::kEtcd);
        return 1;
    }
    if (int rc = etcd_convergence(changes); rc != 0) return rc;
    // The data plane holds at most SLUICE_MAX_BACKENDS backends node-wide:
    // publish the largest shapes that fit, and time the full 100 x 1000
    // Maglev rebuild on its own.
    const int fit = std::max(1, std::min(backends, static_cast<int>(SLUICE_MAX_BACKENDS) / services));
    if (int rc = big_rebuild(services, fit); rc != 0) return rc;
    if (fit < backends) {
        const int fit_services = std::max(1, std::min(services, static_cast<int>(SLUICE_MAX_BACKENDS) / backends));
        if (int rc = big_rebuild(fit_services, backends); rc != 0) return rc;
    }
    maglev_only(services, backends);
    return 0;
}
