// Traffic filters of the configuration model: source-prefix ACLs, Hyperscan
// payload rules and per-service token-bucket rate limits. The DPDK data plane
// enforces all three; XDP enforces ACLs and rate limits but not payload rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/address.h"

namespace sluice::model {

// Hyperscan compile flags a payload rule may ask for. Our own bits, mapped
// to HS_FLAG_* by the data plane, so the model does not depend on hs.h.
enum PayloadFlag : uint32_t {
    kPayloadCaseless = 1u << 0,     // HS_FLAG_CASELESS: match letters in either case
    kPayloadDotAll = 1u << 1,       // HS_FLAG_DOTALL: '.' also matches newline
    kPayloadMultiline = 1u << 2,    // HS_FLAG_MULTILINE: '^' and '$' match at line breaks
    kPayloadSingleMatch = 1u << 3,  // HS_FLAG_SINGLEMATCH: report a rule once per packet
    kPayloadUtf8 = 1u << 4,         // HS_FLAG_UTF8: pattern and payload are UTF-8
    kPayloadUcp = 1u << 5,          // HS_FLAG_UCP: Unicode classes (needs utf8)
};

// One payload rule: a packet whose L4 payload matches `pattern` is dropped
// and counted under the rule's id.
struct PayloadRule {
    uint32_t id = 0;      // unique within its scope; reported in drop counters
    std::string pattern;  // Hyperscan (PCRE subset) regular expression
    uint32_t flags = 0;   // PayloadFlag bits
};

// A token bucket: `per_sec` tokens refill each second, up to `burst`.
struct TokenBucket {
    uint64_t per_sec = 0;  // sustained rate, > 0
    uint64_t burst = 0;    // bucket depth; defaults to per_sec (one second of traffic)
};

// Per-service limits; an unset bucket means "unlimited".
struct RateLimits {
    std::optional<TokenBucket> packets;    // every packet to the VIP
    std::optional<TokenBucket> new_flows;  // packets that create a connection-table entry
};

// Source filters, either global (every VIP) or one service's. Within one
// scope the longest matching prefix decides, whichever list it is in (a
// tie: deny); a non-empty allow list denies what matches nothing. A packet
// must pass the global scope and its service's scope; then payload rules
// run. dataplane/filter/acl.h implements exactly this.
struct Filter {
    std::vector<Prefix> allow;               // if non-empty, only these sources pass
    std::vector<Prefix> deny;                // these sources are dropped
    std::vector<PayloadRule> payload_rules;  // Hyperscan rules (DPDK only)
    // Accept payload rules on a data plane that cannot enforce them (XDP, or
    // "auto" that may pick XDP). Without it such a config is refused.
    bool allow_unenforced_payload_rules = false;
};

}  // namespace sluice::model
