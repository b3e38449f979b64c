// sluicectl's commands that talk to sluiced. Each returns the process exit
// code (exit_codes.h) and writes results to `out`, problems to `err`.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "sluicectl/api_client.h"

namespace sluice::ctl {

struct Context {
    ApiClient& api;
    bool json = false;  // print the API's JSON instead of tables
    std::ostream& out;
    std::ostream& err;
};

struct WatchOptions {
    bool watch = false;     // repeat until interrupted or `count` samples
    double interval = 2.0;  // seconds between samples
    uint64_t count = 0;     // samples to print; 0 = unbounded (with watch)
};

int cmd_status(Context& ctx);
int cmd_services(Context& ctx);
int cmd_backends(Context& ctx, const std::string& service);
struct DrainWait {
    bool wait = false;      // after the drain, wait until the backend has no live connection entry
    double timeout = 300;   // seconds; exit 1 if entries remain then
    double interval = 1;    // seconds between looks
};
int cmd_drain(Context& ctx, const std::string& service, const std::string& backend, bool drain,
              const DrainWait& wait = {});
// Live connection entries per backend (GET /v1/connections), of one
// service or all.
int cmd_connections(Context& ctx, const std::optional<std::string>& service);
int cmd_stats(Context& ctx, const WatchOptions& watch);
// Two /v1/stats samples `interval` seconds apart: per worker (DPDK lcore or
// XDP CPU) packets per second, share of the received packets, and (DPDK)
// the share of the interval spent on packets.
int cmd_workers(Context& ctx, double interval);
// client and vip are "ADDRESS:PORT" ("[v6]:PORT"); malformed → exit 2.
int cmd_lookup(Context& ctx, const std::string& client, const std::string& vip, bool udp);
int cmd_fingerprint(Context& ctx, const std::optional<std::string>& service);
int cmd_reload(Context& ctx);

}  // namespace sluice::ctl
