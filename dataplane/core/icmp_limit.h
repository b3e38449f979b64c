// The worker's limit on the ICMP errors it generates (today: "fragmentation
// needed" / "packet too big" in place of an oversized packet). RFC 4443
// §2.4(f) requires an IPv6 node to rate-limit the ICMPv6 errors it
// originates, RFC 1812 §4.3.2.8 asks the same of an IPv4 router: without a
// limit a flood of oversized DF packets turns every node into a reflector
// and spends worker cycles building replies. A token bucket per worker
// (core/token_bucket.h, the arithmetic of the per-VIP limits), in the
// worker's own state: no sharing, no atomics. The XDP plane keeps one per
// CPU with the same arithmetic (ebpf/xdp/icmp.h).
#pragma once

#include <cstdint>

#include "core/token_bucket.h"

namespace sluice::core {

// The configured limit, per worker (not split between workers: each worker
// may send `per_sec` errors per second after a burst of `burst`). Part of
// the forwarding snapshot, so a reload that changes it takes effect at the
// next oversized packet. per_sec 0: unlimited.
struct IcmpErrorLimit {
    uint64_t per_sec = 0;
    uint64_t burst = 0;

    friend bool operator==(const IcmpErrorLimit&, const IcmpErrorLimit&) = default;
};

// The defaults of dataplane.icmp_errors_per_sec / _burst: Linux's
// icmp_msgs_per_sec and icmp_msgs_burst (per worker here, node-wide there).
inline constexpr IcmpErrorLimit kDefaultIcmpErrorLimit{1000, 50};
// The largest values the builder accepts (abi/tables.h, as the config keys
// and the XDP loader).
inline constexpr uint64_t kMaxIcmpErrorsPerSec = SLUICE_ICMP_ERRORS_MAX;
inline constexpr uint64_t kMaxIcmpErrorsBurst = SLUICE_ICMP_ERRORS_MAX;

// One worker's bucket. Written only by its worker, and only on the path of
// a packet that would exceed the MTU, so the common packet never touches it.
class IcmpErrorLimiter {
public:
    // `clock_hz`: ticks per second of the pipeline's `now` (TSC ticks in the
    // runtime; nanoseconds, the default, in tests).
    explicit IcmpErrorLimiter(uint64_t clock_hz = kNsPerSec) : clock_hz_(clock_hz == 0 ? kNsPerSec : clock_hz) {}

    // Owner worker: whether one more ICMP error may be sent at `now` (the
    // pipeline's clock) under `limit`. A limit different from the one the
    // bucket was set up for (first use, or a reload changed it) resets the
    // bucket, full, at `now`, as a changed per-VIP limit does. No
    // allocation, lock or syscall.
    bool take(const IcmpErrorLimit& limit, uint64_t now)
    {
        const uint64_t now_ns = to_ns(now);
        if (bucket_.bucket.rate_per_sec != limit.per_sec || bucket_.bucket.burst != limit.burst)
            bucket_configure(bucket_, limit.per_sec, limit.burst, now_ns);
        return bucket_take(bucket_, now_ns);
    }

    // Any thread, for tests and diagnostics (racy but harmless read).
    const TokenBucket& bucket() const { return bucket_; }

private:
    uint64_t to_ns(uint64_t now) const
    {
        if (clock_hz_ == kNsPerSec) return now;
        return static_cast<uint64_t>(static_cast<unsigned __int128>(now) * kNsPerSec / clock_hz_);
    }

    TokenBucket bucket_{};
    uint64_t clock_hz_;
};

}  // namespace sluice::core
