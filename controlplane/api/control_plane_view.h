// What the admin API (HTTP JSON, /metrics, /healthz, /readyz) and so
// sluicectl can see and do in a running sluiced. The daemon implements it;
// the API server takes it through its constructor, so API tests can inject
// a small fake and the daemon's own tests exercise the real one.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/dataplane_counters.h"

extern "C" {
#include "abi/tables.h"
}

namespace sluice::api {

// One backend of one service as the daemon sees it now.
struct BackendView {
    std::string address;           // "10.0.0.1" or "2001:db8::1"
    uint16_t port = 0;             // health-check / service port (0 = the VIP's)
    uint32_t weight = 0;           // configured or discovered weight
    bool draining = false;         // no new flows; established ones stay
    std::string drain_source;      // "", "discovery", "api", "weight", "removed" (left discovery) — who asked for the drain
    std::string health;            // "up", "down", "unknown" (not checked yet), "none" (no check)
    std::string health_error;      // last probe error, "" when none
    bool in_table = false;         // owns Maglev slots now
    uint32_t slots = 0;            // slots owned in the current table
    uint32_t backend_id = 0;       // data-plane id (stable across rebuilds); meaningful when in_plan
    bool in_plan = false;          // the data plane knows it (in the table, draining, or removed and draining)
    uint64_t packets = 0;          // forwarded to it, all workers
    uint64_t bytes = 0;
};

// One service (VIP) and its pool.
struct ServiceView {
    std::string name;
    std::string vip;               // "192.0.2.10:80" or "[2001:db8::10]:443"
    std::string protocol;          // "tcp" | "udp"
    std::string forwarding;        // "ipip" | "gue" | "l2dsr"
    uint32_t table_size = 0;       // Maglev M
    std::string fingerprint;       // 16 hex digits: equal on nodes with the same backends
    std::string discovery;         // "static" | "file" | "etcd" | "dns"
    std::string discovery_state;   // "syncing" | "ok" | "stale" | "error"
    std::string discovery_error;   // last error, "" when none
    std::optional<std::chrono::system_clock::time_point> discovery_updated;  // last good update
    bool all_backends_down = false;
    uint64_t all_down_events = 0;  // times the service entered all-down mode
    uint64_t table_rebuilds = 0;   // Maglev tables built for this service
    uint64_t packets = 0;          // received for this VIP, all workers
    uint64_t bytes = 0;
    std::vector<BackendView> backends;
};

// How full the connection table is, per partition: a worker's table
// (DPDK), a CPU's partition (XDP per-CPU) or the one shared table (XDP).
// Live entries are estimated from a sample of each partition's buckets
// (dataplane/core/conn_census.h: within about ±1.1% of the capacity).
struct ConnTableView {
    std::string layout;            // "per-worker" | "per-cpu" | "shared"
    using Partition = model::ConnTablePartition;
    std::vector<Partition> partitions;
    std::string error;             // non-empty: not read (partitions empty)
};

// One worker's share of the traffic (DPDK lcore, or CPU for XDP), and one
// DPDK port's driver counters (none for XDP: the kernel's interface
// counters cover its NICs): as the driver reports them.
using WorkerView = model::WorkerCounters;
using PortView = model::PortCounters;

// Node-wide counters and control-plane timings.
struct StatsView {
    sluice_stats totals{};         // summed over workers: rx, tx, exception, control, drops by reason
    uint32_t workers = 0;
    std::string dataplane;         // "dpdk" | "xdp"
    ConnTableView conn_table;
    std::vector<WorkerView> per_worker;
    std::vector<PortView> ports;
    // Non-empty: the data plane's counters could not be read (the figures
    // above are not its own); /metrics answers 503 rather than zeros.
    std::string counters_error;
    uint64_t publications = 0;     // plans published since start
    double last_publish_seconds = 0;  // time the last publish took (build + swap + grace period)
    uint64_t reloads_ok = 0;
    uint64_t reloads_failed = 0;
    std::string config_path;       // the file sluiced reads (start, SIGHUP, POST /v1/reload)
    std::string config_sha256;     // of the bytes of the config in force; `sha256sum` of that file
    std::chrono::system_clock::time_point config_loaded;  // when it came into force
    std::chrono::system_clock::time_point started;
};

// Live connection-table entries per backend (GET /v1/connections): which
// backends still have flows, e.g. before taking a drained one down.
struct ConnectionsView {
    struct Backend {
        BackendView backend;       // as in services()
        uint64_t connections = 0;  // live entries naming it, every worker / CPU
    };
    struct Service {
        std::string name;
        std::vector<Backend> backends;
    };
    std::vector<Service> services;
    double walk_seconds = 0;       // time the walk of the whole table took
    double age_seconds = 0;        // how long ago that walk was (one per second at most; 0: just now)
};

// A 5-tuple to explain: which backend would a packet of it reach, and why.
struct LookupRequest {
    std::string client;            // client address
    uint16_t client_port = 0;
    std::string vip;               // VIP address
    uint16_t vip_port = 0;
    std::string protocol;          // "tcp" | "udp"
};

struct LookupResult {
    std::string service;           // matching service, by name
    std::string backend;           // "address" of the chosen backend, "" when none
    std::string reason;            // "connection table" | "maglev" | "no backend"
    uint32_t slot = 0;             // Maglev slot (hash % M), always reported
    uint32_t flow_hash = 0;        // sluice_flow_hash of the key
    std::string connection_table_error;  // non-empty: the table was not read, so a
                                         // "maglev" answer may not be the flow's backend
};

struct ReloadResult {
    bool applied = false;          // false: refused, the running config stays
    std::vector<std::string> diagnostics;  // "file:line:col: error: ..." lines (warnings too)
};

// Thread-safety: every method may be called from any API server thread,
// concurrently with each other and with the daemon's own threads; the
// implementation synchronises. Reads return copies.
class ControlPlaneView {
public:
    virtual ~ControlPlaneView() = default;

    virtual std::vector<ServiceView> services() const = 0;
    virtual StatsView stats() const = 0;

    // Drain or undrain one backend of a service (by address, optionally
    // "address:port"). Error: unknown service or backend.
    virtual Result<void> set_drain(const std::string& service, const std::string& backend, bool drain) = 0;

    // Re-reads the config file; a bad config is refused with diagnostics.
    virtual Result<ReloadResult> reload() = 0;

    // Error: not a VIP / malformed addresses.
    virtual Result<LookupResult> lookup(const LookupRequest& request) const = 0;

    // Every backend's live connection entries (a walk of the whole
    // connection table, timed in walk_seconds; at most one a second, so an
    // answer may be up to a second old: age_seconds). Error: the table
    // cannot be judged.
    virtual Result<ConnectionsView> connections() const = 0;

    // /healthz: the process and its threads run. /readyz: the data plane
    // forwards by a published plan and every discovery source has synced
    // once (or is stale with a last good set).
    virtual bool alive() const = 0;
    virtual bool ready() const = 0;
};

}  // namespace sluice::api
