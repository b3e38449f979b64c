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
        const std::vector<uint32_t>* order = nullptr;  // tables_ entry: pool index by table.ids
    };
    std::vector<Built> built;
    std::vector<std::string> vip_keys;
    // Whether every service's backend keys are the last build's, in the
    // same service order: then so are the ids.
    bool same_keys = last_ids_valid_ && last_services_.size() == config.services.size();
    for (size_t i = 0; i < config.services.size(); ++i) {
        const model::Service& s = config.services[i];
        if (s.discovery) {
            plan.warnings.push_back("service " + s.name +
                                    ": has a discovery source but no resolved backends (the service manager "
                                    "resolves them); its VIP has none in this plan");
        }
        if (same_keys && last_services_[i] != s.name) same_keys = false;
        std::vector<std::pair<model::IpAddress, uint32_t>> pool;
        pool.reserve(s.backends.size());
        for (const model::Backend& b : s.backends) {
            const bool draining = b.state == model::BackendState::kDraining;
            pool.emplace_back(b.address, draining ? 0u : b.weight);
        }
        const auto cached = tables_.find(s.name);
        if (cached != tables_.end() && cached->second.built && cached->second.table_size == s.table_size &&
            cached->second.pool == pool) {
            // Nothing Maglev or the ids see changed: the last table, order and keys.
            built.push_back(Built{cached->second.built, &cached->second.order});
            vip_keys.push_back(vip_id_key(s));
            continue;
        }
        std::vector<maglev::Backend> input;
        input.reserve(s.backends.size());
        for (const auto& [address, weight] : pool) input.push_back(maglev::Backend{maglev_id(address), weight});
        auto table = table_for(s.name, input, s.table_size);
        if (!table) return Error{"service " + s.name + ": " + table.error()};
        CachedTable& entry = tables_.at(s.name);  // table_for() made or kept it
        // By id, not a scan per id: a linear search made 1000 backends cost
        // a million address-to-text conversions per service.
        std::unordered_map<std::string_view, uint32_t> by_id;
        by_id.reserve(s.backends.size());
        for (size_t k = 0; k < s.backends.size(); ++k) by_id.emplace(input[k].id, static_cast<uint32_t>(k));
        std::vector<uint32_t> order;
        std::vector<std::string> keys;
        order.reserve(s.backends.size());
        keys.reserve(s.backends.size());
        for (const std::string& id : (*table)->table.ids) {
            order.push_back(by_id.at(id));  // build_table only sorts the ids it was given
            // backend_id_key(s.name, address), from the text made above.
            keys.push_back(s.name + "/" + id);
        }
        if (keys != entry.keys) {
            // No later build may take the last ids for these keys, even if
            // this one fails before asking the allocator.
            same_keys = false;
            last_ids_valid_ = false;
        }
        entry.pool = std::move(pool);
        entry.order = std::move(order);
        entry.keys = std::move(keys);
        built.push_back(Built{std::move(*table), &entry.order});
        vip_keys.push_back(vip_id_key(s));
    }

    backend_ids_.set_quarantine(id_quarantine(config.timeouts));
    vip_ids_.set_quarantine(id_quarantine(config.timeouts));
    auto vip_ids = vip_ids_.assign(vip_keys);
    if (!vip_ids) return Error{"VIP ids: " + vip_ids.error()};
    if (!same_keys) {
        std::vector<std::string> backend_keys;
        for (const model::Service& s : config.services) {
            const CachedTable& entry = tables_.at(s.name);
            backend_keys.insert(backend_keys.end(), entry.keys.begin(), entry.keys.end());
        }
        last_ids_valid_ = false;  // until the allocator has answered for these keys
        auto assigned = backend_ids_.assign(backend_keys);
        if (!assigned) return Error{"backend ids: " + assigned.error()};
        last_backend_ids_ = std::move(*assigned);
        last_services_.clear();
        for (const model::Service& s : config.services) last_services_.push_back(s.name);
        last_ids_valid_ = true;
    }
    const std::vector<uint32_t>* const backend_ids = &last_backend_ids_;

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
        const std::vector<uint32_t>& order = *b.order;
        std::vector<uint32_t> global(order.size());
        ps.backends.reserve(order.size());
        for (size_t k = 0; k < order.size(); ++k) {
            const model::Backend& be = s.backends[order[k]];
            global[k] = (*backend_ids)[next_backend++];
            const bool draining = be.state == model::BackendState::kDraining;
            ps.backends.push_back(PlanBackend{global[k], be.address, draining ? 0u : be.weight, draining});
        }
        // The loop above put this service's entry in tables_ and nothing
        // since has removed it.
        CachedTable& cached = tables_.at(s.name);
        if (cached.ring_table != b.built || cached.ring_ids != global || cached.ring.empty()) {
            std::vector<uint32_t> ring;
            ring.reserve(b.built->table.slots.size());
            for (uint32_t slot : b.built->table.slots) {
                ring.push_back(slot == maglev::kNoBackend ? SLUICE_BACKEND_NONE : global[slot]);
            }
            cached.ring_table = b.built;
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
    // In place: the entry's pool, order and keys stay for build() to compare.
    CachedTable& entry = tables_[service];
    entry.input = std::move(key);
    entry.table_size = table_size;
    entry.built = shared;
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
