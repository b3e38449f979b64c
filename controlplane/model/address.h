// Addresses as the configuration model holds them: IPv4/IPv6 addresses,
// address:port endpoints, source prefixes and MAC addresses, with parsers
// whose error messages are written for the operator who typed the text.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sluice::model {

enum class IpFamily : uint8_t {
    kIpv4 = 4,  // same values as SLUICE_FAMILY_IPV4/6 in dataplane/abi/types.h
    kIpv6 = 6,
};

// "IPv4" or "IPv6", for messages.
std::string_view family_name(IpFamily family);

// An IPv4 or IPv6 address in network byte order. IPv4 occupies the first
// four bytes and the rest stay zero, the layout of union sluice_addr, so two
// equal addresses compare equal byte for byte.
struct IpAddress {
    IpFamily family = IpFamily::kIpv4;  // which of the two the bytes hold
    std::array<uint8_t, 16> bytes{};    // network byte order; IPv4 in [0..3]

    bool is_ipv4() const { return family == IpFamily::kIpv4; }
    bool is_ipv6() const { return family == IpFamily::kIpv6; }
    int bit_length() const { return is_ipv4() ? 32 : 128; }
    bool is_unspecified() const;  // 0.0.0.0 or ::
    bool is_multicast() const;    // 224.0.0.0/4 or ff00::/8
    bool is_loopback() const;     // 127.0.0.0/8 or ::1
    std::string to_string() const;  // canonical inet_ntop text

    auto operator<=>(const IpAddress&) const = default;
};

// An address and a port. Port 0 in a VIP means "every port of this address".
struct Endpoint {
    IpAddress address;  // the address part
    uint16_t port = 0;  // host byte order

    std::string to_string() const;  // "1.2.3.4:80" or "[2001:db8::1]:80"
    auto operator<=>(const Endpoint&) const = default;
};

// An address prefix such as 10.0.0.0/8. Host bits are always zero: the
// parser refuses "10.0.0.1/8" rather than silently widening it.
struct Prefix {
    IpAddress address;   // network address, host bits zero
    uint8_t length = 0;  // prefix length in bits, 0..32 or 0..128

    std::string to_string() const;  // "10.0.0.0/8"
    auto operator<=>(const Prefix&) const = default;
};

// An Ethernet MAC address.
struct MacAddress {
    std::array<uint8_t, 6> bytes{};  // transmission order

    std::string to_string() const;  // "02:00:00:00:00:01"
    auto operator<=>(const MacAddress&) const = default;
};

// Parses a bare IPv4 or IPv6 literal (no port, no brackets, no prefix).
// Host names are refused: sluice never resolves names in its config.
Result<IpAddress> parse_ip_address(std::string_view text);

// How parse_endpoint treats a missing port.
enum class PortRule : uint8_t {
    kRequired,  // "addr:port" or "[v6]:port" only
    kOptional,  // a bare address is accepted and gets default_port
};

// Parses "1.2.3.4:80" or "[2001:db8::1]:80". An IPv6 address followed by a
// port without brackets ("2001:db8::1:80") is refused with a hint, because
// it is ambiguous; with PortRule::kOptional a bare IPv6 literal is taken as
// an address with default_port.
Result<Endpoint> parse_endpoint(std::string_view text, PortRule rule = PortRule::kRequired,
                                uint16_t default_port = 0);

// Parses "addr/len". Refuses a missing length, a length beyond the family's
// bits and set host bits (the message names the prefix that was meant).
Result<Prefix> parse_prefix(std::string_view text);

// Parses "aa:bb:cc:dd:ee:ff" (hex, colon separated, case-insensitive).
Result<MacAddress> parse_mac_address(std::string_view text);

}  // namespace sluice::model
