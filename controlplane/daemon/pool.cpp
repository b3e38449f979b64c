// Pool rules: drain tracking and the all-down policy (see pool.h).
#include "daemon/pool.h"

#include <algorithm>

namespace sluice::daemon {

void DrainTracker::update(const std::vector<discovery::BackendEntry>& desired,
                          const std::set<model::IpAddress>& api_drains, Clock::time_point now)
{
    std::map<model::IpAddress, Mark> next;
    for (const discovery::BackendEntry& e : desired) {
        const char* source = api_drains.count(e.address) ? kDrainApi
                             : e.draining                ? kDrainDiscovery
                             : e.weight == 0             ? kDrainWeight
                                                         : nullptr;
        if (source == nullptr) continue;
        const auto old = marks_.find(e.address);
        next[e.address] = Mark{source, old != marks_.end() ? old->second.since : now};
    }
    marks_ = std::move(next);
}

const DrainTracker::Mark* DrainTracker::find(const model::IpAddress& address) const
{
    const auto it = marks_.find(address);
    return it == marks_.end() ? nullptr : &it->second;
}

bool DrainTracker::expired(const model::IpAddress& address, std::chrono::milliseconds deadline,
                           Clock::time_point now) const
{
    const Mark* mark = find(address);
    return mark != nullptr && now >= mark->since + deadline;
}

std::optional<Clock::time_point> DrainTracker::next_expiry(std::chrono::milliseconds deadline,
                                                           Clock::time_point now) const
{
    std::optional<Clock::time_point> out;
    for (const auto& [address, mark] : marks_) {
        const auto at = mark.since + deadline;
        if (at > now && (!out || at < *out)) out = at;
    }
    return out;
}

Pool build_pool(const std::vector<Candidate>& candidates, model::AllDownPolicy policy)
{
    std::vector<health::BackendHealth> active;
    std::vector<model::Backend> draining;
    for (const Candidate& c : candidates) {
        model::Backend b;
        b.address = c.entry.address;
        if (c.entry.port != 0) b.port = c.entry.port;
        b.weight = c.entry.weight;
        if (c.draining) {
            if (c.drain_expired) continue;  // its flows re-pick: the deadline is the operator's promise
            b.state = model::BackendState::kDraining;
            draining.push_back(b);
        } else {
            active.push_back(health::BackendHealth{b, c.healthy});
        }
    }
    health::EffectiveBackends eff = health::effective_backends(active, policy);
    Pool pool{std::move(eff.backends), eff.mode};
    pool.backends.insert(pool.backends.end(), draining.begin(), draining.end());
    return pool;
}

discovery::BackendSet static_set(const model::Service& service)
{
    discovery::BackendSet set;
    for (const model::Backend& b : service.backends) {
        discovery::BackendEntry e;
        e.address = b.address;
        e.port = b.port.value_or(service.vip.port);
        e.weight = b.weight;
        e.draining = b.state == model::BackendState::kDraining;
        set.backends.push_back(e);
    }
    std::sort(set.backends.begin(), set.backends.end());
    return set;
}

Result<BackendRef> parse_backend_ref(const std::string& text)
{
    if (auto bare = model::parse_ip_address(text)) return BackendRef{*bare, 0};
    auto endpoint = model::parse_endpoint(text, model::PortRule::kRequired);
    if (!endpoint) return make_error("backend '" + text + "': want ADDRESS or ADDRESS:PORT (" + endpoint.error() + ")");
    return BackendRef{endpoint->address, endpoint->port};
}

}  // namespace sluice::daemon
