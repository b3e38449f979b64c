// Plan -> core::ForwardingState: the DPDK data plane's form of a plan, with
// the ports as started and the MACs the neighbour tables resolved. Pure (no
// EAL needed), so it is tested on its own.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "common/result.h"
#include "core/forwarding_state.h"
#include "driver/forwarding_plan.h"
#include "filter/filter_set.h"

namespace sluice::driver {

// A port as the runtime started it, in NodePlan::ports order.
struct StartedPort {
    uint16_t port_id = 0;             // DPDK port id (< core::kMaxPorts)
    std::array<uint8_t, 6> mac{};     // its MAC
    uint16_t mtu = 1500;              // its L3 MTU
};

// The MAC for a next-hop address, if known (ARP/ND, or static entries).
using NeighborLookup = std::function<std::optional<model::MacAddress>(const model::IpAddress&)>;

// Builds the snapshot. Next hops: an L2 DSR backend's MAC is its own
// address's neighbour entry; IPIP/GUE leave through the port's next hop,
// NodePlan::next_hop_mac if set, else the gateway of the backend family's
// neighbour entry. Unresolved MACs stay zero, and the data plane counts
// such packets as NO_NEXTHOP until a republish fills them in.
// `exception_available`: a TAP exists to take exception packets; without
// one the state turns the exception path off (counted NOT_FOR_VIP).
Result<std::unique_ptr<const core::ForwardingState>> build_dpdk_state(const ForwardingPlan& plan,
                                                                      const std::vector<StartedPort>& ports,
                                                                      const NeighborLookup& neighbor,
                                                                      bool exception_available);

// The plan's filters in the data plane's form: the global and per-VIP
// ACLs (by vip_id), each VIP's token buckets, and every payload rule, the
// global ones scoped to all VIPs and a service's to its vip_id. Pure (no
// EAL); FilterSet::build() then makes the tables.
filter::FilterConfig build_filter_config(const ForwardingPlan& plan);


}  // namespace sluice::driver
