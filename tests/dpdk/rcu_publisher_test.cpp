// Lifecycle of forwarding snapshots under RCU: a worker lcore holds a
// snapshot while the control thread publishes thousands of new ones; no
// snapshot may be freed while a worker still holds it.
#include <gtest/gtest.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/dpdk/rcu_publisher.h"

namespace {

// Highest generation whose snapshot has been freed. Generations are freed
// in publication order, so a worker holding generation g must always see
// freed_max < g.
std::atomic<uint64_t> g_freed_max{0};

struct Snapshot {
    explicit Snapshot(uint64_t g) : generation(g) {}
    ~Snapshot() { g_freed_max.store(generation, std::memory_order_release); }
    uint64_t generation;
    uint64_t payload[64] = {};
};

struct WorkerArgs {
    sluice::dpdk::RcuPublisher<Snapshot>* publisher;
    std::atomic<bool> stop{false};
    std::atomic<bool> online{false};
    uint64_t reads = 0;
    uint64_t violations = 0;
    uint64_t generations_seen = 0;
};

int worker_main(void* arg)
{
    auto* w = static_cast<WorkerArgs*>(arg);
    w->publisher->worker_online(0);
    w->online.store(true);
    uint64_t last = 0;
    while (!w->stop.load(std::memory_order_relaxed)) {
        const Snapshot* s = w->publisher->acquire();
        const uint64_t g = s->generation;
        // Hold the snapshot across a burst's worth of reads.
        uint64_t sum = 0;
        for (const uint64_t v : s->payload) {
            sum += v;
        }
        if (sum != 0 || g_freed_max.load(std::memory_order_acquire) >= g) {
            ++w->violations;
        }
        if (g != last) {
            ++w->generations_seen;
            last = g;
        }
        ++w->reads;
        w->publisher->quiescent(0);
    }
    w->publisher->worker_offline(0);
    return 0;
}

// Thousands of publications while a worker reads: the worker never observes
// a freed snapshot, every old snapshot is freed, and publish() returns.
TEST(RcuPublisher, NoSnapshotFreedWhileHeld)
{
    ASSERT_GE(rte_lcore_count(), 2u) << "needs a second lcore (-l 0-1)";
    auto publisher = sluice::dpdk::RcuPublisher<Snapshot>::create(1, std::make_unique<Snapshot>(1));
    ASSERT_TRUE(publisher.ok()) << publisher.error();

    WorkerArgs args;
    args.publisher = publisher.value().get();
    const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    ASSERT_EQ(rte_eal_remote_launch(worker_main, &args, lcore), 0);
    while (!args.online.load()) {
    }

    constexpr uint64_t kPublications = 5000;
    for (uint64_t g = 2; g <= kPublications + 1; ++g) {
        (*publisher)->publish(std::make_unique<Snapshot>(g));
        // After publish() returns the previous generation is gone.
        EXPECT_EQ(g_freed_max.load(), g - 1);
    }
    args.stop.store(true);
    ASSERT_EQ(rte_eal_wait_lcore(lcore), 0);

    EXPECT_EQ(args.violations, 0u);
    EXPECT_EQ((*publisher)->generation(), kPublications);
    EXPECT_GT(args.generations_seen, 1u) << "worker never saw a new snapshot";
    std::printf("reads=%lu generations_seen=%lu\n", static_cast<unsigned long>(args.reads),
                static_cast<unsigned long>(args.generations_seen));
}

// With no worker online, publish() must not wait for anyone.
TEST(RcuPublisher, PublishWithoutWorkersDoesNotBlock)
{
    auto publisher = sluice::dpdk::RcuPublisher<Snapshot>::create(4, std::make_unique<Snapshot>(100));
    ASSERT_TRUE(publisher.ok());
    (*publisher)->publish(std::make_unique<Snapshot>(101));
    EXPECT_EQ(g_freed_max.load(), 100u);
    EXPECT_EQ((*publisher)->acquire()->generation, 101u);
}

}  // namespace
