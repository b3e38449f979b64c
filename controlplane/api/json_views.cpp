// JSON shapes of the admin API. Field names are a stable interface
// (sluicectl and operators' scripts read them): add, never rename.
#include "api/json_views.h"

#include <ctime>

#include "api/version.h"

namespace sluice::api {

using nlohmann::json;

const std::array<DropReasonName, SLUICE_DROP_MAX> kDropReasonNames = {{
#define SLUICE_DROP_NAME_(name, label, text) {label, text},
    SLUICE_DROP_REASONS(SLUICE_DROP_NAME_)
#undef SLUICE_DROP_NAME_
}};

std::string backend_label(const BackendView& backend)
{
    if (backend.port == 0) return backend.address;
    const bool v6 = backend.address.find(':') != std::string::npos;
    return (v6 ? "[" + backend.address + "]" : backend.address) + ":" + std::to_string(backend.port);
}

double unix_seconds(std::chrono::system_clock::time_point when)
{
    return std::chrono::duration<double>(when.time_since_epoch()).count();
}

std::string rfc3339(std::chrono::system_clock::time_point when)
{
    const std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

json backend_json(const BackendView& b)
{
    return json{
        {"name", backend_label(b)},
        {"address", b.address},
        {"port", b.port},
        {"weight", b.weight},
        {"draining", b.draining},
        {"drain_source", b.drain_source},
        {"health", b.health},
        {"health_error", b.health_error},
        {"in_table", b.in_table},
        {"slots", b.slots},
        {"backend_id", b.backend_id},
        {"packets", b.packets},
        {"bytes", b.bytes},
    };
}

json service_json(const ServiceView& s, bool with_backends)
{
    uint32_t up = 0;
    uint32_t draining = 0;
    uint32_t in_table = 0;
    for (const BackendView& b : s.backends) {
        up += b.health == "up" || b.health == "none" ? 1 : 0;
        draining += b.draining ? 1 : 0;
        in_table += b.in_table ? 1 : 0;
    }
    json discovery{
        {"source", s.discovery},
        {"state", s.discovery_state},
        {"error", s.discovery_error},
        {"updated", s.discovery_updated ? json(rfc3339(*s.discovery_updated)) : json(nullptr)},
    };
    json out{
        {"name", s.name},
        {"vip", s.vip},
        {"protocol", s.protocol},
        {"forwarding", s.forwarding},
        {"table_size", s.table_size},
        {"fingerprint", s.fingerprint},
        {"discovery", std::move(discovery)},
        {"all_backends_down", s.all_backends_down},
        {"all_down_events", s.all_down_events},
        {"table_rebuilds", s.table_rebuilds},
        {"packets", s.packets},
        {"bytes", s.bytes},
        {"backends_total", s.backends.size()},
        {"backends_up", up},
        {"backends_draining", draining},
        {"backends_in_table", in_table},
    };
    if (with_backends) {
        json list = json::array();
        for (const BackendView& b : s.backends) list.push_back(backend_json(b));
        out["backends"] = std::move(list);
    }
    return out;
}

json stats_json(const StatsView& stats, std::chrono::system_clock::time_point now)
{
    const sluice_stats& t = stats.totals;
    json drops = json::object();
    uint64_t drops_total = 0;
    for (size_t i = 0; i < kDropReasonNames.size(); ++i) {
        drops[kDropReasonNames[i].label] = t.drops[i];
        drops_total += t.drops[i];
    }
    const double uptime = std::chrono::duration<double>(now - stats.started).count();
    json partitions = json::array();
    uint64_t capacity = 0;
    uint64_t live = 0;
    for (const ConnTableView::Partition& p : stats.conn_table.partitions) {
        partitions.push_back({{"id", p.id}, {"capacity", p.capacity}, {"live_estimate", p.live_estimate}});
        capacity += p.capacity;
        live += p.live_estimate;
    }
    json workers = json::array();
    for (const WorkerView& w : stats.per_worker) {
        workers.push_back({{"id", w.id},
                           {"cpu", w.cpu},
                           {"rx_packets", w.rx_packets},
                           {"tx_packets", w.tx_packets},
                           {"drops", w.drops},
                           {"busy_seconds", w.busy_seconds ? json(*w.busy_seconds) : json(nullptr)}});
    }
    json ports = json::array();
    for (const PortView& p : stats.ports) {
        ports.push_back({{"name", p.name},
                         {"rx_packets", p.rx_packets},
                         {"rx_bytes", p.rx_bytes},
                         {"tx_packets", p.tx_packets},
                         {"tx_bytes", p.tx_bytes},
                         {"rx_missed", p.rx_missed},
                         {"rx_errors", p.rx_errors},
                         {"rx_nombuf", p.rx_nombuf},
                         {"tx_errors", p.tx_errors}});
    }
    return json{
        {"version", version()},
        {"dataplane", stats.dataplane},
        {"workers", stats.workers},
        {"started", rfc3339(stats.started)},
        {"uptime_seconds", uptime > 0 ? uptime : 0.0},
        {"totals",
         {
             {"rx_packets", t.rx_packets},
             {"rx_bytes", t.rx_bytes},
             {"tx_packets", t.tx_packets},
             {"tx_bytes", t.tx_bytes},
             {"exception_packets", t.exception_packets},
             {"control_packets", t.control_packets},
             {"icmp_sent", t.icmp_sent},
             {"conn_hits", t.conn_hits},
             {"conn_misses", t.conn_misses},
             {"conn_evictions", t.conn_evictions},
             {"icmp_rate_limited", t.icmp_rate_limited},
         }},
        {"connection_table",
         {{"layout", stats.conn_table.layout},
          {"capacity", capacity},
          {"live_estimate", live},
          {"partitions", std::move(partitions)},
          {"error", stats.conn_table.error}}},
        {"counters_error", stats.counters_error},
        {"per_worker", std::move(workers)},
        {"ports", std::move(ports)},
        {"drops", std::move(drops)},
        {"drops_total", drops_total},
        {"publications", stats.publications},
        {"last_publish_seconds", stats.last_publish_seconds},
        {"reloads", {{"ok", stats.reloads_ok}, {"failed", stats.reloads_failed}}},
        {"config",
         {{"path", stats.config_path}, {"sha256", stats.config_sha256}, {"loaded", rfc3339(stats.config_loaded)}}},
    };
}

json connections_json(const ConnectionsView& view)
{
    json services = json::array();
    for (const ConnectionsView::Service& s : view.services) {
        json backends = json::array();
        for (const ConnectionsView::Backend& b : s.backends) {
            backends.push_back({{"name", backend_label(b.backend)},
                                {"address", b.backend.address},
                                {"port", b.backend.port},
                                {"draining", b.backend.draining},
                                {"drain_source", b.backend.drain_source},
                                {"in_table", b.backend.in_table},
                                {"connections", b.connections}});
        }
        services.push_back({{"name", s.name}, {"backends", std::move(backends)}});
    }
    return json{{"services", std::move(services)},
                {"walk_seconds", view.walk_seconds},
                {"age_seconds", view.age_seconds}};
}

json lookup_json(const LookupRequest& request, const LookupResult& result)
{
    json body{
        {"request",
         {{"client", request.client},
          {"client_port", request.client_port},
          {"vip", request.vip},
          {"vip_port", request.vip_port},
          {"protocol", request.protocol}}},
        {"service", result.service},
        {"backend", result.backend},
        {"reason", result.reason},
        {"slot", result.slot},
        {"flow_hash", result.flow_hash},
    };
    if (!result.connection_table_error.empty()) body["connection_table_error"] = result.connection_table_error;
    return body;
}

std::string dump(const json& value)
{
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace sluice::api
