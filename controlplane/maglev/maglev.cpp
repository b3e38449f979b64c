// Weighted Maglev table population (NSDI'16 §3.4, Algorithm 1) with the
// hashes, ordering and weighting fully specified so that every node, every
// compiler and every standard library produce the same table. The fill is
// optimised (bitmap, incremental steps, endgame by modular inverse) but
// claims exactly the slots the paper's algorithm would (see the tests).
#include "maglev.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <numeric>

namespace sluice::maglev {
namespace {

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ull;

uint64_t fnv1a_step(uint64_t h, uint8_t byte)
{
    return (h ^ byte) * kFnvPrime;
}

// SplitMix64 output function (Steele, Lea, Flood 2014): a full-avalanche
// bijection, so ids differing in one byte get unrelated permutations.
uint64_t splitmix64_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m)
{
    return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m)
{
    uint64_t result = 1;
    base %= m;
    while (exp != 0) {
        if ((exp & 1) != 0) {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    return result;
}

// How a backend walks its permutation: the paper's
// permutation[i][j] = (offset + j·skip) mod M, one step at a time. With
// c < M and 0 < skip < M, (c + skip) mod M is c + skip, or c − (M − skip)
// once c ≥ M − skip. Both candidates and the comparison depend on c alone,
// so a step costs one add plus one cmov of latency, where "add, then
// subtract M if ≥ M" would cost three, and a division far more.
struct Stride {
    uint32_t skip;
    uint32_t back;  // M - skip

    uint32_t advance(uint32_t c) const { return c >= back ? c - back : c + skip; }
};

// skip⁻¹ mod M by the extended Euclidean algorithm (M prime, 0 < skip < M).
uint32_t inverse_mod(uint32_t skip, uint32_t m)
{
    int64_t t0 = 0;
    int64_t t1 = 1;
    uint32_t r0 = m;
    uint32_t r1 = skip;
    while (r1 != 0) {
        const uint32_t q = r0 / r1;
        const uint32_t r2 = r0 - q * r1;
        const int64_t t2 = t0 - static_cast<int64_t>(q) * t1;
        r0 = r1;
        r1 = r2;
        t0 = t1;
        t1 = t2;
    }
    return static_cast<uint32_t>(t0 < 0 ? t0 + m : t0);
}

// The hot state of the population loop, one entry per backend with weight
// > 0, as parallel arrays: the round scan streams through weight alone, a
// turn touches one cursor and one Stride.
struct Turns {
    std::vector<uint32_t> cursor;   // next slot of the backend's permutation to try
    std::vector<Stride> stride;
    std::vector<uint32_t> weight;
    std::vector<uint32_t> index;    // backend index written into the slot
    std::vector<uint32_t> inverse;  // skip⁻¹ mod M once needed (endgame), else 0

    void add(const detail::Permutation& p, uint32_t backend_index, uint32_t m)
    {
        cursor.push_back(p.offset);
        stride.push_back({p.skip, m - p.skip});
        weight.push_back(p.weight);
        index.push_back(backend_index);
        inverse.push_back(0);
    }
};

// The table being filled, with a bitmap of claimed slots and, near the end,
// a list of the free ones.
//
// Every turn claims the first free slot along the backend's permutation.
// Walking there costs M/F probes on average when F slots are free: about
// M ln M probes in all, half of them in the last √M turns. So the fill has
// two phases that claim the same slots:
// - walk (F > endgame size): probe the bitmap step by step. The bitmap
//   (8 KiB for M = 65537, 80 KiB for 655373) stays in L1/L2 where the
//   4-byte slots would not; the probe addresses depend on the cursor only,
//   never on a loaded bit, so the CPU overlaps the loads.
// - endgame (F ≤ endgame size ≈ √M): for each free slot f compute how many
//   steps away it is, (f − cursor)·skip⁻¹ mod M, and take the nearest. F
//   multiplications instead of M/F probes; distances are distinct (the
//   permutation is a bijection), so the order of the free list is irrelevant.
class Filler {
public:
    Filler(std::vector<uint32_t>& slots, uint32_t table_size)
        : slots_(slots),
          taken_((table_size + 63) / 64, 0),
          table_size_(table_size),
          free_count_(table_size),
          endgame_size_(endgame_size(table_size)),
          // floor((2^64 - 1) / M): a quotient estimate at most 1 too small
          // for any 64-bit dividend (Barrett reduction).
          reciprocal_(~uint64_t{0} / table_size)
    {
    }

    // One turn of Algorithm 1: claim the first free slot along backend a's
    // permutation from its cursor; the cursor then points past it, as the
    // paper's next[i]++ does. Returns true when the table is full.
    // Inlined into both schedulers' loops: a call would spill and reload
    // half a dozen registers on every one of the M turns.
    [[gnu::always_inline]] bool take_turn(Turns& t, size_t a)
    {
        const Stride s = t.stride[a];
        uint32_t c = t.cursor[a];
        if (free_count_ > endgame_size_) {
            while (is_taken(c)) {
                c = s.advance(c);
            }
            taken_[c >> 6] |= uint64_t{1} << (c & 63);
        } else {
            c = take_nearest_free(t, a);
        }
        slots_[c] = t.index[a];
        t.cursor[a] = s.advance(c);
        --free_count_;
        if (free_count_ == endgame_size_) {
            collect_free();
        }
        return free_count_ == 0;
    }

private:
    // Where M/F probes (~2 cycles each, plus a mispredicted exit) start to
    // cost more than F distance computations (~4 cycles each, branch-free).
    // Measured at M = 655373: endgame sizes from √M/4 to √M within 2% of
    // each other, 20% faster than no endgame.
    static uint32_t endgame_size(uint32_t m)
    {
        uint32_t root = 1;
        while (uint64_t{root} * root < m) {
            ++root;
        }
        return root / 2;
    }

    bool is_taken(uint32_t c) const { return ((taken_[c >> 6] >> (c & 63)) & 1) != 0; }

    // Runs once: lists the clear bits of the bitmap, a word at a time.
    void collect_free()
    {
        free_.clear();
        for (size_t w = 0; w < taken_.size(); ++w) {
            for (uint64_t clear = ~taken_[w]; clear != 0; clear &= clear - 1) {
                const auto c = static_cast<uint32_t>(w * 64) +
                               static_cast<uint32_t>(std::countr_zero(clear));
                if (c < table_size_) {
                    free_.push_back(c);
                }
            }
        }
    }

    uint32_t mod_m(uint64_t x) const
    {
        const auto q =
            static_cast<uint64_t>((static_cast<unsigned __int128>(x) * reciprocal_) >> 64);
        const uint64_t r = x - q * table_size_;
        return static_cast<uint32_t>(r >= table_size_ ? r - table_size_ : r);
    }

    uint32_t take_nearest_free(Turns& t, size_t a)
    {
        if (t.inverse[a] == 0) {
            t.inverse[a] = inverse_mod(t.stride[a].skip, table_size_);
        }
        const uint64_t inverse = t.inverse[a];
        const uint32_t c = t.cursor[a];
        size_t best = 0;
        uint32_t best_steps = table_size_;
        for (size_t k = 0; k < free_.size(); ++k) {
            const uint32_t f = free_[k];
            const uint32_t delta = f >= c ? f - c : f + table_size_ - c;
            const uint32_t steps = mod_m(delta * inverse);
            best = steps < best_steps ? k : best;
            best_steps = steps < best_steps ? steps : best_steps;
        }
        const uint32_t chosen = free_[best];
        free_[best] = free_.back();
        free_.pop_back();
        return chosen;
    }

    std::vector<uint32_t>& slots_;
    std::vector<uint64_t> taken_;  // bit c set once slot c is claimed (walk phase)
    std::vector<uint32_t> free_;   // unclaimed slots, endgame only, any order
    uint32_t table_size_;
    uint32_t free_count_;
    uint32_t endgame_size_;
    uint64_t reciprocal_;
};

// Deviation from the paper (which leaves weights open): turns come in
// rounds. In round r = 1, 2, ... backends are visited in index order, each
// adds its weight to a credit and takes a turn when the credit reaches the
// largest weight W (then pays W back). After r rounds a backend has taken
// floor(r·w/W) turns, so its share of turns, and therefore of slots, is
// w / Σw up to rounding; with all weights equal this is exactly the paper's
// round-robin. Weight 0 never takes a turn (draining).
void fill_round_scan(Turns& t, uint64_t max_weight, Filler& filler)
{
    const size_t n = t.index.size();
    std::vector<uint64_t> credit(n, 0);
    for (;;) {
        for (size_t a = 0; a < n; ++a) {
            credit[a] += t.weight[a];
            if (credit[a] < max_weight) {
                continue;
            }
            credit[a] -= max_weight;
            if (filler.take_turn(t, a)) {
                return;
            }
        }
    }
}

// The same turn sequence as fill_round_scan, without visiting backends that
// are not due: backend a's (k+1)-th turn falls in round ceil((k+1)·W/w), and
// within a round turns go in index order, so a min-heap keyed by
// (round, index) pops turns in exactly the scan's order. Costs O(M log N)
// whatever the weights, where the scan costs O(M·N·W/Σw): one heavy backend
// among many light ones would make the scan quadratic.
void fill_event_heap(Turns& t, uint64_t max_weight, uint32_t table_size, Filler& filler)
{
    const size_t n = t.index.size();
    // A backend's k-th turn never comes after round M: the heaviest backend
    // takes one turn per round and M turns fill the table. Rounds beyond M
    // are therefore never reached and are dropped, which keeps the round in
    // the upper 32 bits of the key.
    auto next_round = [&](size_t a, uint64_t turns_taken) {
        const uint64_t due = turns_taken + 1;
        return (due * max_weight + t.weight[a] - 1) / t.weight[a];
    };
    std::vector<uint64_t> taken_turns(n, 0);
    std::vector<uint64_t> heap;
    heap.reserve(n);
    for (size_t a = 0; a < n; ++a) {
        const uint64_t round = next_round(a, 0);
        if (round <= table_size) {
            heap.push_back(round << 32 | a);
        }
    }
    std::make_heap(heap.begin(), heap.end(), std::greater<>{});
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
        const size_t a = static_cast<uint32_t>(heap.back());
        if (filler.take_turn(t, a)) {
            return;
        }
        const uint64_t round = next_round(a, ++taken_turns[a]);
        if (round <= table_size) {
            heap.back() = round << 32 | a;
            std::push_heap(heap.begin(), heap.end(), std::greater<>{});
        } else {
            heap.pop_back();
        }
    }
}

}  // namespace

namespace detail {

IdHashes hash_id(std::string_view id)
{
    uint64_t state = kFnvOffsetBasis;
    for (const char ch : id) {
        state = fnv1a_step(state, static_cast<uint8_t>(ch));
    }
    // Two SplitMix64 outputs of one seed: independent for practical
    // purposes, and unlike two FNV runs with different bases their low bits
    // are not correlated (FNV's low bit is a parity of the input's).
    state += kGoldenGamma;
    const uint64_t h1 = splitmix64_mix(state);
    state += kGoldenGamma;
    const uint64_t h2 = splitmix64_mix(state);
    return {h1, h2};
}

std::vector<uint32_t> fill_slots(std::span<const Permutation> perms, uint32_t table_size,
                                 TurnScheduler scheduler)
{
    std::vector<uint32_t> slots(table_size, kNoBackend);
    Turns t;
    uint64_t max_weight = 0;
    uint64_t weight_sum = 0;
    for (size_t i = 0; i < perms.size(); ++i) {
        if (perms[i].weight == 0) {
            continue;
        }
        t.add(perms[i], static_cast<uint32_t>(i), table_size);
        max_weight = std::max<uint64_t>(max_weight, perms[i].weight);
        weight_sum += perms[i].weight;
    }
    if (t.index.empty() || t.index.size() > table_size) {
        return slots;  // precondition broken; build_table never gets here
    }
    if (scheduler == TurnScheduler::kAuto) {
        // The scan visits N·W/Σw backends per turn at under 1 ns a visit;
        // the heap pays 10-60 ns per turn (sift steps, growing with the
        // number of backends that are due within M rounds). Measured with
        // N = 100..10000, M = 65537: the two meet at 20-40 visits per turn.
        const uint64_t visits_per_turn = t.index.size() * max_weight / weight_sum;
        scheduler = visits_per_turn <= 32 ? TurnScheduler::kRoundScan : TurnScheduler::kEventHeap;
    }
    Filler filler(slots, table_size);
    if (scheduler == TurnScheduler::kRoundScan) {
        fill_round_scan(t, max_weight, filler);
    } else {
        fill_event_heap(t, max_weight, table_size, filler);
    }
    return slots;
}

}  // namespace detail

bool is_prime(uint64_t n)
{
    constexpr uint64_t kBases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    if (n < 2) {
        return false;
    }
    for (const uint64_t p : kBases) {
        if (n % p == 0) {
            return n == p;
        }
    }
    // Miller-Rabin with the first twelve primes as bases is exact for all
    // n < 3.3e24 (Sorenson & Webster 2015), hence for every uint64_t.
    uint64_t d = n - 1;
    int s = 0;
    while ((d & 1) == 0) {
        d >>= 1;
        ++s;
    }
    for (const uint64_t a : kBases) {
        uint64_t x = pow_mod(a, d, n);
        if (x == 1 || x == n - 1) {
            continue;
        }
        bool composite = true;
        for (int r = 1; r < s; ++r) {
            x = mul_mod(x, x, n);
            if (x == n - 1) {
                composite = false;
                break;
            }
        }
        if (composite) {
            return false;
        }
    }
    return true;
}

Result<Table> build_table(std::span<const Backend> backends, uint32_t table_size)
{
    const std::string m = std::to_string(table_size);
    if (table_size > kMaxTableSize) {
        return Error{"maglev table size " + m + " exceeds the limit " +
                     std::to_string(kMaxTableSize) + " (SLUICE_MAX_RING_SIZE)"};
    }
    if (!is_prime(table_size)) {
        return Error{"maglev table size " + m + " is not prime"};
    }
    if (backends.size() >= kNoBackend) {
        return Error{"too many backends"};
    }

    // Sort by id so the input order cannot matter. std::string compares via
    // char_traits<char>, which orders bytes as unsigned char on every
    // platform: the order is plain byte order everywhere.
    std::vector<uint32_t> order(backends.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return backends[a].id < backends[b].id; });

    Table table;
    table.size = table_size;
    table.ids.reserve(backends.size());
    std::vector<detail::Permutation> perms;
    perms.reserve(backends.size());
    size_t active = 0;
    for (size_t i = 0; i < order.size(); ++i) {
        const Backend& b = backends[order[i]];
        if (b.id.empty()) {
            return Error{"maglev backend id must not be empty"};
        }
        if (i > 0 && b.id == table.ids.back()) {
            return Error{"duplicate maglev backend id '" + b.id + "'"};
        }
        const detail::IdHashes h = detail::hash_id(b.id);
        // skip in [1, M-1] is coprime with prime M, so each permutation
        // visits every slot (§3.4). M = 2 gives skip = 1.
        perms.push_back({static_cast<uint32_t>(h.h1 % table_size),
                         static_cast<uint32_t>(h.h2 % (table_size - 1) + 1), b.weight});
        table.ids.push_back(b.id);
        active += b.weight > 0 ? 1 : 0;
    }
    if (active > table_size) {
        return Error{"maglev table size " + m + " is smaller than the " + std::to_string(active) +
                     " backends with weight > 0"};
    }
    if (active == 0) {
        table.slots.assign(table_size, kNoBackend);
    } else {
        table.slots = detail::fill_slots(perms, table_size);
    }
    return table;
}

uint64_t fingerprint(const Table& table)
{
    uint64_t h = kFnvOffsetBasis;
    auto add_u32 = [&h](uint32_t v) {
        for (int shift = 0; shift < 32; shift += 8) {
            h = fnv1a_step(h, static_cast<uint8_t>(v >> shift));
        }
    };
    add_u32(table.size);
    add_u32(static_cast<uint32_t>(table.ids.size()));
    for (const std::string& id : table.ids) {
        add_u32(static_cast<uint32_t>(id.size()));
        for (const char ch : id) {
            h = fnv1a_step(h, static_cast<uint8_t>(ch));
        }
    }
    for (const uint32_t slot : table.slots) {
        add_u32(slot);
    }
    return h;
}

}  // namespace sluice::maglev
