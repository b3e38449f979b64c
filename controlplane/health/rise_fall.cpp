// Rise/fall counting; see rise_fall.h for the rules.
#include "health/rise_fall.h"

#include <algorithm>

namespace sluice::health {

const char* health_state_name(HealthState state)
{
    switch (state) {
    case HealthState::kUnknown: return "unknown";
    case HealthState::kHealthy: return "healthy";
    case HealthState::kUnhealthy: return "unhealthy";
    }
    return "?";
}

RiseFall::RiseFall(InitialState initial, uint32_t rise, uint32_t fall)
    : state_(initial == InitialState::kUp     ? HealthState::kHealthy
             : initial == InitialState::kDown ? HealthState::kUnhealthy
                                              : HealthState::kUnknown),
      rise_(std::max<uint32_t>(rise, 1)),
      fall_(std::max<uint32_t>(fall, 1))
{
}

void RiseFall::set_thresholds(uint32_t rise, uint32_t fall)
{
    rise_ = std::max<uint32_t>(rise, 1);
    fall_ = std::max<uint32_t>(fall, 1);
}

std::optional<HealthState> RiseFall::record(bool success)
{
    // Saturate rather than wrap: a backend up for years must not appear to
    // have zero successes after 2^32 probes.
    if (success) {
        failures_ = 0;
        if (successes_ != UINT32_MAX) ++successes_;
    } else {
        successes_ = 0;
        if (failures_ != UINT32_MAX) ++failures_;
    }
    HealthState next = state_;
    switch (state_) {
    case HealthState::kUnknown:
        next = success ? HealthState::kHealthy : HealthState::kUnhealthy;
        break;
    case HealthState::kHealthy:
        if (failures_ >= fall_) next = HealthState::kUnhealthy;
        break;
    case HealthState::kUnhealthy:
        if (successes_ >= rise_) next = HealthState::kHealthy;
        break;
    }
    if (next == state_) return std::nullopt;
    state_ = next;
    return next;
}

}  // namespace sluice::health
