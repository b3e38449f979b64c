// dataplane/abi/checksum.h against a byte-at-a-time RFC 1071 reference and
// published examples: the writers' IPv4, UDP and ICMP checksums all rest on it.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <random>
#include <vector>

extern "C" {
#include "abi/checksum.h"
}

namespace {

// RFC 1071 by the book: big-endian 16-bit words, end-around carry.
uint16_t reference_sum(const std::vector<uint8_t>& b)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < b.size(); i += 2) {
        sum += static_cast<uint32_t>(b[i]) << 8 | (i + 1 < b.size() ? b[i + 1] : 0);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    return static_cast<uint16_t>(sum);
}

// The checksum field bytes as they would be stored on the wire.
std::array<uint8_t, 2> wire(__sum16 c)
{
    std::array<uint8_t, 2> out;
    std::memcpy(out.data(), &c, 2);
    return out;
}

// RFC 1071 §3's worked example: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
TEST(Checksum, Rfc1071Example)
{
    const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(ntohs(sluice_csum_fold(sluice_csum_add(0, b, sizeof b))), 0xddf2);
}

// Every length (odd ones included, both the 8-byte and 2-byte paths) and
// every misalignment agrees with the reference.
TEST(Checksum, MatchesReferenceForAllLengthsAndOffsets)
{
    std::mt19937 rng(1);
    std::vector<uint8_t> pool(2100);
    for (auto& x : pool) x = static_cast<uint8_t>(rng());
    for (size_t off = 0; off < 4; ++off) {
        for (size_t len = 0; len < 2000; len += (len < 80 ? 1 : 37)) {
            std::vector<uint8_t> b(pool.begin() + off, pool.begin() + off + len);
            const auto got = wire(sluice_csum_finish(sluice_csum_add(0, pool.data() + off, len)));
            const uint16_t want = static_cast<uint16_t>(~reference_sum(b));
            EXPECT_EQ(got[0], want >> 8) << len;
            EXPECT_EQ(got[1], want & 0xFF) << len;
        }
    }
}

// A textbook IPv4 header (Wikipedia's "IPv4 header checksum" example) gets b861.
TEST(Checksum, Ipv4HeaderKnownValue)
{
    uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    const auto c = wire(sluice_ipv4_hdr_csum(h, 20));
    EXPECT_EQ(c[0], 0xb8);
    EXPECT_EQ(c[1], 0x61);
    // Stored, the header then sums to zero (the receiver's check).
    std::memcpy(h + 10, c.data(), 2);
    EXPECT_EQ(sluice_csum_fold(sluice_csum_add(0, h, 20)), 0xFFFF);
}

// Incremental updates of 16- and 32-bit fields (TTL/ID, addresses) equal a
// full recomputation, including headers whose checksum is 0x0000 or 0xFFFF.
TEST(Checksum, IncrementalUpdateEqualsRecompute)
{
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        uint8_t h[20];
        for (auto& x : h) x = static_cast<uint8_t>(rng());
        h[10] = h[11] = 0;
        const __sum16 before = sluice_ipv4_hdr_csum(h, 20);
        const size_t at = 2 * (rng() % 10);
        if (at == 10) continue;
        if (i % 2 == 0) {
            __be16 oldv, newv = static_cast<__be16>(rng());
            std::memcpy(&oldv, h + at, 2);
            std::memcpy(h + at, &newv, 2);
            EXPECT_EQ(sluice_csum_replace16(before, oldv, newv), sluice_ipv4_hdr_csum(h, 20));
        } else {
            const size_t at4 = at == 12 ? 12 : 16;
            __be32 oldv, newv = static_cast<__be32>(rng());
            std::memcpy(&oldv, h + at4, 4);
            std::memcpy(h + at4, &newv, 4);
            EXPECT_EQ(sluice_csum_replace32(before, oldv, newv), sluice_ipv4_hdr_csum(h, 20));
        }
    }
}

// Pseudo-header sums equal the reference over the explicit pseudo-header
// bytes of RFC 768 (IPv4) and RFC 8200 §8.1 (IPv6).
TEST(Checksum, PseudoHeaders)
{
    const std::vector<uint8_t> v4 = {10, 0, 0, 1, 10, 1, 0, 11, 0, 17, 0x05, 0xdc};
    __be32 s, d;
    std::memcpy(&s, v4.data(), 4);
    std::memcpy(&d, v4.data() + 4, 4);
    EXPECT_EQ(ntohs(sluice_csum_fold(sluice_pseudo_sum_v4(s, d, 17, 1500))), reference_sum(v4));

    std::vector<uint8_t> v6(40, 0);
    for (int i = 0; i < 32; ++i) v6[i] = static_cast<uint8_t>(0x20 + i * 7);
    v6[34] = 0x05;
    v6[35] = 0xdc;
    v6[39] = 58;
    sluice_addr sa, da;
    std::memcpy(sa.bytes, v6.data(), 16);
    std::memcpy(da.bytes, v6.data() + 16, 16);
    EXPECT_EQ(ntohs(sluice_csum_fold(sluice_pseudo_sum_v6(&sa, &da, 58, 1500))), reference_sum(v6));
}

}  // namespace
