// Connection table allocation (start-up only; see conn_table.h).
#include "core/conn_table.h"

#include <sys/mman.h>

#include <new>
#include <type_traits>

namespace sluice::core {

namespace {

constexpr size_t kHugePageBytes = size_t{2} << 20;
constexpr size_t kPageBytes = 4096;

}  // namespace

// The buckets live in an anonymous mapping advised for transparent huge
// pages. At a million flows every packet reads a random bucket of a table of
// hundreds of MiB: on 4 KiB pages nearly every lookup is also a TLB miss (a
// two-dimensional page walk in a VM), on 2 MiB pages most are not
// (docs/benchmarks.md: with the staged burst, 18% less per packet at 1M
// flows). A table of 2 MiB or more is mapped 2 MiB aligned and sized so it
// can be huge pages throughout; a smaller one (tests) takes whole 4 KiB
// pages only. Where THP is off (or madvise refuses) the table stays on
// 4 KiB pages and works the same.
ConnectionTable::ConnectionTable(const Config& config)
    : config_(config),
      timeouts_{config.tcp_transitory_timeout, config.tcp_established_timeout, config.tcp_transitory_timeout,
                config.udp_timeout}
{
    uint32_t buckets = 1;
    while (static_cast<uint64_t>(buckets) * kWays < config.capacity) buckets *= 2;
    mask_ = buckets - 1;

    const size_t need = static_cast<size_t>(buckets) * sizeof(Bucket);
    const size_t align = need >= kHugePageBytes ? kHugePageBytes : kPageBytes;
    const size_t bytes = (need + align - 1) & ~(align - 1);
    const size_t reserve = bytes + align - kPageBytes;  // room to align the start (mmap gives pages)
    void* raw = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    auto* const base = static_cast<uint8_t*>(raw);
    const uintptr_t addr = reinterpret_cast<uintptr_t>(base);
    auto* const start = base + (((addr + align - 1) & ~(align - 1)) - addr);
    // Give back the unaligned head and the tail beyond `bytes`.
    if (start != base) munmap(base, static_cast<size_t>(start - base));
    const size_t tail = reserve - static_cast<size_t>(start - base) - bytes;
    if (tail != 0) munmap(start + bytes, tail);
    map_ = start;
    map_bytes_ = bytes;
    if (align == kHugePageBytes) (void)madvise(start, bytes, MADV_HUGEPAGE);  // best effort: see above
    // Anonymous memory reads as zero (every bucket empty); one write per
    // page faults it in now rather than on the worker's first packets.
    for (size_t off = 0; off < bytes; off += kPageBytes) start[off] = 0;
    static_assert(std::is_trivially_default_constructible_v<Bucket> && std::is_trivially_destructible_v<Bucket>,
                  "buckets are used in place in zeroed memory");
    buckets_ = reinterpret_cast<Bucket*>(start);
}

ConnectionTable::~ConnectionTable() { munmap(map_, map_bytes_); }

}  // namespace sluice::core
