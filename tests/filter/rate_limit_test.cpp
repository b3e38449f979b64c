// Token buckets against closed-form expectations: over a simulated period
// a saturated bucket admits rate × time + burst (±1 token), whatever the
// rate, burst and refill pattern; driven by a fake clock, no DPDK.
#include <gtest/gtest.h>

#include <random>

#include "filter/rate_limit.h"

namespace sluice::filter {
namespace {

constexpr uint64_t kStart = 5'000'000'000ull;  // arbitrary non-zero start time

// Offers packets for `seconds` of simulated time at uniformly random gaps
// of at most 2/(oversubscribe × rate), and returns how many the bucket
// admitted. With oversubscribe >= 2 and burst >= 2 the bucket never sits
// full after the first burst, so nothing earned is lost to the brim and
// the count must be exactly rate × time + burst (±1 for the last token).
uint64_t run_saturated(uint64_t rate, uint64_t burst, uint64_t seconds, double oversubscribe, uint64_t seed)
{
    TokenBucket b;
    bucket_configure(b, rate, burst, kStart);
    std::mt19937_64 rng(seed);
    const uint64_t max_gap = static_cast<uint64_t>(2e9 / (static_cast<double>(rate) * oversubscribe));
    std::uniform_int_distribution<uint64_t> gap(0, max_gap);
    const uint64_t end = kStart + seconds * kNsPerSec;
    uint64_t admitted = 0;
    for (uint64_t now = kStart; now <= end; now += gap(rng)) {
        admitted += bucket_take(b, now) ? 1 : 0;
    }
    // What was earned up to `end` but not yet taken: take it at `end` so the
    // count covers exactly [start, end].
    while (bucket_take(b, end)) {
        ++admitted;
    }
    return admitted;
}

// Proves long-run exactness: over 10 simulated seconds of oversubscribed
// traffic at random gaps the admitted count is rate × 10 + burst within one
// token, for rates that do and do not divide 1e9, shallow and deep buckets.
TEST(TokenBucket, AdmitsRateTimesTimePlusBurst)
{
    struct Case {
        uint64_t rate;
        uint64_t burst;
        double oversubscribe;
    } cases[] = {
        {1, 2, 20.0},      {3, 2, 10.0},       {7, 5, 4.0},            {1000, 2, 2.0},
        {1000, 100, 2.0},  {999'983, 10, 2.0}, {1'000'000, 1000, 2.0}, {123'457, 123'457, 3.0},
        {3'333'333, 64, 2.0},
    };
    for (const Case& c : cases) {
        const uint64_t expected = c.rate * 10 + c.burst;
        const uint64_t admitted = run_saturated(c.rate, c.burst, 10, c.oversubscribe, c.rate);
        EXPECT_LE(admitted, expected + 1) << "rate " << c.rate << " burst " << c.burst;
        EXPECT_GE(admitted + 1, expected) << "rate " << c.rate << " burst " << c.burst;
    }
}

// Proves the exact timing of every token, for a greedy sender: after the
// burst is spent at t0, token k arrives at exactly t0 + ceil(k × 1e9 / rate)
// ns — a take 1 ns earlier fails, a take then succeeds — for 10 s worth of
// tokens, including burst 1 (where the bucket is full at every take).
TEST(TokenBucket, GreedySenderGetsEveryTokenOnTime)
{
    struct Case {
        uint64_t rate;
        uint64_t burst;
    } cases[] = {{1, 1}, {3, 1}, {7, 3}, {1000, 1}, {999'983, 1}, {1'000'000, 5}, {12'345, 2}};
    for (const Case& c : cases) {
        TokenBucket b;
        bucket_configure(b, c.rate, c.burst, kStart);
        uint64_t admitted = 0;
        while (bucket_take(b, kStart)) {
            ++admitted;
        }
        ASSERT_EQ(admitted, c.burst) << "rate " << c.rate;
        for (uint64_t k = 1; k <= c.rate * 10; ++k) {
            const uint64_t due = kStart + (k * kNsPerSec + c.rate - 1) / c.rate;
            ASSERT_FALSE(bucket_take(b, due - 1)) << "rate " << c.rate << " token " << k << " early";
            ASSERT_TRUE(bucket_take(b, due)) << "rate " << c.rate << " token " << k << " late";
            ++admitted;
        }
        EXPECT_EQ(admitted, c.rate * 10 + c.burst);
    }
}

// Proves a refill on every nanosecond-scale call loses nothing: the
// remainder is carried (a version that drops it admits far less here).
TEST(TokenBucket, FrequentRefillsLoseNothing)
{
    TokenBucket b;
    bucket_configure(b, 7, 1, kStart);
    ASSERT_TRUE(bucket_take(b, kStart));
    uint64_t admitted = 0;
    // One call every 997 ns for 10 s: each call earns 7 × 1024 × 997 / 1e9
    // units, far less than one.
    const uint64_t end = kStart + 10 * kNsPerSec;
    for (uint64_t now = kStart; now <= end; now += 997) {
        admitted += bucket_take(b, now) ? 1 : 0;
    }
    EXPECT_GE(admitted + 1, 70u);
    EXPECT_LE(admitted, 71u);
}

// Proves the burst: an idle bucket admits exactly `burst` back-to-back
// packets at one instant, then nothing until time passes; the partial
// token kept above the brim completes after 1/1024 of a token's time, and
// after that each token takes exactly 1/rate.
TEST(TokenBucket, BurstThenRefill)
{
    TokenBucket b;
    bucket_configure(b, 1000, 50, kStart);
    const uint64_t later = kStart + 3600 * kNsPerSec;  // idle an hour: full, not more
    unsigned taken = 0;
    while (bucket_take(b, later)) {
        ++taken;
    }
    EXPECT_EQ(taken, 50u);
    EXPECT_FALSE(bucket_take(b, later));
    // The partial token (1023/1024) needs one more unit: 1e9 / 1,024,000 ns
    // = 976.6 ns.
    EXPECT_FALSE(bucket_take(b, later + 976));
    EXPECT_TRUE(bucket_take(b, later + 977));
    // Then 10 ms at 1000/s earns exactly 10 tokens, and 1 ms one more.
    const uint64_t t = later + 977;
    unsigned refilled = 0;
    while (bucket_take(b, t + 10'000'000)) {
        ++refilled;
    }
    EXPECT_EQ(refilled, 10u);
    EXPECT_FALSE(bucket_take(b, t + 10'999'999));
    EXPECT_TRUE(bucket_take(b, t + 11'000'000));
}

// Proves a clock that goes backwards (TSC skew between calls, a caller bug)
// earns nothing and breaks nothing.
TEST(TokenBucket, ClockGoingBackwardsEarnsNothing)
{
    TokenBucket b;
    bucket_configure(b, 100, 1, kStart);
    EXPECT_TRUE(bucket_take(b, kStart));
    EXPECT_FALSE(bucket_take(b, kStart - 1'000'000'000));
    EXPECT_FALSE(bucket_take(b, kStart + 9'999'999));
    EXPECT_TRUE(bucket_take(b, kStart + 10'000'000));
}

// Proves rate 0 means unlimited and that the largest accepted rate and
// burst stay exact after a long idle gap (the 128-bit refill path).
TEST(TokenBucket, UnlimitedAndLargeValues)
{
    TokenBucket unlimited;
    bucket_configure(unlimited, 0, 0, kStart);
    for (int i = 0; i < 1000; ++i) {
        EXPECT_TRUE(bucket_take(unlimited, kStart));
    }
    TokenBucket big;
    bucket_configure(big, 10'000'000'000ull, 10'000'000'000ull, kStart);
    big.bucket.tokens = 0;
    // 0.5 s at 1e10/s = 5e9 tokens; the 64-bit product overflows here.
    bucket_refill(big, kStart + kNsPerSec / 2);
    EXPECT_EQ(big.bucket.tokens >> kTokenShift, 5'000'000'000ull);
    bucket_refill(big, kStart + 100 * kNsPerSec);
    EXPECT_EQ(big.bucket.tokens >> kTokenShift, 10'000'000'000ull);  // burst whole tokens
}

// Proves the per-worker shares sum to the configured total (so N workers
// together admit the configured rate) and never round a limit to 0, which
// would mean "unlimited".
TEST(WorkerShare, SumsToTotalAndNeverZero)
{
    for (const uint64_t total : {1ull, 2ull, 7ull, 1000ull, 1001ull, 999'983ull}) {
        for (const uint32_t workers : {1u, 2u, 3u, 8u}) {
            uint64_t sum = 0;
            for (uint32_t w = 0; w < workers; ++w) {
                EXPECT_GE(worker_share(total, w, workers), 1u);
                sum += worker_share(total, w, workers);
            }
            if (total >= workers) {
                EXPECT_EQ(sum, total) << total << " over " << workers;
            } else {
                EXPECT_EQ(sum, workers) << "each worker gets at least one";
            }
        }
    }
    EXPECT_EQ(worker_share(0, 0, 4), 0u);
}

// Proves a worker's limiter keeps spent tokens across a reload with the
// same limits and resets only the VIPs whose limits changed.
TEST(WorkerRateLimiter, SyncKeepsStateAcrossReloads)
{
    WorkerRateLimiter limiter(1, 2);
    RateLimits limits;
    limits.vip[3] = VipRateLimit{10, 4, 0, 0};   // worker 1 of 2: 5/s, burst 2
    limits.vip[4] = VipRateLimit{100, 10, 0, 0}; // 50/s, burst 5
    limiter.sync(limits, 1, kStart);
    EXPECT_TRUE(limiter.take_packet(3, kStart));
    EXPECT_TRUE(limiter.take_packet(3, kStart));
    EXPECT_FALSE(limiter.take_packet(3, kStart));
    EXPECT_TRUE(limiter.take_packet(4, kStart));
    EXPECT_TRUE(limiter.take_new_flow(3, kStart));  // no new-flow limit: unlimited
    // Same limits, new generation: VIP 3 stays empty.
    limiter.sync(limits, 2, kStart);
    EXPECT_FALSE(limiter.take_packet(3, kStart));
    // VIP 4's limit changes: its bucket restarts full at the new depth.
    limits.vip[4] = VipRateLimit{100, 20, 0, 0};
    limiter.sync(limits, 3, kStart);
    EXPECT_FALSE(limiter.take_packet(3, kStart));
    unsigned taken = 0;
    while (limiter.take_packet(4, kStart)) {
        ++taken;
    }
    EXPECT_EQ(taken, 10u);
}

// Proves the rule the XDP loader mirrors for a vip_id that changes hands
// (tests/ebpf/xdp_rate_limit_sync_test.cpp): a removed VIP's snapshot
// carries zero limits for its id, so a service that gets the id back, even
// with the same limits, starts full rather than inheriting spent tokens.
TEST(WorkerRateLimiter, SyncRestartsAVipIdRemovedAndReused)
{
    WorkerRateLimiter limiter(0, 1);
    RateLimits limits;
    limits.vip[3] = VipRateLimit{1, 2, 0, 0};
    limiter.sync(limits, 1, kStart);
    EXPECT_TRUE(limiter.take_packet(3, kStart));
    EXPECT_TRUE(limiter.take_packet(3, kStart));
    EXPECT_FALSE(limiter.take_packet(3, kStart));
    RateLimits removed;  // the VIP gone: its id has no limits
    limiter.sync(removed, 2, kStart);
    limiter.sync(limits, 3, kStart);  // the id back, the same limits
    EXPECT_TRUE(limiter.take_packet(3, kStart));
    EXPECT_TRUE(limiter.take_packet(3, kStart));
    EXPECT_FALSE(limiter.take_packet(3, kStart));
}

}  // namespace
}  // namespace sluice::filter
