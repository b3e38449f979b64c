// A small in-memory ControlPlaneView for the API and sluicectl tests: two
// services with fixed counters, drains recorded, reload and readiness
// scripted by the test.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "api/control_plane_view.h"

namespace sluice::testing {

class FakeView final : public api::ControlPlaneView {
public:
    FakeView()
    {
        api::ServiceView web;
        web.name = "web";
        web.vip = "192.0.2.10:80";
        web.protocol = "tcp";
        web.forwarding = "ipip";
        web.table_size = 65537;
        web.fingerprint = "0123456789abcdef";
        web.discovery = "static";
        web.discovery_state = "ok";
        web.discovery_updated = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
        web.table_rebuilds = 3;
        web.packets = 1000;
        web.bytes = 64000;
        web.backends.push_back(backend("10.0.0.1", 0, "up", 1, 32768, 600));
        web.backends.push_back(backend("10.0.0.2", 0, "up", 2, 32769, 400));
        web.backends.push_back(backend("2001:db8::3", 8080, "down", 3, 0, 0));
        web.backends.back().health_error = "connect: connection refused";
        // A name and error text worth escaping in labels and JSON.
        api::ServiceView odd;
        odd.name = "odd\"name\\x";
        odd.vip = "[2001:db8::10]:443";
        odd.protocol = "udp";
        odd.forwarding = "gue";
        odd.table_size = 251;
        odd.fingerprint = "fedcba9876543210";
        odd.discovery = "file";
        odd.discovery_state = "error";
        odd.discovery_error = "line 1\nline \"2\"";
        odd.all_backends_down = true;
        odd.all_down_events = 1;
        odd.backends.push_back(backend("10.0.1.1", 53, "unknown", 4, 0, 0));
        services_ = {web, odd};

        stats_.totals.rx_packets = 1234;
        stats_.totals.rx_bytes = 567890;
        stats_.totals.tx_packets = 1200;
        stats_.totals.tx_bytes = 600000;
        stats_.totals.conn_hits = 900;
        stats_.totals.conn_misses = 300;
        stats_.totals.drops[SLUICE_DROP_NO_BACKEND] = 30;
        stats_.totals.drops[SLUICE_DROP_MALFORMED_L3] = 4;
        stats_.workers = 4;
        stats_.dataplane = "dpdk";
        stats_.conn_table.layout = "per-worker";
        stats_.conn_table.partitions = {{0, 1048576, 1200}, {1, 1048576, 35000}};
        stats_.per_worker = {{0, 2, 1000, 900, 5, 1.5}, {1, 3, 500, 450, 0, std::nullopt}};
        stats_.ports = {{"lan", 1500, 96000, 1350, 91000, 7, 0, 2, 0}};
        stats_.publications = 7;
        stats_.last_publish_seconds = 0.0125;
        stats_.reloads_ok = 2;
        stats_.reloads_failed = 1;
        stats_.started = std::chrono::system_clock::now() - std::chrono::seconds(90);
    }

    std::vector<api::ServiceView> services() const override
    {
        std::lock_guard lock(mu_);
        return services_;
    }

    api::StatsView stats() const override
    {
        std::lock_guard lock(mu_);
        ++stats_calls_;
        api::StatsView copy = stats_;
        copy.totals.rx_packets += stats_calls_;  // moves between samples, as live counters do
        // Worker 0 receives three times what worker 1 does between samples.
        copy.per_worker[0].rx_packets += 300 * stats_calls_;
        copy.per_worker[1].rx_packets += 100 * stats_calls_;
        *copy.per_worker[0].busy_seconds += 0.01 * static_cast<double>(stats_calls_);
        copy.ports[0].rx_missed += 10 * stats_calls_;
        return copy;
    }

    Result<void> set_drain(const std::string& service, const std::string& backend, bool drain) override
    {
        std::lock_guard lock(mu_);
        if (refuse_drain_) return make_error("drain refused: backend is the last one up");
        for (auto& s : services_) {
            if (s.name != service) continue;
            for (auto& b : s.backends) {
                if (b.address == backend) {
                    b.draining = drain;
                    b.drain_source = drain ? "api" : "";
                    drains_.emplace_back(service + "/" + backend, drain);
                    return {};
                }
            }
        }
        return make_error("unknown service or backend");
    }

    Result<api::ReloadResult> reload() override
    {
        std::lock_guard lock(mu_);
        api::ReloadResult result;
        result.applied = reload_ok_;
        result.diagnostics = reload_ok_ ? std::vector<std::string>{}
                                        : std::vector<std::string>{
                                              "/etc/sluice/sluice.toml:12:3: error: unknown key 'prot'"};
        return result;
    }

    Result<api::LookupResult> lookup(const api::LookupRequest& request) const override
    {
        if (request.vip != "192.0.2.10" || request.vip_port != 80 || request.protocol != "tcp") {
            return make_error("no service on " + request.vip + ":" + std::to_string(request.vip_port) + "/" +
                              request.protocol);
        }
        api::LookupResult result;
        result.service = "web";
        result.backend = "10.0.0.2";
        result.reason = "maglev";
        result.slot = 4242;
        result.flow_hash = 0xdeadbeef;
        // Client port 9999: a data plane whose connection table cannot be read.
        if (request.client_port == 9999) result.connection_table_error = "clock program failed";
        return result;
    }

    bool alive() const override { return true; }
    bool ready() const override
    {
        std::lock_guard lock(mu_);
        return ready_;
    }

    // Test controls.
    void set_ready(bool ready)
    {
        std::lock_guard lock(mu_);
        ready_ = ready;
    }
    // The data plane's counters could not be read.
    void set_counters_error(const std::string& error)
    {
        std::lock_guard lock(mu_);
        stats_.counters_error = error;
    }
    // The connection table could not be read (its clock program failed).
    void set_conn_table_error(const std::string& error)
    {
        std::lock_guard lock(mu_);
        stats_.conn_table.partitions.clear();
        stats_.conn_table.error = error;
    }
    // Every backend of services() with 10 x its id + 1 connections, but a
    // draining one 3, then one fewer at each call (none left after three),
    // unless set_stuck_connections(); or the error of set_conn_table_error().
    Result<api::ConnectionsView> connections() const override
    {
        std::lock_guard lock(mu_);
        if (!stats_.conn_table.error.empty()) return make_error(stats_.conn_table.error);
        api::ConnectionsView out;
        out.walk_seconds = 0.002;
        for (const api::ServiceView& s : services_) {
            auto& svc = out.services.emplace_back();
            svc.name = s.name;
            for (const api::BackendView& b : s.backends) {
                uint64_t n = 10 * b.backend_id + 1;
                if (b.draining) {
                    uint64_t& polls = drain_polls_[s.name + "/" + b.address];
                    n = stuck_connections_ ? 3 : polls < 3 ? 3 - polls : 0;
                    ++polls;
                }
                svc.backends.push_back({b, n});
            }
        }
        return out;
    }
    void set_stuck_connections(bool stuck)
    {
        std::lock_guard lock(mu_);
        stuck_connections_ = stuck;
    }
    void set_reload_ok(bool ok)
    {
        std::lock_guard lock(mu_);
        reload_ok_ = ok;
    }
    void set_refuse_drain(bool refuse)
    {
        std::lock_guard lock(mu_);
        refuse_drain_ = refuse;
    }
    std::vector<std::pair<std::string, bool>> drains() const
    {
        std::lock_guard lock(mu_);
        return drains_;
    }

private:
    static api::BackendView backend(std::string address, uint16_t port, std::string health, uint32_t id,
                                    uint32_t slots, uint64_t packets)
    {
        api::BackendView b;
        b.address = std::move(address);
        b.port = port;
        b.weight = 100;
        b.health = std::move(health);
        b.in_table = slots > 0;
        b.slots = slots;
        b.backend_id = id;
        b.packets = packets;
        b.bytes = packets * 64;
        return b;
    }

    mutable std::mutex mu_;
    std::vector<api::ServiceView> services_;
    api::StatsView stats_;
    mutable uint64_t stats_calls_ = 0;
    mutable std::map<std::string, uint64_t> drain_polls_;  // connections() calls per draining backend
    bool stuck_connections_ = false;
    bool ready_ = true;
    bool reload_ok_ = true;
    bool refuse_drain_ = false;
    std::vector<std::pair<std::string, bool>> drains_;
};

}  // namespace sluice::testing
