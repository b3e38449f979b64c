// IP prefixes as the filters take them: parsed from operator text
// ("10.0.0.0/8", "2001:db8::/32", a bare address = a host prefix) and
// validated, so a typo is refused at config load with a message that says
// what is wrong instead of silently matching more (or less) than meant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

extern "C" {
#include "abi/types.h"
}

namespace sluice::filter {

// One source prefix. Addresses are in network byte order, laid out as
// union sluice_addr (IPv4 in the first 4 bytes, the other 12 zero), so two
// equal prefixes compare equal byte for byte.
struct Prefix {
    uint8_t family = SLUICE_FAMILY_IPV4;  // SLUICE_FAMILY_IPV4 or _IPV6
    uint8_t length = 0;                   // 0..32 (IPv4) or 0..128 (IPv6)
    uint8_t bytes[16] = {};               // network order; bits past `length` zero

    friend bool operator==(const Prefix&, const Prefix&) = default;
};

// Parses "ADDR/LEN" or a bare "ADDR" (a /32 or /128). Refuses, each with
// its own message naming the text: an unparsable address or length, a
// length out of range for the family (e.g. "10.0.0.0/33"), host bits set
// past the length ("10.1.0.0/8": write "10.0.0.0/8"), and IPv4-mapped IPv6
// ("::ffff:10.0.0.0/104"), which would never match because IPv4 packets are
// looked up as IPv4. Control thread (any thread: pure, allocates only for
// the error message).
Result<Prefix> parse_prefix(std::string_view text);

// Checks a prefix built in code rather than parsed: known family, length in
// range, bytes past the family's width zero, no host bits. Pure, any thread.
Result<void> validate_prefix(const Prefix& prefix);

// "10.0.0.0/8" / "2001:db8::/32", for messages and tests. Any thread.
std::string to_string(const Prefix& prefix);

// True when `addr` (network order, 4 or 16 bytes by the prefix's family)
// lies inside `prefix`. A plain bit comparison: the brute-force reference
// the tests check the LPM tables against, and used at build time. Any thread.
bool prefix_contains(const Prefix& prefix, const uint8_t* addr);

}  // namespace sluice::filter
