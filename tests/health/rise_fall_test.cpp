// The rise/fall state machine alone: exact counting and the three initial
// states, with no sockets or clocks involved.
#include <gtest/gtest.h>

#include "health/rise_fall.h"

namespace sluice::health {
namespace {

// Proves: from healthy, exactly `fall` consecutive failures go down, and a
// success in between restarts the count.
TEST(RiseFall, FallCountsConsecutiveFailuresExactly)
{
    RiseFall machine(InitialState::kUp, 2, 3);
    EXPECT_FALSE(machine.record(false));
    EXPECT_FALSE(machine.record(false));
    EXPECT_FALSE(machine.record(true));  // resets the failure count
    EXPECT_FALSE(machine.record(false));
    EXPECT_FALSE(machine.record(false));
    EXPECT_EQ(machine.consecutive_failures(), 2u);
    EXPECT_EQ(machine.record(false), HealthState::kUnhealthy);
    EXPECT_EQ(machine.consecutive_failures(), 3u);
    EXPECT_FALSE(machine.record(false));  // stays down, no second transition
}

// Proves: from unhealthy, exactly `rise` consecutive successes go up, and a
// failure in between restarts the count.
TEST(RiseFall, RiseCountsConsecutiveSuccessesExactly)
{
    RiseFall machine(InitialState::kDown, 3, 1);
    EXPECT_FALSE(machine.record(true));
    EXPECT_FALSE(machine.record(true));
    EXPECT_FALSE(machine.record(false));
    EXPECT_FALSE(machine.record(true));
    EXPECT_FALSE(machine.record(true));
    EXPECT_EQ(machine.record(true), HealthState::kHealthy);
    EXPECT_EQ(machine.consecutive_successes(), 3u);
}

// Proves: the default initial state is decided by the first result alone,
// either way, and exact counting applies from then on.
TEST(RiseFall, UnknownIsDecidedByTheFirstResult)
{
    RiseFall up(InitialState::kUnknown, 5, 5);
    EXPECT_EQ(up.state(), HealthState::kUnknown);
    EXPECT_FALSE(up.healthy());
    EXPECT_EQ(up.record(true), HealthState::kHealthy);
    for (int i = 0; i < 4; ++i) EXPECT_FALSE(up.record(false));
    EXPECT_EQ(up.record(false), HealthState::kUnhealthy);

    RiseFall down(InitialState::kUnknown, 5, 5);
    EXPECT_EQ(down.record(false), HealthState::kUnhealthy);
    for (int i = 0; i < 4; ++i) EXPECT_FALSE(down.record(true));
    EXPECT_EQ(down.record(true), HealthState::kHealthy);
}

// Proves: rise = fall = 1 flips on every changed result.
TEST(RiseFall, ThresholdOfOneFlipsAtOnce)
{
    RiseFall machine(InitialState::kUp, 1, 1);
    EXPECT_EQ(machine.record(false), HealthState::kUnhealthy);
    EXPECT_EQ(machine.record(true), HealthState::kHealthy);
    EXPECT_FALSE(machine.record(true));
}

// Proves: lowering `fall` below the failures already counted takes effect
// on the next failure, not after a fresh run of `fall`.
TEST(RiseFall, NewThresholdsApplyToTheNextResult)
{
    RiseFall machine(InitialState::kUp, 2, 10);
    for (int i = 0; i < 4; ++i) EXPECT_FALSE(machine.record(false));
    machine.set_thresholds(2, 3);
    EXPECT_EQ(machine.record(false), HealthState::kUnhealthy);
}

}  // namespace
}  // namespace sluice::health
