// A snapshot's FilterSet as the core pipeline's filter policy
// (core/filter_hook.h): the worker's own token buckets and Hyperscan
// scratch row, and the FilterSet of the snapshot the worker holds for the
// current burst. The DPDK runtime's pipeline and the fixture tests on plain
// buffers both run the core through this.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

#include "core/filter_hook.h"
#include "filter/filter_set.h"

namespace sluice::filter {

static_assert(core::kFilterPass == kFilterPass, "core and filter must agree on the pass value");

class PipelineFilter {
public:
    static constexpr bool kEnabled = true;

    // Start-up, on the worker's lcore or before it runs: worker `worker` of
    // `workers` (the FilterSets must be built for `workers`). Allocates the
    // worker's token buckets, once.
    PipelineFilter(uint32_t worker, uint32_t workers)
        : limiter_(std::make_unique<WorkerRateLimiter>(worker, workers)), worker_(worker)
    {
    }

    // Owner worker, once per burst: the filters of the snapshot in force
    // (not null) and the clock in nanoseconds. A new FilterSet's rate
    // limits are adopted here; buckets whose limits did not change keep
    // their tokens across a reload.
    void begin_burst(const FilterSet& set, uint64_t now_ns)
    {
        set_ = &set;
        now_ns_ = now_ns;
        set.begin_burst(*limiter_, now_ns);
    }

    // Owner worker, packet path (the core calls it).
    SLUICE_ALWAYS_INLINE uint8_t check(const core::FilterQuery& q)
    {
        FilterPacket p;
        std::memcpy(&p.src, q.src, sizeof(p.src));
        p.payload = q.payload;
        p.payload_len = q.payload_len;
        p.vip_id = q.vip_id;
        p.family = q.family;
        p.new_flow = q.new_flow;
        return set_->check(*limiter_, worker_, p, now_ns_);
    }

    // For tests and diagnostics: this worker's buckets.
    const WorkerRateLimiter& limiter() const { return *limiter_; }

private:
    std::unique_ptr<WorkerRateLimiter> limiter_;
    uint32_t worker_;
    const FilterSet* set_ = nullptr;
    uint64_t now_ns_ = 0;
};

}  // namespace sluice::filter
