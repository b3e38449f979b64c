// Dense numeric ids for named things (backends, VIPs) that stay the same
// across plan rebuilds and are not handed to another name until a
// quarantine has passed. A data plane's connection table pins flows to a
// backend id; reusing the id of a removed backend at once would silently
// move its idle flows to a stranger. After the quarantine every entry that
// could still name the old id has expired or been re-pinned.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace sluice::driver {

class StableIdAllocator {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using Clock = std::function<TimePoint()>;

    // `limit`: ids are 0..limit-1. `quarantine`: how long a released id
    // stays unusable for other names. `clock` is injectable for tests.
    StableIdAllocator(uint32_t limit, std::chrono::milliseconds quarantine,
                      Clock clock = [] { return std::chrono::steady_clock::now(); });

    // Makes `keys` the live set and returns their ids, in the order given.
    // A key already live keeps its id; a key released and back within its
    // quarantine gets its old id again; a new key gets the lowest id neither
    // live nor quarantined. Live keys missing from `keys` are released now.
    // All or nothing: on error (duplicate key, more than `limit` ids in use)
    // nothing changes. Control thread only; not thread-safe.
    Result<std::vector<uint32_t>> assign(const std::vector<std::string>& keys);

    // The quarantine applies to ids released from now on (a reload may
    // lengthen the connection timeouts it is derived from).
    void set_quarantine(std::chrono::milliseconds quarantine) { quarantine_ = quarantine; }

    // Ids live or quarantined (tests, diagnostics).
    size_t live_count() const { return live_.size(); }
    size_t quarantined_count() const { return released_.size(); }

private:
    struct Released {
        uint32_t id;
        TimePoint until;  // reusable by another key from then on
    };

    uint32_t limit_;
    std::chrono::milliseconds quarantine_;
    Clock clock_;
    // Hashed: a node with 100 services x 1000 backends assigns 100 000 keys
    // per plan, and ordered maps of strings made that a quarter of a build.
    std::unordered_map<std::string, uint32_t> live_;
    std::unordered_map<std::string, Released> released_;
};

}  // namespace sluice::driver
