// The discovery Source interface: where one service's backends come from
// (static list, file, etcd v3, DNS), delivered as whole BackendSets.
//
// Threading: every started source owns exactly one worker thread (never one
// per backend) and calls its UpdateCallback only from that thread, never
// concurrently with itself, and never after stop() has returned. One thread
// per source rather than one shared loop keeps a slow peer (a TLS handshake
// to a dead etcd, a DNS timeout) from delaying every other service, and
// lets each source block in its own poll() on its own fds; a node has at
// most 512 services (SLUICE_MAX_VIPS) and usually a handful use discovery.
// The callback should hand the set to the control-plane loop and return: a
// slow callback delays only its own source.
//
// Outages: a source that loses its peer keeps the last good set (it simply
// delivers nothing new) and reports kStale; it never delivers an empty set
// because of an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "discovery/backend_set.h"
#include "model/service.h"

namespace sluice::discovery {

enum class SourceState : uint8_t {
    kSyncing,  // started, no answer yet
    kOk,       // the last attempt succeeded; the set is current
    kStale,    // outage: the last good set is kept and may be out of date
    kError,    // failing and no good set was ever obtained
};

std::string_view state_name(SourceState state);  // "syncing", "ok", "stale", "error"

struct SourceStatus {
    SourceState state = SourceState::kSyncing;
    // Wall-clock time the source last confirmed its set (an accepted update
    // or a successful re-read, even if nothing changed). Unset before that.
    std::optional<std::chrono::system_clock::time_point> last_update;
    std::string last_error;  // latest problem, also ignored entries; "" if none yet
    std::optional<std::chrono::system_clock::time_point> last_error_time;
    uint64_t revision = 0;   // BackendSet::revision of the set in force
    size_t backend_count = 0;  // backends in the set in force
    uint64_t updates = 0;    // sets delivered through the callback
    size_t ignored_entries = 0;  // entries left out of the set (bad etcd values)
};

// Receives a new desired set. Called from the source's worker thread only.
using UpdateCallback = std::function<void(const BackendSet&)>;

// Tuning knobs with production defaults; tests shorten them.
struct SourceOptions {
    std::chrono::milliseconds backoff_initial{200};  // etcd: first reconnect delay
    std::chrono::milliseconds backoff_max{10000};    // etcd: reconnect delay cap (before jitter)
    std::chrono::milliseconds etcd_probe_interval{5000};  // etcd: a linearizable read this often while watching
    std::chrono::milliseconds etcd_probe_timeout{3000};   // etcd: ... must answer within this, or the watch is stale
    std::chrono::milliseconds file_settle{20};       // file: quiet time before re-reading
    std::chrono::milliseconds file_rewatch{1000};    // file: retry a lost directory watch
    std::chrono::milliseconds dns_min_refresh{1000}; // dns: TTL clamp, lower bound
    std::chrono::milliseconds dns_retry{2000};       // dns: retry after a failed resolve
    std::chrono::milliseconds dns_timeout{2000};     // dns: per-try query timeout
};

class Source {
public:
    virtual ~Source() = default;  // implementations stop() first

    // Starts the worker thread; the first set follows asynchronously.
    // Call once, from the owning thread. Fails if the thread or its fds
    // cannot be created.
    virtual Result<void> start() = 0;

    // Stops the worker and joins it. Idempotent; the owning thread only;
    // never from inside the callback. No callback runs after it returns.
    virtual void stop() = 0;

    // A snapshot of the status. Any thread; thread-safe.
    virtual SourceStatus status() const = 0;

    // "static", "file", "etcd" or "dns". Any thread.
    virtual std::string_view kind() const = 0;
};

// Builds the source a service's config asks for: its discovery table, or
// its static backends when it has none. Entries without a port get the
// VIP's port (or, for DNS A/AAAA, discovery.port when set). The source is
// returned unstarted. Owning thread; fails on a setting the source cannot
// use (an unreadable etcd password file, an unusable resolver).
Result<std::unique_ptr<Source>> make_source(const model::Service& service, UpdateCallback on_update,
                                            const SourceOptions& options = {});

}  // namespace sluice::discovery
