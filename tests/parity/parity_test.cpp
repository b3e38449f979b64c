// Parity: the same config in both data planes — the core pipeline the DPDK
// runtime runs (ForwardingState + process_burst) and xdp_lb through
// BPF_PROG_TEST_RUN — gives the same verdict, the same account and the same
// output bytes for every fixture and for random client→VIP traffic. The
// only differences allowed are the ones xdp_documented_difference() names.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "core/pipeline.h"
#include "fixture_loader.h"
#include "fixture_table.h"
#include "random_packets.h"
#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

constexpr uint32_t kHeadroom = 256;  // XDP_PACKET_HEADROOM: both planes have the same room
constexpr int kRandomPackets = 120000;

uint64_t test_seed()
{
    if (const char* env = std::getenv("SLUICE_TEST_SEED"); env != nullptr && *env != '\0')
        return std::strtoull(env, nullptr, 0);
    return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

struct CoreResult {
    std::string verdict;
    std::string account;
    std::vector<uint8_t> output;
};

// The core with one worker that lives as long as the plane pair, so the
// connection tables of both planes see the same history.
class CorePlane {
public:
    static Result<std::unique_ptr<CorePlane>> create(const nlohmann::json& config)
    {
        auto st = build_state(config);
        if (!st) return make_error(st.error());
        return std::unique_ptr<CorePlane>(new CorePlane(std::move(*st)));
    }

    CoreResult run(const std::vector<uint8_t>& frame, uint16_t in_port)
    {
        std::vector<uint8_t> buf(kHeadroom + frame.size() + 64, 0);
        std::copy(frame.begin(), frame.end(), buf.begin() + kHeadroom);
        core::Packet pkt{buf.data() + kHeadroom, static_cast<uint32_t>(frame.size()), kHeadroom, in_port, 0};
        core::Packet* pkts[1] = {&pkt};
        core::Verdict v[1];
        core::process_burst(worker_, pkts, 1, *state_, 1, v);
        CoreResult r{as_xdp_verdict(verdict_string(v[0])), as_xdp_verdict(account_string(v[0])), {}};
        if (v[0].action == core::Action::kTx) r.output.assign(pkt.data, pkt.data + pkt.len);
        return r;
    }

private:
    explicit CorePlane(std::unique_ptr<const core::ForwardingState> st)
        : state_(std::move(st)), worker_({1u << 18, 300'000'000'000ull, 300'000'000'000ull, 300'000'000'000ull})
    {
    }
    std::unique_ptr<const core::ForwardingState> state_;
    core::Worker worker_;
};

// Compares one packet's fate in both planes; "" when they agree.
std::string compare(const CoreResult& c, const XdpRun& x)
{
    if (x.error != 0) return "test run failed: errno " + std::to_string(x.error);
    if (c.verdict != x.verdict) return "verdict: core " + c.verdict + ", xdp " + x.verdict;
    if (c.account != x.account) return "account: core " + c.account + ", xdp " + x.account;
    if (c.verdict.rfind("tx:", 0) == 0 && c.output != x.output)
        return "output: " + describe_difference(c.output, x.output.data(), x.output.size());
    return "";
}

// Every fixture: both planes agree, each on a fresh connection table.
TEST(Parity, EveryFixture)
{
    SLUICE_REQUIRE_ROOT();
    ASSERT_FALSE(table().fixtures.empty());
    int compared = 0, documented = 0;
    std::map<std::string, std::unique_ptr<XdpRunner>> runners;  // one program per distinct config
    for (const Fixture& f : table().fixtures) {
        SCOPED_TRACE(f.name);
        // Forwarding parity: the filters (ACL, rate limits, payload rules)
        // are left out of both planes here. The core alone has no filters
        // (the DPDK runtime adds them), and xdp_fixture_test checks XDP's
        // against the table.
        nlohmann::json config = f.config;
        config.erase("filters");
        std::unique_ptr<XdpRunner>& xdp = runners[config.dump()];
        if (!xdp) {
            auto created = XdpRunner::create(config);
            ASSERT_TRUE(created) << created.error();
            xdp = std::move(*created);
        }
        ASSERT_TRUE(xdp->dataplane().clear_connections());
        auto core = CorePlane::create(config);
        ASSERT_TRUE(core) << core.error();
        const XdpDifference diff = xdp_documented_difference(f);
        const XdpRun x = xdp->run(f.input, f.in_port);
        const CoreResult c = (*core)->run(f.input, f.in_port);
        if (diff != XdpDifference::kNone) {
            // The fixture test checks these expectations exactly; here only
            // that the difference is the documented one.
            ++documented;
            if (diff == XdpDifference::kRefusedByKernel) {
                EXPECT_NE(x.error, 0);
            } else if (diff == XdpDifference::kAlwaysPass) {
                EXPECT_EQ(x.verdict, "exception");
            } else {
                EXPECT_EQ(compare(c, x), "") << "with 256 bytes of headroom";
            }
            continue;
        }
        EXPECT_EQ(compare(c, x), "");
        ++compared;
    }
    std::printf("parity fixtures: %d identical, %d documented differences\n", compared, documented);
}

// Random flows to the fixture VIPs: identical verdicts, accounts and bytes.
TEST(Parity, RandomFlows)
{
    SLUICE_REQUIRE_ROOT();
    const uint64_t seed = test_seed();
    SCOPED_TRACE("SLUICE_TEST_SEED=" + std::to_string(seed));
    auto xdp = XdpRunner::create(table().base_config);
    ASSERT_TRUE(xdp) << xdp.error();
    auto core = CorePlane::create(table().base_config);
    ASSERT_TRUE(core) << core.error();
    RandomPacketSource source((*xdp)->description(), seed);

    std::map<std::string, int> by_verdict;
    int mismatches = 0;
    for (int i = 0; i < kRandomPackets; ++i) {
        const RandomPacket p = source.next();
        const XdpRun x = (*xdp)->run(p.frame, p.in_port);
        const CoreResult c = (*core)->run(p.frame, p.in_port);
        const std::string diff = compare(c, x);
        if (!diff.empty()) {
            if (++mismatches <= 10) {
                std::string hex;
                for (uint8_t b : p.frame) {
                    char h[3];
                    std::snprintf(h, sizeof h, "%02x", b);
                    hex += h;
                }
                ADD_FAILURE() << "packet " << i << " on port " << p.in_port << ": " << diff << "\n  input " << hex;
            }
            continue;
        }
        ++by_verdict[c.account == "drop:mtu_exceeded" && c.verdict != c.account ? "icmp:" + c.verdict : c.verdict];
    }
    EXPECT_EQ(mismatches, 0) << "seed " << seed;
    std::printf("parity random: %d packets, %d mismatches, seed %llu\n", kRandomPackets, mismatches,
                static_cast<unsigned long long>(seed));
    for (const auto& [v, n] : by_verdict) std::printf("  %-28s %d\n", v.c_str(), n);
    const sluice_stats s = *(*xdp)->dataplane().read_stats();
    std::printf("  xdp conn hits %llu, misses %llu\n", static_cast<unsigned long long>(s.conn_hits),
                static_cast<unsigned long long>(s.conn_misses));
}

}  // namespace
}  // namespace sluice::testing
