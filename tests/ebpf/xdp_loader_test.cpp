// The loader's lifecycle: maps pinned under bpffs survive a restart, so an
// established flow keeps its backend after the new process applies a ring
// that would send it elsewhere; attach is native where the driver supports
// it, generic only when allowed (and then reported), and detach (explicit
// or by the destructor) leaves no program on the interface.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

// One service 198.51.100.7:443/tcp over IPIP whose 7-slot ring is all
// `backend`; backends 0 and 1 are 10.9.1.10 and 10.9.1.11.
nlohmann::json config_with_ring_of(uint32_t backend)
{
    return {
        {"local_ipv4", "10.0.0.1"},
        {"ports", {{{"id", 0}, {"mac", "02:00:00:00:00:10"}, {"nexthop_mac", "02:00:00:00:00:fe"},
                    {"mtu", 1500}, {"egress_port", 0}}}},
        {"backends", {{{"id", 0}, {"addr", "10.9.1.10"}, {"flags", {"valid"}}},
                      {{"id", 1}, {"addr", "10.9.1.11"}, {"flags", {"valid"}}}}},
        {"vips", {{{"id", 3}, {"addr", "198.51.100.7"}, {"port", 443}, {"proto", "tcp"}, {"forwarding", "ipip"},
                   {"ring", std::vector<uint32_t>(7, backend)}}}},
    };
}

// A TCP segment of the flow 203.0.113.5:client_port → 198.51.100.7:443.
std::vector<uint8_t> segment(uint16_t client_port, uint8_t flags)
{
    std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0x10, 0x02, 0, 0, 0, 0xc1, 0x01, 0x08, 0x00,
                              0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 203, 0, 113, 5, 198, 51, 100, 7,
                              static_cast<uint8_t>(client_port >> 8), static_cast<uint8_t>(client_port), 0x01, 0xbb,
                              0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0};
    f.resize(60, 0);
    return f;
}

// Outer destination's last byte - 10: the backend id, or -1 if not forwarded.
int backend_of(const XdpRun& r)
{
    if (r.error != 0 || r.verdict != "tx:0" || r.output.size() < 34) return -1;
    return r.output[33] - 10;
}

// A restart that reuses the pinned maps keeps established flows on their
// backend, and adopts the old process's entries so it can remove them;
// without pinning the same flow follows the new ring.
TEST(XdpLoader, PinnedMapsKeepEstablishedFlowsAcrossRestart)
{
    SLUICE_REQUIRE_ROOT();
    const sluice::testing::ScratchBpffs bpffs;
    SLUICE_REQUIRE(bpffs.ok(), "a bpffs of the test's own (" + bpffs.error() + ")");
    const std::string pin = bpffs.path() + "/sluice";
    {
        auto first = XdpRunner::create(config_with_ring_of(0), pin);
        ASSERT_TRUE(first) << first.error();
        EXPECT_EQ(backend_of((*first)->run(segment(40001, SLUICE_TCP_SYN), 0)), 0);
    }  // the "old process" exits: its program goes, the pinned maps stay
    auto second = XdpRunner::create(config_with_ring_of(1), pin);
    ASSERT_TRUE(second) << second.error();
    auto live = (*second)->dataplane().live_ring(3);
    ASSERT_TRUE(live) << live.error();
    EXPECT_EQ(live->ring_size, 7u);
    EXPECT_EQ(backend_of((*second)->run(segment(40001, SLUICE_TCP_ACK), 0)), 0) << "established flow kept";
    EXPECT_EQ(backend_of((*second)->run(segment(40002, SLUICE_TCP_SYN), 0)), 1) << "new flow on the new ring";
    // The new process also knows what the old one wrote: a description
    // without backend 0 removes it, and its flow falls back to the ring.
    xdp::Description without_0 = (*second)->description();
    without_0.backends.erase(without_0.backends.begin());
    ASSERT_TRUE((*second)->dataplane().apply(without_0));
    EXPECT_EQ(backend_of((*second)->run(segment(40001, SLUICE_TCP_ACK), 0)), 1) << "removed backend's flow re-pinned";
    ASSERT_TRUE((*second)->dataplane().unpin());
    EXPECT_NE(::access(pin.c_str(), F_OK), 0) << "pin directory removed";

    auto unpinned = XdpRunner::create(config_with_ring_of(1));
    ASSERT_TRUE(unpinned) << unpinned.error();
    EXPECT_EQ(backend_of((*unpinned)->run(segment(40001, SLUICE_TCP_ACK), 0)), 1) << "control: no pin, no memory";
}

// A pin path that is not on a bpffs (bpffs not mounted at /sys/fs/bpf, say)
// is refused at open with an error that says so, not a bare errno from the
// first pin.
TEST(XdpLoader, PinDirOutsideBpffsIsRefusedClearly)
{
    SLUICE_REQUIRE_ROOT();
    char dir[] = "/tmp/sluice-not-bpffs-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const std::string pin = std::string(dir) + "/sluice";
    auto r = XdpRunner::create(config_with_ring_of(0), pin);
    ::rmdir(pin.c_str());
    ::rmdir(dir);
    ASSERT_FALSE(r) << "pinned on a plain directory";
    EXPECT_NE(r.error().find("is not on a bpffs"), std::string::npos) << r.error();
    EXPECT_NE(r.error().find(pin), std::string::npos) << r.error();
}

// As the DPDK core: a pure SYN on a live entry whose backend is draining
// (port reuse) is picked again from the ring and the entry re-pinned; the
// old connection's other packets keep the draining backend; a SYN whose
// entry names a backend that is not draining keeps it.
TEST(XdpLoader, SynOnDrainingEntryIsPickedAgain)
{
    SLUICE_REQUIRE_ROOT();
    auto r = XdpRunner::create(config_with_ring_of(0));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(backend_of((*r)->run(segment(40010, SLUICE_TCP_SYN), 0)), 0);
    EXPECT_EQ(backend_of((*r)->run(segment(40011, SLUICE_TCP_SYN), 0)), 0);
    // The ring moves to backend 1; backend 0 stays valid, not draining.
    xdp::Description d = (*r)->description();
    d.vips[0].ring = std::vector<uint32_t>(7, 1);
    ASSERT_TRUE((*r)->dataplane().apply(d));
    EXPECT_EQ(backend_of((*r)->run(segment(40011, SLUICE_TCP_SYN), 0)), 0) << "SYN on a live entry keeps its backend";
    // Backend 0 drains.
    for (auto& b : d.backends) {
        if (b.id == 0) b.flags |= SLUICE_BACKEND_F_DRAINING;
    }
    ASSERT_TRUE((*r)->dataplane().apply(d));
    EXPECT_EQ(backend_of((*r)->run(segment(40010, SLUICE_TCP_ACK | SLUICE_TCP_FIN), 0)), 0) << "old connection kept";
    EXPECT_EQ(backend_of((*r)->run(segment(40010, SLUICE_TCP_SYN), 0)), 1) << "new connection off the draining backend";
    EXPECT_EQ(backend_of((*r)->run(segment(40010, SLUICE_TCP_ACK), 0)), 1) << "entry re-pinned";

    // Per-backend counters: the batched read (more than 64 ids, as on a node
    // with thousands of backends) and the per-id read agree, whatever the
    // order of the ids asked for.
    auto few = (*r)->dataplane().read_backend_counters({1, 0});
    ASSERT_TRUE(few) << few.error();
    EXPECT_EQ((*few)[0].packets, 2u);  // 40010's SYN and ACK after the drain
    EXPECT_EQ((*few)[1].packets, 4u);
    std::vector<uint32_t> many;
    for (uint32_t id = 1999; id >= 2; --id) many.push_back(id);
    many.push_back(1);
    many.push_back(0);
    auto batched = (*r)->dataplane().read_backend_counters(many);
    ASSERT_TRUE(batched) << batched.error();
    ASSERT_EQ(batched->size(), many.size());
    EXPECT_EQ(batched->at(many.size() - 2).packets, (*few)[0].packets);
    EXPECT_EQ(batched->at(many.size() - 2).bytes, (*few)[0].bytes);
    EXPECT_EQ(batched->at(many.size() - 1).packets, (*few)[1].packets);
    EXPECT_EQ(batched->at(many.size() - 1).bytes, (*few)[1].bytes);
    EXPECT_EQ(batched->at(0).packets, 0u);
}

// Service lookups are cached per CPU: a change to the service table (a
// ring flip, a service removed) is seen by the very next packet although
// the previous packets of the same VIP filled the cache.
TEST(XdpLoader, ServiceCacheFollowsChanges)
{
    SLUICE_REQUIRE_ROOT();
    auto r = XdpRunner::create(config_with_ring_of(0));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(backend_of((*r)->run(segment(40030, SLUICE_TCP_SYN), 0)), 0);
    ASSERT_TRUE((*r)->dataplane().update_ring(3, std::vector<uint32_t>(7, 1)));
    EXPECT_EQ(backend_of((*r)->run(segment(40031, SLUICE_TCP_SYN), 0)), 1) << "new ring";
    xdp::Description none = (*r)->description();
    none.vips.clear();
    ASSERT_TRUE((*r)->dataplane().apply(none));
    const XdpRun after = (*r)->run(segment(40031, SLUICE_TCP_ACK), 0);
    EXPECT_EQ(after.retval, static_cast<uint32_t>(XDP_PASS)) << "removed service: not ours any more";
}

// The ingress interface → port map has two halves: an array for ifindexes
// below its size (every test above runs on the loopback, ifindex 1) and a
// hash map above it; a port bound to an interface with a large ifindex
// (hosts that created and deleted many interfaces) forwards too.
TEST(XdpLoader, LargeIfindexIngress)
{
    SLUICE_REQUIRE_ROOT();
    const std::string pid = std::to_string(::getpid() % 100000);
    const std::string veth = "sxi" + pid, peer = "sxj" + pid;
    const uint32_t big = 70000 + static_cast<uint32_t>(::getpid() % 100000);
    ASSERT_EQ(std::system(("ip link add " + veth + " index " + std::to_string(big) + " type veth peer name " + peer)
                              .c_str()),
              0);
    ASSERT_EQ(if_nametoindex(veth.c_str()), big);
    auto r = XdpRunner::create(config_with_ring_of(1));
    ASSERT_TRUE(r) << r.error();
    (*r)->set_ingress_interface(big);
    EXPECT_EQ(backend_of((*r)->run(segment(40020, SLUICE_TCP_SYN), 0)), 1);
    (*r)->set_ingress_interface(if_nametoindex("lo"));
    EXPECT_EQ(backend_of((*r)->run(segment(40021, SLUICE_TCP_SYN), 0)), 1);
    EXPECT_EQ(std::system(("ip link del " + veth).c_str()), 0);
}

uint32_t attached_prog(uint32_t ifindex, uint32_t mode_flag)
{
    uint32_t id = 0;
    if (bpf_xdp_query_id(static_cast<int>(ifindex), static_cast<int>(mode_flag), &id) != 0) return 0;
    return id;
}

uint32_t prog_id(int fd)
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Native on veth; a bridge has no native XDP, so there the loader refuses
// unless generic mode is allowed, and says so when it uses it.
TEST(XdpLoader, AttachNativeOrExplicitGenericAndDetach)
{
    SLUICE_REQUIRE_ROOT();
    const std::string pid = std::to_string(::getpid() % 100000);
    const std::string veth = "sxv" + pid, peer = "sxp" + pid, bridge = "sxb" + pid;
    ASSERT_EQ(std::system(("ip link add " + veth + " type veth peer name " + peer).c_str()), 0);
    ASSERT_EQ(std::system(("ip link add " + bridge + " type bridge").c_str()), 0);
    const uint32_t veth_if = if_nametoindex(veth.c_str());
    const uint32_t bridge_if = if_nametoindex(bridge.c_str());
    {
        auto dp = xdp::XdpDataplane::open({});
        ASSERT_TRUE(dp) << dp.error();
        const uint32_t id = prog_id((*dp)->program_fd());

        auto mode = (*dp)->attach(veth_if, false);
        ASSERT_TRUE(mode) << mode.error();
        EXPECT_EQ(*mode, xdp::AttachMode::kNative);
        EXPECT_EQ(attached_prog(veth_if, XDP_FLAGS_DRV_MODE), id);
        EXPECT_TRUE((*dp)->detach(veth_if));
        EXPECT_EQ(attached_prog(veth_if, XDP_FLAGS_DRV_MODE), 0u);

        auto refused = (*dp)->attach(bridge_if, false);
        EXPECT_FALSE(refused) << "generic mode used without permission";
        auto generic = (*dp)->attach(bridge_if, true);
        ASSERT_TRUE(generic) << generic.error();
        EXPECT_EQ(*generic, xdp::AttachMode::kGeneric);
        EXPECT_EQ(attached_prog(bridge_if, XDP_FLAGS_SKB_MODE), id);

        ASSERT_TRUE((*dp)->attach(veth_if, false));
    }  // the destructor detaches both
    EXPECT_EQ(attached_prog(veth_if, XDP_FLAGS_DRV_MODE), 0u);
    EXPECT_EQ(attached_prog(bridge_if, XDP_FLAGS_SKB_MODE), 0u);
    EXPECT_EQ(std::system(("ip link del " + veth).c_str()), 0);
    EXPECT_EQ(std::system(("ip link del " + bridge).c_str()), 0);
}

// mode = "generic" in the config means generic even where native works:
// attach(kGeneric) never tries the driver first. Backend counters of a
// fresh object read as zero for any id asked, in the order asked.
TEST(XdpLoader, ExplicitGenericModeAndBackendCounters)
{
    SLUICE_REQUIRE_ROOT();
    const std::string pid = std::to_string(::getpid() % 100000);
    const std::string veth = "sxg" + pid, peer = "sxh" + pid;
    ASSERT_EQ(std::system(("ip link add " + veth + " type veth peer name " + peer).c_str()), 0);
    const uint32_t veth_if = if_nametoindex(veth.c_str());
    {
        auto dp = xdp::XdpDataplane::open({});
        ASSERT_TRUE(dp) << dp.error();
        const uint32_t id = prog_id((*dp)->program_fd());
        auto mode = (*dp)->attach(veth_if, xdp::AttachMode::kGeneric, false);
        ASSERT_TRUE(mode) << mode.error();
        EXPECT_EQ(*mode, xdp::AttachMode::kGeneric);
        EXPECT_EQ(attached_prog(veth_if, XDP_FLAGS_SKB_MODE), id);
        EXPECT_EQ(attached_prog(veth_if, XDP_FLAGS_DRV_MODE), 0u);
        EXPECT_TRUE((*dp)->detach(veth_if));
        EXPECT_EQ(attached_prog(veth_if, XDP_FLAGS_SKB_MODE), 0u);

        auto counters = (*dp)->read_backend_counters({7, 0, SLUICE_MAX_BACKENDS - 1});
        ASSERT_TRUE(counters) << counters.error();
        ASSERT_EQ(counters->size(), 3u);
        for (const sluice_counter& c : *counters) EXPECT_EQ(c.packets + c.bytes, 0u);
        EXPECT_FALSE((*dp)->read_backend_counters({SLUICE_MAX_BACKENDS})) << "an id beyond the map";
    }
    EXPECT_EQ(std::system(("ip link del " + veth).c_str()), 0);
}

}  // namespace
}  // namespace sluice::testing
