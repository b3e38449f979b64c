// Source-prefix ACL: which client prefixes may reach which VIP. Built once
// per config by the control thread on rte_lpm (IPv4) and rte_lpm6 (IPv6),
// then immutable, so workers look it up in bursts without locks.
//
// Semantics (what operators know from HAProxy "acl src" + "tcp-request
// connection reject" and from nftables verdict sets):
//  - Two kinds of scope: the global scope, and one scope per VIP that has
//    its own lists. Each scope has an allow list and a deny list; each list
//    may mix IPv4 and IPv6 prefixes.
//  - Within one scope the longest matching prefix decides, whichever list
//    it is in: "deny 10.0.0.0/8, allow 10.1.0.0/16" allows 10.1.2.3 and
//    denies 10.2.3.4. The same prefix in both lists of one scope: deny wins
//    (fail closed; the config loader warns about it).
//  - A scope whose allow list is non-empty is default-deny: a source that
//    matches nothing in the scope is denied. This holds for both families:
//    a VIP that allows only IPv4 prefixes denies every IPv6 client (fail
//    closed; add "::/0" to the allow list to admit IPv6). A scope with only
//    a deny list (or no lists) admits what it does not match.
//  - A packet passes only if the global scope admits it AND its VIP's scope
//    (if that VIP has one) admits it. So the global deny applies before, and
//    cannot be overridden by, a per-VIP allow; and a per-VIP deny cannot be
//    overridden by a global allow. A global allow list is a fleet-wide
//    default-deny that per-VIP lists can narrow but never widen.
//  - vip_id SLUICE_MAX_VIPS (the ABI's "global" id) is checked against the
//    global scope only; a vip_id above it is denied (a bug upstream: fail
//    closed).
//  - /0 is allowed in either list ("deny 0.0.0.0/0" + a few allows is the
//    classic allow list written the other way round).
//
// How: all prefixes of one family, from every scope, go into one LPM table
// keyed by address only. The longest matching prefix P in that union fixes
// the chain of every prefix that contains the address (P's ancestors), so
// the verdict of every (scope combination) can be precomputed per P: the
// LPM next hop indexes a row of verdicts, one column per VIP scope. One
// table per family however many VIPs have lists (each rte_lpm / rte_lpm6
// costs a fixed 64 MiB tbl24, so one per VIP is out of the question); a
// family with no prefixes creates no table at all.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "filter/prefix.h"

extern "C" {
#include "abi/tables.h"
}

struct rte_lpm;
struct rte_lpm6;

namespace sluice::filter {

// One scope's lists, already parsed.
struct AclScope {
    std::vector<Prefix> allow;
    std::vector<Prefix> deny;
};

// The whole ACL description: the global scope and the VIPs with their own.
struct AclConfig {
    AclScope global;
    std::map<uint16_t, AclScope> per_vip;  // vip_id (< SLUICE_MAX_VIPS) → its lists
};

// Parses a scope from operator text; the error names the list, the index
// and what is wrong with the prefix, e.g. `deny[2]: bad prefix "10.1.0.0/8":
// ...`. Control thread (pure; any thread).
Result<AclScope> parse_acl_scope(const std::vector<std::string>& allow,
                                 const std::vector<std::string>& deny);

class Acl {
public:
    // Largest burst one check_burst_* call handles in one go; longer ones are
    // processed in chunks of this size.
    static constexpr uint16_t kChunk = 64;

    // Control thread, after EAL init: builds the tables (allocates EAL
    // memory, ~64 MiB per address family that has prefixes). Fails with a
    // message on a bad prefix, a vip_id out of range, or when EAL memory runs out. Thread-safe (table names
    // come from an atomic counter).
    static Result<std::unique_ptr<Acl>> build(const AclConfig& config);

    // Frees the LPM tables. Only once no worker can still read this Acl
    // (the RCU publisher deletes a snapshot after the grace period).
    ~Acl();
    Acl(const Acl&) = delete;
    Acl& operator=(const Acl&) = delete;

    // Worker, packet path: for each of `n` IPv4 sources (network byte order,
    // as in the packet) and the VIP it was sent to, writes SLUICE_ACL_ALLOW
    // or SLUICE_ACL_DENY to verdict[i]. No allocation, lock or syscall;
    // thread-safe (reads only immutable state).
    void check_burst_v4(const uint32_t* src_be, const uint16_t* vip_ids, uint16_t n,
                        uint8_t* verdict) const;

    // Worker, packet path: the IPv6 equivalent (16 bytes each, network order).
    void check_burst_v6(const uint8_t (*src)[16], const uint16_t* vip_ids, uint16_t n,
                        uint8_t* verdict) const;

    // One address at a time (tests, diagnostics, the admin API's "lookup").
    // Any thread.
    uint8_t check_v4(uint32_t src_be, uint16_t vip_id) const;
    uint8_t check_v6(const uint8_t* src, uint16_t vip_id) const;

    // True when no scope has any prefix: everything is allowed and a worker
    // may skip the lookup. Any thread.
    bool allows_everything() const { return allows_everything_; }

private:
    Acl() = default;

    // Final verdict for LPM row `row` of one family and a VIP.
    uint8_t verdict_at(const std::vector<uint8_t>& rows, uint32_t row, uint16_t vip_id) const
    {
        if (vip_id > SLUICE_MAX_VIPS) {
            return SLUICE_ACL_DENY;
        }
        return rows[static_cast<size_t>(row) * columns_ + vip_column_[vip_id]];
    }

    rte_lpm* lpm4_ = nullptr;    // null when no IPv4 prefix is configured
    rte_lpm6* lpm6_ = nullptr;   // null when no IPv6 prefix is configured
    uint32_t miss_row4_ = 0;     // row for an LPM miss (the /0 row if any)
    uint32_t miss_row6_ = 0;
    uint32_t columns_ = 1;       // column 0: global scope only; then one per VIP scope
    std::vector<uint8_t> rows4_; // deduplicated verdict rows, columns_ bytes each
    std::vector<uint8_t> rows6_;
    std::array<uint16_t, SLUICE_MAX_VIPS + 1> vip_column_{};  // vip_id → column
    bool allows_everything_ = false;
};

}  // namespace sluice::filter
