// Checks that need more than one section or service: uniqueness, address
// families against forwarding modes and local addresses, health-check ports,
// payload rules against the selected data plane, and the ABI's limits.
#include <algorithm>

#include "abi/tables.h"
#include "config/sections.h"

namespace sluice::config::detail {
namespace {

std::string line_of(const toml::node& node) { return std::to_string(node.source().begin.line); }

std::string protocol_name(model::Protocol p) { return p == model::Protocol::kTcp ? "tcp" : "udp"; }

std::string forwarding_name(model::Forwarding f)
{
    switch (f) {
    case model::Forwarding::kIpip: return "ipip";
    case model::Forwarding::kGue: return "gue";
    case model::Forwarding::kL2Dsr: return "l2dsr";
    }
    return "?";
}

std::string source_key(model::IpFamily family)
{
    return family == model::IpFamily::kIpv4 ? "source_ipv4" : "source_ipv6";
}

void check_unique(Context& ctx, const model::Config& config, const std::vector<ServiceNodes>& nodes)
{
    for (size_t i = 0; i < config.services.size(); ++i) {
        const model::Service& s = config.services[i];
        for (size_t j = 0; j < i; ++j) {
            const model::Service& earlier = config.services[j];
            if (nodes[i].name_ok && nodes[j].name_ok && s.name == earlier.name) {
                ctx.error(nodes[i].table->get("name")->source(),
                          "service name \"" + s.name + "\" is used twice (first on line " +
                              line_of(*nodes[j].table->get("name")) + ")");
            }
            if (nodes[i].vip != nullptr && nodes[j].vip != nullptr && s.vip == earlier.vip &&
                s.protocol == earlier.protocol) {
                ctx.error(nodes[i].vip->source(), "VIP " + s.vip.to_string() + "/" + protocol_name(s.protocol) +
                                                      " is already used by service \"" + earlier.name + "\" (line " +
                                                      line_of(*nodes[j].vip) + ")");
            }
        }
    }
}

// The address families a service's backends may have, given where they come from.
void check_families(Context& ctx, const model::Config& config, const model::Service& s, const ServiceNodes& nodes)
{
    if (nodes.vip == nullptr) return;
    const model::IpFamily vip_family = s.vip.address.family;
    const bool dsr = s.forwarding == model::Forwarding::kL2Dsr;
    const auto has_source = [&](model::IpFamily family) {
        return family == model::IpFamily::kIpv4 ? config.network.source_ipv4.has_value()
                                                : config.network.source_ipv6.has_value();
    };
    // One backend (or a DNS record type standing for many) of `family`.
    const auto check = [&](model::IpFamily family, const toml::node& where, const std::string& what) {
        if (dsr && family != vip_family) {
            ctx.error(where.source(), what + " is " + std::string(model::family_name(family)) + " but VIP " +
                                          s.vip.address.to_string() + " is " +
                                          std::string(model::family_name(vip_family)) +
                                          ": l2dsr delivers the client's packet unchanged, so both need one family");
        } else if (!dsr && !has_source(family)) {
            ctx.error(where.source(), what + " is " + std::string(model::family_name(family)) + ": set " +
                                          source_key(family) + " in [network], the outer source address for " +
                                          forwarding_name(s.forwarding) + " encapsulation");
        }
    };
    for (size_t i = 0; i < s.backends.size(); ++i) {
        const model::Backend& b = s.backends[i];
        if (b.address == s.vip.address) {
            ctx.error(nodes.backend_addresses[i]->source(), "backend " + b.address.to_string() + " is the VIP itself");
            continue;
        }
        check(b.address.family, *nodes.backend_addresses[i], "backend " + b.address.to_string());
    }
    if (s.discovery.has_value() && nodes.dns_record != nullptr) {
        const auto& dns = std::get<model::DnsDiscovery>(*s.discovery);
        if (dns.record == model::DnsRecord::kA) check(model::IpFamily::kIpv4, *nodes.dns_record, "record \"A\"");
        if (dns.record == model::DnsRecord::kAaaa) check(model::IpFamily::kIpv6, *nodes.dns_record, "record \"AAAA\"");
    }
    // Backends of unknown family (etcd, file, SRV) need at least one source address.
    bool unknown_family = false;
    if (s.discovery.has_value()) {
        const auto* dns = std::get_if<model::DnsDiscovery>(&*s.discovery);
        unknown_family = dns == nullptr || dns->record == model::DnsRecord::kSrv;
    }
    if (!dsr && unknown_family && !config.network.source_ipv4 && !config.network.source_ipv6) {
        ctx.error(nodes.table->get("discovery")->source(),
                  "discovered backends need a local source address for " + forwarding_name(s.forwarding) +
                      " encapsulation: set source_ipv4 and/or source_ipv6 in [network]");
    }
}

// A VIP on every port has no port to probe unless one is written down.
void check_health_port(Context& ctx, const model::Service& s, const ServiceNodes& nodes)
{
    if (nodes.vip == nullptr || s.vip.port != 0 || s.health_check.type == model::HealthCheckType::kNone ||
        s.health_check.port.has_value()) {
        return;
    }
    const std::string why = "VIP " + s.vip.to_string() + " covers all ports, so the health check has no port: set "
                            "health_check.port";
    for (size_t i = 0; i < s.backends.size(); ++i) {
        if (!s.backends[i].port) {
            ctx.error(nodes.backend_addresses[i]->source(), why + " or this backend's port");
            return;
        }
    }
    if (nodes.dns_record != nullptr) {
        const auto& dns = std::get<model::DnsDiscovery>(*s.discovery);
        if (dns.record != model::DnsRecord::kSrv && !dns.port) {
            ctx.error(nodes.dns_record->source(), why + " or discovery.port");
        }
    }
}

void check_payload_rules(Context& ctx, const model::Config& config, const toml::node* dataplane_type,
                         const toml::node* rules, bool opted_in, std::string_view opt_in_table)
{
    if (rules == nullptr || dataplane_type == nullptr || config.dataplane.type == model::DataplaneType::kDpdk) {
        return;
    }
    const std::string plane = config.dataplane.type == model::DataplaneType::kXdp
                                  ? "dataplane type \"xdp\" does not enforce them"
                                  : "dataplane type \"auto\" may select xdp, which does not enforce them";
    if (opted_in) {
        ctx.warning(rules->source(), "payload rules are not enforced by the XDP data plane (" + plane +
                                         "); accepted because allow_unenforced_payload_rules = true");
    } else {
        ctx.error(rules->source(), "payload rules need the DPDK data plane; " + plane +
                                       ". Use type = \"dpdk\", or set allow_unenforced_payload_rules = true in " +
                                       std::string(opt_in_table) + " to run without them");
    }
}

}  // namespace

void check_across_sections(Context& ctx, const model::Config& config, const std::vector<ServiceNodes>& services,
                           const toml::node* dataplane_type, const toml::node* global_payload_rules,
                           const toml::table& root)
{
    check_unique(ctx, config, services);
    size_t backend_total = 0;
    for (size_t i = 0; i < config.services.size(); ++i) {
        const model::Service& s = config.services[i];
        const ServiceNodes& nodes = services[i];
        if (i == SLUICE_MAX_VIPS) {
            ctx.error(nodes.table->source(), "more than " + std::to_string(SLUICE_MAX_VIPS) +
                                                 " services (SLUICE_MAX_VIPS, dataplane/abi/tables.h)");
        }
        check_families(ctx, config, s, nodes);
        check_health_port(ctx, s, nodes);
        check_payload_rules(ctx, config, dataplane_type, nodes.payload_rules,
                            s.filter.allow_unenforced_payload_rules || config.filter.allow_unenforced_payload_rules,
                            "this service's filter or in [filter]");
        const size_t n = s.backends.size();
        backend_total += n;
        const toml::node* size_node = nodes.table->get("table_size");
        const toml::source_region& where = size_node != nullptr ? size_node->source() : nodes.table->source();
        if (n > s.table_size) {
            ctx.error(where, "table_size " + std::to_string(s.table_size) + " is smaller than the " + std::to_string(n) +
                                 " backends: some would get no slot");
        } else if (n > 0 && s.table_size < 100 * n) {
            ctx.warning(where, "table_size " + std::to_string(s.table_size) + " gives fewer than 100 slots to each of " +
                                   std::to_string(n) + " backends: load will be split unevenly");
        }
    }
    if (backend_total > SLUICE_MAX_BACKENDS) {
        ctx.error(root.source(), std::to_string(backend_total) + " static backends in all, more than " +
                                     std::to_string(SLUICE_MAX_BACKENDS) + " (SLUICE_MAX_BACKENDS)");
    }
    check_payload_rules(ctx, config, dataplane_type, global_payload_rules, config.filter.allow_unenforced_payload_rules,
                        "[filter]");
}

}  // namespace sluice::config::detail
