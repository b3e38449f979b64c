// restart_required: a field-by-field comparison of the node settings the
// running data plane and admin listener were started with.
#include "daemon/reload.h"

#include <tuple>

namespace sluice::daemon {
namespace {

auto port_tuple(const model::DpdkPort& p) { return std::tie(p.name, p.device, p.rx_queues); }

bool same_ports(const std::vector<model::DpdkPort>& a, const std::vector<model::DpdkPort>& b)
{
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (port_tuple(a[i]) != port_tuple(b[i])) return false;
    }
    return true;
}

}  // namespace

std::vector<std::string> restart_required(const model::Config& running, const model::Config& next)
{
    std::vector<std::string> out;
    auto differs = [&out](bool changed, const char* name) {
        if (changed) out.push_back(std::string(name) + " changed: restart sluiced to apply it (the running value stays)");
    };
    differs(running.dataplane.type != next.dataplane.type, "dataplane.type");
    const auto& a = running.dataplane.dpdk;
    const auto& b = next.dataplane.dpdk;
    differs(a.has_value() != b.has_value(), "[dataplane.dpdk]");
    if (a && b) {
        differs(a->eal_args != b->eal_args, "dataplane.dpdk.eal_args");
        differs(a->main_lcore != b->main_lcore, "dataplane.dpdk.main_lcore");
        differs(a->worker_lcores != b->worker_lcores, "dataplane.dpdk.worker_lcores");
        differs(!same_ports(a->ports, b->ports), "dataplane.dpdk.ports");
        differs(a->mbuf_pool_size != b->mbuf_pool_size, "dataplane.dpdk.mbuf_pool_size");
        differs(a->conn_table_size != b->conn_table_size, "dataplane.dpdk.conn_table_size");
        differs(a->exception_path != b->exception_path, "dataplane.dpdk.exception_path");
        differs(a->exception_tap != b->exception_tap, "dataplane.dpdk.exception_tap");
        differs(a->egress_port != b->egress_port, "dataplane.dpdk.egress_port");
        differs(a->next_hop_mac != b->next_hop_mac, "dataplane.dpdk.next_hop_mac");
    }
    const auto& x = running.dataplane.xdp;
    const auto& y = next.dataplane.xdp;
    differs(x.has_value() != y.has_value(), "[dataplane.xdp]");
    if (x && y) {
        differs(x->interfaces != y->interfaces, "dataplane.xdp.interfaces");
        differs(x->mode != y->mode, "dataplane.xdp.mode");
        differs(x->allow_generic_fallback != y->allow_generic_fallback, "dataplane.xdp.allow_generic_fallback");
        differs(x->pin_path != y->pin_path, "dataplane.xdp.pin_path");
        differs(x->conn_table_size != y->conn_table_size, "dataplane.xdp.conn_table_size");
        differs(x->conn_table_mode != y->conn_table_mode, "dataplane.xdp.conn_table_mode");
    }
    // The workers' connection tables take their timeouts at start.
    differs(running.timeouts.tcp_established != next.timeouts.tcp_established, "conntrack.tcp_established_s");
    differs(running.timeouts.tcp_syn_fin != next.timeouts.tcp_syn_fin, "conntrack.tcp_syn_fin_s");
    differs(running.timeouts.udp != next.timeouts.udp, "conntrack.udp_s");
    differs(running.daemon.admin.listen != next.daemon.admin.listen, "daemon.admin.listen");
    differs(running.daemon.admin.port != next.daemon.admin.port, "daemon.admin.port");
    differs(running.daemon.admin.token_file != next.daemon.admin.token_file, "daemon.admin.token_file");
    differs(running.daemon.state_dir != next.daemon.state_dir, "daemon.state_dir");
    return out;
}

}  // namespace sluice::daemon
