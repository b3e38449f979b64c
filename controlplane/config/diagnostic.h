// Diagnostics of the config loader: one message tied to a file position,
// printed the way compilers print them so editors can jump to the spot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::config {

enum class Severity : uint8_t {
    kError,    // the config is refused
    kWarning,  // the config loads, but probably not as the operator meant
};

// One finding. line and column are 1-based (toml++ counts columns in code
// points); 0 means "the file as a whole" (e.g. it cannot be opened).
struct Diagnostic {
    std::string file;                      // source name as given to the loader
    uint32_t line = 0;                     // 1-based, 0 = no position
    uint32_t column = 0;                   // 1-based, 0 = no position
    Severity severity = Severity::kError;  // error or warning
    std::string message;                   // what is wrong and, where possible, the fix

    // "FILE:LINE:COL: error: MESSAGE" (or "FILE: error: MESSAGE" without a position).
    std::string to_string() const;
};

// True when any diagnostic is an error.
bool has_errors(const std::vector<Diagnostic>& diagnostics);

}  // namespace sluice::config
