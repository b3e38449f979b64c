// See next_hop_log.h.
#include "driver/next_hop_log.h"

namespace sluice::driver {

void NextHopLog::update(const std::vector<model::IpAddress>& hops, const Lookup& lookup, const Source& source,
                        const Wording& wording, const LogSink& log)
{
    std::map<model::IpAddress, std::optional<model::MacAddress>> now;
    for (const model::IpAddress& a : hops) {
        now[a] = lookup(a);
        const auto before = logged_.find(a);
        if (before != logged_.end() && before->second == now[a]) continue;
        if (now[a]) {
            log(LogSeverity::kInfo, "next hop " + a.to_string() + " is at " + now[a]->to_string() + source(a));
        } else if (before != logged_.end()) {
            log(LogSeverity::kWarn,
                "next hop " + a.to_string() + " lost its MAC: dropped as no_nexthop until " + wording.lost_until);
        } else {
            log(LogSeverity::kInfo, "next hop " + a.to_string() + ": resolving (" + wording.resolver + ")");
        }
    }
    logged_ = std::move(now);
}

void NextHopLog::warn_unresolved(const std::vector<model::IpAddress>& hops, const Lookup& lookup, const LogSink& log)
{
    for (const model::IpAddress& a : hops) {
        if (!lookup(a)) {
            log(LogSeverity::kWarn,
                "next hop " + a.to_string() + " did not answer yet: its packets are dropped as no_nexthop until it does");
        }
    }
}

}  // namespace sluice::driver
