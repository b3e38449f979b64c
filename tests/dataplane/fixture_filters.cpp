// Fixture config "filters" -> FilterSet (see fixture_filters.h).
#include "fixture_filters.h"

#include <string>
#include <vector>

namespace sluice::testing {
namespace {

Result<std::vector<filter::Prefix>> prefixes(const nlohmann::json& scope, const char* list)
{
    std::vector<filter::Prefix> out;
    const nlohmann::json texts = scope.value(list, nlohmann::json::array());
    for (const auto& text : texts) {
        auto p = filter::parse_prefix(text.get<std::string>());
        if (!p) return make_error(std::string(list) + ": " + p.error());
        out.push_back(*p);
    }
    return out;
}

Result<filter::AclScope> scope_of(const nlohmann::json& scope)
{
    filter::AclScope out;
    auto allow = prefixes(scope, "allow");
    if (!allow) return Error{allow.error()};
    auto deny = prefixes(scope, "deny");
    if (!deny) return Error{deny.error()};
    out.allow = std::move(*allow);
    out.deny = std::move(*deny);
    return out;
}

Result<void> add_rules(const nlohmann::json& scope, std::vector<uint16_t> vips, std::vector<filter::PayloadRule>& out)
{
    const nlohmann::json rules = scope.value("payload_rules", nlohmann::json::array());
    for (const auto& r : rules) {
        filter::PayloadRule rule;
        rule.id = r.at("id").get<uint32_t>();
        rule.pattern = r.at("pattern").get<std::string>();
        const nlohmann::json flags = r.value("flags", nlohmann::json::array());
        for (const auto& flag : flags) {
            if (flag == "caseless") rule.flags |= filter::kPayloadCaseless;
            else if (flag == "dotall") rule.flags |= filter::kPayloadDotAll;
            else if (flag == "multiline") rule.flags |= filter::kPayloadMultiline;
            else return make_error("payload rule " + std::to_string(rule.id) + ": unknown flag " + flag.dump());
        }
        rule.vip_ids = vips;
        out.push_back(std::move(rule));
    }
    return {};
}

}  // namespace

Result<filter::FilterConfig> filter_config(const nlohmann::json& config)
{
    filter::FilterConfig fc;
    try {
        const nlohmann::json& f = config.at("filters");
        const nlohmann::json global = f.value("global", nlohmann::json::object());
        auto g = scope_of(global);
        if (!g) return make_error("filters.global: " + g.error());
        fc.acl.global = std::move(*g);
        if (auto r = add_rules(global, {}, fc.payload_rules); !r) return make_error("filters.global: " + r.error());
        const nlohmann::json vips = f.value("vips", nlohmann::json::object());
        for (const auto& [id, scope] : vips.items()) {
            const auto vip = static_cast<uint16_t>(std::stoul(id));
            auto s = scope_of(scope);
            if (!s) return make_error("filters.vips." + id + ": " + s.error());
            if (!s->allow.empty() || !s->deny.empty()) fc.acl.per_vip[vip] = std::move(*s);
            if (auto r = add_rules(scope, {vip}, fc.payload_rules); !r)
                return make_error("filters.vips." + id + ": " + r.error());
        }
        const nlohmann::json limits = f.value("rate_limits", nlohmann::json::object());
        for (const auto& [id, limit] : limits.items()) {
            filter::VipRateLimit& l = fc.rate_limits.vip.at(std::stoul(id));
            l.packets_per_sec = limit.value("packets_per_sec", uint64_t{0});
            l.packets_burst = limit.value("packets_burst", l.packets_per_sec);
            l.new_flows_per_sec = limit.value("new_flows_per_sec", uint64_t{0});
            l.new_flows_burst = limit.value("new_flows_burst", l.new_flows_per_sec);
        }
    } catch (const std::exception& e) {
        return make_error(std::string("filters: ") + e.what());
    }
    return fc;
}

Result<std::unique_ptr<const filter::FilterSet>> build_filters(const nlohmann::json& config, uint32_t workers)
{
    if (!config.contains("filters")) return std::unique_ptr<const filter::FilterSet>();
    auto fc = filter_config(config);
    if (!fc) return Error{fc.error()};
    return filter::FilterSet::build(*fc, workers);
}

}  // namespace sluice::testing
