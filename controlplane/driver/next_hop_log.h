// What both drivers tell operators about next hops: a line when one gains,
// changes or loses its MAC, or starts resolving; nothing while it stays.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "driver/dataplane_driver.h"
#include "model/address.h"

namespace sluice::driver {

class NextHopLog {
public:
    struct Wording {
        std::string resolver;     // "ARP/ND", "kernel ARP/ND"
        std::string lost_until;   // how it comes back: "it answers again"
    };
    using Lookup = std::function<std::optional<model::MacAddress>(const model::IpAddress&)>;
    // Where a MAC came from, appended to "is at MAC" ("" for nothing).
    using Source = std::function<std::string(const model::IpAddress&)>;

    // Logs the changes of `hops` since the last call. Control thread.
    void update(const std::vector<model::IpAddress>& hops, const Lookup& lookup, const Source& source,
                const Wording& wording, const LogSink& log);

    // After start-up's wait: a warning for each of `hops` still without a MAC.
    static void warn_unresolved(const std::vector<model::IpAddress>& hops, const Lookup& lookup, const LogSink& log);

private:
    std::map<model::IpAddress, std::optional<model::MacAddress>> logged_;
};

}  // namespace sluice::driver
