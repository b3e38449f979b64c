// Data-plane benchmark: a generator on the main lcore feeds a worker lcore
// running the real worker loop over ring ethdevs (rte_eth_from_rings), and
// recycles what the worker sends back. Each scenario runs sluice's pipeline
// (SluicePipeline, RCU snapshot, connection table, Maglev, IPIP) and a
// MAC-swap baseline over the same harness and packet mix, and prints one
// JSON line. The figure that counts is the worker's own cost per packet
// (TSC cycles of loop iterations that moved packets / those packets, leaving
// out iterations the OS preempted; the loop's own busy_tsc figure is printed
// as _raw), shown beside the ratio to MAC-swap because absolute times drift
// on shared machines and ratios do not.
//
// MAC-swap is the harness's floor, not memory's: at many flows sluice's time
// is mostly waiting for connection-table buckets, which MAC-swap never
// touches. A third pipeline, the connection-table floor (ConnFloorPipeline),
// does only that memory-bound part, with the real ConnectionTable code on a
// table of its own of the same size: ratio_to_conn_floor tells sluice's own
// cost from the machine's memory and TLB.
//
// Usage: dataplane_bench [--packets N] [--scenario NAME|all]
//                        [--pipeline sluice|macswap|conn_floor|both|all]
//                        [--flows N] [--conn-entries N] [--filters none|rate_limit]
//
// --pipeline: both = sluice and MAC-swap (as before the floor existed);
// all (the default) = the three.
//
// --filters rate_limit runs the runtime's FilteredSluicePipeline with a
// per-VIP rate limit too high ever to drop, so every packet goes through the
// filter hook and takes a token (the cost of any configured filter); the
// default runs SluicePipeline, which is what the runtime runs when no filter
// is configured.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/conn_table.h"
#include "core/pipeline.h"
#include "dataplane/dpdk/eal.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/sluice_pipeline.h"
#include "dataplane/dpdk/snapshot.h"
#include "dataplane/dpdk/worker_loop.h"
#include "filter/filter_set.h"
#include "maglev/maglev.h"
#include "perf/bench_packets.h"

namespace {

using sluice::dpdk::WorkerLoop;
using Publisher = sluice::dpdk::RcuPublisher<sluice::core::ForwardingState>;
using FilteredPublisher = sluice::dpdk::RcuPublisher<sluice::dpdk::Snapshot>;

constexpr uint32_t kBackends = 100;
constexpr uint32_t kRingSize = 65537;  // SLUICE_DEFAULT_RING_SIZE, the paper's M
// Bounds every run: a stuck worker ends the benchmark with an error, not a hang.
constexpr double kRunTimeLimitSeconds = 300;

struct Harness {
    rte_mempool* pool = nullptr;
    rte_ring* to_worker = nullptr;
    rte_ring* from_worker = nullptr;
    uint16_t port = 0;
};

[[noreturn]] void die(const char* what)
{
    std::fprintf(stderr, "dataplane_bench: %s\n", what);
    std::exit(1);
}

Harness make_harness()
{
    Harness h;
    h.pool = rte_pktmbuf_pool_create("bench_pool", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    h.to_worker = rte_ring_create("bench_rx", 4096, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    h.from_worker = rte_ring_create("bench_tx", 4096, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (h.pool == nullptr || h.to_worker == nullptr || h.from_worker == nullptr) die("cannot allocate pool/rings");
    const int port = rte_eth_from_rings("bench_ring", &h.to_worker, 1, &h.from_worker, 1, rte_socket_id());
    if (port < 0) die("rte_eth_from_rings failed");
    h.port = static_cast<uint16_t>(port);
    rte_eth_conf conf{};
    if (rte_eth_dev_configure(h.port, 1, 1, &conf) != 0 ||
        rte_eth_rx_queue_setup(h.port, 0, 1024, rte_socket_id(), nullptr, h.pool) != 0 ||
        rte_eth_tx_queue_setup(h.port, 0, 1024, rte_socket_id(), nullptr) != 0 || rte_eth_dev_start(h.port) != 0) {
        die("cannot start ring ethdev");
    }
    return h;
}

// sluice's state for the benchmark: one IPv4 TCP VIP (bench_packets.h)
// with IPIP to kBackends IPv4 backends, its ring built by the control
// plane's Maglev builder (controlplane/maglev) with M = 65537; one-arm on
// the harness port. Backend ids follow the builder's sorted id order.
std::unique_ptr<const sluice::core::ForwardingState> make_state(uint16_t port_id)
{
    std::vector<sluice::maglev::Backend> set;
    for (uint32_t i = 0; i < kBackends; ++i) {
        set.push_back({"10.1." + std::to_string(i / 250) + "." + std::to_string(10 + i % 250) + ":80", 1});
    }
    auto table = sluice::maglev::build_table(set, kRingSize);
    if (!table) die(table.error().c_str());

    sluice::core::ForwardingStateBuilder b;
    sluice_addr local{};
    local.v4 = htonl(0x0a000001);  // 10.0.0.1
    b.set_local_ipv4(local);
    sluice::core::PortConfig pc{};
    const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    const uint8_t nexthop[6] = {0x02, 0, 0, 0, 0, 0xfe};
    std::memcpy(pc.mac, mac, 6);
    std::memcpy(pc.nexthop_mac, nexthop, 6);
    pc.mtu = 1500;
    pc.egress_port = port_id;
    b.add_port(port_id, pc);
    for (uint32_t id = 0; id < table->ids.size(); ++id) {
        const std::string& name = table->ids[id];
        sluice_backend be{};
        be.family = SLUICE_FAMILY_IPV4;
        be.flags = SLUICE_BACKEND_F_VALID;
        if (inet_pton(AF_INET, name.substr(0, name.find(':')).c_str(), &be.addr.v4) != 1) die("bad backend address");
        b.add_backend(id, be);
    }
    sluice::core::ForwardingStateBuilder::VipSpec vip{};
    vip.key.addr.v4 = htonl(sluice::bench::kVip);
    vip.key.port = htons(sluice::bench::kVipPort);
    vip.key.proto = SLUICE_IPPROTO_TCP;
    vip.key.family = SLUICE_FAMILY_IPV4;
    vip.vip_id = 0;
    vip.forwarding = SLUICE_FWD_IPIP;
    vip.ring = table->slots;
    b.add_vip(std::move(vip));
    auto st = b.build();
    if (!st) die(st.error().c_str());
    return std::move(*st);
}

// Filters for --filters rate_limit: the VIP (id 0) limited to the largest
// rate and burst the filters accept, so nothing is dropped and every packet
// (and every new flow) takes a token.
std::shared_ptr<const sluice::filter::FilterSet> make_rate_limit_filters()
{
    sluice::filter::FilterConfig config;
    constexpr uint64_t kRate = sluice::filter::kMaxRatePerSec;
    constexpr uint64_t kBurst = sluice::filter::kMaxBurst;
    config.rate_limits.vip[0] = {kRate, kBurst, kRate, kBurst};
    auto set = sluice::filter::FilterSet::build(config, 1);
    if (!set) die(set.error().c_str());
    return std::move(*set);
}

// The connection-table floor: per burst, only what sluice's pipeline must
// do for memory, with the same prefetches in the same passes
// (core/pipeline_impl.h, process_chunk_passes): map the mbufs to their
// data; pass 1 reads each packet's 5-tuple at the bench frame's fixed
// offsets (no parse, no service lookup), computes the real flow hash and
// prefetches the bucket, prefetching the next packet's headers meanwhile;
// a second pass prefetches the ways; pass 3 runs the real
// ConnectionTable::lookup_or_insert (every backend valid, a new flow pinned
// to a fixed one: no Maglev ring), swaps the MACs and sends the packet back
// out. Its table is its own, built from the same Config as sluice's (same
// size, same huge-page mapping), so it sees the same hits and evictions
// when fed the same packets, and moves when ConnectionTable does.
//
// Worker lcore only, like every pipeline; start-up builds the table on the
// calling thread, as core::Worker does for sluice's.
class ConnFloorPipeline {
public:
    ConnFloorPipeline(const sluice::core::ConnectionTable::Config& config, sluice_stats* stats)
        : table_(config), stats_(stats)
    {
    }
    void begin_iteration() { now_ = rte_rdtsc(); }  // one clock per burst, as sluice's
    void end_iteration() {}
    // Out of line, as SluicePipeline::process is in this binary: its own
    // cost centre under callgrind, for one call per burst.
    __attribute__((noinline)) void process(rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint16_t* dest)
    {
        constexpr uint32_t kFixedBackend = 0;
        uint8_t* data[sluice::dpdk::kBurstSize];
        sluice_flow_key keys[sluice::dpdk::kBurstSize];
        uint32_t hashes[sluice::dpdk::kBurstSize];
        uint8_t tcp_flags[sluice::dpdk::kBurstSize];
        for (uint16_t i = 0; i < n; ++i) data[i] = rte_pktmbuf_mtod(pkts[i], uint8_t*);
        for (uint16_t i = 0; i < n; ++i) {
            if (i + 1 < n) __builtin_prefetch(data[i + 1]);
            const uint8_t* ip = data[i] + sluice::bench::kIpOffset;
            const uint8_t* tcp = data[i] + sluice::bench::kTcpOffset;
            sluice_flow_key& k = keys[i];
            k = {};
            std::memcpy(&k.src.v4, ip + offsetof(sluice_ipv4_hdr, saddr), sizeof(k.src.v4));
            std::memcpy(&k.dst.v4, ip + offsetof(sluice_ipv4_hdr, daddr), sizeof(k.dst.v4));
            std::memcpy(&k.sport, tcp + offsetof(sluice_tcp_hdr, sport), sizeof(k.sport));
            std::memcpy(&k.dport, tcp + offsetof(sluice_tcp_hdr, dport), sizeof(k.dport));
            k.proto = ip[offsetof(sluice_ipv4_hdr, protocol)];
            k.family = SLUICE_FAMILY_IPV4;
            tcp_flags[i] = tcp[offsetof(sluice_tcp_hdr, flags)];
            hashes[i] = sluice_flow_hash(&k);
            table_.prefetch(hashes[i]);
        }
        for (uint16_t i = 0; i < n; ++i) table_.prefetch_ways(hashes[i]);
        // Counters in registers, added once per burst (as the pipeline's
        // ChunkCounters): stores into packet bytes may alias them.
        uint64_t hits = 0;
        uint64_t misses = 0;
        uint64_t evictions = 0;
        uint64_t tx_bytes = 0;
        for (uint16_t i = 0; i < n; ++i) {
            const auto lr = table_.lookup_or_insert(
                keys[i], hashes[i], now_, tcp_flags[i], [](uint32_t) { return true; },
                [] { return kFixedBackend; });
            if (lr.hit) {
                ++hits;
            } else {
                ++misses;
                evictions += lr.evicted;
            }
            auto* eth = reinterpret_cast<rte_ether_hdr*>(data[i]);
            const rte_ether_addr tmp = eth->dst_addr;
            eth->dst_addr = eth->src_addr;
            eth->src_addr = tmp;
            dest[i] = in_port;
            tx_bytes += pkts[i]->pkt_len;
        }
        stats_->rx_packets += n;
        stats_->tx_packets += n;
        stats_->tx_bytes += tx_bytes;
        stats_->conn_hits += hits;
        stats_->conn_misses += misses;
        stats_->conn_evictions += evictions;
    }

private:
    sluice::core::ConnectionTable table_;
    sluice_stats* stats_;
    uint64_t now_ = 0;
};

// Wraps a pipeline to time each loop iteration (rx burst, process, tx, as
// WorkerLoop::busy_tsc does) and to set aside iterations the OS preempted:
// on a shared machine one iteration that lost the CPU for milliseconds
// would otherwise add more to the total than a million packets.
template <typename Pipeline>
class TimedPipeline {
public:
    TimedPipeline(Pipeline& inner, uint64_t preempted_tsc) : inner_(inner), preempted_tsc_(preempted_tsc) {}
    void online()
    {
        if constexpr (requires(Pipeline& p) { p.online(); }) inner_.online();
    }
    void offline()
    {
        if constexpr (requires(Pipeline& p) { p.offline(); }) inner_.offline();
    }
    void begin_iteration()
    {
        start_ = rte_rdtsc();
        packets_ = 0;
        inner_.begin_iteration();
    }
    void process(rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint16_t* dest)
    {
        packets_ += n;
        inner_.process(pkts, n, in_port, dest);
    }
    void end_iteration()
    {
        inner_.end_iteration();
        if (packets_ == 0) return;
        const uint64_t spent = rte_rdtsc() - start_;
        if (spent < preempted_tsc_) {
            busy_tsc += spent;
            busy_packets += packets_;
            ++busy_iterations;
        } else {
            ++preempted_iterations;
        }
    }

    uint64_t busy_tsc = 0;              // iterations that moved packets and kept the CPU
    uint64_t busy_packets = 0;          // packets of those iterations
    uint64_t busy_iterations = 0;       // those iterations
    uint64_t preempted_iterations = 0;  // set aside: longer than preempted_tsc

private:
    Pipeline& inner_;
    uint64_t preempted_tsc_;
    uint64_t start_ = 0;
    uint64_t packets_ = 0;
};

template <typename Pipeline>
struct WorkerArgs {
    WorkerLoop* loop;
    Pipeline* pipeline;
    std::atomic<bool>* stop;
};

template <typename Pipeline>
int worker_entry(void* arg)
{
    auto* a = static_cast<WorkerArgs<Pipeline>*>(arg);
    a->pipeline->online();
    sluice::dpdk::run_worker_loop(*a->loop, *a->pipeline, *a->stop);
    a->pipeline->offline();
    return 0;
}

struct RunResult {
    uint64_t packets = 0;  // returned by the worker
    double seconds = 0;
    uint64_t busy_tsc = 0;              // WorkerLoop::busy_tsc, preemptions included
    uint64_t clean_tsc = 0;             // TimedPipeline: iterations not preempted
    uint64_t clean_packets = 0;
    uint64_t clean_iterations = 0;
    uint64_t preempted_iterations = 0;
    sluice_stats stats{};  // the worker's counters for this run
};

uint64_t total_drops(const sluice_stats& s)
{
    return std::accumulate(std::begin(s.drops), std::end(s.drops), uint64_t{0});
}

// Runs `total` packets through `pipeline` on the worker lcore. `fill`
// writes packet number i (its flow) into an mbuf. `stats` is the
// pipeline's counter block; it is zeroed first.
template <typename Inner>
RunResult run(Harness& h, Inner& inner, sluice_stats& stats, uint64_t total,
              const std::function<void(rte_mbuf*, uint64_t)>& fill)
{
    // An iteration moves at most 32 packets; 50 us is over 1.5 us per
    // packet, far above any real cost here, and far below a time slice.
    using Pipeline = TimedPipeline<Inner>;
    Pipeline pipeline(inner, rte_get_tsc_hz() / 20'000);
    std::memset(&stats, 0, sizeof(stats));
    auto loop = std::make_unique<WorkerLoop>();
    loop->stats = &stats;
    loop->rx_count = 1;
    loop->rx[0] = {h.port, 0};
    std::atomic<bool> stop{false};
    WorkerArgs<Pipeline> args{loop.get(), &pipeline, &stop};
    const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    if (lcore >= RTE_MAX_LCORE || rte_eal_remote_launch(worker_entry<Pipeline>, &args, lcore) != 0) {
        die("cannot launch the worker lcore");
    }

    constexpr unsigned kBurst = 32;
    // Packets in flight at most: keeps the mbufs' working set (2 MB) near
    // the cache, as a NIC's RX ring of a few hundred descriptors would.
    constexpr unsigned kInFlight = 1024;
    rte_mbuf* burst[kBurst];
    uint64_t sent = 0;
    uint64_t returned = 0;
    const uint64_t start = rte_rdtsc();
    const auto limit = static_cast<uint64_t>(kRunTimeLimitSeconds * static_cast<double>(rte_get_tsc_hz()));
    // Packets the worker dropped never come back; the worker's drop count
    // (read racily, it only grows) tells the generator they are gone.
    const auto drops_seen = [&] {
        uint64_t d = 0;
        for (const auto& v : stats.drops) d += __atomic_load_n(&v, __ATOMIC_RELAXED);
        return d;
    };
    uint64_t dropped = 0;
    while (returned + dropped < total) {
        unsigned n = rte_ring_sc_dequeue_burst(h.from_worker, reinterpret_cast<void**>(burst), kBurst, nullptr);
        returned += n;
        if (n == 0 && rte_rdtsc() - start > limit) die("run exceeded its time limit: is the worker stuck?");
        if (sent >= total) {
            rte_pktmbuf_free_bulk(burst, n);
            if (n == 0) dropped = drops_seen();
            continue;
        }
        uint64_t in_flight = sent - returned - dropped;
        if (in_flight + n >= kInFlight) {
            dropped = drops_seen();
            in_flight = sent - returned - dropped;
        }
        if (in_flight + n < kInFlight && n < kBurst) {
            const unsigned want = static_cast<unsigned>(std::min<uint64_t>(kBurst - n, total - sent));
            if (rte_pktmbuf_alloc_bulk(h.pool, &burst[n], want) == 0) n += want;
        }
        if (n > total - sent) {  // returned mbufs beyond the last packet to send
            const auto keep = static_cast<unsigned>(total - sent);
            rte_pktmbuf_free_bulk(&burst[keep], n - keep);
            n = keep;
        }
        for (unsigned i = 0; i < n; ++i) {
            rte_pktmbuf_reset(burst[i]);
            fill(burst[i], sent + i);
        }
        const unsigned q = rte_ring_sp_enqueue_burst(h.to_worker, reinterpret_cast<void**>(burst), n, nullptr);
        if (q < n) rte_pktmbuf_free_bulk(&burst[q], n - q);
        sent += q;
    }
    const uint64_t end = rte_rdtsc();
    stop.store(true);
    rte_eal_wait_lcore(lcore);
    unsigned left;
    while ((left = rte_ring_sc_dequeue_burst(h.from_worker, reinterpret_cast<void**>(burst), kBurst, nullptr)) != 0) {
        rte_pktmbuf_free_bulk(burst, left);
    }
    RunResult r;
    r.packets = stats.tx_packets;
    r.seconds = static_cast<double>(end - start) / static_cast<double>(rte_get_tsc_hz());
    r.busy_tsc = loop->busy_tsc;
    r.clean_tsc = pipeline.busy_tsc;
    r.clean_packets = pipeline.busy_packets;
    r.clean_iterations = pipeline.busy_iterations;
    r.preempted_iterations = pipeline.preempted_iterations;
    r.stats = stats;
    return r;
}

double tsc_ns(uint64_t tsc) { return static_cast<double>(tsc) * 1e9 / static_cast<double>(rte_get_tsc_hz()); }

// Worker cost per packet over the iterations that kept the CPU.
double ns_per_packet(const RunResult& r)
{
    return r.clean_packets == 0 ? 0.0 : tsc_ns(r.clean_tsc) / static_cast<double>(r.clean_packets);
}

// The same from WorkerLoop::busy_tsc over every packet, preemptions included.
double raw_ns_per_packet(const RunResult& r)
{
    return r.stats.rx_packets == 0 ? 0.0 : tsc_ns(r.busy_tsc) / static_cast<double>(r.stats.rx_packets);
}

// Packets per loop iteration that moved any (at most 32 per RX burst): 32
// means full bursts, the worker's cost under load. Smaller would spread the
// per-iteration costs (rx/tx calls, RCU, timing) over fewer packets.
double packets_per_iteration(const RunResult& r)
{
    return r.clean_iterations == 0 ? 0.0
                                   : static_cast<double>(r.clean_packets) / static_cast<double>(r.clean_iterations);
}

double mpps(const RunResult& r) { return r.seconds > 0 ? static_cast<double>(r.stats.rx_packets) / r.seconds / 1e6 : 0; }

double hit_rate(const sluice_stats& s)
{
    return s.rx_packets > 0 ? static_cast<double>(s.conn_hits) / static_cast<double>(s.rx_packets) : 0.0;
}

double evictions_per_packet(const sluice_stats& s)
{
    return s.rx_packets > 0 ? static_cast<double>(s.conn_evictions) / static_cast<double>(s.rx_packets) : 0.0;
}

// One JSON line; a pipeline not run is nullptr and its fields are left out.
// New fields go after the existing ones, whose names and meaning scripts
// rely on.
void print_result(const char* scenario, const char* filters, const RunResult* sluice, const RunResult* macswap,
                  const RunResult* conn_floor, uint64_t flows, uint64_t conn_entries)
{
    std::printf("{\"bench\":\"dataplane\",\"scenario\":\"%s\",\"filters\":\"%s\",\"flows\":%lu", scenario,
                filters, static_cast<unsigned long>(flows));
    if (sluice != nullptr) {
        const sluice_stats& s = sluice->stats;
        std::printf(",\"packets\":%lu,\"mpps_end_to_end\":%.2f,\"worker_ns_per_packet\":%.2f,"
                    "\"worker_ns_per_packet_raw\":%.2f,\"preempted_iterations\":%lu,\"packets_per_iteration\":%.1f,"
                    "\"conn_entries\":%lu,\"conn_hit_rate\":%.4f,\"evictions_per_packet\":%.4f,\"drops\":%lu",
                    static_cast<unsigned long>(s.rx_packets), mpps(*sluice), ns_per_packet(*sluice),
                    raw_ns_per_packet(*sluice), static_cast<unsigned long>(sluice->preempted_iterations),
                    packets_per_iteration(*sluice),
                    static_cast<unsigned long>(conn_entries), hit_rate(s), evictions_per_packet(s),
                    static_cast<unsigned long>(total_drops(s)));
    }
    if (macswap != nullptr) {
        std::printf(",\"macswap_mpps_end_to_end\":%.2f,\"macswap_ns_per_packet\":%.2f,"
                    "\"macswap_preempted_iterations\":%lu,\"macswap_packets_per_iteration\":%.1f",
                    mpps(*macswap), ns_per_packet(*macswap),
                    static_cast<unsigned long>(macswap->preempted_iterations), packets_per_iteration(*macswap));
    }
    if (sluice != nullptr && macswap != nullptr && ns_per_packet(*macswap) > 0) {
        std::printf(",\"ratio_to_macswap\":%.2f", ns_per_packet(*sluice) / ns_per_packet(*macswap));
    }
    if (conn_floor != nullptr) {
        const RunResult& f = *conn_floor;
        std::printf(",\"conn_floor_mpps_end_to_end\":%.2f,\"conn_floor_ns_per_packet\":%.2f,"
                    "\"conn_floor_preempted_iterations\":%lu,\"conn_floor_packets_per_iteration\":%.1f,"
                    "\"conn_floor_hit_rate\":%.4f,\"conn_floor_evictions_per_packet\":%.4f",
                    mpps(f), ns_per_packet(f), static_cast<unsigned long>(f.preempted_iterations),
                    packets_per_iteration(f), hit_rate(f.stats), evictions_per_packet(f.stats));
    }
    if (sluice != nullptr && conn_floor != nullptr && ns_per_packet(*conn_floor) > 0) {
        std::printf(",\"ratio_to_conn_floor\":%.2f", ns_per_packet(*sluice) / ns_per_packet(*conn_floor));
    }
    std::printf("}\n");
    std::fflush(stdout);
}

struct Options {
    uint64_t packets = 20'000'000;
    std::string scenario = "all";
    bool run_sluice = true;
    bool run_macswap = true;
    bool run_conn_floor = true;
    uint64_t flows = 1'000'000;        // established_many_flows
    uint64_t conn_entries = 4'194'304;  // per worker, as the production sizing
    std::string filters = "none";       // or "rate_limit"
};

bool parse_options(int argc, char** argv, Options& o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--packets" && has_value) {
            o.packets = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--scenario" && has_value) {
            o.scenario = argv[++i];
        } else if (a == "--pipeline" && has_value) {
            const std::string p = argv[++i];
            o.run_sluice = p == "sluice" || p == "both" || p == "all";
            o.run_macswap = p == "macswap" || p == "both" || p == "all";
            o.run_conn_floor = p == "conn_floor" || p == "all";
            if (!o.run_sluice && !o.run_macswap && !o.run_conn_floor) return false;
        } else if (a == "--flows" && has_value) {
            o.flows = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--conn-entries" && has_value) {
            o.conn_entries = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--filters" && has_value) {
            o.filters = argv[++i];
            if (o.filters != "none" && o.filters != "rate_limit") return false;
        } else {
            return false;
        }
    }
    return o.packets > 0 && o.flows > 0 && o.conn_entries > 0 && o.conn_entries <= UINT32_MAX;
}

}  // namespace

int main(int argc, char** argv)
{
    Options opt;
    if (!parse_options(argc, argv, opt)) {
        std::fprintf(stderr,
                     "usage: dataplane_bench [--packets N] [--scenario established_1_flow|established_many_flows|"
                     "syn_new_flows|all] [--pipeline sluice|macswap|conn_floor|both|all] [--flows N] "
                     "[--conn-entries N] [--filters none|rate_limit]\n");
        return 64;
    }
    auto eal = sluice::dpdk::Eal::init({"--no-huge", "--no-pci", "-m", "1024", "--no-shconf", "-l", "0-1",
                                        "--log-level", "4"});
    if (!eal) die(eal.error().c_str());
    Harness h = make_harness();

    // Production timeouts (docs/configuration.md [conntrack] defaults) in
    // TSC ticks, so nothing expires during a run.
    const uint64_t hz = rte_get_tsc_hz();
    const sluice::core::ConnectionTable::Config conn_config{static_cast<uint32_t>(opt.conn_entries), 3600 * hz,
                                                            30 * hz, 60 * hz};
    sluice::core::Worker worker(conn_config, hz);  // run_worker_loop feeds it TSC ticks
    // One of the two pipelines, as the runtime picks: filterless unless a
    // filter is configured.
    std::unique_ptr<Publisher> publisher;
    std::unique_ptr<FilteredPublisher> filtered_publisher;
    std::unique_ptr<sluice::dpdk::SluicePipeline> plain_pipeline;
    std::unique_ptr<sluice::dpdk::FilteredSluicePipeline> filtered_pipeline;
    if (opt.filters == "none") {
        auto p = Publisher::create(1, make_state(h.port));
        if (!p) die(p.error().c_str());
        publisher = std::move(*p);
        plain_pipeline = std::make_unique<sluice::dpdk::SluicePipeline>(worker, *publisher, 0);
    } else {
        auto snapshot = std::make_unique<sluice::dpdk::Snapshot>();
        snapshot->forwarding = make_state(h.port);
        snapshot->filters = make_rate_limit_filters();
        auto p = FilteredPublisher::create(1, std::move(snapshot));
        if (!p) die(p.error().c_str());
        filtered_publisher = std::move(*p);
        filtered_pipeline = std::make_unique<sluice::dpdk::FilteredSluicePipeline>(worker, *filtered_publisher, 0, 1);
    }
    const auto run_sluice = [&](uint64_t packets, const std::function<void(rte_mbuf*, uint64_t)>& fill) {
        return plain_pipeline ? run(h, *plain_pipeline, worker.stats, packets, fill)
                              : run(h, *filtered_pipeline, worker.stats, packets, fill);
    };
    sluice_stats macswap_stats{};
    sluice::dpdk::MacSwapPipeline macswap(&macswap_stats);
    // Built only when run: its table is as large as sluice's.
    sluice_stats conn_floor_stats{};
    std::unique_ptr<ConnFloorPipeline> conn_floor;
    if (opt.run_conn_floor) conn_floor = std::make_unique<ConnFloorPipeline>(conn_config, &conn_floor_stats);

    struct Scenario {
        const char* name;
        uint64_t flows;
        std::function<void(rte_mbuf*, uint64_t)> fill;
        bool warm;  // one pass over every flow first, so the measured pass only hits
    };
    const uint64_t many = opt.flows;
    // SYN flows start past every flow the other scenarios pinned.
    constexpr uint64_t kSynBase = uint64_t{1} << 32;
    const std::vector<Scenario> scenarios = {
        {"established_1_flow", 1, [](rte_mbuf* m, uint64_t) { sluice::bench::write_tcp_packet(m, 0, false); }, true},
        {"established_many_flows", many,
         [many](rte_mbuf* m, uint64_t i) { sluice::bench::write_tcp_packet(m, 1 + i % many, false); }, true},
        {"syn_new_flows", 0, [](rte_mbuf* m, uint64_t i) { sluice::bench::write_tcp_packet(m, kSynBase + i, true); },
         false},
    };
    bool matched = false;
    for (const Scenario& sc : scenarios) {
        if (opt.scenario != "all" && opt.scenario != sc.name) continue;
        matched = true;
        RunResult base;
        RunResult ours;
        RunResult floor_run;
        if (opt.run_macswap) base = run(h, macswap, macswap_stats, opt.packets, sc.fill);
        // The floor's table sees what sluice's does: the same warm-up, the
        // same packets, scenario after scenario.
        if (conn_floor) {
            if (sc.warm) run(h, *conn_floor, conn_floor_stats, std::max<uint64_t>(sc.flows, 1024), sc.fill);
            floor_run = run(h, *conn_floor, conn_floor_stats, opt.packets, sc.fill);
        }
        if (opt.run_sluice) {
            if (sc.warm) run_sluice(std::max<uint64_t>(sc.flows, 1024), sc.fill);
            ours = run_sluice(opt.packets, sc.fill);
        }
        const uint64_t new_flows = opt.run_sluice ? ours.stats.conn_misses : floor_run.stats.conn_misses;
        print_result(sc.name, opt.filters.c_str(), opt.run_sluice ? &ours : nullptr, opt.run_macswap ? &base : nullptr,
                     conn_floor ? &floor_run : nullptr, sc.flows == 0 ? new_flows : sc.flows, opt.conn_entries);
    }
    if (!matched) die("no such scenario");
    return 0;
}
