// Exact-answer tests of the Maglev builder: tables worked out by hand on
// M = 7, hash known answers, errors, primality and the fingerprint format.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "maglev/maglev.h"

namespace sluice::maglev {
namespace {

std::vector<uint32_t> build_slots(const std::vector<Backend>& backends, uint32_t m)
{
    Result<Table> table = build_table(backends, m);
    EXPECT_TRUE(table.ok()) << (table ? "" : table.error());
    return table ? table.value().slots : std::vector<uint32_t>{};
}

// An empty backend set is not an error: every slot says "no backend", so
// the data plane drops with a reason instead of reading garbage.
TEST(MaglevGolden, EmptySetFillsTableWithNoBackend)
{
    Result<Table> table = build_table({}, 7);
    ASSERT_TRUE(table.ok());
    EXPECT_EQ(table.value().size, 7u);
    EXPECT_TRUE(table.value().ids.empty());
    EXPECT_EQ(table.value().slots, std::vector<uint32_t>(7, kNoBackend));
}

// A set whose backends all drain owns no slot, yet keeps its ids so that
// indices held by established flows stay meaningful.
TEST(MaglevGolden, AllDrainingFillsTableWithNoBackendButKeepsIds)
{
    const std::vector<Backend> backends = {{"b", 0}, {"a", 0}};
    Result<Table> table = build_table(backends, 11);
    ASSERT_TRUE(table.ok());
    EXPECT_EQ(table.value().ids, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(table.value().slots, std::vector<uint32_t>(11, kNoBackend));
}

// One backend owns every slot, whatever its weight.
TEST(MaglevGolden, SingleBackendFillsTable)
{
    const std::vector<Backend> backends = {{"10.0.0.1:80", 7}};
    EXPECT_EQ(build_slots(backends, 65537), std::vector<uint32_t>(65537, 0));
    EXPECT_EQ(build_slots(backends, 2), std::vector<uint32_t>(2, 0));
}

// The population step reproduces the paper's own example (NSDI'16 Table 1):
// B0 offset 3 skip 4 -> 3 0 4 1 5 2 6; B1 offset 0 skip 2 -> 0 2 4 6 1 3 5;
// B2 offset 3 skip 1 -> 3 4 5 6 0 1 2; the paper's result is
// B1 B0 B1 B0 B2 B2 B0.
TEST(MaglevGolden, PaperTable1Example)
{
    const std::vector<detail::Permutation> perms = {{3, 4, 1}, {0, 2, 1}, {3, 1, 1}};
    const std::vector<uint32_t> expected = {1, 0, 1, 0, 2, 2, 0};
    EXPECT_EQ(detail::fill_slots(perms, 7), expected);
    EXPECT_EQ(detail::fill_slots(perms, 7, detail::TurnScheduler::kRoundScan), expected);
    EXPECT_EQ(detail::fill_slots(perms, 7, detail::TurnScheduler::kEventHeap), expected);
}

// The id hashes match an independent implementation of their written
// specification (FNV-1a 64, then two SplitMix64 outputs), so another tool
// or language can rebuild our tables. Values from this Python:
//   def fnv(b): h = 0xcbf29ce484222325
//     for x in b: h = ((h ^ x) * 0x100000001b3) % 2**64
//   def mix(z): z = ((z ^ z >> 30) * 0xbf58476d1ce4e5b9) % 2**64
//     z = ((z ^ z >> 27) * 0x94d049bb133111eb) % 2**64; return z ^ z >> 31
//   s = fnv(id); g = 0x9e3779b97f4a7c15
//   h1 = mix((s + g) % 2**64); h2 = mix((s + 2 * g) % 2**64)
TEST(MaglevGolden, IdHashKnownAnswers)
{
    EXPECT_EQ(detail::hash_id("10.0.0.1:80").h1, 0xdf1d561fbd00135aull);
    EXPECT_EQ(detail::hash_id("10.0.0.1:80").h2, 0x6922c8de28df312eull);
    EXPECT_EQ(detail::hash_id("10.0.0.2:80").h1, 0x0d834d501ef66cc6ull);
    EXPECT_EQ(detail::hash_id("10.0.0.2:80").h2, 0x269c203aec7c2d63ull);
    EXPECT_EQ(detail::hash_id("10.0.0.3:80").h1, 0x2058cff5dbcf6217ull);
    EXPECT_EQ(detail::hash_id("10.0.0.3:80").h2, 0x6d4256f03dd1365dull);
}

// Three equal backends on M = 7, worked by hand from the hashes above
// (offset = h1 mod 7, skip = h2 mod 6 + 1):
//   B0 "10.0.0.1:80"  offset 4 skip 5  permutation 4 2 0 5 3 1 6
//   B1 "10.0.0.2:80"  offset 3 skip 6  permutation 3 2 1 0 6 5 4
//   B2 "10.0.0.3:80"  offset 5 skip 4  permutation 5 2 6 3 0 4 1
// Round 1: B0 takes 4; B1 takes 3; B2 takes 5.
// Round 2: B0 takes 2; B1 finds 2 taken, takes 1; B2 finds 2 taken, takes 6.
// Round 3: B0 takes 0. Table full.
//   slot:  0  1  2  3  4  5  6
//   owner: B0 B1 B0 B1 B0 B2 B2
TEST(MaglevGolden, ThreeBackendsOnSevenSlots)
{
    const std::vector<Backend> backends = {
        {"10.0.0.3:80", 1}, {"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}};
    Result<Table> table = build_table(backends, 7);
    ASSERT_TRUE(table.ok()) << table.error();
    EXPECT_EQ(table.value().ids,
              (std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}));
    EXPECT_EQ(table.value().slots, (std::vector<uint32_t>{0, 1, 0, 1, 0, 2, 2}));
}

// The same three with weights 1, 2, 1 (max weight W = 2): B1 takes a turn
// every round, B0 and B2 every second round (credit reaches 2 in rounds 2, 4).
// Round 1: B1 takes 3.
// Round 2: B0 takes 4; B1 takes 2; B2 takes 5.
// Round 3: B1 finds nothing in the way, takes 1.
// Round 4: B0 finds 2 taken, takes 0; B1 finds 0 taken, takes 6. Table full.
//   slot:  0  1  2  3  4  5  6
//   owner: B0 B1 B1 B1 B0 B2 B1
TEST(MaglevGolden, WeightedThreeBackendsOnSevenSlots)
{
    const std::vector<Backend> backends = {
        {"10.0.0.2:80", 2}, {"10.0.0.3:80", 1}, {"10.0.0.1:80", 1}};
    EXPECT_EQ(build_slots(backends, 7), (std::vector<uint32_t>{0, 1, 1, 1, 0, 2, 1}));
}

// A draining backend (weight 0) keeps its index in ids but owns no slot,
// and the others fill the table exactly as if it were absent.
TEST(MaglevGolden, DrainingBackendOwnsNoSlot)
{
    const std::vector<Backend> with_drain = {
        {"10.0.0.1:80", 1}, {"10.0.0.2:80", 0}, {"10.0.0.3:80", 1}};
    const std::vector<Backend> without = {{"10.0.0.1:80", 1}, {"10.0.0.3:80", 1}};
    const std::vector<uint32_t> drained = build_slots(with_drain, 251);
    std::vector<uint32_t> absent = build_slots(without, 251);
    EXPECT_EQ(std::count(drained.begin(), drained.end(), 1u), 0);
    // Index 1 in `absent` is "10.0.0.3:80", which is index 2 in `drained`.
    std::replace(absent.begin(), absent.end(), 1u, 2u);
    EXPECT_EQ(drained, absent);
}

// Every invalid input is refused with a message, never a throw or a table.
TEST(MaglevGolden, InvalidInputsAreErrors)
{
    const std::vector<Backend> two = {{"a", 1}, {"b", 1}};
    const auto error_of = [](std::span<const Backend> b, uint32_t m) {
        Result<Table> r = build_table(b, m);
        return r ? std::string() : r.error();
    };
    EXPECT_NE(error_of(two, 65536).find("not prime"), std::string::npos);
    EXPECT_NE(error_of(two, 1).find("not prime"), std::string::npos);
    EXPECT_NE(error_of(two, 0).find("not prime"), std::string::npos);
    EXPECT_NE(error_of(two, 655393).find("exceeds"), std::string::npos);  // prime, too large
    EXPECT_TRUE(build_table(two, kMaxTableSize).ok());
    EXPECT_NE(error_of(two, 4294967291u).find("exceeds"), std::string::npos);  // largest u32 prime

    const std::vector<Backend> three = {{"a", 1}, {"b", 1}, {"c", 1}};
    EXPECT_NE(error_of(three, 2).find("smaller"), std::string::npos);
    EXPECT_TRUE(build_table(three, 3).ok());  // M == N is allowed
    const std::vector<Backend> three_one_drained = {{"a", 1}, {"b", 0}, {"c", 1}};
    EXPECT_TRUE(build_table(three_one_drained, 2).ok());  // only weight > 0 counts

    const std::vector<Backend> dup = {{"a", 1}, {"b", 1}, {"a", 2}};
    EXPECT_NE(error_of(dup, 7).find("duplicate"), std::string::npos);
    const std::vector<Backend> dup_drained = {{"a", 0}, {"a", 0}};
    EXPECT_NE(error_of(dup_drained, 7).find("duplicate"), std::string::npos);
    const std::vector<Backend> empty_id = {{"", 1}};
    EXPECT_NE(error_of(empty_id, 7).find("empty"), std::string::npos);
}

// Weights at the top of uint32_t neither overflow the credit arithmetic nor
// distort shares: UINT32_MAX vs UINT32_MAX/2 splits 2:1.
TEST(MaglevGolden, ExtremeWeightsDoNotOverflow)
{
    constexpr uint32_t kMax = 0xFFFFFFFFu;
    const std::vector<Backend> backends = {{"heavy", kMax}, {"half", kMax / 2}, {"tiny", 1}};
    const std::vector<uint32_t> slots = build_slots(backends, 65537);
    // Sorted ids: half = 0, heavy = 1, tiny = 2. Shares: heavy 2/3, half 1/3,
    // tiny 65537 / 2^32 of a slot, i.e. none.
    const auto count = [&](uint32_t i) { return std::count(slots.begin(), slots.end(), i); };
    EXPECT_NEAR(static_cast<double>(count(1)) / 65537, 2.0 / 3, 1e-4);
    EXPECT_NEAR(static_cast<double>(count(0)) / 65537, 1.0 / 3, 1e-4);
    EXPECT_EQ(count(2), 0);
}

// is_prime agrees with a sieve below 200000 and knows the hard 64-bit cases
// (Carmichael numbers, strong pseudoprimes to several bases, 2^64-59).
TEST(MaglevGolden, IsPrimeMatchesSieveAndHardCases)
{
    constexpr uint32_t kLimit = 200000;
    std::vector<bool> composite(kLimit, false);
    for (uint32_t i = 2; i * i < kLimit; ++i) {
        if (composite[i]) {
            continue;
        }
        for (uint32_t j = i * i; j < kLimit; j += i) {
            composite[j] = true;
        }
    }
    for (uint32_t n = 0; n < kLimit; ++n) {
        ASSERT_EQ(is_prime(n), n >= 2 && !composite[n]) << n;
    }
    EXPECT_TRUE(is_prime(65537));
    EXPECT_TRUE(is_prime(655373));
    EXPECT_FALSE(is_prime(655371));
    EXPECT_FALSE(is_prime(561));                     // Carmichael
    EXPECT_FALSE(is_prime(3215031751ull));           // strong pseudoprime to 2, 3, 5, 7
    EXPECT_FALSE(is_prime(3825123056546413051ull));  // strong pseudoprime to bases 2..23
    EXPECT_TRUE(is_prime((1ull << 61) - 1));
    EXPECT_TRUE(is_prime(18446744073709551557ull));   // 2^64 - 59, largest 64-bit prime
    EXPECT_FALSE(is_prime(18446744073709551615ull));  // 2^64 - 1
    EXPECT_FALSE(is_prime(4294967291ull * 4294967279ull));
}

// Reference FNV-1a written from the header's specification, independently
// of maglev.cpp, so a change to the fingerprint format cannot go unnoticed.
uint64_t reference_fingerprint(const Table& t)
{
    std::vector<uint8_t> bytes;
    const auto put_u32 = [&bytes](uint32_t v) {
        for (int i = 0; i < 4; ++i) {
            bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
        }
    };
    put_u32(t.size);
    put_u32(static_cast<uint32_t>(t.ids.size()));
    for (const std::string& id : t.ids) {
        put_u32(static_cast<uint32_t>(id.size()));
        bytes.insert(bytes.end(), id.begin(), id.end());
    }
    for (const uint32_t s : t.slots) {
        put_u32(s);
    }
    uint64_t h = 14695981039346656037ull;
    for (const uint8_t b : bytes) {
        h = (h ^ b) * 1099511628211ull;
    }
    return h;
}

// The fingerprint follows its written format, does not depend on input
// order, and changes when a slot, an id, a weight or the size changes.
TEST(MaglevGolden, FingerprintIsSpecifiedAndSensitive)
{
    std::vector<Backend> backends = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.3:80", 1}};
    const Table t7 = build_table(backends, 7).value();
    EXPECT_EQ(fingerprint(t7), reference_fingerprint(t7));

    const Table base = build_table(backends, 251).value();
    EXPECT_EQ(fingerprint(base), reference_fingerprint(base));
    std::reverse(backends.begin(), backends.end());
    EXPECT_EQ(fingerprint(build_table(backends, 251).value()), fingerprint(base));

    Table one_slot = base;
    one_slot.slots[100] = (one_slot.slots[100] + 1) % 3;
    EXPECT_NE(fingerprint(one_slot), fingerprint(base));
    Table renamed = base;
    renamed.ids[0] = "10.0.0.9:80";
    EXPECT_NE(fingerprint(renamed), fingerprint(base));

    backends[0].weight = 2;
    EXPECT_NE(fingerprint(build_table(backends, 251).value()), fingerprint(base));
    backends[0].weight = 1;
    EXPECT_NE(fingerprint(build_table(backends, 257).value()), fingerprint(base));
}

}  // namespace
}  // namespace sluice::maglev
