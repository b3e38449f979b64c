// xdp_lb's fast path (ebpf/xdp/fast_path.h) against its general path: the
// same program loaded twice, once with the fast path counting the packets
// it takes (xlb_fast_path_mode 2) and once without it (mode 0), fed the
// same packets. Proves that the fast path takes the common packet, declines
// every boundary case of the shared fixture table (taken only where the
// table below says so), and that taken or not, verdict, account and output
// bytes, the node counters and the connection table come out the same,
// over packet sequences that exercise the table (FIN/RST, a draining
// backend's SYN re-pick).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sched.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fixture_table.h"
#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

constexpr uint8_t kGeneralOnly = 0, kFastCounted = 2;

// The fixtures the fast path takes: IPv4 without options or fragmentation,
// TCP/UDP to a service (an exact or a port-0 one), IPIP or GUE to an IPv4
// or IPv6 backend, within the MTU, admitted by the ACLs, no rate limit; and
// the same packets to no service (passed to the host, or a port miss).
// Every other fixture (L2 DSR among them) must be declined.
const std::set<std::string> kTaken = {
    "ipip_4in4_tcp_syn", "ipip_4in4_tcp_established", "ipip_4in4_tcp_fin", "ipip_4in4_tcp_rst",
    "ipip_4in4_udp_no_df", "ipip_4in4_tos_copied", "ipip_4in4_tcp_sport_40002", "ipip_4in4_tcp_sport_40003",
    "ipip_4in4_tcp_sport_40004", "ipip_4in4_tcp_sport_40005", "gue_4in4_tcp", "hash_no_sport_40000",
    "hash_no_sport_51234", "vlan_one_arm_kept", "vlan_two_arm_stripped", "two_arm_no_vlan",
    "eth_padding_trimmed", "port0_vip", "port0_vip_exact_wins", "mtu_4in4_df_fits", "no_headroom",
    "acl_vip_deny_other_source", "acl_allow_list_admits", "acl_lpm_exception_allowed",
    "acl_vip_allow_under_global", "acl_global_no_match", "payload_vip_rule_match", "payload_vip_rule_no_match",
    "payload_rule_other_vip", "payload_global_rule_caseless", "payload_global_rule_udp",
    "ipip_4in6_tcp", "gue_4in6_udp", "vip_port_miss", "vip_proto_miss", "not_for_vip_v4",
    "not_for_vip_no_exception_path",
};

void stay_on_one_cpu()
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    (void)sched_setaffinity(0, sizeof(one), &one);
}

// The two loads of one config.
struct Pair {
    std::unique_ptr<XdpRunner> fast, general;
};

Result<Pair> load_pair(const nlohmann::json& config)
{
    auto f = XdpRunner::create(config, "", 65536, {}, kFastCounted);
    if (!f) return make_error(f.error());
    auto g = XdpRunner::create(config, "", 65536, {}, kGeneralOnly);
    if (!g) return make_error(g.error());
    return Pair{std::move(*f), std::move(*g)};
}

// Runs `frame` through both; expects the same result; returns whether the
// fast path took it.
bool run_both(Pair& p, const std::vector<uint8_t>& frame, uint16_t in_port, const std::string& what)
{
    const uint64_t before = p.fast->dataplane().fast_path_packets();
    const XdpRun a = p.fast->run(frame, in_port);
    const XdpRun b = p.general->run(frame, in_port);
    const uint64_t taken = p.fast->dataplane().fast_path_packets() - before;
    EXPECT_EQ(p.general->dataplane().fast_path_packets(), 0u) << what;
    EXPECT_LE(taken, 1u) << what;
    EXPECT_EQ(a.error, b.error) << what;
    EXPECT_EQ(a.retval, b.retval) << what;
    EXPECT_EQ(a.verdict, b.verdict) << what;
    EXPECT_EQ(a.account, b.account) << what;
    EXPECT_EQ(a.icmp_sent, b.icmp_sent) << what;
    EXPECT_EQ(a.output, b.output) << what;
    return taken == 1;
}

void expect_same_counters(Pair& p, const std::string& what)
{
    auto a = p.fast->dataplane().read_stats();
    auto b = p.general->dataplane().read_stats();
    ASSERT_TRUE(a && b) << what;
    EXPECT_EQ(std::memcmp(&*a, &*b, sizeof(sluice_stats)), 0) << what << ": node counters differ";
}

// Every fixture (prerequisites included) through both loads: same
// results, and the fast path taken exactly for kTaken.
TEST(XdpFastPath, FixturesTakenOrDeclinedWithSameResults)
{
    SLUICE_REQUIRE_ROOT();
    stay_on_one_cpu();
    std::map<std::string, Pair> pairs;
    std::set<std::string> seen;
    for (const Fixture& f : table().fixtures) {
        SCOPED_TRACE(f.name);
        const std::string key = f.config.dump();
        if (pairs.find(key) == pairs.end()) {
            auto p = load_pair(f.config);
            ASSERT_TRUE(p) << p.error();
            pairs.emplace(key, std::move(*p));
        }
        Pair& p = pairs.at(key);
        ASSERT_TRUE(p.fast->reset_state());
        ASSERT_TRUE(p.general->reset_state());
        for (const std::string& name : f.after) {
            for (const Fixture& g : table().fixtures) {
                if (g.name == name) run_both(p, g.input, g.in_port, f.name + " after " + name);
            }
        }
        const bool taken = run_both(p, f.input, f.in_port, f.name);
        EXPECT_EQ(taken, kTaken.count(f.name) == 1) << f.name << ": fast path " << (taken ? "took" : "declined")
                                                    << " it";
        expect_same_counters(p, f.name);
        seen.insert(f.name);
    }
    for (const std::string& name : kTaken) EXPECT_EQ(seen.count(name), 1u) << name << " is not in the table";
}

nlohmann::json sequence_config(bool draining)
{
    nlohmann::json backends = nlohmann::json::array();
    for (int id = 0; id < 3; ++id) {
        nlohmann::json flags = {"valid"};
        if (draining && id == 1) flags.push_back("draining");
        backends.push_back({{"id", id}, {"addr", "10.9.1." + std::to_string(10 + id)}, {"flags", flags}});
    }
    // Backend 1 is in the first config's rings, so flows pin on it; the
    // second drains it (in no ring, as the control plane does).
    const std::vector<uint32_t> tcp_ring = draining ? std::vector<uint32_t>{0, 2, 2, 0, 0, 2, 2}
                                                    : std::vector<uint32_t>{0, 1, 2, 1, 0, 1, 2};
    const std::vector<uint32_t> udp_ring = draining ? std::vector<uint32_t>{2, 0, 0, 2, 2, 0, 0}
                                                    : std::vector<uint32_t>{2, 1, 0, 2, 1, 0, 1};
    return {
        {"local_ipv4", "10.0.0.1"},
        {"ports", {{{"id", 0}, {"mac", "02:00:00:00:00:10"}, {"nexthop_mac", "02:00:00:00:00:fe"},
                    {"mtu", 1500}, {"egress_port", 0}}}},
        {"backends", backends},
        {"vips", {{{"id", 3}, {"addr", "198.51.100.7"}, {"port", 443}, {"proto", "tcp"}, {"forwarding", "ipip"},
                   {"ring", tcp_ring}},
                  {{"id", 4}, {"addr", "198.51.100.7"}, {"port", 53}, {"proto", "udp"}, {"forwarding", "gue"},
                   {"gue_port", 6080}, {"ring", udp_ring}}}},
    };
}

// Flows through their life (SYN, data, FIN, RST, a SYN again; UDP over
// GUE), then a backend draining
// and the same flows' SYNs re-picked: every packet the same through both
// loads, the node counters equal after each, and the connection entries of
// every flow equal at the end.
TEST(XdpFastPath, ConnectionTableSequencesMatchGeneralPath)
{
    SLUICE_REQUIRE_ROOT();
    stay_on_one_cpu();
    // Room for every flow: which entry a full bucket evicts depends on
    // the jiffy each load's packet ran in (ties go to the lowest way), so
    // two loads could evict different entries of one bucket. Evictions
    // through the fast path: xdp_conn_table_test, whose packets take it.
    auto f = XdpRunner::create(sequence_config(false), "", 1 << 16, {}, kFastCounted);
    auto g = XdpRunner::create(sequence_config(false), "", 1 << 16, {}, kGeneralOnly);
    ASSERT_TRUE(f && g);
    Pair p{std::move(*f), std::move(*g)};
    const uint8_t syn = 0x02, ack = 0x10, fin_ack = 0x11, rst = 0x04, psh_ack = 0x18;
    size_t taken = 0, runs = 0;
    auto step = [&](uint16_t client, uint8_t flags, bool udp) {
        const std::string what = std::to_string(client) + (udp ? "/udp" : "/tcp flags " + std::to_string(flags));
        taken += run_both(p, tcp_udp_frame(client, flags, udp, udp ? 53 : 443), 0, what);
        ++runs;
    };
    for (uint16_t c = 40000; c < 42000; ++c) step(c, syn, false);
    for (uint16_t c = 40000; c < 42000; c += 3) step(c, psh_ack, false);
    for (uint16_t c = 40000; c < 40100; c += 5) step(c, fin_ack, false);
    for (uint16_t c = 40001; c < 40100; c += 7) step(c, rst, false);
    for (uint16_t c = 40000; c < 40100; c += 5) step(c, ack, false);
    for (uint16_t c = 40000; c < 40100; c += 11) step(c, syn, false);
    for (uint16_t c = 50000; c < 50300; ++c) step(c, 0, true);
    expect_same_counters(p, "before draining");
    EXPECT_EQ(taken, runs) << "every packet of these flows is the common packet";

    // Backend 1 drains: a pure SYN on its flows is re-picked, the rest keep it.
    for (Pair* q : {&p}) {
        auto d = description_from_config(sequence_config(true));
        ASSERT_TRUE(d);
        for (auto& port : d->ports) port.ifindex = 1000 + port.id;
        d->node.rate_limit_shares = 1;
        // Draining keeps the runners' interface binding: only backends change.
        ASSERT_TRUE(q->fast->dataplane().apply(*d));
        ASSERT_TRUE(q->general->dataplane().apply(*d));
    }
    const size_t taken_before = taken, runs_before = runs;
    for (uint16_t c = 41000; c < 41300; ++c) step(c, c % 2 ? syn : psh_ack, false);
    for (uint16_t c = 50000; c < 50300; c += 2) step(c, 0, true);
    expect_same_counters(p, "after draining");
    EXPECT_EQ(taken - taken_before, runs - runs_before) << "draining changes the backend, not the path";

    for (uint16_t c = 40000; c < 42000; ++c) {
        sluice_flow_key k{};
        inet_pton(AF_INET, "203.0.113.5", &k.src.v4);
        inet_pton(AF_INET, "198.51.100.7", &k.dst.v4);
        k.sport = htons(c);
        k.dport = htons(443);
        k.proto = SLUICE_IPPROTO_TCP;
        k.family = SLUICE_FAMILY_IPV4;
        const auto a = p.fast->dataplane().lookup_connection(k);
        const auto b = p.general->dataplane().lookup_connection(k);
        ASSERT_EQ(a.size(), b.size()) << c;
        for (size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(a[i].entry.backend_id, b[i].entry.backend_id) << c;
            EXPECT_EQ(a[i].entry.state, b[i].entry.state) << c;
        }
    }
}

}  // namespace
}  // namespace sluice::testing
