// What one health-check target is: which backend (service, address, port)
// and how to probe it. A richer form of model::HealthCheck (status ranges,
// TLS verification, initial state) so the checker is usable beyond what the
// config file can say today; spec_from_model() maps the model onto it.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/address.h"
#include "model/service.h"

namespace sluice::health {

enum class CheckType : uint8_t { kNone, kTcp, kHttp, kHttps, kUdp };

// "none", "tcp", "http", "https", "udp".
const char* check_type_name(CheckType type);

// The state a target is in before its first probe completes.
//
// Default kUnknown (Envoy's choice, not HAProxy's): a backend nobody has
// probed yet is not in the table, and its FIRST result decides at once (one
// success = up, one failure = down); from then on rise/fall count exactly.
// Why: an L4 balancer that starts a backend "up" sends real flows to a
// process that may not listen yet, and Maglev then moves those slots twice
// (in, out). Requiring `rise` successes on first sight instead would keep a
// restarted sluiced empty for rise x interval (4 s by default). The daemon
// is expected to hold its first publish until every target has a result
// (TargetStatus::checked), bounded by the largest interval + timeout.
enum class InitialState : uint8_t {
    kUnknown,  // not healthy; the first result decides (default)
    kDown,     // unhealthy; needs `rise` successes like any down backend
    kUp,       // healthy; needs `fall` failures like any up backend (HAProxy-like)
};

// Inclusive range of HTTP status codes that mean healthy.
struct StatusRange {
    uint16_t low = 200;
    uint16_t high = 200;
    auto operator<=>(const StatusRange&) const = default;
};

// How one target is probed. Durations are wall-clock on the steady clock.
struct CheckSpec {
    CheckType type = CheckType::kTcp;
    std::chrono::milliseconds interval{2000};  // probe start to probe start (fixed rate)
    std::chrono::milliseconds timeout{1000};   // a probe not done by then failed; < interval
    uint32_t rise = 2;                         // consecutive good probes to go up
    uint32_t fall = 3;                         // consecutive bad probes to go down
    InitialState initial = InitialState::kUnknown;

    // http / https
    std::string http_path = "/";                   // request path, starts with '/'
    std::optional<std::string> http_host;          // Host header (and TLS SNI); unset = address
    // Any range matching = healthy. Built with the count constructor: an
    // initializer list here trips GCC 12's -Wmaybe-uninitialized.
    std::vector<StatusRange> http_expect = std::vector<StatusRange>(1, StatusRange{200, 200});
    // https only. Off skips both certificate and host-name verification:
    // backends are probed by IP and usually present a certificate for the
    // service name, signed by a CA the balancer does not carry, so verifying
    // would mark every backend down. On proves the backend's certificate
    // against the system CA store and http_host (or the address).
    bool tls_verify = false;

    // udp
    std::string udp_send;                  // datagram payload (may be empty)
    std::optional<std::string> udp_expect; // first reply must contain this; unset = any reply

    bool operator==(const CheckSpec&) const = default;
};

// Identity of a target. The checker keys everything by it: adding a target
// with the same key updates it in place.
struct TargetKey {
    std::string service;         // service name, as in the model
    model::IpAddress address;    // backend address probed
    uint16_t port = 0;           // probe port (host order); unused by kNone

    std::string to_string() const;  // "web/10.0.0.1:80"
    auto operator<=>(const TargetKey&) const = default;
};

struct Target {
    TargetKey key;
    CheckSpec spec;
};

// Refuses what the checker cannot run: timeout >= interval, rise/fall 0,
// port 0 on a probing type, a bad path/host, an empty status list.
Result<void> validate(const Target& target);

// Maps the model's probe settings onto a CheckSpec: one expected status,
// TLS verification off (the model has no key for it, see tls_verify).
CheckSpec spec_from_model(const model::HealthCheck& check);

// Builds the target for one backend of a service. The probe port is
// health_check.port, else the backend's port, else the VIP's port; an
// error if all three are unset/0 (a port-0 VIP whose backends have none).
Result<Target> target_for(const model::Service& service, const model::Backend& backend);

}  // namespace sluice::health
