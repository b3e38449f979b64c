// Readers for filters: source-prefix ACLs, Hyperscan payload rules (each
// pattern is checked by Hyperscan itself, so a bad regex is refused at load
// rather than when the data plane compiles its database) and rate limits.
#include <hs/hs.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "config/sections.h"
#include "config/values.h"

namespace sluice::config::detail {
namespace {

struct FlagName {
    std::string_view name;
    uint32_t model_flag;
    unsigned hs_flag;
};

constexpr FlagName kPayloadFlags[] = {
    {"caseless", model::kPayloadCaseless, HS_FLAG_CASELESS},
    {"dotall", model::kPayloadDotAll, HS_FLAG_DOTALL},
    {"multiline", model::kPayloadMultiline, HS_FLAG_MULTILINE},
    {"singlematch", model::kPayloadSingleMatch, HS_FLAG_SINGLEMATCH},
    {"utf8", model::kPayloadUtf8, HS_FLAG_UTF8},
    {"ucp", model::kPayloadUcp, HS_FLAG_UCP},
};

// Asks Hyperscan whether it would compile the pattern; the empty string
// when it would, else its explanation.
std::string hyperscan_error(const std::string& pattern, uint32_t flags)
{
    unsigned hs_flags = 0;
    for (const FlagName& f : kPayloadFlags) {
        if ((flags & f.model_flag) != 0) hs_flags |= f.hs_flag;
    }
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* error = nullptr;
    const hs_error_t status = hs_expression_info(pattern.c_str(), hs_flags, &info, &error);
    std::string message;
    if (status != HS_SUCCESS) {
        message = error != nullptr && error->message != nullptr ? error->message : "rejected by Hyperscan";
    }
    if (error != nullptr) hs_free_compile_error(error);
    std::free(info);  // allocated with the default misc allocator (malloc)
    return message;
}

void read_payload_rule(Context& ctx, const toml::table& table, std::string_view schema_path, model::PayloadRule& out)
{
    TableReader r(ctx, table, table_schema(schema_path));
    if (auto id = r.integer("id", 1, 2147483647, /*required=*/true)) out.id = static_cast<uint32_t>(*id);
    if (const toml::array* flags = r.array("flags")) {
        std::vector<std::string_view> names;
        for (const FlagName& f : kPayloadFlags) names.push_back(f.name);
        for (size_t index = 0; index < flags->size(); ++index) {
            const toml::node& element = (*flags)[index];
            if (auto choice = read_choice_index(ctx, element, element_name("flags", index), names)) {
                out.flags |= kPayloadFlags[*choice].model_flag;
            }
        }
        if ((out.flags & model::kPayloadUcp) != 0 && (out.flags & model::kPayloadUtf8) == 0) {
            ctx.error(flags->source(), "flag \"ucp\" needs \"utf8\" as well");
        }
    }
    if (auto pattern = r.string("pattern", /*required=*/true)) {
        const toml::node& node = *r.node("pattern");
        if (pattern->empty()) {
            ctx.error(node.source(), "'pattern' is empty: it would match every packet");
        } else if (std::string error = hyperscan_error(*pattern, out.flags); !error.empty()) {
            ctx.error(node.source(), "Hyperscan cannot compile 'pattern': " + error);
        }
        out.pattern = *pattern;
    }
}

}  // namespace

const toml::node* read_filter(Context& ctx, const toml::table& table, std::string_view schema_path, model::Filter& out)
{
    TableReader r(ctx, table, table_schema(schema_path));
    if (const toml::node* allow = r.node("allow")) out.allow = read_prefixes(ctx, *allow, "allow");
    if (const toml::node* deny = r.node("deny")) out.deny = read_prefixes(ctx, *deny, "deny");
    for (const model::Prefix& prefix : out.allow) {
        if (std::find(out.deny.begin(), out.deny.end(), prefix) != out.deny.end()) {
            ctx.warning(r.node("allow")->source(), prefix.to_string() + " is both allowed and denied; deny wins");
        }
    }
    if (auto opt_in = r.boolean("allow_unenforced_payload_rules")) out.allow_unenforced_payload_rules = *opt_in;

    const toml::array* rules = r.array("payload_rules");
    if (rules == nullptr) return nullptr;
    const std::string rule_schema = std::string(schema_path) + ".payload_rules";
    std::set<uint32_t> ids;
    for (size_t index = 0; index < rules->size(); ++index) {
        const toml::node& element = (*rules)[index];
        const toml::table* rule_table = read_table(ctx, element, element_name("payload_rules", index));
        if (rule_table == nullptr) continue;
        model::PayloadRule rule;
        read_payload_rule(ctx, *rule_table, rule_schema, rule);
        if (rule.id != 0 && !ids.insert(rule.id).second) {
            ctx.error(rule_table->get("id")->source(), "payload rule id " + std::to_string(rule.id) + " is used twice");
            continue;
        }
        out.payload_rules.push_back(std::move(rule));
    }
    return rules->empty() ? nullptr : r.node("payload_rules");
}

void read_rate_limit(Context& ctx, const toml::table& table, model::RateLimits& out)
{
    TableReader r(ctx, table, table_schema("service.rate_limit"));
    // Ten billion per second is beyond any NIC sluice drives: a bigger value is a typo.
    constexpr int64_t kMaxRate = 10'000'000'000;
    const auto bucket = [&](std::string_view rate_key, std::string_view burst_key,
                            std::optional<model::TokenBucket>& target) {
        const auto rate = r.integer(rate_key, 1, kMaxRate);
        const auto burst = r.integer(burst_key, 1, kMaxRate);
        if (burst && !r.has(rate_key)) {
            ctx.error(r.node(burst_key)->source(),
                      quote(burst_key) + " without " + quote(rate_key) + ": a burst needs a rate");
        }
        if (rate) {
            // One second of traffic unless told otherwise.
            target = model::TokenBucket{static_cast<uint64_t>(*rate), static_cast<uint64_t>(burst ? *burst : *rate)};
        }
    };
    bucket("packets_per_sec", "packets_burst", out.packets);
    bucket("new_flows_per_sec", "new_flows_burst", out.new_flows);
}

}  // namespace sluice::config::detail
