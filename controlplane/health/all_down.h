// The "every backend is down" policy: from a service's backends, their
// health and on_all_backends_down, the set that goes into the Maglev table,
// plus a per-service counter of all-down episodes for the metrics.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "model/service.h"

namespace sluice::health {

// One backend and whether its checks pass. A backend whose state is
// HealthState::kUnknown (never probed yet) is passed as not healthy.
struct BackendHealth {
    model::Backend backend;
    bool healthy = false;
};

enum class PoolMode : uint8_t {
    kNormal,         // at least one active backend is healthy: those, only
    kAllDownKeepAll, // every active backend down, policy keep_all: all active ones (fail open)
    kAllDownDrop,    // every active backend down, policy drop: none (new flows dropped, counted)
    kNoActive,       // no active backend at all (empty or all draining): none, not "all down"
};

const char* pool_mode_name(PoolMode mode);

struct EffectiveBackends {
    std::vector<model::Backend> backends;  // for the Maglev builder, in input order
    PoolMode mode = PoolMode::kNormal;
    bool all_down() const
    {
        return mode == PoolMode::kAllDownKeepAll || mode == PoolMode::kAllDownDrop;
    }
};

// Pure. Draining backends never enter the table (they keep established
// flows through the connection table), whatever their health, so they do
// not count when deciding "all down" either: a pool of one draining healthy
// backend and one active dead one is all down.
EffectiveBackends effective_backends(std::span<const BackendHealth> backends,
                                     model::AllDownPolicy policy);

// Per-service all-down bookkeeping for /metrics: whether the service is in
// all-down mode now, and how many times it entered it (a counter, never
// reset, so rate() over it shows flapping pools). Thread-safe: record() from
// the control thread, snapshot() from the metrics thread.
class AllDownCounters {
public:
    struct Entry {
        std::string service;
        bool all_down = false;            // gauge: in all-down mode now
        PoolMode mode = PoolMode::kNormal;
        uint64_t episodes = 0;            // counter: entries into all-down mode
    };

    // Records the mode last computed for `service`; counts an episode on
    // each change from not-all-down to all-down.
    void record(const std::string& service, PoolMode mode);
    // Forgets a removed service (its counter disappears from /metrics).
    void forget(const std::string& service);
    std::vector<Entry> snapshot() const;  // sorted by service

private:
    mutable std::mutex mu_;
    std::map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace sluice::health
