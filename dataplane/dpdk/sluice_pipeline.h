// sluice's pipeline for the DPDK worker loop: maps a burst of rte_mbufs to
// core::Packet views, runs core::process_burst against the snapshot the
// control thread published, writes the moved data offsets and lengths back
// into the mbufs and turns verdicts into worker-loop destinations.
#pragma once

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <cstdint>

#include "core/pipeline.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/worker_loop.h"

namespace sluice::dpdk {

class SluicePipeline {
public:
    // Start-up, before the worker lcore runs: `worker` and `publisher`
    // outlive the pipeline; `worker_id` is this lcore's RCU thread id.
    SluicePipeline(core::Worker& worker, RcuPublisher<core::ForwardingState>& publisher, uint32_t worker_id)
        : worker_(worker), publisher_(publisher), worker_id_(worker_id) {}

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
        core::process_burst(worker_, ptrs, kept, *state_, now_, verdicts);
        for (uint16_t k = 0; k < kept; ++k) {
            const uint16_t i = index[k];
            rte_mbuf* m = mbufs[i];
            const core::Verdict v = verdicts[k];
            switch (v.action) {
            case core::Action::kTx:
                m->data_off = static_cast<uint16_t>(views[k].data - static_cast<uint8_t*>(m->buf_addr));
                m->data_len = static_cast<uint16_t>(views[k].len);
                m->pkt_len = views[k].len;
                dest[i] = v.port;
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
    core::Worker& worker_;
    RcuPublisher<core::ForwardingState>& publisher_;
    uint32_t worker_id_;
    const core::ForwardingState* state_ = nullptr;
    uint64_t now_ = 0;
};

}  // namespace sluice::dpdk
