// /metrics text. Each family is written whole (HELP, TYPE, then every
// series) because the text format forbids interleaving a family's series
// with another family's.
#include "api/metrics.h"

#include <charconv>
#include <cstdio>
#include <string_view>
#include <utility>

#include "api/json_views.h"
#include "api/version.h"

namespace sluice::api {
namespace {

using Labels = std::vector<std::pair<const char*, std::string>>;

// Appends one metric family at a time; values are integers or doubles.
class Writer {
public:
    void family(const char* name, const char* type, const char* help)
    {
        name_ = name;
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;  // our own constant text: no backslash or newline to escape
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    void sample(const Labels& labels, uint64_t value)
    {
        sample_prefix(labels);
        out_ += std::to_string(value);
        out_ += '\n';
    }

    void sample_double(const Labels& labels, double value)
    {
        sample_prefix(labels);
        // Whole numbers (timestamps in seconds) as integers: the shortest
        // round-trip form would be "1.795e+09", valid but hard to read.
        if (value == static_cast<double>(static_cast<int64_t>(value)) && value < 9.0e15 && value > -9.0e15) {
            out_ += std::to_string(static_cast<int64_t>(value));
            out_ += '\n';
            return;
        }
        char text[32];
        auto [end, ec] = std::to_chars(text, text + sizeof(text), value);
        out_.append(text, ec == std::errc() ? end : text);
        out_ += '\n';
    }

    std::string take() { return std::move(out_); }

private:
    void sample_prefix(const Labels& labels)
    {
        out_ += name_;
        if (!labels.empty()) {
            out_ += '{';
            for (size_t i = 0; i < labels.size(); ++i) {
                if (i != 0) out_ += ',';
                out_ += labels[i].first;
                out_ += "=\"";
                out_ += escape_label_value(labels[i].second);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
    }

    std::string out_;
    const char* name_ = "";
};

bool backend_is_up(const BackendView& b) { return b.health == "up" || b.health == "none"; }

// One family with one series per backend of every service.
template <typename Value>
void per_backend(Writer& w, const std::vector<ServiceView>& services, const char* name, const char* type,
                 const char* help, Value value)
{
    w.family(name, type, help);
    for (const ServiceView& s : services) {
        for (const BackendView& b : s.backends) w.sample({{"service", s.name}, {"backend", backend_label(b)}}, value(b));
    }
}

template <typename Value>
void per_service(Writer& w, const std::vector<ServiceView>& services, const char* name, const char* type,
                 const char* help, Value value)
{
    w.family(name, type, help);
    for (const ServiceView& s : services) w.sample({{"service", s.name}}, value(s));
}

}  // namespace

std::string escape_label_value(const std::string& value)
{
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

std::string render_metrics(const std::vector<ServiceView>& services, const StatsView& stats)
{
    Writer w;
    const sluice_stats& t = stats.totals;

    w.family("sluice_info", "gauge", "Build and data plane of this node (always 1).");
    w.sample({{"version", version()}, {"dataplane", stats.dataplane}}, 1);
    w.family("sluice_workers", "gauge", "Data-plane worker cores (DPDK lcores or XDP CPUs).");
    w.sample({}, stats.workers);
    w.family("sluice_start_time_seconds", "gauge", "Unix time the daemon started.");
    w.sample_double({}, unix_seconds(stats.started));

    const std::pair<const char*, uint64_t> totals[] = {
        {"sluice_rx_packets_total", t.rx_packets},
        {"sluice_rx_bytes_total", t.rx_bytes},
        {"sluice_tx_packets_total", t.tx_packets},
        {"sluice_tx_bytes_total", t.tx_bytes},
        {"sluice_exception_packets_total", t.exception_packets},
        {"sluice_control_packets_total", t.control_packets},
        {"sluice_icmp_sent_total", t.icmp_sent},
        {"sluice_conn_hits_total", t.conn_hits},
        {"sluice_conn_misses_total", t.conn_misses},
        {"sluice_conn_evictions_total", t.conn_evictions},
        {"sluice_icmp_rate_limited_total", t.icmp_rate_limited},
    };
    static constexpr const char* kTotalsHelp[] = {
        "Packets received by the data plane.",
        "Bytes received by the data plane.",
        "Packets forwarded to a backend.",
        "Bytes forwarded to backends, after encapsulation.",
        "Packets handed to the host kernel (TAP or XDP_PASS).",
        "ARP/ND packets answered or learned by the data plane.",
        "ICMP errors generated by the data plane (MTU exceeded).",
        "Connection-table hits.",
        "Connection-table misses (new flows).",
        "Connection-table entries evicted to make room.",
        "ICMP errors not generated because the core's ICMP-error bucket was empty (the packet is a mtu_exceeded drop).",
    };
    static_assert(std::size(kTotalsHelp) == std::size(totals));
    for (size_t i = 0; i < std::size(totals); ++i) {
        w.family(totals[i].first, "counter", kTotalsHelp[i]);
        w.sample({}, totals[i].second);
    }

    w.family("sluice_conn_table_info", "gauge",
             "Connection-table layout (always 1): per-worker (DPDK), per-cpu or shared (XDP).");
    if (!stats.conn_table.layout.empty()) w.sample({{"layout", stats.conn_table.layout}}, 1);
    w.family("sluice_conn_table_capacity", "gauge",
             "Entries a connection-table partition holds (a worker's table, a CPU's partition, or the shared table).");
    for (const ConnTableView::Partition& p : stats.conn_table.partitions)
        w.sample({{"partition", std::to_string(p.id)}}, p.capacity);
    w.family("sluice_conn_table_live_entries", "gauge",
             "Live entries in a connection-table partition, estimated from a sample of its buckets "
             "(within about 1.1% of its capacity).");
    for (const ConnTableView::Partition& p : stats.conn_table.partitions)
        w.sample({{"partition", std::to_string(p.id)}}, p.live_estimate);

    auto worker_labels = [](const WorkerView& v) -> Labels {
        return {{"worker", std::to_string(v.id)}, {"cpu", std::to_string(v.cpu)}};
    };
    w.family("sluice_worker_rx_packets_total", "counter",
             "Packets received by one worker (DPDK lcore, or CPU for XDP): how evenly RSS spreads them.");
    for (const WorkerView& v : stats.per_worker) w.sample(worker_labels(v), v.rx_packets);
    w.family("sluice_worker_tx_packets_total", "counter", "Packets one worker forwarded to a backend.");
    for (const WorkerView& v : stats.per_worker) w.sample(worker_labels(v), v.tx_packets);
    w.family("sluice_worker_drops_total", "counter", "Packets one worker dropped, every reason.");
    for (const WorkerView& v : stats.per_worker) w.sample(worker_labels(v), v.drops);
    w.family("sluice_worker_busy_seconds_total", "counter",
             "Time a DPDK worker spent in loop iterations that moved packets; its rate is the core's load "
             "(a polling core always shows 100% in top). Absent for XDP.");
    for (const WorkerView& v : stats.per_worker) {
        if (v.busy_seconds) w.sample_double(worker_labels(v), *v.busy_seconds);
    }

    const std::pair<const char*, uint64_t PortView::*> port_counters[] = {
        {"sluice_port_rx_packets_total", &PortView::rx_packets}, {"sluice_port_rx_bytes_total", &PortView::rx_bytes},
        {"sluice_port_tx_packets_total", &PortView::tx_packets}, {"sluice_port_tx_bytes_total", &PortView::tx_bytes},
        {"sluice_port_rx_missed_total", &PortView::rx_missed},   {"sluice_port_rx_errors_total", &PortView::rx_errors},
        {"sluice_port_rx_nombuf_total", &PortView::rx_nombuf},   {"sluice_port_tx_errors_total", &PortView::tx_errors},
    };
    static constexpr const char* kPortHelp[] = {
        "Packets a DPDK port received (its driver's count).",
        "Bytes a DPDK port received.",
        "Packets a DPDK port sent.",
        "Bytes a DPDK port sent.",
        "Packets the NIC dropped because an RX queue was full: the workers did not keep up.",
        "Erroneous frames a DPDK port received.",
        "Receive failures for want of an mbuf: the mbuf pool is too small.",
        "Packets a DPDK port failed to send.",
    };
    static_assert(std::size(kPortHelp) == std::size(port_counters));
    for (size_t i = 0; i < std::size(port_counters); ++i) {
        w.family(port_counters[i].first, "counter", kPortHelp[i]);
        for (const PortView& p : stats.ports) w.sample({{"port", p.name}}, p.*port_counters[i].second);
    }

    w.family("sluice_drops_total", "counter", "Packets dropped, by reason (one reason per drop).");
    for (size_t i = 0; i < kDropReasonNames.size(); ++i) w.sample({{"reason", kDropReasonNames[i].label}}, t.drops[i]);

    w.family("sluice_vip_packets_total", "counter", "Packets received for a service's VIP.");
    for (const ServiceView& s : services) w.sample({{"service", s.name}, {"vip", s.vip}}, s.packets);
    w.family("sluice_vip_bytes_total", "counter", "Bytes received for a service's VIP.");
    for (const ServiceView& s : services) w.sample({{"service", s.name}, {"vip", s.vip}}, s.bytes);

    per_backend(w, services, "sluice_backend_packets_total", "counter", "Packets forwarded to a backend.",
                [](const BackendView& b) { return b.packets; });
    per_backend(w, services, "sluice_backend_bytes_total", "counter", "Bytes forwarded to a backend.",
                [](const BackendView& b) { return b.bytes; });
    per_backend(w, services, "sluice_backend_up", "gauge", "1 when the backend is healthy or not checked.",
                [](const BackendView& b) { return uint64_t{backend_is_up(b)}; });
    per_backend(w, services, "sluice_backend_draining", "gauge", "1 when the backend takes no new flows.",
                [](const BackendView& b) { return uint64_t{b.draining}; });
    per_backend(w, services, "sluice_backend_weight", "gauge", "Configured or discovered backend weight.",
                [](const BackendView& b) { return uint64_t{b.weight}; });
    per_backend(w, services, "sluice_backend_slots", "gauge", "Maglev slots the backend owns in the current table.",
                [](const BackendView& b) { return uint64_t{b.slots}; });

    per_service(w, services, "sluice_service_all_backends_down", "gauge",
                "1 while every backend of the service is down (all-down mode).",
                [](const ServiceView& s) { return uint64_t{s.all_backends_down}; });
    per_service(w, services, "sluice_service_all_down_events_total", "counter",
                "Times the service entered all-down mode.", [](const ServiceView& s) { return s.all_down_events; });
    per_service(w, services, "sluice_table_rebuilds_total", "counter", "Maglev tables built for the service.",
                [](const ServiceView& s) { return s.table_rebuilds; });

    w.family("sluice_discovery_up", "gauge", "1 when the service's discovery source is in state ok.");
    for (const ServiceView& s : services) {
        w.sample({{"service", s.name}, {"source", s.discovery}}, uint64_t{s.discovery_state == "ok"});
    }
    w.family("sluice_discovery_last_update_timestamp_seconds", "gauge",
             "Unix time of the discovery source's last good update.");
    for (const ServiceView& s : services) {
        if (s.discovery_updated) {
            w.sample_double({{"service", s.name}, {"source", s.discovery}}, unix_seconds(*s.discovery_updated));
        }
    }

    w.family("sluice_publications_total", "counter", "Forwarding plans published to the data plane.");
    w.sample({}, stats.publications);
    w.family("sluice_publish_duration_seconds", "gauge",
             "Time the last publication took (build, swap and grace period).");
    w.sample_double({}, stats.last_publish_seconds);
    w.family("sluice_reloads_total", "counter", "Configuration reloads, by result.");
    w.sample({{"result", "ok"}}, stats.reloads_ok);
    w.sample({{"result", "failed"}}, stats.reloads_failed);
    return w.take();
}

}  // namespace sluice::api
