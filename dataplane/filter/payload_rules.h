// Hyperscan payload rules: drop packets whose L4 payload matches an
// operator's pattern. All rules of a config are compiled once, by the
// control thread, into one block-mode database; each rule is scoped to a
// list of VIPs (or to all of them) and the scope is checked in the match
// callback. One database rather than one per VIP: Hyperscan's cost grows
// little with the number of patterns, compile time is paid once per
// config, and a rule shared by many VIPs is stored once. The price is that
// a match of a rule not scoped to the packet's VIP costs a callback that
// returns "continue" (rare: patterns are attack signatures).
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

extern "C" {
#include "abi/tables.h"
}

struct hs_database;
struct hs_scratch;

namespace sluice::filter {

// Pattern flags (mapped to Hyperscan's HS_FLAG_*). Same bit values as
// controlplane/model/filter.h's PayloadFlag, so the driver copies the word
// unchanged (the data plane must not depend on the model, hence the copy).
enum PayloadFlag : uint32_t {
    kPayloadCaseless = 1u << 0,     // HS_FLAG_CASELESS
    kPayloadDotAll = 1u << 1,       // HS_FLAG_DOTALL: '.' matches '\n' too
    kPayloadMultiline = 1u << 2,    // HS_FLAG_MULTILINE: ^ and $ at every line
    kPayloadSingleMatch = 1u << 3,  // HS_FLAG_SINGLEMATCH (we stop at the first match anyway)
    kPayloadUtf8 = 1u << 4,         // HS_FLAG_UTF8
    kPayloadUcp = 1u << 5,          // HS_FLAG_UCP (with utf8)
    kPayloadAllFlags = (1u << 6) - 1,
};

struct PayloadRule {
    uint32_t id = 0;                // operator's rule id: names the rule in errors; hits(id) sums rules sharing it
    std::string pattern;            // PCRE-style regular expression (Hyperscan's subset)
    uint32_t flags = 0;             // PayloadFlag bits
    std::vector<uint16_t> vip_ids;  // VIPs the rule applies to; empty = every VIP
};

enum class PayloadVerdict : uint8_t {
    kNoMatch = 0,
    kMatch = 1,   // drop: SLUICE_DROP_PAYLOAD_RULE
    kError = 2,   // Hyperscan refused the scan (a bug): the caller drops as INTERNAL
};

class PayloadRules {
public:
    // Control thread: compiles `rules` for `workers` worker lcores and
    // allocates one scratch per worker (never on the packet path). An empty
    // rule list is valid and matches nothing. Errors name the rule id, its
    // pattern and Hyperscan's message (which gives the position, e.g. "at
    // index 3"); unknown flags and VIP ids out of range are refused too.
    // Ids need not be unique (the model makes them unique per scope; a
    // flattened global + per-VIP list may repeat one): counters are kept
    // per rule position, see hits_at(). Thread-safe.
    static Result<std::unique_ptr<PayloadRules>> build(const std::vector<PayloadRule>& rules,
                                                       uint32_t workers);

    // Frees the database and scratches: only once no worker can use them.
    ~PayloadRules();
    PayloadRules(const PayloadRules&) = delete;
    PayloadRules& operator=(const PayloadRules&) = delete;

    // Worker `worker` only (it uses that worker's scratch), packet path:
    // scans `payload` for a rule that applies to `vip_id`; the first such
    // match stops the scan, counts a hit on that rule for this worker and
    // returns kMatch. vip_id SLUICE_MAX_VIPS and above see only unscoped
    // rules. No allocation, lock, log or syscall.
    PayloadVerdict match(const uint8_t* payload, uint32_t len, uint16_t vip_id, uint32_t worker) const;

    // True when some rule applies to `vip_id`: a worker may skip the scan
    // otherwise. Any thread.
    bool has_rules_for(uint16_t vip_id) const
    {
        return vip_id < SLUICE_MAX_VIPS ? vip_has_rules_[vip_id] : has_unscoped_rules_;
    }

    // Control plane, any thread, concurrently with workers: packets dropped
    // by the rule with operator id `rule_id`, summed over workers (0 for an
    // unknown id). Relaxed reads: a snapshot, not a barrier.
    uint64_t hits(uint32_t rule_id) const;
    // The same for the rule at position `index` of build()'s input.
    uint64_t hits_at(size_t index) const;

    size_t rule_count() const { return rules_.size(); }
    uint32_t workers() const { return workers_; }

private:
    struct CompiledRule {
        uint32_t id;
        bool all_vips;
        std::bitset<SLUICE_MAX_VIPS> vips;
    };
    struct ScanContext;
    static int on_match(unsigned int index, unsigned long long from, unsigned long long to,
                        unsigned int flags, void* context);

    PayloadRules() = default;

    std::vector<CompiledRule> rules_;       // by Hyperscan expression id (index)
    hs_database* database_ = nullptr;       // null when there are no rules
    std::vector<hs_scratch*> scratch_;      // one per worker
    uint32_t workers_ = 0;
    size_t counter_stride_ = 0;             // uint64s per worker, a multiple of a cache line
    uint64_t* counters_ = nullptr;          // [worker][rule] hits, 64-byte aligned; each row one writer
    std::bitset<SLUICE_MAX_VIPS> vip_has_rules_;
    bool has_unscoped_rules_ = false;
};

}  // namespace sluice::filter
