// Test rig for sluice's DPDK runtime: ring ethdevs whose RX and TX rings the
// test reaches directly, and the real run_worker_loop with SluicePipeline
// on a worker lcore. Shared by the fixture-table and republish tests.
#pragma once

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/dpdk/sluice_pipeline.h"
#include "dataplane/dpdk/worker_loop.h"

namespace sluice::testing {

// A started ring ethdev: the test enqueues into `rx` what the port
// "receives" and dequeues from `tx` what the worker sent.
struct RingPort {
    rte_ring* rx = nullptr;
    rte_ring* tx = nullptr;
    uint16_t port = 0;
};

// Main thread, after EAL init. `name` must be unique in the process. Rings
// hold ring_size - 1 packets. Nullopt (with a test failure) on error.
inline std::optional<RingPort> make_ring_port(const std::string& name, rte_mempool* pool, unsigned ring_size)
{
    RingPort p;
    p.rx = rte_ring_create((name + "_rx").c_str(), ring_size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    p.tx = rte_ring_create((name + "_tx").c_str(), ring_size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (p.rx == nullptr || p.tx == nullptr) {
        ADD_FAILURE() << name << ": rte_ring_create failed";
        return std::nullopt;
    }
    const int port = rte_eth_from_rings(name.c_str(), &p.rx, 1, &p.tx, 1, 0);
    if (port < 0) {
        ADD_FAILURE() << name << ": rte_eth_from_rings failed";
        return std::nullopt;
    }
    p.port = static_cast<uint16_t>(port);
    rte_eth_conf conf{};
    if (rte_eth_dev_configure(p.port, 1, 1, &conf) != 0 ||
        rte_eth_rx_queue_setup(p.port, 0, 256, 0, nullptr, pool) != 0 ||
        rte_eth_tx_queue_setup(p.port, 0, 256, 0, nullptr) != 0 || rte_eth_dev_start(p.port) != 0) {
        ADD_FAILURE() << name << ": cannot configure and start the ring ethdev";
        return std::nullopt;
    }
    return p;
}

// Everything waiting in `ring` (a TX ring), in order.
inline std::vector<rte_mbuf*> drain_ring(rte_ring* ring)
{
    std::vector<rte_mbuf*> out;
    rte_mbuf* m = nullptr;
    while (rte_ring_sc_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) out.push_back(m);
    return out;
}

// run_worker_loop with a SluicePipeline (bare state, or the runtime's
// FilteredSluicePipeline) on the first worker lcore, from start() to
// stop(). Main thread only; one at a time per process.
template <class Pipeline>
class WorkerLcore {
public:
    WorkerLcore(dpdk::WorkerLoop& loop, Pipeline& pipeline) : loop_(loop), pipeline_(pipeline) {}
    ~WorkerLcore() { stop(); }

    bool start()
    {
        lcore_ = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
        if (lcore_ >= RTE_MAX_LCORE) {
            ADD_FAILURE() << "no worker lcore: the EAL needs -l 0-1";
            return false;
        }
        stop_.store(false);
        running_ = rte_eal_remote_launch(&WorkerLcore::entry, this, lcore_) == 0;
        EXPECT_TRUE(running_) << "rte_eal_remote_launch failed";
        return running_;
    }

    // Waits (at most `timeout_ms`) until every ring in `rx_rings` is empty:
    // the worker has taken every packet, and the iteration that took the
    // last ones finishes before the loop next checks its stop flag.
    bool wait_rx_empty(const std::vector<rte_ring*>& rx_rings, unsigned timeout_ms = 10'000)
    {
        for (unsigned waited = 0; waited < timeout_ms; ++waited) {
            bool empty = true;
            for (rte_ring* r : rx_rings) empty = empty && rte_ring_count(r) == 0;
            if (empty) return true;
            rte_delay_ms(1);
        }
        ADD_FAILURE() << "worker did not drain its RX rings within " << timeout_ms << " ms";
        return false;
    }

    // Stops the loop after its current iteration and joins the lcore; the
    // worker's stats and the TX rings are then complete and safe to read.
    void stop()
    {
        if (!running_) return;
        stop_.store(true);
        EXPECT_EQ(rte_eal_wait_lcore(lcore_), 0);
        running_ = false;
    }

private:
    static int entry(void* arg)
    {
        auto* self = static_cast<WorkerLcore*>(arg);
        self->pipeline_.online();
        dpdk::run_worker_loop(self->loop_, self->pipeline_, self->stop_);
        self->pipeline_.offline();
        return 0;
    }

    dpdk::WorkerLoop& loop_;
    Pipeline& pipeline_;
    std::atomic<bool> stop_{false};
    unsigned lcore_ = RTE_MAX_LCORE;
    bool running_ = false;
};

}  // namespace sluice::testing
