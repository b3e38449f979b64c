// Plan -> xdp::Description: the XDP data plane's form of a plan, with the
// interfaces as resolved at start and the next-hop MACs the kernel's
// neighbour table (or the operator) gave. Pure (no BPF, no netlink), so it is
// unit-tested without privileges like the DPDK translation (dpdk_state.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "driver/forwarding_plan.h"
#include "loader/description.h"
#include "model/config.h"

namespace sluice::driver {

// A configured interface as the kernel knows it, in NodePlan::ports order.
struct XdpInterface {
    std::string name;               // interface name
    uint32_t ifindex = 0;           // kernel interface index
    std::array<uint8_t, 6> mac{};   // its MAC: source of what XDP sends on it
    uint16_t mtu = 1500;            // its L3 MTU
};

// The MAC of a next-hop address, if known.
using XdpNeighborLookup = std::function<std::optional<model::MacAddress>(const model::IpAddress&)>;

// Builds the description. Port i of the plan is XDP port id i on
// interfaces[i]. Next hops as on the DPDK plane: an L2 DSR backend's MAC is
// its own address's neighbour entry; IPIP/GUE leave through the port's next
// hop, NodePlan::next_hop_mac if set, else the IPv4 gateway's MAC (else
// the IPv6 gateway's). Unresolved MACs stay zero: the program counts
// such packets as NO_NEXTHOP until a republish fills them in. Connection
// entries age out after the longest configured idle timeout (the XDP table
// has one timeout; LRU eviction does the rest). Payload rules are not part
// of the XDP plane (the config loader warns).
Result<xdp::Description> build_xdp_description(const ForwardingPlan& plan,
                                               const std::vector<XdpInterface>& interfaces,
                                               const XdpNeighborLookup& neighbor);

// How the XDP connection table is laid out over the CPUs, and why (logged).
struct XdpConnTableLayout {
    bool shared = false;  // one table for every CPU, else a partition per CPU
    std::string why;
};

// conn_table_mode, and for "auto" the interfaces: shared when one is
// virtual (no `sysfs_net`/<name>/device, and not stacked only on devices:
// veth, tun, a bridge of veths), where a flow can change CPU mid-flow (a
// veth runs XDP on the sending CPU, which the scheduler moves) and in
// partitions would miss on its new CPU and be picked again by the current
// ring, leaving its backend if the ring changed since it began. Per CPU
// when every interface is a device or stacks on devices (a bond, VLAN or
// macvlan over NICs: `lower_*` links): a NIC's RSS keeps a flow on one
// queue, so one CPU, and partitions then share no cache lines between
// CPUs.
XdpConnTableLayout choose_conn_table_layout(model::XdpConnTableMode mode, const std::vector<XdpInterface>& interfaces,
                                            const std::string& sysfs_net = "/sys/class/net");


}  // namespace sluice::driver
