// Runs every packet of the shared fixture table (tests/fixtures/) through
// the loaded xdp_lb with BPF_PROG_TEST_RUN, one call per packet on an empty
// connection table, and checks the verdict (XDP_TX / XDP_REDIRECT ↔ tx:PORT,
// XDP_PASS ↔ exception, XDP_DROP ↔ drop:LABEL from the per-CPU stats delta),
// the account and the exact output bytes. Where the XDP plane differs by
// design, the difference is named by xdp_documented_difference() (see
// xdp_test_support.h) and checked against its own expectation: no fixture
// is skipped.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cerrno>
#include <map>
#include <string>

#include "core/pipeline.h"
#include "fixture_loader.h"
#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

const FixtureTable& table()
{
    static const FixtureTable t = [] {
        auto r = load_fixture_table(source_path("tests/fixtures"));
        if (!r) {
            ADD_FAILURE() << r.error();
            return FixtureTable{};
        }
        return std::move(*r);
    }();
    return t;
}

// One runner per distinct config (fixtures with a config_patch get theirs).
XdpRunner* runner_for(const nlohmann::json& config, std::string& error)
{
    static std::map<std::string, std::unique_ptr<XdpRunner>> runners;
    const std::string key = config.dump();
    auto it = runners.find(key);
    if (it != runners.end()) return it->second.get();
    auto r = XdpRunner::create(config);
    if (!r) {
        error = r.error();
        return nullptr;
    }
    return (runners[key] = std::move(*r)).get();
}

// The core's verdict and output for a fixture with ample headroom: the
// expectation where XDP cannot reproduce a buffer condition.
std::pair<std::string, std::vector<uint8_t>> core_with_headroom(const Fixture& f, uint32_t headroom)
{
    auto st = build_state(f.config);
    if (!st) return {"core state: " + st.error(), {}};
    core::Worker w({1024, 300'000'000'000ull, 10'000'000'000ull, 30'000'000'000ull});
    std::vector<uint8_t> buf(headroom + f.input.size() + 2048, 0);
    std::copy(f.input.begin(), f.input.end(), buf.begin() + headroom);
    core::Packet pkt{buf.data() + headroom, static_cast<uint32_t>(f.input.size()), headroom, f.in_port, 0};
    core::Packet* pkts[1] = {&pkt};
    core::Verdict v[1];
    core::process_burst(w, pkts, 1, **st, 1, v);
    return {verdict_string(v[0]), std::vector<uint8_t>(pkt.data, pkt.data + pkt.len)};
}

class XdpFixture : public ::testing::TestWithParam<size_t> {};

// The table loads and the program passes the verifier with the fixture
// config in its maps.
TEST(XdpFixtureTable, LoadsAndVerifies)
{
    SLUICE_REQUIRE_ROOT();
    ASSERT_FALSE(table().fixtures.empty());
    std::string error;
    XdpRunner* r = runner_for(table().base_config, error);
    ASSERT_NE(r, nullptr) << error;
    EXPECT_GT(r->dataplane().program_instructions(), 0u);
    std::printf("xdp_lb: %u BPF instructions after verification\n", r->dataplane().program_instructions());
}

// Each fixture: same verdict, same account, same bytes as the table says
// (or the documented XDP expectation).
TEST_P(XdpFixture, MatchesTable)
{
    SLUICE_REQUIRE_ROOT();
    const Fixture& f = table().fixtures.at(GetParam());
    SCOPED_TRACE(f.name + ": " + f.description);
    std::string error;
    XdpRunner* r = runner_for(f.config, error);
    ASSERT_NE(r, nullptr) << error;
    ASSERT_TRUE(r->dataplane().clear_connections()) << "fresh connection table";

    const XdpRun run = r->run(f.input, f.in_port);
    switch (xdp_documented_difference(f)) {
    case XdpDifference::kRefusedByKernel:
        EXPECT_EQ(run.error, EINVAL) << "test run of a " << f.input.size() << "-byte frame";
        return;
    case XdpDifference::kAlwaysPass:
        ASSERT_EQ(run.error, 0);
        EXPECT_EQ(run.retval, static_cast<uint32_t>(XDP_PASS));
        EXPECT_EQ(run.account, "exception");
        return;
    case XdpDifference::kHeadroomAlwaysEnough: {
        ASSERT_EQ(run.error, 0);
        const auto [verdict, bytes] = core_with_headroom(f, 256);
        EXPECT_EQ(run.verdict, verdict);
        EXPECT_EQ(run.account, "tx");
        EXPECT_EQ(run.output, bytes) << describe_difference(bytes, run.output.data(), run.output.size());
        return;
    }
    case XdpDifference::kNone:
        break;
    }
    ASSERT_EQ(run.error, 0) << "BPF_PROG_TEST_RUN failed";
    const std::string expected_verdict = as_xdp_verdict(f.verdict);
    const std::string expected_account = as_xdp_verdict(f.account);
    EXPECT_EQ(run.verdict, expected_verdict);
    EXPECT_EQ(run.account, expected_account);
    EXPECT_EQ(run.icmp_sent, f.account == "drop:mtu_exceeded" && f.verdict.rfind("tx:", 0) == 0);
    if (f.has_output) {
        EXPECT_EQ(run.output, f.output) << describe_difference(f.output, run.output.data(), run.output.size());
    } else if (run.retval == XDP_PASS) {
        EXPECT_EQ(run.output, f.input) << "a passed frame reaches the kernel unchanged";
    }
}

INSTANTIATE_TEST_SUITE_P(Table, XdpFixture, ::testing::Range<size_t>(0, table().fixtures.size()),
                         [](const ::testing::TestParamInfo<size_t>& param_info) {
                             return table().fixtures.at(param_info.param).name;
                         });

}  // namespace
}  // namespace sluice::testing
