// sluiced's logs: spdlog to stderr, one line per event in key=value form
// ("2026-11-22T01:02:03.456Z level=info component=manager service=web
// msg=\"table published\" ..."), so journald and log shippers can split
// fields without a grammar per message.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "driver/dataplane_driver.h"
#include "model/config.h"

namespace sluice::daemon {

// The daemon's logger, created once; its level follows daemon.log_level
// (set_level is thread-safe, so a reload changes it live).
std::shared_ptr<spdlog::logger> make_logger(model::LogLevel level);
spdlog::level::level_enum to_spdlog(model::LogLevel level);

// A driver::LogSink that logs through `logger` under `component`. A message
// that does not start with a key=value field is quoted as msg="...".
// Thread-safe (spdlog's _mt sinks).
driver::LogSink log_sink(std::shared_ptr<spdlog::logger> logger, std::string component);

// `text` as a quoted value: "..." with \" and \\ escaped.
std::string quoted(std::string_view text);

}  // namespace sluice::daemon
