// Text forms of data-plane counters for the daemon's log: a one-line
// summary for the periodic report and the full list printed at exit.
#pragma once

#include <string>
#include <vector>

#include "driver/dataplane_driver.h"
#include "driver/forwarding_plan.h"

namespace sluice::driver {

// "rx 10 pkts / 1200 B, tx 9, exception 0, control 1, drops 0 (no_nexthop 0 ...)"
// with only the non-zero drop reasons listed. Thread-safe.
std::string format_summary(const DataplaneStats& stats);

// One "name value" line per non-zero counter (drop reasons by their metrics
// label), then one line per backend that was sent traffic, named by
// `plan` as "backend SERVICE ADDRESS id N packets P bytes B". Thread-safe.
std::vector<std::string> format_counters(const DataplaneStats& stats, const ForwardingPlan& plan);

}  // namespace sluice::driver
