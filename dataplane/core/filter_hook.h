// The filter hook of the core pipeline: what process_burst() tells a filter
// about a VIP packet, and the "no filter" policy the plain core uses. The
// filter is a compile-time parameter of process_burst() (STYLE.md: one
// templated worker function, thin instantiations), so the core stays
// DPDK-free and a pipeline without filters pays nothing for the hook.
//
// Where the hook runs: after the packet is classified (its VIP is known),
// before the backend is picked and before anything is encapsulated. For a
// packet that goes through the connection table, inside the table's lookup,
// after it is known whether the packet is a hit and before any entry is
// made or refreshed, so a filtered packet leaves the table untouched.
#pragma once

#include <cstdint>

#include "core/packet.h"

extern "C" {
#include "abi/drop_reason.h"
#include "abi/types.h"
}

namespace sluice::core {

// What a filter returns for a packet it lets through; anything else is the
// sluice_drop_reason to count.
inline constexpr uint8_t kFilterPass = 0xFF;
static_assert(SLUICE_DROP_MAX < kFilterPass, "drop reasons must not collide with kFilterPass");

// One VIP packet as the filters see it. Pointers into the packet, valid for
// the call only.
struct FilterQuery {
    const union sluice_addr* src;  // client address, network order (IPv4 zero-padded)
    const uint8_t* payload;        // L4 payload: after the TCP header (data offset) or UDP header
    uint32_t payload_len;          // 0 for fragments and ICMP errors (not scanned, see README)
    uint16_t vip_id;               // the service the packet was classified to
    uint8_t family;                // SLUICE_FAMILY_IPV4 or _IPV6
    uint8_t new_flow;              // 1: the packet would write a connection-table entry (not a hit)
};

// Filter policy concept, one instance per worker:
//   static constexpr bool kEnabled;          // false: process_burst skips the hook entirely
//   uint8_t check(const FilterQuery& q);     // kFilterPass, or the drop reason
// check() runs on the worker's packet path: no allocation, lock, log or
// system call. It may keep per-worker state (token buckets).
struct NoFilter {
    static constexpr bool kEnabled = false;
    SLUICE_ALWAYS_INLINE uint8_t check(const FilterQuery&) { return kFilterPass; }
};

}  // namespace sluice::core
