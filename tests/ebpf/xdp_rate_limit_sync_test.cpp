// What XdpDataplane::apply() does to the per-VIP token buckets
// (sluice_buckets_v2), through the loaded program with BPF_PROG_TEST_RUN:
// DPDK's rule (WorkerRateLimiter::sync, tests/filter/rate_limit_test.cpp
// SyncKeepsStateAcrossReloads, mirrored case by case below). A publish
// that does not change a VIP's limits leaves its buckets as they are, on
// every CPU, so a drained VIP stays drained; a VIP that is new, whose
// limits changed, or whose vip_id went to another service starts again
// with exactly `burst` tokens at the time of the write, as a DPDK bucket
// does (bucket_configure). A restart over the pins keeps what the pinned
// buckets hold when the new config gives that service the same limits.
//
// Every packet's verdict is also checked against the DPDK bucket replayed
// from the XDP bucket's state before the packet run, at the program's own
// refill times (the bucket's last refill after each run): the planes'
// arithmetic is tests/ebpf/xdp_rate_limit_test.cpp's subject, here it
// turns "still refused" into an exact expectation rather than a guess.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "core/token_bucket.h"
#include "fixture_loader.h"
#include "fixture_table.h"
#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

constexpr uint64_t kNs = 1'000'000'000ull;
constexpr uint64_t kRate = 1;     // a token a second: a drained bucket earns nothing in a test's time
constexpr uint64_t kBurst = 5;
constexpr size_t kVip = 2;        // 2001:db8::10 TCP 80, fixture ipip_6in6_tcp_syn
constexpr size_t kOtherVip = 0;   // 192.0.2.10 TCP 80

// Every CPU's copy of bucket `index` (2 * vip_id + kind); empty on error.
std::vector<sluice_carried_bucket> read_buckets(XdpRunner& r, uint32_t index)
{
    const int fd = r.dataplane().map_fd("sluice_buckets_v2");
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<sluice_carried_bucket> v(static_cast<size_t>(ncpu > 0 ? ncpu : 0));
    if (fd < 0 || v.empty() || bpf_map_lookup_elem(fd, &index, v.data()) != 0) return {};
    return v;
}

bool same_bytes(const std::vector<sluice_carried_bucket>& a, const std::vector<sluice_carried_bucket>& b)
{
    return a.size() == b.size() && !a.empty() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

// Both buckets of `vip_id`, every CPU.
struct VipBuckets {
    std::vector<sluice_carried_bucket> kind[2];
    bool operator==(const VipBuckets& o) const { return same_bytes(kind[0], o.kind[0]) && same_bytes(kind[1], o.kind[1]); }
};
VipBuckets read_vip(XdpRunner& r, uint32_t vip_id) { return {{read_buckets(r, 2 * vip_id), read_buckets(r, 2 * vip_id + 1)}}; }

// `n` packets of `frame`: how many the program admitted, and how many
// verdicts differ from the DPDK bucket replayed from this CPU's packets
// bucket as it was before the first run, at the program's refill times.
struct Offered {
    unsigned admitted = 0;
    unsigned mismatches = 0;
    int errors = 0;
};
Offered offer(XdpRunner& r, int cpu, uint32_t vip_id, const std::vector<uint8_t>& frame, unsigned n)
{
    Offered o;
    const std::vector<sluice_carried_bucket> start = read_buckets(r, 2 * vip_id);
    if (start.size() <= static_cast<size_t>(cpu)) {
        ++o.errors;
        return o;
    }
    core::TokenBucket dpdk;
    dpdk = start[static_cast<size_t>(cpu)];
    std::vector<uint8_t> out;
    for (unsigned i = 0; i < n; ++i) {
        uint32_t retval = 0;
        if (r.run_raw(frame, retval, out) != 0) {
            ++o.errors;
            break;
        }
        const std::vector<sluice_carried_bucket> now = read_buckets(r, 2 * vip_id);
        if (now.size() <= static_cast<size_t>(cpu)) {
            ++o.errors;
            break;
        }
        const bool admitted = retval != XDP_DROP;
        o.admitted += admitted ? 1 : 0;
        o.mismatches += core::bucket_take(dpdk, now[static_cast<size_t>(cpu)].bucket.last_ns) != admitted ? 1 : 0;
    }
    return o;
}

// Checks that every CPU's copy of a VIP's buckets was just (re)started as
// DPDK's bucket_configure starts one: `burst` whole tokens, remainder 0,
// rate and burst the CPU's share (one share here), last refill between
// `before` and `after` (CLOCK_MONOTONIC around the apply, a microsecond of
// slack for bpf_ktime_get_ns's copy of it).
void expect_fresh(const VipBuckets& b, uint64_t packets_rate, uint64_t packets_burst, uint64_t before, uint64_t after,
                  const char* what)
{
    ASSERT_FALSE(b.kind[0].empty()) << what;
    for (const sluice_carried_bucket& c : b.kind[0]) {
        EXPECT_EQ(c.bucket.rate_per_sec, packets_rate) << what;
        EXPECT_EQ(c.bucket.burst, packets_burst) << what;
        EXPECT_EQ(c.bucket.tokens, packets_burst << core::kTokenShift) << what << ": exactly the burst, not the brim";
        EXPECT_EQ(c.carry, 0u) << what;
        EXPECT_GE(c.bucket.last_ns + 1000, before) << what << ": last refill is the write, not 0";
        EXPECT_LE(c.bucket.last_ns, after + 1000) << what;
    }
}

// The base description: each CPU enforcing the whole limit (one share),
// VIP kVip limited to kRate packets/s, burst kBurst; kOtherVip to 1/s, 3.
xdp::Description limited(const xdp::Description& base)
{
    xdp::Description d = base;
    d.node.rate_limit_shares = 1;
    for (xdp::VipSpec& v : d.vips) v.limits = {};
    d.vips.at(kVip).limits.packets_per_sec = kRate;
    d.vips.at(kVip).limits.packets_burst = kBurst;
    d.vips.at(kOtherVip).limits.packets_per_sec = 1;
    d.vips.at(kOtherVip).limits.packets_burst = 3;
    return d;
}

// The fixture config with limited(...)'s limits in it, the limited VIP's
// burst `burst` and port `port`: a runner created from it applies them in
// its first apply(), as a restarted sluiced applies its config.
nlohmann::json limited_config(uint64_t burst, uint16_t port = 80)
{
    nlohmann::json c = table().base_config;
    const std::string vip = std::to_string(c.at("vips").at(kVip).at("id").get<uint32_t>());
    const std::string other = std::to_string(c.at("vips").at(kOtherVip).at("id").get<uint32_t>());
    c["vips"][kVip]["port"] = port;
    c["filters"]["rate_limits"] = {{vip, {{"packets_per_sec", kRate}, {"packets_burst", burst}}},
                                   {other, {{"packets_per_sec", 1}, {"packets_burst", 3}}}};
    return c;
}

// Applies `d`, returning CLOCK_MONOTONIC before and after.
struct Bracket {
    uint64_t before = 0;
    uint64_t after = 0;
};
Bracket apply(XdpRunner& r, const xdp::Description& d)
{
    Bracket b;
    b.before = monotonic_ns();
    auto applied = r.dataplane().apply(d);
    b.after = monotonic_ns();
    EXPECT_TRUE(applied) << applied.error();
    return b;
}

class XdpRateLimitSync : public ::testing::Test {
protected:
    void SetUp() override
    {
        SLUICE_REQUIRE_ROOT();
        cpu_ = pin_to_this_cpu();
        ASSERT_GE(cpu_, 0);
        syn_ = fixture_named("ipip_6in6_tcp_syn").input;
        in_port_ = fixture_named("ipip_6in6_tcp_syn").in_port;
    }

    // A runner (pinned under `pin` when not empty) created from
    // limited_config(burst, port), bound to the fixture's port; `when` is
    // CLOCK_MONOTONIC around its creation (its first apply).
    std::unique_ptr<XdpRunner> start(const std::string& pin = "", uint64_t burst = kBurst, uint16_t port = 80,
                                     Bracket* when = nullptr)
    {
        Bracket b;
        b.before = monotonic_ns();
        auto r = XdpRunner::create(limited_config(burst, port), pin);
        b.after = monotonic_ns();
        EXPECT_TRUE(r) << r.error();
        if (!r) return nullptr;
        if (when != nullptr) *when = b;
        desc_ = (*r)->description();
        vip_id_ = desc_.vips[kVip].vip_id;
        other_id_ = desc_.vips[kOtherVip].vip_id;
        EXPECT_EQ(desc_.vips[kVip].limits.packets_per_sec, kRate) << "the config carries the limits";
        EXPECT_EQ(desc_.vips[kVip].limits.packets_burst, burst) << "the config carries the limits";
        EXPECT_TRUE((*r)->bind_port(in_port_));
        return std::move(*r);
    }

    // Spends the VIP's whole burst on this CPU: kBurst admitted, then drops.
    void drain(XdpRunner& r)
    {
        const Offered o = offer(r, cpu_, vip_id_, syn_, kBurst + 3);
        ASSERT_EQ(o.errors, 0);
        EXPECT_EQ(o.mismatches, 0u) << "DPDK's bucket takes the same packets";
        EXPECT_GE(o.admitted, kBurst);
        EXPECT_LE(o.admitted, kBurst + 1) << "at 1/s, at most one token earned meanwhile";
    }

    // After `change` was applied to a drained VIP: its buckets were not
    // touched, and the next packets are refused but for what the rate
    // earned since the drain (the DPDK replay says exactly which).
    void expect_still_drained(XdpRunner& r, const VipBuckets& before_apply, const char* what)
    {
        EXPECT_TRUE(read_vip(r, vip_id_) == before_apply) << what << ": every CPU's buckets untouched";
        const std::vector<sluice_carried_bucket> b = read_buckets(r, 2 * vip_id_);
        ASSERT_GT(b.size(), static_cast<size_t>(cpu_));
        const uint64_t drained_at = b[static_cast<size_t>(cpu_)].bucket.last_ns;
        const uint64_t units = b[static_cast<size_t>(cpu_)].bucket.tokens;
        const Offered o = offer(r, cpu_, vip_id_, syn_, kBurst);
        ASSERT_EQ(o.errors, 0) << what;
        EXPECT_EQ(o.mismatches, 0u) << what;
        // Tokens then: what was left (under one) plus rate × elapsed, and
        // the remainder (under one unit).
        const uint64_t elapsed = monotonic_ns() + 1000 - drained_at;
        const uint64_t bound = (units + 1 + elapsed * kRate * 1024 / kNs) >> core::kTokenShift;
        // No more than the drained bucket earned since: under a fresh
        // burst unless seconds passed on a loaded machine (the rate is
        // 1/s), when the untouched buckets above still tell kept from
        // fresh (a fixed "< kBurst" failed that way once, at load 10).
        EXPECT_LE(o.admitted, bound) << what << ": " << elapsed << " ns after the drain (a fresh burst admits " << kBurst
                                     << ")";
    }

    // After a change that must restart the VIP: every CPU's bucket fresh,
    // then the new burst admitted (plus what the rate earned since).
    void expect_restarted(XdpRunner& r, const Bracket& when, uint64_t rate, uint64_t burst, const char* what)
    {
        expect_fresh(read_vip(r, vip_id_), rate, burst, when.before, when.after, what);
        const Offered o = offer(r, cpu_, vip_id_, syn_, static_cast<unsigned>(burst) + 3);
        ASSERT_EQ(o.errors, 0) << what;
        EXPECT_EQ(o.mismatches, 0u) << what;
        const uint64_t elapsed = monotonic_ns() + 1000 - when.before;
        EXPECT_GE(o.admitted, burst) << what;
        EXPECT_LE(o.admitted, burst + (elapsed * rate + kNs - 1) / kNs) << what;
    }

    int cpu_ = -1;
    std::vector<uint8_t> syn_;
    uint16_t in_port_ = 0;
    xdp::Description desc_;
    uint32_t vip_id_ = 0;
    uint32_t other_id_ = 0;
};

// Proves a VIP's first buckets start as DPDK's: exactly `burst` tokens at
// the time of the write (not last refill 0, which refills to the brim,
// burst + 1023/1024, at the first packet), on every CPU.
TEST_F(XdpRateLimitSync, NewVipStartsWithExactlyItsBurstNow)
{
    auto r = XdpRunner::create(table().base_config);
    ASSERT_TRUE(r) << r.error();
    const xdp::Description d = limited((*r)->description());
    const Bracket when = apply(**r, d);
    expect_fresh(read_vip(**r, d.vips[kVip].vip_id), kRate, kBurst, when.before, when.after, "new VIP");
}

// DPDK case "same limits, new generation": a publish that changes nothing
// for the VIP (the same description again; a backend added; then removed)
// leaves its drained buckets drained.
TEST_F(XdpRateLimitSync, PublishWithoutLimitChangeKeepsSpentTokens)
{
    auto r = start();
    ASSERT_NE(r, nullptr);
    drain(*r);

    VipBuckets before = read_vip(*r, vip_id_);
    apply(*r, desc_);
    expect_still_drained(*r, before, "the same description again");

    xdp::Description more = desc_;
    xdp::BackendSpec extra = more.backends.at(0);
    extra.id = 0;
    for (const xdp::BackendSpec& b : more.backends) extra.id = std::max(extra.id, b.id + 1);
    more.backends.push_back(extra);
    before = read_vip(*r, vip_id_);
    apply(*r, more);
    expect_still_drained(*r, before, "a backend added");

    before = read_vip(*r, vip_id_);
    apply(*r, desc_);
    expect_still_drained(*r, before, "that backend removed");
}

// DPDK case "VIP 4's limit changes": another VIP's new limit restarts that
// VIP's buckets, at the new depth, and leaves this one drained.
TEST_F(XdpRateLimitSync, AnotherVipsLimitChangeKeepsThisOnesTokens)
{
    auto r = start();
    ASSERT_NE(r, nullptr);
    drain(*r);
    const VipBuckets before = read_vip(*r, vip_id_);
    xdp::Description d = desc_;
    d.vips[kOtherVip].limits.packets_burst = 7;
    const Bracket when = apply(*r, d);
    expect_still_drained(*r, before, "another VIP's burst changed");
    expect_fresh(read_vip(*r, other_id_), 1, 7, when.before, when.after, "the other VIP");
}

// The VIP's own limit: a new burst, then a new rate, then a new-flows
// limit (the other bucket kind; DPDK compares the four values together and
// restarts both buckets) each restart it, full at the new values.
TEST_F(XdpRateLimitSync, OwnLimitChangeRestartsTheBuckets)
{
    auto r = start();
    ASSERT_NE(r, nullptr);
    drain(*r);
    xdp::Description d = desc_;
    d.vips[kVip].limits.packets_burst = kBurst + 2;
    Bracket when = apply(*r, d);
    expect_restarted(*r, when, kRate, kBurst + 2, "burst changed");

    d.vips[kVip].limits.packets_per_sec = 2;
    when = apply(*r, d);
    expect_restarted(*r, when, 2, kBurst + 2, "rate changed");

    d.vips[kVip].limits.new_flows_per_sec = 1000;
    d.vips[kVip].limits.new_flows_burst = 1000;
    when = apply(*r, d);
    expect_restarted(*r, when, 2, kBurst + 2, "new-flows limit added");
}

// The vip_id given to another service (a different key, the same limits),
// and the same service removed then added back: both restart the buckets,
// as DPDK's do (the removal publishes zero limits for the id).
TEST_F(XdpRateLimitSync, ReusedOrReaddedVipIdRestartsTheBuckets)
{
    auto r = start();
    ASSERT_NE(r, nullptr);
    drain(*r);
    xdp::Description without = desc_;
    without.vips.erase(without.vips.begin() + static_cast<long>(kVip));
    apply(*r, without);
    Bracket when = apply(*r, desc_);
    expect_restarted(*r, when, kRate, kBurst, "removed and added back");  // drained again after

    xdp::Description reused = desc_;
    reused.vips[kVip].key.port = __builtin_bswap16(8080);  // another service, same id and limits
    when = apply(*r, reused);
    expect_fresh(read_vip(*r, vip_id_), kRate, kBurst, when.before, when.after, "id reused by another service");
}

// A restart over the pins with the same config keeps the spent tokens
// (the buckets are state, pinned so a restart keeps it); a restart whose
// config changes the VIP's limit, or gives its id to another service,
// restarts them.
TEST_F(XdpRateLimitSync, RestartOverPinsKeepsBucketsOnlyForUnchangedLimits)
{
    const ScratchBpffs bpffs;
    SLUICE_REQUIRE(bpffs.ok(), "a bpffs of the test's own (" + bpffs.error() + ")");
    const std::string pin = bpffs.path() + "/sluice";
    ASSERT_EQ(::mkdir(pin.c_str(), 0700), 0);

    auto r = start(pin);
    ASSERT_NE(r, nullptr);
    drain(*r);
    const VipBuckets before = read_vip(*r, vip_id_);
    r.reset();
    r = start(pin);
    ASSERT_NE(r, nullptr);
    expect_still_drained(*r, before, "restart, same limits");

    r.reset();
    Bracket when;
    r = start(pin, kBurst + 1, 80, &when);
    ASSERT_NE(r, nullptr);
    expect_restarted(*r, when, kRate, kBurst + 1, "restart, burst changed");  // drained again after

    r.reset();
    r = start(pin, kBurst + 1, 8080, &when);  // the id now another service's, the same limits
    ASSERT_NE(r, nullptr);
    expect_fresh(read_vip(*r, vip_id_), kRate, kBurst + 1, when.before, when.after, "restart, id reused");
    ASSERT_TRUE(r->dataplane().unpin());
}

}  // namespace
}  // namespace sluice::testing
