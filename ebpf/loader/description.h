// The plane-neutral description of what the XDP data plane should forward:
// node addresses, ports, backends, services with their Maglev rings, ACL
// prefixes and rate limits. Plain structs over the ABI types and std
// containers only (no libbpf, no DPDK), so the control plane's
// DataplaneDriver can fill one from its model and hand it to XdpDataplane.
#pragma once

#include <cstdint>
#include <vector>

#include "core/shared_ring.h"  // header-only over the ABI: the plans' own rings

extern "C" {
#include "abi/tables.h"
#include "abi/types.h"
}

namespace sluice::xdp {

struct NodeSpec {
    sluice_addr local_v4{};          // outer source of IPv4 tunnels (v4 field)
    sluice_addr local_v6{};          // outer source of IPv6 tunnels
    bool exception_path = true;      // informational: XDP always passes non-VIP traffic
    // Idle time before a connection entry expires, by state
    // (SLUICE_CONN_TCP_TRANSITORY, _ESTABLISHED, _CLOSING, _UDP); the
    // defaults are [conntrack]'s: tcp_syn_fin_s, tcp_established_s,
    // tcp_syn_fin_s, udp_s.
    uint64_t conn_timeout_ns[SLUICE_CONN_STATES] = {30'000'000'000ull, 3'600'000'000'000ull, 30'000'000'000ull,
                                                    60'000'000'000ull};
    // How many shares each rate limit is split into, one per CPU (the DPDK
    // plane splits per worker). 0: the number of possible CPUs, so the
    // limits hold whatever RSS does. 1: every CPU enforces the whole limit
    // (one CPU receives the VIP's traffic, or tests pinned to one CPU).
    uint32_t rate_limit_shares = 0;
    // Each CPU's limit on the ICMP errors it generates (not split between
    // CPUs): errors per second (0 = unlimited) and bucket depth.
    uint64_t icmp_errors_per_sec = 1000;
    uint64_t icmp_errors_burst = 50;
};

struct PortSpec {
    uint16_t id = 0;                 // port id < SLUICE_MAX_PORTS
    uint8_t mac[6]{};                // our MAC on it
    uint8_t nexthop_mac[6]{};        // router toward the backends; zero = unresolved
    uint16_t mtu = 1500;             // L3 MTU
    uint16_t egress_port = 0;        // where VIP traffic received here leaves; itself = one-arm
    uint32_t ifindex = 0;            // interface the port is (0: not bound yet, see bind_interface)
};

struct BackendSpec {
    uint32_t id = 0;                 // dense id < SLUICE_MAX_BACKENDS
    uint8_t family = SLUICE_FAMILY_IPV4;
    sluice_addr addr{};              // outer destination, or L2 DSR next hop
    uint8_t mac[6]{};                // L2 DSR: resolved MAC, zero until resolved
    uint8_t flags = SLUICE_BACKEND_F_VALID;  // SLUICE_BACKEND_F_*
};

// Token-bucket limits of one service (0 = unlimited). Whole tokens; each
// CPU gets its share, as each DPDK worker does.
struct RateLimitSpec {
    uint64_t packets_per_sec = 0;
    uint64_t packets_burst = 0;
    uint64_t new_flows_per_sec = 0;
    uint64_t new_flows_burst = 0;

    friend bool operator==(const RateLimitSpec&, const RateLimitSpec&) = default;
};

struct VipSpec {
    sluice_vip_key key{};            // address, port (0 = all), protocol, family
    uint32_t vip_id = 0;             // dense id < SLUICE_MAX_VIPS, stable across updates
    uint8_t forwarding = SLUICE_FWD_IPIP;  // enum sluice_forwarding
    uint8_t flags = 0;               // SLUICE_VIP_F_HASH_NO_SPORT (ACL/RATE_LIMIT are derived)
    uint16_t gue_port = 0;           // host order, GUE only
    core::SharedRing ring;           // Maglev ring, prime size; SLUICE_BACKEND_NONE = no backend.
                                     // The plan's own body: an unchanged service costs no copy
    RateLimitSpec limits;
};

// One ACL prefix. scope = vip_id, or SLUICE_MAX_VIPS for the global scope.
struct AclPrefixSpec {
    uint32_t scope = SLUICE_MAX_VIPS;
    uint8_t family = SLUICE_FAMILY_IPV4;
    sluice_addr addr{};
    uint8_t prefix_len = 0;          // bits, <= 32 or 128
    bool deny = false;               // deny list, else allow list
};

struct Description {
    NodeSpec node;
    std::vector<PortSpec> ports;
    std::vector<BackendSpec> backends;
    std::vector<VipSpec> vips;
    std::vector<AclPrefixSpec> acl;
};

}  // namespace sluice::xdp
