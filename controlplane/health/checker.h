// HealthChecker: probes every backend of every service from ONE event-loop
// thread and reports up/down transitions, so the control plane can keep the
// Maglev tables equal to discovery minus the unhealthy backends.
//
// Threading. One thread runs an epoll loop. TCP connects and UDP exchanges
// are non-blocking sockets in that epoll set; HTTP/HTTPS probes are libcurl
// easy handles in one curl multi handle whose sockets and timer are driven
// by the same epoll (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION and
// curl_multi_socket_action). Why not curl_multi_poll with our fds added: it
// rebuilds a poll() set of every socket on each call, O(targets) per wake-up,
// while epoll + socket_action touches only the ready sockets. Targets name
// IP literals, so curl never starts its threaded resolver. The thread is
// named "sluice-health" (top -H); it reads every ready event before firing
// timeouts, so a loop that was held off the CPU does not fail probes whose
// answer had already arrived.
// Schedules are a min-heap of deadlines: each target probes at a fixed rate
// (due += interval, not "interval after the last result"), so schedules do
// not drift; the first probe is placed uniformly at random within one
// interval so that 1000 targets added together do not fire together.
//
// Encapsulated forwarding (IPIP, GUE, L2 DSR). The backend's service
// listens on the VIP, bound on its loopback, and decapsulated packets reach
// it there. A probe sent to the backend's own address and port therefore
// does NOT prove the VIP path (tunnel decapsulation, the VIP on lo, the
// service's bind to the VIP). What sluice checks, by default: the backend's
// address on the probe port (health_check.port, else the backend's port,
// else the VIP's port); the backend must also listen there, e.g. bind its
// service to 0.0.0.0 / [::], or run a health endpoint on a separate port
// and point health_check.port at it. The model offers no way to probe
// through the tunnel; a later option (e.g. health_check.via_vip) would send
// the probe with the VIP as inner destination through the same
// encapsulation, as Katran's tc "healthchecking" program does.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "health/check_spec.h"
#include "health/rise_fall.h"

namespace sluice::health {

// One target's state as the loop last published it.
struct TargetStatus {
    TargetKey key;
    CheckType type = CheckType::kTcp;
    HealthState state = HealthState::kUnknown;
    bool checked = false;                    // at least one probe completed
    uint32_t consecutive_successes = 0;
    uint32_t consecutive_failures = 0;
    std::optional<std::chrono::microseconds> last_latency;  // of the last completed probe
    std::string last_error;                  // last failure's reason; empty after a success
    uint64_t probes = 0;                     // completed probes
    uint64_t failed_probes = 0;              // of which failed
    uint64_t transitions = 0;                // state changes (unknown -> x included)
    // Scheduling quality: worst delay between a probe's due time and its
    // start, and due times skipped because the loop was late by more than an
    // interval (or a probe was still running).
    std::chrono::microseconds max_start_lateness{0};
    uint64_t skipped_slots = 0;
};

struct CheckerOptions {
    uint64_t jitter_seed = 0;  // 0 = seed from std::random_device
};

class HealthChecker {
public:
    // Called on the checker's loop thread, never concurrently with itself,
    // after the status lock is released: it may call status(), upsert() and
    // remove(), but must not block (every other probe waits meanwhile) and
    // must not destroy the checker. Exceptions it throws are swallowed.
    // `healthy` is the new state; `reason` says why ("3 consecutive
    // failures, last: connect: Connection refused").
    using StateCallback =
        std::function<void(const TargetKey& target, bool healthy, const std::string& reason)>;

    // Starts the loop thread. Fails only when the kernel refuses an epoll
    // or eventfd, or libcurl cannot initialise. Call from any one thread.
    static Result<std::unique_ptr<HealthChecker>> start(StateCallback on_change,
                                                        CheckerOptions options = {});

    // Stops and joins the loop; in-flight probes are abandoned, no callback
    // runs afterwards. Must not be called from the callback.
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    // Adds a target, or updates the one with the same key. Thread-safe;
    // validates at once, applies asynchronously on the loop (an eventfd wakes
    // it). An update keeps the health state; when the probe itself changed
    // (type, path, host, statuses, TLS, UDP payload/expectation) the
    // consecutive counters restart and an in-flight probe is abandoned; a
    // changed interval reschedules with a fresh random offset.
    Result<void> upsert(Target target);

    // Removes a target (no callback for it). Thread-safe; asynchronous.
    // Removing an unknown key does nothing.
    void remove(const TargetKey& key);

    // Snapshot of every target, sorted by key. Thread-safe; takes a lock the
    // loop holds only to publish one probe's result.
    std::vector<TargetStatus> status() const;
    std::optional<TargetStatus> status(const TargetKey& key) const;

    // Number of commands queued but not yet applied by the loop (0 once the
    // loop has caught up). Thread-safe. For tests and readiness checks.
    size_t pending_commands() const;

    struct Impl;

private:
    explicit HealthChecker(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::health
