// ControlPlane: the daemon's implementation of api::ControlPlaneView, what
// the admin API (and so sluicectl) sees and does: services and stats from
// the ServiceManager and the driver, drains, reloads from the config file,
// and "which backend would this 5-tuple reach".
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "api/control_plane_view.h"
#include "daemon/service_manager.h"
#include "driver/dataplane_driver.h"

namespace sluice::daemon {

class ControlPlane final : public api::ControlPlaneView {
public:
    // `manager` and `driver` outlive this object. `on_log_level` applies
    // daemon.log_level after a successful reload (any thread).
    ControlPlane(std::string config_path, ServiceManager& manager, const driver::DataplaneDriver& driver,
                 std::string dataplane, uint32_t workers, driver::LogSink log,
                 std::function<void(model::LogLevel)> on_log_level = {});

    // Every method: any thread, thread-safe (see api::ControlPlaneView).
    std::vector<api::ServiceView> services() const override;
    api::StatsView stats() const override;
    Result<void> set_drain(const std::string& service, const std::string& backend, bool drain) override;
    // Also what SIGHUP runs (on the control thread). Reloads are serialised.
    // A refused reload is not an error: applied = false, with diagnostics.
    Result<api::ReloadResult> reload() override;
    // The backend a flow's live connection entry names (reason
    // "connection table", while that backend is in the plan), else the
    // Maglev slot's ("maglev"); the slot is reported either way.
    Result<api::LookupResult> lookup(const api::LookupRequest& request) const override;
    Result<api::ConnectionsView> connections() const override;
    // The control loop ran within the last few seconds.
    bool alive() const override;
    bool ready() const override;

    // The SHA-256 of the config in force (config::LoadResult::sha256): the
    // daemon sets it after start-up; reload() after each applied reload.
    void set_config_digest(std::string sha256);
    // With dataplane.type = "auto", the plane that started: reloaded files
    // that still say "auto" mean it (else every reload would look like a
    // data-plane change needing a restart). Before the API starts.
    void resolve_auto_dataplane(model::DataplaneType type) { auto_dataplane_ = type; }

private:
    const std::string config_path_;
    ServiceManager& manager_;
    const driver::DataplaneDriver& driver_;
    const std::string dataplane_;
    const uint32_t workers_;
    driver::LogSink log_;
    std::function<void(model::LogLevel)> on_log_level_;
    const std::chrono::system_clock::time_point started_;
    std::mutex reload_mu_;  // one reload at a time (SIGHUP and the API may race)
    // connections(): one walk of the connection table at a time, and at most
    // one per kMinWalkInterval (a walk reads the whole table, hundreds of
    // MiB on a big node, through the cache the workers share); requests in
    // between get the last walk's counts and their age.
    static constexpr std::chrono::milliseconds kMinWalkInterval{1000};
    mutable std::mutex walk_mu_;
    mutable std::vector<uint64_t> walk_counts_;  // the last walk's, by backend id; empty: none yet
    mutable std::chrono::steady_clock::time_point walk_at_{};
    mutable double walk_seconds_ = 0;
    std::atomic<uint64_t> reloads_ok_{0};
    std::atomic<uint64_t> reloads_failed_{0};
    std::optional<model::DataplaneType> auto_dataplane_;
    mutable std::mutex config_mu_;  // guards the two below
    std::string config_sha256_;
    std::chrono::system_clock::time_point config_loaded_;
};

}  // namespace sluice::daemon
