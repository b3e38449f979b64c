// Runs a ServiceManager on a control thread of the test's own, the way
// sluiced does (poll on the wake fd, process(), repeat), against the fake
// driver; plus small plan readers for asserts.
#pragma once

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "daemon/service_manager.h"
#include "fake_driver.h"

namespace sluice::daemon::testing {

inline driver::LogSink quiet_log()
{
    return [](driver::LogSeverity s, std::string_view m) {
        if (s >= driver::LogSeverity::kWarn) std::fprintf(stderr, "manager: %.*s\n", int(m.size()), m.data());
    };
}

class ManagerRunner {
public:
    explicit ManagerRunner(ManagerOptions options = {}, driver::LogSink log = quiet_log())
        : manager_(driver_, std::move(log), std::move(options))
    {
    }
    ~ManagerRunner() { stop(); }

    // prepare + driver start + start + the control thread.
    Result<void> start(const model::Config& config)
    {
        auto plan = manager_.prepare(config);
        if (!plan) return Error{plan.error()};
        auto started = driver_.start(*plan);
        if (!started) return started;
        auto r = manager_.start();
        if (!r) return r;
        thread_ = std::thread([this] {
            while (!quit_.load()) {
                const auto wait = manager_.process();
                pollfd p{manager_.wake_fd(), POLLIN, 0};
                ::poll(&p, 1, static_cast<int>(std::min<long>(wait.count(), 50)));
            }
        });
        return {};
    }
    void stop()
    {
        quit_ = true;
        if (thread_.joinable()) thread_.join();
        manager_.stop();
    }
    ServiceManager& manager() { return manager_; }
    // Waits for the first publication after start (the loop has run and
    // health/discovery had their first say); false on timeout.
    bool wait_first_publish(std::chrono::milliseconds timeout)
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (manager_.publish_stats().publications == 0) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return true;
    }
    FakeDriver& driver() { return driver_; }

private:
    FakeDriver driver_;
    ServiceManager manager_;
    std::atomic<bool> quit_{false};
    std::thread thread_;
};

inline const driver::PlanService* find_service(const driver::ForwardingPlan& plan, const std::string& name)
{
    for (const auto& s : plan.services) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

// "10.0.0.1 10.0.0.2~" : the service's plan backends, '~' marking draining.
inline std::string backends_text(const driver::ForwardingPlan& plan, const std::string& name)
{
    const auto* s = find_service(plan, name);
    if (!s) return "<no service>";
    std::string out;
    for (const auto& b : s->backends) out += (out.empty() ? "" : " ") + b.address.to_string() + (b.draining ? "~" : "");
    return out;
}

// Slots of the ring owned by the backend at `address` (0 if absent).
inline size_t slots_of(const driver::ForwardingPlan& plan, const std::string& name, const std::string& address)
{
    const auto* s = find_service(plan, name);
    if (!s) return 0;
    for (const auto& b : s->backends) {
        if (b.address.to_string() == address) return std::count(s->ring.begin(), s->ring.end(), b.id);
    }
    return 0;
}

inline size_t empty_slots(const driver::ForwardingPlan& plan, const std::string& name)
{
    const auto* s = find_service(plan, name);
    return s ? std::count(s->ring.begin(), s->ring.end(), uint32_t{SLUICE_BACKEND_NONE}) : 0;
}

}  // namespace sluice::daemon::testing
