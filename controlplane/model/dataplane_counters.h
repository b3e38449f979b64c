// Plain values that a data plane's driver reports and the admin API shows
// as they are: one definition for both (controlplane/driver/
// dataplane_driver.h, controlplane/api/control_plane_view.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice::model {

// One worker's share of the traffic: a DPDK worker lcore, or a CPU for XDP.
struct WorkerCounters {
    uint32_t id = 0;               // worker index (DPDK) or CPU id (XDP)
    uint32_t cpu = 0;              // the lcore or CPU it runs on
    uint64_t rx_packets = 0;
    uint64_t tx_packets = 0;
    uint64_t drops = 0;            // every reason
    // DPDK: seconds spent in loop iterations that moved packets (busy
    // polling, not idle polling); its rate is the core's load, which top
    // cannot show (a poll loop is always at 100%). XDP: none (the program
    // runs in the kernel's softirq time).
    std::optional<double> busy_seconds;
};

// One DPDK port's driver counters (rte_eth_stats), which the kernel cannot
// show for a NIC it no longer owns.
struct PortCounters {
    std::string name;              // the configured port name
    uint64_t rx_packets = 0, rx_bytes = 0;
    uint64_t tx_packets = 0, tx_bytes = 0;
    uint64_t rx_missed = 0;        // dropped by the NIC, RX queue full: the workers did not keep up
    uint64_t rx_errors = 0;
    uint64_t rx_nombuf = 0;        // no mbuf to receive into: the pool is too small
    uint64_t tx_errors = 0;
};

// One partition of a connection table: a worker's table (DPDK), a CPU's
// partition (XDP per-CPU) or the one shared table (XDP).
struct ConnTablePartition {
    uint32_t id = 0;               // worker index, CPU id, or 0 (shared)
    uint64_t capacity = 0;         // entries
    uint64_t live_estimate = 0;    // live entries, estimated from a sample (dataplane/core/conn_census.h)
};

}  // namespace sluice::model
