// Deterministic weighted Maglev table builder (Eisenbud et al., NSDI'16,
// §3.4): a pure function from (backend set, weights, table size) to a table
// that every sluice node reading the same discovery data builds identically.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "abi/tables.h"
#include "common/result.h"

namespace sluice::maglev {

// Slot value of a table with no backend to serve (empty set, or every
// backend at weight 0). Equal to the data planes' SLUICE_BACKEND_NONE.
inline constexpr uint32_t kNoBackend = SLUICE_BACKEND_NONE;
// Largest table size accepted; the data planes size their rings by it.
inline constexpr uint32_t kMaxTableSize = SLUICE_MAX_RING_SIZE;
static_assert(kNoBackend == 0xFFFFFFFFu);

// One backend as the control plane knows it. `id` is the stable name that
// every node agrees on ("10.0.0.1:80" or a discovery key): it alone decides
// the backend's permutation, so it must not depend on local state.
struct Backend {
    std::string id;
    // Relative share of slots. 0 = draining: the backend keeps its index
    // (so established flows still map to it) but owns no slot.
    uint32_t weight = 1;
};

// A built lookup table.
//
// Contract: `ids` lists every input backend (weight 0 included) sorted by
// id in byte order, and each slot holds an index into `ids` (or kNoBackend).
// The caller lays out its backend array in this order; the input order is
// irrelevant, which is what makes the table a function of the set alone.
struct Table {
    uint32_t size = 0;             // M, prime; equals slots.size()
    std::vector<std::string> ids;  // backends sorted by id; slot values index this
    std::vector<uint32_t> slots;   // slot -> index into ids, or kNoBackend

    bool operator==(const Table&) const = default;
};

// Builds the table for `backends` with `table_size` slots.
// Errors: table_size not prime, above kMaxTableSize, or below the number of
// backends with weight > 0; an empty or duplicate id.
// An empty set (or all weights 0) is not an error: every slot is kNoBackend.
// Pure and thread-safe; allocates O(N + M). Control plane only.
Result<Table> build_table(std::span<const Backend> backends, uint32_t table_size);

// Deterministic primality test, exact for every 64-bit n (Miller-Rabin with
// the first twelve prime bases). Thread-safe.
bool is_prime(uint64_t n);

// 64-bit fingerprint that nodes compare to prove they built the same table.
// Specified byte for byte so any tool can recompute it: FNV-1a 64 (offset
// basis 0xcbf29ce484222325, prime 0x100000001b3) over
//   u32 size, u32 ids.size(), for each id: u32 length then its bytes,
//   then every slot as u32,
// all integers little-endian. The ids are included because slot values are
// only indices: two nodes agree only if index -> id agrees as well.
uint64_t fingerprint(const Table& table);

// Building blocks, exposed for the golden tests and the benchmark; not for
// production callers.
namespace detail {

// The two independent 64-bit hashes of an id: the first two outputs of
// SplitMix64 seeded with FNV-1a 64 of the id's bytes (see maglev.cpp).
struct IdHashes {
    uint64_t h1;  // -> offset
    uint64_t h2;  // -> skip
};
IdHashes hash_id(std::string_view id);

// Where a backend's permutation starts and how it steps, plus its weight.
struct Permutation {
    uint32_t offset;  // h1 mod M
    uint32_t skip;    // h2 mod (M - 1) + 1, never 0, so every slot is visited
    uint32_t weight;
};

// How weighted turns are ordered. Both produce the same turn sequence (a
// test proves it); they differ only in cost, and fill_slots picks one.
enum class TurnScheduler {
    kAuto,       // pick by cost estimate
    kRoundScan,  // visit every backend each round: cheap when weights are alike
    kEventHeap,  // min-heap of next turns: cheap when a few weights dominate
};

// Fills M = table_size slots from already-validated permutations (index i
// of `perms` is backend i). Preconditions (build_table checks them): M is
// prime, offset < M, 0 < skip < M, and between 1 and M backends have
// weight > 0; otherwise every slot is kNoBackend.
std::vector<uint32_t> fill_slots(std::span<const Permutation> perms, uint32_t table_size,
                                 TurnScheduler scheduler = TurnScheduler::kAuto);

}  // namespace detail
}  // namespace sluice::maglev
