// The neighbour manager on ring ethdevs: answers for VIPs, hands what is not
// ours to the kernel port, learns, resolves with retries, refreshes and
// expires, never replaces a static entry; and the worker loop feeding it
// from a real SluicePipeline on another lcore.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <atomic>
#include <memory>

#include "core/forwarding_state.h"
#include "core/pipeline.h"
#include "dataplane/dpdk/neighbor.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/sluice_pipeline.h"
#include "dataplane/dpdk/worker_loop.h"
#include "ring_port.h"

extern "C" {
#include "abi/checksum.h"
}

namespace {

using namespace sluice::dpdk;
using sluice::testing::drain;
using sluice::testing::Frame;
using sluice::testing::mbuf_of;
using sluice::testing::RingPort;

const MacAddress kOurMac = {0x02, 0, 0, 0, 0, 0x01};
const MacAddress kPeerMac = {0x02, 0, 0, 0, 0, 0x99};
const MacAddress kOtherMac = {0x02, 0, 0, 0, 0, 0x77};
const MacAddress kBroadcast = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
const MacAddress kZero = {};

NeighborAddress addr(const char* text) { return *NeighborAddress::parse(text); }

Frame arp(uint16_t op, const MacAddress& eth_dst, const MacAddress& sha, const char* spa, const MacAddress& tha,
          const char* tpa)
{
    Frame f(kMaxNeighborFrameLen + 8);
    f.resize(build_arp(f.data(), op, eth_dst, sha, addr(spa), tha, addr(tpa)));
    return f;
}

Frame mac_dst_of(const Frame& f) { return Frame(f.begin(), f.begin() + 6); }

// One mbuf pool, one NIC and one kernel port for the whole process (ring
// ethdev ids are finite, and the worker-loop state wants ids below 16);
// each test starts with their rings empty. Two TX queues each: 0 is the
// worker's, 1 the control thread's.
struct Env {
    rte_mempool* pool;
    RingPort nic;
    RingPort kernel;
};

Env& env()
{
    static Env e = [] {
        Env x;
        x.pool = rte_pktmbuf_pool_create("ctl_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        x.nic = sluice::testing::make_ring_port("ctl_nic", x.pool, 2);
        x.kernel = sluice::testing::make_ring_port("ctl_kernel", x.pool, 2);
        return x;
    }();
    return e;
}

class NeighborManagerTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_NE(env().pool, nullptr);
        sluice::testing::drain_all(env().nic);
        sluice::testing::drain_all(env().kernel);
    }

    // A manager on the shared ports with lifetime 1000, refresh at 800,
    // retries every 100 time units.
    std::unique_ptr<NeighborManager> make(std::vector<ResolveTarget> resolve = {},
                                          std::vector<std::pair<NeighborAddress, MacAddress>> statics = {})
    {
        NeighborConfig c;
        c.ports.push_back(NeighborPort{env().nic.port, kOurMac, 1, env().kernel.port, 1});
        c.targets.local_addresses = {addr("10.0.0.1"), addr("fd00::1")};
        c.targets.vips = {addr("192.0.2.10"), addr("2001:db8::10")};
        c.targets.resolve = std::move(resolve);
        c.targets.static_entries = std::move(statics);
        c.timers = NeighborTimers{1000, 80, 100};
        c.name = "ctl" + std::to_string(++counter_);
        auto m = NeighborManager::create(std::move(c), env().pool);
        EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error());
        auto mgr = std::move(*m);
        mgr->set_change_callback([this] { ++changes_; });
        return mgr;
    }

    // As a worker would: onto worker 0's control ring.
    void from_worker(NeighborManager& mgr, const Frame& f)
    {
        ASSERT_EQ(rte_ring_sp_enqueue(mgr.control_ring(0), mbuf_of(env().pool, f, env().nic.port)), 0);
    }

    std::vector<Frame> sent_by_control() { return drain(env().nic.tx[1]); }
    std::vector<Frame> to_kernel() { return drain(env().kernel.tx[1]); }

    int changes_ = 0;
    static inline int counter_ = 0;
};

// An NS for a VIP, multicast to its solicited-node group, gets a solicited
// NA from our MAC on the control queue (bytes checked by neighbor_wire_test's
// builder, which matches scapy), and the kernel never sees the NS.
TEST_F(NeighborManagerTest, NeighborSolicitationForVipGetsAdvert)
{
    auto mgr = make();
    Frame ns(kMaxNeighborFrameLen + 8);
    ns.resize(build_neighbor_solicit(ns.data(), kPeerMac, addr("2001:db8::99"), addr("2001:db8::10"), std::nullopt));
    from_worker(*mgr, ns);
    mgr->poll(0);
    Frame na(kMaxNeighborFrameLen + 8);
    na.resize(build_neighbor_advert(na.data(), kOurMac, addr("2001:db8::10"), kPeerMac, addr("2001:db8::99")));
    const auto out = sent_by_control();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], na);
    EXPECT_TRUE(to_kernel().empty());
    EXPECT_EQ(mgr->stats().answered, 1u);
}

// Duplicate address detection for a VIP (NS from ::) is not answered here:
// it announces nothing and has no one to reply to, so the kernel sees it.
// With the exception path off, what is not ours is freed and counted.
TEST_F(NeighborManagerTest, DadAndForeignRequestsAreNotAnswered)
{
    auto mgr = make();
    Frame dad(kMaxNeighborFrameLen + 8);
    dad.resize(build_neighbor_solicit(dad.data(), kPeerMac, addr("::"), addr("2001:db8::10"), std::nullopt));
    dad.resize(dad.size() - 8);  // DAD carries no source link-layer option: drop it, fix the lengths
    dad[14 + 5] = 24;
    dad[14 + 40 + 2] = dad[14 + 40 + 3] = 0;
    // Recompute the ICMPv6 checksum for the shorter message.
    sluice_addr s{}, d{};
    std::memcpy(&s, dad.data() + 14 + 8, 16);
    std::memcpy(&d, dad.data() + 14 + 24, 16);
    const uint16_t c = sluice_csum_finish(
        sluice_csum_add(sluice_pseudo_sum_v6(&s, &d, SLUICE_IPPROTO_ICMPV6, 24), dad.data() + 14 + 40, 24));
    std::memcpy(dad.data() + 14 + 40 + 2, &c, 2);
    ASSERT_TRUE(parse_neighbor_message(dad.data(), static_cast<uint32_t>(dad.size())));
    from_worker(*mgr, dad);
    mgr->poll(0);
    EXPECT_TRUE(sent_by_control().empty());
    EXPECT_EQ(to_kernel(), std::vector<Frame>{dad});

    NeighborConfig c2;
    c2.ports.push_back(NeighborPort{env().nic.port, kOurMac, 1, kNoPort, 0});
    c2.name = "ctl_nokernel";
    auto off = NeighborManager::create(std::move(c2), env().pool);
    ASSERT_TRUE(off.ok());
    from_worker(**off, arp(SLUICE_ARP_OP_REQUEST, kBroadcast, kPeerMac, "10.0.0.99", kZero, "10.0.0.200"));
    (*off)->poll(0);
    EXPECT_TRUE(to_kernel().empty());
    EXPECT_EQ((*off)->stats().no_kernel, 1u);
}

// An ARP reply for an address we resolve is learned, the change callback
// fires once and the generation moves; the reply also reaches the kernel.
TEST_F(NeighborManagerTest, ArpReplyIsLearnedAndPassedToKernel)
{
    auto mgr = make({{addr("10.0.0.50"), env().nic.port}});
    mgr->poll(0);
    const auto probes = sent_by_control();
    ASSERT_EQ(probes.size(), 1u);
    EXPECT_EQ(probes[0], arp(SLUICE_ARP_OP_REQUEST, kBroadcast, kOurMac, "10.0.0.1", kZero, "10.0.0.50"));
    const uint64_t gen = mgr->generation();
    EXPECT_FALSE(mgr->lookup(addr("10.0.0.50")));

    const Frame reply = arp(SLUICE_ARP_OP_REPLY, kOurMac, kPeerMac, "10.0.0.50", kOurMac, "10.0.0.1");
    from_worker(*mgr, reply);
    mgr->poll(10);
    EXPECT_EQ(mgr->lookup(addr("10.0.0.50")), kPeerMac);
    EXPECT_EQ(changes_, 1);
    EXPECT_GT(mgr->generation(), gen);
    const auto k = to_kernel();
    ASSERT_EQ(k.size(), 1u);
    EXPECT_EQ(k[0], reply);
}

// Unresolved addresses are probed (ARP broadcast, NS to the solicited-node
// group) every retry interval and no sooner, and each stops once learned.
TEST_F(NeighborManagerTest, ResolutionRetriesAndStopsOnceLearned)
{
    auto mgr = make({{addr("10.0.0.50"), kAnyPort}, {addr("fd00::50"), env().nic.port}});
    mgr->poll(0);
    EXPECT_EQ(sent_by_control().size(), 2u);
    mgr->poll(50);
    EXPECT_EQ(sent_by_control().size(), 0u);
    mgr->poll(100);
    EXPECT_EQ(sent_by_control().size(), 2u);

    from_worker(*mgr, arp(SLUICE_ARP_OP_REPLY, kOurMac, kPeerMac, "10.0.0.50", kOurMac, "10.0.0.1"));
    mgr->poll(150);
    mgr->poll(200);
    auto out = sent_by_control();
    ASSERT_EQ(out.size(), 1u);  // only the NS is still due
    Frame ns(kMaxNeighborFrameLen + 8);
    ns.resize(build_neighbor_solicit(ns.data(), kOurMac, addr("fd00::1"), addr("fd00::50"), std::nullopt));
    EXPECT_EQ(out[0], ns);

    Frame na(kMaxNeighborFrameLen + 8);
    na.resize(build_neighbor_advert(na.data(), kPeerMac, addr("fd00::50"), kOurMac, addr("fd00::1")));
    from_worker(*mgr, na);
    mgr->poll(250);
    EXPECT_EQ(mgr->lookup(addr("fd00::50")), kPeerMac);
    for (uint64_t t = 300; t < 700; t += 50) mgr->poll(t);
    EXPECT_TRUE(sent_by_control().empty());
    EXPECT_EQ(changes_, 2);
}

// A static MAC is what lookup() returns from the start; it is never probed
// and a reply claiming another MAC changes nothing.
TEST_F(NeighborManagerTest, StaticEntryIsNeverReplaced)
{
    auto mgr = make({{addr("10.0.0.60"), env().nic.port}}, {{addr("10.0.0.60"), kOtherMac}});
    EXPECT_EQ(mgr->lookup(addr("10.0.0.60")), kOtherMac);
    mgr->poll(0);
    EXPECT_TRUE(sent_by_control().empty());
    from_worker(*mgr, arp(SLUICE_ARP_OP_REPLY, kOurMac, kPeerMac, "10.0.0.60", kOurMac, "10.0.0.1"));
    for (uint64_t t = 10; t < 3000; t += 100) mgr->poll(t);
    EXPECT_EQ(mgr->lookup(addr("10.0.0.60")), kOtherMac);
    EXPECT_EQ(changes_, 0);
    EXPECT_TRUE(sent_by_control().empty());
}

// A learned binding is re-probed by unicast from 80% of its lifetime; with
// no answer it expires at the lifetime (lookup fails, callback fires) and
// broadcast resolution starts again.
TEST_F(NeighborManagerTest, UnansweredRefreshExpiresAndReresolves)
{
    auto mgr = make({{addr("10.0.0.50"), env().nic.port}});
    from_worker(*mgr, arp(SLUICE_ARP_OP_REPLY, kOurMac, kPeerMac, "10.0.0.50", kOurMac, "10.0.0.1"));
    mgr->poll(0);
    EXPECT_EQ(changes_, 1);
    mgr->poll(700);
    EXPECT_TRUE(sent_by_control().empty());
    mgr->poll(800);
    auto out = sent_by_control();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], arp(SLUICE_ARP_OP_REQUEST, kPeerMac, kOurMac, "10.0.0.1", kZero, "10.0.0.50"));
    mgr->poll(850);
    EXPECT_TRUE(sent_by_control().empty());
    mgr->poll(900);
    EXPECT_EQ(sent_by_control().size(), 1u);
    EXPECT_EQ(mgr->lookup(addr("10.0.0.50")), kPeerMac);
    mgr->poll(1000);
    EXPECT_FALSE(mgr->lookup(addr("10.0.0.50")));
    EXPECT_EQ(changes_, 2);
    out = sent_by_control();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(mac_dst_of(out[0]), Frame(kBroadcast.begin(), kBroadcast.end()));
    EXPECT_EQ(mgr->stats().expired, 1u);
}

// An answer to the refresh probe confirms the binding: no expiry, no
// callback, the next refresh only at 80% of the new lifetime.
TEST_F(NeighborManagerTest, AnsweredRefreshKeepsBinding)
{
    auto mgr = make({{addr("10.0.0.50"), env().nic.port}});
    const Frame reply = arp(SLUICE_ARP_OP_REPLY, kOurMac, kPeerMac, "10.0.0.50", kOurMac, "10.0.0.1");
    from_worker(*mgr, reply);
    mgr->poll(0);
    mgr->poll(800);
    EXPECT_EQ(sent_by_control().size(), 1u);
    from_worker(*mgr, reply);
    mgr->poll(850);
    for (uint64_t t = 900; t < 1600; t += 50) mgr->poll(t);
    EXPECT_EQ(mgr->lookup(addr("10.0.0.50")), kPeerMac);
    EXPECT_TRUE(sent_by_control().empty());
    EXPECT_EQ(changes_, 1);
    EXPECT_EQ(mgr->stats().confirmed, 1u);
}

// An NA without the override flag does not replace a binding we hold
// (RFC 4861 §7.2.5); one with it does.
TEST_F(NeighborManagerTest, AdvertWithoutOverrideKeepsBinding)
{
    auto mgr = make({{addr("fd00::50"), env().nic.port}});
    Frame na(kMaxNeighborFrameLen + 8);
    na.resize(build_neighbor_advert(na.data(), kPeerMac, addr("fd00::50"), kOurMac, addr("fd00::1")));
    from_worker(*mgr, na);
    mgr->poll(0);
    Frame other = na;
    other.resize(build_neighbor_advert(other.data(), kOtherMac, addr("fd00::50"), kOurMac, addr("fd00::1")));
    Frame no_override = other;
    no_override[14 + 40 + 4] = 0x40;                       // S only
    uint32_t c = static_cast<uint32_t>(no_override[14 + 40 + 2]) << 8 | no_override[14 + 40 + 3];
    c += 0x2000;                                           // one's complement: field sum drops by 0x2000
    c = (c & 0xFFFF) + (c >> 16);
    no_override[14 + 40 + 2] = static_cast<uint8_t>(c >> 8);
    no_override[14 + 40 + 3] = static_cast<uint8_t>(c);
    ASSERT_TRUE(parse_neighbor_message(no_override.data(), static_cast<uint32_t>(no_override.size())));
    from_worker(*mgr, no_override);
    mgr->poll(10);
    EXPECT_EQ(mgr->lookup(addr("fd00::50")), kPeerMac);
    from_worker(*mgr, other);
    mgr->poll(20);
    EXPECT_EQ(mgr->lookup(addr("fd00::50")), kOtherMac);
}

// update() keeps bindings of addresses still listed, forgets the others,
// and starts answering for new VIPs.
TEST_F(NeighborManagerTest, UpdateKeepsListedBindings)
{
    auto mgr = make({{addr("10.0.0.50"), env().nic.port}, {addr("10.0.0.51"), env().nic.port}});
    from_worker(*mgr, arp(SLUICE_ARP_OP_REPLY, kOurMac, kPeerMac, "10.0.0.50", kOurMac, "10.0.0.1"));
    from_worker(*mgr, arp(SLUICE_ARP_OP_REPLY, kOurMac, kOtherMac, "10.0.0.51", kOurMac, "10.0.0.1"));
    mgr->poll(0);
    const uint64_t gen = mgr->generation();
    NeighborTargets t;
    t.local_addresses = {addr("10.0.0.1")};
    t.vips = {addr("192.0.2.20")};
    t.resolve = {{addr("10.0.0.50"), env().nic.port}};
    mgr->update(t);
    EXPECT_EQ(mgr->lookup(addr("10.0.0.50")), kPeerMac);
    EXPECT_FALSE(mgr->lookup(addr("10.0.0.51")));
    EXPECT_GT(mgr->generation(), gen);
    sent_by_control();
    from_worker(*mgr, arp(SLUICE_ARP_OP_REQUEST, kBroadcast, kPeerMac, "10.0.0.99", kZero, "192.0.2.20"));
    mgr->poll(10);
    const auto out = sent_by_control();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], arp(SLUICE_ARP_OP_REPLY, kPeerMac, kOurMac, "192.0.2.20", kPeerMac, "10.0.0.99"));
}

struct WorkerArgs {
    WorkerLoop* loop;
    SluicePipeline* pipeline;
    std::atomic<bool>* stop;
};

int worker_entry(void* arg)
{
    auto* a = static_cast<WorkerArgs*>(arg);
    a->pipeline->online();
    run_worker_loop(*a->loop, *a->pipeline, *a->stop);
    a->pipeline->offline();
    return 0;
}

std::unique_ptr<const sluice::core::ForwardingState> vip_state(uint16_t port)
{
    using sluice::core::ForwardingStateBuilder;
    ForwardingStateBuilder b;
    sluice_addr local{};
    local.v4 = htonl(0x0A000001);
    b.set_local_ipv4(local);
    sluice::core::PortConfig p{};
    std::memcpy(p.mac, kOurMac.data(), 6);
    p.mtu = 1500;
    p.egress_port = port;
    b.add_port(port, p);
    sluice_backend be{};
    be.addr.v4 = htonl(0x0A01000A);
    be.family = SLUICE_FAMILY_IPV4;
    be.flags = SLUICE_BACKEND_F_VALID;
    b.add_backend(0, be);
    ForwardingStateBuilder::VipSpec v{};
    v.key.addr.v4 = htonl(0xC000020A);  // 192.0.2.10
    v.key.port = htons(80);
    v.key.proto = SLUICE_IPPROTO_TCP;
    v.key.family = SLUICE_FAMILY_IPV4;
    v.forwarding = SLUICE_FWD_IPIP;
    v.ring = {0, 0, 0};
    b.add_vip(v);
    auto st = b.build();
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error());
    return std::move(*st);
}

// End to end through a worker lcore running sluice's pipeline: an ARP
// request for a VIP is answered on the NIC's control queue with our MAC, an
// ARP request for an unknown address reaches the kernel port from the
// control thread, and a non-VIP TCP packet reaches it from the worker's
// exception path; every packet counted once.
TEST_F(NeighborManagerTest, WorkerLoopFeedsManager)
{
    const uint16_t nic = env().nic.port;
    ASSERT_LT(nic, sluice::core::kMaxPorts);
    auto mgr = make();
    auto publisher = RcuPublisher<sluice::core::ForwardingState>::create(1, vip_state(nic));
    ASSERT_TRUE(publisher.ok());
    sluice::core::Worker worker({1024, 1'000'000'000ull, 1'000'000'000ull, 1'000'000'000ull});
    SluicePipeline pipeline(worker, **publisher, 0);
    WorkerLoop loop;
    loop.stats = &worker.stats;
    loop.rx_count = 1;
    loop.rx[0] = RxQueueRef{nic, 0, env().kernel.port};
    loop.control_ring = mgr->control_ring(0);

    const Frame for_vip = arp(SLUICE_ARP_OP_REQUEST, kBroadcast, kPeerMac, "10.0.0.99", kZero, "192.0.2.10");
    const Frame for_other = arp(SLUICE_ARP_OP_REQUEST, kBroadcast, kPeerMac, "10.0.0.99", kZero, "10.0.0.200");
    Frame tcp(14 + 20 + 20, 0);
    std::memcpy(tcp.data(), kOurMac.data(), 6);
    std::memcpy(tcp.data() + 6, kPeerMac.data(), 6);
    const uint8_t ip[] = {0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 99, 10, 0, 0, 1};
    std::memcpy(tcp.data() + 12, ip, sizeof ip);
    tcp[14 + 20 + 3] = 22;  // destination port 22: SSH to the host
    tcp[14 + 20 + 12] = 0x50;
    for (const Frame* f : std::initializer_list<const Frame*>{&for_vip, &for_other, &tcp})
        ASSERT_EQ(rte_ring_enqueue(env().nic.rx, mbuf_of(env().pool, *f, nic)), 0);

    std::atomic<bool> stop{false};
    WorkerArgs args{&loop, &pipeline, &stop};
    const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    ASSERT_EQ(rte_eal_remote_launch(worker_entry, &args, lcore), 0);
    std::vector<Frame> replies, kernel_from_control;
    for (int i = 0; i < 2000 && (replies.empty() || kernel_from_control.empty()); ++i) {
        mgr->poll(static_cast<uint64_t>(i));
        for (auto& f : sent_by_control()) replies.push_back(f);
        for (auto& f : to_kernel()) kernel_from_control.push_back(f);
        rte_delay_ms(1);
    }
    stop.store(true);
    ASSERT_EQ(rte_eal_wait_lcore(lcore), 0);

    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0], arp(SLUICE_ARP_OP_REPLY, kPeerMac, kOurMac, "192.0.2.10", kPeerMac, "10.0.0.99"));
    ASSERT_EQ(kernel_from_control.size(), 1u);
    EXPECT_EQ(kernel_from_control[0], for_other);
    const auto from_worker_queue = drain(env().kernel.tx[0]);
    ASSERT_EQ(from_worker_queue.size(), 1u);
    EXPECT_EQ(from_worker_queue[0], tcp);
    EXPECT_EQ(worker.stats.rx_packets, 3u);
    EXPECT_EQ(worker.stats.control_packets, 2u);
    EXPECT_EQ(worker.stats.exception_packets, 1u);
}

// A full control ring costs the packets it cannot take, freed and moved
// from control to CONTROL_FULL; a worker without a ring loses them all.
TEST_F(NeighborManagerTest, FullControlRingIsCounted)
{
    rte_ring* small = rte_ring_create("ctl_small", 4, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);  // holds 3
    ASSERT_NE(small, nullptr);
    sluice_stats stats{};
    WorkerLoop loop;
    loop.stats = &stats;
    loop.control_ring = small;
    const Frame f = arp(SLUICE_ARP_OP_REQUEST, kBroadcast, kPeerMac, "10.0.0.99", kZero, "192.0.2.10");
    rte_mbuf* pkts[10];
    uint16_t dest[10];
    for (auto i = 0; i < 10; ++i) {
        pkts[i] = mbuf_of(env().pool, f, 5);
        dest[i] = kDestControl;
    }
    const unsigned before = rte_mempool_avail_count(env().pool);
    stats.rx_packets = stats.control_packets = 10;
    dispatch_burst(loop, RxQueueRef{env().nic.port, 0, kDestDrop}, pkts, dest, 10);
    EXPECT_EQ(stats.control_packets, 3u);
    EXPECT_EQ(stats.drops[SLUICE_DROP_CONTROL_FULL], 7u);
    EXPECT_EQ(rte_mempool_avail_count(env().pool), before + 7);
    void* m = nullptr;
    while (rte_ring_dequeue(small, &m) == 0) {
        EXPECT_EQ(static_cast<rte_mbuf*>(m)->port, env().nic.port);  // arrival port stamped
        rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }
    rte_ring_free(small);
}

}  // namespace
