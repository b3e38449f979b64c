// DpdkDriver: start-up order, publication and stats (see dpdk_driver.h).
#include "driver/dpdk_driver.h"

#include <unistd.h>

#include <cstring>
#include <sstream>

#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/runtime.h"

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

std::string hex64(uint64_t v)
{
    char buf[19];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

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
    return std::nullopt;
}

Result<void> DpdkDriver::start(const ForwardingPlan& initial)
{
    if (running_) return make_error("data plane already started");
    dpdk::RuntimeConfig rc;
    rc.eal_args = eal_args(settings_, static_cast<int>(getpid()));
    rc.worker_lcores.assign(settings_.worker_lcores.begin(), settings_.worker_lcores.end());
    rc.mbuf_pool_size = settings_.mbuf_pool_size;
    for (const PlanPort& p : initial.node.ports) rc.ports.push_back(dpdk::RuntimePort{p.name, p.device, p.rx_queues});
    rc.conn_table_size = initial.node.conn_table_size;
    rc.tcp_established = initial.node.timeouts.tcp_established;
    rc.tcp_transitory = initial.node.timeouts.tcp_syn_fin;
    rc.udp = initial.node.timeouts.udp;

    std::string joined;
    for (const auto& a : rc.eal_args) joined += " " + a;
    log_(LogSeverity::kInfo, "starting DPDK: EAL" + joined);
    auto runtime = dpdk::Runtime::create(rc);
    if (!runtime) return Error{runtime.error()};
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
    auto state = build_dpdk_state(initial, ports_, [this](const model::IpAddress& a) { return lookup_neighbor(a); },
                                  false);
    if (!state) return Error{"forwarding state: " + state.error()};
    auto started = runtime_->start_workers(std::move(*state));
    if (!started) return started;
    plan_ = initial;
    running_ = true;
    log_(LogSeverity::kInfo, std::to_string(settings_.worker_lcores.size()) + " worker lcore(s) polling");
    for (const PlanService& s : initial.services) {
        log_(LogSeverity::kInfo, "service " + s.name + ": VIP " + s.vip.to_string() + ", " +
                                     std::to_string(s.backends.size()) + " backend(s), table " +
                                     std::to_string(s.ring.size()) + ", fingerprint " + hex64(s.fingerprint));
    }
    for (const model::IpAddress& a : next_hop_addresses(initial)) {
        if (!lookup_neighbor(a)) {
            log_(LogSeverity::kWarn, "next hop " + a.to_string() +
                                         " has no MAC (ARP/ND is not wired yet): its packets are dropped as "
                                         "no_nexthop");
        }
    }
    return {};
}

Result<void> DpdkDriver::publish_locked(const ForwardingPlan& plan)
{
    auto state = build_dpdk_state(plan, ports_, [this](const model::IpAddress& a) { return lookup_neighbor(a); },
                                  false);
    if (!state) return Error{"forwarding state: " + state.error()};
    runtime_->publish(std::move(*state));
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

void DpdkDriver::poll() {}

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
    return out;
}

void DpdkDriver::stop()
{
    if (!runtime_) return;
    runtime_->stop();
    running_ = false;
}

}  // namespace sluice::driver
