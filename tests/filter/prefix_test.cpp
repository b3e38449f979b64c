// Prefix parsing: what operators write is accepted exactly, and every
// mistake is refused with a message that says what is wrong.
#include <gtest/gtest.h>

#include <cstring>

#include "filter/prefix.h"

namespace sluice::filter {
namespace {

// Proves well-formed prefixes parse to the right family, length and bytes,
// including the /0, /32 and /128 edges and bare host addresses.
TEST(PrefixParse, AcceptsWellFormedPrefixes)
{
    struct Case {
        const char* text;
        uint8_t family;
        uint8_t length;
        const char* canonical;
    } cases[] = {
        {"10.0.0.0/8", SLUICE_FAMILY_IPV4, 8, "10.0.0.0/8"},
        {"0.0.0.0/0", SLUICE_FAMILY_IPV4, 0, "0.0.0.0/0"},
        {"192.0.2.7/32", SLUICE_FAMILY_IPV4, 32, "192.0.2.7/32"},
        {"192.0.2.7", SLUICE_FAMILY_IPV4, 32, "192.0.2.7/32"},
        {"2001:db8::/32", SLUICE_FAMILY_IPV6, 32, "2001:db8::/32"},
        {"::/0", SLUICE_FAMILY_IPV6, 0, "::/0"},
        {"2001:db8::1/128", SLUICE_FAMILY_IPV6, 128, "2001:db8::1/128"},
        {"2001:db8::1", SLUICE_FAMILY_IPV6, 128, "2001:db8::1/128"},
        {"2001:db8:8000::/33", SLUICE_FAMILY_IPV6, 33, "2001:db8:8000::/33"},
    };
    for (const Case& c : cases) {
        auto p = parse_prefix(c.text);
        ASSERT_TRUE(p.ok()) << c.text << ": " << p.error();
        EXPECT_EQ(p->family, c.family) << c.text;
        EXPECT_EQ(p->length, c.length) << c.text;
        EXPECT_EQ(to_string(*p), c.canonical) << c.text;
    }
    const uint8_t ten[4] = {10, 0, 0, 0};
    auto p = parse_prefix("10.0.0.0/8");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(0, std::memcmp(p->bytes, ten, 4));
}

// Proves each kind of mistake is refused and the message names the text
// and the problem (host bits, range, family mix-ups, junk).
TEST(PrefixParse, RefusesBadPrefixesWithMessages)
{
    struct Case {
        const char* text;
        const char* message_part;
    } cases[] = {
        {"10.1.0.0/8", "host bits set past /8; did you mean 10.0.0.0/8"},
        {"192.0.2.1/24", "did you mean 192.0.2.0/24"},
        {"2001:db8::1/64", "did you mean 2001:db8::/64"},
        {"10.0.0.0/33", "out of range for IPv4 (0..32)"},
        {"10.0.0.0/64", "out of range for IPv4"},
        {"2001:db8::/129", "out of range for IPv6 (0..128)"},
        {"10.0.0.0/-1", "is not a number"},
        {"10.0.0.0/", "is not a number"},
        {"10.0.0.0/8x", "is not a number"},
        {"10.0.0/8", "is not an IPv4 address"},
        {"300.0.0.0/8", "is not an IPv4 address"},
        {"2001:db8::g/32", "is not an IPv6 address"},
        {"::ffff:10.0.0.0/104", "IPv4-mapped IPv6 never matches"},
        {"", "is not an IPv4 address"},
        {"example.com/8", "is not an IPv4 address"},
    };
    for (const Case& c : cases) {
        auto p = parse_prefix(c.text);
        ASSERT_FALSE(p.ok()) << c.text << " was accepted";
        EXPECT_NE(p.error().find(c.message_part), std::string::npos) << c.text << " → " << p.error();
        EXPECT_NE(p.error().find(std::string("\"") + c.text + "\""), std::string::npos)
            << "message does not quote the input: " << p.error();
    }
}

// Proves prefixes built in code (not parsed) are validated the same way,
// including an IPv4 prefix with bytes past its 4 address bytes.
TEST(PrefixValidate, RefusesBadStructs)
{
    Prefix p;
    p.family = SLUICE_FAMILY_IPV4;
    p.length = 8;
    p.bytes[0] = 10;
    EXPECT_TRUE(validate_prefix(p).ok());
    p.bytes[5] = 1;
    EXPECT_FALSE(validate_prefix(p).ok());
    p.bytes[5] = 0;
    p.length = 40;
    EXPECT_FALSE(validate_prefix(p).ok());
    p.family = 5;
    p.length = 8;
    EXPECT_NE(validate_prefix(p).error().find("unknown address family"), std::string::npos);
}

}  // namespace
}  // namespace sluice::filter
