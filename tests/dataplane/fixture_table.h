// What the tests that run the packet fixture table share: the table of
// tests/fixtures loaded once per process, the small connection table they
// run it with, and the sum of every counter a packet can end in. For gtest
// programs (a load error is a test failure and an empty table).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <numeric>
#include <string>

#include "core/conn_table.h"
#include "fixture_loader.h"
#include "test_env.h"

namespace sluice::testing {

inline const FixtureTable& table()
{
    static const FixtureTable t = [] {
        auto r = load_fixture_table(source_path("tests/fixtures"));
        if (!r) ADD_FAILURE() << r.error();
        return r ? std::move(*r) : FixtureTable{};
    }();
    return t;
}

// 1024 entries; timeouts in the tests' clock units: established 300 s,
// transitory 10 s, UDP 30 s (in ns).
inline core::ConnectionTable::Config small_conn_config()
{
    return {1024, 300'000'000'000ull, 10'000'000'000ull, 30'000'000'000ull};
}

// The fixture called `name` (a test failure and an empty fixture if there is none).
inline const Fixture& fixture_named(const std::string& name)
{
    for (const Fixture& f : table().fixtures) {
        if (f.name == name) return f;
    }
    static const Fixture none;
    ADD_FAILURE() << "no fixture " << name;
    return none;
}

// Sum of every counter a packet can end in.
inline uint64_t accounted(const sluice_stats& s)
{
    return s.tx_packets + s.exception_packets + s.control_packets +
           std::accumulate(std::begin(s.drops), std::end(s.drops), uint64_t{0});
}

}  // namespace sluice::testing
