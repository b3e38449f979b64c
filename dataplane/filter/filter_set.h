// The filters of one forwarding snapshot — source ACL, per-VIP rate
// limits, payload rules — bundled behind one call: per burst
// (filter_burst) or, as the DPDK worker uses it, per packet (check) from
// inside the connection-table lookup, where it is known whether the packet
// is a new flow and before it writes an entry (core/filter_hook.h,
// filter/pipeline_filter.h).
//
// Ownership: a FilterSet is built by the control thread and is immutable
// afterwards (except the per-worker payload hit counters, each row written
// by one worker). It owns its rte_lpm / rte_lpm6 tables, Hyperscan database
// and scratches; its destructor frees them. It is meant to live inside the
// forwarding snapshot the RCU publisher hands to workers, so it is destroyed
// only after every worker has passed a quiescent state
// (dataplane/dpdk/rcu_publisher.h). The token buckets are not in it: they
// belong to each worker (WorkerRateLimiter) and survive reloads.
//
// Order of checks, each packet ending at its first failure with one drop
// reason: ACL (cheapest, and a denied source must not spend a VIP's tokens)
// → packets/s bucket → new-flows/s bucket (new flows only) → payload rules
// (most expensive last, so a flood above the limit is dropped before
// Hyperscan sees it).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/result.h"
#include "filter/acl.h"
#include "filter/payload_rules.h"
#include "filter/rate_limit.h"

extern "C" {
#include "abi/tables.h"
}

namespace sluice::filter {

// Result of filter_burst for a packet that passed every filter.
inline constexpr uint8_t kFilterPass = 0xFF;
static_assert(SLUICE_DROP_MAX < kFilterPass, "drop reasons must not collide with kFilterPass");

// What the filters need to know about one parsed packet.
struct FilterPacket {
    union sluice_addr src;   // source address, network order (IPv4 in v4)
    const uint8_t* payload;  // L4 payload (may be null when payload_len is 0)
    uint32_t payload_len;    // bytes at payload
    uint16_t vip_id;         // the VIP the packet is for (SLUICE_MAX_VIPS: none yet)
    uint8_t family;          // SLUICE_FAMILY_IPV4 or _IPV6
    uint8_t new_flow;        // 1 when the packet would write a connection-table entry (not a hit)
};

struct FilterConfig {
    AclConfig acl;
    RateLimits rate_limits;
    std::vector<PayloadRule> payload_rules;
};

class FilterSet {
public:
    // Control thread, after EAL init: builds every filter for `workers`
    // worker lcores (worker ids 0..workers-1). Fails with the first
    // filter's message. Thread-safe.
    static Result<std::unique_ptr<const FilterSet>> build(const FilterConfig& config, uint32_t workers);

    // Frees the tables, database and scratches: only after the grace period.
    ~FilterSet() = default;

    // Worker `worker` (its own `limiter`), packet path: writes kFilterPass
    // or the sluice_drop_reason of each of the `n` packets to result[i].
    // `now_ns` is the worker's clock (e.g. TSC converted to ns) for the
    // token buckets. No allocation, lock, log or syscall; concurrent calls
    // from different workers are safe.
    void filter_burst(WorkerRateLimiter& limiter, uint32_t worker, const FilterPacket* pkts, uint16_t n,
                      uint64_t now_ns, uint8_t* result) const;

    // Worker, packet path: the one-packet form of filter_burst() for a
    // pipeline that filters each packet where its connection-table fate is
    // known (core/filter_hook.h). Same checks, same order, same result as
    // filter_burst() gives that packet. Call begin_burst() once per burst
    // first (it adopts this set's rate limits in the worker's limiter).
    // No allocation, lock, log or syscall.
    void begin_burst(WorkerRateLimiter& limiter, uint64_t now_ns) const
    {
        limiter.sync(*limits_, generation_, now_ns);
    }
    // In the header, with the payload scan's "no rule for this VIP" test
    // before its call: three calls per packet cost the DPDK worker more than
    // the checks themselves (callgrind, rate-limited VIP: 790 -> 759
    // instructions per packet).
    uint8_t check(WorkerRateLimiter& limiter, uint32_t worker, const FilterPacket& pkt, uint64_t now_ns) const
    {
        if (!acl_->allows_everything()) {
            uint8_t verdict;
            if (pkt.family == SLUICE_FAMILY_IPV4) {
                verdict = acl_->check_v4(pkt.src.v4, pkt.vip_id);
            } else if (pkt.family == SLUICE_FAMILY_IPV6) {
                verdict = acl_->check_v6(pkt.src.bytes, pkt.vip_id);
            } else {
                return SLUICE_DROP_INTERNAL;  // the parser never hands us another family
            }
            if (verdict != SLUICE_ACL_ALLOW) {
                return SLUICE_DROP_ACL_DENY;
            }
        }
        return after_acl(limiter, worker, pkt, now_ns);
    }

    const Acl& acl() const { return *acl_; }
    const PayloadRules& payload_rules() const { return *payload_; }
    const RateLimits& rate_limits() const { return *limits_; }
    // Distinct per FilterSet built in this process (starts at 1); a worker's
    // limiter resyncs when it changes.
    uint64_t generation() const { return generation_; }

private:
    FilterSet() = default;
    // Steps 2 and 3 (token buckets, payload rules) for a packet the ACL admitted.
    uint8_t after_acl(WorkerRateLimiter& limiter, uint32_t worker, const FilterPacket& pkt, uint64_t now_ns) const
    {
        const uint16_t vip = pkt.vip_id;
        if (vip < SLUICE_MAX_VIPS && rate_limited(vip)) {
            if (!limiter.take_packet(vip, now_ns)) {
                return SLUICE_DROP_RATE_LIMIT_PACKETS;
            }
            if (pkt.new_flow && !limiter.take_new_flow(vip, now_ns)) {
                return SLUICE_DROP_RATE_LIMIT_NEW_FLOWS;
            }
        }
        if (!payload_->has_rules_for(vip)) {
            return kFilterPass;  // what match() answers too, without the call
        }
        switch (payload_->match(pkt.payload, pkt.payload_len, vip, worker)) {
        case PayloadVerdict::kNoMatch:
            return kFilterPass;
        case PayloadVerdict::kMatch:
            return SLUICE_DROP_PAYLOAD_RULE;
        case PayloadVerdict::kError:
            return SLUICE_DROP_INTERNAL;
        }
        return SLUICE_DROP_INTERNAL;
    }

    std::unique_ptr<Acl> acl_;
    std::unique_ptr<PayloadRules> payload_;
    std::unique_ptr<RateLimits> limits_;
    uint64_t generation_ = 0;
    // Bit v: VIP v has a packet or new-flow rate limit. Per VIP, so one
    // limited VIP does not make every other VIP's packets visit their
    // (unlimited) token buckets.
    bool rate_limited(uint16_t vip) const { return ((rate_limited_[vip / 64] >> (vip % 64)) & 1u) != 0; }
    uint64_t rate_limited_[(SLUICE_MAX_VIPS + 63) / 64] = {};
};

}  // namespace sluice::filter
