// Egress MTUs too small for a client (see mtu_check.h).
#include "driver/mtu_check.h"

#include <algorithm>

#include "driver/plan_abi.h"

namespace sluice::driver {
namespace {

// The tunnel header a packet to `backend` gets: the data planes' own
// definition, in the model's terms.
uint32_t overhead(model::Forwarding forwarding, const model::IpAddress& backend)
{
    return sluice_encap_overhead(to_forwarding(forwarding), to_family(backend));
}

}  // namespace

std::vector<std::string> small_mtu_warnings(const ForwardingPlan& plan, const std::vector<uint16_t>& port_mtus)
{
    std::vector<std::string> out;
    if (port_mtus.size() != plan.node.ports.size()) return out;
    std::set<uint16_t> egress;
    for (const PlanPort& p : plan.node.ports) egress.insert(p.egress);
    for (const PlanService& s : plan.services) {
        // The largest header any of its backends needs: a client's packet
        // has to fit behind that one to be sure of its way.
        uint32_t worst = 0;
        for (const PlanBackend& b : s.backends) worst = std::max(worst, overhead(s.forwarding, b.address));
        const bool v6 = s.vip.address.family == model::IpFamily::kIpv6;
        const uint32_t minimum = v6 ? kIpv6MinMtu : kIpv4MinDatagram;
        for (uint16_t e : egress) {
            if (e >= port_mtus.size()) continue;
            const uint32_t mtu = port_mtus[e];
            const uint32_t room = mtu > worst ? mtu - worst : 0;
            if (room >= minimum) continue;
            std::string line = "service " + s.name + " (VIP " + s.vip.address.to_string() + "): egress " +
                               plan.node.ports[e].name + " has MTU " + std::to_string(mtu) + ", which leaves " +
                               std::to_string(room) + " bytes for a client packet after the " +
                               std::to_string(worst) + "-byte tunnel header, below the " + std::to_string(minimum) +
                               " every " + (v6 ? "IPv6 link must carry" : "IPv4 host must accept") + ": ";
            line += v6 ? "larger client packets are dropped (mtu_exceeded) and no \"packet too big\" is sent, "
                         "since no host lowers its path MTU below 1280"
                       : "\"fragmentation needed\" is sent, but hosts that do not lower their path MTU that far "
                         "(Linux: 552) send larger packets without DF, which are dropped (mtu_exceeded)";
            line += "; raise the MTU of " + plan.node.ports[e].name + " to at least " +
                    std::to_string(minimum + worst);
            out.push_back(std::move(line));
        }
    }
    return out;
}

std::vector<std::string> MtuWarningLog::fresh(const std::vector<std::string>& lines)
{
    std::vector<std::string> out;
    for (const std::string& l : lines) {
        if (said_.insert(l).second) out.push_back(l);
    }
    return out;
}

}  // namespace sluice::driver
