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
// The bucket arithmetic itself (exact to within one token, sub-unit
// remainder carried) is core/token_bucket.h, shared with the worker's
// ICMP-error limit.
#pragma once

#include <array>
#include <cstdint>

#include "core/token_bucket.h"

extern "C" {
#include "abi/tables.h"
}

namespace sluice::filter {

using core::bucket_configure;
using core::bucket_refill;
using core::bucket_take;
using core::kMaxBurst;
using core::kMaxRatePerSec;
using core::kNsPerSec;
using core::kTokenShift;
using core::TokenBucket;

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
