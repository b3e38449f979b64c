// The XDP driver's view of the kernel's neighbour table, against the real
// kernel in a network namespace of the test's own: entries in usable states
// are read with their MACs and only on the interfaces asked for, failed and
// incomplete ones are not, and a probe (NTF_USE) makes the kernel start
// resolving an address it had no entry for.
#include <gtest/gtest.h>
#include <linux/neighbour.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "driver/kernel_neighbors.h"
#include "test_env.h"

namespace {

using sluice::driver::KernelNeighbors;
using sluice::model::IpAddress;

IpAddress ip(const std::string& text) { return *sluice::model::parse_ip_address(text); }

int sh(const std::string& command) { return std::system(command.c_str()); }

class KernelNeighborsTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        SLUICE_REQUIRE_ROOT();
        // This process (one thread) moves to a fresh namespace: nothing it
        // does is seen outside, and everything goes with the process.
        ASSERT_EQ(::unshare(CLONE_NEWNET), 0);
        ASSERT_EQ(sh("ip link add n0 type veth peer name n1 && ip link add m0 type veth peer name m1"), 0);
        ASSERT_EQ(sh("ip link set n0 up && ip link set n1 up && ip link set m0 up && ip link set m1 up"), 0);
        ASSERT_EQ(sh("ip addr add 192.0.2.2/24 dev n0 && ip -6 addr add 2001:db8::2/64 dev n0 nodad"), 0);
        n0_ = if_nametoindex("n0");
        m0_ = if_nametoindex("m0");
        ASSERT_NE(n0_, 0u);
    }
    uint32_t n0_ = 0;
    uint32_t m0_ = 0;
};

// Usable entries (reachable, stale, permanent) of both families come back
// with their MAC; a failed one, and entries on other interfaces, do not.
TEST_F(KernelNeighborsTest, ReadsUsableEntriesOnTheInterfacesAsked)
{
    ASSERT_EQ(sh("ip neigh add 192.0.2.21 lladdr 02:00:00:00:00:21 dev n0 nud reachable"), 0);
    ASSERT_EQ(sh("ip neigh add 192.0.2.22 lladdr 02:00:00:00:00:22 dev n0 nud stale"), 0);
    ASSERT_EQ(sh("ip neigh add 192.0.2.23 lladdr 02:00:00:00:00:23 dev n0 nud permanent"), 0);
    ASSERT_EQ(sh("ip neigh add 192.0.2.24 dev n0 nud failed"), 0);
    ASSERT_EQ(sh("ip -6 neigh add 2001:db8::21 lladdr 02:00:00:00:06:21 dev n0 nud reachable"), 0);
    ASSERT_EQ(sh("ip neigh add 192.0.2.31 lladdr 02:00:00:00:00:31 dev m0 nud permanent"), 0);

    auto nl = KernelNeighbors::open();
    ASSERT_TRUE(nl) << nl.error();
    auto table = nl->read({n0_});
    ASSERT_TRUE(table) << table.error();
    ASSERT_EQ(table->count(ip("192.0.2.21")), 1u);
    EXPECT_EQ(table->at(ip("192.0.2.21")).mac.to_string(), "02:00:00:00:00:21");
    EXPECT_TRUE(table->at(ip("192.0.2.21")).fresh());
    EXPECT_EQ(table->at(ip("192.0.2.21")).ifindex, n0_);
    ASSERT_EQ(table->count(ip("192.0.2.22")), 1u);
    EXPECT_FALSE(table->at(ip("192.0.2.22")).fresh()) << "stale: to be refreshed";
    ASSERT_EQ(table->count(ip("192.0.2.23")), 1u);
    EXPECT_TRUE(table->at(ip("192.0.2.23")).fresh());
    EXPECT_EQ(table->count(ip("192.0.2.24")), 0u) << "failed entries have no usable MAC";
    ASSERT_EQ(table->count(ip("2001:db8::21")), 1u);
    EXPECT_EQ(table->at(ip("2001:db8::21")).mac.to_string(), "02:00:00:00:06:21");
    EXPECT_EQ(table->count(ip("192.0.2.31")), 0u) << "an entry on an interface not asked for";

    auto both = nl->read({n0_, m0_});
    ASSERT_TRUE(both) << both.error();
    EXPECT_EQ(both->count(ip("192.0.2.31")), 1u);
}

// A probe of an address the kernel has no entry for creates one and starts
// resolution (an ARP request goes out: the entry is INCOMPLETE, and turns
// FAILED when nobody answers), for IPv4 and IPv6; a probe on an interface
// that does not exist fails with a message naming the address.
TEST_F(KernelNeighborsTest, ProbeStartsResolution)
{
    auto nl = KernelNeighbors::open();
    ASSERT_TRUE(nl) << nl.error();
    ASSERT_TRUE(nl->probe(ip("192.0.2.50"), n0_));
    ASSERT_TRUE(nl->probe(ip("2001:db8::50"), n0_));
    EXPECT_EQ(sh("ip neigh show 192.0.2.50 dev n0 | grep -qE 'INCOMPLETE|FAILED'"), 0);
    EXPECT_EQ(sh("ip -6 neigh show 2001:db8::50 dev n0 | grep -qE 'INCOMPLETE|FAILED'"), 0);
    auto table = nl->read({n0_});
    ASSERT_TRUE(table) << table.error();
    EXPECT_EQ(table->count(ip("192.0.2.50")), 0u) << "unresolved: no MAC yet";
    auto bad = nl->probe(ip("192.0.2.51"), 999999);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find("192.0.2.51"), std::string::npos) << bad.error();
}

// A probe of an address whose neighbour answers yields its MAC: the peer
// interface, moved to a second namespace, owns the address, so the
// kernel's own ARP resolves it.
TEST_F(KernelNeighborsTest, ProbedNeighbourThatAnswersIsLearned)
{
    const std::string peer_ns = "sl-kn-" + std::to_string(::getpid());
    ASSERT_EQ(sh("ip netns add " + peer_ns + " && ip link set n1 netns " + peer_ns + " && ip -n " + peer_ns +
                 " link set n1 up && ip -n " + peer_ns + " addr add 192.0.2.60/24 dev n1"),
              0);
    auto nl = KernelNeighbors::open();
    ASSERT_TRUE(nl) << nl.error();
    ASSERT_TRUE(nl->probe(ip("192.0.2.60"), n0_));
    std::string mac;
    for (int i = 0; i < 200 && mac.empty(); ++i) {  // bounded: 2 s
        auto table = nl->read({n0_});
        ASSERT_TRUE(table) << table.error();
        if (auto it = table->find(ip("192.0.2.60")); it != table->end()) mac = it->second.mac.to_string();
        if (mac.empty()) ::usleep(10000);
    }
    FILE* f = ::popen(("ip -n " + peer_ns + " -br link show dev n1").c_str(), "r");
    char line[256] = {};
    const bool read = f != nullptr && std::fgets(line, sizeof line, f) != nullptr;
    if (f != nullptr) ::pclose(f);
    sh("ip netns del " + peer_ns);
    ASSERT_TRUE(read);
    ASSERT_FALSE(mac.empty()) << "the kernel did not resolve a neighbour that answers";
    EXPECT_NE(std::string(line).find(mac), std::string::npos) << "learned " << mac << ", the peer is " << line;
}

}  // namespace
