// Address parsing for the configuration model. inet_pton does the real
// parsing; the code around it exists to turn "invalid" into a message that
// says which of the usual mistakes (port where none belongs, IPv6 without
// brackets, host bits in a prefix) the operator made.
#include "model/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace sluice::model {
namespace {

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// Parses a decimal port 0..65535; digits only (no sign, no spaces).
Result<uint16_t> parse_port(std::string_view text)
{
    unsigned value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || value > 65535) {
        return Error{"port " + quoted(text) + " is not a number from 0 to 65535"};
    }
    return static_cast<uint16_t>(value);
}

// inet_pton without any of the hints; nullopt-like Error when neither family fits.
bool try_inet_pton(std::string_view text, IpAddress& out)
{
    const std::string buffer(text);  // inet_pton needs a NUL-terminated string
    IpAddress address;
    if (::inet_pton(AF_INET, buffer.c_str(), address.bytes.data()) == 1) {
        address.family = IpFamily::kIpv4;
        out = address;
        return true;
    }
    if (::inet_pton(AF_INET6, buffer.c_str(), address.bytes.data()) == 1) {
        address.family = IpFamily::kIpv6;
        out = address;
        return true;
    }
    return false;
}

}  // namespace

std::string_view family_name(IpFamily family)
{
    return family == IpFamily::kIpv4 ? "IPv4" : "IPv6";
}

bool IpAddress::is_unspecified() const
{
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

bool IpAddress::is_multicast() const
{
    return is_ipv4() ? (bytes[0] & 0xF0) == 0xE0 : bytes[0] == 0xFF;
}

bool IpAddress::is_loopback() const
{
    if (is_ipv4()) {
        return bytes[0] == 127;
    }
    return std::all_of(bytes.begin(), bytes.end() - 1, [](uint8_t b) { return b == 0; }) &&
           bytes[15] == 1;
}

std::string IpAddress::to_string() const
{
    if (is_ipv4()) {
        // By hand: inet_ntop formats IPv4 with sprintf, which made address
        // text a tenth of a 100 x 1000-backend plan build.
        std::string out;
        out.reserve(15);
        for (int i = 0; i < 4; ++i) {
            const unsigned v = bytes[i];
            if (i) out.push_back('.');
            if (v >= 100) out.push_back(static_cast<char>('0' + v / 100));
            if (v >= 10) out.push_back(static_cast<char>('0' + v / 10 % 10));
            out.push_back(static_cast<char>('0' + v % 10));
        }
        return out;
    }
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(is_ipv4() ? AF_INET : AF_INET6, bytes.data(), text, sizeof(text));
    return text;
}

std::string Endpoint::to_string() const
{
    const std::string host = address.is_ipv4() ? address.to_string() : "[" + address.to_string() + "]";
    return host + ":" + std::to_string(port);
}

std::string Prefix::to_string() const
{
    return address.to_string() + "/" + std::to_string(length);
}

std::string MacAddress::to_string() const
{
    char text[18];
    std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                  bytes[3], bytes[4], bytes[5]);
    return text;
}

Result<IpAddress> parse_ip_address(std::string_view text)
{
    IpAddress address;
    if (try_inet_pton(text, address)) {
        return address;
    }
    if (text.empty()) {
        return Error{"empty address"};
    }
    if (text.find('/') != std::string_view::npos) {
        return Error{quoted(text) + " is a prefix; expected a single address"};
    }
    if (text.front() == '[') {
        return Error{quoted(text) + ": brackets belong only around an IPv6 address followed by a "
                     "port; write the address without them"};
    }
    // "10.0.0.1:80" or "[::1]:80" where a bare address belongs.
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos && try_inet_pton(text.substr(0, colon), address) &&
        address.is_ipv4() && parse_port(text.substr(colon + 1))) {
        return Error{quoted(text) + " includes a port; expected an address alone"};
    }
    return Error{quoted(text) + " is not an IPv4 or IPv6 address (host names are not resolved)"};
}

Result<Endpoint> parse_endpoint(std::string_view text, PortRule rule, uint16_t default_port)
{
    if (text.empty()) {
        return Error{"empty address; expected 'addr:port'"};
    }
    if (text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos) {
            return Error{quoted(text) + " has '[' without a matching ']'"};
        }
        const std::string_view host = text.substr(1, close - 1);
        IpAddress address;
        if (!try_inet_pton(host, address) || !address.is_ipv6()) {
            return Error{quoted(text) + ": brackets must hold an IPv6 address, found " + quoted(host)};
        }
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty()) {
            if (rule == PortRule::kRequired) {
                return Error{quoted(text) + " has no port; write '[" + std::string(host) + "]:PORT'"};
            }
            return Endpoint{address, default_port};
        }
        if (rest.front() != ':') {
            return Error{quoted(text) + ": expected ':PORT' after ']'"};
        }
        auto port = parse_port(rest.substr(1));
        if (!port) {
            return Error{port.error()};
        }
        return Endpoint{address, port.value()};
    }

    const size_t colons = static_cast<size_t>(std::count(text.begin(), text.end(), ':'));
    IpAddress address;
    if (colons == 0) {
        if (!try_inet_pton(text, address)) {
            return Error{quoted(text) + " is not an IPv4 or IPv6 address (host names are not resolved)"};
        }
        if (rule == PortRule::kRequired) {
            return Error{quoted(text) + " has no port; write '" + std::string(text) + ":PORT'"};
        }
        return Endpoint{address, default_port};
    }
    if (colons == 1) {
        const size_t colon = text.find(':');
        if (!try_inet_pton(text.substr(0, colon), address)) {
            return Error{quoted(text.substr(0, colon)) +
                         " is not an IPv4 address (IPv6 with a port is written '[addr]:port')"};
        }
        auto port = parse_port(text.substr(colon + 1));
        if (!port) {
            return Error{port.error()};
        }
        return Endpoint{address, port.value()};
    }

    // Two or more colons and no brackets: IPv6. A bare literal is fine where
    // the port may be omitted; otherwise the last group might be a port or
    // part of the address, so refuse and show the unambiguous spelling.
    const bool whole_is_ipv6 = try_inet_pton(text, address);
    if (whole_is_ipv6 && rule == PortRule::kOptional) {
        return Endpoint{address, default_port};
    }
    const size_t colon = text.rfind(':');
    IpAddress head;
    if (try_inet_pton(text.substr(0, colon), head) && head.is_ipv6() &&
        parse_port(text.substr(colon + 1))) {
        return Error{quoted(text) + ": an IPv6 address with a port must be written in brackets, "
                     "e.g. '[" + std::string(text.substr(0, colon)) + "]:" +
                     std::string(text.substr(colon + 1)) + "'"};
    }
    if (whole_is_ipv6) {
        return Error{quoted(text) + " has no port; write '[" + std::string(text) + "]:PORT'"};
    }
    return Error{quoted(text) + " is not an IPv6 address; an IPv6 address with a port is written "
                 "'[addr]:port'"};
}

Result<Prefix> parse_prefix(std::string_view text)
{
    const size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        auto single = parse_ip_address(text);
        if (!single) {
            return Error{single.error()};
        }
        return Error{quoted(text) + " has no prefix length; write '" + std::string(text) + "/" +
                     std::to_string(single.value().bit_length()) + "' for a single host"};
    }
    auto address = parse_ip_address(text.substr(0, slash));
    if (!address) {
        return Error{address.error()};
    }
    const std::string_view length_text = text.substr(slash + 1);
    const int bits = address.value().bit_length();
    unsigned length = 0;
    const char* end = length_text.data() + length_text.size();
    auto [ptr, ec] = std::from_chars(length_text.data(), end, length);
    if (length_text.empty() || ec != std::errc() || ptr != end || length > static_cast<unsigned>(bits)) {
        return Error{"prefix length " + quoted(length_text) + " is out of range for " +
                     std::string(family_name(address.value().family)) + " (0.." +
                     std::to_string(bits) + ")"};
    }
    Prefix prefix{address.value(), static_cast<uint8_t>(length)};
    Prefix network = prefix;
    for (int bit = static_cast<int>(length); bit < bits; ++bit) {
        network.address.bytes[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    }
    if (network != prefix) {
        return Error{quoted(text) + " has host bits set; did you mean '" + network.to_string() + "'?"};
    }
    return prefix;
}

Result<MacAddress> parse_mac_address(std::string_view text)
{
    MacAddress mac;
    const auto bad = [&] {
        return Error{quoted(text) + " is not a MAC address; expected six hex pairs like "
                     "'02:00:5e:10:00:01'"};
    };
    if (text.size() != 17) {
        return bad();
    }
    for (size_t i = 0; i < 6; ++i) {
        const std::string_view pair = text.substr(i * 3, 2);
        if (i < 5 && text[i * 3 + 2] != ':') {
            return bad();
        }
        unsigned value = 0;
        auto [ptr, ec] = std::from_chars(pair.data(), pair.data() + 2, value, 16);
        if (ec != std::errc() || ptr != pair.data() + 2) {
            return bad();
        }
        mac.bytes[i] = static_cast<uint8_t>(value);
    }
    return mac;
}

}  // namespace sluice::model
