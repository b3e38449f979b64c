// Model -> ForwardingPlan: Maglev tables over each service's backends, with
// ids that outlive the plan (see forwarding_plan.h).
#include "driver/forwarding_plan.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "driver/plan_abi.h"
#include "maglev/maglev.h"

extern "C" {
#include "abi/tables.h"
}

namespace sluice::driver {
namespace {

// A margin beyond the longest idle timeout: connection entries are aged by
// the workers' own clocks, read once per burst.
constexpr std::chrono::milliseconds kQuarantineMargin{10000};

std::string vip_id_key(const model::Service& s)
{
    return std::string(s.protocol == model::Protocol::kTcp ? "tcp/" : "udp/") + s.vip.to_string();
}

uint8_t vip_flags(const model::Service& s)
{
    uint8_t flags = 0;
    if (!s.filter.allow.empty() || !s.filter.deny.empty()) flags |= SLUICE_VIP_F_ACL;
    if (s.rate_limit.packets || s.rate_limit.new_flows) flags |= SLUICE_VIP_F_RATE_LIMIT;
    if (s.hash == model::HashFields::kClient) flags |= SLUICE_VIP_F_HASH_NO_SPORT;
    return flags;
}

Result<NodePlan> build_node(const model::Config& config)
{
    NodePlan node;
    node.source_ipv4 = config.network.source_ipv4;
    node.source_ipv6 = config.network.source_ipv6;
    node.gateway_ipv4 = config.network.gateway_ipv4;
    node.gateway_ipv6 = config.network.gateway_ipv6;
    node.timeouts = config.timeouts;
    const auto& dp = config.dataplane;
    node.icmp_errors_per_sec = dp.icmp_errors_per_sec;
    node.icmp_errors_burst = dp.icmp_errors_burst;
    if (dp.type == model::DataplaneType::kXdp && dp.xdp) {
        for (const auto& ifname : dp.xdp->interfaces) {
            node.ports.push_back(PlanPort{ifname, ifname, 0, static_cast<uint16_t>(node.ports.size())});
        }
        node.exception_path = false;  // XDP_PASS hands the kernel what is not ours
        return node;
    }
    if (!dp.dpdk) return make_error("dataplane: no [dataplane.dpdk] section");
    const model::DpdkSettings& dpdk = *dp.dpdk;
    std::optional<uint16_t> egress;
    for (size_t i = 0; i < dpdk.ports.size(); ++i) {
        if (dpdk.egress_port && dpdk.ports[i].name == *dpdk.egress_port) egress = static_cast<uint16_t>(i);
    }
    if (dpdk.egress_port && !egress) return make_error("egress_port '" + *dpdk.egress_port + "' names no port");
    for (size_t i = 0; i < dpdk.ports.size(); ++i) {
        const auto& p = dpdk.ports[i];
        node.ports.push_back(PlanPort{p.name, p.device, p.rx_queues, egress.value_or(static_cast<uint16_t>(i))});
    }
    node.next_hop_mac = dpdk.next_hop_mac;
    node.exception_path = dpdk.exception_path;
    node.exception_tap = dpdk.exception_tap;
    node.conn_table_size = dpdk.conn_table_size;
    return node;
}

}  // namespace

std::string backend_id_key(const std::string& service, const model::IpAddress& address)
{
    return service + "/" + maglev_id(address);
}

std::string maglev_id(const model::IpAddress& address) { return address.to_string(); }

std::chrono::milliseconds id_quarantine(const model::ConnectionTimeouts& t)
{
    return std::max({t.tcp_established, t.tcp_syn_fin, t.udp}) + kQuarantineMargin;
}

PlanBuilder::PlanBuilder(StableIdAllocator::Clock clock)
    : backend_ids_(SLUICE_MAX_BACKENDS, id_quarantine(model::ConnectionTimeouts{}), clock),
      vip_ids_(SLUICE_MAX_VIPS, id_quarantine(model::ConnectionTimeouts{}), clock)
{
}

Result<ForwardingPlan> PlanBuilder::build(const model::Config& config)
{
    ForwardingPlan plan;
    auto node = build_node(config);
    if (!node) return Error{node.error()};
    plan.node = std::move(*node);

    // Tables first (pure, may fail), ids second (changes allocator state).
    struct Built {
        std::shared_ptr<const BuiltTable> built;
        std::vector<const model::Backend*> by_index;  // built->table.ids order
    };
    std::vector<Built> built;
    std::vector<std::string> backend_keys;
    std::vector<std::string> vip_keys;
    for (const model::Service& s : config.services) {
        if (s.discovery) {
            plan.warnings.push_back("service " + s.name +
                                    ": has a discovery source but no resolved backends (the service manager "
                                    "resolves them); its VIP has none in this plan");
        }
        std::vector<maglev::Backend> input;
        input.reserve(s.backends.size());
        for (const model::Backend& b : s.backends) {
            const bool draining = b.state == model::BackendState::kDraining;
            input.push_back(maglev::Backend{maglev_id(b.address), draining ? 0u : b.weight});
        }
        auto table = table_for(s.name, input, s.table_size);
        if (!table) return Error{"service " + s.name + ": " + table.error()};
        Built b{std::move(*table), {}};
        // By id, not a scan per id: a linear search made 1000 backends cost
        // a million address-to-text conversions per service.
        std::unordered_map<std::string_view, const model::Backend*> by_id;
        by_id.reserve(s.backends.size());
        for (size_t k = 0; k < s.backends.size(); ++k) by_id.emplace(input[k].id, &s.backends[k]);
        b.by_index.reserve(s.backends.size());
        for (const std::string& id : b.built->table.ids) {
            b.by_index.push_back(by_id.at(id));  // build_table only sorts the ids it was given
            // backend_id_key(s.name, address), from the text made above.
            backend_keys.push_back(s.name + "/" + id);
        }
        vip_keys.push_back(vip_id_key(s));
        built.push_back(std::move(b));
    }

    backend_ids_.set_quarantine(id_quarantine(config.timeouts));
    vip_ids_.set_quarantine(id_quarantine(config.timeouts));
    auto vip_ids = vip_ids_.assign(vip_keys);
    if (!vip_ids) return Error{"VIP ids: " + vip_ids.error()};
    auto backend_ids = backend_ids_.assign(backend_keys);
    if (!backend_ids) return Error{"backend ids: " + backend_ids.error()};

    size_t next_backend = 0;
    for (size_t i = 0; i < config.services.size(); ++i) {
        const model::Service& s = config.services[i];
        const Built& b = built[i];
        PlanService ps;
        ps.name = s.name;
        ps.vip_id = (*vip_ids)[i];
        ps.vip = s.vip;
        ps.protocol = s.protocol;
        ps.forwarding = s.forwarding;
        ps.gue_port = s.forwarding == model::Forwarding::kGue ? s.gue_port : 0;
        ps.flags = vip_flags(s);
        std::vector<uint32_t> global(b.by_index.size());
        for (size_t k = 0; k < b.by_index.size(); ++k) {
            const model::Backend& be = *b.by_index[k];
            global[k] = (*backend_ids)[next_backend++];
            const bool draining = be.state == model::BackendState::kDraining;
            ps.backends.push_back(PlanBackend{global[k], be.address, draining ? 0u : be.weight, draining});
        }
        // table_for() put this service's entry in tables_ and nothing since
        // has removed it.
        CachedTable& cached = tables_.at(s.name);
        if (cached.built != b.built || cached.ring_ids != global || cached.ring.empty()) {
            std::vector<uint32_t> ring;
            ring.reserve(b.built->table.slots.size());
            for (uint32_t slot : b.built->table.slots) {
                ring.push_back(slot == maglev::kNoBackend ? SLUICE_BACKEND_NONE : global[slot]);
            }
            cached.built = b.built;
            cached.ring_ids = global;
            cached.ring = core::SharedRing(std::move(ring));
        }
        ps.ring = cached.ring;
        ps.fingerprint = b.built->fingerprint;
        ps.filter = s.filter;
        ps.rate_limit = s.rate_limit;
        plan.services.push_back(std::move(ps));
    }
    plan.global_filter = config.filter;
    // Forget the tables of services that are gone (bounded memory).
    for (auto it = tables_.begin(); it != tables_.end();) {
        const bool kept = std::any_of(config.services.begin(), config.services.end(),
                                      [&](const model::Service& s) { return s.name == it->first; });
        it = kept ? std::next(it) : tables_.erase(it);
    }
    return plan;
}

Result<std::shared_ptr<const PlanBuilder::BuiltTable>> PlanBuilder::table_for(
    const std::string& service, const std::vector<maglev::Backend>& input, uint32_t table_size)
{
    std::vector<std::pair<std::string, uint32_t>> key;
    key.reserve(input.size());
    for (const maglev::Backend& b : input) key.emplace_back(b.id, b.weight);
    const auto cached = tables_.find(service);
    if (cached != tables_.end() && cached->second.table_size == table_size && cached->second.input == key) {
        return cached->second.built;
    }
    auto table = maglev::build_table(input, table_size);
    if (!table) return Error{table.error()};
    const uint64_t fingerprint = maglev::fingerprint(*table);
    auto shared = std::make_shared<const BuiltTable>(BuiltTable{std::move(*table), fingerprint});
    tables_[service] = CachedTable{std::move(key), table_size, shared};
    return shared;
}

std::vector<model::IpAddress> next_hop_addresses(const ForwardingPlan& plan)
{
    std::vector<model::IpAddress> out;
    bool need_v4 = false;
    bool need_v6 = false;
    for (const PlanService& s : plan.services) {
        for (const PlanBackend& b : s.backends) {
            if (s.forwarding == model::Forwarding::kL2Dsr) {
                out.push_back(b.address);
            } else if (uses_gateway(s)) {
                (b.address.is_ipv4() ? need_v4 : need_v6) = true;
            }
        }
    }
    if (!plan.node.next_hop_mac) {
        if (need_v4 && plan.node.gateway_ipv4) out.push_back(*plan.node.gateway_ipv4);
        if (need_v6 && plan.node.gateway_ipv6) out.push_back(*plan.node.gateway_ipv6);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

bool has_filters(const ForwardingPlan& plan)
{
    auto any = [](const model::Filter& f) {
        return !f.allow.empty() || !f.deny.empty() || !f.payload_rules.empty();
    };
    if (any(plan.global_filter)) return true;
    for (const PlanService& s : plan.services) {
        if (any(s.filter) || s.rate_limit.packets || s.rate_limit.new_flows) return true;
    }
    return false;
}

}  // namespace sluice::driver
