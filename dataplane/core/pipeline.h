// The worker's packet pipeline: parse, VIP lookup, filters (a compile-time
// policy, core/filter_hook.h), connection table / Maglev, forward (or ICMP
// back, or exception, or drop), and the per-worker counters that account
// for every packet. DPDK-free: the runtime calls process_burst() on the
// data of its mbufs and acts on the verdicts.
#pragma once

#include <cstdint>
#include <memory>

#include "core/conn_table.h"
#include "core/forwarding_state.h"
#include "core/icmp_limit.h"
#include "core/packet.h"

extern "C" {
#include "abi/tables.h"
}

namespace sluice::core {

// Everything one worker owns and writes: counters and its connection table.
// Cache aligned so no two workers' counters share a line. Only the owning
// worker writes; the stats reader sums copies racily (per-field 64-bit
// loads, as DPDK's xstats do), accepting a snapshot a burst out of date.
class alignas(64) Worker {
public:
    // Start-up, on the worker's core. Allocates the connection table and the
    // per-VIP and per-backend counter arrays, once. `clock_hz`: ticks per
    // second of the `now` process_burst() is given (the runtime's TSC rate;
    // tests use nanoseconds), for the ICMP-error bucket.
    explicit Worker(const ConnectionTable::Config& conn_config, uint64_t clock_hz = kNsPerSec);

    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Per-core counters: rx = tx + exception + control + sum(drops) after
    // every burst.
    alignas(64) sluice_stats stats{};
    ConnectionTable conns;
    // Packets and received bytes per VIP that matched a service, by vip_id.
    std::unique_ptr<sluice_counter[]> vip_counters;
    // Packets and sent bytes (after encapsulation) per backend id.
    std::unique_ptr<sluice_counter[]> backend_counters;
    // The ICMP errors this worker may still generate (the snapshot's
    // icmp_error_limit()); touched only for a packet over the MTU.
    IcmpErrorLimiter icmp_limiter;
};

// Worker hot path. Processes `n` packets received on the ports named in each
// Packet::in_port against one snapshot, writing one verdict per packet and
// rewriting packet bytes in place (encapsulation, ICMP replies). `now` is
// the caller's monotonic clock in the units of the connection-table
// timeouts (TSC ticks). No allocation, locks, logging, exceptions or system
// calls. Not thread-safe per Worker: one caller per Worker. No filters:
// the plain core (tests, parity, benchmarks of the core alone).
void process_burst(Worker& worker, Packet* pkts[], uint16_t n, const ForwardingState& state, uint64_t now,
                   Verdict out[]);

// The same with a filter policy (core/filter_hook.h) run on every VIP
// packet after classification and before the backend pick: ACL, rate
// limits, payload rules for the DPDK plane. A packet the filter refuses is
// dropped and counted with the reason check() returned, and leaves no
// connection-table entry. `filter` is the calling worker's own (per-worker
// state). Defined in core/pipeline_impl.h: include it where you
// instantiate this with your filter.
template <class Filter>
void process_burst(Worker& worker, Packet* pkts[], uint16_t n, const ForwardingState& state, uint64_t now,
                   Verdict out[], Filter& filter);

}  // namespace sluice::core
