// Replays the shared packet fixture table (tests/fixtures/) on real mbufs:
// each input goes into the RX ring of a ring ethdev standing for its
// fixture port, the real run_worker_loop with SluicePipeline runs on a
// worker lcore, and the test reads where each mbuf ended (a port's TX
// ring, the exception port's TX ring, the control ring, or back in the
// pool) and its bytes. The runtime's pipeline: forwarding state and the
// fixture config's filters published together as one snapshot.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/sluice_pipeline.h"
#include "fixture_filters.h"
#include "fixture_loader.h"
#include "fixture_table.h"
#include "sluice_rig.h"
#include "test_env.h"

namespace sluice::testing {
namespace {

using Publisher = dpdk::RcuPublisher<dpdk::Snapshot>;

// No per-lcore cache, so the pool's available count is exact at any time.
constexpr unsigned kPoolSize = 511;

// One ring ethdev per port of config.json, with DPDK port id = fixture
// port id (created first, in id order), one for the exception path (the
// TAP of every port), and the ring to the control thread (ARP/ND).
struct Rig {
    rte_mempool* pool = nullptr;
    std::vector<RingPort> ports;  // index = fixture port id
    RingPort exception;
    rte_ring* control = nullptr;
    bool ok = false;

    std::vector<rte_ring*> rx_rings() const
    {
        std::vector<rte_ring*> r;
        for (const RingPort& p : ports) r.push_back(p.rx);
        return r;
    }
};

Rig& rig()
{
    static Rig r = [] {
        Rig g;
        g.pool = rte_pktmbuf_pool_create("fx_pool", kPoolSize, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        if (g.pool == nullptr) {
            ADD_FAILURE() << "cannot create the mbuf pool";
            return g;
        }
        const auto& ports = table().base_config.at("ports");
        for (size_t id = 0; id < ports.size(); ++id) {
            if (ports[id].at("id").get<size_t>() != id) {
                ADD_FAILURE() << "config.json ports must be listed with ids 0..N-1 in order";
                return g;
            }
            auto p = make_ring_port("fx_port" + std::to_string(id), g.pool, 1024);
            if (!p) return g;
            if (p->port != id) {
                ADD_FAILURE() << "ring ethdev for fixture port " << id << " got DPDK port id " << p->port;
                return g;
            }
            g.ports.push_back(*p);
        }
        auto e = make_ring_port("fx_exception", g.pool, 1024);
        if (!e) return g;
        g.exception = *e;
        g.control = rte_ring_create("fx_control", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (g.control == nullptr) {
            ADD_FAILURE() << "cannot create the control ring";
            return g;
        }
        g.ok = true;
        return g;
    }();
    return r;
}

// The snapshot a fixture config describes: forwarding state and filters.
Result<std::unique_ptr<const dpdk::Snapshot>> build_snapshot(const nlohmann::json& config)
{
    auto state = build_state(config);
    if (!state) return Error{state.error()};
    auto filters = build_filters(config, 1);
    if (!filters) return Error{filters.error()};
    auto snapshot = std::make_unique<dpdk::Snapshot>();
    snapshot->forwarding = std::move(*state);
    snapshot->filters = std::move(*filters);
    return std::unique_ptr<const dpdk::Snapshot>(std::move(snapshot));
}

// A worker loop polling every fixture port, with the exception port and
// the control ring set.
std::unique_ptr<dpdk::WorkerLoop> make_loop(const Rig& g, sluice_stats* stats)
{
    auto loop = std::make_unique<dpdk::WorkerLoop>();
    loop->stats = stats;
    loop->control_ring = g.control;
    for (const RingPort& p : g.ports) loop->rx[loop->rx_count++] = {p.port, 0, g.exception.port};
    return loop;
}

// A copy of the fixture's input in a fresh mbuf, with the fixture's headroom.
rte_mbuf* make_mbuf(const Rig& g, const Fixture& f)
{
    rte_mbuf* m = rte_pktmbuf_alloc(g.pool);
    if (m == nullptr) {
        ADD_FAILURE() << "mbuf pool exhausted";
        return nullptr;
    }
    if (f.headroom + f.input.size() > m->buf_len) {
        ADD_FAILURE() << f.name << ": headroom + frame exceed the mbuf's " << m->buf_len << " bytes";
        rte_pktmbuf_free(m);
        return nullptr;
    }
    m->data_off = static_cast<uint16_t>(f.headroom);
    std::copy(f.input.begin(), f.input.end(), rte_pktmbuf_mtod(m, uint8_t*));
    m->data_len = static_cast<uint16_t>(f.input.size());
    m->pkt_len = static_cast<uint32_t>(f.input.size());
    return m;
}

// Where a fixture says its packet goes.
struct Expected {
    enum Kind { kTx, kException, kControl, kDrop, kUnknown } kind = kUnknown;
    uint16_t port = 0;
    std::string label;
};

Expected parse_verdict(const Fixture& f)
{
    Expected e;
    if (f.verdict.rfind("tx:", 0) == 0) {
        e.kind = Expected::kTx;
        e.port = static_cast<uint16_t>(std::stoul(f.verdict.substr(3)));
    } else if (f.verdict == "exception") {
        e.kind = Expected::kException;
    } else if (f.verdict == "control") {
        e.kind = Expected::kControl;
    } else if (f.verdict.rfind("drop:", 0) == 0) {
        e.kind = Expected::kDrop;
        e.label = f.verdict.substr(5);
    } else {
        ADD_FAILURE() << f.name << ": verdict '" << f.verdict
                      << "' is of a kind this test does not know (tx:PORT, exception, control, drop:LABEL); "
                         "teach tests/dpdk/fixture_mbuf_test.cpp where such packets go on the DPDK plane";
    }
    return e;
}

// The drop reason of a metrics label, or SLUICE_DROP_MAX.
uint8_t reason_of(const std::string& label)
{
    for (uint8_t r = 0; r < SLUICE_DROP_MAX; ++r)
        if (drop_label(r) == label) return r;
    return SLUICE_DROP_MAX;
}

// The counters a set of fixtures should move.
struct Tally {
    uint64_t tx = 0;
    uint64_t exception = 0;
    uint64_t control = 0;
    uint64_t icmp = 0;
    uint64_t drops[SLUICE_DROP_MAX] = {};

    void add(const Fixture& f)
    {
        if (f.account == "tx") {
            ++tx;
        } else if (f.account == "exception") {
            ++exception;
        } else if (f.account == "control") {
            ++control;
        } else if (f.account.rfind("drop:", 0) == 0 && reason_of(f.account.substr(5)) < SLUICE_DROP_MAX) {
            ++drops[reason_of(f.account.substr(5))];
            if (f.verdict.rfind("tx:", 0) == 0) ++icmp;  // an ICMP error sent in place of the packet
        } else {
            ADD_FAILURE() << f.name << ": account '" << f.account
                          << "' is of a kind this test does not know (tx, exception, control, drop:LABEL)";
        }
    }

    void expect_matches(const sluice_stats& s) const
    {
        EXPECT_EQ(s.tx_packets, tx);
        EXPECT_EQ(s.exception_packets, exception);
        EXPECT_EQ(s.control_packets, control);
        EXPECT_EQ(s.icmp_sent, icmp);
        EXPECT_EQ(s.icmp_rate_limited, 0u) << "the fixtures' ICMP-error bucket (config.json) must never run dry";
        for (uint8_t r = 0; r < SLUICE_DROP_MAX; ++r) EXPECT_EQ(s.drops[r], drops[r]) << "drop:" << drop_label(r);
    }
};

// What the rings held after a run: mbuf -> fixture port id, kOnException
// or kOnControl.
constexpr int kOnException = -1;
constexpr int kOnControl = -2;

struct Collected {
    std::map<rte_mbuf*, int> where;
    std::vector<rte_mbuf*> all;
};

Collected collect(const Rig& g)
{
    Collected c;
    for (size_t id = 0; id < g.ports.size(); ++id) {
        for (rte_mbuf* m : drain_ring(g.ports[id].tx)) {
            c.where[m] = static_cast<int>(id);
            c.all.push_back(m);
        }
    }
    for (rte_mbuf* m : drain_ring(g.exception.tx)) {
        c.where[m] = kOnException;
        c.all.push_back(m);
    }
    for (rte_mbuf* m : drain_ring(g.control)) {
        c.where[m] = kOnControl;
        c.all.push_back(m);
    }
    return c;
}

// The fixture's mbuf ended where its verdict says, with the expected bytes.
void expect_fate(const Fixture& f, rte_mbuf* m, const Collected& c)
{
    SCOPED_TRACE(f.name + ": " + f.description);
    const Expected e = parse_verdict(f);
    const auto it = c.where.find(m);
    switch (e.kind) {
    case Expected::kTx: {
        ASSERT_TRUE(it != c.where.end()) << "freed, expected on the TX ring of port " << e.port;
        ASSERT_EQ(it->second, e.port) << "sent on the wrong ring (-1 = exception, -2 = control)";
        EXPECT_EQ(m->nb_segs, 1);
        EXPECT_EQ(m->pkt_len, m->data_len);
        EXPECT_LE(m->data_off + m->data_len, m->buf_len);
        if (f.has_output) {
            EXPECT_EQ(describe_difference(f.output, rte_pktmbuf_mtod(m, const uint8_t*), m->data_len), "");
        }
        break;
    }
    case Expected::kException:
        ASSERT_TRUE(it != c.where.end()) << "freed, expected on the exception ring";
        ASSERT_EQ(it->second, kOnException) << "ended on ring " << it->second << " instead of the exception ring";
        // The host kernel gets the frame as it arrived.
        EXPECT_EQ(describe_difference(f.input, rte_pktmbuf_mtod(m, const uint8_t*), m->data_len), "");
        break;
    case Expected::kControl:
        ASSERT_TRUE(it != c.where.end()) << "freed, expected on the control ring";
        ASSERT_EQ(it->second, kOnControl) << "ended on ring " << it->second << " instead of the control ring";
        // The control thread gets the frame as it arrived, and its port.
        EXPECT_EQ(describe_difference(f.input, rte_pktmbuf_mtod(m, const uint8_t*), m->data_len), "");
        EXPECT_EQ(m->port, f.in_port);
        break;
    case Expected::kDrop:
        EXPECT_TRUE(it == c.where.end()) << "sent on ring " << (it == c.where.end() ? 0 : it->second)
                                         << ", expected freed (" << f.verdict << ")";
        EXPECT_LT(reason_of(e.label), SLUICE_DROP_MAX) << "unknown drop label " << e.label;
        break;
    case Expected::kUnknown:
        break;  // parse_verdict() failed the test with the reason
    }
}

void free_all_and_expect_no_leak(const Rig& g, Collected& c)
{
    for (rte_mbuf* m : c.all) rte_pktmbuf_free(m);
    c.all.clear();
    EXPECT_EQ(rte_mempool_avail_count(g.pool), kPoolSize) << "mbufs leaked";
}

class MbufFixture : public ::testing::TestWithParam<size_t> {};

// One fixture through the real worker loop on a fresh worker, after the
// fixtures its `after` names (a sequence, enqueued before it on the same
// port): each mbuf ends on the ring (or freed) its verdict names with the
// exact expected bytes, exactly the fixtures' counters moved, and every mbuf
// is back in the pool.
TEST_P(MbufFixture, VerdictBytesAndAccounting)
{
    const Fixture& f = table().fixtures.at(GetParam());
    Rig& g = rig();
    ASSERT_TRUE(g.ok);
    auto snapshot = build_snapshot(f.config);
    ASSERT_TRUE(snapshot.ok()) << snapshot.error();
    core::Worker worker(small_conn_config(), rte_get_tsc_hz());  // the pipeline feeds it TSC ticks
    auto publisher = Publisher::create(1, std::move(*snapshot));
    ASSERT_TRUE(publisher.ok()) << publisher.error();
    dpdk::FilteredSluicePipeline pipeline(worker, **publisher, 0, 1);
    auto loop = make_loop(g, &worker.stats);

    auto prior = prerequisites(table(), f);
    ASSERT_TRUE(prior.ok()) << prior.error();
    std::vector<const Fixture*> sequence = *prior;
    sequence.push_back(&f);
    std::vector<rte_mbuf*> mbufs;
    Tally expected;
    std::map<int, uint64_t> per_backend;
    uint64_t rx_bytes = 0;
    for (const Fixture* x : sequence) {
        ASSERT_EQ(x->config, f.config) << "a sequence shares one config";
        ASSERT_EQ(x->in_port, f.in_port) << "a sequence arrives on one port, so it stays in order";
        ASSERT_LT(x->in_port, g.ports.size());
        rte_mbuf* m = make_mbuf(g, *x);
        ASSERT_NE(m, nullptr);
        ASSERT_EQ(rte_ring_enqueue(g.ports[x->in_port].rx, m), 0);
        mbufs.push_back(m);
        expected.add(*x);
        rx_bytes += x->input.size();
        if (x->backend >= 0 && x->account == "tx") per_backend[x->backend]++;
    }
    WorkerLcore lcore(*loop, pipeline);
    ASSERT_TRUE(lcore.start());
    EXPECT_TRUE(lcore.wait_rx_empty(g.rx_rings()));
    lcore.stop();

    Collected c = collect(g);
    for (size_t i = 0; i < sequence.size(); ++i) expect_fate(*sequence[i], mbufs[i], c);
    EXPECT_LE(c.all.size(), sequence.size());
    const sluice_stats& s = worker.stats;
    EXPECT_EQ(s.rx_packets, sequence.size());
    EXPECT_EQ(s.rx_bytes, rx_bytes);
    EXPECT_EQ(accounted(s), sequence.size());
    expected.expect_matches(s);
    for (const auto& [backend, packets] : per_backend) {
        EXPECT_EQ(worker.backend_counters[static_cast<size_t>(backend)].packets, packets) << "backend " << backend;
    }
    free_all_and_expect_no_leak(g, c);
}

std::string fixture_name(const ::testing::TestParamInfo<size_t>& info)
{
    return table().fixtures.at(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Table, MbufFixture, ::testing::Range<size_t>(0, table().fixtures.size()), fixture_name);

// The whole table through one worker that keeps running: fixtures grouped
// by config, each group's state published (RCU) while the worker polls,
// each group enqueued at once so the loop takes full bursts of 32. Same
// fates and bytes as one by one; rx = tx + exception + control +
// sum(drops); no leak.
TEST(MbufFixtureTable, WholeTableInBurstsUnderOneRunningWorker)
{
    Rig& g = rig();
    ASSERT_TRUE(g.ok);
    ASSERT_GT(table().fixtures.size(), 32u);
    // Groups in order of first appearance; a group's fixtures keep table order.
    std::vector<std::pair<std::string, std::vector<const Fixture*>>> groups;
    for (const Fixture& f : table().fixtures) {
        const std::string key = f.config.dump();
        auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& gr) { return gr.first == key; });
        if (it == groups.end()) {
            groups.push_back({key, {}});
            it = groups.end() - 1;
        }
        it->second.push_back(&f);
    }

    core::Worker worker(small_conn_config(), rte_get_tsc_hz());  // the pipeline feeds it TSC ticks
    auto first = build_snapshot(groups.front().second.front()->config);
    ASSERT_TRUE(first.ok()) << first.error();
    auto publisher = Publisher::create(1, std::move(*first));
    ASSERT_TRUE(publisher.ok()) << publisher.error();
    dpdk::FilteredSluicePipeline pipeline(worker, **publisher, 0, 1);
    auto loop = make_loop(g, &worker.stats);
    WorkerLcore lcore(*loop, pipeline);
    ASSERT_TRUE(lcore.start());

    std::vector<std::pair<const Fixture*, rte_mbuf*>> injected;
    Tally expected;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const auto& fixtures = groups[gi].second;
        if (gi != 0) {
            // The previous group's packets are all taken; publish() returns
            // once the worker dropped the old snapshot, so this group's
            // packets can only meet its own state.
            auto st = build_snapshot(fixtures.front()->config);
            ASSERT_TRUE(st.ok()) << st.error();
            (*publisher)->publish(std::move(*st));
        }
        std::vector<std::vector<rte_mbuf*>> per_port(g.ports.size());
        for (const Fixture* f : fixtures) {
            ASSERT_LT(f->in_port, g.ports.size());
            rte_mbuf* m = make_mbuf(g, *f);
            ASSERT_NE(m, nullptr);
            per_port[f->in_port].push_back(m);
            injected.emplace_back(f, m);
            expected.add(*f);
        }
        for (size_t p = 0; p < per_port.size(); ++p) {
            const auto n = static_cast<unsigned>(per_port[p].size());
            ASSERT_EQ(rte_ring_enqueue_bulk(g.ports[p].rx, reinterpret_cast<void**>(per_port[p].data()), n, nullptr),
                      n);
        }
        ASSERT_TRUE(lcore.wait_rx_empty(g.rx_rings()));
    }
    lcore.stop();

    Collected c = collect(g);
    for (const auto& [f, m] : injected) expect_fate(*f, m, c);
    const sluice_stats& s = worker.stats;
    EXPECT_EQ(s.rx_packets, injected.size());
    EXPECT_EQ(accounted(s), s.rx_packets);
    expected.expect_matches(s);
    // Full bursts happened: fewer loop iterations than packets.
    EXPECT_LT(loop->busy_iterations, injected.size());
    EXPECT_EQ((*publisher)->generation(), groups.size() - 1);
    free_all_and_expect_no_leak(g, c);
}

// Reloads swap the filters under a running worker: the ACL of whichever
// snapshot publish() installed decides, from the first packet after it
// returns (the old FilterSet, LPM tables included, is freed by then), and
// the LPM memory of many swaps is given back (no EAL exhaustion).
TEST(MbufFixtureTable, FilterSetSwapsUnderARunningWorker)
{
    Rig& g = rig();
    ASSERT_TRUE(g.ok);
    const auto it = std::find_if(table().fixtures.begin(), table().fixtures.end(),
                                 [](const Fixture& f) { return f.name == "ipip_4in4_tcp_syn"; });
    ASSERT_NE(it, table().fixtures.end());
    const Fixture& syn = *it;
    nlohmann::json open_config = table().base_config;
    open_config["filters"] = {{"global", {{"deny", {"2001:db8:bad::/48"}}}}};  // an LPM table, not this client
    nlohmann::json closed_config = table().base_config;
    closed_config["filters"] = {{"global", {{"deny", {"198.51.100.0/24"}}}}};

    core::Worker worker(small_conn_config(), rte_get_tsc_hz());  // the pipeline feeds it TSC ticks
    auto first = build_snapshot(open_config);
    ASSERT_TRUE(first.ok()) << first.error();
    auto publisher = Publisher::create(1, std::move(*first));
    ASSERT_TRUE(publisher.ok()) << publisher.error();
    dpdk::FilteredSluicePipeline pipeline(worker, **publisher, 0, 1);
    auto loop = make_loop(g, &worker.stats);
    WorkerLcore lcore(*loop, pipeline);
    ASSERT_TRUE(lcore.start());

    constexpr int kSwaps = 12;  // 12 x 64 MiB would not fit in the test's 256 MiB unless freed
    uint64_t sent = 0;
    for (int i = 0; i < kSwaps; ++i) {
        const bool closed = i % 2 == 1;
        if (i != 0) {
            auto next = build_snapshot(closed ? closed_config : open_config);
            ASSERT_TRUE(next.ok()) << next.error();
            (*publisher)->publish(std::move(*next));
        }
        rte_mbuf* m = make_mbuf(g, syn);
        ASSERT_NE(m, nullptr);
        ASSERT_EQ(rte_ring_enqueue(g.ports[syn.in_port].rx, m), 0);
        ASSERT_TRUE(lcore.wait_rx_empty(g.rx_rings()));
        // The iteration that took the packet finishes before the next publish
        // returns; wait for its counter here to read a settled value.
        for (int spin = 0; spin < 1000 && accounted(worker.stats) == sent; ++spin) rte_delay_ms(1);
        ++sent;
        EXPECT_EQ(worker.stats.drops[SLUICE_DROP_ACL_DENY], static_cast<uint64_t>((i + 1) / 2)) << "swap " << i;
    }
    lcore.stop();
    Collected c = collect(g);
    EXPECT_EQ(worker.stats.tx_packets, static_cast<uint64_t>(kSwaps - kSwaps / 2));
    EXPECT_EQ(accounted(worker.stats), sent);
    free_all_and_expect_no_leak(g, c);
}

}  // namespace
}  // namespace sluice::testing
