// Random client→VIP packets for the parity test: v4/v6 clients, ports,
// TCP flags, VLAN tags, IPv4 options, IPv6 extension headers, fragments,
// Ethernet padding, sizes up to past the MTU and ICMP errors about flows
// (some established, some not, some not errors at all), all aimed at the services
// of a fixture config so that every pipeline branch sees traffic.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "loader/description.h"

namespace sluice::testing {

struct RandomPacket {
    std::vector<uint8_t> frame;
    uint16_t in_port;
};

// Builds random packets for `desc`'s services. Deterministic for a seed.
class RandomPacketSource {
public:
    RandomPacketSource(const xdp::Description& desc, uint64_t seed);
    RandomPacket next();

private:
    std::vector<uint8_t> build(const xdp::VipSpec& vip, bool other_proto, bool not_vip);
    std::vector<uint8_t> icmp_error_about(const std::vector<uint8_t>& client_frame);
    uint32_t below(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
    bool chance(uint32_t percent) { return below(100) < percent; }

    const xdp::Description& desc_;
    std::mt19937_64 rng_;
    std::vector<RandomPacket> replay_;  // earlier flows sent again (connection-table hits)
};

}  // namespace sluice::testing
