// Hyperscan payload rules: compile, scratch per worker, scan (see the header).
#include "filter/payload_rules.h"

#include <hs/hs.h>

#include <algorithm>
#include <atomic>
#include <new>

namespace sluice::filter {

struct PayloadRules::ScanContext {
    const PayloadRules* rules;
    uint16_t vip_id;
    int32_t matched;  // expression index of the match that stopped the scan, or -1
};

int PayloadRules::on_match(unsigned int index, unsigned long long, unsigned long long, unsigned int,
                           void* context)
{
    auto* ctx = static_cast<ScanContext*>(context);
    const CompiledRule& rule = ctx->rules->rules_[index];
    const bool applies = rule.all_vips || (ctx->vip_id < SLUICE_MAX_VIPS && rule.vips[ctx->vip_id]);
    if (!applies) {
        return 0;  // another VIP's rule: keep scanning
    }
    ctx->matched = static_cast<int32_t>(index);
    return 1;  // non-zero stops the scan: one drop needs one match
}

Result<std::unique_ptr<PayloadRules>> PayloadRules::build(const std::vector<PayloadRule>& rules,
                                                          uint32_t workers)
{
    if (workers == 0) {
        return make_error("payload rules: need at least one worker");
    }
    std::unique_ptr<PayloadRules> out(new PayloadRules());
    out->workers_ = workers;
    std::vector<const char*> expressions;
    std::vector<unsigned int> flags;
    std::vector<unsigned int> ids;
    for (const PayloadRule& rule : rules) {
        const std::string name = "payload rule " + std::to_string(rule.id);
        if ((rule.flags & ~static_cast<uint32_t>(kPayloadAllFlags)) != 0) {
            return make_error(name + ": unknown flag bits");
        }
        CompiledRule compiled{rule.id, rule.vip_ids.empty(), {}};
        for (const uint16_t vip : rule.vip_ids) {
            if (vip >= SLUICE_MAX_VIPS) {
                return make_error(name + ": vip id " + std::to_string(vip) + " out of range (max " +
                                  std::to_string(SLUICE_MAX_VIPS - 1) + ")");
            }
            compiled.vips.set(vip);
        }
        out->vip_has_rules_ |= compiled.vips;
        out->has_unscoped_rules_ |= compiled.all_vips;
        unsigned int hs_flags = 0;
        hs_flags |= (rule.flags & kPayloadCaseless) ? HS_FLAG_CASELESS : 0;
        hs_flags |= (rule.flags & kPayloadDotAll) ? HS_FLAG_DOTALL : 0;
        hs_flags |= (rule.flags & kPayloadMultiline) ? HS_FLAG_MULTILINE : 0;
        hs_flags |= (rule.flags & kPayloadSingleMatch) ? HS_FLAG_SINGLEMATCH : 0;
        hs_flags |= (rule.flags & kPayloadUtf8) ? HS_FLAG_UTF8 : 0;
        hs_flags |= (rule.flags & kPayloadUcp) ? HS_FLAG_UCP : 0;
        ids.push_back(static_cast<unsigned int>(out->rules_.size()));
        expressions.push_back(rule.pattern.c_str());
        flags.push_back(hs_flags);
        out->rules_.push_back(compiled);
    }
    if (out->has_unscoped_rules_) {
        out->vip_has_rules_.set();
    }
    // Counters: one cache-line-aligned row per worker so no two workers
    // write the same line.
    out->counter_stride_ = (out->rules_.size() + 7) / 8 * 8;
    if (out->counter_stride_ == 0) {
        out->counter_stride_ = 8;
    }
    const size_t counter_words = out->counter_stride_ * workers;
    out->counters_ = static_cast<uint64_t*>(
        ::operator new[](counter_words * sizeof(uint64_t), std::align_val_t{64}));
    std::fill(out->counters_, out->counters_ + counter_words, 0);
    if (rules.empty()) {
        return out;
    }

    hs_compile_error_t* error = nullptr;
    hs_database_t* db = nullptr;
    if (hs_compile_multi(expressions.data(), flags.data(), ids.data(),
                         static_cast<unsigned int>(expressions.size()), HS_MODE_BLOCK, nullptr, &db,
                         &error) != HS_SUCCESS) {
        std::string message;
        if (error != nullptr && error->expression >= 0 &&
            static_cast<size_t>(error->expression) < rules.size()) {
            const PayloadRule& bad = rules[static_cast<size_t>(error->expression)];
            message = "payload rule " + std::to_string(bad.id) + " (pattern \"" + bad.pattern +
                      "\"): " + error->message;
        } else {
            message = std::string("payload rules: Hyperscan compile failed: ") +
                      (error != nullptr ? error->message : "unknown error");
        }
        hs_free_compile_error(error);
        return make_error(message);
    }
    out->database_ = db;
    hs_scratch_t* first = nullptr;
    if (hs_alloc_scratch(db, &first) != HS_SUCCESS) {
        return make_error("payload rules: cannot allocate Hyperscan scratch");
    }
    out->scratch_.push_back(first);
    for (uint32_t w = 1; w < workers; ++w) {
        hs_scratch_t* clone = nullptr;
        if (hs_clone_scratch(first, &clone) != HS_SUCCESS) {
            return make_error("payload rules: cannot clone Hyperscan scratch for worker " +
                              std::to_string(w));
        }
        out->scratch_.push_back(clone);
    }
    return out;
}

PayloadRules::~PayloadRules()
{
    for (hs_scratch_t* s : scratch_) {
        hs_free_scratch(s);
    }
    hs_free_database(database_);
    ::operator delete[](counters_, std::align_val_t{64});
}

PayloadVerdict PayloadRules::match(const uint8_t* payload, uint32_t len, uint16_t vip_id,
                                   uint32_t worker) const
{
    if (database_ == nullptr || !has_rules_for(vip_id)) {
        return PayloadVerdict::kNoMatch;
    }
    // Hyperscan refuses a null data pointer even for an empty block.
    static const char kEmpty[1] = {0};
    const char* data = payload != nullptr ? reinterpret_cast<const char*>(payload) : kEmpty;
    ScanContext ctx{this, vip_id, -1};
    const hs_error_t rc = hs_scan(database_, data, len, 0, scratch_[worker], &PayloadRules::on_match, &ctx);
    if (rc == HS_SCAN_TERMINATED && ctx.matched >= 0) {
        // Only this worker writes its row; the relaxed atomic store keeps the
        // control plane's concurrent read well defined without a locked RMW.
        std::atomic_ref<uint64_t> hit(counters_[worker * counter_stride_ + static_cast<size_t>(ctx.matched)]);
        hit.store(hit.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return PayloadVerdict::kMatch;
    }
    return rc == HS_SUCCESS ? PayloadVerdict::kNoMatch : PayloadVerdict::kError;
}

uint64_t PayloadRules::hits_at(size_t index) const
{
    uint64_t sum = 0;
    if (index >= rules_.size()) {
        return 0;
    }
    for (uint32_t w = 0; w < workers_; ++w) {
        sum += std::atomic_ref<uint64_t>(counters_[w * counter_stride_ + index]).load(std::memory_order_relaxed);
    }
    return sum;
}

uint64_t PayloadRules::hits(uint32_t rule_id) const
{
    uint64_t sum = 0;
    for (size_t index = 0; index < rules_.size(); ++index) {
        if (rules_[index].id == rule_id) {
            sum += hits_at(index);
        }
    }
    return sum;
}

}  // namespace sluice::filter
