// The config loader: TOML text in, a validated model::Config or every
// problem found out. It never throws and never stops at the first error,
// so an operator fixes a file in one round.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "model/config.h"

namespace sluice::config {

// What a load produced. `config` is set exactly when no diagnostic is an
// error; warnings may accompany a successful load.
struct LoadResult {
    std::optional<model::Config> config;  // the model, when valid
    std::vector<Diagnostic> diagnostics;  // errors and warnings, in file order
    std::string sha256;                   // of the bytes read (config/digest.h); empty if none were

    bool ok() const { return config.has_value(); }
};

// Reads and validates the file at `path`; diagnostics name the file as
// `path` was given. Thread-safe (no shared state).
LoadResult load_file(const std::string& path);

// Validates `text` as if read from a file called `source_name` (used only in
// diagnostics). Thread-safe (no shared state).
LoadResult load_string(std::string_view text, std::string_view source_name);

}  // namespace sluice::config
