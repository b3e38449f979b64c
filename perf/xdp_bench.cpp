// xdp_bench: the XDP data plane's cost per packet, one JSON object per
// result line. Each packet is one BPF_PROG_TEST_RUN call with repeat=1 (a
// repeat loop would feed the program its own encapsulated output, see
// ENV.md); the kernel's per-run duration is reported, and the same for a
// trivial XDP_PASS program, whose cost (test-run frame setup, timer) is
// subtracted to give the program's own cost. Scenarios: one established
// flow, a new flow (SYN) per packet, 10k and 1M flows cycling through the
// connection table (conn_hits/conn_misses show whether the flows fit: the
// LRU's free lists are per CPU, so each CPU holds about entries / CPUs).
// Needs root. Usage: xdp_bench [packets per scenario].
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "loader/xdp_dataplane.h"

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
        } else {
            inet_pton(AF_INET6, "fd00:1::", b.addr.bytes);
            b.addr.bytes[15] = static_cast<uint8_t>(i);
        }
        d.backends.push_back(b);
    }
    // vip 0: IPIP to IPv4 backends; vip 1: GUE over IPv6 (checksummed).
    for (uint32_t v = 0; v < 2; ++v) {
        sluice::xdp::VipSpec s;
        s.vip_id = v;
        s.key.family = SLUICE_FAMILY_IPV4;
        s.key.addr.v4 = htonl(0xc0000200u + 10 + v);
        s.key.port = htons(80);
        s.key.proto = SLUICE_IPPROTO_TCP;
        s.forwarding = v == 0 ? SLUICE_FWD_IPIP : SLUICE_FWD_GUE;
        s.gue_port = 6080;
        s.ring.resize(65537);
        for (uint32_t i = 0; i < s.ring.size(); ++i) s.ring[i] = (v == 0 ? 0 : 8) + i % 8;
        d.vips.push_back(s);
    }
    return d;
}

// Ethernet + IPv4 + TCP (+ payload) from client `flow` to VIP 192.0.2.(10+vip).
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

struct Timing {
    double kernel_ns = 0;  // mean of the kernel's per-run duration
    double wall_ns = 0;    // mean wall time per call, syscall included
};

Timing run_all(int prog_fd, uint32_t ifindex, const std::vector<std::vector<uint8_t>>& pkts, size_t n)
{
    std::vector<uint8_t> out(4096);
    xdp_md ctx{};
    ctx.ingress_ifindex = ifindex;
    uint64_t kernel = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; ++i) {
        const auto& p = pkts[i % pkts.size()];
        ctx.data_end = static_cast<uint32_t>(p.size());
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p.data(), .data_out = out.data(),
                    .data_size_in = static_cast<uint32_t>(p.size()), .data_size_out = static_cast<uint32_t>(out.size()),
                    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
        if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
            std::perror("bpf_prog_test_run_opts");
            std::exit(1);
        }
        kernel += opts.duration;
    }
    const auto t1 = std::chrono::steady_clock::now();
    return {static_cast<double>(kernel) / n,
            std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n)};
}

int trivial_program()
{
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    return bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", insns, 2, nullptr);
}

}  // namespace

int main(int argc, char** argv)
{
    const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 200000;
    const uint32_t lo = if_nametoindex("lo");
    auto dp = sluice::xdp::XdpDataplane::open({});
    if (!dp) {
        std::fprintf(stderr, "xdp_bench: %s (root needed)\n", dp.error().c_str());
        return 1;
    }
    if (auto r = (*dp)->apply(bench_description(lo)); !r) {
        std::fprintf(stderr, "xdp_bench: %s\n", r.error().c_str());
        return 1;
    }
    const int trivial = trivial_program();
    if (trivial < 0) {
        std::perror("xdp_bench: trivial program");
        return 1;
    }
    const int prog = (*dp)->program_fd();
    struct Scenario {
        const char* name;
        const char* encap;
        uint32_t vip;
        uint32_t flows;   // distinct flows cycled through; 0 = a new flow per packet
        uint8_t flags;
    };
    const Scenario scenarios[] = {
        {"established", "ipip4in4", 0, 1, 0x10},
        {"syn", "ipip4in4", 0, 0, 0x02},
        {"flows_10k", "ipip4in4", 0, 10000, 0x10},
        {"flows_1m", "ipip4in4", 0, 1000000, 0x10},
        {"established", "gue4in6", 1, 1, 0x10},
    };
    for (const Scenario& s : scenarios) {
        (void)(*dp)->clear_connections();
        const size_t distinct = s.flows == 0 ? n : s.flows;
        std::vector<std::vector<uint8_t>> pkts;
        pkts.reserve(distinct);
        for (uint32_t f = 0; f < distinct; ++f) pkts.push_back(packet(f + 1, s.vip, s.flags, 64));
        // Warm-up: every flow once, so the measured pass is all hits (or,
        // for SYN, a fresh set of flows is measured).
        if (s.flows != 0) (void)run_all(prog, lo, pkts, pkts.size());
        const size_t count = s.flows > n ? s.flows : n;
        const sluice_stats before = *(*dp)->read_stats();
        const Timing lb = run_all(prog, lo, pkts, count);
        const Timing base = run_all(trivial, lo, pkts, std::min<size_t>(count, 200000));
        const sluice_stats st = *(*dp)->read_stats();
        std::printf("{\"bench\":\"xdp_lb\",\"scenario\":\"%s\",\"encap\":\"%s\",\"packets\":%zu,\"frame_bytes\":%zu,"
                    "\"kernel_ns\":%.1f,\"baseline_ns\":%.1f,\"program_ns\":%.1f,\"call_wall_ns\":%.1f,"
                    "\"conn_hits\":%llu,\"conn_misses\":%llu,\"insns\":%u}\n",
                    s.name, s.encap, count, pkts[0].size(), lb.kernel_ns, base.kernel_ns, lb.kernel_ns - base.kernel_ns,
                    lb.wall_ns, static_cast<unsigned long long>(st.conn_hits - before.conn_hits),
                    static_cast<unsigned long long>(st.conn_misses - before.conn_misses), (*dp)->program_instructions());
        std::fflush(stdout);
    }
    return 0;
}
