// See xdp_test_support.h.
#include "xdp_test_support.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

extern "C" {
#include "abi/drop_reason.h"
#include "abi/tables.h"
}

namespace sluice::testing {

namespace {

// "10.0.0.0/8", "2001:db8::/32" or a bare address (a host prefix).
bool parse_prefix(const std::string& text, xdp::AclPrefixSpec& p)
{
    const size_t slash = text.find('/');
    p.family = parse_addr(text.substr(0, slash), p.addr);
    if (p.family == 0) return false;
    const int max = p.family == SLUICE_FAMILY_IPV4 ? 32 : 128;
    const int len = slash == std::string::npos ? max : std::atoi(text.c_str() + slash + 1);
    if (len < 0 || len > max) return false;
    p.prefix_len = static_cast<uint8_t>(len);
    return true;
}

// The fixture config's "filters" (tests/fixtures/README.md): ACL lists per
// scope and rate limits. Payload rules are not enforced by XDP and are
// left out (fixtures say what XDP does instead in xdp_expected).
Result<void> add_filters(const nlohmann::json& filters, xdp::Description& d)
{
    auto add_scope = [&](const nlohmann::json& scope, uint32_t id) -> Result<void> {
        for (const char* list : {"allow", "deny"}) {
            const nlohmann::json prefixes = scope.value(list, nlohmann::json::array());
            for (const auto& text : prefixes) {
                xdp::AclPrefixSpec p;
                p.scope = id;
                p.deny = std::string(list) == "deny";
                if (!parse_prefix(text.get<std::string>(), p)) return make_error("filters: bad prefix " + text.dump());
                d.acl.push_back(p);
            }
        }
        return {};
    };
    if (filters.contains("global")) {
        if (Result<void> r = add_scope(filters.at("global"), SLUICE_MAX_VIPS); !r) return r;
    }
    const nlohmann::json vips = filters.value("vips", nlohmann::json::object());
    const nlohmann::json limits_by_vip = filters.value("rate_limits", nlohmann::json::object());
    for (const auto& [id, scope] : vips.items()) {
        if (Result<void> r = add_scope(scope, static_cast<uint32_t>(std::stoul(id))); !r) return r;
    }
    for (const auto& [id, limits] : limits_by_vip.items()) {
        const uint32_t vip_id = static_cast<uint32_t>(std::stoul(id));
        bool found = false;
        for (auto& v : d.vips) {
            if (v.vip_id != vip_id) continue;
            v.limits.packets_per_sec = limits.value("packets_per_sec", uint64_t{0});
            v.limits.packets_burst = limits.value("packets_burst", uint64_t{0});
            v.limits.new_flows_per_sec = limits.value("new_flows_per_sec", uint64_t{0});
            v.limits.new_flows_burst = limits.value("new_flows_burst", uint64_t{0});
            found = true;
        }
        if (!found) return make_error("filters: rate limit for unknown vip " + id);
    }
    return {};
}

}  // namespace

XdpDifference xdp_documented_difference(const Fixture& f)
{
    if (f.input.size() < 14) return XdpDifference::kRefusedByKernel;
    if (f.verdict == "drop:not_for_vip") return XdpDifference::kAlwaysPass;
    if (f.verdict == "drop:no_headroom") return XdpDifference::kHeadroomAlwaysEnough;
    return XdpDifference::kNone;
}

Result<std::map<std::string, FixtureExtras>> load_fixture_extras(const std::string& dir)
{
    std::ifstream in(dir + "/packets.json");
    if (!in) return make_error(dir + "/packets.json: cannot open");
    std::map<std::string, FixtureExtras> out;
    try {
        const nlohmann::json doc = nlohmann::json::parse(in);
        for (const auto& j : doc.at("fixtures")) {
            FixtureExtras e;
            e.after = j.value("after", std::vector<std::string>{});
            e.xdp_expected = j.value("xdp_expected", nlohmann::json());
            out[j.at("name").get<std::string>()] = std::move(e);
        }
    } catch (const std::exception& e) {
        return make_error(std::string("packets.json: ") + e.what());
    }
    return out;
}

std::string as_xdp_verdict(const std::string& core_verdict)
{
    return core_verdict == "control" ? "exception" : core_verdict;
}

Result<xdp::Description> description_from_config(const nlohmann::json& cfg)
{
    xdp::Description d;
    try {
        if (cfg.contains("local_ipv4") && parse_addr(cfg["local_ipv4"], d.node.local_v4) != SLUICE_FAMILY_IPV4)
            return make_error("bad local_ipv4");
        if (cfg.contains("local_ipv6") && parse_addr(cfg["local_ipv6"], d.node.local_v6) != SLUICE_FAMILY_IPV6)
            return make_error("bad local_ipv6");
        d.node.exception_path = cfg.value("exception_path", true);
        d.node.icmp_errors_per_sec = cfg.value("icmp_errors_per_sec", d.node.icmp_errors_per_sec);
        d.node.icmp_errors_burst = cfg.value("icmp_errors_burst", d.node.icmp_errors_burst);
        for (const auto& p : cfg.at("ports")) {
            xdp::PortSpec ps;
            ps.id = p.at("id").get<uint16_t>();
            if (!parse_mac(p.at("mac"), ps.mac) || !parse_mac(p.at("nexthop_mac"), ps.nexthop_mac))
                return make_error("port: bad MAC");
            ps.mtu = p.at("mtu").get<uint16_t>();
            ps.egress_port = p.at("egress_port").get<uint16_t>();
            // A made-up but distinct redirect target per port: test runs
            // never transmit.
            ps.ifindex = 0;
            d.ports.push_back(ps);
        }
        for (const auto& j : cfg.at("backends")) {
            xdp::BackendSpec b;
            b.id = j.at("id").get<uint32_t>();
            b.family = parse_addr(j.at("addr"), b.addr);
            if (b.family == 0) return make_error("backend: bad address");
            if (!parse_mac(j.value("mac", "00:00:00:00:00:00"), b.mac)) return make_error("backend: bad MAC");
            b.flags = 0;
            for (const auto& f : j.value("flags", nlohmann::json::array())) {
                if (f == "valid") b.flags |= SLUICE_BACKEND_F_VALID;
                else if (f == "draining") b.flags |= SLUICE_BACKEND_F_DRAINING;
                else return make_error("backend: unknown flag");
            }
            d.backends.push_back(b);
        }
        for (const auto& j : cfg.at("vips")) {
            xdp::VipSpec v;
            v.key.family = parse_addr(j.at("addr"), v.key.addr);
            if (v.key.family == 0) return make_error("vip: bad address");
            v.key.port = htons(j.at("port").get<uint16_t>());
            const std::string proto = j.at("proto");
            v.key.proto = proto == "tcp" ? SLUICE_IPPROTO_TCP : proto == "udp" ? SLUICE_IPPROTO_UDP : 0;
            v.vip_id = j.at("id").get<uint32_t>();
            const std::string fwd = j.at("forwarding");
            v.forwarding = fwd == "ipip" ? SLUICE_FWD_IPIP : fwd == "gue" ? SLUICE_FWD_GUE
                         : fwd == "l2dsr" ? SLUICE_FWD_L2DSR : SLUICE_FWD_MAX;
            v.gue_port = j.value("gue_port", uint16_t{0});
            for (const auto& f : j.value("flags", nlohmann::json::array())) {
                if (f == "hash_no_sport") v.flags |= SLUICE_VIP_F_HASH_NO_SPORT;
                else return make_error("vip: unknown flag");
            }
            std::vector<uint32_t> ring;
            for (const auto& r : j.at("ring")) ring.push_back(r.is_null() ? SLUICE_BACKEND_NONE : r.get<uint32_t>());
            v.ring = std::move(ring);
            d.vips.push_back(std::move(v));
        }
        if (cfg.contains("filters")) {
            if (Result<void> r = add_filters(cfg.at("filters"), d); !r) return make_error(r.error());
        }
    } catch (const std::exception& e) {
        return make_error(std::string("config: ") + e.what());
    }
    return d;
}

Result<std::unique_ptr<XdpRunner>> XdpRunner::create(const nlohmann::json& config, const std::string& pin_dir,
                                                     uint32_t conn_table_size,
                                                     std::function<void(const std::string&)> log,
                                                     uint8_t fast_path_mode, bool shared_conn_table)
{
    auto desc = description_from_config(config);
    if (!desc) return make_error(desc.error());
    xdp::OpenOptions options;
    options.pin_dir = pin_dir;
    options.conn_table_size = conn_table_size;
    options.log = std::move(log);
    options.fast_path_mode = fast_path_mode;
    options.shared_conn_table = shared_conn_table;
    auto dp = xdp::XdpDataplane::open(options);
    if (!dp) return make_error(dp.error());
    std::unique_ptr<XdpRunner> r(new XdpRunner());
    r->dp_ = std::move(*dp);
    r->desc_ = std::move(*desc);
    // Egress ports get distinct made-up ifindexes (redirect targets only).
    for (auto& p : r->desc_.ports) p.ifindex = 1000 + p.id;
    // The fixtures' limits belong to one worker: every CPU enforces the
    // whole limit (tests that count on it stay on one CPU).
    r->desc_.node.rate_limit_shares = 1;
    if (Result<void> a = r->dp_->apply(r->desc_); !a) return make_error("apply: " + a.error());
    r->ifindex_ = if_nametoindex("lo");
    if (r->ifindex_ == 0) return make_error("no loopback interface");
    return r;
}

int XdpRunner::run_raw(const std::vector<uint8_t>& frame, uint32_t& retval, std::vector<uint8_t>& out) const
{
    out.assign(frame.size() + 512, 0);
    xdp_md ctx{};
    ctx.data_end = static_cast<uint32_t>(frame.size());
    ctx.ingress_ifindex = ifindex_;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .data_size_out = static_cast<uint32_t>(out.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
    if (bpf_prog_test_run_opts(dp_->program_fd(), &opts) != 0) return errno;
    out.resize(opts.data_size_out);
    retval = opts.retval;
    return 0;
}

Result<void> XdpRunner::reset_state()
{
    if (Result<void> r = dp_->clear_connections(); !r) return r;
    // Every CPU's ICMP-error bucket zeroed: set up again, full, at its next
    // use (xdp/icmp.h), as a fresh DPDK worker's is.
    const int icmp = dp_->map_fd("sluice_icmp_bucket");
    const int ncpu = libbpf_num_possible_cpus();
    if (icmp < 0 || ncpu <= 0) return make_error("no sluice_icmp_bucket map");
    std::vector<sluice_carried_bucket> zeros(static_cast<size_t>(ncpu));  // one value per CPU
    const uint32_t key = 0;
    if (bpf_map_update_elem(icmp, &key, zeros.data(), BPF_ANY) != 0)
        return make_error(std::string("clearing the ICMP-error buckets: ") + std::strerror(errno));
    // The per-VIP token buckets full again; rings unchanged, nothing flips.
    dp_->restart_rate_limits_at_next_apply();
    return dp_->apply(desc_);
}

Result<void> XdpRunner::bind_port(uint16_t in_port)
{
    if (bound_port_ == in_port) return {};
    // The loopback stands in for every port: rebinding it says which port
    // the next packets arrive on.
    if (Result<void> r = dp_->bind_interface(ifindex_, in_port); !r) return r;
    bound_port_ = in_port;
    return {};
}

XdpRun XdpRunner::run(const std::vector<uint8_t>& frame, uint16_t in_port)
{
    XdpRun r;
    if (const int cpu = sched_getcpu(); cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1) {
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            (void)sched_setaffinity(0, sizeof(set), &set);
        }
    }
    if (!bind_port(in_port)) {
        r.error = EINVAL;
        return r;
    }
    auto before = dp_->read_stats();
    r.error = run_raw(frame, r.retval, r.output);
    auto after = dp_->read_stats();
    if (r.error != 0 || !before || !after) return r;
    const sluice_stats& b = *before;
    const sluice_stats& a = *after;
    r.icmp_sent = a.icmp_sent != b.icmp_sent;
    r.icmp_rate_limited = a.icmp_rate_limited != b.icmp_rate_limited;
    if (a.tx_packets != b.tx_packets) r.account = "tx";
    else if (a.exception_packets != b.exception_packets) r.account = "exception";
    for (int i = 0; i < SLUICE_DROP_MAX; ++i) {
        if (a.drops[i] != b.drops[i]) r.account = "drop:" + drop_label(static_cast<uint8_t>(i));
    }
    uint16_t egress = in_port;
    for (const auto& p : desc_.ports) {
        if (p.id == in_port) egress = p.egress_port;
    }
    switch (r.retval) {
    case XDP_TX: r.verdict = "tx:" + std::to_string(in_port); break;
    case XDP_REDIRECT: r.verdict = "tx:" + std::to_string(egress); break;
    case XDP_PASS: r.verdict = "exception"; break;
    case XDP_DROP: r.verdict = r.account.rfind("drop:", 0) == 0 ? r.account : "drop:?"; break;
    default: r.verdict = "xdp_action:" + std::to_string(r.retval); break;
    }
    return r;
}

std::vector<uint8_t> tcp_udp_frame(uint16_t client_port, uint8_t tcp_flags, bool udp, uint16_t port)
{
    std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0x10, 0x02, 0, 0, 0, 0xc1, 0x01, 0x08, 0x00,
                              0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, static_cast<uint8_t>(udp ? 17 : 6), 0, 0,
                              203, 0, 113, 5, 198, 51, 100, 7,
                              static_cast<uint8_t>(client_port >> 8), static_cast<uint8_t>(client_port),
                              static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port)};
    if (udp) {
        f.insert(f.end(), {0, 20, 0, 0});
    } else {
        f.insert(f.end(), {0, 0, 0, 1, 0, 0, 0, 0, 0x50, tcp_flags, 0xff, 0xff, 0, 0, 0, 0});
    }
    f.resize(60, 0);
    return f;
}

}  // namespace sluice::testing
