// The control plane's one handle on a data plane, whichever it is
// (DpdkDriver, XdpDriver): start it with a plan, publish new plans, read
// counters, explain a flow, stop it. No data-plane types cross this
// interface.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "driver/forwarding_plan.h"
#include "model/dataplane_counters.h"

extern "C" {
#include "abi/flow.h"
#include "abi/tables.h"
}

namespace sluice::driver {

// Counters summed over every worker core (or CPU), read racily: each field
// is a consistent 64-bit value, the whole at most a burst out of date.
struct DataplaneStats {
    sluice_stats totals{};             // packets in, out, to the kernel, dropped by reason
    struct Backend {
        uint32_t id;                   // PlanBackend::id
        sluice_counter sent;           // packets and bytes forwarded to it
    };
    std::vector<Backend> backends;     // backends that were sent anything
    uint64_t publications = 0;         // plans published since start (the first included)
    // Non-empty: some counters could not be read and are zero here, not the
    // data plane's (callers must not publish them as counters that reset).
    std::string error;
    // Each worker's share: DPDK's worker lcores, XDP's CPUs (ids up to the
    // highest online one). How evenly RSS spreads the traffic, and (DPDK)
    // how busy each polling core is.
    using Worker = model::WorkerCounters;
    std::vector<Worker> workers;
    // DPDK: each port's driver counters. XDP: none (the kernel's own
    // interface counters cover its NICs).
    using Port = model::PortCounters;
    std::vector<Port> ports;
};

// How full the connection table is, partition by partition, from a sample
// of each partition's buckets (dataplane/core/conn_census.h: within about
// ±1.1% of the capacity), read racily while the data plane writes.
struct ConnectionTableCensus {
    // "per-worker" (DPDK: one table per worker core), "per-cpu" (XDP: one
    // partition per CPU) or "shared" (XDP: one table for every CPU).
    std::string layout;
    using Partition = model::ConnTablePartition;
    std::vector<Partition> partitions;
};

// Packets dropped for any reason.
inline uint64_t dropped(const sluice_stats& s)
{
    uint64_t n = 0;
    for (uint64_t d : s.drops) n += d;
    return n;
}

enum class LogSeverity : uint8_t { kDebug, kInfo, kWarn, kError };

// Where a driver reports what happens (start-up steps, neighbours learned,
// stats summaries). Injected so tests capture it and the daemon filters it.
using LogSink = std::function<void(LogSeverity, std::string_view)>;

class DataplaneDriver {
public:
    virtual ~DataplaneDriver() = default;

    // Takes the NICs, starts the workers and makes `initial` the state they
    // forward by before their first packet (so no packet sees an empty
    // state). Fails with a message an operator can act on; a failed start
    // leaves nothing running. Control thread only, once.
    virtual Result<void> start(const ForwardingPlan& initial) = 0;

    // Makes `plan` the state in force, atomically for every packet: each
    // packet is forwarded by the old or the new plan, none by a mix. The
    // node settings that need a restart (ports, workers) must be unchanged.
    // On error the previous plan stays in force. Control thread only.
    virtual Result<void> publish(const ForwardingPlan& plan) = 0;

    // Control-thread housekeeping between signals (neighbour resolution and
    // the republication it causes). Call every few hundred milliseconds.
    virtual void poll() = 0;

    // Counters; any thread.
    virtual DataplaneStats stats() const = 0;

    // The backend id a live connection-table entry pins `key` to, if there
    // is one (sluicectl lookup: "connection table" versus a Maglev slot).
    // Any thread; racy by nature (the data plane keeps writing), so an
    // answer may be a packet out of date. Key as the data plane builds it.
    // An error when the table cannot be judged (its clock unreadable): the
    // caller must not present Maglev's pick as the flow's backend then.
    virtual Result<std::optional<uint32_t>> connection_backend(const sluice_flow_key& key) const = 0;

    // How full the connection table is (stats, /metrics). Any thread; reads
    // a few hundred KiB per partition. Empty partitions before start(). An
    // error when the table cannot be judged (its clock unreadable).
    virtual Result<ConnectionTableCensus> connection_census() const = 0;

    // Live connection-table entries per backend id (SLUICE_MAX_BACKENDS
    // counts, all zero before start()): a walk of the whole table, for an
    // operator's question, not for every scrape. Any thread; racy. An error
    // when the table cannot be judged.
    virtual Result<std::vector<uint64_t>> connections_by_backend() const = 0;

    // Stops the workers, releases the NICs. Idempotent. Control thread only.
    virtual void stop() = 0;
};

}  // namespace sluice::driver
