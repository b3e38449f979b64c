// Forwarding-state republication under traffic: the test feeds packets of
// many flows through a ring ethdev to the real worker loop with
// SluicePipeline (on a worker lcore) and publishes thousands of states
// (rings alternating, a backend removed, a state whose ring is empty and
// half the backends gone). Checks that no packet and no mbuf is lost, and
// that the connection table keeps every flow on a backend that stayed.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <arpa/inet.h>

#include <array>
#include <chrono>
#include <cstring>
#include <numeric>
#include <vector>

#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/sluice_pipeline.h"
#include "sluice_rig.h"

extern "C" {
#include "abi/wire.h"
}

namespace sluice::testing {
namespace {

using Publisher = dpdk::RcuPublisher<core::ForwardingState>;

constexpr unsigned kPoolSize = 4095;  // no per-lcore cache: exact avail count
constexpr uint32_t kBackends = 8;
constexpr uint32_t kRingSize = 251;
constexpr uint32_t kFlows = 2048;
constexpr unsigned kPublishes = 4000;
constexpr unsigned kMinPublishes = 500;       // if kPublishTime runs out first (loaded machine)
constexpr auto kPublishTime = std::chrono::seconds(20);
constexpr unsigned kBatch = 256;  // packets fed before each publication
constexpr uint16_t kFrameLen = 60;
constexpr uint32_t kVip = 0xc000020a;  // 192.0.2.10
constexpr uint16_t kVipPort = 80;

// The cycle of states the control thread publishes, and which backends
// each leaves valid. Backends 0-3 are valid in all of them ("stable").
enum StateKind : unsigned {
    kAllRingA,      // every backend, ring A
    kAllRingB,      // every backend, another slot assignment
    kWithout5,      // backend 5 removed (a hole in the ids), ring without it
    kEmptyRing,     // backends 4-7 removed, ring all "no backend": NO_BACKEND
    kStateKinds,
};

bool valid_in(StateKind k, uint32_t backend)
{
    switch (k) {
    case kAllRingA:
    case kAllRingB: return true;
    case kWithout5: return backend != 5;
    case kEmptyRing: return backend < 4;
    case kStateKinds: break;
    }
    return false;
}

bool stable(uint32_t backend)
{
    for (unsigned k = 0; k < kStateKinds; ++k)
        if (!valid_in(static_cast<StateKind>(k), backend)) return false;
    return true;
}

uint32_t backend_addr(uint32_t id) { return 0x0a01000a + id; }  // 10.1.0.10 + id, host order

std::unique_ptr<const core::ForwardingState> build(StateKind kind)
{
    core::ForwardingStateBuilder b;
    sluice_addr local{};
    local.v4 = htonl(0x0a000001);
    b.set_local_ipv4(local);
    core::PortConfig port{};
    const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x10};
    const uint8_t nexthop[6] = {0x02, 0, 0, 0, 0, 0xfe};
    std::memcpy(port.mac, mac, 6);
    std::memcpy(port.nexthop_mac, nexthop, 6);
    port.mtu = 1500;
    port.egress_port = 0;
    b.add_port(0, port);
    std::vector<uint32_t> present;
    for (uint32_t id = 0; id < kBackends; ++id) {
        if (!valid_in(kind, id)) continue;
        sluice_backend be{};
        be.addr.v4 = htonl(backend_addr(id));
        be.family = SLUICE_FAMILY_IPV4;
        be.flags = SLUICE_BACKEND_F_VALID;
        b.add_backend(id, be);
        present.push_back(id);
    }
    core::ForwardingStateBuilder::VipSpec vip{};
    vip.key.addr.v4 = htonl(kVip);
    vip.key.port = htons(kVipPort);
    vip.key.proto = SLUICE_IPPROTO_TCP;
    vip.key.family = SLUICE_FAMILY_IPV4;
    vip.vip_id = 0;
    vip.forwarding = SLUICE_FWD_IPIP;
    std::vector<uint32_t> ring;
    for (uint32_t slot = 0; slot < kRingSize; ++slot) {
        const auto n = static_cast<uint32_t>(present.size());
        switch (kind) {
        case kAllRingB: ring.push_back(present[(slot * 3 + 1) % n]); break;
        case kEmptyRing: ring.push_back(SLUICE_BACKEND_NONE); break;
        default: ring.push_back(present[slot % n]); break;
        }
    }
    vip.ring = std::move(ring);
    b.add_vip(std::move(vip));
    auto st = b.build();
    if (!st) {
        ADD_FAILURE() << st.error();
        return nullptr;
    }
    return std::move(*st);
}

// A TCP ACK of flow `flow` (client 11.0.x.y, port 10000 + flow) to the VIP.
// Headers are built aside and copied: in the frame the IP header is only
// 2-byte aligned (UBSan rightly refuses a direct struct store there).
void write_packet(rte_mbuf* m, uint32_t flow)
{
    auto* p = rte_pktmbuf_mtod(m, uint8_t*);
    sluice_eth_hdr eth{};
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x10};
    const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x01};
    std::memcpy(eth.dst, dst, 6);
    std::memcpy(eth.src, src, 6);
    eth.ethertype = SLUICE_HTONS(SLUICE_ETH_P_IPV4);
    sluice_ipv4_hdr ip{};
    ip.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
    ip.total_len = SLUICE_HTONS(kFrameLen - sizeof(sluice_eth_hdr));
    ip.ttl = 64;
    ip.protocol = SLUICE_IPPROTO_TCP;
    ip.saddr = htonl(0x0b000000u | flow);
    ip.daddr = htonl(kVip);
    sluice_tcp_hdr tcp{};
    tcp.sport = htons(static_cast<uint16_t>(10000 + flow));
    tcp.dport = htons(kVipPort);
    tcp.doff_res = 5 << 4;
    tcp.flags = SLUICE_TCP_ACK;
    std::memset(p, 0, kFrameLen);
    std::memcpy(p, &eth, sizeof(eth));
    std::memcpy(p + sizeof(eth), &ip, sizeof(ip));
    std::memcpy(p + sizeof(eth) + sizeof(ip), &tcp, sizeof(tcp));
    m->data_len = kFrameLen;
    m->pkt_len = kFrameLen;
}

// What came back on the TX ring.
struct Observed {
    uint64_t sent = 0;
    uint64_t returned = 0;
    uint64_t malformed = 0;        // outputs that are not IPIP to a known backend
    uint64_t moves = 0;            // a flow seen on a new backend
    uint64_t moves_off_stable = 0; // ... while its previous one was valid in every state
    std::array<uint32_t, kFlows> backend_of{};  // current backend + 1, 0 = none yet
};

// One output frame: IPIP from the local address to a backend, inner source
// naming the flow. Records the flow's backend and whether it moved.
void observe(Observed& o, const rte_mbuf* m)
{
    const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
    constexpr size_t kOuter = sizeof(sluice_eth_hdr);
    constexpr size_t kInner = kOuter + sizeof(sluice_ipv4_hdr);
    if (m->data_len != kFrameLen + sizeof(sluice_ipv4_hdr)) {
        ++o.malformed;
        return;
    }
    sluice_ipv4_hdr outer;
    sluice_ipv4_hdr inner;
    std::memcpy(&outer, p + kOuter, sizeof(outer));
    std::memcpy(&inner, p + kInner, sizeof(inner));
    const uint32_t backend = ntohl(outer.daddr) - backend_addr(0);
    const uint32_t flow = ntohl(inner.saddr) & 0xffffff;
    if (outer.protocol != SLUICE_IPPROTO_IPIP || ntohl(outer.saddr) != 0x0a000001 || backend >= kBackends ||
        flow >= kFlows) {
        ++o.malformed;
        return;
    }
    uint32_t& current = o.backend_of[flow];
    if (current != 0 && current != backend + 1) {
        ++o.moves;
        if (stable(current - 1)) ++o.moves_off_stable;
    }
    current = backend + 1;
}

// Generator step: drains what the worker sent, then feeds up to `n`
// packets (round-robin over kFlows flows) into its RX ring. Returns the
// number fed.
unsigned pump(const RingPort& port, rte_mempool* pool, Observed& o, unsigned n)
{
    rte_mbuf* burst[dpdk::kBurstSize];
    unsigned got;
    while ((got = rte_ring_sc_dequeue_burst(port.tx, reinterpret_cast<void**>(burst), dpdk::kBurstSize, nullptr)) !=
           0) {
        for (unsigned i = 0; i < got; ++i) observe(o, burst[i]);
        o.returned += got;
        rte_pktmbuf_free_bulk(burst, got);
    }
    unsigned fed = 0;
    while (fed < n) {
        const unsigned want = std::min<unsigned>(dpdk::kBurstSize, n - fed);
        if (rte_pktmbuf_alloc_bulk(pool, burst, want) != 0) break;
        for (unsigned i = 0; i < want; ++i) write_packet(burst[i], static_cast<uint32_t>((o.sent + i) % kFlows));
        const unsigned q = rte_ring_sp_enqueue_burst(port.rx, reinterpret_cast<void**>(burst), want, nullptr);
        rte_pktmbuf_free_bulk(&burst[q], want - q);
        o.sent += q;
        fed += q;
        if (q < want) break;  // RX ring full: the worker is behind
    }
    return fed;
}

uint64_t sum_drops(const sluice_stats& s)
{
    return std::accumulate(std::begin(s.drops), std::end(s.drops), uint64_t{0});
}

// Thousands of publications while packets flow: packets in = packets out +
// counted drops exactly, every mbuf back in the pool, drops only where a
// state had no backend for the flow, and no flow ever left a backend that
// was valid in every state (the connection table pins it across rings).
TEST(Republish, UnderTrafficLosesNothingAndKeepsEstablishedFlows)
{
    rte_mempool* pool = rte_pktmbuf_pool_create("rp_pool", kPoolSize, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool, nullptr);
    auto port = make_ring_port("rp_port", pool, 1024);
    ASSERT_TRUE(port.has_value());

    // Timeouts far beyond the run: only a backend's removal may move a flow.
    core::Worker worker({1u << 16, UINT64_MAX / 4, UINT64_MAX / 4, UINT64_MAX / 4}, rte_get_tsc_hz());
    auto publisher = Publisher::create(1, build(kAllRingA));
    ASSERT_TRUE(publisher.ok()) << publisher.error();
    dpdk::SluicePipeline pipeline(worker, **publisher, 0);
    auto loop = std::make_unique<dpdk::WorkerLoop>();
    loop->stats = &worker.stats;
    loop->rx[loop->rx_count++] = {port->port, 0};
    WorkerLcore lcore(*loop, pipeline);
    ASSERT_TRUE(lcore.start());

    // One thread generates and publishes in turn, so every publication has
    // a batch of packets in flight before it whatever the scheduler does
    // (a separate generator thread shares core 0 with the publisher and
    // starves while publish() spins). publish() returns only after the
    // worker passed an iteration, usually one that took packets.
    Observed o;
    const auto rx_now = [&] { return __atomic_load_n(&worker.stats.rx_packets, __ATOMIC_RELAXED); };
    unsigned under_traffic = 0;
    unsigned published = 0;
    uint64_t fed_before_publish = 0;
    const auto deadline = std::chrono::steady_clock::now() + kPublishTime;
    for (unsigned g = 1; g <= kPublishes && std::chrono::steady_clock::now() < deadline; ++g) {
        auto st = build(static_cast<StateKind>(g % kStateKinds));
        ASSERT_NE(st, nullptr);
        // Packets are in flight when this batch went in, or when the RX ring
        // was still full from the last one (the worker was preempted).
        const unsigned fed = pump(*port, pool, o, kBatch);
        fed_before_publish += (fed != 0 || rte_ring_count(port->rx) != 0) ? 1 : 0;
        const uint64_t before = rx_now();
        (*publisher)->publish(std::move(st));
        under_traffic += rx_now() != before ? 1 : 0;
        ++published;
    }
    EXPECT_TRUE(lcore.wait_rx_empty({port->rx}));
    lcore.stop();
    pump(*port, pool, o, 0);

    EXPECT_EQ((*publisher)->generation(), published);
    EXPECT_GE(published, kMinPublishes) << "machine too loaded to publish in " << kPublishTime.count() << " s";
    EXPECT_EQ(fed_before_publish, published) << "a publication without packets in flight before it";
    EXPECT_GE(2 * under_traffic, published) << "most publications should overlap the worker taking packets";
    const sluice_stats& s = worker.stats;
    // Every packet in came out or is one counted drop.
    EXPECT_EQ(s.rx_packets, o.sent);
    EXPECT_EQ(s.tx_packets, o.returned);
    EXPECT_EQ(o.sent, o.returned + sum_drops(s));
    EXPECT_EQ(s.exception_packets + s.control_packets, 0u);
    // The empty-ring state removed backends 4-7 with nothing to replace them.
    EXPECT_GT(s.drops[SLUICE_DROP_NO_BACKEND], 0u);
    EXPECT_EQ(sum_drops(s), s.drops[SLUICE_DROP_NO_BACKEND] + s.drops[SLUICE_DROP_TX_FULL]);
    EXPECT_EQ(o.malformed, 0u);
    // Flows on removed backends moved (so moves are observable) ...
    EXPECT_GT(o.moves, 0u);
    // ... and none left a backend that stayed valid throughout.
    EXPECT_EQ(o.moves_off_stable, 0u);
    EXPECT_EQ(rte_mempool_avail_count(pool), kPoolSize) << "mbufs leaked";
    std::printf("republish: %lu packets, %lu returned, %lu no_backend, %lu tx_full, %lu moves, %u publications"
                " (%u with packets between)\n",
                static_cast<unsigned long>(o.sent), static_cast<unsigned long>(o.returned),
                static_cast<unsigned long>(s.drops[SLUICE_DROP_NO_BACKEND]),
                static_cast<unsigned long>(s.drops[SLUICE_DROP_TX_FULL]), static_cast<unsigned long>(o.moves),
                published, under_traffic);
}

}  // namespace
}  // namespace sluice::testing
