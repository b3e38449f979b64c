// Stable dense id assignment with a reuse quarantine; see id_allocator.h.
#include "driver/id_allocator.h"

#include <set>

namespace sluice::driver {

StableIdAllocator::StableIdAllocator(uint32_t limit, std::chrono::milliseconds quarantine, Clock clock)
    : limit_(limit), quarantine_(quarantine), clock_(std::move(clock))
{
}

Result<std::vector<uint32_t>> StableIdAllocator::assign(const std::vector<std::string>& keys)
{
    const TimePoint now = clock_();
    // Work on copies so a failure leaves the allocator as it was.
    std::map<std::string, uint32_t> live;
    std::map<std::string, Released> released = released_;
    for (auto it = released.begin(); it != released.end();) {
        it = it->second.until <= now ? released.erase(it) : std::next(it);
    }

    std::set<std::string> seen;
    for (const auto& key : keys) {
        if (!seen.insert(key).second) return make_error("duplicate id key '" + key + "'");
    }
    std::set<uint32_t> taken;
    for (const auto& [key, r] : released) taken.insert(r.id);
    // First pass: keys that already own an id, live or quarantined.
    for (const auto& key : keys) {
        if (auto l = live_.find(key); l != live_.end()) {
            live.emplace(key, l->second);
        } else if (auto r = released.find(key); r != released.end()) {
            live.emplace(key, r->second.id);
            released.erase(r);
        } else {
            continue;
        }
        taken.insert(live.at(key));
    }
    // Keys that were live and are not any more start their quarantine now.
    for (const auto& [key, id] : live_) {
        if (live.count(key) == 0) {
            released[key] = Released{id, now + quarantine_};
            taken.insert(id);
        }
    }
    // Second pass: new keys get the lowest free ids, in the order given.
    uint32_t next = 0;
    std::vector<uint32_t> out;
    out.reserve(keys.size());
    for (const auto& key : keys) {
        auto l = live.find(key);
        if (l == live.end()) {
            while (next < limit_ && taken.count(next) != 0) ++next;
            if (next >= limit_) {
                return make_error("out of ids: " + std::to_string(limit_) + " in use or quarantined");
            }
            l = live.emplace(key, next).first;
            taken.insert(next);
        }
        out.push_back(l->second);
    }
    live_ = std::move(live);
    released_ = std::move(released);
    return out;
}

}  // namespace sluice::driver
