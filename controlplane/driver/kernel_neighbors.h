// The kernel's neighbour table (ARP/ND) over rtnetlink, for the XDP plane:
// there the kernel owns ARP and ND (the program passes them up), so next-hop
// MACs are read from its table, and resolution is asked of it, never done
// by sluice itself.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "common/result.h"
#include "model/address.h"

namespace sluice::driver {

// One usable entry: a MAC in a state the kernel would send to (reachable,
// stale, delay, probe, permanent, noarp).
struct KernelNeighbor {
    model::MacAddress mac;
    uint32_t ifindex = 0;
    uint16_t state = 0;   // NUD_* bits
    bool fresh() const;   // reachable, permanent or noarp: no need to probe again
};

// A NETLINK_ROUTE socket. Control thread only; not thread-safe.
class KernelNeighbors {
public:
    static Result<KernelNeighbors> open();
    KernelNeighbors(KernelNeighbors&& other) noexcept;
    KernelNeighbors& operator=(KernelNeighbors&& other) noexcept;
    KernelNeighbors(const KernelNeighbors&) = delete;
    KernelNeighbors& operator=(const KernelNeighbors&) = delete;
    ~KernelNeighbors();

    // The usable entries on the interfaces `ifindexes` (both families), by
    // address; the first interface's entry wins when several have one.
    Result<std::map<model::IpAddress, KernelNeighbor>> read(const std::set<uint32_t>& ifindexes);

    // Asks the kernel to resolve `address` on `ifindex`: RTM_NEWNEIGH with
    // NTF_USE creates the entry if missing and runs neigh_event_send() on
    // it, exactly what the kernel does before sending a packet there. So it
    // sends an ARP request / neighbour solicitation (or, for a stale entry,
    // a unicast probe after the delay), and nothing else: no datagram to the
    // backend as a UDP "connect and send" trigger would, and no dependence
    // on the routing table picking this interface.
    Result<void> probe(const model::IpAddress& address, uint32_t ifindex);

private:
    explicit KernelNeighbors(int fd) : fd_(fd) {}
    Result<void> request(void* msg, uint32_t len);
    int fd_ = -1;
    uint32_t seq_ = 0;
};

}  // namespace sluice::driver
