// The worker loop's accounting on real mbufs over ring ethdevs: every
// packet received is either sent or counted as a drop, including when the
// TX queue is full.
#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstring>
#include <string>

#include "dataplane/dpdk/worker_loop.h"

namespace {

using sluice::dpdk::WorkerLoop;

struct RingPort {
    rte_ring* rx = nullptr;
    rte_ring* tx = nullptr;
    uint16_t port = 0;
};

// A ring ethdev whose TX ring holds at most `tx_size - 1` packets.
RingPort make_ring_port(const std::string& name, rte_mempool* pool, unsigned tx_size)
{
    RingPort p;
    p.rx = rte_ring_create((name + "_rx").c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    p.tx = rte_ring_create((name + "_tx").c_str(), tx_size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    EXPECT_NE(p.rx, nullptr);
    EXPECT_NE(p.tx, nullptr);
    const int port = rte_eth_from_rings(name.c_str(), &p.rx, 1, &p.tx, 1, 0);
    EXPECT_GE(port, 0);
    p.port = static_cast<uint16_t>(port);
    rte_eth_conf conf{};
    EXPECT_EQ(rte_eth_dev_configure(p.port, 1, 1, &conf), 0);
    EXPECT_EQ(rte_eth_rx_queue_setup(p.port, 0, 256, 0, nullptr, pool), 0);
    EXPECT_EQ(rte_eth_tx_queue_setup(p.port, 0, 256, 0, nullptr), 0);
    EXPECT_EQ(rte_eth_dev_start(p.port), 0);
    return p;
}

template <typename Pipeline>
struct LoopArgs {
    WorkerLoop* loop;
    Pipeline* pipeline;
    std::atomic<bool>* stop;
};

template <typename Pipeline>
int loop_entry(void* arg)
{
    auto* a = static_cast<LoopArgs<Pipeline>*>(arg);
    sluice::dpdk::run_worker_loop(*a->loop, *a->pipeline, *a->stop);
    return 0;
}

// Puts `n` zeroed 60-byte frames on the port's RX ring.
void fill_rx(const RingPort& rp, rte_mempool* pool, unsigned n)
{
    for (unsigned i = 0; i < n; ++i) {
        rte_mbuf* m = rte_pktmbuf_alloc(pool);
        ASSERT_NE(m, nullptr);
        std::memset(rte_pktmbuf_mtod(m, void*), 0, 60);
        m->data_len = m->pkt_len = 60;
        ASSERT_EQ(rte_ring_enqueue(rp.rx, m), 0);
    }
}

// Runs `pipeline` in the real worker loop on the second lcore until it has
// taken every packet from the RX ring (bounded: 2 s), then stops it.
template <typename Pipeline>
void run_until_drained(const RingPort& rp, WorkerLoop& loop, Pipeline& pipeline)
{
    loop.rx_count = 1;
    loop.rx[0] = {rp.port, 0};
    std::atomic<bool> stop{false};
    LoopArgs<Pipeline> args{&loop, &pipeline, &stop};
    const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    ASSERT_EQ(rte_eal_remote_launch(loop_entry<Pipeline>, &args, lcore), 0);
    for (int spin = 0; spin < 2000 && rte_ring_count(rp.rx) != 0; ++spin) {
        rte_delay_ms(1);
    }
    rte_delay_ms(10);
    stop.store(true);
    ASSERT_EQ(rte_eal_wait_lcore(lcore), 0);
}

// Frees what the worker left on the TX ring.
void drain_tx(const RingPort& rp)
{
    rte_mbuf* m = nullptr;
    while (rte_ring_dequeue(rp.tx, reinterpret_cast<void**>(&m)) == 0) {
        rte_pktmbuf_free(m);
    }
}

// With a TX ring smaller than the offered load, the loop frees what it
// could not send and moves it from tx to the TX_FULL drop counter: rx =
// tx + drops, and tx equals what actually reached the TX ring.
TEST(WorkerLoop, PartialTxIsFreedAndCounted)
{
    rte_mempool* pool = rte_pktmbuf_pool_create("wl_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool, nullptr);
    RingPort rp = make_ring_port("wl_ring", pool, 64);  // holds 63

    constexpr unsigned kPackets = 500;
    ASSERT_NO_FATAL_FAILURE(fill_rx(rp, pool, kPackets));
    sluice_stats stats{};
    WorkerLoop loop;
    loop.stats = &stats;
    sluice::dpdk::MacSwapPipeline pipeline(&stats);
    ASSERT_NO_FATAL_FAILURE(run_until_drained(rp, loop, pipeline));

    const unsigned in_tx_ring = rte_ring_count(rp.tx);
    EXPECT_EQ(stats.rx_packets, kPackets);
    EXPECT_EQ(stats.tx_packets, in_tx_ring);
    EXPECT_EQ(in_tx_ring, 63u);
    EXPECT_EQ(stats.drops[SLUICE_DROP_TX_FULL], kPackets - in_tx_ring);
    EXPECT_GT(loop.busy_iterations, 0u);

    // Every mbuf is either in the TX ring or back in the pool: none leaked.
    EXPECT_EQ(rte_mempool_avail_count(pool) + in_tx_ring, 4095u);
    drain_tx(rp);
    EXPECT_EQ(rte_mempool_avail_count(pool), 4095u);
}

// Stands in for sluice's pipeline answering every packet with an ICMP
// "fragmentation needed" built in place: counted as an MTU_EXCEEDED drop,
// sent back out of the arrival port.
class IcmpReplyPipeline {
public:
    explicit IcmpReplyPipeline(sluice_stats* stats) : stats_(stats) {}
    void begin_iteration() {}
    void end_iteration() {}
    void process(rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint16_t* dest)
    {
        (void)pkts;
        for (uint16_t i = 0; i < n; ++i) {
            dest[i] = static_cast<uint16_t>(in_port | sluice::dpdk::kDestCountedFlag);
        }
        stats_->rx_packets += n;
        stats_->drops[SLUICE_DROP_MTU_EXCEEDED] += n;
    }

private:
    sluice_stats* stats_;
};

// ICMP replies that meet a full TX queue are freed without touching
// tx_packets (which never counted them) and without a second drop: each
// packet stays exactly one MTU_EXCEEDED drop, and none leaks.
TEST(WorkerLoop, RefusedIcmpRepliesStayOneDrop)
{
    rte_mempool* pool = rte_pktmbuf_pool_create("wl_reply_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool, nullptr);
    RingPort rp = make_ring_port("wl_reply_ring", pool, 16);  // holds 15
    constexpr unsigned kPackets = 100;
    ASSERT_NO_FATAL_FAILURE(fill_rx(rp, pool, kPackets));
    sluice_stats stats{};
    WorkerLoop loop;
    loop.stats = &stats;
    IcmpReplyPipeline pipeline(&stats);
    ASSERT_NO_FATAL_FAILURE(run_until_drained(rp, loop, pipeline));

    EXPECT_EQ(rte_ring_count(rp.tx), 15u);
    EXPECT_EQ(stats.rx_packets, kPackets);
    EXPECT_EQ(stats.tx_packets, 0u);
    EXPECT_EQ(stats.drops[SLUICE_DROP_MTU_EXCEEDED], kPackets);
    EXPECT_EQ(stats.drops[SLUICE_DROP_TX_FULL], 0u);
    drain_tx(rp);
    EXPECT_EQ(rte_mempool_avail_count(pool), 1023u);
}

}  // namespace
