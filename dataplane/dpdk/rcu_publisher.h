// Publication of immutable forwarding snapshots to worker lcores: one atomic
// pointer store, and reclamation of the old snapshot only after every
// registered worker has reported a quiescent state (rte_rcu_qsbr). This is
// the grace period VPP's lb plugin lacks (STYLE.md).
#pragma once

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "common/result.h"

namespace sluice::dpdk {

template <typename State>
class RcuPublisher {
public:
    // Control thread. `max_workers` bounds worker ids (0..max_workers-1).
    static Result<std::unique_ptr<RcuPublisher>> create(uint32_t max_workers,
                                                        std::unique_ptr<const State> initial)
    {
        const size_t size = rte_rcu_qsbr_get_memsize(max_workers);
        auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("sluice_qsbr", size, RTE_CACHE_LINE_SIZE));
        if (qsbr == nullptr) {
            return make_error("cannot allocate RCU state for " + std::to_string(max_workers) + " workers");
        }
        if (rte_rcu_qsbr_init(qsbr, max_workers) != 0) {
            rte_free(qsbr);
            return make_error("rte_rcu_qsbr_init failed");
        }
        return std::unique_ptr<RcuPublisher>(new RcuPublisher(qsbr, std::move(initial)));
    }

    ~RcuPublisher()
    {
        delete current_.load(std::memory_order_acquire);
        rte_free(qsbr_);
    }

    RcuPublisher(const RcuPublisher&) = delete;
    RcuPublisher& operator=(const RcuPublisher&) = delete;

    // Worker `id`, on its own lcore, before its first read. Pair with
    // worker_offline() when the worker stops, so publish() never waits for
    // a worker that is gone.
    void worker_online(uint32_t id)
    {
        rte_rcu_qsbr_thread_register(qsbr_, id);
        rte_rcu_qsbr_thread_online(qsbr_, id);
    }
    void worker_offline(uint32_t id)
    {
        rte_rcu_qsbr_thread_offline(qsbr_, id);
        rte_rcu_qsbr_thread_unregister(qsbr_, id);
    }

    // Worker: the snapshot in force. Valid until this worker's next
    // quiescent(); load once per burst.
    const State* acquire() const { return current_.load(std::memory_order_acquire); }

    // Worker: "I hold no snapshot pointer now". Once per loop iteration.
    void quiescent(uint32_t id) { rte_rcu_qsbr_quiescent(qsbr_, id); }

    // Control thread: makes `next` current, waits until every online worker
    // has passed a quiescent state, then frees the previous snapshot.
    // Thread-safe against other publish() calls (serialised).
    void publish(std::unique_ptr<const State> next)
    {
        std::lock_guard<std::mutex> guard(publish_mutex_);
        const State* old = current_.exchange(next.release(), std::memory_order_acq_rel);
        rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
        delete old;
        ++generation_;
    }

    // Number of completed publications (control thread).
    uint64_t generation() const { return generation_; }

private:
    RcuPublisher(rte_rcu_qsbr* qsbr, std::unique_ptr<const State> initial)
        : qsbr_(qsbr), current_(initial.release()) {}

    rte_rcu_qsbr* qsbr_;
    std::atomic<const State*> current_;
    std::mutex publish_mutex_;
    uint64_t generation_ = 0;
};

}  // namespace sluice::dpdk
