// Source-prefix ACL build and lookup (semantics in acl.h).
#include "filter/acl.h"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_memory.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <utility>

namespace sluice::filter {
namespace {

// rte_lpm_create refuses a name already in use (the tables live in a
// process-wide list), and snapshots overlap during an RCU swap.
std::atomic<uint64_t> g_table_sequence{0};

std::string next_table_name(const char* kind)
{
    char name[RTE_LPM_NAMESIZE];
    std::snprintf(name, sizeof name, "sl_%s_%llu", kind,
                  static_cast<unsigned long long>(g_table_sequence.fetch_add(1)));
    return name;
}

// (length, bytes): std::map orders by length first, so parents come first.
using PrefixKey = std::pair<uint8_t, std::array<uint8_t, 16>>;

PrefixKey key_of(const Prefix& p)
{
    PrefixKey k{p.length, {}};
    std::memcpy(k.second.data(), p.bytes, 16);
    return k;
}

PrefixKey truncated(const PrefixKey& k, uint8_t length)
{
    PrefixKey out{length, k.second};
    for (unsigned bit = length; bit < 128; ++bit) {
        out.second[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    }
    return out;
}

std::string scope_name(size_t scope, const std::vector<uint16_t>& scope_vips)
{
    return scope == 0 ? "global ACL" : "ACL of vip " + std::to_string(scope_vips[scope]);
}

// What one family's tables hold before they are created in EAL memory.
struct FamilyPlan {
    std::vector<uint8_t> rows;                          // unique verdict rows
    uint32_t miss_row = 0;                              // row of an LPM miss
    std::vector<std::pair<PrefixKey, uint32_t>> rules;  // prefix (length >= 1) → row
};

// actions[s]: scope s's prefixes of this family → SLUICE_ACL_ALLOW/DENY.
FamilyPlan plan_family(const std::vector<std::map<PrefixKey, uint8_t>>& actions,
                       const std::vector<bool>& has_allow)
{
    const size_t scopes = actions.size();
    // Per union prefix: the action of the longest prefix, in each scope,
    // that contains it (0 = none), computed parent first.
    std::map<PrefixKey, std::vector<uint8_t>> matches;
    for (const auto& scope : actions) {
        for (const auto& [key, action] : scope) {
            matches.emplace(key, std::vector<uint8_t>(scopes, 0));
        }
    }
    for (auto& [key, match] : matches) {
        for (int len = key.first - 1; len >= 0; --len) {
            const auto parent = matches.find(truncated(key, static_cast<uint8_t>(len)));
            if (parent != matches.end()) {
                match = parent->second;
                break;
            }
        }
        for (size_t s = 0; s < scopes; ++s) {
            const auto own = actions[s].find(key);
            if (own != actions[s].end()) {
                match[s] = own->second;
            }
        }
    }
    auto admits = [&](const std::vector<uint8_t>& match, size_t s) {
        return match[s] == SLUICE_ACL_ALLOW || (match[s] == 0 && !has_allow[s]);
    };
    FamilyPlan plan;
    std::map<std::vector<uint8_t>, uint32_t> row_ids;
    auto row_of = [&](const std::vector<uint8_t>& match) {
        std::vector<uint8_t> row(scopes);
        const bool global = admits(match, 0);
        row[0] = global ? SLUICE_ACL_ALLOW : SLUICE_ACL_DENY;
        for (size_t s = 1; s < scopes; ++s) {
            row[s] = global && admits(match, s) ? SLUICE_ACL_ALLOW : SLUICE_ACL_DENY;
        }
        const auto [it, inserted] = row_ids.emplace(row, static_cast<uint32_t>(row_ids.size()));
        if (inserted) {
            plan.rows.insert(plan.rows.end(), row.begin(), row.end());
        }
        return it->second;
    };
    // rte_lpm cannot hold /0 (depth must be >= 1): a miss takes /0's row.
    const auto root = matches.find(PrefixKey{0, {}});
    plan.miss_row = row_of(root != matches.end() ? root->second : std::vector<uint8_t>(scopes, 0));
    for (const auto& [key, match] : matches) {
        if (key.first > 0) {
            plan.rules.emplace_back(key, row_of(match));
        }
    }
    return plan;
}

}  // namespace

Result<AclScope> parse_acl_scope(const std::vector<std::string>& allow,
                                 const std::vector<std::string>& deny)
{
    AclScope scope;
    for (size_t i = 0; i < allow.size(); ++i) {
        auto p = parse_prefix(allow[i]);
        if (!p) {
            return make_error("allow[" + std::to_string(i) + "]: " + p.error());
        }
        scope.allow.push_back(*p);
    }
    for (size_t i = 0; i < deny.size(); ++i) {
        auto p = parse_prefix(deny[i]);
        if (!p) {
            return make_error("deny[" + std::to_string(i) + "]: " + p.error());
        }
        scope.deny.push_back(*p);
    }
    return scope;
}

Result<std::unique_ptr<Acl>> Acl::build(const AclConfig& config)
{
    std::unique_ptr<Acl> acl(new Acl());
    // Scope 0 is global; scope c >= 1 is the c-th VIP with its own lists.
    std::vector<const AclScope*> scopes{&config.global};
    std::vector<uint16_t> scope_vips{SLUICE_MAX_VIPS};
    for (const auto& [vip_id, scope] : config.per_vip) {
        if (vip_id >= SLUICE_MAX_VIPS) {
            return make_error("ACL for vip " + std::to_string(vip_id) + ": vip id out of range (max " +
                              std::to_string(SLUICE_MAX_VIPS - 1) + ")");
        }
        acl->vip_column_[vip_id] = static_cast<uint16_t>(scopes.size());
        scopes.push_back(&scope);
        scope_vips.push_back(vip_id);
    }
    acl->columns_ = static_cast<uint32_t>(scopes.size());

    // Per family (0: IPv4, 1: IPv6) and scope: prefix → action.
    std::vector<std::map<PrefixKey, uint8_t>> actions[2];
    actions[0].resize(scopes.size());
    actions[1].resize(scopes.size());
    std::vector<bool> has_allow(scopes.size(), false);
    size_t total = 0;
    for (size_t s = 0; s < scopes.size(); ++s) {
        has_allow[s] = !scopes[s]->allow.empty();
        for (const uint8_t action : {SLUICE_ACL_ALLOW, SLUICE_ACL_DENY}) {
            const auto& list = action == SLUICE_ACL_ALLOW ? scopes[s]->allow : scopes[s]->deny;
            for (const Prefix& p : list) {
                if (auto ok = validate_prefix(p); !ok) {
                    return make_error(scope_name(s, scope_vips) + ": " + ok.error());
                }
                auto& table = actions[p.family == SLUICE_FAMILY_IPV4 ? 0 : 1][s];
                // Deny is inserted last and overwrites: an identical prefix
                // in both lists is denied.
                table[key_of(p)] = action;
                ++total;
            }
        }
    }
    acl->allows_everything_ = total == 0;

    FamilyPlan v4 = plan_family(actions[0], has_allow);
    FamilyPlan v6 = plan_family(actions[1], has_allow);
    // rte_lpm next hops are 24 bits wide.
    if (v4.rows.size() / acl->columns_ >= (1u << 24) || v6.rows.size() / acl->columns_ >= (1u << 24)) {
        return make_error("ACL too large: more than 2^24 distinct verdict rows");
    }
    acl->rows4_ = std::move(v4.rows);
    acl->rows6_ = std::move(v6.rows);
    acl->miss_row4_ = v4.miss_row;
    acl->miss_row6_ = v6.miss_row;

    if (!v4.rules.empty()) {
        rte_lpm_config cfg{};
        cfg.max_rules = static_cast<uint32_t>(v4.rules.size());
        // One tbl8 group per prefix longer than /24, at most.
        cfg.number_tbl8s = 1;
        for (const auto& rule : v4.rules) {
            cfg.number_tbl8s += rule.first.first > 24 ? 1 : 0;
        }
        const std::string name = next_table_name("acl4");
        acl->lpm4_ = rte_lpm_create(name.c_str(), SOCKET_ID_ANY, &cfg);
        if (acl->lpm4_ == nullptr) {
            return make_error("cannot create IPv4 ACL table " + name + ": " + rte_strerror(rte_errno));
        }
        for (const auto& [key, row] : v4.rules) {
            uint32_t be;
            std::memcpy(&be, key.second.data(), 4);
            if (rte_lpm_add(acl->lpm4_, rte_be_to_cpu_32(be), key.first, row) != 0) {
                return make_error("cannot add an IPv4 ACL prefix (table full?)");
            }
        }
    }
    if (!v6.rules.empty()) {
        rte_lpm6_config cfg{};
        cfg.max_rules = static_cast<uint32_t>(v6.rules.size());
        // A prefix of length L > 24 may need ceil((L - 24) / 8) new tbl8 groups.
        cfg.number_tbl8s = 16;
        for (const auto& rule : v6.rules) {
            cfg.number_tbl8s += rule.first.first > 24 ? (rule.first.first - 24 + 7) / 8 : 0;
        }
        const std::string name = next_table_name("acl6");
        acl->lpm6_ = rte_lpm6_create(name.c_str(), SOCKET_ID_ANY, &cfg);
        if (acl->lpm6_ == nullptr) {
            return make_error("cannot create IPv6 ACL table " + name + ": " + rte_strerror(rte_errno));
        }
        for (const auto& [key, row] : v6.rules) {
            if (rte_lpm6_add(acl->lpm6_, key.second.data(), key.first, row) != 0) {
                return make_error("cannot add an IPv6 ACL prefix (table full?)");
            }
        }
    }
    return acl;
}

Acl::~Acl()
{
    rte_lpm_free(lpm4_);   // both accept null
    rte_lpm6_free(lpm6_);
}

void Acl::check_burst_v4(const uint32_t* src_be, const uint16_t* vip_ids, uint16_t n,
                         uint8_t* verdict) const
{
    if (lpm4_ == nullptr) {
        for (uint16_t i = 0; i < n; ++i) {
            verdict[i] = verdict_at(rows4_, miss_row4_, vip_ids[i]);
        }
        return;
    }
    uint32_t host[kChunk];
    uint32_t hops[kChunk];
    for (uint16_t base = 0; base < n; base = static_cast<uint16_t>(base + kChunk)) {
        const uint16_t m = static_cast<uint16_t>(std::min<int>(kChunk, n - base));
        for (uint16_t i = 0; i < m; ++i) {
            host[i] = rte_be_to_cpu_32(src_be[base + i]);  // rte_lpm keys are host order
        }
        rte_lpm_lookup_bulk(lpm4_, host, hops, m);
        for (uint16_t i = 0; i < m; ++i) {
            const uint32_t row = (hops[i] & RTE_LPM_LOOKUP_SUCCESS) ? (hops[i] & 0x00FFFFFFu) : miss_row4_;
            verdict[base + i] = verdict_at(rows4_, row, vip_ids[base + i]);
        }
    }
}

void Acl::check_burst_v6(const uint8_t (*src)[16], const uint16_t* vip_ids, uint16_t n,
                         uint8_t* verdict) const
{
    if (lpm6_ == nullptr) {
        for (uint16_t i = 0; i < n; ++i) {
            verdict[i] = verdict_at(rows6_, miss_row6_, vip_ids[i]);
        }
        return;
    }
    // rte_lpm6_lookup_bulk_func takes a non-const array: copy the chunk.
    uint8_t ips[kChunk][RTE_LPM6_IPV6_ADDR_SIZE];
    int32_t hops[kChunk];
    for (uint16_t base = 0; base < n; base = static_cast<uint16_t>(base + kChunk)) {
        const uint16_t m = static_cast<uint16_t>(std::min<int>(kChunk, n - base));
        std::memcpy(ips, src + base, static_cast<size_t>(m) * 16);
        rte_lpm6_lookup_bulk_func(lpm6_, ips, hops, m);
        for (uint16_t i = 0; i < m; ++i) {
            const uint32_t row = hops[i] >= 0 ? static_cast<uint32_t>(hops[i]) : miss_row6_;
            verdict[base + i] = verdict_at(rows6_, row, vip_ids[base + i]);
        }
    }
}

uint8_t Acl::check_v4(uint32_t src_be, uint16_t vip_id) const
{
    uint8_t verdict;
    check_burst_v4(&src_be, &vip_id, 1, &verdict);
    return verdict;
}

uint8_t Acl::check_v6(const uint8_t* src, uint16_t vip_id) const
{
    uint8_t addr[1][16];
    std::memcpy(addr[0], src, 16);
    uint8_t verdict;
    check_burst_v6(addr, &vip_id, 1, &verdict);
    return verdict;
}

}  // namespace sluice::filter
