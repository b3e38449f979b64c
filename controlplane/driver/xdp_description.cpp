// Plan -> xdp::Description translation (see xdp_description.h).
#include "driver/xdp_description.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "driver/plan_abi.h"

extern "C" {
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::driver {
namespace {

void add_acl(const model::Filter& f, uint32_t scope, std::vector<xdp::AclPrefixSpec>& out)
{
    for (const auto* list : {&f.allow, &f.deny}) {
        for (const model::Prefix& p : *list) {
            xdp::AclPrefixSpec spec;
            spec.scope = scope;
            spec.family = to_family(p.address);
            spec.addr = to_addr(p.address);
            spec.prefix_len = p.length;
            spec.deny = list == &f.deny;
            out.push_back(spec);
        }
    }
}

}  // namespace

Result<xdp::Description> build_xdp_description(const ForwardingPlan& plan,
                                               const std::vector<XdpInterface>& interfaces,
                                               const XdpNeighborLookup& neighbor)
{
    if (interfaces.size() != plan.node.ports.size()) {
        return make_error("plan has " + std::to_string(plan.node.ports.size()) + " interfaces, " +
                          std::to_string(interfaces.size()) + " were resolved");
    }
    if (interfaces.size() > SLUICE_MAX_PORTS) {
        return make_error(std::to_string(interfaces.size()) + " interfaces: the XDP plane takes at most " +
                          std::to_string(SLUICE_MAX_PORTS));
    }
    xdp::Description d;
    if (plan.node.source_ipv4) d.node.local_v4 = to_addr(*plan.node.source_ipv4);
    if (plan.node.source_ipv6) d.node.local_v6 = to_addr(*plan.node.source_ipv6);
    d.node.exception_path = true;  // XDP_PASS: the kernel keeps what is not a VIP's
    d.node.icmp_errors_per_sec = plan.node.icmp_errors_per_sec;
    d.node.icmp_errors_burst = plan.node.icmp_errors_burst;
    const auto& t = plan.node.timeouts;
    // The DPDK plane's timeouts, state by state (closing ages as transitory).
    auto ns = [](std::chrono::milliseconds v) {
        return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(v).count());
    };
    d.node.conn_timeout_ns[SLUICE_CONN_TCP_TRANSITORY] = ns(t.tcp_syn_fin);
    d.node.conn_timeout_ns[SLUICE_CONN_TCP_ESTABLISHED] = ns(t.tcp_established);
    d.node.conn_timeout_ns[SLUICE_CONN_TCP_CLOSING] = ns(t.tcp_syn_fin);
    d.node.conn_timeout_ns[SLUICE_CONN_UDP] = ns(t.udp);

    // One next hop per port, as the DPDK snapshot has: IPv4's gateway wins
    // when both families have one (a limit of the port layout).
    std::optional<model::MacAddress> next_hop = plan.node.next_hop_mac;
    if (!next_hop && plan.node.gateway_ipv4) next_hop = neighbor(*plan.node.gateway_ipv4);
    if (!next_hop && plan.node.gateway_ipv6) next_hop = neighbor(*plan.node.gateway_ipv6);
    for (size_t i = 0; i < interfaces.size(); ++i) {
        const uint16_t egress = plan.node.ports[i].egress;
        if (egress >= interfaces.size()) return make_error("port " + plan.node.ports[i].name + ": bad egress index");
        xdp::PortSpec p;
        p.id = static_cast<uint16_t>(i);
        std::memcpy(p.mac, interfaces[i].mac.data(), 6);
        copy_mac(p.nexthop_mac, next_hop);
        p.mtu = interfaces[i].mtu;
        p.egress_port = egress;
        p.ifindex = interfaces[i].ifindex;
        d.ports.push_back(p);
    }

    add_acl(plan.global_filter, SLUICE_MAX_VIPS, d.acl);
    for (const PlanService& s : plan.services) {
        for (const PlanBackend& pb : s.backends) {
            xdp::BackendSpec be;
            be.id = pb.id;
            be.family = to_family(pb.address);
            be.addr = to_addr(pb.address);
            be.flags = SLUICE_BACKEND_F_VALID | (pb.draining ? SLUICE_BACKEND_F_DRAINING : 0);
            if (s.forwarding == model::Forwarding::kL2Dsr) copy_mac(be.mac, neighbor(pb.address));
            d.backends.push_back(be);
        }
        xdp::VipSpec v;
        v.key.addr = to_addr(s.vip.address);
        v.key.port = __builtin_bswap16(s.vip.port);
        v.key.proto = s.protocol == model::Protocol::kTcp ? SLUICE_IPPROTO_TCP : SLUICE_IPPROTO_UDP;
        v.key.family = to_family(s.vip.address);
        v.vip_id = s.vip_id;
        v.forwarding = to_forwarding(s.forwarding);
        v.flags = s.flags;  // the loader keeps HASH_NO_SPORT and derives ACL / RATE_LIMIT itself
        v.gue_port = s.gue_port;
        v.ring = s.ring;  // shared: the loader keeps the body as what the ring map holds
        if (s.rate_limit.packets) {
            v.limits.packets_per_sec = s.rate_limit.packets->per_sec;
            v.limits.packets_burst = s.rate_limit.packets->burst;
        }
        if (s.rate_limit.new_flows) {
            v.limits.new_flows_per_sec = s.rate_limit.new_flows->per_sec;
            v.limits.new_flows_burst = s.rate_limit.new_flows->burst;
        }
        d.vips.push_back(std::move(v));
        add_acl(s.filter, s.vip_id, d.acl);
    }
    return d;
}

namespace {

// Whether `name`'s packets come from devices (and so from their RSS
// queues): it is one (sysfs has its `device` link), or it is stacked
// (bond, VLAN, macvlan: `lower_<name>` links) on lower interfaces that
// all are, checked down to `depth` levels. Else false, and *virtual_name is
// the first interface found that is neither.
bool backed_by_devices(const std::string& sysfs_net, const std::string& name, int depth, std::string* virtual_name)
{
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(sysfs_net) / name;
    std::error_code ec;
    if (fs::exists(dir / "device", ec)) return true;
    bool lower = false;
    if (depth > 0) {
        for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
            const std::string file = entry.path().filename().string();
            if (file.rfind("lower_", 0) != 0) continue;
            lower = true;
            if (!backed_by_devices(sysfs_net, file.substr(6), depth - 1, virtual_name)) return false;
        }
    }
    if (!lower) *virtual_name = name;
    return lower;
}

}  // namespace

XdpConnTableLayout choose_conn_table_layout(model::XdpConnTableMode mode, const std::vector<XdpInterface>& interfaces,
                                            const std::string& sysfs_net)
{
    if (mode == model::XdpConnTableMode::kShared) return {true, "conn_table_mode = \"shared\""};
    if (mode == model::XdpConnTableMode::kPerCpu) return {false, "conn_table_mode = \"per-cpu\""};
    for (const XdpInterface& itf : interfaces) {
        std::string virt;
        if (!backed_by_devices(sysfs_net, itf.name, 4, &virt)) {
            return {true, "conn_table_mode = \"auto\" and " +
                              (virt == itf.name ? itf.name : itf.name + " stacks on " + virt) +
                              ", a virtual interface (no " + sysfs_net + "/" + virt +
                              "/device), where a flow can change CPU mid-flow"};
        }
    }
    return {false, "conn_table_mode = \"auto\" and every interface is a device or stacks on devices, whose RSS "
                   "keeps a flow on one CPU"};
}

}  // namespace sluice::driver
