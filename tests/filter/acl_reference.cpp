// Brute-force ACL reference (see acl_reference.h).
#include "acl_reference.h"

namespace sluice::filter::testing {
namespace {

// Straight from the header's rules: longest match in either list decides,
// deny wins a tie, no match is a deny only when the allow list is non-empty.
bool scope_admits(const AclScope& scope, uint8_t family, const uint8_t* addr)
{
    int best = -1;
    bool allowed = false;
    for (const Prefix& p : scope.allow) {
        if (p.family == family && prefix_contains(p, addr) && p.length > best) {
            best = p.length;
            allowed = true;
        }
    }
    for (const Prefix& p : scope.deny) {
        if (p.family == family && prefix_contains(p, addr) && p.length >= best) {
            best = p.length;
            allowed = false;
        }
    }
    return best >= 0 ? allowed : scope.allow.empty();
}

}  // namespace

uint8_t reference_verdict(const AclConfig& config, uint8_t family, const uint8_t* addr, uint16_t vip_id)
{
    if (vip_id > SLUICE_MAX_VIPS || !scope_admits(config.global, family, addr)) {
        return SLUICE_ACL_DENY;
    }
    const auto scope = config.per_vip.find(vip_id);
    if (scope != config.per_vip.end() && !scope_admits(scope->second, family, addr)) {
        return SLUICE_ACL_DENY;
    }
    return SLUICE_ACL_ALLOW;
}

}  // namespace sluice::filter::testing
