// The desired backend set of one service as a discovery source reports it,
// and the one JSON schema for a backend shared by the file and etcd sources.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "model/address.h"

namespace sluice::discovery {

// One backend as discovered. Health is not here: health checks decide
// which of these are up; discovery only says which ought to exist.
struct BackendEntry {
    model::IpAddress address;  // where packets are sent
    uint16_t port = 0;         // health-check port; 0 = not given (the VIP's port applies)
    uint32_t weight = 100;     // relative share of Maglev slots, 1..10000
    bool draining = false;     // no new flows; established ones kept

    auto operator<=>(const BackendEntry&) const = default;
};

// A whole set, sorted by (address, port, ...) and with unique addresses, so
// that two sources reporting the same backends compare equal and the Maglev
// builder (a pure function of its input) sees one canonical order.
struct BackendSet {
    std::vector<BackendEntry> backends;  // sorted, addresses unique
    uint64_t revision = 0;  // etcd store revision; a serial counted per update for the others

    // Same backends, whatever the revision.
    bool same_backends(const BackendSet& other) const { return backends == other.backends; }
};

inline constexpr uint32_t kMinWeight = 1;
inline constexpr uint32_t kMaxWeight = 10000;
inline constexpr uint32_t kDefaultWeight = 100;

// Sorts `backends` into canonical order. Refuses a set in which one address
// appears twice (the message names it): the data plane keys backends by
// address. Pure; any thread.
Result<std::vector<BackendEntry>> canonical_backends(std::vector<BackendEntry> backends);

// Parses one backend object of the shared schema:
//   {"address": "10.0.0.1", "port": 8080, "weight": 100, "state": "draining"}
// address is required; port 1..65535 optional; weight 1..10000 (default
// 100); state "active" (default) or "draining". Unknown keys are refused so
// a typo ("wieght") never silently becomes the default. Messages name the
// offending key and do not include a location: the caller adds it. Pure;
// any thread; never throws.
Result<BackendEntry> parse_backend_json(const nlohmann::json& value);

// Human text of one entry for messages and logs: "10.0.0.1:8080 w=100 draining".
std::string describe(const BackendEntry& entry);

}  // namespace sluice::discovery
