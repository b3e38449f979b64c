// Formatting of loader diagnostics.
#include "config/diagnostic.h"

#include <algorithm>

namespace sluice::config {

std::string Diagnostic::to_string() const
{
    std::string text = file;
    if (line != 0) {
        text += ":" + std::to_string(line) + ":" + std::to_string(column);
    }
    text += severity == Severity::kError ? ": error: " : ": warning: ";
    text += message;
    return text;
}

bool has_errors(const std::vector<Diagnostic>& diagnostics)
{
    return std::any_of(diagnostics.begin(), diagnostics.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

}  // namespace sluice::config
