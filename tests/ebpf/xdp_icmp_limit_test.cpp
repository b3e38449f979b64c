// xdp_lb's per-CPU ICMP-error bucket (ebpf/xdp/icmp.h) through the loaded
// program with BPF_PROG_TEST_RUN, with the core's semantics
// (tests/dataplane/icmp_limit_test.cpp): a burst of errors, then oversized
// DF packets dropped MTU_EXCEEDED and counted icmp_rate_limited; a new node
// limit (a reload) takes effect at once; no IPv6 error below 1280.
//
// The program's clock is the kernel's (bpf_ktime_get_ns, CLOCK_MONOTONIC),
// so each check brackets its runs with that clock and expects exactly what
// the bracket allows: at 1 error/s, B + K packets in under a second get
// exactly B errors; only a bracket of a second or more may admit more, and
// never more than one per whole second.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <thread>
#include <vector>

#include "fixture_loader.h"
#include "fixture_table.h"
#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

// The fixture config with each CPU's ICMP-error limit set.
std::unique_ptr<XdpRunner> runner_with(uint64_t per_sec, uint64_t burst)
{
    auto r = XdpRunner::create(table().base_config);
    EXPECT_TRUE(r) << r.error();
    if (!r) return nullptr;
    xdp::Description d = (*r)->description();
    d.node.icmp_errors_per_sec = per_sec;
    d.node.icmp_errors_burst = burst;
    auto applied = (*r)->dataplane().apply(d);
    EXPECT_TRUE(applied) << applied.error();
    return std::move(*r);
}

struct Outcome {
    unsigned icmp = 0;         // XDP_TX of an error, counted icmp_sent + drop:mtu_exceeded
    unsigned limited = 0;      // XDP_DROP, counted icmp_rate_limited + drop:mtu_exceeded
    unsigned other = 0;        // anything else (a bug here)
    uint64_t elapsed_ns = 0;   // CLOCK_MONOTONIC from before the first run to after the last
};

Outcome send(XdpRunner& r, const Fixture& f, unsigned n)
{
    Outcome o;
    const uint64_t start = monotonic_ns();
    for (unsigned i = 0; i < n; ++i) {
        const XdpRun run = r.run(f.input, f.in_port);
        if (run.error == 0 && run.retval == XDP_TX && run.icmp_sent && !run.icmp_rate_limited &&
            run.account == "drop:mtu_exceeded") {
            ++o.icmp;
        } else if (run.error == 0 && run.retval == XDP_DROP && run.icmp_rate_limited && !run.icmp_sent &&
                   run.account == "drop:mtu_exceeded") {
            ++o.limited;
        } else {
            ++o.other;
        }
    }
    o.elapsed_ns = monotonic_ns() - start;
    return o;
}

// At most this many errors beyond the burst can a bucket of `per_sec` earn
// in `elapsed_ns` (whole tokens: 0 for a bracket under 1/per_sec).
unsigned refills_possible(uint64_t per_sec, uint64_t elapsed_ns)
{
    return static_cast<unsigned>(elapsed_ns * per_sec / 1'000'000'000ull);
}

// Burst B at 1/s: B + K oversized DF packets back to back get exactly B
// errors (B + refills the bracket proves possible, which in practice is 0)
// and the rest are rate-limited drops, each one MTU_EXCEEDED drop.
TEST(XdpIcmpLimit, BurstThenRateLimited)
{
    SLUICE_REQUIRE_ROOT();
    constexpr unsigned kBurst = 5, kMore = 9;
    auto r = runner_with(1, kBurst);
    ASSERT_NE(r, nullptr);
    auto before = r->dataplane().read_stats();
    ASSERT_TRUE(before);
    const Outcome o = send(*r, fixture_named("mtu_4in4_df_icmp"), kBurst + kMore);
    const unsigned extra = refills_possible(1, o.elapsed_ns);
    EXPECT_EQ(o.other, 0u);
    EXPECT_GE(o.icmp, kBurst);
    EXPECT_LE(o.icmp, kBurst + extra) << "bracket " << o.elapsed_ns << " ns";
    if (extra == 0) {
        EXPECT_EQ(o.icmp, kBurst);
        EXPECT_EQ(o.limited, kMore);
    }
    auto after = r->dataplane().read_stats();
    ASSERT_TRUE(after);
    EXPECT_EQ(after->rx_packets - before->rx_packets, kBurst + kMore);
    EXPECT_EQ(after->drops[SLUICE_DROP_MTU_EXCEEDED] - before->drops[SLUICE_DROP_MTU_EXCEEDED], kBurst + kMore);
    EXPECT_EQ(after->icmp_sent - before->icmp_sent, o.icmp);
    EXPECT_EQ(after->icmp_rate_limited - before->icmp_rate_limited, o.limited);
    EXPECT_EQ(after->tx_packets, before->tx_packets);
}

// IPv6 the same way (ICMPv6 "packet too big").
TEST(XdpIcmpLimit, Ipv6BurstThenRateLimited)
{
    SLUICE_REQUIRE_ROOT();
    constexpr unsigned kBurst = 3, kMore = 4;
    auto r = runner_with(1, kBurst);
    ASSERT_NE(r, nullptr);
    const Outcome o = send(*r, fixture_named("mtu_6in6_ptb"), kBurst + kMore);
    EXPECT_EQ(o.other, 0u);
    EXPECT_GE(o.icmp, kBurst);
    EXPECT_LE(o.icmp, kBurst + refills_possible(1, o.elapsed_ns));
    EXPECT_EQ(o.icmp + o.limited, kBurst + kMore);
}

// Tokens come back with time: at 20/s an empty bucket refuses the next error
// (unless the bracket proves 50 ms passed) and grants one after 60 ms.
TEST(XdpIcmpLimit, Refills)
{
    SLUICE_REQUIRE_ROOT();
    auto r = runner_with(20, 1);
    ASSERT_NE(r, nullptr);
    const Fixture& f = fixture_named("mtu_4in4_df_icmp");
    const Outcome first = send(*r, f, 2);
    EXPECT_EQ(first.other, 0u);
    EXPECT_GE(first.icmp, 1u);
    EXPECT_LE(first.icmp, 1u + refills_possible(20, first.elapsed_ns));
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    const Outcome later = send(*r, f, 1);
    EXPECT_EQ(later.icmp, 1u) << "a token is due every 50 ms";
}

// A new limit (what a reload writes into the node map) sets every CPU's
// bucket up again, full, at its next error; rewriting the same limit keeps
// the tokens already spent.
TEST(XdpIcmpLimit, NewLimitTakesEffect)
{
    SLUICE_REQUIRE_ROOT();
    auto r = runner_with(1, 2);
    ASSERT_NE(r, nullptr);
    const Fixture& f = fixture_named("mtu_4in4_df_icmp");
    const uint64_t start = monotonic_ns();
    EXPECT_EQ(send(*r, f, 3).limited, 1u);
    xdp::Description d = r->description();
    d.node.icmp_errors_per_sec = 1;
    d.node.icmp_errors_burst = 2;
    ASSERT_TRUE(r->dataplane().apply(d));
    const Outcome same = send(*r, f, 1);
    if (refills_possible(1, monotonic_ns() - start) == 0) {
        EXPECT_EQ(same.limited, 1u) << "same limit: no refill";
    }
    d.node.icmp_errors_burst = 6;
    ASSERT_TRUE(r->dataplane().apply(d));
    const Outcome wider = send(*r, f, 8);
    EXPECT_GE(wider.icmp, 6u);
    EXPECT_LE(wider.icmp, 6u + refills_possible(1, wider.elapsed_ns));
    EXPECT_EQ(wider.icmp + wider.limited, 8u);
}

// Rate 0: unlimited.
TEST(XdpIcmpLimit, ZeroRateIsUnlimited)
{
    SLUICE_REQUIRE_ROOT();
    auto r = runner_with(0, 1);
    ASSERT_NE(r, nullptr);
    const Outcome o = send(*r, fixture_named("mtu_4in4_df_icmp"), 200);
    EXPECT_EQ(o.icmp, 200u);
    EXPECT_EQ(o.limited, 0u);
}

// An egress whose room after the 6in6 header is under 1280: the IPv6 packet
// is dropped MTU_EXCEEDED with no "packet too big" and no token spent; at
// exactly 1280 the error goes out and reports 1280.
TEST(XdpIcmpLimit, Ipv6NeverReportsBelow1280)
{
    SLUICE_REQUIRE_ROOT();
    auto r = runner_with(1, 1);
    ASSERT_NE(r, nullptr);
    const Fixture& f = fixture_named("mtu_6in6_ptb");
    xdp::Description d = r->description();
    for (auto& p : d.ports) p.mtu = 1280 + 40 - 1;
    ASSERT_TRUE(r->dataplane().apply(d));
    for (int i = 0; i < 3; ++i) {
        const XdpRun run = r->run(f.input, f.in_port);
        EXPECT_EQ(run.retval, static_cast<uint32_t>(XDP_DROP));
        EXPECT_EQ(run.account, "drop:mtu_exceeded");
        EXPECT_FALSE(run.icmp_sent);
        EXPECT_FALSE(run.icmp_rate_limited);
    }
    for (auto& p : d.ports) p.mtu = 1280 + 40;
    ASSERT_TRUE(r->dataplane().apply(d));
    const XdpRun run = r->run(f.input, f.in_port);
    ASSERT_EQ(run.retval, static_cast<uint32_t>(XDP_TX)) << "the token is unspent";
    ASSERT_TRUE(run.icmp_sent);
    ASSERT_GE(run.output.size(), 14u + 40 + 8);
    const uint8_t* icmp6 = run.output.data() + 14 + 40;
    EXPECT_EQ(icmp6[0], 2);  // packet too big
    EXPECT_EQ((uint32_t{icmp6[4]} << 24) | (uint32_t{icmp6[5]} << 16) | (uint32_t{icmp6[6]} << 8) | icmp6[7], 1280u);
}

// The loader refuses limits the planes could not keep identical, and a
// port MTU below 68.
TEST(XdpIcmpLimit, LoaderRefusesOutOfRange)
{
    SLUICE_REQUIRE_ROOT();
    auto r = runner_with(1, 1);
    ASSERT_NE(r, nullptr);
    xdp::Description d = r->description();
    d.node.icmp_errors_burst = 0;
    EXPECT_FALSE(r->dataplane().apply(d));
    d.node.icmp_errors_burst = SLUICE_ICMP_ERRORS_MAX + 1;
    EXPECT_FALSE(r->dataplane().apply(d));
    // And a port below IPv4's minimum MTU, as the DPDK state builder.
    d = r->description();
    d.ports[0].mtu = SLUICE_MIN_PORT_MTU - 1;
    EXPECT_FALSE(r->dataplane().apply(d));
    d.ports[0].mtu = SLUICE_MIN_PORT_MTU;
    EXPECT_TRUE(r->dataplane().apply(d));
}

// A restart over pins of the layouts before the limit: a node map without
// the two fields (72-byte value) and stats without icmp_rate_limited are
// removed, said so, and replaced by sluice_node_v3 / sluice_stats_v2, never
// adopted; the per-CPU ICMP bucket is working memory and is not pinned.
TEST(XdpIcmpLimit, OldPinsAreReplacedNotAdopted)
{
    SLUICE_REQUIRE_ROOT();
    const ScratchBpffs bpffs;
    SLUICE_REQUIRE(bpffs.ok(), "a bpffs of the test's own (" + bpffs.error() + ")");
    const std::string pin = bpffs.path() + "/sluice";
    ASSERT_EQ(::mkdir(pin.c_str(), 0700), 0);
    const int old_node = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 72, 1, nullptr);
    const int old_stats = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, nullptr, 4, 80 + 8 * SLUICE_DROP_MAX, 1, nullptr);
    ASSERT_GE(old_node, 0);
    ASSERT_GE(old_stats, 0);
    ASSERT_EQ(bpf_obj_pin(old_node, (pin + "/sluice_node_v2").c_str()), 0);
    ASSERT_EQ(bpf_obj_pin(old_stats, (pin + "/sluice_stats_v1").c_str()), 0);
    ::close(old_node);
    ::close(old_stats);

    std::vector<std::string> lines;
    auto r = XdpRunner::create(table().base_config, pin, 1024, [&lines](const std::string& l) { lines.push_back(l); });
    ASSERT_TRUE(r) << r.error();
    bool node_said = false, stats_said = false;
    for (const std::string& l : lines) {
        node_said |= l.find("sluice_node_v2") != std::string::npos;
        stats_said |= l.find("sluice_stats_v1") != std::string::npos;
    }
    EXPECT_TRUE(node_said && stats_said) << "the log names both removed pins";
    EXPECT_NE(::access((pin + "/sluice_node_v2").c_str(), F_OK), 0);
    EXPECT_NE(::access((pin + "/sluice_stats_v1").c_str(), F_OK), 0);
    EXPECT_EQ(::access((pin + "/sluice_node_v3").c_str(), F_OK), 0);
    EXPECT_EQ(::access((pin + "/sluice_stats_v2").c_str(), F_OK), 0);
    EXPECT_NE(::access((pin + "/sluice_icmp_bucket").c_str(), F_OK), 0);
    // And the program counts on the new maps.
    const XdpRun run = (*r)->run(fixture_named("mtu_4in4_df_icmp").input, 0);
    EXPECT_TRUE(run.icmp_sent);
    ASSERT_TRUE((*r)->dataplane().unpin());
}

}  // namespace
}  // namespace sluice::testing
