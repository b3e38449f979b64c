// What the DPDK runtime publishes to its workers in one atomic store: the
// forwarding state and the filters built for it. One RCU-published object,
// so a burst never mixes one config's VIPs with another's filters, and the
// old FilterSet (LPM tables, Hyperscan database) is freed with the old state
// after the grace period.
#pragma once

#include <memory>

#include "core/forwarding_state.h"
#include "filter/filter_set.h"

namespace sluice::dpdk {

struct Snapshot {
    std::unique_ptr<const core::ForwardingState> forwarding;  // never null
    // Null when the config has no filter at all (no ACL prefix, rate limit
    // or payload rule): the worker then runs the filterless pipeline and no
    // LPM table or Hyperscan database exists. Shared: a republication that
    // changes only forwarding (a next hop's MAC) keeps the same immutable
    // FilterSet, so it is not rebuilt (64 MiB per LPM family) and its rate
    // limits and rule counters carry on; it is freed with the last snapshot
    // that holds it, after that snapshot's grace period.
    std::shared_ptr<const filter::FilterSet> filters;
};

}  // namespace sluice::dpdk
