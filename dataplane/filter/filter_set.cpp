// FilterSet: build and the per-burst worker call (see filter_set.h).
#include "filter/filter_set.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace sluice::filter {
namespace {

std::atomic<uint64_t> g_generation{0};
constexpr uint8_t kDropAclDeny = SLUICE_DROP_ACL_DENY;

Result<void> check_limit(const VipRateLimit& limit, uint32_t vip)
{
    const std::string name = "rate limit of vip " + std::to_string(vip);
    for (const uint64_t rate : {limit.packets_per_sec, limit.new_flows_per_sec}) {
        if (rate > kMaxRatePerSec) {
            return make_error(name + ": rate " + std::to_string(rate) + "/s above the maximum " +
                              std::to_string(kMaxRatePerSec));
        }
    }
    for (const auto& [rate, burst] : {std::pair{limit.packets_per_sec, limit.packets_burst},
                                      std::pair{limit.new_flows_per_sec, limit.new_flows_burst}}) {
        if (burst > kMaxBurst) {
            return make_error(name + ": burst " + std::to_string(burst) + " above the maximum " +
                              std::to_string(kMaxBurst));
        }
        if (rate != 0 && burst == 0) {
            return make_error(name + ": a limited rate needs a burst of at least 1");
        }
    }
    return {};
}

}  // namespace

Result<std::unique_ptr<const FilterSet>> FilterSet::build(const FilterConfig& config, uint32_t workers)
{
    std::unique_ptr<FilterSet> set(new FilterSet());
    for (uint32_t v = 0; v < SLUICE_MAX_VIPS; ++v) {
        const VipRateLimit& limit = config.rate_limits.vip[v];
        if (auto ok = check_limit(limit, v); !ok) {
            return make_error(ok.error());
        }
        if (limit.packets_per_sec != 0 || limit.new_flows_per_sec != 0) {
            set->rate_limited_[v / 64] |= uint64_t{1} << (v % 64);
        }
    }
    auto acl = Acl::build(config.acl);
    if (!acl) {
        return make_error(acl.error());
    }
    auto payload = PayloadRules::build(config.payload_rules, workers);
    if (!payload) {
        return make_error(payload.error());
    }
    set->acl_ = std::move(*acl);
    set->payload_ = std::move(*payload);
    set->limits_ = std::make_unique<RateLimits>(config.rate_limits);
    set->generation_ = g_generation.fetch_add(1) + 1;
    return std::unique_ptr<const FilterSet>(std::move(set));
}

void FilterSet::filter_burst(WorkerRateLimiter& limiter, uint32_t worker, const FilterPacket* pkts,
                             uint16_t n, uint64_t now_ns, uint8_t* result) const
{
    limiter.sync(*limits_, generation_, now_ns);
    constexpr uint16_t kChunk = Acl::kChunk;
    for (uint16_t base = 0; base < n; base = static_cast<uint16_t>(base + kChunk)) {
        const uint16_t m = static_cast<uint16_t>(std::min<int>(kChunk, n - base));
        const FilterPacket* p = pkts + base;
        uint8_t* out = result + base;

        // 1. ACL, one bulk lookup per family.
        if (acl_->allows_everything()) {
            std::fill(out, out + m, kFilterPass);
        } else {
            uint32_t v4[kChunk];
            uint8_t v6[kChunk][16];
            uint16_t vip4[kChunk], vip6[kChunk], at4[kChunk], at6[kChunk];
            uint8_t verdict4[kChunk], verdict6[kChunk];
            uint16_t n4 = 0, n6 = 0;
            for (uint16_t i = 0; i < m; ++i) {
                if (p[i].family == SLUICE_FAMILY_IPV4) {
                    v4[n4] = p[i].src.v4;
                    vip4[n4] = p[i].vip_id;
                    at4[n4++] = i;
                } else if (p[i].family == SLUICE_FAMILY_IPV6) {
                    std::memcpy(v6[n6], p[i].src.bytes, 16);
                    vip6[n6] = p[i].vip_id;
                    at6[n6++] = i;
                } else {
                    out[i] = SLUICE_DROP_INTERNAL;  // the parser never hands us another family
                }
            }
            acl_->check_burst_v4(v4, vip4, n4, verdict4);
            acl_->check_burst_v6(v6, vip6, n6, verdict6);
            for (uint16_t k = 0; k < n4; ++k) {
                out[at4[k]] = verdict4[k] == SLUICE_ACL_ALLOW ? kFilterPass : kDropAclDeny;
            }
            for (uint16_t k = 0; k < n6; ++k) {
                out[at6[k]] = verdict6[k] == SLUICE_ACL_ALLOW ? kFilterPass : kDropAclDeny;
            }
        }

        // 2. Token buckets, then 3. payload rules, per surviving packet.
        for (uint16_t i = 0; i < m; ++i) {
            if (out[i] == kFilterPass) {
                out[i] = after_acl(limiter, worker, p[i], now_ns);
            }
        }
    }
}

}  // namespace sluice::filter
