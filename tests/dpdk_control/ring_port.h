// Ring ethdevs standing in for NICs and TAPs in the control-path tests:
// one RX ring the test fills, and one TX ring per TX queue the test reads,
// so a test sees which queue (worker or control thread) sent a frame.
#pragma once

#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstring>
#include <string>
#include <vector>

namespace sluice::testing {

using Frame = std::vector<uint8_t>;

struct RingPort {
    rte_ring* rx = nullptr;
    std::vector<rte_ring*> tx;  // tx[q]: what TX queue q sent
    uint16_t port = 0;
};

// A started ring ethdev with one RX queue and `tx_queues` TX queues.
inline RingPort make_ring_port(const std::string& name, rte_mempool* pool, uint16_t tx_queues)
{
    RingPort p;
    p.rx = rte_ring_create((name + "_rx").c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    EXPECT_NE(p.rx, nullptr);
    for (uint16_t q = 0; q < tx_queues; ++q) {
        p.tx.push_back(rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), 1024, 0,
                                       RING_F_SP_ENQ | RING_F_SC_DEQ));
        EXPECT_NE(p.tx.back(), nullptr);
    }
    const int port = rte_eth_from_rings(name.c_str(), &p.rx, 1, p.tx.data(), tx_queues, 0);
    EXPECT_GE(port, 0);
    p.port = static_cast<uint16_t>(port);
    rte_eth_conf conf{};
    EXPECT_EQ(rte_eth_dev_configure(p.port, 1, tx_queues, &conf), 0);
    EXPECT_EQ(rte_eth_rx_queue_setup(p.port, 0, 256, 0, nullptr, pool), 0);
    for (uint16_t q = 0; q < tx_queues; ++q) EXPECT_EQ(rte_eth_tx_queue_setup(p.port, q, 256, 0, nullptr), 0);
    EXPECT_EQ(rte_eth_dev_start(p.port), 0);
    return p;
}

// An mbuf holding `f`, as a PMD would deliver it on `port`.
inline rte_mbuf* mbuf_of(rte_mempool* pool, const Frame& f, uint16_t port)
{
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    EXPECT_NE(m, nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
    m->port = port;
    return m;
}

// Takes every frame out of `r` (freeing the mbufs) in order.
inline std::vector<Frame> drain(rte_ring* r)
{
    std::vector<Frame> out;
    void* obj = nullptr;
    while (rte_ring_dequeue(r, &obj) == 0) {
        auto* m = static_cast<rte_mbuf*>(obj);
        const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
        out.emplace_back(p, p + rte_pktmbuf_data_len(m));
        rte_pktmbuf_free(m);
    }
    return out;
}

inline void drain_all(const RingPort& p)
{
    drain(p.rx);
    for (rte_ring* r : p.tx) drain(r);
}

}  // namespace sluice::testing
