// Source ACL on rte_lpm / rte_lpm6: the semantics of acl.h case by case,
// then bulk lookups against single lookups and a brute-force reference on
// random addresses and overlapping random prefixes.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "acl_reference.h"
#include "filter/acl.h"

namespace sluice::filter {
namespace {

constexpr uint8_t A = SLUICE_ACL_ALLOW;
constexpr uint8_t D = SLUICE_ACL_DENY;

AclScope scope(const std::vector<std::string>& allow, const std::vector<std::string>& deny)
{
    auto s = parse_acl_scope(allow, deny);
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? *s : AclScope{};
}

// The single-address verdict for text `addr` ("10.1.2.3" or "2001:db8::1").
uint8_t check(const Acl& acl, const std::string& addr, uint16_t vip)
{
    uint8_t bytes[16] = {};
    if (addr.find(':') != std::string::npos) {
        EXPECT_EQ(1, inet_pton(AF_INET6, addr.c_str(), bytes)) << addr;
        return acl.check_v6(bytes, vip);
    }
    EXPECT_EQ(1, inet_pton(AF_INET, addr.c_str(), bytes)) << addr;
    uint32_t be;
    std::memcpy(&be, bytes, 4);
    return acl.check_v4(be, vip);
}

// The config behind the semantics table below; each VIP shows one rule.
AclConfig semantics_config()
{
    AclConfig c;
    c.global = scope({}, {"192.0.2.0/24", "2001:db8:bad::/48"});
    c.per_vip[1] = scope({"10.0.0.0/8", "2001:db8::/32"}, {"10.1.0.0/16", "2001:db8:1::/48"});
    c.per_vip[2] = scope({"10.1.2.3/32", "10.1.2.128/25"}, {"10.1.2.0/24"});
    c.per_vip[3] = scope({}, {"0.0.0.0/0"});
    c.per_vip[4] = scope({"0.0.0.0/0"}, {"203.0.113.7/32"});
    c.per_vip[5] = scope({"2001:db8::1/128"}, {"::/0"});
    c.per_vip[6] = scope({"198.51.100.0/24"}, {"198.51.100.0/24"});
    c.per_vip[7] = scope({"192.0.2.0/25"}, {});
    c.per_vip[8] = scope({"::/0"}, {"2001:db8::/32"});
    c.per_vip[511] = scope({}, {"2001:db8:ffff::1/128", "10.255.255.255/32"});
    return c;
}

// Proves every rule of acl.h's semantics on IPv4 and IPv6: longest prefix
// wins across allow and deny, allow lists are default-deny (for both
// families), global deny beats a per-VIP allow, identical prefixes deny,
// /0, /32 and /128 edges, VIPs without lists, and the out-of-range vip_id.
TEST(AclSemantics, Table)
{
    const AclConfig config = semantics_config();
    auto acl = Acl::build(config);
    ASSERT_TRUE(acl.ok()) << acl.error();
    struct Case {
        const char* what;
        const char* src;
        uint16_t vip;
        uint8_t expected;
    } cases[] = {
        {"no scope, nothing matches: allowed", "10.9.9.9", 20, A},
        {"no scope, global deny", "192.0.2.200", 20, D},
        {"no scope, global deny v6", "2001:db8:bad::5", 20, D},
        {"no scope, v6 next to global deny", "2001:db8:bae::1", 20, A},
        {"allow /8 matched", "10.2.0.1", 1, A},
        {"deny /16 inside allow /8: longer wins", "10.1.0.1", 1, D},
        {"allow list default-deny v4", "11.0.0.1", 1, D},
        {"allow v6 /32", "2001:db8:2::1", 1, A},
        {"deny v6 /48 inside allow /32", "2001:db8:1::1", 1, D},
        {"allow list default-deny v6", "2001:db9::1", 1, D},
        {"global deny beats VIP default", "192.0.2.1", 1, D},
        {"/32 allow inside /24 deny", "10.1.2.3", 2, A},
        {"/24 deny around a /32 allow", "10.1.2.4", 2, D},
        {"/25 allow inside /24 deny", "10.1.2.200", 2, A},
        {"allow-only-v4 VIP denies all v6", "2001:db8::1", 2, D},
        {"deny 0.0.0.0/0 denies all v4", "1.2.3.4", 3, D},
        {"deny /0 v4 leaves v6 (no allow list)", "2001:db8::1", 3, A},
        {"allow /0 admits any v4", "8.8.8.8", 4, A},
        {"/32 deny under allow /0", "203.0.113.7", 4, D},
        {"/32 neighbour still allowed", "203.0.113.6", 4, A},
        {"allow v4 /0 only: v6 denied", "2001:db8::1", 4, D},
        {"/128 allow inside ::/0 deny", "2001:db8::1", 5, A},
        {"/128 neighbour denied", "2001:db8::2", 5, D},
        {"v4 default-deny from a v6-only allow list", "1.1.1.1", 5, D},
        {"same prefix allowed and denied: deny wins", "198.51.100.1", 6, D},
        {"per-VIP allow cannot beat global deny", "192.0.2.1", 7, D},
        {"VIP allows only its /25", "192.0.2.129", 7, D},
        {"allow ::/0 with deny /32: outside", "2001:db9::1", 8, A},
        {"allow ::/0 with deny /32: inside", "2001:db8::1", 8, D},
        {"highest vip id, /128 deny", "2001:db8:ffff::1", 511, D},
        {"highest vip id, /32 deny", "10.255.255.255", 511, D},
        {"highest vip id, /32 neighbour", "10.255.255.254", 511, A},
        {"vip SLUICE_MAX_VIPS: global only", "10.1.0.1", SLUICE_MAX_VIPS, A},
        {"vip SLUICE_MAX_VIPS: global deny", "192.0.2.1", SLUICE_MAX_VIPS, D},
        {"vip above SLUICE_MAX_VIPS: fail closed", "10.9.9.9", SLUICE_MAX_VIPS + 1, D},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(check(**acl, c.src, c.vip), c.expected) << c.what << " (" << c.src << ", vip " << c.vip << ")";
        // The reference model must agree with the hand-written table too,
        // or the random comparison below would prove nothing.
        uint8_t bytes[16] = {};
        const bool v6 = std::string(c.src).find(':') != std::string::npos;
        inet_pton(v6 ? AF_INET6 : AF_INET, c.src, bytes);
        EXPECT_EQ(testing::reference_verdict(config, v6 ? 6 : 4, bytes, c.vip), c.expected) << "reference: " << c.what;
    }
}

// Proves the global allow list is a fleet-wide default-deny and that a
// global /0 deny plus a /32 allow is a working allow list.
TEST(AclSemantics, GlobalAllowListAndSlashZero)
{
    AclConfig c;
    c.global = scope({"203.0.113.9/32"}, {"0.0.0.0/0"});
    c.per_vip[1] = scope({"203.0.113.0/24"}, {});
    auto acl = Acl::build(c);
    ASSERT_TRUE(acl.ok()) << acl.error();
    EXPECT_EQ(check(**acl, "203.0.113.9", 0), A);
    EXPECT_EQ(check(**acl, "203.0.113.8", 0), D);
    EXPECT_EQ(check(**acl, "203.0.113.9", 1), A);
    EXPECT_EQ(check(**acl, "203.0.113.8", 1), D);  // VIP allows the /24 but global does not
    EXPECT_EQ(check(**acl, "2001:db8::1", 0), D);  // global allow list is v4 only: v6 denied
}

// Proves an empty config allows everything and says so (workers skip it).
TEST(AclSemantics, EmptyConfigAllowsAll)
{
    auto acl = Acl::build(AclConfig{});
    ASSERT_TRUE(acl.ok()) << acl.error();
    EXPECT_TRUE((*acl)->allows_everything());
    EXPECT_EQ(check(**acl, "1.2.3.4", 0), A);
    EXPECT_EQ(check(**acl, "::1", 3), A);
}

// Proves bad input is refused with a message naming where it is: the list
// and index for text, the scope for structs, out-of-range VIP ids.
TEST(AclBuild, RefusesBadInputWithMessages)
{
    auto bad_text = parse_acl_scope({"10.0.0.0/8"}, {"192.0.2.0/24", "10.1.0.0/8"});
    ASSERT_FALSE(bad_text.ok());
    EXPECT_NE(bad_text.error().find("deny[1]: bad prefix \"10.1.0.0/8\""), std::string::npos) << bad_text.error();
    auto bad_len = parse_acl_scope({"2001:db8::/200"}, {});
    ASSERT_FALSE(bad_len.ok());
    EXPECT_NE(bad_len.error().find("allow[0]"), std::string::npos) << bad_len.error();

    AclConfig c;
    Prefix host_bits{SLUICE_FAMILY_IPV4, 8, {10, 1, 0, 0}};
    c.per_vip[4].deny.push_back(host_bits);
    auto acl = Acl::build(c);
    ASSERT_FALSE(acl.ok());
    EXPECT_NE(acl.error().find("ACL of vip 4"), std::string::npos) << acl.error();
    EXPECT_NE(acl.error().find("host bits"), std::string::npos) << acl.error();

    AclConfig range;
    range.per_vip[SLUICE_MAX_VIPS] = scope({"10.0.0.0/8"}, {});
    auto out_of_range = Acl::build(range);
    ASSERT_FALSE(out_of_range.ok());
    EXPECT_NE(out_of_range.error().find("out of range"), std::string::npos) << out_of_range.error();
}

// A random prefix around a few base addresses, so prefixes nest and overlap.
Prefix random_prefix(std::mt19937_64& rng, uint8_t family)
{
    Prefix p;
    p.family = family;
    const unsigned width = family == SLUICE_FAMILY_IPV4 ? 32 : 128;
    const unsigned base = static_cast<unsigned>(rng() % 3);
    if (family == SLUICE_FAMILY_IPV4) {
        const uint8_t bases[3][4] = {{10, 0, 0, 0}, {10, 1, 0, 0}, {192, 0, 2, 0}};
        std::memcpy(p.bytes, bases[base], 4);
        p.bytes[2] = static_cast<uint8_t>(rng() % 4);
        p.bytes[3] = static_cast<uint8_t>(rng());
    } else {
        const uint8_t bases[3][4] = {{0x20, 0x01, 0x0d, 0xb8}, {0x20, 0x01, 0x0d, 0xb9}, {0xfd, 0, 0, 0}};
        std::memcpy(p.bytes, bases[base], 4);
        p.bytes[5] = static_cast<uint8_t>(rng() % 4);
        p.bytes[15] = static_cast<uint8_t>(rng());
    }
    // Lengths concentrate near the interesting edges (0, 8..24, /32, /128).
    const unsigned pick = static_cast<unsigned>(rng() % 10);
    p.length = static_cast<uint8_t>(pick == 0 ? 0 : pick == 1 ? width : rng() % (width + 1));
    for (unsigned bit = p.length; bit < width; ++bit) {
        p.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    }
    return p;
}

// An address from the same neighbourhoods (or anywhere, sometimes).
void random_address(std::mt19937_64& rng, uint8_t family, uint8_t* out)
{
    Prefix near = random_prefix(rng, family);
    std::memcpy(out, near.bytes, 16);
    const unsigned width = family == SLUICE_FAMILY_IPV4 ? 4 : 16;
    for (unsigned i = 0; i < width; ++i) {
        if (rng() % 6 == 0) {
            out[i] = static_cast<uint8_t>(rng());
        }
    }
}

// Proves check_burst_v4/_v6 over 10,000 random sources and VIPs equal the
// single lookups and the brute-force reference, with nested and overlapping
// random prefixes in the global scope and in many VIP scopes.
TEST(AclRandom, BurstEqualsSingleEqualsReference)
{
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        std::mt19937_64 rng(seed);
        AclConfig config;
        auto fill = [&](AclScope& s, unsigned n, bool with_allow) {
            for (unsigned i = 0; i < n; ++i) {
                const uint8_t family = rng() % 2 ? SLUICE_FAMILY_IPV4 : SLUICE_FAMILY_IPV6;
                const bool allow = with_allow && rng() % 2;
                (allow ? s.allow : s.deny).push_back(random_prefix(rng, family));
            }
        };
        fill(config.global, 6, seed % 2 == 0);
        for (uint16_t vip = 0; vip < 40; vip = static_cast<uint16_t>(vip + 1 + rng() % 3)) {
            fill(config.per_vip[vip], static_cast<unsigned>(1 + rng() % 40), rng() % 4 != 0);
        }
        auto acl = Acl::build(config);
        ASSERT_TRUE(acl.ok()) << acl.error();

        constexpr uint16_t kN = 10000;
        std::vector<uint32_t> v4(kN);
        std::vector<uint16_t> vips(kN);
        std::vector<uint8_t> v6_flat(kN * 16);
        for (uint16_t i = 0; i < kN; ++i) {
            uint8_t a[16] = {};
            random_address(rng, SLUICE_FAMILY_IPV4, a);
            std::memcpy(&v4[i], a, 4);
            random_address(rng, SLUICE_FAMILY_IPV6, &v6_flat[i * 16u]);
            const uint64_t r = rng() % 50;
            vips[i] = static_cast<uint16_t>(r < 44 ? r : r < 47 ? SLUICE_MAX_VIPS : r < 49 ? 511 : SLUICE_MAX_VIPS + 1);
        }
        std::vector<uint8_t> out4(kN), out6(kN);
        (*acl)->check_burst_v4(v4.data(), vips.data(), kN, out4.data());
        (*acl)->check_burst_v6(reinterpret_cast<const uint8_t(*)[16]>(v6_flat.data()), vips.data(), kN, out6.data());
        unsigned allowed = 0, denied = 0;
        for (uint16_t i = 0; i < kN; ++i) {
            uint8_t a4[16] = {};
            std::memcpy(a4, &v4[i], 4);
            const uint8_t ref4 = testing::reference_verdict(config, SLUICE_FAMILY_IPV4, a4, vips[i]);
            const uint8_t ref6 = testing::reference_verdict(config, SLUICE_FAMILY_IPV6, &v6_flat[i * 16u], vips[i]);
            ASSERT_EQ(out4[i], ref4) << "seed " << seed << " v4 #" << i << " vip " << vips[i];
            ASSERT_EQ(out6[i], ref6) << "seed " << seed << " v6 #" << i << " vip " << vips[i];
            ASSERT_EQ((*acl)->check_v4(v4[i], vips[i]), ref4);
            ASSERT_EQ((*acl)->check_v6(&v6_flat[i * 16u], vips[i]), ref6);
            (ref4 == A ? allowed : denied) += 1;
            (ref6 == A ? allowed : denied) += 1;
        }
        // Both outcomes must be well represented, or the test proves little.
        EXPECT_GT(allowed, kN / 10) << "seed " << seed;
        EXPECT_GT(denied, kN / 10) << "seed " << seed;
    }
}

}  // namespace
}  // namespace sluice::filter
