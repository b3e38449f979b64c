// xdp_lb's connection table (ebpf/xdp/conn_table.h) through the real
// program (BPF_PROG_TEST_RUN) with the cases of the DPDK table's test
// (tests/dataplane/connection_table_test.cpp), same expectations: a full
// bucket evicts its least recently seen entry and counts it, expired entries
// are reclaimed first, entries age per protocol and TCP state (FIN/RST cut
// to the closing timeout), an ICMP error reads without writing, a removed
// backend moves only its own flows; and
// what is XDP's own: one partition per CPU, read by the loader on any CPU,
// or one table shared by every CPU, where a flow that changes CPU keeps its
// backend across a ring change.
// Each test pins its thread to one CPU, so it knows the partition a packet
// uses. Aging is done by moving an entry's last_seen back through the
// loader's mapping of the table, not by sleeping.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "test_env.h"
#include "xdp_test_support.h"

namespace sluice::testing {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ull;
constexpr uint16_t kTcpPort = 443, kUdpPort = 53;

// Services 198.51.100.7:443/tcp and :53/udp over IPIP; 7-slot rings over
// `ring`; backends 0..2 are 10.9.1.10..12.
nlohmann::json config(const std::vector<uint32_t>& ring)
{
    nlohmann::json backends = nlohmann::json::array();
    for (int id = 0; id < 3; ++id)
        backends.push_back({{"id", id}, {"addr", "10.9.1." + std::to_string(10 + id)}, {"flags", {"valid"}}});
    return {
        {"local_ipv4", "10.0.0.1"},
        {"ports", {{{"id", 0}, {"mac", "02:00:00:00:00:10"}, {"nexthop_mac", "02:00:00:00:00:fe"},
                    {"mtu", 1500}, {"egress_port", 0}}}},
        {"backends", backends},
        {"vips", {{{"id", 3}, {"addr", "198.51.100.7"}, {"port", kTcpPort}, {"proto", "tcp"}, {"forwarding", "ipip"},
                   {"ring", ring}},
                  {{"id", 4}, {"addr", "198.51.100.7"}, {"port", kUdpPort}, {"proto", "udp"}, {"forwarding", "ipip"},
                   {"ring", ring}}}},
    };
}

std::vector<uint32_t> ring_of(uint32_t backend) { return std::vector<uint32_t>(7, backend); }

// A TCP segment (or a UDP datagram) of 203.0.113.5:client_port → the VIP.
std::vector<uint8_t> packet(uint16_t client_port, uint8_t tcp_flags, bool udp = false)
{
    return tcp_udp_frame(client_port, tcp_flags, udp, udp ? kUdpPort : kTcpPort);
}

// An ICMP "fragmentation needed" from router 192.0.2.99 to the VIP, quoting
// the VIP's TCP segment to 203.0.113.5:client_port (what a backend sent in
// the flow's name): it belongs to the flow client_port → VIP:443.
std::vector<uint8_t> icmp_error_for(uint16_t client_port)
{
    std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0x10, 0x02, 0, 0, 0, 0xc1, 0x01, 0x08, 0x00,
                              0x45, 0, 0, 56, 0, 1, 0, 0, 64, 1, 0, 0, 192, 0, 2, 99, 198, 51, 100, 7,
                              3, 4, 0, 0, 0, 0, 0x05, 0xdc,
                              0x45, 0, 0, 40, 0, 2, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 7, 203, 0, 113, 5,
                              0x01, 0xbb, static_cast<uint8_t>(client_port >> 8), static_cast<uint8_t>(client_port),
                              0, 0, 0, 1};
    return f;
}

sluice_flow_key key_of(uint16_t client_port, bool udp = false)
{
    sluice_flow_key k{};
    inet_pton(AF_INET, "203.0.113.5", &k.src.v4);
    inet_pton(AF_INET, "198.51.100.7", &k.dst.v4);
    k.sport = htons(client_port);
    k.dport = htons(udp ? kUdpPort : kTcpPort);
    k.proto = udp ? SLUICE_IPPROTO_UDP : SLUICE_IPPROTO_TCP;
    k.family = SLUICE_FAMILY_IPV4;
    return k;
}

// Outer destination's last byte - 10: the backend id, or -1 if not forwarded.
int backend_of(const XdpRun& r)
{
    if (r.error != 0 || r.verdict != "tx:0" || r.output.size() < 34) return -1;
    return r.output[33] - 10;
}

bool pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0 && sched_getcpu() == cpu;
}

// The table as the program sees it: the loader's sizes, mapped here too.
class Table {
public:
    explicit Table(xdp::XdpDataplane& dp) : dp_(dp)
    {
        const int fd = dp.map_fd("sluice_conns_v3");
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return;
        buckets_ = info.max_entries;
        per_cpu_ = buckets_ / dp.connection_partitions();
        bytes_ = static_cast<size_t>(buckets_) * sizeof(sluice_conn_bucket);
        void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) base_ = static_cast<sluice_conn_bucket*>(p);
    }
    ~Table()
    {
        if (base_ != nullptr) ::munmap(base_, bytes_);
    }
    bool ok() const { return base_ != nullptr && per_cpu_ != 0; }
    uint32_t buckets_per_cpu() const { return per_cpu_; }
    uint32_t bucket_of(const sluice_flow_key& k) const { return sluice_flow_hash(&k) & (per_cpu_ - 1); }

    // The entry of `k` in `cpu`'s partition, or nullptr.
    sluice_conn_entry* find(int cpu, const sluice_flow_key& k)
    {
        const uint32_t hash = sluice_flow_hash(&k);
        sluice_conn_bucket& b = base_[static_cast<size_t>(cpu) * per_cpu_ + (hash & (per_cpu_ - 1))];
        for (uint32_t w = 0; w < SLUICE_CONN_WAYS; ++w) {
            if (((b.used >> w) & 1) != 0 && b.sig[w] == hash && std::memcmp(&b.entries[w].key, &k, sizeof k) == 0)
                return &b.entries[w];
        }
        return nullptr;
    }
    // Makes `k`'s entry look idle for `ns` more (false: no entry).
    bool age(int cpu, const sluice_flow_key& k, uint64_t ns)
    {
        sluice_conn_entry* e = find(cpu, k);
        if (e == nullptr) return false;
        e->last_seen -= ns;
        return true;
    }

private:
    xdp::XdpDataplane& dp_;
    sluice_conn_bucket* base_ = nullptr;
    size_t bytes_ = 0;
    uint32_t buckets_ = 0, per_cpu_ = 0;
};

struct Counters {
    uint64_t hits, misses, evictions;
};

Counters counters(xdp::XdpDataplane& dp)
{
    auto s = dp.read_stats();
    return s ? Counters{s->conn_hits, s->conn_misses, s->conn_evictions} : Counters{0, 0, 0};
}

// Client ports of `n` TCP flows that share one bucket (per CPU).
std::vector<uint16_t> same_bucket_ports(const Table& t, size_t n)
{
    std::vector<uint16_t> out;
    const uint32_t want = t.bucket_of(key_of(20000));
    for (uint32_t port = 20000; port < 65535 && out.size() < n; ++port) {
        if (t.bucket_of(key_of(static_cast<uint16_t>(port))) == want) out.push_back(static_cast<uint16_t>(port));
    }
    return out;
}

class XdpConnTable : public ::testing::Test {
protected:
    void SetUp() override
    {
        SLUICE_REQUIRE_ROOT();
        cpu_ = sched_getcpu();
        ASSERT_TRUE(pin_to_cpu(cpu_));
        // 1024 entries per CPU: 128 buckets, so flows of one bucket are
        // easy to find.
        auto r = XdpRunner::create(config(ring_of(0)), "", 1024);
        ASSERT_TRUE(r) << r.error();
        runner_ = std::move(*r);
        table_ = std::make_unique<Table>(runner_->dataplane());
        ASSERT_TRUE(table_->ok());
        ASSERT_EQ(table_->buckets_per_cpu(), 128u);
    }
    void ring_to(uint32_t backend)
    {
        xdp::Description d = runner_->description();
        for (auto& v : d.vips) v.ring = ring_of(backend);
        ASSERT_TRUE(runner_->dataplane().apply(d));
    }
    int send(uint16_t port, uint8_t flags, bool udp = false) { return send_frame(packet(port, flags, udp)); }
    int send_frame(const std::vector<uint8_t>& frame) { return backend_of(runner_->run(frame, 0)); }

    int cpu_ = 0;
    std::unique_ptr<XdpRunner> runner_;
    std::unique_ptr<Table> table_;
};

// With one 8-way bucket full, a ninth flow evicts exactly the least recently
// seen entry, counted once; the others, and the refreshed one, stay.
TEST_F(XdpConnTable, FullBucketEvictsLeastRecentlySeenAndCounts)
{
    const std::vector<uint16_t> ports = same_bucket_ports(*table_, 10);
    ASSERT_EQ(ports.size(), 10u);
    for (size_t i = 0; i < 8; ++i) ASSERT_EQ(send(ports[i], SLUICE_TCP_SYN), 0);
    // Flow i last seen (100 - i) s ago: flow 0 the oldest; then flow 0 sends
    // again, so flow 1 is the least recently seen.
    for (size_t i = 0; i < 8; ++i) ASSERT_TRUE(table_->age(cpu_, key_of(ports[i]), (100 - i) * kSecond / 10));
    EXPECT_EQ(send(ports[0], SLUICE_TCP_ACK), 0);
    const Counters before = counters(runner_->dataplane());
    EXPECT_EQ(send(ports[8], SLUICE_TCP_SYN), 0);
    const Counters after = counters(runner_->dataplane());
    EXPECT_EQ(after.evictions - before.evictions, 1u);
    EXPECT_EQ(table_->find(cpu_, key_of(ports[1])), nullptr) << "least recently seen evicted";
    EXPECT_NE(table_->find(cpu_, key_of(ports[0])), nullptr) << "refreshed entry kept";
    for (size_t i = 2; i < 9; ++i) EXPECT_NE(table_->find(cpu_, key_of(ports[i])), nullptr) << i;
    // The evicted flow is a new flow again: it follows the ring now (and
    // evicts flow 2, now the least recently seen).
    ring_to(1);
    EXPECT_EQ(send(ports[1], SLUICE_TCP_ACK), 1);
    EXPECT_EQ(table_->find(cpu_, key_of(ports[2])), nullptr);
    EXPECT_EQ(send(ports[7], SLUICE_TCP_ACK), 0) << "flows still in the table keep their backend";
}

// Expired entries are reclaimed before any live one is evicted (no eviction
// counted), as in the DPDK table.
TEST_F(XdpConnTable, ExpiredReclaimedBeforeEviction)
{
    const std::vector<uint16_t> ports = same_bucket_ports(*table_, 9);
    ASSERT_EQ(ports.size(), 9u);
    for (size_t i = 0; i < 8; ++i) ASSERT_EQ(send(ports[i], SLUICE_TCP_ACK), 0);
    // Flow 5 idle past the established timeout (3600 s).
    ASSERT_TRUE(table_->age(cpu_, key_of(ports[5]), 3601 * kSecond));
    const Counters before = counters(runner_->dataplane());
    EXPECT_EQ(send(ports[8], SLUICE_TCP_SYN), 0);
    EXPECT_EQ(counters(runner_->dataplane()).evictions, before.evictions);
    EXPECT_EQ(table_->find(cpu_, key_of(ports[5])), nullptr);
    for (size_t i : {0, 1, 2, 3, 4, 6, 7, 8}) EXPECT_NE(table_->find(cpu_, key_of(ports[i])), nullptr) << i;
}

// Entries age per protocol and TCP state with the node's timeouts
// (transitory 30 s, established 3600 s, closing 30 s, UDP 60 s): an entry
// past its state's timeout is a miss that takes the current ring, one
// within it a hit that keeps its backend.
TEST_F(XdpConnTable, AgingPerProtocolAndState)
{
    EXPECT_EQ(send(1001, SLUICE_TCP_SYN), 0);                       // transitory
    EXPECT_EQ(send(1002, SLUICE_TCP_SYN), 0);
    EXPECT_EQ(send(1002, SLUICE_TCP_ACK), 0);                       // established
    EXPECT_EQ(send(1003, 0, true), 0);                              // UDP
    EXPECT_EQ(send(1004, 0, true), 0);
    ASSERT_NE(table_->find(cpu_, key_of(1001)), nullptr);
    EXPECT_EQ(table_->find(cpu_, key_of(1001))->state, SLUICE_CONN_TCP_TRANSITORY);
    EXPECT_EQ(table_->find(cpu_, key_of(1002))->state, SLUICE_CONN_TCP_ESTABLISHED);
    EXPECT_EQ(table_->find(cpu_, key_of(1003, true))->state, SLUICE_CONN_UDP);
    ASSERT_TRUE(table_->age(cpu_, key_of(1001), 31 * kSecond));
    ASSERT_TRUE(table_->age(cpu_, key_of(1002), 31 * kSecond));
    ASSERT_TRUE(table_->age(cpu_, key_of(1003, true), 59 * kSecond));
    ASSERT_TRUE(table_->age(cpu_, key_of(1004, true), 61 * kSecond));
    ring_to(1);
    const Counters before = counters(runner_->dataplane());
    EXPECT_EQ(send(1001, SLUICE_TCP_ACK), 1) << "half-open entry expired after the transitory timeout";
    EXPECT_EQ(send(1002, SLUICE_TCP_ACK), 0) << "established entry lives on";
    EXPECT_EQ(send(1003, 0, true), 0) << "UDP entry within its timeout";
    EXPECT_EQ(send(1004, 0, true), 1) << "UDP entry past its timeout";
    const Counters after = counters(runner_->dataplane());
    EXPECT_EQ(after.hits - before.hits, 2u);
    EXPECT_EQ(after.misses - before.misses, 2u);
    EXPECT_EQ(table_->find(cpu_, key_of(1001))->state, SLUICE_CONN_TCP_ESTABLISHED) << "re-made mid-flow";
}

// The loader's census (stats, /metrics) counts this CPU's live entries in
// its own partition, by the program's clock and each state's timeout; a
// table of 128 buckets per CPU is read whole, so the count is exact.
TEST_F(XdpConnTable, CensusCountsLiveEntriesPerCpu)
{
    EXPECT_EQ(send(1001, SLUICE_TCP_SYN), 0);
    EXPECT_EQ(send(1002, SLUICE_TCP_SYN), 0);
    EXPECT_EQ(send(1002, SLUICE_TCP_ACK), 0);
    EXPECT_EQ(send(1003, 0, true), 0);
    EXPECT_EQ(send(1004, 0, true), 0);
    xdp::XdpDataplane& dp = runner_->dataplane();
    const uint64_t(&timeout)[SLUICE_CONN_STATES] = runner_->description().node.conn_timeout_ns;
    auto census = [&] {
        const Result<uint64_t> now = dp.connection_clock_ns();
        EXPECT_TRUE(now) << now.error();
        return dp.connection_census(now ? *now : 0, timeout);
    };
    std::vector<core::ConnCensus> c = census();
    ASSERT_EQ(c.size(), dp.connection_partitions());
    EXPECT_FALSE(dp.shared_connection_table());
    for (size_t cpu = 0; cpu < c.size(); ++cpu) {
        EXPECT_EQ(c[cpu].capacity, 1024u) << cpu;
        EXPECT_EQ(c[cpu].sampled, 1024u) << cpu;
        EXPECT_EQ(c[cpu].live, static_cast<int>(cpu) == cpu_ ? 4u : 0u) << cpu;
    }
    ASSERT_TRUE(table_->age(cpu_, key_of(1001), 31 * kSecond));        // half-open past 30 s
    ASSERT_TRUE(table_->age(cpu_, key_of(1004, true), 61 * kSecond));  // UDP past 60 s
    ASSERT_TRUE(table_->age(cpu_, key_of(1003, true), 59 * kSecond));  // UDP within
    c = census();
    EXPECT_EQ(c[static_cast<size_t>(cpu_)].live, 2u);
    EXPECT_EQ(c[static_cast<size_t>(cpu_)].live_estimate(), 2u);
}

// FIN and RST cut an established entry's life to the closing timeout, and
// the ACKs that finish the close do not lengthen it again.
TEST_F(XdpConnTable, FinAndRstShortenLife)
{
    for (uint16_t port : {2001, 2002}) {
        EXPECT_EQ(send(port, SLUICE_TCP_SYN), 0);
        EXPECT_EQ(send(port, SLUICE_TCP_ACK), 0);
    }
    EXPECT_EQ(send(2001, SLUICE_TCP_FIN | SLUICE_TCP_ACK), 0);
    EXPECT_EQ(send(2002, SLUICE_TCP_RST), 0);
    EXPECT_EQ(send(2001, SLUICE_TCP_ACK), 0);
    EXPECT_EQ(table_->find(cpu_, key_of(2001))->state, SLUICE_CONN_TCP_CLOSING) << "ACK after FIN stays closing";
    EXPECT_EQ(table_->find(cpu_, key_of(2002))->state, SLUICE_CONN_TCP_CLOSING);
    ASSERT_TRUE(table_->age(cpu_, key_of(2001), 31 * kSecond));
    ASSERT_TRUE(table_->age(cpu_, key_of(2002), 31 * kSecond));
    ring_to(1);
    EXPECT_EQ(send(2001, SLUICE_TCP_ACK), 1) << "closing entry expired after 30 s";
    EXPECT_EQ(send(2002, SLUICE_TCP_ACK), 1);
}

// An ICMP error follows its flow's live entry but neither creates nor
// refreshes one (as the DPDK table's lookup()); without a live entry it
// follows the ring.
TEST_F(XdpConnTable, IcmpErrorLookupIsReadOnly)
{
    EXPECT_EQ(send_frame(icmp_error_for(7001)), 0) << "no entry: the ring";
    EXPECT_EQ(table_->find(cpu_, key_of(7001)), nullptr) << "no entry made";
    EXPECT_EQ(send(7001, SLUICE_TCP_SYN), 0);
    ring_to(1);
    ASSERT_TRUE(table_->age(cpu_, key_of(7001), 10 * kSecond));
    const uint64_t seen = table_->find(cpu_, key_of(7001))->last_seen;
    EXPECT_EQ(send_frame(icmp_error_for(7001)), 0) << "follows the live entry";
    EXPECT_EQ(table_->find(cpu_, key_of(7001))->last_seen, seen) << "not refreshed";
    ASSERT_TRUE(table_->age(cpu_, key_of(7001), 21 * kSecond));  // 31 s: a SYN-only entry expired
    EXPECT_EQ(send_frame(icmp_error_for(7001)), 1) << "expired entry: the ring";
    EXPECT_EQ(table_->find(cpu_, key_of(7001))->backend_id, 0u) << "and still not re-pinned";
}

// The program stamps entries on the loader's clock (connection_clock_ns:
// jiffies x tick, whose epoch is not CLOCK_MONOTONIC's), the clock the XDP
// driver judges an entry's liveness by: a fresh entry's last_seen lies
// between two readings around its packet, and the clock keeps real time at
// the tick's resolution.
TEST_F(XdpConnTable, EntriesAreStampedOnTheLoadersClock)
{
    xdp::XdpDataplane& dp = runner_->dataplane();
    const uint64_t tick = dp.connection_clock_tick_ns();
    if (::access("/proc/config.gz", R_OK) == 0) {
        EXPECT_NE(tick, 0u) << "the loader did not read CONFIG_HZ";
    }
    const auto before = dp.connection_clock_ns();
    ASSERT_TRUE(before) << before.error();
    ASSERT_EQ(send(8001, SLUICE_TCP_SYN), 0);
    const auto after = dp.connection_clock_ns();
    ASSERT_TRUE(after) << after.error();
    const sluice_conn_entry* e = table_->find(cpu_, key_of(8001));
    ASSERT_NE(e, nullptr);
    EXPECT_LE(*before, e->last_seen);
    EXPECT_LE(e->last_seen, *after);
    if (tick != 0) {
        EXPECT_EQ(e->last_seen % tick, 0u) << "jiffies x tick";
    }
    // Wall time read outside and inside the two clock readings, so a
    // preemption between them widens the bounds instead of failing the test.
    auto now_ms = [] {
        timespec t{};
        ::clock_gettime(CLOCK_MONOTONIC, &t);
        return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
    };
    const double outer0 = now_ms();
    const auto c0 = dp.connection_clock_ns();
    const double inner0 = now_ms();
    ::usleep(200000);
    const double inner1 = now_ms();
    const auto c1 = dp.connection_clock_ns();
    const double outer1 = now_ms();
    ASSERT_TRUE(c0 && c1);
    const double clock_ms = static_cast<double>(*c1 - *c0) / 1e6;
    // Two ticks of slack each way (a tick is at most 10 ms).
    EXPECT_GE(clock_ms, inner1 - inner0 - 20.0);
    EXPECT_LE(clock_ms, outer1 - outer0 + 20.0);
}

// Removing backend 2 moves only backend 2's established flows (re-picked
// from the new ring, re-pinned in place); every other flow keeps its
// backend although the new ring would send most of them elsewhere.
TEST_F(XdpConnTable, RemovedBackendOnlyItsFlowsMove)
{
    xdp::Description d = runner_->description();
    d.vips[0].ring = {0, 1, 2, 0, 1, 2, 2};
    ASSERT_TRUE(runner_->dataplane().apply(d));
    std::vector<int> pinned;
    for (uint16_t port = 3000; port < 3060; ++port) {
        pinned.push_back(send(port, SLUICE_TCP_SYN));
        ASSERT_GE(pinned.back(), 0);
    }
    ASSERT_NE(std::count(pinned.begin(), pinned.end(), 2), 0);
    d.backends.erase(d.backends.begin() + 2);
    d.vips[0].ring = {1, 0, 1, 0, 1, 0, 1};
    ASSERT_TRUE(runner_->dataplane().apply(d));
    const size_t entries = runner_->dataplane().count_connections();
    for (uint16_t port = 3000; port < 3060; ++port) {
        const int now = send(port, SLUICE_TCP_ACK);
        if (pinned[port - 3000] == 2) {
            EXPECT_TRUE(now == 0 || now == 1) << port;
        } else {
            EXPECT_EQ(now, pinned[port - 3000]) << port;
        }
    }
    EXPECT_EQ(runner_->dataplane().count_connections(), entries) << "re-pinned in place: the table did not grow";
}

// Forgetting a backend's entries (a restart whose ids moved) sends their
// flows to the ring on their next packet; other entries stay.
TEST_F(XdpConnTable, ForgetConnectionsTo)
{
    EXPECT_EQ(send(4001, SLUICE_TCP_SYN), 0);
    ring_to(1);
    EXPECT_EQ(send(4002, SLUICE_TCP_SYN), 1);
    auto forgotten = runner_->dataplane().forget_connections_to({0});
    ASSERT_TRUE(forgotten) << forgotten.error();
    EXPECT_EQ(*forgotten, 1u);
    ring_to(2);
    EXPECT_EQ(send(4001, SLUICE_TCP_ACK), 2);
    EXPECT_EQ(send(4002, SLUICE_TCP_ACK), 1);
}

// A CPU other than the test's own that this thread may run on, or -1.
int other_cpu(int self)
{
    const long n = sysconf(_SC_NPROCESSORS_CONF);
    for (int c = 0; c < n; ++c) {
        if (c != self && pin_to_cpu(c)) return c;
    }
    return -1;
}

// Each CPU has its own partition: a flow seen on one CPU is a miss on
// another, picked by the ring again (so after a ring change it leaves its
// backend: why conn_table_mode "auto" shares the table on a veth), and the
// loader finds the entries of every partition from any CPU.
TEST_F(XdpConnTable, PartitionPerCpuAndLookupFromAnyCpu)
{
    EXPECT_GT(runner_->dataplane().connection_partitions(), 1u);
    const int other = other_cpu(cpu_);
    SLUICE_REQUIRE(other >= 0, "a second CPU");
    // Made on `other`.
    EXPECT_EQ(send(5001, SLUICE_TCP_SYN), 0);
    ASSERT_TRUE(pin_to_cpu(cpu_));
    auto found = runner_->dataplane().lookup_connection(key_of(5001));
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].cpu, static_cast<uint32_t>(other));
    EXPECT_EQ(found[0].entry.backend_id, 0u);
    EXPECT_EQ(found[0].entry.state, SLUICE_CONN_TCP_TRANSITORY);
    // On this CPU the flow is new: a miss, the (changed) ring's backend, a
    // second entry.
    ring_to(1);
    const Counters before = counters(runner_->dataplane());
    EXPECT_EQ(send(5001, SLUICE_TCP_ACK), 1);
    EXPECT_EQ(counters(runner_->dataplane()).misses - before.misses, 1u);
    found = runner_->dataplane().lookup_connection(key_of(5001));
    ASSERT_EQ(found.size(), 2u);
    ASSERT_TRUE(runner_->dataplane().clear_connections());
    EXPECT_TRUE(runner_->dataplane().lookup_connection(key_of(5001)).empty());
    EXPECT_EQ(runner_->dataplane().count_connections(), 0u);
}

// One table for every CPU (conn_table_mode "shared"): a flow begun on one
// CPU is a hit on another, so TCP, UDP and ICMP errors keep the flow's
// backend after the ring changed; a flow new to the table still takes the
// ring's backend.
TEST(XdpConnTableShared, FlowKeepsItsBackendOnAnotherCpu)
{
    SLUICE_REQUIRE_ROOT();
    const int self = sched_getcpu();
    ASSERT_TRUE(pin_to_cpu(self));
    auto r = XdpRunner::create(config(ring_of(0)), "", 1024, {}, 1, true);
    ASSERT_TRUE(r) << r.error();
    std::unique_ptr<XdpRunner> runner = std::move(*r);
    xdp::XdpDataplane& dp = runner->dataplane();
    EXPECT_EQ(dp.connection_partitions(), 1u);
    EXPECT_EQ(dp.connection_capacity(), 1024u) << "conn_table_size is the whole table's";
    auto send = [&](const std::vector<uint8_t>& frame) { return backend_of(runner->run(frame, 0)); };
    const int other = other_cpu(self);
    SLUICE_REQUIRE(other >= 0, "a second CPU");
    // Begun on `other`, ring 0.
    EXPECT_EQ(send(packet(6001, SLUICE_TCP_SYN)), 0);
    EXPECT_EQ(send(packet(6002, 0, true)), 0);
    ASSERT_TRUE(pin_to_cpu(self));
    xdp::Description d = runner->description();
    for (auto& v : d.vips) v.ring = ring_of(1);
    ASSERT_TRUE(dp.apply(d));
    const Counters before = counters(dp);
    EXPECT_EQ(send(packet(6001, SLUICE_TCP_ACK)), 0) << "TCP keeps its backend on another CPU";
    EXPECT_EQ(send(packet(6002, 0, true)), 0) << "UDP keeps its backend on another CPU";
    EXPECT_EQ(send(icmp_error_for(6001)), 0) << "an ICMP error follows the flow";
    const Counters after = counters(dp);
    EXPECT_EQ(after.hits - before.hits, 2u);
    EXPECT_EQ(after.misses, before.misses);
    auto found = dp.lookup_connection(key_of(6001));
    ASSERT_EQ(found.size(), 1u) << "one entry, not one per CPU";
    EXPECT_EQ(found[0].cpu, 0u);
    EXPECT_EQ(found[0].entry.backend_id, 0u);
    EXPECT_EQ(found[0].entry.state, SLUICE_CONN_TCP_ESTABLISHED);
    EXPECT_EQ(send(packet(6003, SLUICE_TCP_SYN)), 1) << "a new flow takes the current ring";
    ASSERT_TRUE(pin_to_cpu(other));
    EXPECT_EQ(send(packet(6003, SLUICE_TCP_ACK)), 1) << "and keeps it on the other CPU";
    ASSERT_TRUE(pin_to_cpu(self));
    // Another CPU may stamp an entry at a later tick than the clock this
    // CPU read for the packet: an entry last seen "ahead" is live, not
    // idle for 2^64 - d ns (a miss that would re-pick by the new ring).
    Table table(dp);
    ASSERT_TRUE(table.ok());
    sluice_conn_entry* e = table.find(0, key_of(6001));
    ASSERT_NE(e, nullptr);
    e->last_seen += 5 * kSecond;
    const Counters ahead = counters(dp);
    EXPECT_EQ(send(packet(6001, SLUICE_TCP_ACK)), 0) << "an entry last seen ahead of now is live";
    EXPECT_EQ(counters(dp).misses, ahead.misses);
}

// A pinned table of another size is not adopted (libbpf would refuse it):
// open() drops it and says so, as it removes a pin of the old layout.
TEST(XdpConnTablePins, OtherSizeAndOldLayoutAreDropped)
{
    SLUICE_REQUIRE_ROOT();
    const sluice::testing::ScratchBpffs bpffs;
    SLUICE_REQUIRE(bpffs.ok(), "a bpffs of the test's own (" + bpffs.error() + ")");
    const std::string pin = bpffs.path() + "/sluice";
    std::vector<std::string> lines;
    auto log = [&lines](const std::string& l) { lines.push_back(l); };
    {
        auto first = XdpRunner::create(config(ring_of(0)), pin, 1024, log);
        ASSERT_TRUE(first) << first.error();
        EXPECT_EQ(backend_of((*first)->run(packet(6001, SLUICE_TCP_SYN), 0)), 0);
    }
    // Stale v1 and v2 pins (any map will do: only their names are old; v2
    // kept last_seen on another clock).
    const int stale = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr);
    ASSERT_GE(stale, 0);
    ASSERT_EQ(bpf_obj_pin(stale, (pin + "/sluice_conns_v1").c_str()), 0);
    ASSERT_EQ(bpf_obj_pin(stale, (pin + "/sluice_conns_v2").c_str()), 0);
    ::close(stale);
    {
        auto same = XdpRunner::create(config(ring_of(1)), pin, 1024, log);
        ASSERT_TRUE(same) << same.error();
        EXPECT_EQ(backend_of((*same)->run(packet(6001, SLUICE_TCP_ACK), 0)), 0) << "same size: adopted";
    }
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[0].find("sluice_conns_v1"), std::string::npos) << lines[0];
    EXPECT_NE(lines[1].find("sluice_conns_v2"), std::string::npos) << lines[1];
    EXPECT_NE(::access((pin + "/sluice_conns_v1").c_str(), F_OK), 0);
    EXPECT_NE(::access((pin + "/sluice_conns_v2").c_str(), F_OK), 0);
    auto bigger = XdpRunner::create(config(ring_of(1)), pin, 2048, log);
    ASSERT_TRUE(bigger) << bigger.error();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_NE(lines[2].find("dropped"), std::string::npos) << lines[2];
    EXPECT_EQ(backend_of((*bigger)->run(packet(6001, SLUICE_TCP_ACK), 0)), 1) << "new table: picked by the ring";
    const bool partitioned = (*bigger)->dataplane().connection_partitions() > 1;
    (*bigger).reset();
    // The same size shared by every CPU is another shape (one partition):
    // dropped too, never read with the other layout's bucket indexes.
    SLUICE_REQUIRE(partitioned, "a second CPU (one CPU has one partition either way)");
    auto shared = XdpRunner::create(config(ring_of(2)), pin, 2048, log, 1, true);
    ASSERT_TRUE(shared) << shared.error();
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_NE(lines[3].find("conn_table_mode"), std::string::npos) << lines[3];
    EXPECT_EQ(backend_of((*shared)->run(packet(6001, SLUICE_TCP_ACK), 0)), 2) << "new table: picked by the ring";
    ASSERT_TRUE((*shared)->dataplane().unpin());
}

}  // namespace
}  // namespace sluice::testing
