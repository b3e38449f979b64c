// The admin HTTP API server: JSON under /v1, Prometheus text at /metrics,
// /healthz and /readyz, over a ControlPlaneView, on threads of its own.
//
// Authentication: when a token is set, every endpoint except /healthz wants
// "Authorization: Bearer <token>" (compared in constant time); otherwise
// 401 {"error": ...} with WWW-Authenticate: Bearer. start() refuses a
// non-loopback listen address without a token.
//
// Endpoints (field names are stable; add, never rename). Errors are
// {"error": "message"} with 400 (bad parameter), 401, 404 (unknown path,
// service or backend), 405 (wrong method; Allow says which), 409 (the
// daemon refused a drain), 422 (reload refused), 500, 503.
//   GET  /healthz   200 {"status":"ok"} | 503 {"status":"unhealthy"}   (no token needed)
//   GET  /readyz    200 {"status":"ready"} | 503 {"status":"not ready"}
//   GET  /metrics   text/plain; version=0.0.4 (names in metrics.h); 503 when the data
//                   plane's counters are unreadable (StatsView::counters_error)
//   GET  /v1/services                       {"services":[SERVICE...]}  (summaries, no backends)
//   GET  /v1/services/{name}                SERVICE with "backends":[BACKEND...]
//   GET  /v1/services/{name}/backends       {"service":name, "backends":[BACKEND...]}
//   POST /v1/services/{name}/backends/{backend}/drain    {"service","backend","draining":true}
//   POST /v1/services/{name}/backends/{backend}/undrain  {"service","backend","draining":false}
//        {backend} is "address" or "address:port" ("[v6]:port"), URL-encoded.
//   POST /v1/reload      200 {"applied":true,"diagnostics":[...]}
//                        422 {"applied":false,"diagnostics":[...],"error":"configuration refused"}
//   GET  /v1/stats       {"version","dataplane","workers","started","uptime_seconds",
//                         "totals":{rx_packets,rx_bytes,tx_packets,tx_bytes,exception_packets,
//                                   control_packets,icmp_sent,conn_hits,conn_misses,conn_evictions,
//                                   icmp_rate_limited},
//                         "connection_table":{"layout","capacity","live_estimate",
//                                   "partitions":[{"id","capacity","live_estimate"}],"error"},
//                         "counters_error" ("" unless the data plane's counters were unreadable),
//                         "per_worker":[{"id","cpu","rx_packets","tx_packets","drops",
//                                   "busy_seconds" (null for XDP)}],
//                         "ports":[{"name","rx_packets","rx_bytes","tx_packets","tx_bytes",
//                                   "rx_missed","rx_errors","rx_nombuf","tx_errors"}] (DPDK; [] for XDP),
//                         "drops":{LABEL:n for every drop reason},"drops_total",
//                         "publications","last_publish_seconds","reloads":{"ok","failed"},
//                         "config":{"path","sha256","loaded"}}
//   GET  /v1/fingerprints  {"fingerprints":{SERVICE:"16 hex digits"}}
//   GET  /v1/lookup?client=A&client_port=P&vip=A&vip_port=P[&protocol=tcp|udp]
//                        {"request":{...},"service","backend","reason","slot","flow_hash"}
//                        400 malformed parameter, 404 not a VIP (the view's message)
//   GET  /v1/connections[?service=NAME]
//                        {"services":[{"name","backends":[{"name","address","port","draining",
//                                   "drain_source","in_table","connections"}]}],"walk_seconds",
//                         "age_seconds"}
//                        live connection entries per backend (a walk of the whole table, at
//                        most one a second: age_seconds says how old the answer is);
//                        404 unknown service, 503 the table cannot be judged
// SERVICE: {"name","vip","protocol","forwarding","table_size","fingerprint",
//           "discovery":{"source","state","error","updated" (RFC 3339 or null)},
//           "all_backends_down","all_down_events","table_rebuilds","packets","bytes",
//           "backends_total","backends_up","backends_draining","backends_in_table"}
// BACKEND: {"name","address","port","weight","draining","drain_source","health",
//           "health_error","in_table","slots","backend_id","packets","bytes"}
#pragma once

#include <cstdint>
#include <memory>

#include "api/admin_settings.h"
#include "api/control_plane_view.h"
#include "common/result.h"

namespace sluice::api {

// Thread-safety: construct, start, stop and destroy from one thread (the
// daemon's main thread). port() may be called from any thread after start().
// Requests run on the server's own threads and call `view` concurrently
// (ControlPlaneView promises that is safe). `view` must outlive the server.
class AdminServer {
public:
    AdminServer(ControlPlaneView& view, AdminSettings settings);
    ~AdminServer();  // stops and joins
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Checks the settings (token off loopback), binds, and serves on a new
    // thread. Returns once the socket listens, so a client may connect at
    // once. Error: bad settings, bind failure, or already started.
    Result<void> start();

    // Stops accepting, finishes in-flight requests and joins. Idempotent.
    void stop();

    // The bound port (the chosen one when settings.port was 0); 0 before start().
    uint16_t port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::api
