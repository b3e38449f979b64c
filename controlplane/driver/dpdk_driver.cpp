// DpdkDriver: start-up order, publication and stats (see dpdk_driver.h).
#include "driver/dpdk_driver.h"

#include <rte_ethdev.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/runtime.h"
#include "filter/filter_set.h"

namespace sluice::driver {
namespace {

bool same_ports(const NodePlan& a, const NodePlan& b)
{
    if (a.ports.size() != b.ports.size()) return false;
    for (size_t i = 0; i < a.ports.size(); ++i) {
        const PlanPort& x = a.ports[i];
        const PlanPort& y = b.ports[i];
        if (x.name != y.name || x.device != y.device || x.rx_queues != y.rx_queues || x.egress != y.egress)
            return false;
    }
    return a.conn_table_size == b.conn_table_size;
}

dpdk::NeighborAddress to_neighbor(const model::IpAddress& a)
{
    dpdk::NeighborAddress n;
    n.family = a.is_ipv4() ? SLUICE_FAMILY_IPV4 : SLUICE_FAMILY_IPV6;
    n.bytes = a.bytes;  // same layout, see model/address.h
    return n;
}

// What the neighbour manager must answer for and keep resolved for `plan`.
dpdk::NeighborTargets neighbor_targets(const ForwardingPlan& plan,
                                       const std::map<model::IpAddress, model::MacAddress>& static_neighbors)
{
    dpdk::NeighborTargets t;
    if (plan.node.source_ipv4) t.local_addresses.push_back(to_neighbor(*plan.node.source_ipv4));
    if (plan.node.source_ipv6) t.local_addresses.push_back(to_neighbor(*plan.node.source_ipv6));
    std::set<model::IpAddress> vips;
    for (const PlanService& s : plan.services) vips.insert(s.vip.address);
    for (const model::IpAddress& v : vips) t.vips.push_back(to_neighbor(v));
    for (const model::IpAddress& a : next_hop_addresses(plan)) {
        if (static_neighbors.count(a) == 0) t.resolve.push_back(dpdk::ResolveTarget{to_neighbor(a), dpdk::kAnyPort});
    }
    for (const auto& [ip, mac] : static_neighbors) t.static_entries.emplace_back(to_neighbor(ip), mac.bytes);
    return t;
}

// How long start() waits for the next hops to resolve.
constexpr auto kResolveWait = std::chrono::seconds(3);

uint64_t monotonic_ns()
{
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

std::string hex64(uint64_t v)
{
    char buf[19];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// Everything a FilterSet is built from, as text: equal keys, equal sets.
std::string filter_key(const filter::FilterConfig& fc)
{
    std::string key;
    auto scope = [&](const filter::AclScope& s) {
        for (const auto& p : s.allow) key += "+" + filter::to_string(p);
        for (const auto& p : s.deny) key += "-" + filter::to_string(p);
        key += ";";
    };
    scope(fc.acl.global);
    for (const auto& [vip, s] : fc.acl.per_vip) {
        key += "vip" + std::to_string(vip) + ":";
        scope(s);
    }
    for (const filter::PayloadRule& r : fc.payload_rules) {
        key += "rule" + std::to_string(r.id) + "/" + std::to_string(r.flags) + "/" +
               std::to_string(r.pattern.size()) + ":" + r.pattern + "@";
        for (uint16_t v : r.vip_ids) key += std::to_string(v) + ",";
        key += ";";
    }
    for (size_t v = 0; v < fc.rate_limits.vip.size(); ++v) {
        const filter::VipRateLimit& l = fc.rate_limits.vip[v];
        if (l == filter::VipRateLimit{}) continue;
        key += "limit" + std::to_string(v) + ":" + std::to_string(l.packets_per_sec) + "/" +
               std::to_string(l.packets_burst) + "/" + std::to_string(l.new_flows_per_sec) + "/" +
               std::to_string(l.new_flows_burst) + ";";
    }
    return key;
}

// Per address family with ACL prefixes: rte_lpm / rte_lpm6's tbl24 (2^24
// four-byte entries) plus room for tbl8 groups and the rule tables.
constexpr uint64_t kAclFamilyMiB = 66;
// An mbuf of RTE_MBUF_DEFAULT_BUF_SIZE with its header and mempool overhead.
constexpr uint64_t kMbufBytes = 2560;
// Rings, ports, RCU, neighbour tables: what the runtime allocates besides.
constexpr uint64_t kRuntimeMiB = 32;

// EAL memory in MiB from the arguments, or 0 when the EAL decides (hugepages).
uint64_t eal_memory_mib(const std::vector<std::string>& args)
{
    bool no_huge = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        std::string value;
        if (a == "-m" || a == "--socket-mem") {
            if (i + 1 < args.size()) value = args[i + 1];
        } else if (a.rfind("--socket-mem=", 0) == 0) {
            value = a.substr(13);
        } else if (a.rfind("-m", 0) == 0 && a.size() > 2 && a[2] != '-') {
            value = a.substr(2);
        }
        if (a == "--no-huge") no_huge = true;
        if (value.empty()) continue;
        uint64_t total = 0;  // --socket-mem is a comma-separated list per NUMA node
        size_t pos = 0;
        while (pos <= value.size()) {
            const size_t comma = std::min(value.find(',', pos), value.size());
            total += std::strtoull(value.substr(pos, comma - pos).c_str(), nullptr, 10);
            pos = comma + 1;
        }
        return total;
    }
    return no_huge ? 64 : 0;  // DPDK's default without hugepages
}

}  // namespace

Result<void> DpdkDriver::check_filter_memory(const model::DpdkSettings& settings, const filter::FilterConfig& filters)
{
    bool v4 = false;
    bool v6 = false;
    auto scan = [&](const filter::AclScope& scope) {
        for (const auto* list : {&scope.allow, &scope.deny}) {
            for (const filter::Prefix& p : *list) (p.family == SLUICE_FAMILY_IPV4 ? v4 : v6) = true;
        }
    };
    scan(filters.acl.global);
    for (const auto& [vip, scope] : filters.acl.per_vip) scan(scope);
    const uint64_t acl = kAclFamilyMiB * ((v4 ? 1 : 0) + (v6 ? 1 : 0));
    const uint64_t have = eal_memory_mib(settings.eal_args);
    if (acl == 0 || have == 0) return {};
    const uint64_t pool = (static_cast<uint64_t>(settings.mbuf_pool_size) * kMbufBytes + (1u << 20) - 1) >> 20;
    const uint64_t need = pool + kRuntimeMiB + 2 * acl;
    if (have >= need) return {};
    return make_error("filters: the source ACL needs " + std::to_string(acl) + " MiB of EAL memory (" +
                      std::string(v4 && v6 ? "IPv4 and IPv6" : v4 ? "IPv4" : "IPv6") +
                      " prefixes, about 64 MiB per family), twice while a reload replaces it, besides " +
                      std::to_string(pool) + " MiB for " + std::to_string(settings.mbuf_pool_size) +
                      " mbufs: eal_args give " + std::to_string(have) + " MiB; use -m " + std::to_string(need) +
                      " or more");
}

Result<std::shared_ptr<const filter::FilterSet>> DpdkDriver::filters_for(const ForwardingPlan& plan)
{
    if (!has_filters(plan)) return std::shared_ptr<const filter::FilterSet>();
    const filter::FilterConfig fc = build_filter_config(plan);
    std::string key = filter_key(fc);
    if (filters_ != nullptr && key == filters_key_) return filters_;
    if (auto memory = check_filter_memory(settings_, fc); !memory) return Error{memory.error()};
    auto built = filter::FilterSet::build(fc, runtime_->workers());
    if (!built) {
        return Error{"filters: " + built.error() +
                     " (each address family with ACL prefixes takes 64 MiB of EAL memory, twice while a new "
                     "config replaces the old: raise -m in eal_args, or add hugepages)"};
    }
    std::shared_ptr<const filter::FilterSet> set = std::move(*built);
    filters_key_ = std::move(key);
    return set;
}

DpdkDriver::DpdkDriver(model::DpdkSettings settings, std::map<model::IpAddress, model::MacAddress> static_neighbors,
                       LogSink log)
    : settings_(std::move(settings)), static_neighbors_(std::move(static_neighbors)), log_(std::move(log))
{
}

DpdkDriver::~DpdkDriver() { stop(); }

std::vector<std::string> DpdkDriver::eal_args(const model::DpdkSettings& settings, int pid)
{
    std::string lcores = std::to_string(settings.main_lcore);
    for (uint32_t w : settings.worker_lcores) lcores += "," + std::to_string(w);
    std::vector<std::string> args{"-l", lcores, "--main-lcore", std::to_string(settings.main_lcore)};
    bool has_prefix = false;
    for (const std::string& a : settings.eal_args) {
        args.push_back(a);
        if (a.rfind("--file-prefix", 0) == 0) has_prefix = true;
    }
    if (!has_prefix) args.push_back("--file-prefix=sluiced-" + std::to_string(pid));
    return args;
}

std::optional<model::MacAddress> DpdkDriver::lookup_neighbor(const model::IpAddress& address) const
{
    if (auto it = static_neighbors_.find(address); it != static_neighbors_.end()) return it->second;
    if (!runtime_ || !running_) return std::nullopt;
    const auto mac = runtime_->neighbors().lookup(to_neighbor(address));
    if (!mac) return std::nullopt;
    return model::MacAddress{*mac};
}

Result<void> DpdkDriver::start(const ForwardingPlan& initial)
{
    if (running_) return make_error("data plane already started");
    // Before the EAL starts: a config whose filters cannot fit fails now,
    // with the memory to ask for, not after ports came up.
    if (has_filters(initial)) {
        if (auto memory = check_filter_memory(settings_, build_filter_config(initial)); !memory) return memory;
    }
    dpdk::RuntimeConfig rc;
    rc.eal_args = eal_args(settings_, static_cast<int>(getpid()));
    rc.worker_lcores.assign(settings_.worker_lcores.begin(), settings_.worker_lcores.end());
    rc.mbuf_pool_size = settings_.mbuf_pool_size;
    for (const PlanPort& p : initial.node.ports) rc.ports.push_back(dpdk::RuntimePort{p.name, p.device, p.rx_queues});
    rc.conn_table_size = initial.node.conn_table_size;
    rc.tcp_established = initial.node.timeouts.tcp_established;
    rc.tcp_transitory = initial.node.timeouts.tcp_syn_fin;
    rc.udp = initial.node.timeouts.udp;
    rc.exception_path = initial.node.exception_path;
    rc.exception_tap = initial.node.exception_tap;

    std::string joined;
    for (const auto& a : rc.eal_args) joined += " " + a;
    log_(LogSeverity::kInfo, "starting DPDK: EAL" + joined);
    auto runtime = dpdk::Runtime::create(rc);
    if (!runtime) {
        if (runtime.error().rfind("DPDK EAL", 0) == 0) {
            return Error{runtime.error() + " (the EAL's own messages above say why; arguments:" + joined + ")"};
        }
        return Error{runtime.error()};
    }
    runtime_ = std::move(*runtime);

    ports_.clear();
    for (const dpdk::Port& p : runtime_->ports()) {
        if (p.port_id >= core::kMaxPorts) {
            return make_error("port " + p.name + ": DPDK port id " + std::to_string(p.port_id) + " >= " +
                              std::to_string(core::kMaxPorts));
        }
        StartedPort sp;
        sp.port_id = p.port_id;
        std::memcpy(sp.mac.data(), p.mac.addr_bytes, 6);
        sp.mtu = p.mtu;
        ports_.push_back(sp);
        log_(LogSeverity::kInfo, "port " + p.name + ": DPDK port " + std::to_string(p.port_id) + ", MAC " +
                                     dpdk::format_mac(p.mac) + ", MTU " + std::to_string(p.mtu) + ", " +
                                     std::to_string(p.rx_queues) + " rx / " + std::to_string(p.tx_queues) +
                                     " tx queues" + (p.rss ? ", RSS" : ""));
    }
    runtime_->neighbors().update(neighbor_targets(initial, static_neighbors_));
    neighbor_generation_ = runtime_->neighbors().generation();
    auto state = build_dpdk_state(initial, ports_, [this](const model::IpAddress& a) { return lookup_neighbor(a); },
                                  runtime_->exception_available());
    if (!state) return Error{"forwarding state: " + state.error()};
    auto filters = filters_for(initial);
    if (!filters) return Error{filters.error()};
    auto snapshot = std::make_unique<dpdk::Snapshot>();
    snapshot->forwarding = std::move(*state);
    snapshot->filters = *filters;
    auto started = runtime_->start_workers(std::move(snapshot));
    if (!started) return started;
    filters_ = std::move(*filters);
    plan_ = initial;
    running_ = true;
    log_(LogSeverity::kInfo, std::to_string(settings_.worker_lcores.size()) + " worker lcore(s) polling" +
                                 (runtime_->exception_available() ? ", exception path to TAP " +
                                                                        initial.node.exception_tap
                                                                  : ", no exception path"));
    for (const PlanService& s : initial.services) {
        log_(LogSeverity::kInfo, "service " + s.name + ": VIP " + s.vip.to_string() + ", " +
                                     std::to_string(s.backends.size()) + " backend(s), table " +
                                     std::to_string(s.ring.size()) + ", fingerprint " + hex64(s.fingerprint));
    }
    if (filters_ != nullptr) {
        const filter::Acl& acl = filters_->acl();
        log_(LogSeverity::kInfo, std::string("filters enforced: source ACL ") +
                                     (acl.allows_everything() ? "off" : "on") + ", " +
                                     std::to_string(filters_->payload_rules().rule_count()) +
                                     " payload rule(s), rate limits per worker (rate / " +
                                     std::to_string(runtime_->workers()) + " each)");
    }
    for (const model::IpAddress& a : next_hop_addresses(initial)) {
        const bool have_source = a.is_ipv4() ? initial.node.source_ipv4.has_value()
                                             : initial.node.source_ipv6.has_value();
        if (!have_source && static_neighbors_.count(a) == 0) {
            log_(LogSeverity::kWarn, "next hop " + a.to_string() + ": no network.source_" +
                                         (a.is_ipv4() ? "ipv4" : "ipv6") +
                                         " to ask from, so it is only learned from what it sends");
        }
    }
    // Ready means forwarding: give ARP/ND a moment to resolve the next hops
    // before start() returns, rather than count the first flows' packets
    // as no_nexthop. Unresolved ones are logged and keep being probed.
    const auto deadline = std::chrono::steady_clock::now() + kResolveWait;
    const std::vector<model::IpAddress> hops = next_hop_addresses(initial);
    auto all_resolved = [&] {
        for (const model::IpAddress& a : hops) {
            if (!lookup_neighbor(a)) return false;
        }
        return true;
    };
    while (!all_resolved() && std::chrono::steady_clock::now() < deadline) {
        poll();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    log_next_hops(initial);
    NextHopLog::warn_unresolved(hops, [this](const model::IpAddress& a) { return lookup_neighbor(a); }, log_);
    return {};
}

void DpdkDriver::log_next_hops(const ForwardingPlan& plan)
{
    next_hop_log_.update(
        next_hop_addresses(plan), [this](const model::IpAddress& a) { return lookup_neighbor(a); },
        [](const model::IpAddress&) { return std::string(); }, {"ARP/ND", "it answers again"}, log_);
}

Result<void> DpdkDriver::publish_locked(const ForwardingPlan& plan)
{
    // Targets first: a new next hop is probed at the next poll, and the
    // snapshot below carries whatever is known of it already.
    runtime_->neighbors().update(neighbor_targets(plan, static_neighbors_));
    const uint64_t generation = runtime_->neighbors().generation();
    auto state = build_dpdk_state(plan, ports_, [this](const model::IpAddress& a) { return lookup_neighbor(a); },
                                  runtime_->exception_available());
    if (!state) return Error{"forwarding state: " + state.error()};
    auto filters = filters_for(plan);
    if (!filters) return Error{filters.error()};
    auto snapshot = std::make_unique<dpdk::Snapshot>();
    snapshot->forwarding = std::move(*state);
    snapshot->filters = *filters;
    runtime_->publish(std::move(snapshot));
    filters_ = std::move(*filters);  // the old set (if replaced) lives on in no snapshot now: freed here
    // Published anyway (smaller packets still pass); only the operator can
    // fix the MTU (driver/mtu_check.h).
    std::vector<uint16_t> mtus;
    for (const StartedPort& p : ports_) mtus.push_back(p.mtu);
    for (const std::string& line : mtu_log_.fresh(small_mtu_warnings(plan, mtus))) log_(LogSeverity::kWarn, line);
    neighbor_generation_ = generation;
    return {};
}

Result<void> DpdkDriver::publish(const ForwardingPlan& plan)
{
    if (!running_) return make_error("data plane not started");
    if (!same_ports(plan.node, plan_.node)) {
        return make_error("ports or connection-table size changed: restart sluiced to apply");
    }
    auto r = publish_locked(plan);
    if (!r) return r;
    plan_ = plan;
    return {};
}

void DpdkDriver::poll()
{
    if (!running_) return;
    runtime_->poll_control(monotonic_ns());
    if (runtime_->neighbors().generation() == neighbor_generation_) return;
    // A next hop was learned, changed or expired: the snapshot's MACs are
    // out of date.
    auto r = publish_locked(plan_);
    if (!r) {
        log_(LogSeverity::kError, "republishing after a neighbour change failed: " + r.error());
        neighbor_generation_ = runtime_->neighbors().generation();  // do not retry every poll
        return;
    }
    log_next_hops(plan_);
}

DataplaneStats DpdkDriver::stats() const
{
    DataplaneStats out;
    if (!runtime_) return out;
    const dpdk::RuntimeStats rs = runtime_->stats();
    out.totals = rs.totals;
    for (uint32_t id = 0; id < rs.backends.size(); ++id) {
        if (rs.backends[id].packets != 0) out.backends.push_back(DataplaneStats::Backend{id, rs.backends[id]});
    }
    out.publications = runtime_->publications();
    for (const dpdk::RuntimeStats::Worker& w : rs.workers) {
        out.workers.push_back(
            {w.index, w.lcore, w.stats.rx_packets, w.stats.tx_packets, dropped(w.stats), w.busy_seconds});
    }
    // Each port's driver counters, after the workers' (a port's count of a
    // packet is never behind a worker's). Read beside the polling cores, as
    // DPDK's own tools do.
    for (const dpdk::Port& p : runtime_->ports()) {
        rte_eth_stats s{};
        if (const int rc = rte_eth_stats_get(p.port_id, &s); rc != 0) {
            out.error += (out.error.empty() ? "" : "; ") + ("port " + p.name + " counters: " + std::strerror(-rc));
            continue;
        }
        out.ports.push_back({p.name, s.ipackets, s.ibytes, s.opackets, s.obytes, s.imissed, s.ierrors, s.rx_nombuf,
                             s.oerrors});
    }
    return out;
}

Result<std::optional<uint32_t>> DpdkDriver::connection_backend(const sluice_flow_key& key) const
{
    if (!runtime_) return std::optional<uint32_t>{};
    return runtime_->connection_backend(key);  // the workers' TSC clock is always readable
}

Result<ConnectionTableCensus> DpdkDriver::connection_census() const
{
    ConnectionTableCensus out;
    out.layout = "per-worker";
    if (!runtime_) return out;
    for (const auto& [worker, c] : runtime_->connection_census())
        out.partitions.push_back({worker, c.capacity, c.live_estimate()});
    return out;
}

Result<std::vector<uint64_t>> DpdkDriver::connections_by_backend() const
{
    if (!runtime_) return std::vector<uint64_t>(SLUICE_MAX_BACKENDS);
    return runtime_->connections_by_backend();
}

void DpdkDriver::stop()
{
    if (!runtime_) return;
    runtime_->stop();
    running_ = false;
}

}  // namespace sluice::driver
