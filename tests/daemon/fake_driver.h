// A DataplaneDriver that forwards nothing and remembers every plan it was
// given, with the steady-clock time of each publish, so tests (and the
// convergence benchmark) can wait for and inspect what the manager sent.
#pragma once

#include <cstring>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "driver/dataplane_driver.h"

namespace sluice::daemon::testing {

class FakeDriver final : public driver::DataplaneDriver {
public:
    struct Published {
        driver::ForwardingPlan plan;
        std::chrono::steady_clock::time_point at;
    };

    Result<void> start(const driver::ForwardingPlan& initial) override
    {
        record(initial);
        return {};
    }
    Result<void> publish(const driver::ForwardingPlan& plan) override
    {
        if (refuse_) return make_error("refused by the fake");
        record(plan);
        return {};
    }
    void poll() override {}
    driver::DataplaneStats stats() const override
    {
        std::lock_guard lock(mu_);
        driver::DataplaneStats s;
        s.publications = plans_.size();
        s.workers.push_back({0, 1, 100, 90, 10, 0.25});
        s.error = stats_error_;
        return s;
    }
    // What set_connection() planted, as a data plane's connection table would answer.
    Result<std::optional<uint32_t>> connection_backend(const sluice_flow_key& key) const override
    {
        std::lock_guard lock(mu_);
        if (!connection_error_.empty()) return make_error(connection_error_);
        for (const auto& [k, id] : connections_) {
            if (std::memcmp(&k, &key, sizeof key) == 0) return std::optional<uint32_t>{id};
        }
        return std::optional<uint32_t>{};
    }
    // One partition of 1024 entries, 10 of them live; fails as
    // connection_backend() does after fail_connection_reads().
    Result<driver::ConnectionTableCensus> connection_census() const override
    {
        std::lock_guard lock(mu_);
        if (!connection_error_.empty()) return make_error(connection_error_);
        driver::ConnectionTableCensus c;
        c.layout = "per-worker";
        c.partitions.push_back({0, 1024, 10});
        return c;
    }
    // Backend id 0 has 3 live entries, id 1 one; fails as connection_backend().
    Result<std::vector<uint64_t>> connections_by_backend() const override
    {
        std::lock_guard lock(mu_);
        ++walks_;
        if (!connection_error_.empty()) return make_error(connection_error_);
        std::vector<uint64_t> counts(SLUICE_MAX_BACKENDS);
        counts[0] = 3;
        counts[1] = 1;
        return counts;
    }
    void stop() override {}

    void set_connection(const sluice_flow_key& key, uint32_t backend_id)
    {
        std::lock_guard lock(mu_);
        connections_.emplace_back(key, backend_id);
    }
    // Every later connection_backend() fails with `message` (a table that cannot be judged).
    void fail_connection_reads(const std::string& message)
    {
        std::lock_guard lock(mu_);
        connection_error_ = message;
    }

    // Every later stats() says its counters could not be read.
    void fail_stats(const std::string& message)
    {
        std::lock_guard lock(mu_);
        stats_error_ = message;
    }
    // connections_by_backend() calls so far.
    uint64_t walks() const
    {
        std::lock_guard lock(mu_);
        return walks_;
    }
    void set_refuse(bool refuse) { refuse_.store(refuse); }
    size_t count() const
    {
        std::lock_guard lock(mu_);
        return plans_.size();
    }
    Published last() const
    {
        std::lock_guard lock(mu_);
        return plans_.back();
    }
    // Waits until the latest plan satisfies `pred`; false on timeout.
    bool wait_for(const std::function<bool(const driver::ForwardingPlan&)>& pred, std::chrono::milliseconds timeout,
                  Published* out = nullptr) const
    {
        std::unique_lock lock(mu_);
        const bool ok = cv_.wait_for(lock, timeout, [&] { return !plans_.empty() && pred(plans_.back().plan); });
        if (ok && out) *out = plans_.back();
        return ok;
    }

private:
    void record(const driver::ForwardingPlan& plan)
    {
        {
            std::lock_guard lock(mu_);
            plans_.push_back(Published{plan, std::chrono::steady_clock::now()});
        }
        cv_.notify_all();
    }
    mutable std::mutex mu_;
    mutable uint64_t walks_ = 0;
    std::string stats_error_;
    std::vector<std::pair<sluice_flow_key, uint32_t>> connections_;
    std::string connection_error_;
    mutable std::condition_variable cv_;
    std::vector<Published> plans_;
    std::atomic<bool> refuse_{false};  // set by the test thread, read by the control thread
};

}  // namespace sluice::daemon::testing
