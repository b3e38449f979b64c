// Helpers for the config tests: load a snippet on top of a minimal valid
// node configuration, and assert a diagnostic at an exact position.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "config/loader.h"

namespace sluice::config::testing {

// A minimal node section that is valid on its own. It is appended *after*
// a snippet, so line numbers inside the snippet are the file's own.
inline constexpr std::string_view kNodeBase = R"(
[dataplane]
type = "dpdk"
[dataplane.dpdk]
worker_lcores = [1]
ports = [{ name = "p0", device = "0000:03:00.0" }]
[network]
source_ipv4 = "192.0.2.10"
source_ipv6 = "2001:db8:100::10"
)";

// Loads `snippet` (top-level keys and [[service]] tables) followed by kNodeBase.
inline LoadResult load_with_base(std::string_view snippet)
{
    return load_string(std::string(snippet) + std::string(kNodeBase), "test.toml");
}

// Every diagnostic, one per line, for failure messages.
inline std::string dump(const LoadResult& result)
{
    std::string text;
    for (const Diagnostic& d : result.diagnostics) text += "  " + d.to_string() + "\n";
    return text.empty() ? "  (no diagnostics)\n" : text;
}

// Succeeds when a diagnostic of `severity` sits exactly at line:column and
// its message contains `substring`.
inline ::testing::AssertionResult has_diagnostic(const LoadResult& result, uint32_t line, uint32_t column,
                                                 std::string_view substring, Severity severity = Severity::kError)
{
    for (const Diagnostic& d : result.diagnostics) {
        if (d.line == line && d.column == column && d.severity == severity &&
            d.message.find(substring) != std::string::npos) {
            return ::testing::AssertionSuccess();
        }
    }
    return ::testing::AssertionFailure() << "no " << (severity == Severity::kError ? "error" : "warning") << " at "
                                         << line << ":" << column << " containing \"" << substring
                                         << "\"; got:\n"
                                         << dump(result);
}

// Number of diagnostics of `severity`.
inline size_t count(const LoadResult& result, Severity severity)
{
    size_t n = 0;
    for (const Diagnostic& d : result.diagnostics) n += d.severity == severity ? 1 : 0;
    return n;
}

}  // namespace sluice::config::testing
