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
#include <sys/stat.h>
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

// Two ports, two-arm: what arrives on one leaves by the other.
nlohmann::json two_port_config()
{
    nlohmann::json c = config_with_ring_of(0);
    c["ports"] = {{{"id", 0}, {"mac", "02:00:00:00:00:10"}, {"nexthop_mac", "02:00:00:00:00:fe"}, {"mtu", 1500},
                   {"egress_port", 1}},
                  {{"id", 1}, {"mac", "02:00:00:00:00:11"}, {"nexthop_mac", "02:00:00:00:01:fe"}, {"mtu", 1500},
                   {"egress_port", 0}}};
    return c;
}

// segment() with `ip_len` bytes of IP packet (zero payload after the TCP
// header), DF set as in segment().
std::vector<uint8_t> segment_of(uint16_t client_port, uint8_t flags, uint16_t ip_len)
{
    std::vector<uint8_t> f = segment(client_port, flags);
    f[16] = static_cast<uint8_t>(ip_len >> 8);
    f[17] = static_cast<uint8_t>(ip_len);
    f.resize(14 + size_t{ip_len}, 0);
    return f;
}

// The packet path's record of interface `ifindex` (slot = ifindex below the
// map's direct part), read from the map.
sluice_ifport_record ifport_record_of(xdp::XdpDataplane& dp, uint32_t ifindex)
{
    sluice_ifport_record rec{};
    const int fd = dp.map_fd("sluice_ifport_records_v1");
    EXPECT_GE(fd, 0);
    EXPECT_EQ(bpf_map_lookup_elem(fd, &ifindex, &rec), 0) << "ifindex " << ifindex;
    return rec;
}

std::vector<uint8_t> mac_of(const uint8_t* m) { return std::vector<uint8_t>(m, m + 6); }
std::vector<uint8_t> mac_of(const std::vector<uint8_t>& frame, size_t at)
{
    return frame.size() >= at + 6 ? std::vector<uint8_t>(frame.begin() + at, frame.begin() + at + 6)
                                  : std::vector<uint8_t>();
}

// The packet path reads its ports through one record per interface
// (sluice_ifport_records_v1); the loader rewrites the records whenever a
// port or a binding changes: a new next hop, MTU or port MAC applied after
// the interface was bound, the interface rebound to another port, a port's
// interface rebound (every record leaving by it gets the new redirect
// target), and an interface bound to a port that apply() removed (dropped
// as internal, as an unmapped interface, until the port comes back). Both
// with the fast path and with the general path alone.
TEST(XdpLoader, PortRecordsFollowPortsAndBindings)
{
    SLUICE_REQUIRE_ROOT();
    const std::vector<uint8_t> mac0 = {2, 0, 0, 0, 0, 0x10}, mac1 = {2, 0, 0, 0, 0, 0x11};
    for (uint8_t fast_path_mode : {uint8_t{1}, uint8_t{0}}) {
        SCOPED_TRACE("fast_path_mode " + std::to_string(fast_path_mode));
        auto r = XdpRunner::create(two_port_config(), "", 65536, {}, fast_path_mode);
        ASSERT_TRUE(r) << r.error();
        xdp::XdpDataplane& dp = (*r)->dataplane();
        const uint32_t lo = if_nametoindex("lo");
        xdp::Description d = (*r)->description();  // port ifindexes 1000 + id

        // In on port 0 (the loopback bound to it by run()), out by port 1.
        XdpRun out = (*r)->run(segment(40050, SLUICE_TCP_SYN), 0);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(XDP_REDIRECT));
        EXPECT_EQ(out.verdict, "tx:1");
        EXPECT_EQ(mac_of(out.output, 0), std::vector<uint8_t>({2, 0, 0, 0, 1, 0xfe})) << "port 1's next hop";
        EXPECT_EQ(mac_of(out.output, 6), mac1);

        // Port 1's next hop and MTU change after the binding.
        d.ports[1].nexthop_mac[5] = 0xfd;
        d.ports[1].mtu = 120;
        ASSERT_TRUE(dp.apply(d));
        out = (*r)->run(segment_of(40050, SLUICE_TCP_ACK, 100), 0);
        EXPECT_EQ(out.verdict, "tx:1");
        EXPECT_EQ(mac_of(out.output, 0), std::vector<uint8_t>({2, 0, 0, 0, 1, 0xfd})) << "new next hop";
        EXPECT_EQ(out.output.size(), 14u + 20u + 100u) << "100 + 20 fits an MTU of 120";
        d.ports[1].mtu = 119;
        ASSERT_TRUE(dp.apply(d));
        out = (*r)->run(segment_of(40050, SLUICE_TCP_ACK, 100), 0);
        EXPECT_EQ(out.verdict, "tx:0") << "ICMP back out of port 0";
        EXPECT_TRUE(out.icmp_sent) << "100 + 20 no longer fits";
        EXPECT_EQ(mac_of(out.output, 6), mac0) << "the ICMP error's source: the ingress port's MAC";
        // The ingress port's MAC changes: the ICMP error's source follows.
        d.ports[0].mac[5] = 0x20;
        ASSERT_TRUE(dp.apply(d));
        out = (*r)->run(segment_of(40050, SLUICE_TCP_ACK, 100), 0);
        EXPECT_TRUE(out.icmp_sent);
        EXPECT_EQ(mac_of(out.output, 6), std::vector<uint8_t>({2, 0, 0, 0, 0, 0x20}));

        // The loopback rebound to port 1: out by port 0 now.
        out = (*r)->run(segment(40051, SLUICE_TCP_SYN), 1);
        EXPECT_EQ(out.verdict, "tx:0");
        EXPECT_EQ(mac_of(out.output, 0), std::vector<uint8_t>({2, 0, 0, 0, 0, 0xfe})) << "port 0's next hop";
        EXPECT_EQ(mac_of(out.output, 6), std::vector<uint8_t>({2, 0, 0, 0, 0, 0x20}));
        sluice_ifport_record rec = ifport_record_of(dp, lo);
        EXPECT_EQ(rec.in_id, 1);
        EXPECT_EQ(rec.eg_id, 0);
        EXPECT_EQ(rec.eg_ifindex, 1000u);
        EXPECT_EQ(rec.flags, SLUICE_IFPORT_F_BOUND | SLUICE_IFPORT_F_READY);
        // bind_interface gave port 1 the loopback: interface 1000 (bound to
        // port 0 by apply) now leaves by the loopback.
        EXPECT_EQ(ifport_record_of(dp, 1000).eg_ifindex, lo);
        EXPECT_EQ(ifport_record_of(dp, 1001).eg_ifindex, 1000u);

        // Port 1 removed while the loopback is bound to it: dropped as an
        // interface without ports, as before the records; back with it.
        xdp::Description one_port = d;
        one_port.ports.pop_back();
        one_port.ports[0].egress_port = 0;
        ASSERT_TRUE(dp.apply(one_port));
        out = (*r)->run(segment(40051, SLUICE_TCP_ACK), 1);
        EXPECT_EQ(out.verdict, "drop:internal");
        rec = ifport_record_of(dp, lo);
        EXPECT_EQ(rec.flags, SLUICE_IFPORT_F_BOUND) << "bound, not ready";
        EXPECT_EQ(rec.in_id, 1);
        EXPECT_EQ(mac_of(rec.eg_nexthop_mac), std::vector<uint8_t>(6, 0)) << "nothing of a port left";
        ASSERT_TRUE(dp.apply(d));
        out = (*r)->run(segment(40051, SLUICE_TCP_ACK), 1);
        EXPECT_EQ(out.verdict, "tx:0");
        EXPECT_EQ(ifport_record_of(dp, 77).flags, 0) << "an interface never bound";
    }
}

// A restart over the pins of the program before the records: the bindings
// of its sluice_ifport_index_v1 (ifindex -> port id + 1) become records,
// and the old pin is removed. A second restart takes them from the records;
// they follow a port change after it.
TEST(XdpLoader, RestartOverOlderPinsKeepsBindings)
{
    SLUICE_REQUIRE_ROOT();
    const sluice::testing::ScratchBpffs bpffs;
    SLUICE_REQUIRE(bpffs.ok(), "a bpffs of the test's own (" + bpffs.error() + ")");
    const std::string pin = bpffs.path() + "/sluice";
    const std::string legacy = pin + "/sluice_ifport_index_v1";
    ASSERT_EQ(::mkdir(pin.c_str(), 0700), 0);
    {
        const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_ifport_i", 4, 4, 65536, nullptr);
        ASSERT_GE(fd, 0);
        const uint32_t ifindex = 77, port_plus_one = 2;
        ASSERT_EQ(bpf_map_update_elem(fd, &ifindex, &port_plus_one, BPF_ANY), 0);
        ASSERT_EQ(bpf_obj_pin(fd, legacy.c_str()), 0);
        ::close(fd);
    }
    std::vector<std::string> log;
    {
        auto first = XdpRunner::create(two_port_config(), pin, 65536, [&](const std::string& l) { log.push_back(l); });
        ASSERT_TRUE(first) << first.error();
        EXPECT_NE(::access(legacy.c_str(), F_OK), 0) << "old pin removed";
        ASSERT_FALSE(log.empty());
        EXPECT_NE(log.back().find("sluice_ifport_index_v1"), std::string::npos) << log.back();
        const sluice_ifport_record rec = ifport_record_of((*first)->dataplane(), 77);
        EXPECT_EQ(rec.flags, SLUICE_IFPORT_F_BOUND | SLUICE_IFPORT_F_READY);
        EXPECT_EQ(rec.in_id, 1);
        EXPECT_EQ(rec.eg_id, 0);
        EXPECT_EQ(rec.eg_mtu, 1500);
    }
    auto second = XdpRunner::create(two_port_config(), pin);
    ASSERT_TRUE(second) << second.error();
    xdp::Description d = (*second)->description();
    d.ports[0].mtu = 1400;
    ASSERT_TRUE((*second)->dataplane().apply(d));
    const sluice_ifport_record rec = ifport_record_of((*second)->dataplane(), 77);
    EXPECT_EQ(rec.flags, SLUICE_IFPORT_F_BOUND | SLUICE_IFPORT_F_READY);
    EXPECT_EQ(rec.eg_mtu, 1400) << "an adopted binding follows its egress port";
    ASSERT_TRUE((*second)->dataplane().unpin());
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
