// xdp_bench: the XDP data plane's cost per packet, one JSON object per
// scenario. BPF_PROG_TEST_RUN with repeat=N runs a harness program
// (perf/xdp_bench_harness.bpf.c) that restores the original frame, gives it
// the iteration's flow and tail-calls the program under test, so every
// iteration runs xdp_lb's full forwarding path on a fresh copy of the
// packet. In each round the same loop runs with these targets: bench_pass
// (the harness's own cost, subtracted from the others), bench_min_ipip (a
// lookup-free IPIP forwarder: baseline of ratio_to_min_ipip),
// bench_table_ipip (the same after the flow hash and one probe, or on a
// miss an insert, in xdp_lb's own connection table: the floor that table
// sets, baseline of ratio_to_conn_floor; IPIP scenarios only),
// bench_lru_ipip (the same with a kernel LRU hash of 1M entries, the table
// xdp_lb had before: lru_floor_ns, for comparison) and xdp_lb. Figures are
// medians over the rounds of the kernel's ns per
// iteration (time preempted by other tasks excluded). Scenarios: one
// established flow, a new flow (SYN) per packet into an emptied table, 10k
// and 1M flows cycling through the connection table after one warm-up pass
// (conn_hits/conn_misses of the measured rounds show whether they fit),
// and new flows into a table already full (syn_full_table: every insert
// evicts). conn_evictions is the program's own counter over the rounds.
// The connection table holds conn_table_size entries per CPU (default 1M,
// the config's default; 1M flows on one CPU overflow some of its buckets:
// dataplane_bench sizes 4M per worker for that scenario, pass 4194304 to
// compare). Every reported "conn_entries" counts all CPUs' partitions.
// Besides IPIP 4in4: one established flow by GUE over IPv6, by L2 DSR and
// by IPIP 4in6, and port_miss (a VIP address without the packet's port:
// every packet dropped as VIP_PORT_MISS; "all_as_expected" checks that,
// "all_forwarded" checks the forwards of the others).
// The run is pinned to one CPU. Needs root.
// Usage: xdp_bench [rounds (default 9)] [scenario|scenario/encap|all|two_cpus] [conn_table_size per CPU]
//   e.g. xdp_bench 15 established (all five), xdp_bench 15 established/l2dsr;
//   two_cpus (not in "all"): per-CPU against shared connection table on two
//   CPUs at once (see two_cpus()).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loader/xdp_dataplane.h"
#include "xdp_bench_lane.h"  // before the skeleton, which names struct bench_lane
#include "xdp_bench_harness.skel.h"

namespace {

using sluice::xdp::Description;

Description bench_description(uint32_t lo_ifindex)
{
    Description d;
    inet_pton(AF_INET, "10.0.0.1", &d.node.local_v4.v4);
    inet_pton(AF_INET6, "fd00::1", d.node.local_v6.bytes);
    sluice::xdp::PortSpec port;
    const uint8_t mac[6] = {2, 0, 0, 0, 0, 0x10}, nh[6] = {2, 0, 0, 0, 0, 0xfe};
    std::memcpy(port.mac, mac, 6);
    std::memcpy(port.nexthop_mac, nh, 6);
    port.ifindex = lo_ifindex;
    d.ports.push_back(port);
    for (uint32_t i = 0; i < 16; ++i) {
        sluice::xdp::BackendSpec b;
        b.id = i;
        b.family = i < 8 ? SLUICE_FAMILY_IPV4 : SLUICE_FAMILY_IPV6;
        if (i < 8) {
            b.addr.v4 = htonl(0x0a010000u + i);
            const uint8_t bmac[6] = {2, 0, 0, 0, 0xbe, static_cast<uint8_t>(i)};  // L2 DSR (vip 2)
            std::memcpy(b.mac, bmac, 6);
        } else {
            inet_pton(AF_INET6, "fd00:1::", b.addr.bytes);
            b.addr.bytes[15] = static_cast<uint8_t>(i);
        }
        d.backends.push_back(b);
    }
    // VIP 192.0.2.(10+v), TCP port 80: v 0 IPIP to IPv4 backends; 1 GUE
    // over IPv6 (checksummed); 2 L2 DSR to IPv4 backends; 3 IPIP to IPv6
    // backends (4in6); 4 only port 443, so the bench's port-80 packets
    // are port misses (dropped).
    struct Vip {
        uint8_t forwarding;
        uint32_t first_backend;
        uint16_t port;
    };
    const Vip vips[] = {{SLUICE_FWD_IPIP, 0, 80},
                        {SLUICE_FWD_GUE, 8, 80},
                        {SLUICE_FWD_L2DSR, 0, 80},
                        {SLUICE_FWD_IPIP, 8, 80},
                        {SLUICE_FWD_IPIP, 0, 443}};
    for (uint32_t v = 0; v < sizeof(vips) / sizeof(vips[0]); ++v) {
        sluice::xdp::VipSpec s;
        s.vip_id = v;
        s.key.family = SLUICE_FAMILY_IPV4;
        s.key.addr.v4 = htonl(0xc0000200u + 10 + v);
        s.key.port = htons(vips[v].port);
        s.key.proto = SLUICE_IPPROTO_TCP;
        s.forwarding = vips[v].forwarding;
        s.gue_port = 6080;
        std::vector<uint32_t> ring(65537);
        for (uint32_t i = 0; i < ring.size(); ++i) ring[i] = vips[v].first_backend + i % 8;
        s.ring = std::move(ring);
        d.vips.push_back(s);
    }
    return d;
}

// Ethernet + IPv4 + TCP (+ payload) from client `flow` to VIP 192.0.2.(10+vip).
// The harness rewrites the flow bytes the same way (bench_set_flow).
std::vector<uint8_t> packet(uint32_t flow, uint32_t vip, uint8_t flags, uint32_t payload)
{
    std::vector<uint8_t> f = {2, 0, 0, 0, 0, 0x10, 2, 0, 0, 0, 0xc1, 1, 0x08, 0x00, 0x45, 0, 0, 0, 0, 1, 0x40, 0,
                              64, 6, 0, 0, 100, static_cast<uint8_t>(flow >> 16), static_cast<uint8_t>(flow >> 8),
                              static_cast<uint8_t>(flow), 192, 0, 2, static_cast<uint8_t>(10 + vip),
                              static_cast<uint8_t>(0x80 | (flow >> 24 & 0x3f)), static_cast<uint8_t>(flow & 0xff), 0, 80,
                              0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0};
    f.resize(f.size() + payload, 0x61);
    const uint16_t total = static_cast<uint16_t>(f.size() - 14);
    f[16] = static_cast<uint8_t>(total >> 8);
    f[17] = static_cast<uint8_t>(total);
    return f;
}

[[noreturn]] void die(const char* what)
{
    std::perror(what);
    std::exit(1);
}

class Harness {
public:
    Harness(xdp_bench_harness* skel, uint32_t ifindex) : skel_(skel), ifindex_(ifindex) {}

    void set_packet(const std::vector<uint8_t>& frame, uint32_t flows)
    {
        frame_ = frame;
        skel_->bss->frame_len = static_cast<uint32_t>(frame.size());
        std::memcpy(skel_->bss->frame_head, frame.data(), sizeof(skel_->bss->frame_head));
        skel_->bss->flows = flows;
        for (auto& lane : skel_->bss->lanes) lane.next_flow = lane.flow_base = 0;
    }

    // Flows of CPU `cpu`'s iterations start after this number (two_cpus).
    void set_flow_base(int cpu, uint32_t base) { skel_->bss->lanes[cpu % BENCH_LANES].flow_base = base; }

    // Kernel ns per iteration of `repeat` iterations with `target` behind
    // the harness.
    uint32_t run(int target, uint32_t repeat)
    {
        const uint32_t key = 0;
        if (bpf_map_update_elem(bpf_map__fd(skel_->maps.bench_target), &key, &target, BPF_ANY) != 0)
            die("xdp_bench: prog array");
        std::vector<uint8_t> out(4096);
        xdp_md ctx{};
        ctx.ingress_ifindex = ifindex_;
        ctx.data_end = static_cast<uint32_t>(frame_.size());
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame_.data(), .data_out = out.data(),
                    .data_size_in = static_cast<uint32_t>(frame_.size()),
                    .data_size_out = static_cast<uint32_t>(out.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
                    .repeat = static_cast<int>(repeat));
        if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.bench_restore), &opts) != 0)
            die("xdp_bench: bpf_prog_test_run_opts");
        if (opts.retval == XDP_ABORTED || skel_->bss->restore_failures != 0) {
            std::fprintf(stderr, "xdp_bench: the harness could not restore the frame\n");
            std::exit(1);
        }
        return opts.duration;
    }

private:
    xdp_bench_harness* skel_;
    uint32_t ifindex_;
    std::vector<uint8_t> frame_;
};

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Empties the harness's LRU hash in batches (each call walks from the first
// bucket; what it returns is gone).
void clear_lru(int fd)
{
    std::vector<sluice_flow_key> keys(8192);
    std::vector<uint8_t> values(8192 * 16);
    for (;;) {
        uint64_t cursor = 0;
        uint32_t count = static_cast<uint32_t>(keys.size());
        if (bpf_map_lookup_and_delete_batch(fd, nullptr, &cursor, keys.data(), values.data(), &count, nullptr) != 0 &&
            errno != ENOENT)
            die("xdp_bench: clear the LRU hash");
        if (count == 0) return;
    }
}

// xdp_lb loaded and given bench_description(); exits on failure.
std::unique_ptr<sluice::xdp::XdpDataplane> open_bench_dataplane(uint32_t conn_table_size, bool shared, uint32_t lo)
{
    sluice::xdp::OpenOptions options;
    options.conn_table_size = conn_table_size;
    options.shared_conn_table = shared;
    auto dp = sluice::xdp::XdpDataplane::open(options);
    if (!dp) {
        std::fprintf(stderr, "xdp_bench: %s (root needed)\n", dp.error().c_str());
        std::exit(1);
    }
    if (auto r = (*dp)->apply(bench_description(lo)); !r) {
        std::fprintf(stderr, "xdp_bench: %s\n", r.error().c_str());
        std::exit(1);
    }
    return std::move(*dp);
}

// Kernel ns per iteration of `repeat` runs of the harness (its target
// already set) on the calling thread.
uint32_t run_harness(int restore_fd, uint32_t ifindex, const std::vector<uint8_t>& frame, uint32_t repeat)
{
    std::vector<uint8_t> in = frame, out(4096);
    xdp_md ctx{};
    ctx.ingress_ifindex = ifindex;
    ctx.data_end = static_cast<uint32_t>(in.size());
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(in.size()), .data_size_out = static_cast<uint32_t>(out.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(repeat));
    if (bpf_prog_test_run_opts(restore_fd, &opts) != 0) die("xdp_bench: bpf_prog_test_run_opts");
    return opts.duration;
}

// `repeat` iterations on each of `cpus` at once (threads pinned, started
// together); ns per iteration on each.
std::vector<double> run_at_once(const std::vector<int>& cpus, int restore_fd, uint32_t ifindex,
                                const std::vector<uint8_t>& frame, uint32_t repeat)
{
    std::vector<double> ns(cpus.size());
    std::atomic<size_t> ready{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < cpus.size(); ++i) {
        threads.emplace_back([&, i] {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpus[i], &set);
            if (sched_setaffinity(0, sizeof(set), &set) != 0) die("xdp_bench: pin a thread");
            ready.fetch_add(1);
            while (ready.load() < cpus.size()) {
            }
            ns[i] = run_harness(restore_fd, ifindex, frame, repeat);
        });
    }
    for (auto& t : threads) t.join();
    return ns;
}

// xdp_bench N two_cpus: xdp_lb on two CPUs at once, with a connection
// table partitioned per CPU against one shared by both (conn_table_mode),
// both programs loaded in this process and measured alternately in every
// round. Flows: "established" one per CPU, "flows_10k" 10 000 per CPU
// (each CPU its own flows, as RSS or a veth sender gives them), and
// "same_flow" one flow sent from both CPUs at once (the worst case for
// the shared table: both CPUs write one entry; per CPU each has its own).
// program_ns: the two CPUs' mean, the harness's own cost (measured at
// once too) subtracted.
int two_cpus(uint32_t rounds, uint32_t conn_table_size, uint32_t lo)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) die("xdp_bench: affinity");
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
        if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    }
    if (cpus.size() < 2) {
        std::fprintf(stderr, "xdp_bench two_cpus: needs two CPUs this process may use\n");
        return 1;
    }
    // [0] per CPU, [1] shared.
    const std::unique_ptr<sluice::xdp::XdpDataplane> layouts[2] = {open_bench_dataplane(conn_table_size, false, lo),
                                                                    open_bench_dataplane(conn_table_size, true, lo)};
    // The harness (its table floor unused here) on the per-CPU table.
    const int conns = layouts[0]->map_fd("sluice_conns_v3");
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (conns < 0 || bpf_obj_get_info_by_fd(conns, &info, &len) != 0) die("xdp_bench: conn table info");
    xdp_bench_harness* skel = xdp_bench_harness__open();
    if (!skel || bpf_map__set_max_entries(skel->maps.bench_conns, info.max_entries) != 0 ||
        bpf_map__reuse_fd(skel->maps.bench_conns, conns) != 0 || xdp_bench_harness__load(skel) != 0)
        die("xdp_bench: harness");
    Harness h(skel, lo);
    const int restore = bpf_program__fd(skel->progs.bench_restore);
    const int target_map = bpf_map__fd(skel->maps.bench_target);
    auto target = [&](int fd) {
        const uint32_t key = 0;
        if (bpf_map_update_elem(target_map, &key, &fd, BPF_ANY) != 0) die("xdp_bench: prog array");
    };
    struct Scenario {
        const char* name;
        uint32_t flows;  // per CPU
        bool same;       // both CPUs the same flows
        uint32_t repeat;
    };
    const Scenario scenarios[] = {{"established", 1, false, 200000},
                                  {"flows_10k", 10000, false, 200000},
                                  {"same_flow", 1, true, 200000}};
    const std::vector<uint8_t> frame = packet(1, 0, 0x10, 64);
    for (const Scenario& s : scenarios) {
        std::vector<double> prog[2], harness;
        uint64_t iterations = 0, forwarded[2] = {0, 0}, hits[2] = {0, 0}, misses[2] = {0, 0};
        for (uint32_t r = 0; r < rounds; ++r) {
            for (int k = 0; k < 2; ++k) {
                const int i = (r % 2 == 0) ? k : 1 - k;  // alternate which layout goes first
                sluice::xdp::XdpDataplane& dp = *layouts[i];
                if (!dp.clear_connections()) die("xdp_bench: clear connections");
                h.set_packet(frame, s.flows);
                h.set_flow_base(cpus[1], s.same ? 0 : 1u << 20);
                target(dp.program_fd());
                (void)run_at_once(cpus, restore, lo, frame, s.flows < 1000 ? 1000 : s.flows);  // warm-up
                target(bpf_program__fd(skel->progs.bench_pass));
                const std::vector<double> p = run_at_once(cpus, restore, lo, frame, s.repeat);
                target(dp.program_fd());
                const sluice_stats before = *dp.read_stats();
                const std::vector<double> d = run_at_once(cpus, restore, lo, frame, s.repeat);
                const sluice_stats after = *dp.read_stats();
                prog[i].push_back(((d[0] - p[0]) + (d[1] - p[1])) / 2);
                harness.push_back((p[0] + p[1]) / 2);
                forwarded[i] += after.tx_packets - before.tx_packets;
                hits[i] += after.conn_hits - before.conn_hits;
                misses[i] += after.conn_misses - before.conn_misses;
            }
            iterations += 2ull * s.repeat;
        }
        const double per_cpu = median(prog[0]), shared = median(prog[1]);
        std::printf("{\"bench\":\"xdp_lb_two_cpus\",\"scenario\":\"%s\",\"encap\":\"ipip4in4\","
                    "\"flows_per_cpu\":%u,\"same_flows\":%s,\"cpus\":[%d,%d],\"iterations_per_layout\":%llu,"
                    "\"per_cpu_ns\":%.1f,\"shared_ns\":%.1f,\"ratio_shared_to_per_cpu\":%.2f,\"harness_ns\":%.1f,"
                    "\"per_cpu_hits\":%llu,\"per_cpu_misses\":%llu,\"shared_hits\":%llu,\"shared_misses\":%llu,"
                    "\"all_forwarded\":%s}\n",
                    s.name, s.flows, s.same ? "true" : "false", cpus[0], cpus[1],
                    static_cast<unsigned long long>(iterations), per_cpu, shared, per_cpu > 0 ? shared / per_cpu : 0.0,
                    median(harness), static_cast<unsigned long long>(hits[0]),
                    static_cast<unsigned long long>(misses[0]), static_cast<unsigned long long>(hits[1]),
                    static_cast<unsigned long long>(misses[1]),
                    forwarded[0] == iterations && forwarded[1] == iterations ? "true" : "false");
        std::fflush(stdout);
    }
    xdp_bench_harness__destroy(skel);
    return 0;
}

uint32_t jited_bytes(int prog_fd)
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 ? info.jited_prog_len : 0;
}

}  // namespace

int main(int argc, char** argv)
{
    const uint32_t rounds = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 0)) : 9;
    const std::string only = argc > 2 && std::strcmp(argv[2], "all") != 0 ? argv[2] : "";  // one scenario, e.g. to profile it
    // Entries per CPU; the run uses one CPU's partition.
    const uint32_t conn_table_size = argc > 3 ? static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 0)) : 1u << 20;
    const uint32_t lo = if_nametoindex("lo");
    if (only == "two_cpus") return two_cpus(rounds, conn_table_size, lo);
    // One CPU for the whole run, as one RX queue's flows are under RSS
    // (the connection table's LRU keeps per-CPU free lists).
    const int cpu = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set) != 0) die("xdp_bench: pin to a CPU");
    auto dp = open_bench_dataplane(conn_table_size, false, lo);
    const int conns = dp->map_fd("sluice_conns_v3");
    if (conns < 0) {
        std::fprintf(stderr, "xdp_bench: no sluice_conns_v3\n");
        return 1;
    }
    bpf_map_info conn_info{};
    uint32_t conn_info_len = sizeof(conn_info);
    if (bpf_obj_get_info_by_fd(conns, &conn_info, &conn_info_len) != 0) die("xdp_bench: conn table info");
    const int ncpu = static_cast<int>(dp->connection_partitions());
    // The harness's bench_table_ipip works on xdp_lb's own connection table.
    xdp_bench_harness* skel = xdp_bench_harness__open();
    if (!skel) die("xdp_bench: harness");
    uint32_t shift = 0;
    while ((uint64_t{1} << shift) * static_cast<uint64_t>(ncpu) < conn_info.max_entries) ++shift;
    skel->rodata->xlb_conn_shift = shift;
    skel->rodata->xlb_ns_per_tick = dp->connection_clock_tick_ns();  // the same clock as xdp_lb's entries
    if (bpf_map__set_max_entries(skel->maps.bench_conns, conn_info.max_entries) != 0 ||
        bpf_map__reuse_fd(skel->maps.bench_conns, conns) != 0 || xdp_bench_harness__load(skel) != 0)
        die("xdp_bench: harness");
    Harness h(skel, lo);
    const int lb = dp->program_fd();
    const int pass = bpf_program__fd(skel->progs.bench_pass);
    const int min_ipip = bpf_program__fd(skel->progs.bench_min_ipip);
    const int table_ipip = bpf_program__fd(skel->progs.bench_table_ipip);
    const int lru_ipip = bpf_program__fd(skel->progs.bench_lru_ipip);
    const int lru = bpf_map__fd(skel->maps.bench_lru);
    // One CPU's share: the run stays on one CPU.
    const uint32_t conn_capacity = static_cast<uint32_t>(dp->connection_capacity() / static_cast<size_t>(ncpu));
    struct Scenario {
        const char* name;
        const char* encap;
        uint32_t vip;
        uint32_t flows;   // distinct flows cycled through; 0 = a new flow per packet
        uint8_t flags;
        uint32_t repeat;  // iterations per round
        uint32_t prefill; // 1: fill the table with new flows before the rounds
        double goal_ns;   // issue #4: 0.8 x Katran on this machine kind; 0 = none
    };
    const Scenario scenarios[] = {
        {"established", "ipip4in4", 0, 1, 0x10, 200000, 0, 38},
        {"syn", "ipip4in4", 0, 0, 0x02, 50000, 0, 88},
        {"syn_full_table", "ipip4in4", 0, 0, 0x02, 50000, 1, 0},  // prefill: table size + 50k
        {"flows_10k", "ipip4in4", 0, 10000, 0x10, 200000, 0, 56},
        {"flows_1m", "ipip4in4", 0, 1000000, 0x10, 1000000, 0, 172},
        {"established", "gue4in6", 1, 1, 0x10, 200000, 0, 0},
        {"established", "l2dsr", 2, 1, 0x10, 200000, 0, 0},
        {"established", "ipip4in6", 3, 1, 0x10, 200000, 0, 0},
        {"port_miss", "none", 4, 1, 0x10, 200000, 0, 0},  // every packet a VIP_PORT_MISS drop
    };
    for (const Scenario& s : scenarios) {
        if (!only.empty() && only != s.name && only != std::string(s.name) + "/" + s.encap) continue;
        const bool expect_tx = std::strcmp(s.encap, "none") != 0;
        if (!dp->clear_connections()) die("xdp_bench: clear connections");
        clear_lru(lru);
        h.set_packet(packet(1, s.vip, s.flags, 64), s.flows);
        // Warm-up: every flow once, so the measured rounds are all hits
        // when the table holds them (SYN: flows never repeat anyway).
        if (s.flows != 0) (void)h.run(lb, s.flows < 1000 ? 1000 : s.flows);
        if (s.prefill != 0) (void)h.run(lb, conn_capacity + 50000);
        std::vector<double> harness, min, floor, lru_floor, prog;
        const sluice_stats before = *dp->read_stats();
        for (uint32_t r = 0; r < rounds; ++r) {
            const double p = h.run(pass, s.repeat);
            harness.push_back(p);
            min.push_back(h.run(min_ipip, s.repeat) - p);
            if (s.vip == 0) {
                floor.push_back(h.run(table_ipip, s.repeat) - p);
                lru_floor.push_back(h.run(lru_ipip, s.repeat) - p);
            }
            prog.push_back(h.run(lb, s.repeat) - p);
        }
        const sluice_stats st = *dp->read_stats();
        // A walk of every partition through the loader's mapping, as
        // forget_connections_to() and clear_connections() make.
        const auto walk_start = std::chrono::steady_clock::now();
        const uint64_t entries_after = dp->count_connections();
        const double walk_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - walk_start).count();
        // The program's own count (the harness's floor inserts are not in it).
        const uint64_t evictions = st.conn_evictions - before.conn_evictions;
        const uint64_t iterations = static_cast<uint64_t>(rounds) * s.repeat;
        const uint64_t forwarded = st.tx_packets - before.tx_packets;
        const uint64_t port_misses = st.drops[SLUICE_DROP_VIP_PORT_MISS] - before.drops[SLUICE_DROP_VIP_PORT_MISS];
        const double prog_ns = median(prog), min_ns = median(min), floor_ns = floor.empty() ? 0 : median(floor);
        const double lru_ns = lru_floor.empty() ? 0 : median(lru_floor);
        std::printf("{\"bench\":\"xdp_lb\",\"scenario\":\"%s\",\"encap\":\"%s\",\"flows\":%u,\"iterations\":%llu,"
                    "\"frame_bytes\":118,\"program_ns\":%.1f,\"program_ns_min\":%.1f,\"harness_ns\":%.1f,"
                    "\"min_ipip_ns\":%.1f,\"ratio_to_min_ipip\":%.2f,\"conn_floor_ns\":%.1f,\"ratio_to_conn_floor\":%.2f,"
                    "\"lru_floor_ns\":%.1f,"
                    "\"goal_ns\":%.0f,\"conn_hits\":%llu,"
                    "\"conn_misses\":%llu,\"expected\":\"%s\",\"all_forwarded\":%s,\"all_as_expected\":%s,\"conn_entries\":%llu,\"conn_evictions\":%llu,\"table_walk_ms\":%.1f,"
                    "\"insns\":%u,\"jited_bytes\":%u}\n",
                    s.name, s.encap, s.flows == 0 ? rounds * s.repeat : s.flows,
                    static_cast<unsigned long long>(rounds) * s.repeat, prog_ns,
                    *std::min_element(prog.begin(), prog.end()), median(harness), min_ns,
                    min_ns > 0 ? prog_ns / min_ns : 0.0, floor_ns, floor_ns > 0 ? prog_ns / floor_ns : 0.0, lru_ns, s.goal_ns,
                    static_cast<unsigned long long>(st.conn_hits - before.conn_hits),
                    static_cast<unsigned long long>(st.conn_misses - before.conn_misses),
                    expect_tx ? "tx" : "drop",
                    // Every measured iteration ran to a forward (tx), none passed or dropped.
                    forwarded == iterations ? "true" : "false",
                    // ... or, for port_miss, to a VIP_PORT_MISS drop.
                    (expect_tx ? forwarded : port_misses) == iterations ? "true" : "false",
                    static_cast<unsigned long long>(entries_after), static_cast<unsigned long long>(evictions), walk_ms,
                    dp->program_instructions(), jited_bytes(lb));
        std::fflush(stdout);
    }
    xdp_bench_harness__destroy(skel);
    return 0;
}
