// The last good backend set of a discovered service, kept in
// daemon.state_dir so a sluiced restarted during a discovery outage serves
// what it served before instead of an empty VIP.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "discovery/backend_set.h"

namespace sluice::daemon {

// A set as written, with the discovery source it came from (see
// ServiceManager's source_identity): a set from another source (the
// config changed while sluiced was down) must not stand in at start.
struct PersistedSet {
    std::string source;
    discovery::BackendSet set;
};

// `dir`/backends-SERVICE.json, written to a temporary file and renamed over
// so a crash never leaves half a file. Creates `dir` if needed. Any thread
// (one writer per service: the control thread).
Result<void> write_state_file(const std::string& dir, const std::string& service, const PersistedSet& persisted);

// The set written last, nullopt when there is none; an error when the file
// exists but does not parse or names no source (the caller ignores it and
// says so).
Result<std::optional<PersistedSet>> read_state_file(const std::string& dir, const std::string& service);

}  // namespace sluice::daemon
