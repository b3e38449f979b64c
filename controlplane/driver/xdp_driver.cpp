// XdpDriver: start-up order, publication, neighbours and stats (see xdp_driver.h).
#include "driver/xdp_driver.h"

#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <thread>

#include "driver/next_hop_log.h"
#include "driver/plan_abi.h"
#include "loader/xdp_dataplane.h"

namespace sluice::driver {
namespace {

// How long start() waits for the next hops to resolve before attaching.
constexpr auto kResolveWait = std::chrono::seconds(3);
// How long publish() waits for next hops the plan brings in (a backend
// added by discovery): long enough for ARP/ND on a LAN, short enough not
// to hold up the control loop when the new neighbour is down.
constexpr auto kPublishResolveWait = std::chrono::milliseconds(100);
// A next hop the kernel has no usable entry for is asked for this often.
constexpr auto kProbeMissing = std::chrono::seconds(1);
// A stale entry is refreshed this often. The kernel never sees the traffic
// XDP sends, so it never confirms an entry: without this the entry would sit
// in STALE and, once the table grows past gc_thresh1, be collected. A probe
// of a stale entry is a unicast ARP/ND that turns it REACHABLE again, or
// FAILED when the neighbour is gone (and then we stop using its MAC).
constexpr auto kProbeStale = std::chrono::seconds(15);

std::string hex64(uint64_t v)
{
    char buf[19];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string format_mac(const std::array<uint8_t, 6>& m)
{
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

bool same_ports(const NodePlan& a, const NodePlan& b)
{
    if (a.ports.size() != b.ports.size()) return false;
    for (size_t i = 0; i < a.ports.size(); ++i) {
        if (a.ports[i].device != b.ports[i].device || a.ports[i].egress != b.ports[i].egress) return false;
    }
    return true;
}

}  // namespace

XdpDriver::XdpDriver(model::XdpSettings settings, std::map<model::IpAddress, model::MacAddress> static_neighbors,
                     LogSink log)
    : settings_(std::move(settings)), static_neighbors_(std::move(static_neighbors)), log_(std::move(log))
{
}

XdpDriver::~XdpDriver() { stop(); }

Result<std::vector<XdpInterface>> XdpDriver::resolve_interfaces(const NodePlan& node) const
{
    const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return make_error(std::string("socket: ") + std::strerror(errno));
    std::vector<XdpInterface> out;
    for (const PlanPort& p : node.ports) {
        XdpInterface itf;
        itf.name = p.device;
        itf.ifindex = if_nametoindex(p.device.c_str());
        ifreq ifr{};
        if (itf.ifindex == 0 || p.device.size() >= sizeof ifr.ifr_name) {
            ::close(sock);
            return make_error("interface " + p.device + " (dataplane.xdp.interfaces): no such interface");
        }
        std::memcpy(ifr.ifr_name, p.device.c_str(), p.device.size() + 1);
        if (::ioctl(sock, SIOCGIFHWADDR, &ifr) != 0) {
            const int err = errno;
            ::close(sock);
            return make_error("interface " + p.device + ": MAC: " + std::strerror(err));
        }
        std::memcpy(itf.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
        if (::ioctl(sock, SIOCGIFMTU, &ifr) != 0) {
            const int err = errno;
            ::close(sock);
            return make_error("interface " + p.device + ": MTU: " + std::strerror(err));
        }
        itf.mtu = static_cast<uint16_t>(std::min(ifr.ifr_mtu, 65535));
        out.push_back(itf);
    }
    ::close(sock);
    return out;
}

std::optional<model::MacAddress> XdpDriver::lookup_neighbor(const model::IpAddress& address) const
{
    if (auto it = static_neighbors_.find(address); it != static_neighbors_.end()) return it->second;
    if (auto it = learned_.find(address); it != learned_.end()) return it->second;
    return std::nullopt;
}

void XdpDriver::warn_once(const std::string& message)
{
    if (warned_.size() > 64) warned_.clear();  // bounded; a repeat after that is logged again
    if (warned_.insert(message).second) log_(LogSeverity::kWarn, message + " (logged once)");
}

bool XdpDriver::refresh_neighbors(const ForwardingPlan& plan, bool probe_now)
{
    if (!netlink_) return false;
    auto table = netlink_->read(egress_ifindexes_);
    if (!table) {
        warn_once("reading the kernel's neighbour table: " + table.error());
        return false;
    }
    const auto now = Clock::now();
    std::map<model::IpAddress, model::MacAddress> learned;
    std::map<model::IpAddress, Clock::time_point> probed;
    for (const model::IpAddress& a : next_hop_addresses(plan)) {
        if (static_neighbors_.count(a) != 0) continue;
        const auto it = table->find(a);
        if (it != table->end()) learned[a] = it->second.mac;
        const bool fresh = it != table->end() && it->second.fresh();
        const auto last = last_probe_.find(a);
        const auto every = it == table->end() ? kProbeMissing : kProbeStale;
        if (!fresh && (probe_now || last == last_probe_.end() || now - last->second >= every)) {
            for (uint32_t ifindex : egress_ifindexes_) {
                if (auto r = netlink_->probe(a, ifindex); !r) warn_once(r.error());
            }
            probed[a] = now;
        } else if (last != last_probe_.end()) {
            probed[a] = last->second;
        }
    }
    last_probe_ = std::move(probed);
    const bool changed = learned != learned_;
    learned_ = std::move(learned);
    return changed;
}

Result<void> XdpDriver::apply(const ForwardingPlan& plan)
{
    auto desc = build_xdp_description(plan, interfaces_,
                                      [this](const model::IpAddress& a) { return lookup_neighbor(a); });
    if (!desc) return Error{"XDP description: " + desc.error()};
    if (auto r = dp_->apply(*desc); !r) return Error{"XDP maps: " + r.error()};
    // Published anyway (smaller packets still pass); only the operator can
    // fix the MTU (driver/mtu_check.h).
    std::vector<uint16_t> mtus;
    for (const XdpInterface& itf : interfaces_) mtus.push_back(itf.mtu);
    for (const std::string& line : mtu_log_.fresh(small_mtu_warnings(plan, mtus))) log_(LogSeverity::kWarn, line);
    for (size_t i = 0; i < conn_timeout_ns_.size(); ++i)
        conn_timeout_ns_[i].store(desc->node.conn_timeout_ns[i], std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        std::set<uint32_t> ids(stats_ids_.begin(), stats_ids_.end());
        for (const xdp::BackendSpec& b : desc->backends) ids.insert(b.id);
        stats_ids_.assign(ids.begin(), ids.end());
    }
    publications_.fetch_add(1, std::memory_order_relaxed);
    return {};
}

Result<void> XdpDriver::forget_moved_ids(const ForwardingPlan& initial)
{
    // Pinned connection entries name backends by the ids the previous
    // process assigned; this one assigns its own (the same ones for the
    // same config in the same order, not after other changes). An entry
    // whose id now means another backend, or none, is forgotten: its flow
    // is picked again by Maglev (the same backend wherever the table did
    // not change) instead of following the id to a stranger.
    auto pinned = dp_->current_backends();
    if (!pinned) return Error{"pinned backends: " + pinned.error()};
    std::map<uint32_t, const model::IpAddress*> now;
    for (const PlanService& s : initial.services) {
        for (const PlanBackend& b : s.backends) now.emplace(b.id, &b.address);
    }
    std::set<uint32_t> moved;
    for (const auto& [id, be] : *pinned) {
        const auto it = now.find(id);
        const bool same = it != now.end() && be.family == to_family(*it->second) &&
                          std::memcmp(be.addr.bytes, to_addr(*it->second).bytes, sizeof(be.addr.bytes)) == 0;
        if (!same) moved.insert(id);
    }
    if (pinned->empty()) return {};
    if (moved.empty()) {
        log_(LogSeverity::kInfo, "pinned state: " + std::to_string(pinned->size()) +
                                     " backend(s) keep their ids; established flows keep their backends");
        return {};
    }
    auto forgotten = dp_->forget_connections_to(moved);
    if (!forgotten) return Error{forgotten.error()};
    log_(LogSeverity::kWarn, "pinned state: " + std::to_string(moved.size()) + " of " +
                                 std::to_string(pinned->size()) +
                                 " backend id(s) name another backend or none now; forgot their " +
                                 std::to_string(*forgotten) + " connection entries (those flows are picked by Maglev)");
    return {};
}

Result<void> XdpDriver::start(const ForwardingPlan& initial)
{
    if (running_ || dp_) return make_error("data plane already started");
    auto interfaces = resolve_interfaces(initial.node);
    if (!interfaces) return Error{interfaces.error()};
    interfaces_ = std::move(*interfaces);
    egress_ifindexes_.clear();
    for (const PlanPort& p : initial.node.ports) egress_ifindexes_.insert(interfaces_[p.egress].ifindex);
    for (const XdpInterface& itf : interfaces_) {
        log_(LogSeverity::kInfo, "interface " + itf.name + ": ifindex " + std::to_string(itf.ifindex) + ", MAC " +
                                     format_mac(itf.mac) + ", MTU " + std::to_string(itf.mtu));
    }

    xdp::OpenOptions options;
    options.pin_dir = settings_.pin_path;
    options.conn_table_size = settings_.conn_table_size;
    const XdpConnTableLayout layout = choose_conn_table_layout(settings_.conn_table_mode, interfaces_);
    options.shared_conn_table = layout.shared;
    options.log = [this](const std::string& line) { log_(LogSeverity::kWarn, line); };
    auto dp = xdp::XdpDataplane::open(options);
    if (!dp) return Error{"loading the XDP program: " + dp.error()};
    dp_ = std::move(*dp);
    log_(LogSeverity::kInfo, "XDP program loaded (" + std::to_string(dp_->program_instructions()) +
                                 " instructions), maps pinned under " + settings_.pin_path + "; connection table " +
                                 std::to_string(dp_->connection_capacity()) + " entries (" +
                                 std::to_string(dp_->connection_capacity() / SLUICE_CONN_WAYS * sizeof(sluice_conn_bucket) >> 20) + " MiB), " +
                                 (layout.shared ? "one shared by every CPU" : "a partition per CPU") + ": " + layout.why);
    auto fail = [this](std::string message) -> Result<void> {
        dp_.reset();  // detaches what was attached; the pins stay
        netlink_.reset();
        return Error{std::move(message)};
    };

    auto netlink = KernelNeighbors::open();
    if (!netlink) return fail("neighbour table: " + netlink.error());
    netlink_ = std::move(*netlink);
    // Ask now, wait a moment: the first flows then leave with their MACs
    // rather than count as no_nexthop. Unresolved ones keep being asked.
    const std::vector<model::IpAddress> hops = next_hop_addresses(initial);
    refresh_neighbors(initial, true);
    const auto deadline = Clock::now() + kResolveWait;
    auto all_resolved = [&] {
        for (const model::IpAddress& a : hops) {
            if (!lookup_neighbor(a)) return false;
        }
        return true;
    };
    while (!all_resolved() && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        refresh_neighbors(initial, false);
    }

    if (auto r = forget_moved_ids(initial); !r) return fail(r.error());
    if (auto r = apply(initial); !r) return fail(r.error());
    for (const XdpInterface& itf : interfaces_) {
        uint32_t existing = 0;
        if (bpf_xdp_query_id(static_cast<int>(itf.ifindex), 0, &existing) == 0 && existing != 0) {
            log_(LogSeverity::kInfo, "interface " + itf.name + ": replacing the XDP program already attached (id " +
                                         std::to_string(existing) + ", a previous sluiced's or another's)");
        }
        const auto mode = settings_.mode == model::XdpMode::kGeneric ? xdp::AttachMode::kGeneric
                                                                     : xdp::AttachMode::kNative;
        auto attached = dp_->attach(itf.ifindex, mode, settings_.allow_generic_fallback);
        if (!attached) return fail("interface " + itf.name + ": " + attached.error());
        attached_.push_back(itf.ifindex);
        if (*attached == xdp::AttachMode::kNative) {
            log_(LogSeverity::kInfo, "interface " + itf.name + ": XDP attached in native mode");
        } else {
            log_(LogSeverity::kWarn, "interface " + itf.name + ": XDP attached in generic (skb) mode" +
                                         (settings_.mode == model::XdpMode::kGeneric
                                              ? std::string(" as configured")
                                              : std::string(": the driver refused native mode")) +
                                         "; every packet pays for an skb, expect a fraction of native speed");
        }
    }
    plan_ = initial;
    running_ = true;
    next_refresh_ = Clock::now() + kNeighborInterval;
    for (const PlanService& s : initial.services) {
        log_(LogSeverity::kInfo, "service " + s.name + ": VIP " + s.vip.to_string() + ", " +
                                     std::to_string(s.backends.size()) + " backend(s), table " +
                                     std::to_string(s.ring.size()) + ", fingerprint " + hex64(s.fingerprint));
    }
    if (has_filters(initial)) {
        log_(LogSeverity::kInfo, "filters enforced: source ACL and rate limits (per CPU share); payload rules "
                                 "are not part of the XDP plane");
    }
    const bool gateway_needed = std::any_of(initial.services.begin(), initial.services.end(), [](const PlanService& s) {
        return s.forwarding != model::Forwarding::kL2Dsr && !s.backends.empty();
    });
    if (gateway_needed && !initial.node.gateway_ipv4 && !initial.node.gateway_ipv6 && !initial.node.next_hop_mac) {
        log_(LogSeverity::kWarn, "IPIP/GUE services but no network.gateway_ipv4/ipv6: their packets are dropped "
                                 "as no_nexthop (the XDP plane sends them to one next hop per interface)");
    }
    log_next_hops(initial);
    NextHopLog::warn_unresolved(hops, [this](const model::IpAddress& a) { return lookup_neighbor(a); }, log_);
    return {};
}

void XdpDriver::log_next_hops(const ForwardingPlan& plan)
{
    next_hop_log_.update(
        next_hop_addresses(plan), [this](const model::IpAddress& a) { return lookup_neighbor(a); },
        [this](const model::IpAddress& a) {
            return static_neighbors_.count(a) != 0 ? std::string(" (static)") : std::string(" (kernel neighbour table)");
        },
        {"kernel ARP/ND", "the kernel resolves it again"}, log_);
}

Result<void> XdpDriver::publish(const ForwardingPlan& plan)
{
    if (!running_) return make_error("data plane not started");
    if (!same_ports(plan.node, plan_.node)) return make_error("interfaces changed: restart sluiced to apply");
    // Next hops the plan brings in are asked for at once and given a moment
    // to answer, so a backend's first packets do not count as no_nexthop;
    // apply() then uses what is known (the rest follows from poll()).
    std::vector<model::IpAddress> fresh;
    const std::vector<model::IpAddress> before = next_hop_addresses(plan_);
    for (const model::IpAddress& a : next_hop_addresses(plan)) {
        if (!std::binary_search(before.begin(), before.end(), a)) fresh.push_back(a);
    }
    refresh_neighbors(plan, false);
    const auto deadline = Clock::now() + kPublishResolveWait;
    auto unresolved = [&] {
        return std::any_of(fresh.begin(), fresh.end(), [&](const model::IpAddress& a) { return !lookup_neighbor(a); });
    };
    while (unresolved() && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        refresh_neighbors(plan, false);
    }
    auto r = apply(plan);
    if (!r) return r;
    plan_ = plan;
    log_next_hops(plan_);
    return {};
}

void XdpDriver::poll()
{
    if (!running_) return;
    const auto now = Clock::now();
    if (now < next_refresh_) return;
    next_refresh_ = now + kNeighborInterval;
    if (!refresh_neighbors(plan_, false)) return;
    // A next hop was learned, changed or lost: the maps' MACs are out of date.
    if (auto r = apply(plan_); !r) {
        log_(LogSeverity::kError, "republishing after a neighbour change failed: " + r.error());
        return;
    }
    log_next_hops(plan_);
}

DataplaneStats XdpDriver::stats() const
{
    DataplaneStats out;
    if (!dp_) return out;
    auto failed = [&](const std::string& what) { out.error += (out.error.empty() ? "" : "; ") + what; };
    if (auto counters = dp_->read_stats_by_cpu(); counters) {
        out.totals = counters->total;
        for (uint32_t cpu = 0; cpu < counters->per_cpu.size(); ++cpu) {
            const sluice_stats& c = counters->per_cpu[cpu];
            out.workers.push_back({cpu, cpu, c.rx_packets, c.tx_packets, dropped(c), std::nullopt});
        }
    } else {
        failed("node counters: " + counters.error());
    }
    std::vector<uint32_t> ids;
    {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        ids = stats_ids_;
    }
    if (auto counters = dp_->read_backend_counters(ids); counters) {
        for (size_t i = 0; i < ids.size(); ++i) {
            if ((*counters)[i].packets != 0) out.backends.push_back(DataplaneStats::Backend{ids[i], (*counters)[i]});
        }
    } else {
        failed("backend counters: " + counters.error());
    }
    out.publications = publications_.load(std::memory_order_relaxed);
    return out;
}

Result<std::optional<uint32_t>> XdpDriver::connection_backend(const sluice_flow_key& key) const
{
    if (!dp_) return std::optional<uint32_t>{};  // not started: no table, no entry
    // Per CPU, each CPU has its own partition: a flow that moved between
    // CPUs (RSS change) may have an entry in several (shared: one
    // partition, one entry). The freshest live one is the
    // one its packets use now. Live as the program judges it: idle for
    // less than its state's timeout on the program's own clock (the
    // jiffies clock, whose epoch is not CLOCK_MONOTONIC's).
    const Result<TableClock> clock = table_clock();
    if (!clock) return make_error(clock.error());
    std::optional<uint32_t> best;
    uint64_t best_seen = 0;
    for (const xdp::ConnectionEntry& c : dp_->lookup_connection(key)) {
        const sluice_conn_entry& e = c.entry;
        if (e.backend_id == SLUICE_BACKEND_NONE) continue;  // forgotten
        const uint64_t timeout = clock->timeout[e.state & (SLUICE_CONN_STATES - 1)];
        if (sluice_conn_live_for_reader(e.last_seen, clock->now, timeout) && (!best || e.last_seen > best_seen)) {
            best = e.backend_id;
            best_seen = e.last_seen;
        }
    }
    return best;
}

Result<ConnectionTableCensus> XdpDriver::connection_census() const
{
    ConnectionTableCensus out;
    if (!dp_) return out;
    out.layout = dp_->shared_connection_table() ? "shared" : "per-cpu";
    const Result<TableClock> clock = table_clock();
    if (!clock) return make_error(clock.error());
    const std::vector<core::ConnCensus> census = dp_->connection_census(clock->now, clock->timeout);
    for (size_t i = 0; i < census.size(); ++i) {
        const core::ConnCensus& c = census[i];
        out.partitions.push_back({static_cast<uint32_t>(i), c.capacity, c.live_estimate()});
    }
    return out;
}

Result<std::vector<uint64_t>> XdpDriver::connections_by_backend() const
{
    if (!dp_) return std::vector<uint64_t>(SLUICE_MAX_BACKENDS);
    const Result<TableClock> clock = table_clock();
    if (!clock) return make_error(clock.error());
    return dp_->connections_by_backend(clock->now, clock->timeout);
}

Result<XdpDriver::TableClock> XdpDriver::table_clock() const
{
    const Result<uint64_t> now = dp_->connection_clock_ns();
    if (!now) return make_error("connection table not judged: its clock is unreadable: " + now.error());
    TableClock out;
    out.now = *now;
    for (size_t i = 0; i < SLUICE_CONN_STATES; ++i) out.timeout[i] = conn_timeout_ns_[i].load(std::memory_order_relaxed);
    return out;
}

void XdpDriver::stop()
{
    if (!dp_) return;
    for (uint32_t ifindex : attached_) {
        if (auto r = dp_->detach(ifindex); !r) log_(LogSeverity::kWarn, r.error());
    }
    if (!attached_.empty()) {
        log_(LogSeverity::kInfo, "XDP detached; maps stay pinned under " + settings_.pin_path +
                                     " for the next start (established flows keep their backends)");
    }
    attached_.clear();
    running_ = false;
}

}  // namespace sluice::driver
