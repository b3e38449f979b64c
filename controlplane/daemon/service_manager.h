// ServiceManager: the control plane's one loop from "what should exist" to
// "what the data plane forwards by". Per service: a discovery source (or the
// static list) gives the desired set; health targets follow that set; health
// state, drains and the all-down policy give the pool; changes coalesce for
// a short debounce, then one plan is rebuilt and published.
//
// Threading. One control thread owns the driver and the PlanBuilder: it
// alone calls process() (which builds and publishes) and stop(). Discovery
// workers and the health loop only record what changed under mu_ and wake
// the control thread through an eventfd; API threads read snapshots and
// record drains the same way. mu_ is never held while a source or the
// health checker is stopped (their callbacks take it), nor during a build
// or a publish (views stay responsive while a large plan is made).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/control_plane_view.h"
#include "common/result.h"
#include "daemon/pool.h"
#include "daemon/state_file.h"
#include "discovery/source.h"
#include "driver/dataplane_driver.h"
#include "driver/forwarding_plan.h"
#include "health/all_down.h"
#include "health/checker.h"
#include "model/config.h"

namespace sluice::daemon {

struct ManagerOptions {
    // Changes arriving within this window after the first one share one
    // rebuild: an etcd transaction touching 50 keys is one publish, not 50.
    std::chrono::milliseconds debounce{10};
    discovery::SourceOptions source_options;
    health::CheckerOptions health_options;
    // Where the last good set of each discovered service is written and read
    // back at start (so a restart during a discovery outage still serves).
    // Empty: nothing is persisted.
    std::string state_dir;
};

// Control-plane timings and counts for /v1/stats and the benchmark.
struct PublishStats {
    uint64_t publications = 0;        // plans published by this manager (the initial one excluded)
    uint64_t publish_failures = 0;    // builds or publishes refused; the previous plan stayed
    std::chrono::nanoseconds last_build{0};    // Maglev + ids of the last publication
    std::chrono::nanoseconds last_publish{0};  // driver.publish of the last publication
    std::optional<Clock::time_point> last_published_at;
};

class ServiceManager {
public:
    // `driver` must outlive the manager; it is started by the caller with
    // the plan prepare() returns. Nothing runs until start().
    ServiceManager(driver::DataplaneDriver& driver, driver::LogSink log, ManagerOptions options = {});
    ~ServiceManager();  // stop()
    ServiceManager(const ServiceManager&) = delete;
    ServiceManager& operator=(const ServiceManager&) = delete;

    // Takes `config` and returns the plan to start the driver with: static
    // backends, persisted sets of discovered services, every checked
    // backend's health unknown (so the all-down policy decides). Control
    // thread, once, before start().
    Result<driver::ForwardingPlan> prepare(const model::Config& config);

    // Starts the health checker and every discovery source. Control thread,
    // once, after the driver started.
    Result<void> start();

    // Makes `config` the one in force: services added, removed and changed
    // apply at the next publish; unchanged discovery sources keep running
    // (and their sets). Refuses, changing nothing, when a new source cannot
    // be made. The caller has refused node settings that need a restart.
    // Any thread; concurrent calls are serialised.
    Result<void> apply(const model::Config& config);

    // Handles pending changes, expires drains, and rebuilds and publishes
    // when the debounce window has passed. Returns how long the control
    // thread may sleep (on wake_fd()) before calling again. Control thread.
    std::chrono::milliseconds process();

    // Readable when something changed. For the control thread's poll set.
    int wake_fd() const { return wake_fd_; }

    // Stops sources and health checks; no callback runs afterwards.
    // Idempotent. Control thread.
    void stop();

    // --- Any thread, thread-safe ---

    // Drains (or undrains) a backend by "address" or "address:port". Only
    // the API's own request is removed by an undrain: a backend that
    // discovery marks draining stays draining. Errors name what is unknown.
    Result<void> set_drain(const std::string& service, const std::string& backend, bool drain);

    // The services as the API shows them; `stats` gives per-backend counters.
    std::vector<api::ServiceView> view(const driver::DataplaneStats& stats) const;

    // The plan in force (prepare()'s until the first publication).
    std::shared_ptr<const driver::ForwardingPlan> current_plan() const;
    model::Config config() const;
    PublishStats publish_stats() const;

    // Every discovered service has a set to serve (its source synced once,
    // or a persisted or stale set stands in) and no change waits unpublished
    // since start. For /readyz.
    bool ready() const;

    // Steady-clock time process() last ran, for /healthz.
    Clock::time_point last_loop() const { return Clock::time_point(Clock::duration(last_loop_.load())); }

private:
    struct ServiceState;
    void mark_dirty_locked(Clock::time_point now);
    void wake();
    void on_discovery(const std::string& service, uint64_t generation, const discovery::BackendSet& set);
    void on_health(const health::TargetKey& key);
    // Builds the config the plan is made from (each service's pool as its
    // static backends) and syncs health targets. mu_ held.
    model::Config compose_locked(Clock::time_point now, const std::vector<health::TargetStatus>& health,
                                 std::vector<health::PoolMode>& modes);
    // Health targets follow the desired set plus the departed (removed,
    // still draining) backends. mu_ held.
    void sync_targets_locked(ServiceState& state, Clock::time_point now);
    void persist(const std::string& service, const PersistedSet& set) const;
    // The set saved in state_dir for `service`, when it came from the
    // source the service is configured with now (else logged and ignored).
    std::optional<discovery::BackendSet> load_persisted(const model::Service& service) const;
    Result<void> publish_now();

    driver::DataplaneDriver& driver_;
    driver::LogSink log_;
    const ManagerOptions options_;
    int wake_fd_ = -1;
    std::atomic<Clock::rep> last_loop_{0};

    // Control thread only.
    driver::PlanBuilder planner_;

    std::mutex apply_mu_;  // serialises apply()
    mutable std::mutex mu_;
    // --- guarded by mu_ ---
    model::Config config_;
    std::map<std::string, std::unique_ptr<ServiceState>> services_;
    uint64_t next_generation_ = 1;
    std::optional<Clock::time_point> dirty_since_;
    std::optional<Clock::time_point> next_expiry_;
    std::optional<Clock::time_point> hold_until_;
    std::optional<Clock::time_point> retry_at_;    // a failed publication is retried then  // start-up: first probe results due by then
    std::shared_ptr<const driver::ForwardingPlan> plan_;
    // Backends that left the plan but are still listed (unhealthy, or
    // removed and draining): the id they had, so their counters (and the
    // VIP's, their sum) do not fall back to 0 while they are listed. The
    // data plane keeps counting per id and the id stays theirs for the
    // quarantine; forgotten after it. Per service, by address.
    struct LastId {
        uint32_t id;
        Clock::time_point left;
    };
    std::map<std::string, std::map<model::IpAddress, LastId>> last_ids_;
    // Updates last_ids_ from the plan in force to `next`. mu_ held.
    void remember_ids_locked(const driver::ForwardingPlan& next, Clock::time_point now);
    PublishStats stats_;
    health::AllDownCounters all_down_;
    std::shared_ptr<health::HealthChecker> health_;  // set by start(), cleared by stop()
    bool started_ = false;
};

}  // namespace sluice::daemon
