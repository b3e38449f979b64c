// The manager's record of one service, shared by service_manager.cpp and
// service_view.cpp only. Every field is guarded by ServiceManager::mu_.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "daemon/service_manager.h"

namespace sluice::daemon {

struct ServiceManager::ServiceState {
    model::Service config;
    std::string discovery_key;                  // "" = static backends
    uint64_t generation = 0;                    // of `source`
    std::unique_ptr<discovery::Source> source;  // null for static services
    std::optional<discovery::BackendSet> desired;  // last good set
    bool from_state_file = false;               // desired was read back, not yet confirmed
    bool persist_pending = false;
    std::set<model::IpAddress> api_drains;
    DrainTracker drains;
    std::map<model::IpAddress, health::Target> targets;  // registered with the checker
    bool targets_stale = true;
    bool changed = true;                        // since the last publication
    uint64_t rebuilds = 0;
};

}  // namespace sluice::daemon
