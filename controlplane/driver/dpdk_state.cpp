// Plan -> ForwardingStateBuilder translation (see dpdk_state.h).
#include "driver/dpdk_state.h"

#include <algorithm>
#include <cstring>

#include "driver/plan_abi.h"

extern "C" {
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::driver {
namespace {

filter::Prefix to_prefix(const model::Prefix& p)
{
    filter::Prefix out;
    out.family = to_family(p.address);
    out.length = p.length;
    std::memcpy(out.bytes, p.address.bytes.data(), sizeof(out.bytes));  // same layout, see model/address.h
    return out;
}

filter::AclScope to_scope(const model::Filter& f)
{
    filter::AclScope scope;
    for (const model::Prefix& p : f.allow) scope.allow.push_back(to_prefix(p));
    for (const model::Prefix& p : f.deny) scope.deny.push_back(to_prefix(p));
    return scope;
}

static_assert(static_cast<uint32_t>(model::kPayloadCaseless) == filter::kPayloadCaseless &&
                  static_cast<uint32_t>(model::kPayloadDotAll) == filter::kPayloadDotAll &&
                  static_cast<uint32_t>(model::kPayloadMultiline) == filter::kPayloadMultiline &&
                  static_cast<uint32_t>(model::kPayloadSingleMatch) == filter::kPayloadSingleMatch &&
                  static_cast<uint32_t>(model::kPayloadUtf8) == filter::kPayloadUtf8 &&
                  static_cast<uint32_t>(model::kPayloadUcp) == filter::kPayloadUcp,
              "payload rule flags are copied unchanged from the model to the filter");

void add_payload_rules(const model::Filter& f, std::vector<uint16_t> vip_ids, std::vector<filter::PayloadRule>& out)
{
    for (const model::PayloadRule& r : f.payload_rules) {
        // Same flag bits in both (filter/payload_rules.h says so).
        out.push_back(filter::PayloadRule{r.id, r.pattern, r.flags, vip_ids});
    }
}

}  // namespace

filter::FilterConfig build_filter_config(const ForwardingPlan& plan)
{
    filter::FilterConfig fc;
    fc.acl.global = to_scope(plan.global_filter);
    add_payload_rules(plan.global_filter, {}, fc.payload_rules);
    for (const PlanService& s : plan.services) {
        const auto vip = static_cast<uint16_t>(s.vip_id);
        if (!s.filter.allow.empty() || !s.filter.deny.empty()) fc.acl.per_vip[vip] = to_scope(s.filter);
        add_payload_rules(s.filter, {vip}, fc.payload_rules);
        filter::VipRateLimit& limit = fc.rate_limits.vip[s.vip_id];
        if (s.rate_limit.packets) {
            limit.packets_per_sec = s.rate_limit.packets->per_sec;
            limit.packets_burst = s.rate_limit.packets->burst;
        }
        if (s.rate_limit.new_flows) {
            limit.new_flows_per_sec = s.rate_limit.new_flows->per_sec;
            limit.new_flows_burst = s.rate_limit.new_flows->burst;
        }
    }
    return fc;
}

Result<std::unique_ptr<const core::ForwardingState>> build_dpdk_state(const ForwardingPlan& plan,
                                                                      const std::vector<StartedPort>& ports,
                                                                      const NeighborLookup& neighbor,
                                                                      bool exception_available)
{
    if (ports.size() != plan.node.ports.size()) {
        return make_error("plan has " + std::to_string(plan.node.ports.size()) + " ports, the runtime " +
                          std::to_string(ports.size()));
    }
    core::ForwardingStateBuilder b;
    if (plan.node.source_ipv4) b.set_local_ipv4(to_addr(*plan.node.source_ipv4));
    if (plan.node.source_ipv6) b.set_local_ipv6(to_addr(*plan.node.source_ipv6));
    b.set_exception_path(plan.node.exception_path && exception_available);
    b.set_icmp_error_limit(core::IcmpErrorLimit{plan.node.icmp_errors_per_sec, plan.node.icmp_errors_burst});

    // One next hop per port. The state has a single next-hop MAC per port,
    // not one per family: IPv4's gateway wins when both are configured
    // (written down here because it is a limit of the snapshot layout).
    std::optional<model::MacAddress> next_hop = plan.node.next_hop_mac;
    if (!next_hop && plan.node.gateway_ipv4) next_hop = neighbor(*plan.node.gateway_ipv4);
    if (!next_hop && plan.node.gateway_ipv6) next_hop = neighbor(*plan.node.gateway_ipv6);
    for (size_t i = 0; i < ports.size(); ++i) {
        core::PortConfig pc{};
        std::memcpy(pc.mac, ports[i].mac.data(), 6);
        copy_mac(pc.nexthop_mac, next_hop);
        pc.mtu = ports[i].mtu;
        const uint16_t egress = plan.node.ports[i].egress;
        if (egress >= ports.size()) return make_error("port " + plan.node.ports[i].name + ": bad egress index");
        pc.egress_port = ports[egress].port_id;
        b.add_port(ports[i].port_id, pc);
    }

    for (const PlanService& s : plan.services) {
        for (const PlanBackend& pb : s.backends) {
            sluice_backend be{};
            be.addr = to_addr(pb.address);
            be.family = to_family(pb.address);
            be.flags = SLUICE_BACKEND_F_VALID | (pb.draining ? SLUICE_BACKEND_F_DRAINING : 0);
            if (s.forwarding == model::Forwarding::kL2Dsr) copy_mac(be.mac, neighbor(pb.address));
            b.add_backend(pb.id, be);
        }
        core::ForwardingStateBuilder::VipSpec v{};
        v.key.addr = to_addr(s.vip.address);
        v.key.port = __builtin_bswap16(s.vip.port);
        v.key.proto = s.protocol == model::Protocol::kTcp ? SLUICE_IPPROTO_TCP : SLUICE_IPPROTO_UDP;
        v.key.family = to_family(s.vip.address);
        v.vip_id = s.vip_id;
        v.forwarding = static_cast<uint8_t>(s.forwarding);  // same values, see model/service.h
        v.flags = s.flags;
        v.gue_port = s.gue_port;
        v.ring = s.ring;
        b.add_vip(std::move(v));
    }
    return b.build();
}

}  // namespace sluice::driver
