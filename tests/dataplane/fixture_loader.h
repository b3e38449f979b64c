// Loads the shared packet fixture table (tests/fixtures/packets.json and
// config.json) and compares a data plane's results with it. Kept apart from
// the gtest runner so the DPDK runtime's tests can replay the same table on
// real mbufs, and the XDP tests can read the same data.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "core/forwarding_state.h"
#include "core/packet.h"

namespace sluice::testing {

struct Fixture {
    std::string name;
    std::string category;
    std::string description;
    std::string notes;
    uint16_t in_port = 0;
    uint32_t headroom = 0;            // bytes before the frame in its buffer
    std::vector<uint8_t> input;
    std::string verdict;              // "tx:PORT", "exception" or "drop:LABEL"
    std::string account;              // how stats count it: "tx", "exception" or "drop:LABEL"
    bool has_output = false;
    std::vector<uint8_t> output;      // expected frame after processing
    int backend = -1;                 // backend the generator picked, or -1
    nlohmann::json config;            // config.json with the fixture's config_patch applied
    // Fixtures to run first, in order, on the same fresh worker (a sequence,
    // e.g. rate limits); they precede this one in the table.
    std::vector<std::string> after;
    nlohmann::json xdp_expected;      // what XDP does instead, where it differs by design; null otherwise
};

struct FixtureTable {
    nlohmann::json base_config;
    std::vector<Fixture> fixtures;
};

// The fixtures a fixture's `after` names, in order (pointers into `table`).
// Fails on a name that is not in the table.
Result<std::vector<const Fixture*>> prerequisites(const FixtureTable& table, const Fixture& fixture);

// Reads `dir`/packets.json and the config it names.
Result<FixtureTable> load_fixture_table(const std::string& dir);

// Builds the forwarding state a fixture config describes.
Result<std::unique_ptr<const core::ForwardingState>> build_state(const nlohmann::json& config);

// "aa:bb:cc:dd:ee:ff" into `mac`; false when malformed.
bool parse_mac(const std::string& s, uint8_t mac[6]);

// Address text to (family, zero-padded address); family 0 when invalid.
uint8_t parse_addr(const std::string& s, sluice_addr& out);

// The metrics label of a drop reason ("malformed_l3"), or "unknown".
std::string drop_label(uint8_t reason);

// A verdict in fixture notation: "tx:0", "exception", "drop:no_backend".
std::string verdict_string(const core::Verdict& v);

// How the stats count a verdict: "tx", "exception" or "drop:LABEL".
std::string account_string(const core::Verdict& v);

// Empty when equal, else where and how two frames differ (for messages).
std::string describe_difference(const std::vector<uint8_t>& expected, const uint8_t* actual, size_t actual_len);

}  // namespace sluice::testing
