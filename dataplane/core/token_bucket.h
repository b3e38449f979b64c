// The token bucket both the per-VIP rate limits (dataplane/filter/) and the
// worker's ICMP-error limit (core/pipeline_impl.h) use: one arithmetic, on
// the ABI's struct sluice_token_bucket, whole-header and DPDK-free so tests
// drive it with a fake clock. The XDP plane's twin is ebpf/xdp/filters.h
// xlb_token_bucket_take, on the same struct sluice_carried_bucket with the
// remainder in the same units: the same tokens and carry for the same
// refill times.
//
// Exactness: tokens are kept in 1/1024 units (the ABI's choice) and the
// refill carries the sub-unit remainder forward (`carry`), so over any
// interval a saturated bucket admits rate × time + burst, to within one
// token, however often it is refilled. For a greedy sender token k after
// the burst arrives at exactly ceil(k × 1e9 / rate) ns.
#pragma once

#include <cstdint>

extern "C" {
#include "abi/tables.h"
}

namespace sluice::core {

inline constexpr uint64_t kNsPerSec = 1'000'000'000ull;
inline constexpr unsigned kTokenShift = 10;  // 1 token = 1024 units (abi/tables.h)
// Limits on configured values (FilterSet::build refuses more; the ICMP
// limit's config keys stop far below), so rate × 1024 and burst × 1024 fit
// in 64 bits with room to spare. About 1.1e12: above the config loader's
// own cap of 1e10.
inline constexpr uint64_t kMaxRatePerSec = 1ull << 40;
inline constexpr uint64_t kMaxBurst = 1ull << 40;

// A token bucket: the ABI's tokens (1/1024 units), last refill, rate and
// burst, plus the sub-unit refill remainder. `carry` is in the ABI's units
// (1/512 of the (elapsed_ns × rate × 1024) mod 1e9 this arithmetic works
// in, which is always a multiple of 512), so an XDP bucket and a DPDK one
// hold the same bytes for the same history.
using TokenBucket = sluice_carried_bucket;
inline constexpr uint64_t kCarryUnit = 512;  // 1e9 / 1953125: abi/tables.h's carry unit

// Configures a bucket: `rate_per_sec` whole tokens per second (0 = no
// limit), `burst` tokens deep; starts full at `now_ns`. Owner only.
inline void bucket_configure(TokenBucket& b, uint64_t rate_per_sec, uint64_t burst, uint64_t now_ns)
{
    b.bucket.rate_per_sec = rate_per_sec;
    b.bucket.burst = burst;
    b.bucket.tokens = burst << kTokenShift;
    b.bucket.last_ns = now_ns;
    b.carry = 0;
}

// Adds the tokens earned since the last refill. Owner only (the worker
// lcore that owns the bucket); no allocation, lock or syscall. A clock that
// goes backwards earns nothing.
inline void bucket_refill(TokenBucket& b, uint64_t now_ns)
{
    sluice_token_bucket& s = b.bucket;
    if (now_ns <= s.last_ns) {
        return;
    }
    const uint64_t elapsed = now_ns - s.last_ns;
    s.last_ns = now_ns;
    // The brim is `burst` whole tokens plus a partial one (1023 units). The
    // partial token never lets more than `burst` packets through at one
    // instant, but without it a shallow bucket that fills between two
    // nanosecond ticks would drop what it earns until the next take, and a
    // greedy sender at burst 1 would fall measurably short of the rate.
    const uint64_t brim = (s.burst << kTokenShift) + ((1ull << kTokenShift) - 1);
    if (s.tokens >= brim) {
        b.carry = 0;  // earned while brim-full: lost, remainder too
        return;
    }
    // units earned = (elapsed × rate × 1024 + carry) / 1e9, exactly. The
    // 64-bit product overflows only after a long idle gap at a high rate;
    // that rare case takes the 128-bit path instead of assuming "full", so
    // deep buckets (up to kMaxBurst) stay exact too.
    const uint64_t room = brim - s.tokens;
    uint64_t scaled;
    if (__builtin_mul_overflow(elapsed, s.rate_per_sec << kTokenShift, &scaled) ||
        __builtin_add_overflow(scaled, b.carry * kCarryUnit, &scaled)) [[unlikely]] {
        const unsigned __int128 wide =
            static_cast<unsigned __int128>(elapsed) * (s.rate_per_sec << kTokenShift) + b.carry * kCarryUnit;
        if (wide / kNsPerSec >= room) {
            s.tokens = brim;
            b.carry = 0;
        } else {
            s.tokens += static_cast<uint64_t>(wide / kNsPerSec);
            b.carry = static_cast<uint64_t>(wide % kNsPerSec) / kCarryUnit;
        }
        return;
    }
    const uint64_t earned = scaled / kNsPerSec;
    if (earned >= room) {
        s.tokens = brim;
        b.carry = 0;
    } else {
        s.tokens += earned;
        b.carry = scaled % kNsPerSec / kCarryUnit;
    }
}

// Refills, then takes one token if there is one. Returns false (the caller
// drops and counts) when the bucket is empty. A rate of 0 means unlimited.
// Owner only; packet path: no allocation, lock or syscall.
inline bool bucket_take(TokenBucket& b, uint64_t now_ns)
{
    if (b.bucket.rate_per_sec == 0) {
        return true;
    }
    bucket_refill(b, now_ns);
    constexpr uint64_t kOne = 1ull << kTokenShift;
    if (b.bucket.tokens < kOne) {
        return false;
    }
    b.bucket.tokens -= kOne;
    return true;
}

}  // namespace sluice::core
