// Effective backend set under the all-down policy, and its counters.
#include "health/all_down.h"

namespace sluice::health {

const char* pool_mode_name(PoolMode mode)
{
    switch (mode) {
    case PoolMode::kNormal: return "normal";
    case PoolMode::kAllDownKeepAll: return "all_down_keep_all";
    case PoolMode::kAllDownDrop: return "all_down_drop";
    case PoolMode::kNoActive: return "no_active_backends";
    }
    return "?";
}

EffectiveBackends effective_backends(std::span<const BackendHealth> backends,
                                     model::AllDownPolicy policy)
{
    EffectiveBackends out;
    size_t active = 0;
    for (const BackendHealth& entry : backends) {
        if (entry.backend.state != model::BackendState::kActive) continue;
        ++active;
        if (entry.healthy) out.backends.push_back(entry.backend);
    }
    if (!out.backends.empty()) return out;  // kNormal
    if (active == 0) {
        out.mode = PoolMode::kNoActive;
        return out;
    }
    if (policy == model::AllDownPolicy::kDrop) {
        out.mode = PoolMode::kAllDownDrop;
        return out;
    }
    // Fail open: a health checker that cannot reach anyone (its own network
    // broke) must not black-hole a service whose backends may be fine.
    out.mode = PoolMode::kAllDownKeepAll;
    for (const BackendHealth& entry : backends) {
        if (entry.backend.state == model::BackendState::kActive) {
            out.backends.push_back(entry.backend);
        }
    }
    return out;
}

void AllDownCounters::record(const std::string& service, PoolMode mode)
{
    const bool down = mode == PoolMode::kAllDownKeepAll || mode == PoolMode::kAllDownDrop;
    std::lock_guard lock(mu_);
    Entry& entry = entries_[service];
    entry.service = service;
    if (down && !entry.all_down) ++entry.episodes;
    entry.all_down = down;
    entry.mode = mode;
}

void AllDownCounters::forget(const std::string& service)
{
    std::lock_guard lock(mu_);
    entries_.erase(service);
}

std::vector<AllDownCounters::Entry> AllDownCounters::snapshot() const
{
    std::lock_guard lock(mu_);
    std::vector<Entry> out;
    out.reserve(entries_.size());
    for (const auto& [name, entry] : entries_) out.push_back(entry);
    return out;
}

}  // namespace sluice::health
