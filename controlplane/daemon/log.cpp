// spdlog set-up and the key=value adapter for driver/manager messages.
#include "daemon/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace sluice::daemon {

spdlog::level::level_enum to_spdlog(model::LogLevel level)
{
    switch (level) {
    case model::LogLevel::kTrace: return spdlog::level::trace;
    case model::LogLevel::kDebug: return spdlog::level::debug;
    case model::LogLevel::kInfo: return spdlog::level::info;
    case model::LogLevel::kWarn: return spdlog::level::warn;
    case model::LogLevel::kError: return spdlog::level::err;
    }
    return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> make_logger(model::LogLevel level)
{
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("sluiced", std::move(sink));
    // UTC with milliseconds: lines from several nodes sort together.
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ level=%l %v",
                                                                      spdlog::pattern_time_type::utc));
    logger->set_level(to_spdlog(level));
    logger->flush_on(spdlog::level::trace);  // stderr is unbuffered anyway; never lose the last line of a crash
    return logger;
}

std::string quoted(std::string_view text)
{
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c == '\n' ? ' ' : c;
    }
    return out + "\"";
}

driver::LogSink log_sink(std::shared_ptr<spdlog::logger> logger, std::string component)
{
    return [logger = std::move(logger), prefix = "component=" + component + " "](driver::LogSeverity severity,
                                                                                std::string_view message) {
        spdlog::level::level_enum level = spdlog::level::info;
        switch (severity) {
        case driver::LogSeverity::kDebug: level = spdlog::level::debug; break;
        case driver::LogSeverity::kInfo: level = spdlog::level::info; break;
        case driver::LogSeverity::kWarn: level = spdlog::level::warn; break;
        case driver::LogSeverity::kError: level = spdlog::level::err; break;
        }
        if (!logger->should_log(level)) return;
        const auto space = message.find(' ');
        const auto eq = message.find('=');
        const bool structured = eq != std::string_view::npos && (space == std::string_view::npos || eq < space);
        if (structured) {
            logger->log(level, "{}{}", prefix, message);
        } else {
            logger->log(level, "{}msg={}", prefix, quoted(message));
        }
    };
}

}  // namespace sluice::daemon
