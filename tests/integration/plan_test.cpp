// The control-plane half of the DPDK end-to-end test, without an EAL:
// config text -> ForwardingPlan -> core::ForwardingState. Proves backend ids
// are stable and quarantined, draining backends stay valid but own no slot,
// rings name global ids and are shared (not copied) by later plans and by
// snapshots, and the snapshot takes MACs from the neighbour lookup; plus the
// EAL argument list the DPDK driver derives.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "config/loader.h"
#include "driver/dpdk_driver.h"
#include "driver/dpdk_state.h"
#include "driver/forwarding_plan.h"
#include "driver/id_allocator.h"
#include "driver/mtu_check.h"
#include "maglev/maglev.h"

namespace {

using namespace std::chrono_literals;
using sluice::driver::ForwardingPlan;
using sluice::driver::PlanBuilder;
using sluice::driver::StableIdAllocator;

constexpr const char* kNode = R"(
[dataplane]
type = "dpdk"
[dataplane.dpdk]
worker_lcores = [1]
exception_path = false
[[dataplane.dpdk.ports]]
name = "lan"
device = "net_null0"
[network]
source_ipv4 = "192.0.2.2"
gateway_ipv4 = "192.0.2.1"
[conntrack]
tcp_established_s = 100
)";

sluice::model::Config load(const std::string& services)
{
    auto r = sluice::config::load_string(std::string(kNode) + services, "plan_test.toml");
    std::string diags;
    for (const auto& d : r.diagnostics) diags += d.to_string() + "\n";
    EXPECT_TRUE(r.ok()) << diags;
    return *r.config;
}

std::string service(const std::string& name, const std::string& vip, const std::string& forwarding,
                    const std::string& backends)
{
    return "[[service]]\nname = \"" + name + "\"\nvip = \"" + vip + "\"\nforwarding = \"" + forwarding +
           "\"\ntable_size = 251\nhealth_check = { type = \"none\" }\nbackends = [" + backends + "]\n";
}

std::map<std::string, uint32_t> ids_of(const ForwardingPlan& plan)
{
    std::map<std::string, uint32_t> out;
    for (const auto& s : plan.services) {
        for (const auto& b : s.backends) out[s.name + "/" + b.address.to_string()] = b.id;
    }
    return out;
}

struct FakeClock {
    StableIdAllocator::TimePoint now{};
    StableIdAllocator::Clock fn()
    {
        return [this] { return now; };
    }
};

// Rebuilding the same config, or one with a backend added, keeps every
// existing backend's id; ids are dense from 0.
TEST(ForwardingPlan, BackendIdsAreStableAcrossRebuilds)
{
    PlanBuilder builder;
    const auto three = load(service("web", "192.0.2.100:80", "l2dsr",
                                    R"({address="192.0.2.21"},{address="192.0.2.22"},{address="192.0.2.23"})"));
    auto first = builder.build(three);
    ASSERT_TRUE(first.ok()) << first.error();
    const auto ids = ids_of(*first);
    std::set<uint32_t> values;
    for (const auto& [k, v] : ids) values.insert(v);
    EXPECT_EQ(values, (std::set<uint32_t>{0, 1, 2}));

    auto again = builder.build(three);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(ids_of(*again), ids);

    auto four = builder.build(load(service(
        "web", "192.0.2.100:80", "l2dsr",
        R"({address="192.0.2.24"},{address="192.0.2.21"},{address="192.0.2.22"},{address="192.0.2.23"})")));
    ASSERT_TRUE(four.ok());
    for (const auto& [k, v] : ids) EXPECT_EQ(ids_of(*four).at(k), v) << k;
    EXPECT_EQ(ids_of(*four).at("web/192.0.2.24"), 3u);
}

// A removed backend's id goes to no other backend until the longest
// connection timeout (plus margin) has passed; the same backend coming
// back within it gets its old id.
TEST(ForwardingPlan, RemovedIdsAreQuarantined)
{
    FakeClock clock;
    PlanBuilder builder(clock.fn());
    ASSERT_TRUE(builder.build(load(service("web", "192.0.2.100:80", "l2dsr",
                                           R"({address="192.0.2.21"},{address="192.0.2.22"})")))
                    .ok());
    // .22 (id 1) removed, .23 added: it must not get id 1.
    auto swapped = builder.build(load(service("web", "192.0.2.100:80", "l2dsr",
                                              R"({address="192.0.2.21"},{address="192.0.2.23"})")));
    ASSERT_TRUE(swapped.ok());
    EXPECT_EQ(ids_of(*swapped).at("web/192.0.2.21"), 0u);
    EXPECT_EQ(ids_of(*swapped).at("web/192.0.2.23"), 2u);

    // .22 returns within the quarantine: its old id.
    clock.now += 50s;
    auto back = builder.build(load(service("web", "192.0.2.100:80", "l2dsr",
                                           R"({address="192.0.2.21"},{address="192.0.2.22"})")));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(ids_of(*back).at("web/192.0.2.22"), 1u);

    // .23 (id 2) removed now; after tcp_established (100 s) + margin, a new
    // backend may have it.
    clock.now += 100s;
    auto early = builder.build(load(service(
        "web", "192.0.2.100:80", "l2dsr", R"({address="192.0.2.21"},{address="192.0.2.22"},{address="192.0.2.25"})")));
    ASSERT_TRUE(early.ok());
    EXPECT_EQ(ids_of(*early).at("web/192.0.2.25"), 3u);
    clock.now += 20s;
    auto late = builder.build(load(service(
        "web", "192.0.2.100:80", "l2dsr",
        R"({address="192.0.2.21"},{address="192.0.2.22"},{address="192.0.2.25"},{address="192.0.2.26"})")));
    ASSERT_TRUE(late.ok());
    EXPECT_EQ(ids_of(*late).at("web/192.0.2.26"), 2u);
}

// A failed assignment changes nothing: the allocator is all or nothing.
TEST(StableIdAllocator, FailureLeavesStateUnchanged)
{
    StableIdAllocator ids(2, 0ms);
    ASSERT_TRUE(ids.assign({"a", "b"}).ok());
    EXPECT_FALSE(ids.assign({"a", "b", "c"}).ok());
    EXPECT_FALSE(ids.assign({"a", "a"}).ok());
    auto r = ids.assign({"b", "a"});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, (std::vector<uint32_t>{1, 0}));
}

// Running out of ids after releasing some refuses the whole assignment:
// the released keys stay live with their ids, nothing enters quarantine.
TEST(StableIdAllocator, FailureAfterReleasesLeavesStateUnchanged)
{
    FakeClock clock;
    StableIdAllocator ids(3, 10s, clock.fn());
    ASSERT_TRUE(ids.assign({"a", "b", "c"}).ok());
    EXPECT_FALSE(ids.assign({"a", "d", "e"}).ok());  // b, c quarantined: no id for d
    EXPECT_EQ(ids.live_count(), 3u);
    EXPECT_EQ(ids.quarantined_count(), 0u);
    auto same = ids.assign({"c", "b", "a"});
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(*same, (std::vector<uint32_t>{2, 1, 0}));
    // Released now, reusable by others once the quarantine has passed.
    ASSERT_TRUE(ids.assign({"a"}).ok());
    EXPECT_EQ(ids.quarantined_count(), 2u);
    EXPECT_FALSE(ids.assign({"a", "d"}).ok());
    clock.now += 11s;
    auto later = ids.assign({"a", "d", "e"});
    ASSERT_TRUE(later.ok());
    EXPECT_EQ(*later, (std::vector<uint32_t>{0, 1, 2}));
    EXPECT_EQ(ids.quarantined_count(), 0u);
}

// A draining backend is in the plan (weight 0, draining) but in no slot;
// the ring holds global ids, and the fingerprint is the Maglev builder's.
TEST(ForwardingPlan, DrainingBackendOwnsNoSlot)
{
    PlanBuilder builder;
    auto plan = builder.build(load(service("web", "192.0.2.100:80", "ipip",
                                           R"({address="192.0.2.21"},{address="192.0.2.22", state="draining"})")));
    ASSERT_TRUE(plan.ok()) << plan.error();
    const auto& s = plan->services.at(0);
    ASSERT_EQ(s.backends.size(), 2u);
    const auto drained = std::find_if(s.backends.begin(), s.backends.end(), [](auto& b) { return b.draining; });
    ASSERT_NE(drained, s.backends.end());
    EXPECT_EQ(drained->weight, 0u);
    EXPECT_EQ(s.ring.size(), 251u);
    for (uint32_t slot : s.ring) EXPECT_NE(slot, drained->id);

    const std::vector<sluice::maglev::Backend> input{{"192.0.2.21", 100}, {"192.0.2.22", 0}};
    auto table = sluice::maglev::build_table(input, 251);
    ASSERT_TRUE(table.ok());
    EXPECT_EQ(s.fingerprint, sluice::maglev::fingerprint(*table));
}

// A plan reuses the ring of every service whose table and ids did not
// change (the same object, not a copy), makes a new one for the service that
// changed, and a DPDK snapshot of it points its workers at those very rings;
// the previous snapshot keeps the replaced ring alive after its plan is gone.
TEST(ForwardingPlan, UnchangedServicesShareTheirRings)
{
    auto config = [](bool drain) {
        return load(service("a", "192.0.2.100:80", "ipip", R"({address="192.0.2.21"},{address="192.0.2.22"})") +
                    service("b", "192.0.2.101:80", "ipip",
                            std::string(R"({address="192.0.2.31"},{address="192.0.2.32")") +
                                (drain ? R"(, state="draining"})" : "}")) +
                    service("c", "192.0.2.102:80", "ipip", R"({address="192.0.2.41"})"));
    };
    PlanBuilder builder;
    auto first = builder.build(config(false));
    ASSERT_TRUE(first.ok()) << first.error();
    auto same = builder.build(config(false));
    ASSERT_TRUE(same.ok()) << same.error();
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(same->services[i].ring.shares_with(first->services[i].ring)) << i;

    auto second = builder.build(config(true));
    ASSERT_TRUE(second.ok()) << second.error();
    ASSERT_EQ(second->services.size(), 3u);
    EXPECT_TRUE(second->services[0].ring.shares_with(first->services[0].ring));
    EXPECT_FALSE(second->services[1].ring.shares_with(first->services[1].ring));
    EXPECT_FALSE(second->services[1].ring == first->services[1].ring);  // the drained backend left its slots
    EXPECT_TRUE(second->services[2].ring.shares_with(first->services[2].ring));

    sluice::driver::StartedPort port;
    port.port_id = 0;
    port.mac = {2, 0, 0, 0, 0, 0x99};
    port.mtu = 1500;
    auto no_mac = [](const sluice::model::IpAddress&) { return std::optional<sluice::model::MacAddress>{}; };
    auto old_state = sluice::driver::build_dpdk_state(*first, {port}, no_mac, false);
    ASSERT_TRUE(old_state.ok()) << old_state.error();
    auto new_state = sluice::driver::build_dpdk_state(*second, {port}, no_mac, false);
    ASSERT_TRUE(new_state.ok()) << new_state.error();
    for (const auto& s : second->services) {
        const auto* rt = (*new_state)->vip(s.vip_id);
        ASSERT_NE(rt, nullptr) << s.name;
        EXPECT_EQ(rt->ring, s.ring.data()) << s.name;  // the plan's ring itself
        EXPECT_EQ(rt->meta.ring_size, s.ring.size()) << s.name;
    }
    EXPECT_EQ((*old_state)->vip(first->services[0].vip_id)->ring, (*new_state)->vip(second->services[0].vip_id)->ring);

    // The old plan and the old table go; the old snapshot (still in a
    // grace period, say) keeps reading the ring it was built with.
    const std::vector<uint32_t> old_b = first->services[1].ring.slots();
    const uint32_t vip_b = first->services[1].vip_id;
    *first = ForwardingPlan{};
    *same = ForwardingPlan{};
    const auto* rt = (*old_state)->vip(vip_b);
    ASSERT_NE(rt, nullptr);
    ASSERT_EQ(rt->meta.ring_size, old_b.size());
    for (size_t i = 0; i < old_b.size(); ++i) ASSERT_EQ(rt->ring[i], old_b[i]) << i;
}

// A build that fails after seeing a changed pool leaves no stale ids: the
// next build of that pool asks the allocator again, so the new backend gets
// its own id and every id in the ring belongs to a backend of the plan.
TEST(ForwardingPlan, FailedBuildLeavesNoStaleIds)
{
    PlanBuilder builder;
    const std::string two = R"({address="192.0.2.21"},{address="192.0.2.22"})";
    const std::string three = R"({address="192.0.2.24"},{address="192.0.2.21"},{address="192.0.2.22"})";
    auto first = builder.build(load(service("web", "192.0.2.100:80", "ipip", two)));
    ASSERT_TRUE(first.ok()) << first.error();

    auto broken = load(service("web", "192.0.2.100:80", "ipip", three) +
                       service("bad", "192.0.2.101:80", "ipip", R"({address="192.0.2.31"})"));
    broken.services[1].table_size = 4;  // Maglev refuses it (not prime)
    ASSERT_FALSE(builder.build(broken).ok());

    auto next = builder.build(load(service("web", "192.0.2.100:80", "ipip", three)));
    ASSERT_TRUE(next.ok()) << next.error();
    const auto ids = ids_of(*next);
    EXPECT_EQ(ids.at("web/192.0.2.21"), 0u);
    EXPECT_EQ(ids.at("web/192.0.2.22"), 1u);
    EXPECT_EQ(ids.at("web/192.0.2.24"), 2u);
    std::set<uint32_t> named(next->services[0].ring.begin(), next->services[0].ring.end());
    EXPECT_EQ(named, (std::set<uint32_t>{0, 1, 2}));
}

// service.hash = "client" reaches both planes as SLUICE_VIP_F_HASH_NO_SPORT
// (the pipelines' handling of the flag is in the shared fixture table);
// the default hashes the 5-tuple.
TEST(ForwardingPlan, ClientHashSetsNoSourcePortFlag)
{
    PlanBuilder builder;
    auto plan = builder.build(load(service("sticky", "192.0.2.100:80", "ipip", R"({address="192.0.2.21"})") +
                                   "hash = \"client\"\n" +
                                   service("plain", "192.0.2.101:80", "ipip", R"({address="192.0.2.21"})")));
    ASSERT_TRUE(plan.ok()) << plan.error();
    ASSERT_EQ(plan->services.size(), 2u);
    EXPECT_EQ(plan->services[0].flags & SLUICE_VIP_F_HASH_NO_SPORT, SLUICE_VIP_F_HASH_NO_SPORT);
    EXPECT_EQ(plan->services[1].flags & SLUICE_VIP_F_HASH_NO_SPORT, 0);

    sluice::driver::StartedPort port;
    port.port_id = 0;
    port.mac = {2, 0, 0, 0, 0, 0x99};
    port.mtu = 1500;
    auto state = sluice::driver::build_dpdk_state(
        *plan, {port}, [](const sluice::model::IpAddress&) { return std::optional<sluice::model::MacAddress>{}; },
        false);
    ASSERT_TRUE(state.ok()) << state.error();
    sluice_flow_key key{};
    key.family = SLUICE_FAMILY_IPV4;
    key.proto = SLUICE_IPPROTO_TCP;
    key.dst.bytes[0] = 192;
    key.dst.bytes[2] = 2;
    key.dst.bytes[3] = 100;
    key.dport = __builtin_bswap16(80);
    const auto* sticky = (*state)->find_service(key);
    ASSERT_NE(sticky, nullptr);
    EXPECT_EQ(sticky->meta.flags & SLUICE_VIP_F_HASH_NO_SPORT, SLUICE_VIP_F_HASH_NO_SPORT);
    key.dst.bytes[3] = 101;
    const auto* plain = (*state)->find_service(key);
    ASSERT_NE(plain, nullptr);
    EXPECT_EQ(plain->meta.flags & SLUICE_VIP_F_HASH_NO_SPORT, 0);
}

// The snapshot: L2 DSR backends carry their neighbour's MAC, the port's
// next hop is the gateway's, draining backends stay valid, the VIP key has
// its port in network order, and the exception path is off without a TAP.
TEST(DpdkState, TakesMacsFromNeighbours)
{
    PlanBuilder builder;
    auto plan = builder.build(load(
        service("dsr", "192.0.2.100:80", "l2dsr", R"({address="192.0.2.21"},{address="192.0.2.22", state="draining"})") +
        service("tun", "192.0.2.101:80", "ipip", R"({address="192.0.2.31"})")));
    ASSERT_TRUE(plan.ok()) << plan.error();
    EXPECT_EQ(sluice::driver::next_hop_addresses(*plan).size(), 3u);  // .1 (gateway), .21, .22

    std::map<std::string, sluice::model::MacAddress> macs{
        {"192.0.2.1", {{2, 0, 0, 0, 0, 1}}}, {"192.0.2.21", {{2, 0, 0, 0, 0, 0x21}}}};
    auto lookup = [&](const sluice::model::IpAddress& a) -> std::optional<sluice::model::MacAddress> {
        auto it = macs.find(a.to_string());
        if (it == macs.end()) return std::nullopt;
        return it->second;
    };
    sluice::driver::StartedPort port;
    port.port_id = 3;
    port.mac = {2, 0, 0, 0, 0, 0x99};
    port.mtu = 1600;
    auto state = sluice::driver::build_dpdk_state(*plan, {port}, lookup, false);
    ASSERT_TRUE(state.ok()) << state.error();
    const auto& st = **state;
    EXPECT_FALSE(st.exception_path_enabled());
    ASSERT_NE(st.port(3), nullptr);
    EXPECT_EQ(st.port(3)->nexthop_mac[5], 1);
    EXPECT_EQ(st.port(3)->egress_port, 3);
    EXPECT_EQ(st.port(3)->mtu, 1600);

    const auto ids = ids_of(*plan);
    const sluice_backend* b21 = st.backend(ids.at("dsr/192.0.2.21"));
    const sluice_backend* b22 = st.backend(ids.at("dsr/192.0.2.22"));
    ASSERT_NE(b21, nullptr);
    ASSERT_NE(b22, nullptr);
    EXPECT_EQ(b21->mac[5], 0x21);
    EXPECT_EQ(b21->flags, SLUICE_BACKEND_F_VALID);
    EXPECT_EQ(b22->flags, SLUICE_BACKEND_F_VALID | SLUICE_BACKEND_F_DRAINING);
    EXPECT_EQ(b22->mac[5], 0);  // unresolved: the data plane counts no_nexthop

    sluice_flow_key key{};
    key.family = SLUICE_FAMILY_IPV4;
    key.proto = SLUICE_IPPROTO_TCP;
    key.dst.bytes[0] = 192;
    key.dst.bytes[2] = 2;
    key.dst.bytes[3] = 101;
    key.dport = __builtin_bswap16(80);
    const auto* vip = st.find_service(key);
    ASSERT_NE(vip, nullptr);
    EXPECT_EQ(vip->meta.forwarding, SLUICE_FWD_IPIP);
}

// The ICMP-error limit: the defaults without the keys, the operator's values
// with them, carried from the config through the plan into the snapshot.
TEST(DpdkState, CarriesTheIcmpErrorLimit)
{
    auto lookup = [](const sluice::model::IpAddress&) -> std::optional<sluice::model::MacAddress> {
        return std::nullopt;
    };
    sluice::driver::StartedPort port;
    for (const auto& [keys, per_sec, burst] :
         {std::tuple{std::string(), uint64_t{1000}, uint64_t{50}},
          std::tuple{std::string("icmp_errors_per_sec = 7\nicmp_errors_burst = 3\n"), uint64_t{7}, uint64_t{3}},
          std::tuple{std::string("icmp_errors_per_sec = 0\n"), uint64_t{0}, uint64_t{50}}}) {
        std::string text = std::string(kNode) + service("tun", "192.0.2.101:80", "ipip", R"({address="192.0.2.31"})");
        text.insert(text.find("type = \"dpdk\"\n") + 14, keys);
        auto r = sluice::config::load_string(text, "plan_test.toml");
        ASSERT_TRUE(r.ok()) << text;
        PlanBuilder builder;
        auto plan = builder.build(*r.config);
        ASSERT_TRUE(plan.ok()) << plan.error();
        EXPECT_EQ(plan->node.icmp_errors_per_sec, per_sec);
        EXPECT_EQ(plan->node.icmp_errors_burst, burst);
        auto state = sluice::driver::build_dpdk_state(*plan, {port}, lookup, false);
        ASSERT_TRUE(state.ok()) << state.error();
        EXPECT_EQ((*state)->icmp_error_limit().per_sec, per_sec);
        EXPECT_EQ((*state)->icmp_error_limit().burst, burst);
    }
}

// An egress MTU that leaves a client less than its family's minimum after
// the tunnel header is named, with the service and the MTU that would do;
// one that leaves enough is not; the log says each line once.
TEST(MtuCheck, WarnsBelowTheFamilyMinimum)
{
    std::string text = std::string(kNode) +
                       service("v6", "[2001:db8::100]:80", "ipip", R"({address="2001:db8:1::21"})") +
                       service("v4", "192.0.2.101:80", "ipip", R"({address="192.0.2.31"})");
    text.insert(text.find("source_ipv4"), "source_ipv6 = \"2001:db8::2\"\n");
    auto loaded = sluice::config::load_string(text, "plan_test.toml");
    std::string diags;
    for (const auto& d : loaded.diagnostics) diags += d.to_string() + "\n";
    ASSERT_TRUE(loaded.ok()) << diags;
    PlanBuilder builder;
    auto plan = builder.build(*loaded.config);
    ASSERT_TRUE(plan.ok()) << plan.error();
    EXPECT_TRUE(sluice::driver::small_mtu_warnings(*plan, {1500}).empty());
    EXPECT_TRUE(sluice::driver::small_mtu_warnings(*plan, {1320}).empty()) << "1320 - 40 = 1280 exactly";
    auto low = sluice::driver::small_mtu_warnings(*plan, {1319});
    ASSERT_EQ(low.size(), 1u);
    EXPECT_NE(low[0].find("service v6"), std::string::npos) << low[0];
    EXPECT_NE(low[0].find("egress lan has MTU 1319"), std::string::npos) << low[0];
    EXPECT_NE(low[0].find("leaves 1279 bytes"), std::string::npos) << low[0];
    EXPECT_NE(low[0].find("at least 1320"), std::string::npos) << low[0];
    auto tiny = sluice::driver::small_mtu_warnings(*plan, {595});
    ASSERT_EQ(tiny.size(), 2u);
    EXPECT_NE(tiny[1].find("service v4"), std::string::npos) << tiny[1];
    EXPECT_NE(tiny[1].find("at least 596"), std::string::npos) << tiny[1];  // 576 + 20 (IPIP over IPv4)

    sluice::driver::MtuWarningLog log;
    EXPECT_EQ(log.fresh(tiny).size(), 2u);
    EXPECT_TRUE(log.fresh(tiny).empty());
    EXPECT_EQ(log.fresh(low).size(), 1u) << "another MTU is another line";
}

// EAL arguments: lcores from the config, the operator's flags verbatim, and
// a per-process --file-prefix unless the operator chose one.
TEST(DpdkDriver, EalArguments)
{
    sluice::model::DpdkSettings s;
    s.main_lcore = 0;
    s.worker_lcores = {1, 3};
    s.eal_args = {"--in-memory"};
    EXPECT_EQ(sluice::driver::DpdkDriver::eal_args(s, 42),
              (std::vector<std::string>{"-l", "0,1,3", "--main-lcore", "0", "--in-memory",
                                        "--file-prefix=sluiced-42"}));
    s.eal_args = {"--file-prefix=mine", "--no-huge"};
    EXPECT_EQ(sluice::driver::DpdkDriver::eal_args(s, 42),
              (std::vector<std::string>{"-l", "0,1,3", "--main-lcore", "0", "--file-prefix=mine", "--no-huge"}));
}

}  // namespace
