// Stable dense id assignment with a reuse quarantine; see id_allocator.h.
#include "driver/id_allocator.h"

#include <string_view>
#include <unordered_set>

namespace sluice::driver {

StableIdAllocator::StableIdAllocator(uint32_t limit, std::chrono::milliseconds quarantine, Clock clock)
    : limit_(limit), quarantine_(quarantine), clock_(std::move(clock))
{
}

Result<std::vector<uint32_t>> StableIdAllocator::assign(const std::vector<std::string>& keys)
{
    // Checks and choices first, changes last, so an error leaves the
    // allocator as it was without copying it: a plan of 100 000 keys where
    // one changed must not rebuild 100 000 map nodes.
    const TimePoint now = clock_();
    std::unordered_set<std::string_view> wanted;
    wanted.reserve(keys.size());
    for (const auto& key : keys) {
        if (!wanted.insert(key).second) return make_error("duplicate id key '" + key + "'");
    }
    auto quarantined = [&](const Released& r) { return r.until > now; };
    // Taken: every live id (kept, or released now and so quarantined) and
    // every id still in quarantine.
    std::vector<bool> taken(limit_, false);
    for (const auto& [key, id] : live_) taken[id] = true;
    for (const auto& [key, r] : released_) {
        if (quarantined(r)) taken[r.id] = true;
    }
    // New keys get the lowest free ids, in the order given.
    std::vector<std::pair<const std::string*, uint32_t>> fresh;
    uint32_t next = 0;
    for (const auto& key : keys) {
        if (live_.count(key) != 0) continue;
        if (auto r = released_.find(key); r != released_.end() && quarantined(r->second)) continue;
        while (next < limit_ && taken[next]) ++next;
        if (next >= limit_) return make_error("out of ids: " + std::to_string(limit_) + " in use or quarantined");
        taken[next] = true;
        fresh.emplace_back(&key, next);
    }

    std::erase_if(released_, [&](const auto& r) { return !quarantined(r.second); });
    // Keys that were live and are not any more start their quarantine now.
    for (auto it = live_.begin(); it != live_.end();) {
        if (wanted.count(it->first) != 0) {
            ++it;
            continue;
        }
        released_[it->first] = Released{it->second, now + quarantine_};
        it = live_.erase(it);
    }
    // Keys back within their quarantine get their old id again.
    for (const auto& key : keys) {
        if (auto r = released_.find(key); r != released_.end() && live_.count(key) == 0) {
            live_.emplace(key, r->second.id);
            released_.erase(r);
        }
    }
    for (const auto& [key, id] : fresh) live_.emplace(*key, id);

    std::vector<uint32_t> out;
    out.reserve(keys.size());
    for (const auto& key : keys) out.push_back(live_.at(key));
    return out;
}

}  // namespace sluice::driver
