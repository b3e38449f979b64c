// The running DPDK data plane: EAL, mbuf pool, ports, one worker lcore per
// RX queue running FilteredSluicePipeline in run_worker_loop, the RCU
// publisher of snapshots (forwarding state + filters, snapshot.h), and the
// control thread's side: the neighbour manager (ARP/ND) and the exception
// path (one TAP per port). Knows nothing of the control plane's model: the
// caller hands it devices, sizes, built snapshots and neighbour targets.
#pragma once

#include <rte_mempool.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "core/conn_census.h"
#include "core/forwarding_state.h"
#include "core/pipeline.h"
#include "dataplane/dpdk/eal.h"
#include "dataplane/dpdk/exception.h"
#include "dataplane/dpdk/neighbor.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/snapshot.h"

extern "C" {
#include "abi/tables.h"
}

namespace sluice::dpdk {

struct RuntimePort {
    std::string name;        // operator's label
    std::string device;      // PCI address or vdev devargs
    uint16_t rx_queues = 0;  // 0 = one per worker
};

struct RuntimeConfig {
    std::vector<std::string> eal_args;   // complete EAL argument list (lcores included)
    std::vector<unsigned> worker_lcores; // one packet loop each; worker i is the i-th
    uint32_t mbuf_pool_size = 65535;     // mbufs in the one pool
    std::vector<RuntimePort> ports;
    uint32_t conn_table_size = 1048576;  // entries per worker
    std::chrono::milliseconds tcp_established{3600000};
    std::chrono::milliseconds tcp_transitory{30000};
    std::chrono::milliseconds udp{60000};
    bool exception_path = false;         // one TAP per port for non-VIP traffic
    std::string exception_tap = "sluice0";  // first port's TAP; port i > 0 gets the name + "-i"
};

// Counters summed over the workers, and each worker's own.
struct RuntimeStats {
    sluice_stats totals{};
    std::vector<sluice_counter> backends;  // by backend id, SLUICE_MAX_BACKENDS entries
    struct Worker {
        uint32_t index = 0;                // worker i: RX queue i of every port
        unsigned lcore = 0;
        sluice_stats stats{};
        double busy_seconds = 0;           // in loop iterations that moved packets (WorkerLoop::busy_tsc)
    };
    std::vector<Worker> workers;           // the polling ones, in worker order
};

class Runtime {
public:
    // EAL, pool, ports, TAPs and the neighbour manager (with no targets
    // yet), in that order; no worker runs yet. Each port gets one RX queue
    // per worker (unless configured) and one TX queue per worker plus one
    // for the control thread (ARP/ND, the kernel's frames). Fails with the
    // first step's reason; what was set up is torn down again.
    // Main thread only, once per process (the EAL's rule).
    static Result<std::unique_ptr<Runtime>> create(const RuntimeConfig& config);

    // Stops everything still running, then releases ports, pool and EAL.
    ~Runtime();

    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Ports as started (DPDK port id, MAC, MTU), in config order.
    const std::vector<Port>& ports() const { return ports_; }
    // The TX queue reserved for the control thread on every port.
    uint16_t control_tx_queue() const { return static_cast<uint16_t>(worker_lcores_.size()); }
    rte_mempool* pool() const { return pool_; }
    // Whether TAPs take exception packets (the snapshot's exception switch
    // must be off without them).
    bool exception_available() const { return exception_ != nullptr; }

    // Control thread, until stop(): what to answer ARP/ND for and what to
    // resolve.
    NeighborManager& neighbors() { return *neighbors_; }
    const NeighborManager& neighbors() const { return *neighbors_; }

    // Control thread, every few milliseconds: the kernel's frames out of
    // the NICs, then ARP/ND (answers, learning, probes). `now_ns` is
    // monotonic nanoseconds.
    void poll_control(uint64_t now_ns);

    // Launches the worker lcores with `initial` as the snapshot in force and
    // returns once every worker has its connection table and is polling.
    // Its FilterSet (if any) must be built for workers() workers.
    // Control thread, once.
    Result<void> start_workers(std::unique_ptr<const Snapshot> initial);

    // Makes `next` current; returns after the previous snapshot (forwarding
    // state and filters) is freed, once every worker passed a quiescent
    // state. Until then both exist: EAL memory must hold two snapshots'
    // filter tables (see filter/acl.h for their size). Control thread.
    void publish(std::unique_ptr<const Snapshot> next);

    // Number of worker lcores: what FilterSets must be built for.
    uint32_t workers() const { return static_cast<uint32_t>(worker_lcores_.size()); }

    // Counters summed over workers (racy per field, see core::Worker). Any
    // thread while the workers run or after stop().
    RuntimeStats stats() const;
    uint64_t publications() const;
    // The backend a worker's live connection entry pins `key` to, from the
    // first worker that has one (RSS puts a flow on one). Any thread, racy:
    // see ConnectionTable::peek_copy.
    std::optional<uint32_t> connection_backend(const sluice_flow_key& key) const;
    // Each polling worker's connection table, sampled (core/conn_census.h),
    // in worker order: (worker index, census). Any thread, racy like
    // connection_backend().
    std::vector<std::pair<uint32_t, core::ConnCensus>> connection_census() const;
    // Live connection entries per backend id over every polling worker's
    // table (SLUICE_MAX_BACKENDS counts; a walk of every table). Any
    // thread, racy like connection_backend().
    std::vector<uint64_t> connections_by_backend() const;

    // Workers leave their loop and go offline; ports stop. Idempotent.
    // Control thread.
    void stop();

private:
    struct WorkerSlot;

    Runtime() = default;
    static int worker_main(void* arg);

    RuntimeConfig config_;
    std::vector<unsigned> worker_lcores_;
    std::unique_ptr<Eal> eal_;
    rte_mempool* pool_ = nullptr;
    std::vector<Port> ports_;
    std::unique_ptr<ExceptionPath> exception_;
    std::unique_ptr<NeighborManager> neighbors_;
    std::unique_ptr<RcuPublisher<Snapshot>> publisher_;
    std::vector<std::unique_ptr<WorkerSlot>> workers_;
    core::ConnectionTable::Config conn_config_{};
    std::atomic<bool> stop_{false};
    bool launched_ = false;
    bool ports_stopped_ = false;
};

}  // namespace sluice::dpdk
