// ControlPlane: api::ControlPlaneView over the ServiceManager and driver.
#include "daemon/control_plane.h"

#include <arpa/inet.h>

#include <cstring>

#include "config/loader.h"
#include "daemon/log.h"
#include "daemon/reload.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::daemon {
namespace {

using driver::LogSeverity;

// A control loop silent this long is wedged (it wakes every millisecond
// while the DPDK driver runs, at least every second otherwise).
constexpr auto kAliveWindow = std::chrono::seconds(5);

}  // namespace

ControlPlane::ControlPlane(std::string config_path, ServiceManager& manager, const driver::DataplaneDriver& driver,
                           std::string dataplane, uint32_t workers, driver::LogSink log,
                           std::function<void(model::LogLevel)> on_log_level)
    : config_path_(std::move(config_path)), manager_(manager), driver_(driver), dataplane_(std::move(dataplane)),
      workers_(workers), log_(std::move(log)), on_log_level_(std::move(on_log_level)),
      started_(std::chrono::system_clock::now())
{
}

void ControlPlane::set_config_digest(std::string sha256)
{
    std::lock_guard lock(config_mu_);
    config_sha256_ = std::move(sha256);
    config_loaded_ = std::chrono::system_clock::now();
}

std::vector<api::ServiceView> ControlPlane::services() const { return manager_.view(driver_.stats()); }

api::StatsView ControlPlane::stats() const
{
    const driver::DataplaneStats ds = driver_.stats();
    const PublishStats ps = manager_.publish_stats();
    api::StatsView out;
    out.totals = ds.totals;
    out.counters_error = ds.error;
    out.workers = workers_;
    out.dataplane = dataplane_;
    if (Result<driver::ConnectionTableCensus> census = driver_.connection_census(); census) {
        out.conn_table.layout = std::move(census->layout);
        out.conn_table.partitions = std::move(census->partitions);
    } else {
        out.conn_table.error = census.error();
    }
    out.per_worker = ds.workers;
    out.ports = ds.ports;
    out.publications = ds.publications;
    out.last_publish_seconds = std::chrono::duration<double>(ps.last_build + ps.last_publish).count();
    out.reloads_ok = reloads_ok_.load();
    out.reloads_failed = reloads_failed_.load();
    {
        std::lock_guard lock(config_mu_);
        out.config_path = config_path_;
        out.config_sha256 = config_sha256_;
        out.config_loaded = config_loaded_;
    }
    out.started = started_;
    return out;
}

Result<api::ConnectionsView> ControlPlane::connections() const
{
    // A walk reads the whole table: API clients asking at once wait for
    // each other rather than read it side by side, and a client polling
    // fast (drain --wait) gets the last walk's counts.
    std::lock_guard walk(walk_mu_);
    const auto t0 = std::chrono::steady_clock::now();
    if (walk_counts_.empty() || t0 - walk_at_ >= kMinWalkInterval) {
        Result<std::vector<uint64_t>> counts = driver_.connections_by_backend();
        if (!counts) return make_error(counts.error());
        walk_counts_ = std::move(*counts);
        walk_at_ = t0;
        walk_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const std::vector<uint64_t>* const counts = &walk_counts_;
    api::ConnectionsView out;
    out.walk_seconds = walk_seconds_;
    out.age_seconds = std::chrono::duration<double>(t0 - walk_at_).count();
    for (api::ServiceView& s : services()) {
        api::ConnectionsView::Service& svc = out.services.emplace_back();
        svc.name = std::move(s.name);
        for (api::BackendView& b : s.backends) {
            // Out of the plan (down): entries still naming its last id are
            // re-pinned by their next packet; none stays with it.
            const uint64_t n = b.in_plan && b.backend_id < counts->size() ? (*counts)[b.backend_id] : 0;
            svc.backends.push_back({std::move(b), n});
        }
    }
    return out;
}

Result<void> ControlPlane::set_drain(const std::string& service, const std::string& backend, bool drain)
{
    return manager_.set_drain(service, backend, drain);
}

Result<api::ReloadResult> ControlPlane::reload()
{
    std::lock_guard lock(reload_mu_);
    api::ReloadResult out;
    const config::LoadResult loaded = config::load_file(config_path_);
    for (const auto& d : loaded.diagnostics) out.diagnostics.push_back(d.to_string());
    auto refuse = [&](const std::string& why) {
        ++reloads_failed_;
        for (const auto& d : out.diagnostics) log_(LogSeverity::kError, "msg=\"reload diagnostic\" diagnostic=" + quoted(d));
        log_(LogSeverity::kError, "msg=\"reload refused; the running configuration stays in force\" reason=" +
                                      quoted(why));
        return out;
    };
    if (!loaded.ok()) return refuse(config_path_ + " is not valid");
    model::Config next = *loaded.config;
    if (next.dataplane.type == model::DataplaneType::kAuto && auto_dataplane_) next.dataplane.type = *auto_dataplane_;
    const std::vector<std::string> restart = restart_required(manager_.config(), next);
    if (!restart.empty()) {
        for (const auto& r : restart) out.diagnostics.push_back(config_path_ + ": error: " + r);
        return refuse("settings that need a restart changed");
    }
    auto applied = manager_.apply(next);
    if (!applied) {
        out.diagnostics.push_back(config_path_ + ": error: " + applied.error());
        return refuse(applied.error());
    }
    if (on_log_level_) on_log_level_(next.daemon.log_level);
    set_config_digest(loaded.sha256);
    ++reloads_ok_;
    out.applied = true;
    for (const auto& d : out.diagnostics) log_(LogSeverity::kWarn, "msg=\"reload diagnostic\" diagnostic=" + quoted(d));
    log_(LogSeverity::kInfo, "msg=\"reload applied\" services=" + std::to_string(next.services.size()) +
                                 " config=" + config_path_);
    return out;
}

Result<api::LookupResult> ControlPlane::lookup(const api::LookupRequest& request) const
{
    auto client = model::parse_ip_address(request.client);
    if (!client) return make_error("client: " + client.error());
    auto vip = model::parse_ip_address(request.vip);
    if (!vip) return make_error("vip: " + vip.error());
    if (client->family != vip->family) return make_error("client and VIP are of different address families");
    const std::string proto = request.protocol.empty() ? "tcp" : request.protocol;
    if (proto != "tcp" && proto != "udp") return make_error("protocol: want tcp or udp, not '" + proto + "'");
    const model::Protocol protocol = proto == "tcp" ? model::Protocol::kTcp : model::Protocol::kUdp;

    const auto plan = manager_.current_plan();
    const driver::PlanService* match = nullptr;
    for (const auto& s : plan->services) {
        if (s.vip.address != *vip || s.protocol != protocol) continue;
        if (s.vip.port == request.vip_port) {
            match = &s;  // an exact port beats a port-0 ("all ports") VIP, as in the data plane
            break;
        }
        if (s.vip.port == 0 && match == nullptr) match = &s;
    }
    if (match == nullptr) {
        return make_error(model::Endpoint{*vip, request.vip_port}.to_string() + "/" + proto + " is not a VIP");
    }
    sluice_flow_key key;
    std::memset(&key, 0, sizeof key);
    std::memcpy(key.src.bytes, client->bytes.data(), 16);
    std::memcpy(key.dst.bytes, vip->bytes.data(), 16);
    key.sport = htons(request.client_port);
    key.dport = htons(request.vip_port);
    key.proto = protocol == model::Protocol::kTcp ? SLUICE_IPPROTO_TCP : SLUICE_IPPROTO_UDP;
    key.family = client->is_ipv4() ? SLUICE_FAMILY_IPV4 : SLUICE_FAMILY_IPV6;
    if ((match->flags & SLUICE_VIP_F_HASH_NO_SPORT) != 0) key.sport = 0;  // as the data planes key it

    api::LookupResult out;
    out.service = match->name;
    out.flow_hash = sluice_flow_hash(&key);
    out.reason = "no backend";
    auto address_of = [&](uint32_t id) -> const driver::PlanBackend* {
        for (const auto& b : match->backends) {
            if (b.id == id && id != SLUICE_BACKEND_NONE) return &b;
        }
        return nullptr;
    };
    if (!match->ring.empty()) {
        out.slot = out.flow_hash % static_cast<uint32_t>(match->ring.size());
        if (const driver::PlanBackend* b = address_of(match->ring[out.slot])) {
            out.backend = b->address.to_string();
            out.reason = "maglev";
        }
    }
    // An established flow keeps the backend its connection entry names, as
    // long as that backend is still in the plan (active or draining); the
    // data planes pick again by Maglev when it is not.
    const auto pinned = driver_.connection_backend(key);
    if (!pinned) {
        // Maglev's pick stays in the answer, marked as unconfirmed: an
        // established flow may be pinned elsewhere.
        out.connection_table_error = pinned.error();
        log_(LogSeverity::kWarn, "msg=\"lookup: connection table not read\" error=" + quoted(pinned.error()));
    } else if (*pinned) {
        if (const driver::PlanBackend* b = address_of(**pinned)) {
            out.backend = b->address.to_string();
            out.reason = "connection table";
        }
    }
    return out;
}

bool ControlPlane::alive() const { return Clock::now() - manager_.last_loop() < kAliveWindow; }

bool ControlPlane::ready() const { return alive() && manager_.ready(); }

}  // namespace sluice::daemon
