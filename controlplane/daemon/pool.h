// One service's pool as the table builder sees it: the discovered set,
// minus unhealthy backends (under the all-down policy), plus draining
// backends until their deadline. Pure functions and a small per-service
// drain tracker, so the rules are testable without threads.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "discovery/backend_set.h"
#include "health/all_down.h"
#include "model/service.h"

namespace sluice::daemon {

using Clock = std::chrono::steady_clock;

// Who asked for a backend's drain, as the API reports it.
inline constexpr const char* kDrainDiscovery = "discovery";  // the source said state = draining
inline constexpr const char* kDrainApi = "api";              // set_drain from the admin API
inline constexpr const char* kDrainWeight = "weight";        // discovered or configured weight 0
inline constexpr const char* kDrainRemoved = "removed";      // left the discovered set (etcd key deleted, ...)

// When each draining backend of one service started draining. A backend
// drains while any source asks for it; its deadline counts from the first
// moment, so a drain that changes source (discovery, then the API) does not
// restart the clock. A backend that leaves the discovered set is not
// dropped at once (its established flows would re-pick and be reset): it is
// kept as "departed", with its last known entry, draining with source
// kDrainRemoved until the deadline, then forgotten. Control thread only;
// not thread-safe.
class DrainTracker {
public:
    struct Mark {
        std::string source;     // kDrain*; removed wins over the API over discovery over weight
        Clock::time_point since;
        std::optional<discovery::BackendEntry> departed;  // kDrainRemoved only: its last discovered entry
    };

    // Recomputes the marks for `desired` (the discovered set) and the
    // API's drain requests at `now`: new drains start, ended drains are
    // forgotten; a backend that left `desired` since the last update drains
    // as departed from now (or from the start of a drain already running),
    // and is forgotten once `deadline` has passed. A departed backend that
    // comes back is discovered again (draining only if a source says so).
    // Returns true when the departed set changed (health targets follow it).
    bool update(const std::vector<discovery::BackendEntry>& desired, const std::set<model::IpAddress>& api_drains,
                std::chrono::milliseconds deadline, Clock::time_point now);

    // The departed backends still draining, by address.
    std::vector<discovery::BackendEntry> departed() const;
    // Forgets a departed backend before its deadline (removed and failing
    // its health check: see ServiceManager::compose_locked).
    void forget_departed(const model::IpAddress& address);

    const Mark* find(const model::IpAddress& address) const;
    bool expired(const model::IpAddress& address, std::chrono::milliseconds deadline, Clock::time_point now) const;
    // Earliest future moment a drain expires, if any drain is still running.
    std::optional<Clock::time_point> next_expiry(std::chrono::milliseconds deadline, Clock::time_point now) const;

private:
    std::map<model::IpAddress, Mark> marks_;
    std::map<model::IpAddress, discovery::BackendEntry> known_;  // `desired` at the last update
};

// One discovered backend with what the manager knows of it.
struct Candidate {
    discovery::BackendEntry entry;
    bool healthy = false;        // its check passes, or it has none
    bool draining = false;       // any drain source
    bool drain_expired = false;  // past the service's drain_deadline: leaves the plan
};

struct Pool {
    std::vector<model::Backend> backends;  // the plan's input: active picks, then draining ones
    health::PoolMode mode = health::PoolMode::kNormal;
};

// The plan input for one service. Active backends go through
// health::effective_backends (so keep_all / drop apply exactly as there);
// draining ones stay (weight 0, VALID|DRAINING, no slots) until their
// deadline, whatever their health, so established flows keep their backend.
Pool build_pool(const std::vector<Candidate>& candidates, model::AllDownPolicy policy);

// A BackendSet from a service's static backends (what a static source
// would deliver), with the VIP's port where a backend has none.
discovery::BackendSet static_set(const model::Service& service);

// A backend as an operator names it: "10.0.0.1", "10.0.0.1:8080",
// "2001:db8::1" or "[2001:db8::1]:8080". port 0 = any port.
struct BackendRef {
    model::IpAddress address;
    uint16_t port = 0;
};
Result<BackendRef> parse_backend_ref(const std::string& text);

}  // namespace sluice::daemon
