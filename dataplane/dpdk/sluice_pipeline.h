// sluice's pipeline for the DPDK worker loop: maps a burst of rte_mbufs to
// core::Packet views, runs core::process_burst against the snapshot the
// control thread published, writes the moved data offsets and lengths back
// into the mbufs and turns verdicts into worker-loop destinations.
//
// Two snapshot kinds: the runtime publishes a Snapshot (forwarding state +
// filters, FilteredSluicePipeline); tests and benchmarks of forwarding alone
// publish a bare core::ForwardingState (SluicePipeline, no filter code at
// all). One template, so both run the same code.
#pragma once

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <type_traits>

#include "core/pipeline.h"
#include "core/pipeline_impl.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/snapshot.h"
#include "dataplane/dpdk/worker_loop.h"
#include "filter/pipeline_filter.h"

namespace sluice::dpdk {

template <class State>
class BasicSluicePipeline {
    static constexpr bool kFiltered = std::is_same_v<State, Snapshot>;
    static_assert(kFiltered || std::is_same_v<State, core::ForwardingState>, "unknown snapshot type");

public:
    // Start-up, before the worker lcore runs: `worker` and `publisher`
    // outlive the pipeline; `worker_id` is this lcore's RCU thread id and
    // its index among `workers` workers (the filters' per-worker share of
    // each rate limit, and its Hyperscan scratch).
    BasicSluicePipeline(core::Worker& worker, RcuPublisher<State>& publisher, uint32_t worker_id,
                        uint32_t workers = 1)
        : worker_(worker), publisher_(publisher), worker_id_(worker_id), filter_(make_filter(worker_id, workers))
    {
        if constexpr (kFiltered) ns_per_tsc_ = 1e9 / static_cast<double>(rte_get_tsc_hz());
    }

    // Worker lcore only, before the first iteration / after the last.
    void online() { publisher_.worker_online(worker_id_); }
    void offline() { publisher_.worker_offline(worker_id_); }

    // One snapshot and one clock reading per loop iteration: a burst never
    // mixes two forwarding states.
    void begin_iteration()
    {
        state_ = publisher_.acquire();
        now_ = rte_rdtsc();
    }

    void end_iteration()
    {
        state_ = nullptr;
        publisher_.quiescent(worker_id_);
    }

    void process(rte_mbuf** mbufs, uint16_t n, uint16_t in_port, uint16_t* dest)
    {
        core::Packet views[kBurstSize];
        core::Packet* ptrs[kBurstSize];
        core::Verdict verdicts[kBurstSize];
        uint16_t kept = 0;
        uint16_t index[kBurstSize];
        for (uint16_t i = 0; i < n; ++i) {
            rte_mbuf* m = mbufs[i];
            // The ports are set up without scatter RX, so a chained mbuf
            // is a PMD surprise: refuse it, counted, rather than parse
            // half a packet.
            if (unlikely(m->nb_segs != 1)) {
                ++worker_.stats.rx_packets;
                worker_.stats.rx_bytes += m->pkt_len;
                ++worker_.stats.drops[SLUICE_DROP_INTERNAL];
                dest[i] = kDestDrop;
                continue;
            }
            views[kept] = core::Packet{rte_pktmbuf_mtod(m, uint8_t*), m->data_len, rte_pktmbuf_headroom(m), in_port, 0};
            ptrs[kept] = &views[kept];
            index[kept] = i;
            ++kept;
        }
        if constexpr (kFiltered) {
            const core::ForwardingState& fs = *state_->forwarding;
            if (state_->filters != nullptr) {
                // The buckets' clock: TSC in nanoseconds, once per burst.
                filter_.begin_burst(*state_->filters, static_cast<uint64_t>(static_cast<double>(now_) * ns_per_tsc_));
                core::process_burst(worker_, ptrs, kept, fs, now_, verdicts, filter_);
            } else {
                core::process_burst(worker_, ptrs, kept, fs, now_, verdicts);
            }
        } else {
            core::process_burst(worker_, ptrs, kept, *state_, now_, verdicts);
        }
        for (uint16_t k = 0; k < kept; ++k) {
            const uint16_t i = index[k];
            rte_mbuf* m = mbufs[i];
            const core::Verdict v = verdicts[k];
            switch (v.action) {
            case core::Action::kTx:
                m->data_off = static_cast<uint16_t>(views[k].data - static_cast<uint8_t*>(m->buf_addr));
                m->data_len = static_cast<uint16_t>(views[k].len);
                m->pkt_len = views[k].len;
                // An ICMP reply built in place of an oversized packet is
                // counted as a drop already (see kDestCountedFlag).
                dest[i] = v.counted_as_tx() ? v.port : static_cast<uint16_t>(v.port | kDestCountedFlag);
                break;
            case core::Action::kException:
                dest[i] = kDestException;
                break;
            case core::Action::kControl:
                dest[i] = kDestControl;
                break;
            case core::Action::kDrop:
                dest[i] = kDestDrop;
                break;
            }
        }
    }

private:
    using Filter = std::conditional_t<kFiltered, filter::PipelineFilter, core::NoFilter>;
    static Filter make_filter(uint32_t worker_id, uint32_t workers)
    {
        if constexpr (kFiltered) {
            return Filter(worker_id, workers);
        } else {
            (void)worker_id;
            (void)workers;
            return Filter{};
        }
    }

    core::Worker& worker_;
    RcuPublisher<State>& publisher_;
    uint32_t worker_id_;
    Filter filter_;                   // this worker's token buckets (filtered pipeline)
    double ns_per_tsc_ = 0;
    const State* state_ = nullptr;
    uint64_t now_ = 0;
};

// Forwarding only: for tests and benchmarks that publish a bare state.
using SluicePipeline = BasicSluicePipeline<core::ForwardingState>;
// The runtime's: forwarding state and filters.
using FilteredSluicePipeline = BasicSluicePipeline<Snapshot>;

}  // namespace sluice::dpdk
