// Pool rules: drain tracking and the all-down policy (see pool.h).
#include "daemon/pool.h"

#include <algorithm>

namespace sluice::daemon {

bool DrainTracker::update(const std::vector<discovery::BackendEntry>& desired,
                          const std::set<model::IpAddress>& api_drains, std::chrono::milliseconds deadline,
                          Clock::time_point now)
{
    std::map<model::IpAddress, Mark> next;
    std::map<model::IpAddress, discovery::BackendEntry> known;
    for (const discovery::BackendEntry& e : desired) {
        known[e.address] = e;
        const char* source = api_drains.count(e.address) ? kDrainApi
                             : e.draining                ? kDrainDiscovery
                             : e.weight == 0             ? kDrainWeight
                                                         : nullptr;
        if (source == nullptr) continue;
        const auto old = marks_.find(e.address);
        next[e.address] = Mark{source, old != marks_.end() ? old->second.since : now, std::nullopt};
    }
    bool changed = false;
    // Departed: those that left since the last update, and those still
    // within their deadline. A departed backend that came back is in `known`.
    std::map<model::IpAddress, Mark> departed;
    for (const auto& [address, mark] : marks_) {
        if (mark.departed) departed[address] = mark;
    }
    for (const auto& [address, entry] : known_) {
        if (known.count(address) || departed.count(address)) continue;
        const auto old = marks_.find(address);  // an earlier drain keeps its start: no new grace period
        departed[address] = Mark{kDrainRemoved, old != marks_.end() ? old->second.since : now, entry};
        changed = true;
    }
    for (auto& [address, mark] : departed) {
        if (known.count(address)) {
            changed = true;  // came back
        } else if (now >= mark.since + deadline) {
            changed = true;  // past the deadline: forgotten
        } else {
            next[address] = std::move(mark);
        }
    }
    marks_ = std::move(next);
    known_ = std::move(known);
    return changed;
}

std::vector<discovery::BackendEntry> DrainTracker::departed() const
{
    std::vector<discovery::BackendEntry> out;
    for (const auto& [address, mark] : marks_) {
        if (mark.departed) out.push_back(*mark.departed);
    }
    return out;
}

void DrainTracker::forget_departed(const model::IpAddress& address)
{
    const auto it = marks_.find(address);
    if (it != marks_.end() && it->second.departed) marks_.erase(it);
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
