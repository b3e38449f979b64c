// The control thread's neighbour manager: answers ARP and neighbour
// solicitations for our local addresses and VIPs, resolves the next hops the
// forwarding state needs (gateways, L2 DSR backends), refreshes them before
// they expire, and hands what is not ours to the host kernel. Workers reach
// it only through one single-producer/single-consumer ring each
// (WorkerLoop::control_ring), so the worker path stays lock- and
// syscall-free; everything here runs on one control thread and may allocate.
#pragma once

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "dataplane/dpdk/neighbor_wire.h"

namespace sluice::dpdk {

inline constexpr uint16_t kNoPort = 0xFFFF;
inline constexpr uint16_t kAnyPort = 0xFFFE;  // ResolveTarget: probe on every port, learn from any

// A data port as the neighbour manager uses it. The runtime configures each
// NIC port with one TX queue per worker plus one for the control thread
// (tx_queues = workers + 1, control_tx_queue = workers); the TAP, if any,
// likewise (see exception.h).
struct NeighborPort {
    uint16_t port_id = 0;                // DPDK port id
    MacAddress mac{};                    // our MAC on it: source of replies and probes
    uint16_t control_tx_queue = 0;       // the control thread's TX queue on port_id
    uint16_t kernel_port = kNoPort;      // TAP paired with port_id, or kNoPort (exception path off)
    uint16_t kernel_tx_queue = 0;        // the control thread's TX queue on the TAP
};

// An address to keep resolved, and the port its neighbour is reached on.
struct ResolveTarget {
    NeighborAddress address;
    uint16_t port_id = kAnyPort;
};

// What to answer for and what to resolve. Replaced whole by update().
struct NeighborTargets {
    // Answered on every port; the first of each family is also the source
    // address of our own requests and solicitations.
    std::vector<NeighborAddress> local_addresses;
    std::vector<NeighborAddress> vips;          // answered on every port
    std::vector<ResolveTarget> resolve;         // kept resolved while listed
    // Operator-given MACs (config): lookup() returns them, nothing is sent
    // for them and nothing learned ever replaces them.
    std::vector<std::pair<NeighborAddress, MacAddress>> static_entries;
};

// Timing, in the units of the `now` given to poll() (the runtime uses
// nanoseconds of a monotonic clock; tests step their own).
struct NeighborTimers {
    uint64_t lifetime = 60'000'000'000ull;       // a binding lives this long after its last confirmation
    uint32_t refresh_percent = 80;               // re-probe (unicast) from this share of the lifetime
    uint64_t retry_interval = 1'000'000'000ull;  // between probes while unresolved or refreshing
};

struct NeighborConfig {
    std::vector<NeighborPort> ports;
    NeighborTargets targets;
    NeighborTimers timers;
    uint16_t workers = 1;                 // one control ring per worker
    uint32_t ring_size = 1024;            // per-worker ring slots (power of two)
    uint32_t max_per_poll = 512;          // packets taken from the rings per poll()
    std::string name = "sluice";          // prefix of the rings' names (unique per process)
};

// Counters, written by the control thread only.
struct NeighborStats {
    uint64_t received = 0;        // messages taken from the control rings
    uint64_t invalid = 0;         // failed validation (freed)
    uint64_t answered = 0;        // ARP replies and NAs sent for our addresses
    uint64_t learned = 0;         // bindings created or changed from a message
    uint64_t confirmed = 0;       // bindings re-confirmed with the same MAC
    uint64_t to_kernel = 0;       // handed to the host kernel (TAP)
    uint64_t no_kernel = 0;       // not ours, freed: the exception path is off
    uint64_t probes_sent = 0;     // ARP requests and NSs we originated
    uint64_t expired = 0;         // bindings dropped after their lifetime
    uint64_t tx_failed = 0;       // frames a full queue or empty pool cost
};

// How the runtime wires it (all on the control thread):
//  1. start every NIC port with rx_queues = workers, tx_queues = workers + 1,
//     and all-multicast on (rte_eth_allmulticast_enable: NSs go to
//     solicited-node groups a NIC filters out otherwise);
//  2. ExceptionPath::create (if the exception path is on), then
//     NeighborManager::create with one NeighborPort per NIC port
//     (control_tx_queue = workers, kernel_port = tap_port(nic),
//     kernel_tx_queue = ExceptionPath::control_queue());
//  3. per worker w: WorkerLoop::control_ring = control_ring(w),
//     RxQueueRef::exception_port = tap_port(rx port); launch the workers;
//  4. loop: poll(now_ns) and ExceptionPath::poll() every 1 ms or so; when
//     generation() moved (or in the callback), rebuild the ForwardingState
//     with lookup() for every next hop and publish it;
//  5. on reload: update(targets), then rebuild and publish;
//  6. stop the workers, then destroy the manager and the exception path.
class NeighborManager {
public:
    using ChangeCallback = std::function<void()>;

    // Control thread, after the ports are started. Creates the per-worker
    // rings; `pool` supplies the frames we originate and must outlive the
    // manager. Fails on a bad ring size or a ring that cannot be created.
    static Result<std::unique_ptr<NeighborManager>> create(NeighborConfig config, rte_mempool* pool);

    // Frees whatever is still queued. Control thread, after every worker
    // has stopped (they must not enqueue into a freed ring).
    ~NeighborManager();
    NeighborManager(const NeighborManager&) = delete;
    NeighborManager& operator=(const NeighborManager&) = delete;

    // The ring worker `worker` must enqueue its ARP/ND on: set it as that
    // worker's WorkerLoop::control_ring before the worker starts.
    rte_ring* control_ring(uint16_t worker) const;

    // Control thread, every few milliseconds: handles what the workers
    // queued (answers, learning, to the kernel), then sends due probes and
    // expires stale bindings. Calls the change callback at most once, after
    // all of it, when a lookup() result changed. `now` is monotonic.
    void poll(uint64_t now);

    // Control thread: replaces what is answered and resolved (config reload,
    // backends changed). Bindings of addresses still listed survive; new
    // addresses are probed at the next poll().
    void update(const NeighborTargets& targets);

    // Control thread: the MAC for `address` (static, else a live learned
    // binding), or nullopt.
    std::optional<MacAddress> lookup(const NeighborAddress& address) const;

    // Control thread: bumps whenever a lookup() result changes; the driver
    // republishes the forwarding state when it differs from what it used.
    uint64_t generation() const { return generation_; }

    // Control thread: called from poll() after a change (see generation()).
    void set_change_callback(ChangeCallback cb) { on_change_ = std::move(cb); }

    const NeighborStats& stats() const { return stats_; }

private:
    struct Entry {
        MacAddress mac{};
        bool resolved = false;
        bool is_static = false;
        uint16_t port_id = kAnyPort;       // where to probe (ResolveTarget::port_id)
        uint16_t learned_port = kAnyPort;  // where the binding was last heard: unicast probes go there
        uint64_t confirmed_at = 0;   // last learned or confirmed
        uint64_t next_probe_at = 0;  // 0 = at the next poll()
    };

    NeighborManager(NeighborConfig config, rte_mempool* pool) : config_(std::move(config)), pool_(pool) {}

    void handle(rte_mbuf* m, uint64_t now);
    void learn(const NeighborMessage& msg, uint16_t port_id, uint64_t now);
    bool answer(const NeighborMessage& msg, const NeighborPort& port);
    bool is_ours(const NeighborAddress& a) const;
    void run_timers(uint64_t now);
    void probe(const NeighborAddress& address, Entry& e, uint64_t now, bool unicast);
    void send_probe_on(const NeighborPort& port, const NeighborAddress& address,
                       const std::optional<MacAddress>& unicast_mac);
    void to_kernel(rte_mbuf* m, const NeighborPort* port);
    bool transmit(uint16_t port_id, uint16_t queue, const uint8_t* frame, uint32_t len);
    const NeighborPort* find_port(uint16_t port_id) const;
    const NeighborAddress* source_for(uint8_t family) const;

    NeighborConfig config_;
    rte_mempool* pool_;
    std::vector<rte_ring*> rings_;
    std::unordered_map<NeighborAddress, Entry, NeighborAddressHash> entries_;
    std::unordered_set<NeighborAddress, NeighborAddressHash> ours_;  // locals and VIPs
    NeighborStats stats_;
    uint64_t generation_ = 0;
    bool changed_ = false;
    ChangeCallback on_change_;
};

}  // namespace sluice::dpdk
