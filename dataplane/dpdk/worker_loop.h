// The per-lcore poll loop shared by every pipeline (sluice's, and the
// MAC-swap baseline of the benchmarks): rx burst → pipeline → tx burst per
// output port, with what a partial tx could not send freed and counted.
// Besides ports, a packet may go to the host kernel (the TAP paired with the
// port it arrived on) or to the control thread (ARP/ND, over a per-worker
// single-producer/single-consumer ring). Modelled on DPDK's l3fwd main loop
// (STYLE.md).
#pragma once

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>

extern "C" {
#include "abi/tables.h"
}

namespace sluice::dpdk {

inline constexpr uint16_t kBurstSize = 32;
inline constexpr uint16_t kMaxRxQueuesPerWorker = 8;
// Pipeline destinations besides a port id.
inline constexpr uint16_t kDestDrop = 0xFFFF;       // counted by the pipeline, freed by the loop
inline constexpr uint16_t kDestException = 0xFFFE;  // to the exception (TAP) port of the arrival port
inline constexpr uint16_t kDestControl = 0xFFFD;    // to the control thread (ARP/ND) via control_ring
// OR'ed into a port: the packet is already counted as a drop (the ICMP
// "fragmentation needed"/"packet too big" built in place of an oversized
// packet, counted as MTU_EXCEEDED), so a full TX queue frees it without
// touching tx_packets, which never counted it.
inline constexpr uint16_t kDestCountedFlag = 0x4000;
static_assert(RTE_MAX_ETHPORTS < kDestCountedFlag, "port ids must not reach the flag bit");

struct RxQueueRef {
    uint16_t port = 0;
    uint16_t queue = 0;
    // Where kDestException packets received here go: the TAP paired with
    // `port` (sent on the worker's tx_queue), or kDestDrop when the
    // exception path is off (they are then counted as EXCEPTION_FULL; the
    // core normally drops them itself as NOT_FOR_VIP in that case).
    uint16_t exception_port = kDestDrop;
};

// Everything one worker lcore touches, written only by that lcore
// (stats included); aligned so no two workers share a cache line.
struct alignas(RTE_CACHE_LINE_SIZE) WorkerLoop {
    uint32_t worker_id = 0;
    uint16_t tx_queue = 0;                  // this worker's TX queue on every port and TAP
    uint16_t rx_count = 0;
    RxQueueRef rx[kMaxRxQueuesPerWorker];
    // ARP/ND to the control thread: a ring created RING_F_SP_ENQ |
    // RING_F_SC_DEQ, this worker its only producer. Each mbuf's `port` is
    // set to the arrival port (not every PMD sets it). nullptr: such
    // packets are freed and counted as CONTROL_FULL.
    rte_ring* control_ring = nullptr;
    sluice_stats* stats = nullptr;          // the pipeline's per-worker counters
    uint64_t busy_tsc = 0;                  // TSC cycles of iterations that moved packets
    uint64_t busy_iterations = 0;           // iterations that moved packets

    // Per-burst output staging, indexed by port id.
    uint16_t out_count[RTE_MAX_ETHPORTS] = {};
    uint16_t touched[RTE_MAX_ETHPORTS] = {};
    rte_mbuf* out[RTE_MAX_ETHPORTS][kBurstSize];
};

// Sends the staged packets of one port; frees and counts what the queue
// did not take. The pipeline counted them as sent; move them to TX_FULL so
// every packet stays counted exactly once.
static inline void flush_port(WorkerLoop& w, uint16_t port)
{
    const uint16_t n = w.out_count[port];
    w.out_count[port] = 0;
    const uint16_t sent = rte_eth_tx_burst(port, w.tx_queue, w.out[port], n);
    if (unlikely(sent < n)) {
        const uint16_t unsent = static_cast<uint16_t>(n - sent);
        rte_pktmbuf_free_bulk(&w.out[port][sent], unsent);
        w.stats->tx_packets -= unsent;
        w.stats->drops[SLUICE_DROP_TX_FULL] += unsent;
    }
}

// Hands one burst's exception packets to the kernel. Not staged with the
// port outputs: the TAP has its own counter to correct when it is full.
static inline void send_exceptions(WorkerLoop& w, uint16_t tap_port, rte_mbuf** pkts, uint16_t n)
{
    const uint16_t sent = tap_port < RTE_MAX_ETHPORTS ? rte_eth_tx_burst(tap_port, w.tx_queue, pkts, n) : 0;
    if (unlikely(sent < n)) {
        const uint16_t unsent = static_cast<uint16_t>(n - sent);
        rte_pktmbuf_free_bulk(&pkts[sent], unsent);
        w.stats->exception_packets -= unsent;
        w.stats->drops[SLUICE_DROP_EXCEPTION_FULL] += unsent;
    }
}

// Queues one burst's ARP/ND packets for the control thread.
static inline void send_to_control(WorkerLoop& w, rte_mbuf** pkts, uint16_t n)
{
    const uint16_t sent = w.control_ring != nullptr
                              ? static_cast<uint16_t>(rte_ring_sp_enqueue_burst(
                                    w.control_ring, reinterpret_cast<void* const*>(pkts), n, nullptr))
                              : 0;
    if (unlikely(sent < n)) {
        const uint16_t unsent = static_cast<uint16_t>(n - sent);
        rte_pktmbuf_free_bulk(&pkts[sent], unsent);
        w.stats->control_packets -= unsent;
        w.stats->drops[SLUICE_DROP_CONTROL_FULL] += unsent;
    }
}

// Sends the ICMP replies of one burst (rare: only oversized packets with
// DF). They are counted already, so what the queue refuses is just freed.
static inline void send_counted_replies(WorkerLoop& w, rte_mbuf** pkts, const uint16_t* ports, uint16_t n)
{
    for (uint16_t i = 0; i < n; ++i) {
        if (rte_eth_tx_burst(ports[i], w.tx_queue, &pkts[i], 1) == 0) {
            rte_pktmbuf_free(pkts[i]);
        }
    }
}

// Stages `n` processed packets received on `rxq` by destination and
// transmits them. Packets bound for kDestDrop are freed in bulk (the
// pipeline counted them).
static inline void dispatch_burst(WorkerLoop& w, const RxQueueRef& rxq, rte_mbuf** pkts, const uint16_t* dest,
                                  uint16_t n)
{
    rte_mbuf* dropped[kBurstSize];
    rte_mbuf* exceptions[kBurstSize];
    rte_mbuf* control[kBurstSize];
    rte_mbuf* replies[kBurstSize];
    uint16_t reply_ports[kBurstSize];
    uint16_t n_replies = 0;
    uint16_t n_dropped = 0;
    uint16_t n_exceptions = 0;
    uint16_t n_control = 0;
    uint16_t n_touched = 0;
    for (uint16_t i = 0; i < n; ++i) {
        const uint16_t port = dest[i];
        if (port == kDestException) {
            exceptions[n_exceptions++] = pkts[i];
            continue;
        }
        if (port == kDestControl) {
            pkts[i]->port = rxq.port;
            control[n_control++] = pkts[i];
            continue;
        }
        if (unlikely((port & kDestCountedFlag) != 0 && port != kDestDrop)) {
            reply_ports[n_replies] = static_cast<uint16_t>(port & ~kDestCountedFlag);
            replies[n_replies++] = pkts[i];
            continue;
        }
        if (unlikely(port >= RTE_MAX_ETHPORTS)) {
            dropped[n_dropped++] = pkts[i];
            continue;
        }
        if (w.out_count[port] == 0) {
            w.touched[n_touched++] = port;
        }
        w.out[port][w.out_count[port]++] = pkts[i];
    }
    if (n_dropped != 0) {
        rte_pktmbuf_free_bulk(dropped, n_dropped);
    }
    for (uint16_t t = 0; t < n_touched; ++t) {
        flush_port(w, w.touched[t]);
    }
    if (unlikely(n_replies != 0)) {
        send_counted_replies(w, replies, reply_ports, n_replies);
    }
    if (unlikely(n_exceptions != 0)) {
        send_exceptions(w, rxq.exception_port, exceptions, n_exceptions);
    }
    if (unlikely(n_control != 0)) {
        send_to_control(w, control, n_control);
    }
}

// Pipeline concept:
//   void begin_iteration();   // e.g. load the RCU-published snapshot
//   void process(rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint16_t* dest);
//   void end_iteration();     // e.g. report an RCU quiescent state
// process() must count every packet in w.stats exactly once (tx, exception,
// control or one drop reason) and set dest[i] to a port, kDestException,
// kDestControl or kDestDrop.
template <typename Pipeline>
void run_worker_loop(WorkerLoop& w, Pipeline& pipeline, const std::atomic<bool>& stop)
{
    rte_mbuf* pkts[kBurstSize];
    uint16_t dest[kBurstSize];
    while (!stop.load(std::memory_order_relaxed)) {
        // Busy time (iterations that moved packets) tells operators how
        // loaded a worker is, and benchmarks the worker's own cost per
        // packet: two TSC reads per iteration, under a cycle per packet.
        const uint64_t start = rte_rdtsc();
        uint16_t moved = 0;
        pipeline.begin_iteration();
        for (uint16_t q = 0; q < w.rx_count; ++q) {
            const RxQueueRef rxq = w.rx[q];
            const uint16_t n = rte_eth_rx_burst(rxq.port, rxq.queue, pkts, kBurstSize);
            if (n == 0) {
                continue;
            }
            moved = static_cast<uint16_t>(moved + n);
            pipeline.process(pkts, n, rxq.port, dest);
            dispatch_burst(w, rxq, pkts, dest, n);
        }
        pipeline.end_iteration();
        if (moved != 0) {
            w.busy_tsc += rte_rdtsc() - start;
            ++w.busy_iterations;
        }
    }
}

// The trivial pipeline every benchmark runs beside sluice's: swap MACs and
// send back out of the arrival port. Its cost is the harness's floor.
class MacSwapPipeline {
public:
    explicit MacSwapPipeline(sluice_stats* stats) : stats_(stats) {}
    void begin_iteration() {}
    void end_iteration() {}
    void process(rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint16_t* dest)
    {
        for (uint16_t i = 0; i < n; ++i) {
            auto* eth = rte_pktmbuf_mtod(pkts[i], rte_ether_hdr*);
            const rte_ether_addr tmp = eth->dst_addr;
            eth->dst_addr = eth->src_addr;
            eth->src_addr = tmp;
            dest[i] = in_port;
            stats_->tx_bytes += pkts[i]->pkt_len;
        }
        stats_->rx_packets += n;
        stats_->tx_packets += n;
    }

private:
    sluice_stats* stats_;
};

}  // namespace sluice::dpdk
