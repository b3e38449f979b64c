// Per-worker connection table: remembers which backend each flow went to so
// that a ring change (backend added, removed, draining) moves no established
// flow whose backend is still valid. Set-associative: a flow lives in one
// 8-way bucket chosen by its hash, so every operation touches one bucket
// (a bounded probe, unlike an open-addressing chain that grows with load),
// and a full bucket evicts its least recently seen entry. Fixed capacity,
// allocated once in the constructor; nothing allocates afterwards.
//
// Thread safety: none. Each worker owns one table and is its only user.
#pragma once

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "core/conn_census.h"
#include "core/packet.h"

extern "C" {
#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::core {

class ConnectionTable {
public:
    // The layout both planes share (dataplane/abi/tables.h): the XDP
    // program runs this table's algorithm on the same buckets.
    static constexpr uint32_t kWays = SLUICE_CONN_WAYS;
    static constexpr uint32_t kAllWays = SLUICE_CONN_ALL_WAYS;  // Bucket::used when full

    struct Config {
        uint32_t capacity;                 // entries; rounded up to a power-of-two count of buckets
        uint64_t tcp_established_timeout;  // idle ticks before an established TCP entry expires
        uint64_t tcp_transitory_timeout;   // ... a TCP entry that saw only SYN, or a FIN/RST
        uint64_t udp_timeout;              // ... a UDP entry
    };

    // Why an entry is aged with a given timeout (sluice_conn_entry::state).
    enum State : uint8_t {
        kTcpTransitory = SLUICE_CONN_TCP_TRANSITORY,    // SYN seen, handshake not finished
        kTcpEstablished = SLUICE_CONN_TCP_ESTABLISHED,  // data or ACK seen after SYN, or picked up mid-flow
        kTcpClosing = SLUICE_CONN_TCP_CLOSING,          // FIN or RST seen: keep only long enough for the close
        kUdp = SLUICE_CONN_UDP,
    };

    // One remembered flow; last_seen is the caller's clock (TSC ticks here).
    using Entry = sluice_conn_entry;

    // What lookup_or_insert() did.
    struct LookupResult {
        uint32_t backend_id;  // SLUICE_BACKEND_NONE when the pick found none or admit() refused
        bool hit;             // an existing entry with a valid backend was (or, refused, would be) used
        bool evicted;         // a live entry was evicted to make room
        bool admitted;        // admit() let the packet through; false: nothing was changed
        // A hit that a second call would repeat exactly: called again with
        // the same key, hash and `now`, tcp_flags holding none of SYN, FIN
        // and RST, is_valid(backend_id) still true and admit(false) true,
        // lookup_or_insert() would return this same result and write
        // nothing (see repeatable()). The pipeline's per-chunk flow memo
        // skips that second call.
        bool repeatable;
    };

    // Start-up, on the worker's own core (so its memory is local). Allocates
    // and touches every page, so no page fault is left for the packet path.
    explicit ConnectionTable(const Config& config);
    ~ConnectionTable();

    ConnectionTable(const ConnectionTable&) = delete;
    ConnectionTable& operator=(const ConnectionTable&) = delete;

    // Worker. The backend for a flow's packet: the pinned one while it is
    // still valid (`is_valid(id)`), else `pick()` (the Maglev ring), which
    // is then pinned. A draining backend is valid and out of the ring, so
    // its flows stay and no new ones come. No entry is made when pick()
    // returns SLUICE_BACKEND_NONE.
    //
    // `admit(new_flow)` runs after the lookup and before anything is
    // written (the filters' hook): new_flow is true exactly when the packet
    // would write an entry (none, an expired one, or one whose backend is no
    // longer valid), i.e. when it is not a hit. When it returns false the
    // table is left exactly as it was (no entry made, none refreshed) and
    // the result has admitted = false.
    template <typename IsValid, typename Pick, typename Admit>
    SLUICE_ALWAYS_INLINE LookupResult lookup_or_insert(const sluice_flow_key& key, uint32_t hash, uint64_t now,
                                                      uint8_t tcp_flags, IsValid&& is_valid, Pick&& pick,
                                                      Admit&& admit)
    {
        Bucket& b = bucket(hash);
        Entry* e = find_in(b, key, hash);
        const bool live = e != nullptr && !expired(*e, now);
        const bool hit = live && is_valid(e->backend_id);
        if (!admit(!hit)) return {SLUICE_BACKEND_NONE, hit, false, false, false};
        if (hit) {
            touch(*e, now, tcp_flags);
            return {e->backend_id, true, false, true, repeatable(*e)};
        }
        const uint32_t backend = pick();
        if (backend == SLUICE_BACKEND_NONE) return {backend, false, false, true, false};
        bool evicted = false;
        if (e == nullptr) {
            e = &claim(b, hash, now, evicted);
            e->key = key;
        }
        // A new flow, an expired entry of the same 5-tuple (a new
        // connection), or a live entry whose backend is gone: re-pin in place.
        e->backend_id = backend;
        if (live) {
            touch(*e, now, tcp_flags);
        } else {
            e->state = initial_state(key.proto, tcp_flags);
            e->last_seen = now;
        }
        return {backend, false, evicted, true, false};
    }

    // The same without a filter: every packet is admitted.
    template <typename IsValid, typename Pick>
    SLUICE_ALWAYS_INLINE LookupResult lookup_or_insert(const sluice_flow_key& key, uint32_t hash, uint64_t now,
                                                      uint8_t tcp_flags, IsValid&& is_valid, Pick&& pick)
    {
        return lookup_or_insert(key, hash, now, tcp_flags, is_valid, pick, [](bool) { return true; });
    }

    // Worker. The pinned backend if the flow has a live entry whose backend
    // is valid, else SLUICE_BACKEND_NONE. Changes nothing: an ICMP error
    // follows its flow but neither creates nor refreshes an entry.
    template <typename IsValid>
    SLUICE_ALWAYS_INLINE uint32_t lookup(const sluice_flow_key& key, uint32_t hash, uint64_t now,
                                         IsValid&& is_valid)
    {
        const Entry* e = find_in(bucket(hash), key, hash);
        return e != nullptr && !expired(*e, now) && is_valid(e->backend_id) ? e->backend_id : SLUICE_BACKEND_NONE;
    }

    // Worker. Starts loading the bucket a flow with this hash lives in (its
    // signatures and first ways), for a lookup a little later: a burst
    // prefetches every packet's bucket before looking any of them up.
    SLUICE_ALWAYS_INLINE void prefetch(uint32_t hash) const
    {
        const Bucket* b = &buckets_[hash & mask_];
        __builtin_prefetch(b);
        __builtin_prefetch(reinterpret_cast<const uint8_t*>(b) + 64);
    }

    // Worker, after prefetch(hash) and a little before the lookup: starts
    // loading the ways the lookup will read, once the bucket's signatures
    // are in cache: the way whose signature matches, else the way a new
    // entry will take (the first free one; every way of a full bucket,
    // whose least recently seen entry is looked for).
    SLUICE_ALWAYS_INLINE void prefetch_ways(uint32_t hash) const
    {
        const Bucket& b = buckets_[hash & mask_];
        uint32_t ways = matching_ways(b, hash);
        if (ways == 0 && b.used == kAllWays) {
            // Every line past the two prefetch() loaded: no per-way loop.
#pragma GCC unroll 8
            for (size_t line = 2; line < sizeof(Bucket) / 64; ++line)
                __builtin_prefetch(reinterpret_cast<const uint8_t*>(&b) + line * 64);
            return;
        }
        if (ways == 0) ways = ~b.used & (b.used + 1);
        for (; ways != 0; ways &= ways - 1) {
            const auto* e = reinterpret_cast<const uint8_t*>(&b.entries[__builtin_ctz(ways)]);
            __builtin_prefetch(e);
            __builtin_prefetch(e + sizeof(Entry) - 1);
        }
    }

    // Any time on the owner; for tests and stats. Occupied slots, including
    // expired entries not yet reused.
    size_t size() const { return size_; }
    size_t capacity() const { return static_cast<size_t>(mask_ + 1) * kWays; }

    // How many entries are live at `now` (the owner's clock), from a sample
    // of buckets; any thread while the owner writes (see conn_census.h).
    ConnCensus census(uint64_t now, size_t max_buckets = kConnCensusBuckets) const
    {
        return conn_census(buckets_, static_cast<size_t>(mask_) + 1, now, timeouts_, max_buckets);
    }

    // Adds each backend's live entries at `now` to counts[id] (a walk of
    // the whole table; see conn_census.h). Any thread.
    void count_by_backend(uint64_t now, uint64_t* counts) const
    {
        conn_count_by_backend(buckets_, static_cast<size_t>(mask_) + 1, now, timeouts_, counts);
    }

    // The live entry for a flow, or nullptr (tests, diagnostics).
    const Entry* peek(const sluice_flow_key& key, uint32_t hash, uint64_t now)
    {
        const Entry* e = find_in(bucket(hash), key, hash);
        return e != nullptr && !expired(*e, now) ? e : nullptr;
    }

    // A copy of the live entry for a flow, from any thread while the owner
    // keeps writing (sluicectl lookup): racy by design. The bucket memory
    // stays mapped and every field is plain data, so the worst a torn read
    // gives is a miss or a stale answer, never a crash; the copy's key is
    // compared again so a way reused meanwhile is not reported. Live as
    // sluice_conn_live_for_reader judges it: the owner may have touched the
    // entry after the caller read `now`.
    std::optional<Entry> peek_copy(const sluice_flow_key& key, uint32_t hash, uint64_t now) const
    {
        const Bucket& b = buckets_[hash & mask_];
        for (uint32_t way = 0; way < kWays; ++way) {
            if (((b.used >> way) & 1u) == 0 || b.sig[way] != hash) continue;
            Entry copy;
            std::memcpy(&copy, &b.entries[way], sizeof copy);
            if (std::memcmp(&copy.key, &key, sizeof key) == 0 &&
                sluice_conn_live_for_reader(copy.last_seen, now, timeout(copy.state)))
                return copy;
        }
        return std::nullopt;
    }

private:
    using Bucket = sluice_conn_bucket;  // signatures, used bits, then the ways
    static_assert(sizeof(Bucket) % 64 == 0, "buckets start on cache lines (the array is 2 MiB aligned)");

    SLUICE_ALWAYS_INLINE Bucket& bucket(uint32_t hash) { return buckets_[hash & mask_]; }

    // By State: a load instead of a switch, since a full bucket's eviction
    // scan asks it for every way.
    SLUICE_ALWAYS_INLINE uint64_t timeout(uint8_t state) const { return timeouts_[state & 3u]; }

    SLUICE_ALWAYS_INLINE bool expired(const Entry& e, uint64_t now) const
    {
        return now - e.last_seen >= timeout(e.state);
    }

    // Bit i set: way i is used and its signature is `hash`. One compare of
    // all eight signatures at once where SSE2 is there (every x86-64), as
    // DPDK's rte_hash compares its bucket's signatures.
    static SLUICE_ALWAYS_INLINE uint32_t matching_ways(const Bucket& b, uint32_t hash)
    {
#if defined(__SSE2__)
        static_assert(kWays == 8 && offsetof(Bucket, sig) == 0, "two 16-byte signature vectors");
        const __m128i h = _mm_set1_epi32(static_cast<int>(hash));
        const __m128i lo = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b.sig)), h);
        const __m128i hi = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b.sig + 4)), h);
        const auto eq = static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(lo)) |
                                              (_mm_movemask_ps(_mm_castsi128_ps(hi)) << 4));
#else
        uint32_t eq = 0;
        for (uint32_t i = 0; i < kWays; ++i) eq |= static_cast<uint32_t>(b.sig[i] == hash) << i;
#endif
        return eq & b.used;
    }

    // The way holding this flow, live or expired: a key is in at most one
    // way, because an expired entry is reused by its own flow in place.
    SLUICE_ALWAYS_INLINE Entry* find_in(Bucket& b, const sluice_flow_key& key, uint32_t hash)
    {
        for (uint32_t ways = matching_ways(b, hash); ways != 0; ways &= ways - 1) {
            Entry& e = b.entries[__builtin_ctz(ways)];
            if (std::memcmp(&e.key, &key, sizeof(key)) == 0) return &e;
        }
        return nullptr;
    }

    // A way for a new entry: a free one, else one whose entry expired (its
    // flow is over; not an eviction), else the least recently seen live one
    // (counted as an eviction). Bounded by kWays whatever the load.
    SLUICE_ALWAYS_INLINE Entry& claim(Bucket& b, uint32_t hash, uint64_t now, bool& evicted)
    {
        uint32_t way = kWays;
        if (b.used != (1u << kWays) - 1) {
            way = static_cast<uint32_t>(__builtin_ctz(~b.used));
            b.used |= 1u << way;
            ++size_;
        } else {
            uint32_t oldest = 0;
            uint64_t oldest_seen = b.entries[0].last_seen;
#pragma GCC unroll 8
            for (uint32_t i = 0; i < kWays; ++i) {
                const Entry& e = b.entries[i];
                if (expired(e, now)) {
                    way = i;
                    break;
                }
                if (e.last_seen < oldest_seen) {
                    oldest = i;
                    oldest_seen = e.last_seen;
                }
            }
            if (way == kWays) {
                way = oldest;
                evicted = true;
            }
        }
        b.sig[way] = hash;
        return b.entries[way];
    }

    static SLUICE_ALWAYS_INLINE uint8_t initial_state(uint8_t proto, uint8_t tcp_flags)
    {
        if (proto != SLUICE_IPPROTO_TCP) return kUdp;
        if ((tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST)) != 0) return kTcpClosing;
        if ((tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN) return kTcpTransitory;
        return kTcpEstablished;  // mid-flow pick-up (e.g. after a restart): trust it
    }

    // Whether the entry a hit has just touched at `now` would give the same
    // hit again, unchanged, to a packet of its flow with none of SYN, FIN
    // and RST (LookupResult::repeatable). find_in() finds the same way (a
    // key is in one way at most, and nothing else wrote the bucket). It is
    // live: last_seen == now, so expired() is `0 >= timeout`, false unless
    // the state's timeout is zero. touch() rewrites last_seen with the same
    // value and leaves the state as it is: kUdp is never changed, kTcpClosing
    // changes only to kTcpTransitory on a pure SYN, kTcpEstablished only on
    // a FIN, RST or pure SYN; only kTcpTransitory would move (to
    // kTcpEstablished), so it is excluded.
    SLUICE_ALWAYS_INLINE bool repeatable(const Entry& e) const
    {
        return e.state != kTcpTransitory && timeout(e.state) != 0;
    }

    // TCP life cycle without tracking sequence numbers (the LB sees one
    // direction only): FIN or RST shortens the entry's life to the
    // transitory timeout, and later packets of the close do not lengthen it
    // again; a new SYN (port reuse) starts over.
    static SLUICE_ALWAYS_INLINE void touch(Entry& e, uint64_t now, uint8_t tcp_flags)
    {
        e.last_seen = now;
        if (e.state == kUdp) return;
        if ((tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST)) != 0) {
            e.state = kTcpClosing;
        } else if ((tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN) {
            e.state = kTcpTransitory;
        } else if (e.state == kTcpTransitory) {
            e.state = kTcpEstablished;
        }
    }

    Config config_;
    // Timeout by State (kTcpClosing ages as transitory).
    uint64_t timeouts_[SLUICE_CONN_STATES];
    static_assert(kTcpTransitory == 0 && kTcpEstablished == 1 && kTcpClosing == 2 && kUdp == 3, "timeouts_ order");
    uint32_t mask_;
    size_t size_ = 0;
    Bucket* buckets_;      // (mask_ + 1) buckets, zeroed, in map_ (2 MiB aligned)
    void* map_;            // the mapping, for munmap
    size_t map_bytes_;
};

}  // namespace sluice::core
