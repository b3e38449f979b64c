// The SHA-256 of a config file's bytes, so an operator (or
// scripts/sluice-push-config) can tell which file a running sluiced loaded:
// GET /v1/stats "config.sha256" equals `sha256sum FILE` of that file.
#pragma once

#include <string>
#include <string_view>

namespace sluice::config {

// Lower-case hex, 64 characters. Pure; any thread.
std::string sha256_hex(std::string_view bytes);

}  // namespace sluice::config
