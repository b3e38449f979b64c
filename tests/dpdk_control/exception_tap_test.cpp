// The exception path against the real kernel (root): the net_tap port comes
// up as a kernel interface with the NIC's MAC; a ping to the host injected
// into the NIC goes worker → TAP → kernel, and the kernel's echo reply comes
// back out of the TAP and leaves on the NIC's control queue; the interface
// disappears with the ExceptionPath.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/forwarding_state.h"
#include "core/pipeline.h"
#include "dataplane/dpdk/exception.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/sluice_pipeline.h"
#include "dataplane/dpdk/worker_loop.h"
#include "ring_port.h"
#include "test_env.h"

extern "C" {
#include "abi/checksum.h"
}

namespace {

using namespace sluice::dpdk;
using sluice::testing::Frame;

const MacAddress kOurMac = {0x02, 0x5c, 0, 0, 0, 0x01};
const MacAddress kPeerMac = {0x02, 0x5c, 0, 0, 0, 0x99};

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

// A state with one port and no VIP on the host's address: all of the
// host's traffic is an exception.
std::unique_ptr<const sluice::core::ForwardingState> host_state(uint16_t port)
{
    sluice::core::ForwardingStateBuilder b;
    sluice::core::PortConfig p{};
    std::memcpy(p.mac, kOurMac.data(), 6);
    p.mtu = 1500;
    p.egress_port = port;
    b.add_port(port, p);
    auto st = b.build();
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error());
    return std::move(*st);
}

// ICMP echo request peer → host, checksums computed.
Frame echo_request(uint32_t src, uint32_t dst)
{
    Frame f(14 + 20 + 8 + 16, 0);
    std::memcpy(f.data(), kOurMac.data(), 6);
    std::memcpy(f.data() + 6, kPeerMac.data(), 6);
    f[12] = 0x08;
    uint8_t* ip = f.data() + 14;
    const uint8_t hdr[] = {0x45, 0, 0, 44, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0};
    std::memcpy(ip, hdr, sizeof hdr);
    const uint32_t s = htonl(src), d = htonl(dst);
    std::memcpy(ip + 12, &s, 4);
    std::memcpy(ip + 16, &d, 4);
    const uint16_t ipc = sluice_ipv4_hdr_csum(ip, 20);
    std::memcpy(ip + 10, &ipc, 2);
    uint8_t* icmp = ip + 20;
    icmp[0] = SLUICE_ICMP_ECHO_REQUEST;
    icmp[4] = 0x42;  // identifier
    icmp[7] = 1;     // sequence
    for (int i = 0; i < 16; ++i) icmp[8 + i] = static_cast<uint8_t>('a' + i);
    const uint16_t c = sluice_csum_finish(sluice_csum_add(0, icmp, 24));
    std::memcpy(icmp + 2, &c, 2);
    return f;
}

bool is_echo_reply(const Frame& f, uint32_t src, uint32_t dst)
{
    if (f.size() < 14 + 28 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != SLUICE_IPPROTO_ICMP) return false;
    uint32_t s, d;
    std::memcpy(&s, f.data() + 14 + 12, 4);
    std::memcpy(&d, f.data() + 14 + 16, 4);
    return s == htonl(src) && d == htonl(dst) && f[14 + 20] == SLUICE_ICMP_ECHO_REPLY &&
           std::memcmp(f.data(), kPeerMac.data(), 6) == 0 && std::memcmp(f.data() + 6, kOurMac.data(), 6) == 0;
}

int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// See the file comment.
TEST(ExceptionTap, HostTrafficRoundTripsThroughTheKernel)
{
    SLUICE_REQUIRE_ROOT();
    rte_mempool* pool = rte_pktmbuf_pool_create("tap_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool, nullptr);
    auto nic = sluice::testing::make_ring_port("tap_nic", pool, 2);  // tx 0: worker, 1: control thread
    ASSERT_LT(nic.port, sluice::core::kMaxPorts);
    const std::string iface = "sltap" + std::to_string(::getpid() % 100000);

    ExceptionConfig cfg;
    cfg.ports.push_back(ExceptionPortConfig{nic.port, iface, kOurMac, 1500});
    cfg.workers = 1;
    cfg.nic_control_tx_queue = 1;
    auto path = ExceptionPath::create(cfg, pool);
    ASSERT_TRUE(path.ok()) << path.error();
    const uint16_t tap = (*path)->tap_port(nic.port);
    ASSERT_NE(tap, kNoPort);
    EXPECT_EQ((*path)->tap_port(static_cast<uint16_t>(nic.port + 7)), kNoPort);

    // The kernel interface exists, is up and speaks with the NIC's MAC.
    ASSERT_NE(if_nametoindex(iface.c_str()), 0u);
    const int sock = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
    ASSERT_EQ(ioctl(sock, SIOCGIFFLAGS, &ifr), 0);
    EXPECT_NE(ifr.ifr_flags & IFF_UP, 0);
    ASSERT_EQ(ioctl(sock, SIOCGIFHWADDR, &ifr), 0);
    EXPECT_EQ(std::memcmp(ifr.ifr_hwaddr.sa_data, kOurMac.data(), 6), 0);
    close(sock);

    // The host's address lives on the TAP; the peer's MAC is given so the
    // kernel need not ARP (ARP is the neighbour manager's test).
    const uint32_t host = 0x0AC70001, peer = 0x0AC70002;  // 10.199.0.1, 10.199.0.2
    ASSERT_EQ(run("ip addr add 10.199.0.1/24 dev " + iface), 0);
    ASSERT_EQ(run("ip neigh replace 10.199.0.2 lladdr 02:5c:00:00:00:99 nud permanent dev " + iface), 0);

    auto publisher = RcuPublisher<sluice::core::ForwardingState>::create(1, host_state(nic.port));
    ASSERT_TRUE(publisher.ok());
    sluice::core::Worker worker({1024, 1'000'000'000ull, 1'000'000'000ull, 1'000'000'000ull});
    SluicePipeline pipeline(worker, **publisher, 0);
    WorkerLoop loop;
    loop.stats = &worker.stats;
    loop.rx_count = 1;
    loop.rx[0] = RxQueueRef{nic.port, 0, tap};
    std::atomic<bool> stop{false};
    WorkerArgs args{&loop, &pipeline, &stop};
    const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    ASSERT_EQ(rte_eal_remote_launch(worker_entry, &args, lcore), 0);

    ASSERT_EQ(rte_ring_enqueue(nic.rx, sluice::testing::mbuf_of(pool, echo_request(peer, host), nic.port)), 0);
    bool replied = false;
    for (int i = 0; i < 3000 && !replied; ++i) {
        (*path)->poll();
        // Other frames the kernel sends as the interface comes up (IPv6
        // router solicitations, MLD) leave too; only the reply matters.
        for (const auto& f : sluice::testing::drain(nic.tx[1])) replied = replied || is_echo_reply(f, host, peer);
        rte_delay_ms(1);
    }
    stop.store(true);
    ASSERT_EQ(rte_eal_wait_lcore(lcore), 0);
    EXPECT_TRUE(replied);
    EXPECT_EQ(worker.stats.exception_packets, 1u);
    EXPECT_GE((*path)->stats().from_kernel, 1u);
    EXPECT_TRUE(sluice::testing::drain(nic.tx[0]).empty());  // nothing forwarded by the worker

    path->reset();
    EXPECT_EQ(if_nametoindex(iface.c_str()), 0u);
}

}  // namespace
