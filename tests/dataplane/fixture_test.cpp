// Runs every packet of the shared fixture table (tests/fixtures/, built by
// gen_fixtures.py with scapy, independently of this code) through the core
// pipeline on plain buffers with mbuf-like headroom, and checks verdict,
// output bytes and the accounting of every packet. Fixtures with a
// "filters" config run through the DPDK plane's filters (FilterSet as the
// core's filter policy), which need an EAL for their LPM tables.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <numeric>

#include "core/pipeline.h"
#include "core/pipeline_impl.h"
#include "dataplane/dpdk/eal.h"
#include "filter/pipeline_filter.h"
#include "fixture_filters.h"
#include "fixture_loader.h"
#include "fixture_table.h"
#include "test_env.h"

namespace sluice::testing {
namespace {

using core::Packet;
using core::Verdict;

constexpr size_t kTailroom = 2048;

// The EAL the filters' rte_lpm tables live in: no hugepages, no PCI, a
// per-process prefix; room for a few filter sets of 64 MiB per family.
class EalEnvironment : public ::testing::Environment {
public:
    void SetUp() override
    {
        auto eal = dpdk::Eal::init({"--no-huge", "--no-pci", "-m", "512", "--no-shconf", "--file-prefix",
                                    "sluice-fixture-" + std::to_string(::getpid()), "-l", "0", "--log-level", "4"});
        ASSERT_TRUE(eal.ok()) << eal.error();
        eal_ = std::move(*eal);
    }
    void TearDown() override { eal_.reset(); }

private:
    std::unique_ptr<dpdk::Eal> eal_;
};
[[maybe_unused]] ::testing::Environment* const kEal = ::testing::AddGlobalTestEnvironment(new EalEnvironment);

// A frame in a buffer laid out like an mbuf: headroom, frame, tailroom.
struct Buffer {
    std::vector<uint8_t> bytes;
    Packet pkt;
    explicit Buffer(const Fixture& f) : bytes(f.headroom + f.input.size() + kTailroom, 0xEE)
    {
        std::copy(f.input.begin(), f.input.end(), bytes.begin() + f.headroom);
        pkt = Packet{bytes.data() + f.headroom, static_cast<uint32_t>(f.input.size()), f.headroom, f.in_port, 0};
    }
};

// A worker and its filter policy: process_burst with the snapshot's
// FilterSet when it has one (the DPDK runtime's pipeline), without any
// filter code otherwise.
struct FilteredWorker {
    core::Worker worker{small_conn_config()};
    filter::PipelineFilter filter{0, 1};

    void run(Packet** pkts, uint16_t n, const core::ForwardingState& st, const filter::FilterSet* filters,
             uint64_t now, Verdict* out)
    {
        if (filters != nullptr) {
            filter.begin_burst(*filters, now);  // the same clock for buckets (ns) and the table (ticks)
            core::process_burst(worker, pkts, n, st, now, out, filter);
        } else {
            core::process_burst(worker, pkts, n, st, now, out);
        }
    }
};

class PacketFixture : public ::testing::TestWithParam<size_t> {};

// The table loads, is not empty and covers every category the core promises.
TEST(FixtureTable, LoadsWithEveryCategory)
{
    ASSERT_GT(table().fixtures.size(), 50u);
    std::map<std::string, int> cats;
    for (const auto& f : table().fixtures) cats[f.category]++;
    for (const char* c : {"forwarding", "l2", "l3", "vip", "exception", "icmp", "fragment", "mtu", "malformed", "filter"})
        EXPECT_GT(cats[c], 0) << c;
}

// One packet, fresh worker (after the packets of the fixtures its `after`
// names, each with its own verdict): the verdict, the exact output frame,
// and exactly one counter moved, the one the fixture names.
TEST_P(PacketFixture, VerdictBytesAndAccounting)
{
    const Fixture& f = table().fixtures.at(GetParam());
    SCOPED_TRACE(f.name + ": " + f.description);
    auto state = build_state(f.config);
    ASSERT_TRUE(state.ok()) << state.error();
    auto filters = build_filters(f.config, 1);
    ASSERT_TRUE(filters.ok()) << filters.error();
    FilteredWorker fw;
    core::Worker& worker = fw.worker;
    constexpr uint64_t kNow = 1'000'000'000ull;
    auto prior = prerequisites(table(), f);
    ASSERT_TRUE(prior.ok()) << prior.error();
    for (const Fixture* p : *prior) {
        ASSERT_EQ(p->config, f.config) << "a sequence shares one config";
        Buffer pb(*p);
        Packet* pp[1] = {&pb.pkt};
        Verdict pv[1];
        fw.run(pp, 1, **state, filters->get(), kNow, pv);
        ASSERT_EQ(verdict_string(pv[0]), p->verdict) << "prerequisite " << p->name;
    }
    // Counters from here on are this packet's alone.
    const uint64_t backend_before = f.backend >= 0 ? worker.backend_counters[f.backend].packets : 0;
    worker.stats = {};
    Buffer buf(f);
    Packet* pkts[1] = {&buf.pkt};
    Verdict v[1];
    fw.run(pkts, 1, **state, filters->get(), kNow, v);

    EXPECT_EQ(verdict_string(v[0]), f.verdict);
    EXPECT_EQ(account_string(v[0]), f.account);
    if (f.has_output) {
        EXPECT_EQ(describe_difference(f.output, buf.pkt.data, buf.pkt.len), "");
    }
    // The packet never escapes its buffer.
    EXPECT_GE(buf.pkt.data, buf.bytes.data());
    EXPECT_EQ(static_cast<size_t>(buf.pkt.data - buf.bytes.data()), buf.pkt.headroom);
    EXPECT_LE(buf.pkt.data + buf.pkt.len, buf.bytes.data() + buf.bytes.size());

    const sluice_stats& s = worker.stats;
    EXPECT_EQ(s.rx_packets, 1u);
    EXPECT_EQ(s.rx_bytes, f.input.size());
    EXPECT_EQ(accounted(s), 1u);
    if (f.account == "tx") {
        EXPECT_EQ(s.tx_packets, 1u);
        EXPECT_EQ(s.tx_bytes, buf.pkt.len);
    } else if (f.account == "exception") {
        EXPECT_EQ(s.exception_packets, 1u);
    } else if (f.account == "control") {
        EXPECT_EQ(s.control_packets, 1u);
    } else {
        const std::string label = f.account.substr(5);
        for (uint8_t r = 0; r < SLUICE_DROP_MAX; ++r) EXPECT_EQ(s.drops[r], drop_label(r) == label ? 1u : 0u) << r;
    }
    // An ICMP error sent in place of a packet is counted as such.
    EXPECT_EQ(s.icmp_sent, v[0].action == core::Action::kTx && !v[0].counted_as_tx() ? 1u : 0u);
    EXPECT_EQ(s.icmp_rate_limited, 0u) << "the fixtures' ICMP-error bucket (config.json) must never run dry";
    if (f.backend >= 0 && v[0].counted_as_tx()) {
        EXPECT_EQ(worker.backend_counters[f.backend].packets, backend_before + 1);
    }
}

std::string fixture_name(const ::testing::TestParamInfo<size_t>& info)
{
    return table().fixtures.at(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Table, PacketFixture,
                         ::testing::Range<size_t>(0, table().fixtures.size()), fixture_name);

// The whole table through one worker in bursts of 32 (the runtime's burst
// size), sharing the connection table: same verdicts and bytes as one by
// one, and rx = tx + exception + control + sum(drops) over the lot.
TEST(FixtureTable, WholeTableInBurstsAccountsForEveryPacket)
{
    std::map<std::string, std::unique_ptr<const core::ForwardingState>> states;
    std::map<std::string, std::unique_ptr<const filter::FilterSet>> filter_sets;
    FilteredWorker fw;
    core::Worker& worker = fw.worker;
    std::vector<const Fixture*> group;
    auto run = [&](const std::string& key) {
        const core::ForwardingState& st = *states[key];
        std::vector<std::unique_ptr<Buffer>> bufs;
        std::vector<Packet*> pkts;
        for (const Fixture* f : group) {
            bufs.push_back(std::make_unique<Buffer>(*f));
            pkts.push_back(&bufs.back()->pkt);
        }
        std::vector<Verdict> v(pkts.size());
        fw.run(pkts.data(), static_cast<uint16_t>(pkts.size()), st, filter_sets[key].get(), 2'000'000'000ull, v.data());
        for (size_t i = 0; i < group.size(); ++i) {
            EXPECT_EQ(verdict_string(v[i]), group[i]->verdict) << group[i]->name;
            if (group[i]->has_output) {
                EXPECT_EQ(describe_difference(group[i]->output, pkts[i]->data, pkts[i]->len), "") << group[i]->name;
            }
        }
        group.clear();
    };
    // Consecutive fixtures with the same config share a burst; sequences
    // (`after`) are listed in order, so they replay as written.
    std::string current;
    for (const auto& f : table().fixtures) {
        const std::string key = f.config.dump();
        if (!states.count(key)) {
            auto st = build_state(f.config);
            ASSERT_TRUE(st.ok()) << st.error();
            states[key] = std::move(*st);
            auto fs = build_filters(f.config, 1);
            ASSERT_TRUE(fs.ok()) << fs.error();
            filter_sets[key] = std::move(*fs);
        }
        if ((key != current && !group.empty()) || group.size() == 32) run(current);
        current = key;
        group.push_back(&f);
    }
    if (!group.empty()) run(current);
    EXPECT_EQ(worker.stats.rx_packets, table().fixtures.size());
    EXPECT_EQ(accounted(worker.stats), worker.stats.rx_packets);
}

// Every strict prefix of every fixture frame (the malformed corpus at every
// byte, not only at header boundaries) is dropped or excepted, never sent,
// and is processed in a buffer that ends exactly at the frame (so a read past
// the end shows under ASan/valgrind).
TEST(FixtureTable, EveryTruncationIsRefused)
{
    std::map<std::string, std::unique_ptr<const core::ForwardingState>> states;
    core::Worker worker(small_conn_config());
    uint64_t packets = 0;
    for (const auto& f : table().fixtures) {
        if (f.verdict.rfind("tx:", 0) != 0 || f.name == "eth_padding_trimmed") continue;
        const std::string key = f.config.dump();
        if (!states.count(key)) states[key] = build_state(f.config).value();
        for (size_t len = 0; len < f.input.size(); ++len) {
            auto bytes = std::make_unique<uint8_t[]>(f.headroom + len + 1);
            std::copy(f.input.begin(), f.input.begin() + static_cast<long>(len), bytes.get() + f.headroom);
            Packet pkt{bytes.get() + f.headroom, static_cast<uint32_t>(len), f.headroom, f.in_port, 0};
            Packet* pkts[1] = {&pkt};
            Verdict v[1];
            core::process_burst(worker, pkts, 1, *states[key], 1, v);
            ++packets;
            EXPECT_NE(v[0].action, core::Action::kTx) << f.name << " cut at " << len << ": " << verdict_string(v[0]);
        }
    }
    EXPECT_EQ(accounted(worker.stats), packets);
}

}  // namespace
}  // namespace sluice::testing
