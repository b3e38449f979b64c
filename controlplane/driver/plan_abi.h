// Model -> ABI conversions both drivers' plan translations need (DPDK
// snapshot, XDP description): the model's address bytes are laid out as
// the ABI's (model/address.h), so these are copies, not parsing.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>

#include "driver/forwarding_plan.h"
#include "model/address.h"

extern "C" {
#include "abi/tables.h"
#include "abi/types.h"
}

namespace sluice::driver {

inline sluice_addr to_addr(const model::IpAddress& a)
{
    sluice_addr out{};
    static_assert(sizeof(out.bytes) == sizeof(a.bytes));
    std::memcpy(out.bytes, a.bytes.data(), sizeof(out.bytes));
    return out;
}

inline uint8_t to_family(const model::IpAddress& a) { return a.is_ipv4() ? SLUICE_FAMILY_IPV4 : SLUICE_FAMILY_IPV6; }

// The model's forwarding modes are the ABI's values (model/service.h).
static_assert(static_cast<uint8_t>(model::Forwarding::kIpip) == SLUICE_FWD_IPIP &&
                  static_cast<uint8_t>(model::Forwarding::kGue) == SLUICE_FWD_GUE &&
                  static_cast<uint8_t>(model::Forwarding::kL2Dsr) == SLUICE_FWD_L2DSR,
              "forwarding modes are copied unchanged from the model to the data plane");
inline uint8_t to_forwarding(model::Forwarding f) { return static_cast<uint8_t>(f); }

inline void copy_mac(uint8_t* dst, const std::optional<model::MacAddress>& mac)
{
    if (mac) std::memcpy(dst, mac->bytes.data(), 6);
}

// IPIP and GUE leave through the port's next hop (gateway); L2 DSR goes to
// the backend's own MAC.
inline bool uses_gateway(const PlanService& s)
{
    return s.forwarding == model::Forwarding::kIpip || s.forwarding == model::Forwarding::kGue;
}

}  // namespace sluice::driver
