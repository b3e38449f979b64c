// Prometheus text exposition (format 0.0.4) of the control plane's views: a
// pure function of its inputs so it can be tested without a server.
//
// Metric names (all prefixed sluice_; labels in braces):
//   counters  rx_packets_total rx_bytes_total tx_packets_total tx_bytes_total
//             exception_packets_total control_packets_total icmp_sent_total
//             conn_hits_total conn_misses_total conn_evictions_total icmp_rate_limited_total
//             drops_total{reason}               one series per drop reason (X-macro label)
//             worker_rx_packets_total{worker,cpu} worker_tx_packets_total{worker,cpu}
//             worker_drops_total{worker,cpu}      worker_busy_seconds_total{worker,cpu} (DPDK only)
//             port_{rx,tx}_{packets,bytes}_total{port}  port_rx_missed_total{port} port_rx_errors_total{port}
//             port_rx_nombuf_total{port}        port_tx_errors_total{port}  (DPDK ports only)
//             vip_packets_total{service,vip}    vip_bytes_total{service,vip}
//             backend_packets_total{service,backend} backend_bytes_total{service,backend}
//             table_rebuilds_total{service}     service_all_down_events_total{service}
//             publications_total                reloads_total{result="ok"|"failed"}
//   gauges    info{version,dataplane} = 1       workers
//             conn_table_info{layout} = 1       conn_table_capacity{partition}
//             conn_table_live_entries{partition}  (estimated from a sample of buckets)
//             start_time_seconds                publish_duration_seconds (the last publish)
//             backend_up{service,backend}       1 when health is "up" or "none" (not checked)
//             backend_draining{service,backend} backend_weight{service,backend}
//             backend_slots{service,backend}    service_all_backends_down{service}
//             discovery_up{service,source}      1 when the source's state is "ok"
//             discovery_last_update_timestamp_seconds{service,source}  (absent until a good update)
// `backend` is backend_label(): "address" or "address:port".
#pragma once

#include <string>
#include <vector>

#include "api/control_plane_view.h"

namespace sluice::api {

// The whole /metrics body. Thread-safe (no shared state).
std::string render_metrics(const std::vector<ServiceView>& services, const StatsView& stats);

// Label value escaping of the text format: \ → \\, " → \", newline → \n.
std::string escape_label_value(const std::string& value);

}  // namespace sluice::api
