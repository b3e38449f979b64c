// The JSON shapes of the admin API, one function per view, so the field
// names live in one place (and are documented in admin_server.h). Every
// function here is pure and thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "api/control_plane_view.h"

extern "C" {
#include "abi/drop_reason.h"
}

namespace sluice::api {

// Metrics label and description of every drop reason, indexed by
// enum sluice_drop_reason, generated from the one X-macro.
struct DropReasonName {
    const char* label;  // "no_backend"
    const char* text;   // "service has no usable backend"
};
extern const std::array<DropReasonName, SLUICE_DROP_MAX> kDropReasonNames;

// How a backend is named in URLs, labels and tables: "address" when its
// port is 0 (the VIP's), else "address:port" ("[v6]:port"). set_drain
// accepts both forms.
std::string backend_label(const BackendView& backend);

// Seconds since the Unix epoch, and RFC 3339 UTC ("2026-11-22T01:02:03Z").
double unix_seconds(std::chrono::system_clock::time_point when);
std::string rfc3339(std::chrono::system_clock::time_point when);

nlohmann::json backend_json(const BackendView& backend);
// Without backends: a summary with counts (backends_total, _up, _draining,
// _in_table); with: also "backends": [...].
nlohmann::json service_json(const ServiceView& service, bool with_backends);
nlohmann::json stats_json(const StatsView& stats, std::chrono::system_clock::time_point now);
nlohmann::json lookup_json(const LookupRequest& request, const LookupResult& result);
nlohmann::json connections_json(const ConnectionsView& view);

// Serialises without throwing: invalid UTF-8 in a view string is replaced.
std::string dump(const nlohmann::json& value);

}  // namespace sluice::api
