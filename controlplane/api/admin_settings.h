// Where and how the admin API listens: the settings the server is built
// with, the loopback rule (a token is required off loopback) and reading the
// bearer token from daemon.admin.token_file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/config.h"

namespace sluice::api {

struct AdminSettings {
    std::string listen = "127.0.0.1";  // bind address: an IPv4/IPv6 literal, no brackets
    uint16_t port = 9180;              // TCP port; 0 = any free port (tests, embedding)
    std::optional<std::string> token;  // bearer token; required when `listen` is not loopback
    // CPUs the server threads may run on; empty = inherit the affinity of the
    // thread that calls start(). The daemon passes its control core(s) so an
    // HTTP burst can never steal a busy-polling worker core.
    std::vector<unsigned> cpus;
    unsigned threads = 4;              // request threads (the admin API needs few)
};

// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. Error: not an IP literal.
Result<bool> is_loopback_address(std::string_view listen);

// Start-up check: the listen address parses and, off loopback, a non-empty
// token is set. The error says what to configure. Thread-safe.
Result<void> check_settings(const AdminSettings& settings);

// Reads a token file: the first line, surrounding whitespace trimmed.
// Error: unreadable or empty file. Thread-safe.
Result<std::string> read_token_file(const std::string& path);

// AdminSettings from the config's [daemon.admin], reading token_file when
// set. Thread-safe.
Result<AdminSettings> settings_from_config(const model::AdminApi& admin);

// Compares a presented token with the expected one in time that depends
// only on the expected token's length, so the comparison does not leak how
// many leading bytes matched.
bool tokens_equal(std::string_view presented, std::string_view expected);

}  // namespace sluice::api
