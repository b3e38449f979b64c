// Prefix parsing and validation (see prefix.h).
#include "filter/prefix.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sluice::filter {
namespace {

uint8_t family_bits(uint8_t family) { return family == SLUICE_FAMILY_IPV4 ? 32 : 128; }

// First set bit at or after `from` (bit 0 = MSB of byte 0), or -1.
int first_bit_set_from(const uint8_t* bytes, unsigned from, unsigned width)
{
    for (unsigned bit = from; bit < width; ++bit) {
        if (bytes[bit / 8] & (0x80u >> (bit % 8))) {
            return static_cast<int>(bit);
        }
    }
    return -1;
}

}  // namespace

Result<void> validate_prefix(const Prefix& p)
{
    if (p.family != SLUICE_FAMILY_IPV4 && p.family != SLUICE_FAMILY_IPV6) {
        return make_error("prefix has unknown address family " + std::to_string(p.family) +
                          " (want 4 or 6)");
    }
    const uint8_t width = family_bits(p.family);
    if (p.length > width) {
        return make_error("prefix length /" + std::to_string(p.length) + " is out of range for " +
                          (p.family == SLUICE_FAMILY_IPV4 ? "IPv4 (0..32)" : "IPv6 (0..128)"));
    }
    if (p.family == SLUICE_FAMILY_IPV4 && first_bit_set_from(p.bytes, 32, 128) >= 0) {
        return make_error("IPv4 prefix has bytes set past its 4 address bytes");
    }
    if (first_bit_set_from(p.bytes, p.length, width) >= 0) {
        Prefix network = p;
        for (unsigned bit = p.length; bit < width; ++bit) {
            network.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
        }
        return make_error("prefix " + to_string(p) + " has host bits set past /" +
                          std::to_string(p.length) + "; did you mean " + to_string(network) + "?");
    }
    return {};
}

Result<Prefix> parse_prefix(std::string_view text)
{
    const std::string quoted = "\"" + std::string(text) + "\"";
    const size_t slash = text.find('/');
    const std::string addr_text(text.substr(0, slash));
    Prefix p;
    if (addr_text.find(':') != std::string::npos) {
        p.family = SLUICE_FAMILY_IPV6;
        if (inet_pton(AF_INET6, addr_text.c_str(), p.bytes) != 1) {
            return make_error("bad prefix " + quoted + ": \"" + addr_text + "\" is not an IPv6 address");
        }
        static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(p.bytes, kMapped, sizeof kMapped) == 0) {
            return make_error("bad prefix " + quoted +
                              ": IPv4-mapped IPv6 never matches (IPv4 packets are looked up as "
                              "IPv4); write the IPv4 prefix instead");
        }
    } else {
        p.family = SLUICE_FAMILY_IPV4;
        if (inet_pton(AF_INET, addr_text.c_str(), p.bytes) != 1) {
            return make_error("bad prefix " + quoted + ": \"" + addr_text + "\" is not an IPv4 address");
        }
    }
    const unsigned width = family_bits(p.family);
    if (slash == std::string_view::npos) {
        p.length = static_cast<uint8_t>(width);
    } else {
        const std::string_view len_text = text.substr(slash + 1);
        unsigned len = 0;
        const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
        if (len_text.empty() || len_text.size() > 3 || ec != std::errc() ||
            end != len_text.data() + len_text.size()) {
            return make_error("bad prefix " + quoted + ": length \"" + std::string(len_text) +
                              "\" is not a number");
        }
        if (len > width) {
            return make_error("bad prefix " + quoted + ": length /" + std::to_string(len) +
                              " is out of range for " +
                              (p.family == SLUICE_FAMILY_IPV4 ? "IPv4 (0..32)" : "IPv6 (0..128)"));
        }
        p.length = static_cast<uint8_t>(len);
    }
    if (auto ok = validate_prefix(p); !ok) {
        return make_error("bad prefix " + quoted + ": " + ok.error());
    }
    return p;
}

std::string to_string(const Prefix& p)
{
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(p.family == SLUICE_FAMILY_IPV4 ? AF_INET : AF_INET6, p.bytes, buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(p.length);
}

bool prefix_contains(const Prefix& p, const uint8_t* addr)
{
    const unsigned whole = p.length / 8;
    if (std::memcmp(p.bytes, addr, whole) != 0) {
        return false;
    }
    const unsigned rest = p.length % 8;
    if (rest == 0) {
        return true;
    }
    const uint8_t mask = static_cast<uint8_t>(0xFFu << (8 - rest));
    return (p.bytes[whole] & mask) == (addr[whole] & mask);
}

}  // namespace sluice::filter
