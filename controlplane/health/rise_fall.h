// The rise/fall state machine of one target: a pure function of the probe
// results fed to it, so it is tested without sockets or clocks.
#pragma once

#include <cstdint>
#include <optional>

#include "health/check_spec.h"

namespace sluice::health {

enum class HealthState : uint8_t {
    kUnknown,    // no probe has completed yet (InitialState::kUnknown)
    kHealthy,
    kUnhealthy,
};

const char* health_state_name(HealthState state);  // "unknown", "healthy", "unhealthy"

// Counting rules (exact):
// - a success resets consecutive_failures and increments consecutive_successes;
//   a failure does the opposite;
// - healthy -> unhealthy when consecutive_failures reaches `fall`;
// - unhealthy -> healthy when consecutive_successes reaches `rise`;
// - unknown -> the first result's side at once (see InitialState).
// Not thread-safe: owned by the checker's loop thread.
class RiseFall {
public:
    RiseFall(InitialState initial, uint32_t rise, uint32_t fall);

    // Records one probe result. Returns the new state when it changed.
    std::optional<HealthState> record(bool success);

    // New thresholds apply to the next result; counters are kept, so a
    // lowered `fall` already met takes effect on the next failure.
    void set_thresholds(uint32_t rise, uint32_t fall);

    HealthState state() const { return state_; }
    bool healthy() const { return state_ == HealthState::kHealthy; }
    uint32_t consecutive_successes() const { return successes_; }
    uint32_t consecutive_failures() const { return failures_; }

private:
    HealthState state_;
    uint32_t rise_;
    uint32_t fall_;
    uint32_t successes_ = 0;
    uint32_t failures_ = 0;
};

}  // namespace sluice::health
