// Hyperscan payload rules: matching, flags, scoping, counters and compile
// errors, with std::string::find as the reference for literal patterns.
// Needs no EAL: Hyperscan allocates with malloc, at build time only.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "filter/payload_rules.h"

namespace sluice::filter {
namespace {

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
uint32_t size32(const std::string& s) { return static_cast<uint32_t>(s.size()); }

std::unique_ptr<PayloadRules> build_or_die(const std::vector<PayloadRule>& rules, uint32_t workers = 1)
{
    auto built = PayloadRules::build(rules, workers);
    EXPECT_TRUE(built.ok()) << built.error();
    return built.ok() ? std::move(*built) : nullptr;
}

// Proves a payload containing a pattern matches and one without does not,
// and that anchors see the whole payload as one block.
TEST(PayloadRules, MatchesAndMisses)
{
    auto rules = build_or_die({{1, "evil", 0, {}}, {2, "^GET /admin HTTP/1\\.1\\r\\n$", 0, {}}});
    ASSERT_NE(rules, nullptr);
    const std::string cases_match[] = {"an evil payload", "evil", "xxxxevil", "GET /admin HTTP/1.1\r\n"};
    const std::string cases_miss[] = {"a good payload", "evi", "EVIL", "xGET /admin HTTP/1.1\r\n",
                                      "GET /admin HTTP/1.1\r\nX"};
    for (const std::string& p : cases_match) {
        EXPECT_EQ(rules->match(bytes(p), size32(p), 0, 0), PayloadVerdict::kMatch) << p;
    }
    for (const std::string& p : cases_miss) {
        EXPECT_EQ(rules->match(bytes(p), size32(p), 0, 0), PayloadVerdict::kNoMatch) << p;
    }
}

// Proves an empty payload (also with a null pointer) scans cleanly and
// matches nothing, and that a rule set with no rules matches nothing.
TEST(PayloadRules, EmptyPayloadAndEmptyRuleSet)
{
    auto rules = build_or_die({{1, "a", 0, {}}});
    ASSERT_NE(rules, nullptr);
    EXPECT_EQ(rules->match(nullptr, 0, 0, 0), PayloadVerdict::kNoMatch);
    const uint8_t one = 'b';
    EXPECT_EQ(rules->match(&one, 0, 0, 0), PayloadVerdict::kNoMatch);
    auto none = build_or_die({});
    ASSERT_NE(none, nullptr);
    EXPECT_EQ(none->match(bytes("anything"), 8, 0, 0), PayloadVerdict::kNoMatch);
    EXPECT_FALSE(none->has_rules_for(0));
}

// Proves the caseless, dotall and multiline flags reach Hyperscan.
TEST(PayloadRules, Flags)
{
    auto rules = build_or_die({{1, "select.*from", kPayloadCaseless, {}},
                               {2, "begin.end", kPayloadDotAll, {}},
                               {3, "^only-line$", kPayloadMultiline, {}}});
    ASSERT_NE(rules, nullptr);
    EXPECT_EQ(rules->match(bytes("SeLeCt * FROM t"), 15, 0, 0), PayloadVerdict::kMatch);
    EXPECT_EQ(rules->match(bytes("begin\nend"), 9, 0, 0), PayloadVerdict::kMatch);
    EXPECT_EQ(rules->match(bytes("x\nonly-line\ny"), 13, 0, 0), PayloadVerdict::kMatch);
    EXPECT_EQ(rules->hits(1), 1u);
    EXPECT_EQ(rules->hits(2), 1u);
    EXPECT_EQ(rules->hits(3), 1u);
    // Without the flags the same inputs miss.
    auto plain = build_or_die({{1, "select.*from", 0, {}}, {2, "begin.end", 0, {}}, {3, "^only-line$", 0, {}}});
    ASSERT_NE(plain, nullptr);
    EXPECT_EQ(plain->match(bytes("SeLeCt * FROM t"), 15, 0, 0), PayloadVerdict::kNoMatch);
    EXPECT_EQ(plain->match(bytes("begin\nend"), 9, 0, 0), PayloadVerdict::kNoMatch);
    EXPECT_EQ(plain->match(bytes("x\nonly-line\ny"), 13, 0, 0), PayloadVerdict::kNoMatch);
}

// Proves a bad pattern is refused with the rule id, the pattern and
// Hyperscan's message with its position; and bad flags / VIP ids too.
TEST(PayloadRules, BadPatternErrors)
{
    auto bad = PayloadRules::build({{1, "fine", 0, {}}, {42, "abc(def", 0, {}}}, 1);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find("payload rule 42"), std::string::npos) << bad.error();
    EXPECT_NE(bad.error().find("abc(def"), std::string::npos) << bad.error();
    EXPECT_NE(bad.error().find("index"), std::string::npos) << "no position: " << bad.error();

    auto empty_match = PayloadRules::build({{7, "x*", 0, {}}}, 1);
    ASSERT_FALSE(empty_match.ok());
    EXPECT_NE(empty_match.error().find("payload rule 7"), std::string::npos) << empty_match.error();

    auto flags = PayloadRules::build({{8, "x", 1u << 20, {}}}, 1);
    ASSERT_FALSE(flags.ok());
    EXPECT_NE(flags.error().find("unknown flag"), std::string::npos) << flags.error();

    auto vip = PayloadRules::build({{9, "x", 0, {SLUICE_MAX_VIPS}}}, 1);
    ASSERT_FALSE(vip.ok());
    EXPECT_NE(vip.error().find("out of range"), std::string::npos) << vip.error();
}

// Proves per-rule counters: only the rule that stopped the scan counts,
// hits from several workers are summed, and ids shared by two rules sum.
TEST(PayloadRules, CountersPerRuleAndWorker)
{
    auto rules = build_or_die({{10, "alpha", 0, {}}, {20, "beta", 0, {}}, {30, "gamma", 0, {5}}, {10, "delta", 0, {}}},
                              3);
    ASSERT_NE(rules, nullptr);
    for (uint32_t w = 0; w < 3; ++w) {
        for (uint32_t i = 0; i <= w; ++i) {
            EXPECT_EQ(rules->match(bytes("..alpha.."), 9, 0, w), PayloadVerdict::kMatch);
        }
        EXPECT_EQ(rules->match(bytes("beta"), 4, 0, w), PayloadVerdict::kMatch);
    }
    EXPECT_EQ(rules->match(bytes("delta"), 5, 0, 2), PayloadVerdict::kMatch);
    // One packet matching two rules counts once: the scan stopped at the first.
    EXPECT_EQ(rules->match(bytes("alpha beta"), 10, 0, 1), PayloadVerdict::kMatch);
    // Hyperscan reports in order of end offset: "alpha" stops the scan.
    EXPECT_EQ(rules->hits_at(0), 1u + 2u + 3u + 1u);
    EXPECT_EQ(rules->hits_at(1), 3u);
    EXPECT_EQ(rules->hits(20), 3u);
    EXPECT_EQ(rules->hits(10), 7u + 1u);  // rules 0 and 3 share id 10
    EXPECT_EQ(rules->hits_at(3), 1u);
    EXPECT_EQ(rules->hits(30), 0u);
    EXPECT_EQ(rules->hits(99), 0u);
}

// Proves rule→VIP scoping: a scoped rule drops only its VIPs' packets, an
// unscoped rule drops everyone's, and the id SLUICE_MAX_VIPS sees only
// unscoped rules; a scan continues past another VIP's match.
TEST(PayloadRules, VipScoping)
{
    auto rules = build_or_die({{1, "scoped", 0, {3, 4}}, {2, "everyone", 0, {}}});
    ASSERT_NE(rules, nullptr);
    EXPECT_EQ(rules->match(bytes("scoped"), 6, 3, 0), PayloadVerdict::kMatch);
    EXPECT_EQ(rules->match(bytes("scoped"), 6, 4, 0), PayloadVerdict::kMatch);
    EXPECT_EQ(rules->match(bytes("scoped"), 6, 5, 0), PayloadVerdict::kNoMatch);
    EXPECT_EQ(rules->match(bytes("scoped"), 6, SLUICE_MAX_VIPS, 0), PayloadVerdict::kNoMatch);
    EXPECT_EQ(rules->match(bytes("everyone"), 8, SLUICE_MAX_VIPS, 0), PayloadVerdict::kMatch);
    // "scoped" (VIP 3 only) comes first in the payload; VIP 5 still drops on "everyone".
    EXPECT_EQ(rules->match(bytes("scoped everyone"), 15, 5, 0), PayloadVerdict::kMatch);
    EXPECT_EQ(rules->hits(1), 2u);
    EXPECT_EQ(rules->hits(2), 2u);

    auto only_scoped = build_or_die({{1, "x", 0, {7}}});
    ASSERT_NE(only_scoped, nullptr);
    EXPECT_TRUE(only_scoped->has_rules_for(7));
    EXPECT_FALSE(only_scoped->has_rules_for(8));
    EXPECT_FALSE(only_scoped->has_rules_for(SLUICE_MAX_VIPS));
}

// Proves many rules compile into one database and match exactly as a
// brute-force substring search says, counting the right rule, on random
// payloads built from the rules' tokens and noise.
TEST(PayloadRules, ManyRulesAgainstBruteForce)
{
    constexpr unsigned kRules = 2000;
    std::vector<PayloadRule> list;
    std::vector<std::string> tokens;
    for (unsigned i = 0; i < kRules; ++i) {
        char token[16];
        std::snprintf(token, sizeof token, "tok%04uz", i);
        tokens.emplace_back(token);
        list.push_back({1000 + i, token, 0, {}});
    }
    auto rules = build_or_die(list, 2);
    ASSERT_NE(rules, nullptr);
    std::mt19937_64 rng(7);
    unsigned matched = 0;
    std::vector<uint64_t> expected_hits(kRules, 0);
    for (unsigned n = 0; n < 5000; ++n) {
        std::string payload;
        const unsigned len = static_cast<unsigned>(rng() % 200);
        while (payload.size() < len) {
            if (rng() % 40 == 0) {
                // A token, or a near miss (right prefix, wrong last byte).
                std::string t = tokens[rng() % kRules];
                if (rng() % 2) {
                    t.back() = 'y';
                }
                payload += t;
            } else {
                payload += static_cast<char>("tok0123456789zy "[rng() % 16]);
            }
        }
        // Reference: the token that ends first in the payload (Hyperscan
        // reports matches in order of end offset).
        size_t best_end = std::string::npos;
        int best = -1;
        for (unsigned i = 0; i < kRules; ++i) {
            const size_t at = payload.find(tokens[i]);
            if (at != std::string::npos && (best < 0 || at + tokens[i].size() < best_end)) {
                best_end = at + tokens[i].size();
                best = static_cast<int>(i);
            }
        }
        const PayloadVerdict got = rules->match(bytes(payload), size32(payload), 0, n % 2);
        ASSERT_EQ(got, best >= 0 ? PayloadVerdict::kMatch : PayloadVerdict::kNoMatch) << payload;
        if (best >= 0) {
            ++expected_hits[static_cast<size_t>(best)];
            ++matched;
        }
    }
    EXPECT_GT(matched, 500u);
    for (unsigned i = 0; i < kRules; ++i) {
        ASSERT_EQ(rules->hits_at(i), expected_hits[i]) << tokens[i];
    }
}

}  // namespace
}  // namespace sluice::filter
