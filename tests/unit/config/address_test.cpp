// Address, endpoint, prefix and MAC parsing of the model: valid forms
// round-trip, and each classic mistake gets its own explanation.
#include <gtest/gtest.h>

#include "model/address.h"

namespace sluice::model {
namespace {

std::string error_of(const Result<Endpoint>& r) { return r ? "(parsed)" : r.error(); }

// Both families parse and print canonically, IPv6 endpoints in brackets.
TEST(Address, ValidFormsRoundTrip)
{
    EXPECT_EQ(parse_ip_address("10.0.0.1").value().to_string(), "10.0.0.1");
    EXPECT_EQ(parse_ip_address("2001:DB8:0::1").value().to_string(), "2001:db8::1");
    EXPECT_EQ(parse_endpoint("10.0.0.1:80").value().to_string(), "10.0.0.1:80");
    EXPECT_EQ(parse_endpoint("[2001:db8::1]:443").value().to_string(), "[2001:db8::1]:443");
    EXPECT_EQ(parse_prefix("2001:db8::/32").value().to_string(), "2001:db8::/32");
    EXPECT_EQ(parse_prefix("0.0.0.0/0").value().length, 0);
    EXPECT_EQ(parse_mac_address("02:00:5E:10:00:01").value().to_string(), "02:00:5e:10:00:01");
}

// IPv4 fills the first four bytes and leaves the rest zero, as union sluice_addr does.
TEST(Address, Ipv4LayoutMatchesAbi)
{
    const IpAddress a = parse_ip_address("192.0.2.1").value();
    EXPECT_EQ(a.family, IpFamily::kIpv4);
    EXPECT_EQ(a.bytes[0], 192);
    EXPECT_EQ(a.bytes[3], 1);
    EXPECT_EQ(a.bytes[4], 0);
    EXPECT_EQ(a.bytes[15], 0);
}

// The endpoint mistakes operators make each get a specific message.
TEST(Address, EndpointMistakes)
{
    EXPECT_NE(error_of(parse_endpoint("2001:db8::1:80")).find("'[2001:db8::1]:80'"), std::string::npos);
    EXPECT_NE(error_of(parse_endpoint("10.0.0.1")).find("has no port"), std::string::npos);
    EXPECT_NE(error_of(parse_endpoint("[2001:db8::1]")).find("has no port"), std::string::npos);
    EXPECT_NE(error_of(parse_endpoint("[10.0.0.1]:80")).find("brackets must hold an IPv6 address"), std::string::npos);
    EXPECT_NE(error_of(parse_endpoint("10.0.0.1:99999")).find("not a number from 0 to 65535"), std::string::npos);
    EXPECT_NE(error_of(parse_endpoint("web.example:80")).find("not an IPv4 address"), std::string::npos);
}

// Where the port may be omitted, a bare address (even IPv6) takes the default port.
TEST(Address, OptionalPort)
{
    EXPECT_EQ(parse_endpoint("2001:db8::53", PortRule::kOptional, 53).value().to_string(), "[2001:db8::53]:53");
    EXPECT_EQ(parse_endpoint("192.0.2.53", PortRule::kOptional, 53).value().port, 53);
}

// Prefixes refuse a missing length, an oversized length and set host bits.
TEST(Address, PrefixMistakes)
{
    EXPECT_NE(parse_prefix("10.0.0.1").error().find("'10.0.0.1/32'"), std::string::npos);
    EXPECT_NE(parse_prefix("10.0.0.0/33").error().find("(0..32)"), std::string::npos);
    EXPECT_NE(parse_prefix("2001:db8::1/64").error().find("did you mean '2001:db8::/64'?"), std::string::npos);
    EXPECT_NE(parse_prefix("10.0.0.0/-1").error().find("out of range"), std::string::npos);
}

// Special addresses are classified for the loader's checks.
TEST(Address, Classification)
{
    EXPECT_TRUE(parse_ip_address("::").value().is_unspecified());
    EXPECT_TRUE(parse_ip_address("239.1.1.1").value().is_multicast());
    EXPECT_TRUE(parse_ip_address("ff02::1").value().is_multicast());
    EXPECT_TRUE(parse_ip_address("127.0.0.2").value().is_loopback());
    EXPECT_TRUE(parse_ip_address("::1").value().is_loopback());
    EXPECT_FALSE(parse_ip_address("::2").value().is_loopback());
}

}  // namespace
}  // namespace sluice::model
