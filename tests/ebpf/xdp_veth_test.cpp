// xdp_lb attached in native mode to a veth, fed real frames: fixtures sent
// from the peer with an AF_PACKET socket come back (XDP_TX) exactly as the
// fixture table says, through the driver path rather than a test run. The
// peer runs a trivial XDP program, without which veth drops XDP_TX frames
// silently (ENV.md, "XDP on veth", trap 1).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "fixture_loader.h"
#include "fixture_table.h"
#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// A veth pair named after the PID, IPv6 off (no router solicitations in
// the capture), removed on destruction.
struct VethPair {
    std::string lb, peer;
    explicit VethPair(const std::string& suffix) : lb("sxl" + suffix), peer("sxc" + suffix)
    {
        sh("ip link add " + lb + " type veth peer name " + peer);
        for (const auto& n : {lb, peer}) {
            sh("sysctl -w net.ipv6.conf." + n + ".disable_ipv6=1");
            sh("ip link set " + n + " up");
        }
    }
    ~VethPair() { sh("ip link del " + lb); }
};

// Frames received on `fd` (not our own sends) until `want` arrives or
// the timeout.
bool receive_frame(int fd, const std::vector<uint8_t>& want, std::vector<uint8_t>& last)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::vector<uint8_t> buf(4096);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        sockaddr_ll from{};
        socklen_t len = sizeof(from);
        const ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING) continue;
        last.assign(buf.begin(), buf.begin() + n);
        if (last == want) return true;
    }
    return false;
}

// Native XDP_TX on a veth returns the fixture's exact output bytes (IPIP,
// GUE over IPv6 with its checksum, and an ICMP frag-needed).
TEST(XdpVeth, NativeTxMatchesFixtures)
{
    SLUICE_REQUIRE_ROOT();
    VethPair veth(std::to_string(::getpid() % 100000));
    const uint32_t lb_if = if_nametoindex(veth.lb.c_str()), peer_if = if_nametoindex(veth.peer.c_str());
    ASSERT_NE(lb_if, 0u);
    ASSERT_NE(peer_if, 0u);

    auto runner = XdpRunner::create(table().base_config);
    ASSERT_TRUE(runner) << runner.error();
    xdp::XdpDataplane& dp = (*runner)->dataplane();
    ASSERT_TRUE(dp.bind_interface(lb_if, 0));
    auto mode = dp.attach(lb_if, false);
    ASSERT_TRUE(mode) << mode.error();
    EXPECT_EQ(*mode, xdp::AttachMode::kNative);

    const bpf_insn pass[] = {{BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
    const int pass_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", pass, 2, nullptr);
    ASSERT_GE(pass_fd, 0);
    ASSERT_EQ(bpf_xdp_attach(static_cast<int>(peer_if), pass_fd, XDP_FLAGS_DRV_MODE, nullptr), 0);

    const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    ASSERT_GE(fd, 0);
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(peer_if);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);

    int checked = 0;
    for (const Fixture& f : table().fixtures) {
        if (f.name != "ipip_4in4_tcp_syn" && f.name != "gue_6in6_tcp" && f.name != "mtu_4in4_df_icmp" &&
            f.name != "l2dsr_v6_tcp")
            continue;
        SCOPED_TRACE(f.name);
        ASSERT_TRUE(f.has_output);
        ASSERT_EQ(sendto(fd, f.input.data(), f.input.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
                  static_cast<ssize_t>(f.input.size()));
        std::vector<uint8_t> got;
        EXPECT_TRUE(receive_frame(fd, f.output, got))
            << (got.empty() ? std::string("nothing came back") : describe_difference(f.output, got.data(), got.size()));
        ++checked;
    }
    EXPECT_EQ(checked, 4);
    close(fd);
    bpf_xdp_detach(static_cast<int>(peer_if), XDP_FLAGS_DRV_MODE, nullptr);
    close(pass_fd);
}

}  // namespace
}  // namespace sluice::testing
