// An immutable Maglev ring shared by reference between forwarding plans and
// forwarding snapshots, so a change that leaves a service's ring alone costs
// that service a reference count, not a copy of its M slots.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

extern "C" {
#include "abi/tables.h"
}

namespace sluice::core {

// A ring of backend ids (SLUICE_BACKEND_NONE: no backend), and the distinct
// ids it names, found once when the ring is made: a snapshot validates those
// (about one per backend) instead of every slot of every ring it holds.
// Copies share one body, which nothing changes after construction, so copies
// may be read and destroyed on any threads; workers read data() only, through
// a snapshot that holds a copy (and so keeps the body alive).
class SharedRing {
public:
    // The empty ring (size 0).
    SharedRing() = default;
    // Makes a ring of `slots`. Implicit, so tests and benchmarks may assign a
    // vector or a braced list to a ring; each conversion allocates a new body.
    SharedRing(std::vector<uint32_t> slots)  // NOLINT(google-explicit-constructor)
        : body_(std::make_shared<const Body>(Body{named_backends(slots), std::move(slots)}))
    {
    }
    SharedRing(std::initializer_list<uint32_t> slots) : SharedRing(std::vector<uint32_t>(slots)) {}

    size_t size() const { return slots().size(); }
    bool empty() const { return slots().empty(); }
    uint32_t operator[](size_t i) const { return slots()[i]; }
    const uint32_t* data() const { return slots().data(); }
    std::vector<uint32_t>::const_iterator begin() const { return slots().begin(); }
    std::vector<uint32_t>::const_iterator end() const { return slots().end(); }
    const std::vector<uint32_t>& slots() const { return body_ ? body_->slots : empty_slots(); }

    // The ids the ring names, ascending, each once, SLUICE_BACKEND_NONE left out.
    const std::vector<uint32_t>& backends() const { return body_ ? body_->backends : empty_slots(); }

    // True when both are the same body (a shared ring, not merely equal slots).
    bool shares_with(const SharedRing& other) const { return body_ != nullptr && body_ == other.body_; }
    // How many rings share this body (0 for the empty ring): tests of who keeps a ring alive.
    long use_count() const { return body_.use_count(); }

    // Equal slots (same body or not).
    friend bool operator==(const SharedRing& a, const SharedRing& b)
    {
        return a.body_ == b.body_ || a.slots() == b.slots();
    }

private:
    struct Body {
        std::vector<uint32_t> backends;  // named_backends(slots)
        std::vector<uint32_t> slots;     // the ring
    };

    static const std::vector<uint32_t>& empty_slots()
    {
        static const std::vector<uint32_t> empty;
        return empty;
    }

    // One pass and a bitmap over the valid id range; ids beyond it (which a
    // snapshot refuses) are sorted apart, so a corrupt ring cannot make the
    // bitmap huge.
    static std::vector<uint32_t> named_backends(const std::vector<uint32_t>& slots)
    {
        std::vector<bool> seen(SLUICE_MAX_BACKENDS, false);
        std::vector<uint32_t> out;
        std::vector<uint32_t> beyond;
        for (uint32_t id : slots) {
            if (id == SLUICE_BACKEND_NONE) continue;
            if (id >= SLUICE_MAX_BACKENDS) {
                beyond.push_back(id);
            } else if (!seen[id]) {
                seen[id] = true;
                out.push_back(id);
            }
        }
        std::sort(out.begin(), out.end());
        std::sort(beyond.begin(), beyond.end());
        beyond.erase(std::unique(beyond.begin(), beyond.end()), beyond.end());
        out.insert(out.end(), beyond.begin(), beyond.end());
        return out;
    }

    std::shared_ptr<const Body> body_;  // null: the empty ring
};

}  // namespace sluice::core
