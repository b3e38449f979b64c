// Egress MTUs too small for what the data plane can tell a client: the
// room left for a client packet once encapsulated (MTU minus the tunnel
// header) below IPv6's minimum link MTU, 1280 (RFC 8200 §5), or below 576,
// the IPv4 datagram every host must accept (RFC 791). No ICMP can fix
// such a port: an IPv6 host never lowers its path MTU below 1280, so the
// data planes send no "packet too big" then (they drop and count
// mtu_exceeded); Linux never lowers an IPv4 one below 552 (min_pmtu) and
// then sends without DF, which sluice drops. Only the operator can, by
// raising the MTU, so the drivers log these lines at publish time.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "driver/forwarding_plan.h"

namespace sluice::driver {

inline constexpr uint32_t kIpv6MinMtu = 1280;
inline constexpr uint32_t kIpv4MinDatagram = 576;

// One line per (service, egress port) whose room is under the minimum of
// the VIP's family, naming both and the MTU that would do. `port_mtus`:
// the L3 MTU of each of plan.node.ports, in order. Pure; any thread.
std::vector<std::string> small_mtu_warnings(const ForwardingPlan& plan, const std::vector<uint16_t>& port_mtus);

// The lines not given before (a publish happens at every backend change;
// the log should say it once per configuration). Not thread-safe.
class MtuWarningLog {
public:
    std::vector<std::string> fresh(const std::vector<std::string>& lines);

private:
    std::set<std::string> said_;
};

}  // namespace sluice::driver
