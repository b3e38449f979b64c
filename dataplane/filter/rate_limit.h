// Per-VIP token buckets (packets/s and new flows/s, each with a burst) on
// the ABI's struct sluice_token_bucket, in whole-header, DPDK-free code so
// tests drive it with a fake clock.
//
// Per-worker split: each worker lcore owns its own buckets and enforces its
// share of the configured rate (rate/N, the remainder spread over the first
// workers so the shares sum to the rate; the same for the burst). Workers
// never write a shared cache line, so a limit costs a few arithmetic
// instructions and no atomics. The price: the limit is exact only when RSS
// spreads a VIP's traffic evenly. A VIP whose traffic lands on one queue is
// held to rate/N, never above the configured rate; a limit is an upper
// bound that errs on the strict side. (A shared atomic bucket would be
// exact but puts every packet of a hot VIP on one contended cache line.)
// A share of a non-zero rate or burst is at least 1, so with fewer tokens
// than workers the sum may exceed the configured value by up to N-1.
//
// Exactness: tokens are kept in 1/1024 units (the ABI's choice) and the
// refill carries the sub-unit remainder forward (`carry` below), so over any
// interval a saturated bucket admits rate × time + burst, to within one
// token, however often it is refilled. For a greedy sender token k after
// the burst arrives at exactly ceil(k × 1e9 / rate) ns.
#pragma once

#include <array>
#include <cstdint>

extern "C" {
#include "abi/tables.h"
}

namespace sluice::filter {

inline constexpr uint64_t kNsPerSec = 1'000'000'000ull;
inline constexpr unsigned kTokenShift = 10;  // 1 token = 1024 units (abi/tables.h)
// Limits on configured values (FilterSet::build refuses more), so rate ×
// 1024 and burst × 1024 fit in 64 bits with room to spare. About 1.1e12:
// above the config loader's own cap of 1e10.
inline constexpr uint64_t kMaxRatePerSec = 1ull << 40;
inline constexpr uint64_t kMaxBurst = 1ull << 40;

// A token bucket: the ABI layout plus the sub-unit refill remainder, which
// the ABI struct has no field for.
struct TokenBucket {
    sluice_token_bucket state{};  // tokens in 1/1024 units, last refill time, rate, burst
    uint64_t carry = 0;           // (elapsed_ns × rate × 1024) mod 1e9 not yet credited
};

// Configures a bucket: `rate_per_sec` whole tokens per second (0 = no
// limit), `burst` tokens deep; starts full at `now_ns`. Owner only.
inline void bucket_configure(TokenBucket& b, uint64_t rate_per_sec, uint64_t burst, uint64_t now_ns)
{
    b.state.rate_per_sec = rate_per_sec;
    b.state.burst = burst;
    b.state.tokens = burst << kTokenShift;
    b.state.last_ns = now_ns;
    b.carry = 0;
}

// Adds the tokens earned since the last refill. Owner only (the worker
// lcore that owns the bucket); no allocation, lock or syscall. A clock that
// goes backwards earns nothing.
inline void bucket_refill(TokenBucket& b, uint64_t now_ns)
{
    sluice_token_bucket& s = b.state;
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
        __builtin_add_overflow(scaled, b.carry, &scaled)) [[unlikely]] {
        const unsigned __int128 wide =
            static_cast<unsigned __int128>(elapsed) * (s.rate_per_sec << kTokenShift) + b.carry;
        if (wide / kNsPerSec >= room) {
            s.tokens = brim;
            b.carry = 0;
        } else {
            s.tokens += static_cast<uint64_t>(wide / kNsPerSec);
            b.carry = static_cast<uint64_t>(wide % kNsPerSec);
        }
        return;
    }
    const uint64_t earned = scaled / kNsPerSec;
    if (earned >= room) {
        s.tokens = brim;
        b.carry = 0;
    } else {
        s.tokens += earned;
        b.carry = scaled % kNsPerSec;
    }
}

// Refills, then takes one token if there is one. Returns false (the caller
// drops and counts) when the bucket is empty. A rate of 0 means unlimited.
// Owner only; packet path: no allocation, lock or syscall.
inline bool bucket_take(TokenBucket& b, uint64_t now_ns)
{
    if (b.state.rate_per_sec == 0) {
        return true;
    }
    bucket_refill(b, now_ns);
    constexpr uint64_t kOne = 1ull << kTokenShift;
    if (b.state.tokens < kOne) {
        return false;
    }
    b.state.tokens -= kOne;
    return true;
}

// Worker `worker` of `workers`'s share of a configured rate or burst (see
// the file comment). Pure; any thread.
inline uint64_t worker_share(uint64_t total, uint32_t worker, uint32_t workers)
{
    if (total == 0 || workers == 0) {
        return total;
    }
    const uint64_t share = total / workers + (worker < total % workers ? 1 : 0);
    return share == 0 ? 1 : share;
}

// One VIP's configured limits (totals for the node; 0 rate = unlimited).
struct VipRateLimit {
    uint64_t packets_per_sec = 0;
    uint64_t packets_burst = 0;
    uint64_t new_flows_per_sec = 0;
    uint64_t new_flows_burst = 0;

    friend bool operator==(const VipRateLimit&, const VipRateLimit&) = default;
};

// The limits of every VIP, dense by vip_id: part of an immutable snapshot.
struct RateLimits {
    std::array<VipRateLimit, SLUICE_MAX_VIPS> vip{};
};

// One worker's buckets for every VIP. Lives with the worker (not in a
// snapshot), so a config reload keeps the tokens already spent: the worker
// calls sync() with each new snapshot's limits and only the VIPs whose
// limits changed are reset. Written only by its worker lcore; cache aligned
// so neighbours never share a line.
class alignas(64) WorkerRateLimiter {
public:
    // Owner worker, or the control thread before the worker starts.
    WorkerRateLimiter(uint32_t worker, uint32_t workers) : worker_(worker), workers_(workers) {}

    // Owner worker, when the snapshot's `generation` differs from the last
    // one seen (cheap compare otherwise): reconfigures the buckets whose
    // limits changed, full at `now_ns`. No allocation, lock or syscall.
    void sync(const RateLimits& limits, uint64_t generation, uint64_t now_ns)
    {
        if (generation == generation_) {
            return;
        }
        generation_ = generation;
        for (uint32_t v = 0; v < SLUICE_MAX_VIPS; ++v) {
            const VipRateLimit& want = limits.vip[v];
            if (want == applied_[v]) {
                continue;
            }
            applied_[v] = want;
            bucket_configure(packets_[v], worker_share(want.packets_per_sec, worker_, workers_),
                             worker_share(want.packets_burst, worker_, workers_), now_ns);
            bucket_configure(new_flows_[v], worker_share(want.new_flows_per_sec, worker_, workers_),
                             worker_share(want.new_flows_burst, worker_, workers_), now_ns);
        }
    }

    // Owner worker, packet path: one packet to `vip_id` (< SLUICE_MAX_VIPS).
    bool take_packet(uint32_t vip_id, uint64_t now_ns) { return bucket_take(packets_[vip_id], now_ns); }
    // Owner worker, packet path: one new flow to `vip_id`.
    bool take_new_flow(uint32_t vip_id, uint64_t now_ns) { return bucket_take(new_flows_[vip_id], now_ns); }

    // Any thread, for tests and diagnostics (racy but harmless read).
    const TokenBucket& packet_bucket(uint32_t vip_id) const { return packets_[vip_id]; }

private:
    uint32_t worker_;
    uint32_t workers_;
    uint64_t generation_ = 0;  // snapshot generations start at 1
    std::array<VipRateLimit, SLUICE_MAX_VIPS> applied_{};
    std::array<TokenBucket, SLUICE_MAX_VIPS> packets_{};
    std::array<TokenBucket, SLUICE_MAX_VIPS> new_flows_{};
};

}  // namespace sluice::filter
