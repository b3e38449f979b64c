// sluiced's life from a valid config to exit: logging, the allocator
// check, the data plane, the ServiceManager, the admin API, and the control
// loop on the main thread (signals through a signalfd, never handlers that
// do work).
#pragma once

#include <map>
#include <string>

#include "model/address.h"

namespace sluice::daemon {

struct RunOptions {
    std::string config_path;
    std::string version;  // for the start-up line and /v1/stats
    std::map<model::IpAddress, model::MacAddress> static_neighbors;  // --static-neighbor
};

// Exit codes, shared with sluiced.cpp. 2 for a refused config is the
// contract in DESIGN.md; 64 is sysexits.h's EX_USAGE; 1 a start-up failure.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFatal = 1;
inline constexpr int kExitBadConfig = 2;
inline constexpr int kExitUsage = 64;

// Runs until SIGTERM or SIGINT; SIGHUP reloads. Call from main() before any
// other thread exists (it blocks the signals every later thread inherits).
int run_daemon(const RunOptions& options);

}  // namespace sluice::daemon
