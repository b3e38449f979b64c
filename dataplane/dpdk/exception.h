// The exception path: one TAP interface (DPDK net_tap) per data port, so
// traffic that is not for a VIP (SSH, BGP, the host's own flows) reaches
// the host kernel and what the kernel sends back leaves through the NIC.
// Workers write exceptions to the TAP on their own queue
// (RxQueueRef::exception_port); the control thread reads every TAP queue
// and sends the kernel's frames out of the paired NIC port on its own queue.
//
// Why the control thread reads and not the workers: a net_tap receive is a
// readv() system call even when nothing is waiting, and workers make none;
// the kernel's traffic is management-rate, and the kernel spreads it over
// the TAP queues by its own flow hash, so one reader of all queues is both
// cheaper and simpler. The cost is latency up to the poll interval.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "dataplane/dpdk/neighbor.h"

namespace sluice::dpdk {

struct ExceptionPortConfig {
    uint16_t nic_port = 0;   // data port whose host traffic this TAP carries
    std::string iface;       // kernel interface name, e.g. "sluice0" (at most 15 characters)
    MacAddress mac{};        // the NIC port's MAC: the kernel then speaks as the NIC does
    uint16_t mtu = 1500;     // L3 MTU, the NIC port's
};

struct ExceptionConfig {
    std::vector<ExceptionPortConfig> ports;
    // TAP queues = workers + 1 (net_tap wants as many RX as TX queues):
    // queue w is worker w's, queue `workers` the control thread's.
    uint16_t workers = 1;
    // The control thread's TX queue on every NIC port; the runtime sets up
    // the NIC ports with tx_queues = workers + 1 and passes `workers` here.
    uint16_t nic_control_tx_queue = 1;
    uint16_t descriptors = 512;      // per TAP queue
    uint32_t max_per_poll = 256;     // frames moved kernel → NIC per TAP per poll()
};

struct ExceptionStats {
    uint64_t from_kernel = 0;          // frames the kernel sent that left through the NIC
    uint64_t from_kernel_dropped = 0;  // ... that a full NIC queue freed
};

class ExceptionPath {
public:
    // Control thread, after the NIC ports are started and before workers
    // run: creates, configures and starts one TAP per port (the kernel
    // interface appears, up). Fails with the PMD's reason (e.g. not root).
    static Result<std::unique_ptr<ExceptionPath>> create(const ExceptionConfig& config, rte_mempool* pool);

    // Control thread, after every worker has stopped: stops and removes the
    // TAPs (the kernel interfaces disappear).
    ~ExceptionPath();
    ExceptionPath(const ExceptionPath&) = delete;
    ExceptionPath& operator=(const ExceptionPath&) = delete;

    // The TAP port paired with `nic_port`, or kNoPort: the value for
    // RxQueueRef::exception_port and NeighborPort::kernel_port.
    uint16_t tap_port(uint16_t nic_port) const;

    // The control thread's TX queue on every TAP (NeighborPort::kernel_tx_queue).
    uint16_t control_queue() const { return config_.workers; }

    // Control thread, every poll interval (shares the NIC control queue
    // with NeighborManager::poll, so both run on the same thread): moves
    // what the kernel sent out of the NIC. Returns the frames moved.
    uint32_t poll();

    const ExceptionStats& stats() const { return stats_; }

private:
    struct Tap {
        uint16_t nic_port;
        uint16_t tap_port;
        std::string vdev;  // the vdev name, for removal
    };

    explicit ExceptionPath(const ExceptionConfig& config) : config_(config) {}
    Result<void> add_tap(const ExceptionPortConfig& port, rte_mempool* pool);

    ExceptionConfig config_;
    std::vector<Tap> taps_;
    ExceptionStats stats_;
};

}  // namespace sluice::dpdk
