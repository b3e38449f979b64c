// A brute-force model of the ACL semantics written in acl.h: a linear scan
// over every prefix of every list, sharing no code with the LPM build. The
// ACL tests compare the real tables against it.
#pragma once

#include <cstdint>

#include "filter/acl.h"

namespace sluice::filter::testing {

// SLUICE_ACL_ALLOW or SLUICE_ACL_DENY for a source (4 or 16 bytes, network
// order, by `family`) sent to `vip_id`.
uint8_t reference_verdict(const AclConfig& config, uint8_t family, const uint8_t* addr, uint16_t vip_id);

}  // namespace sluice::filter::testing
