// Exact `a % d` for 32-bit operands by a precomputed reciprocal (Lemire,
// Kaser, Kurz, "Faster Remainder by Direct Computation", 2019): two
// multiplies instead of a 20-40 cycle divide per packet on the Maglev
// lookup. Exact for every 32-bit `a` and `d` >= 1, so the slot equals
// `sluice_flow_hash(key) % ring_size` as the XDP plane computes it.
#pragma once

#include <cstdint>

#include "core/packet.h"

namespace sluice::core {

// Precomputed for divisor `d`: ceil(2^64 / d) (wraps to 0 for d == 1,
// which still yields the right remainder, 0).
constexpr uint64_t fastmod_reciprocal(uint32_t d) { return UINT64_C(0xFFFFFFFFFFFFFFFF) / d + 1; }

SLUICE_ALWAYS_INLINE constexpr uint32_t fastmod(uint32_t a, uint64_t reciprocal, uint32_t d)
{
    const uint64_t low = reciprocal * a;
    return static_cast<uint32_t>((static_cast<unsigned __int128>(low) * d) >> 64);
}

}  // namespace sluice::core
