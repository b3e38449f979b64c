// How full a connection table is: live entries counted in a sample of its
// buckets, from a thread other than the owner (stats, /metrics), for both
// planes (they share the bucket layout, dataplane/abi/tables.h).
//
// A sample, not a walk: a table is hundreds of MiB, and reading all of it on
// every scrape would take milliseconds and push the workers' buckets and
// rings out of the shared cache. Flows land in buckets by their hash, so
// evenly spaced buckets are a fair sample: with the default 1024 buckets
// (8192 entries) the estimate is within about ±1.1% of the capacity (95%,
// binomial), exact when the table has no more buckets than that.
//
// Racy by design, like ConnectionTable::peek_copy: the owner keeps writing
// while the fields are read (each one atomically), so an entry inserted or
// expiring during the read may be counted either way.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
#include "abi/tables.h"
}

namespace sluice::core {

struct ConnCensus {
    uint64_t capacity = 0;  // entries the table holds
    uint64_t sampled = 0;   // entries examined: every way of the sampled buckets
    uint64_t live = 0;      // of those, live: used, pinned to a backend, idle for less than its state's timeout

    // Live entries in the whole table, extrapolated from the sample (exact
    // when every bucket was read).
    uint64_t live_estimate() const
    {
        if (sampled == 0) return 0;
        return static_cast<uint64_t>(static_cast<unsigned __int128>(live) * capacity / sampled);
    }
};

inline constexpr size_t kConnCensusBuckets = 1024;

// The backend way `way` of `b` is live for, read as a reader other than
// the owner sees it (each field loaded atomically), or SLUICE_BACKEND_NONE:
// unused, forgotten, or idle for its state's timeout at `now`.
inline uint32_t conn_live_backend(const sluice_conn_bucket& b, uint32_t used, uint32_t way, uint64_t now,
                                  const uint64_t (&timeout)[SLUICE_CONN_STATES])
{
    if (((used >> way) & 1u) == 0) return SLUICE_BACKEND_NONE;
    const sluice_conn_entry& e = b.entries[way];
    const uint32_t id = __atomic_load_n(&e.backend_id, __ATOMIC_RELAXED);
    if (id == SLUICE_BACKEND_NONE) return id;  // forgotten
    const uint8_t state = __atomic_load_n(&e.state, __ATOMIC_RELAXED);
    const uint64_t seen = __atomic_load_n(&e.last_seen, __ATOMIC_RELAXED);
    return sluice_conn_live_for_reader(seen, now, timeout[state & (SLUICE_CONN_STATES - 1)]) ? id
                                                                                             : SLUICE_BACKEND_NONE;
}

// `count` buckets at `buckets`; `now` and `timeout[state]` on the table's
// own clock (TSC ticks for DPDK, jiffies-clock ns for XDP). Reads at most
// `max_buckets` buckets, evenly spaced.
inline ConnCensus conn_census(const sluice_conn_bucket* buckets, size_t count, uint64_t now,
                              const uint64_t (&timeout)[SLUICE_CONN_STATES], size_t max_buckets = kConnCensusBuckets)
{
    ConnCensus c;
    c.capacity = static_cast<uint64_t>(count) * SLUICE_CONN_WAYS;
    if (count == 0 || max_buckets == 0) return c;
    const size_t samples = count < max_buckets ? count : max_buckets;
    for (size_t i = 0; i < samples; ++i) {
        const sluice_conn_bucket& b = buckets[i * count / samples];
        const uint32_t used = __atomic_load_n(&b.used, __ATOMIC_RELAXED);
        for (uint32_t way = 0; way < SLUICE_CONN_WAYS; ++way)
            c.live += conn_live_backend(b, used, way, now, timeout) != SLUICE_BACKEND_NONE;
    }
    c.sampled = static_cast<uint64_t>(samples) * SLUICE_CONN_WAYS;
    return c;
}

// Live entries per backend id, over every bucket: a whole walk, for an
// operator's question ("which backends still have flows?", before taking a
// drained one down), never for a scrape. Adds to counts[backend_id]; counts
// must hold SLUICE_MAX_BACKENDS elements. An entry counts until its idle
// timeout, so a client that vanished without FIN or RST still counts for
// up to the established timeout. Racy like conn_census().
inline void conn_count_by_backend(const sluice_conn_bucket* buckets, size_t count, uint64_t now,
                                  const uint64_t (&timeout)[SLUICE_CONN_STATES], uint64_t* counts)
{
    for (size_t i = 0; i < count; ++i) {
        const sluice_conn_bucket& b = buckets[i];
        const uint32_t used = __atomic_load_n(&b.used, __ATOMIC_RELAXED);
        for (uint32_t ways = used; ways != 0; ways &= ways - 1) {
            const uint32_t id = conn_live_backend(b, used, static_cast<uint32_t>(__builtin_ctz(ways)), now, timeout);
            if (id < SLUICE_MAX_BACKENDS) ++counts[id];  // NONE is out of range
        }
    }
}

}  // namespace sluice::core
