// Times maglev::build_table and prints one JSON object per result line.
// Each case is also timed against baselines run in the same process (the
// paper's Algorithm 1 with a per-step modulo, and a memset of the table),
// so the ratios compare across noisy or different machines.
//
// Usage: maglev_bench [--quick]   (--quick: fewer runs, for smoke checks)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "maglev/maglev.h"

namespace {

using sluice::maglev::Backend;
namespace detail = sluice::maglev::detail;

struct Stats {
    double median_ms;
    double p99_ms;
    int runs;
};

template <typename Fn>
Stats time_runs(int runs, Fn&& fn)
{
    fn();  // warm-up: page in the allocations, train the branch predictors
    std::vector<double> ms;
    ms.reserve(static_cast<size_t>(runs));
    for (int i = 0; i < runs; ++i) {
        const auto start = std::chrono::steady_clock::now();
        fn();
        const auto stop = std::chrono::steady_clock::now();
        ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    std::sort(ms.begin(), ms.end());
    const size_t p99 = std::min(ms.size() - 1, ms.size() * 99 / 100);
    return {ms[ms.size() / 2], ms[p99], runs};
}

// Keeps the optimiser from discarding a result.
void consume(const void* p)
{
    asm volatile("" : : "r"(p) : "memory");
}

std::vector<Backend> make_backends(size_t n, bool skewed)
{
    std::vector<Backend> out;
    for (size_t i = 0; i < n; ++i) {
        // Skewed: one backend outweighs the rest a thousandfold, the case in
        // which a plain round scan would visit ~N/2 backends per turn.
        const uint32_t weight = skewed && i == 0 ? 1000 : 1;
        out.push_back(
            {"10.0." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255) + ":80", weight});
    }
    return out;
}

// The paper's Algorithm 1 as printed: permutation[i][next[i]] computed as
// (offset + next·skip) mod M at every step, and "is the entry filled" read
// from the table itself. Unweighted. Same offsets and skips as ours, so on
// equal weights it must produce the same table (checked below).
std::vector<uint32_t> naive_algorithm1(const std::vector<detail::Permutation>& perms, uint32_t m)
{
    const size_t n = perms.size();
    std::vector<uint64_t> next(n, 0);
    std::vector<uint32_t> entry(m, sluice::maglev::kNoBackend);
    uint32_t filled = 0;
    for (;;) {
        for (size_t i = 0; i < n; ++i) {
            uint64_t c = (perms[i].offset + next[i] * perms[i].skip) % m;
            while (entry[c] != sluice::maglev::kNoBackend) {
                ++next[i];
                c = (perms[i].offset + next[i] * perms[i].skip) % m;
            }
            entry[c] = static_cast<uint32_t>(i);
            ++next[i];
            if (++filled == m) {
                return entry;
            }
        }
    }
}

std::vector<detail::Permutation> permutations_of(const sluice::maglev::Table& t)
{
    std::vector<detail::Permutation> perms;
    for (const std::string& id : t.ids) {
        const detail::IdHashes h = detail::hash_id(id);
        perms.push_back({static_cast<uint32_t>(h.h1 % t.size),
                         static_cast<uint32_t>(h.h2 % (t.size - 1) + 1), 1});
    }
    return perms;
}

void bench_build(size_t n, uint32_t m, bool skewed, int runs)
{
    const std::vector<Backend> backends = make_backends(n, skewed);
    const sluice::maglev::Table table = sluice::maglev::build_table(backends, m).value();
    const Stats ours = time_runs(runs, [&] {
        const auto t = sluice::maglev::build_table(backends, m);
        consume(t.value().slots.data());
    });
    std::vector<uint32_t> buffer(m);
    const Stats memset_stats = time_runs(runs, [&] {
        std::memset(buffer.data(), 0xFF, m * sizeof(uint32_t));
        consume(buffer.data());
    });
    std::printf("{\"bench\":\"maglev_build\",\"backends\":%zu,\"table_size\":%u,\"weights\":\"%s\","
                "\"ms_median\":%.4f,\"ms_p99\":%.4f,\"runs\":%d,\"memset_ms_median\":%.4f,"
                "\"ratio_vs_memset\":%.1f",
                n, m, skewed ? "skewed" : "equal", ours.median_ms, ours.p99_ms, ours.runs,
                memset_stats.median_ms, ours.median_ms / memset_stats.median_ms);
    if (!skewed) {
        // The naive baseline is unweighted, so it only applies to equal weights.
        const std::vector<detail::Permutation> perms = permutations_of(table);
        const bool same = naive_algorithm1(perms, m) == table.slots;
        const Stats naive = time_runs(std::max(3, runs / 4), [&] {
            const auto slots = naive_algorithm1(perms, m);
            consume(slots.data());
        });
        std::printf(",\"naive_ms_median\":%.4f,\"ratio_vs_naive\":%.3f,\"naive_same_table\":%s",
                    naive.median_ms, ours.median_ms / naive.median_ms, same ? "true" : "false");
    }
    std::printf("}\n");
    std::fflush(stdout);
}

// The two turn schedulers on the same permutations, to justify the
// crossover fill_slots uses in TurnScheduler::kAuto.
void bench_schedulers(size_t n, uint32_t m, bool skewed, int runs)
{
    const std::vector<Backend> backends = make_backends(n, skewed);
    const sluice::maglev::Table table = sluice::maglev::build_table(backends, m).value();
    std::vector<detail::Permutation> perms = permutations_of(table);
    perms[0].weight = skewed ? 1000 : 1;  // "10.0.0.0:80" sorts first, as in make_backends
    using detail::TurnScheduler;
    for (const TurnScheduler scheduler : {TurnScheduler::kRoundScan, TurnScheduler::kEventHeap}) {
        const Stats s = time_runs(runs, [&] {
            const auto slots = detail::fill_slots(perms, m, scheduler);
            consume(slots.data());
        });
        std::printf("{\"bench\":\"maglev_fill\",\"scheduler\":\"%s\",\"backends\":%zu,"
                    "\"table_size\":%u,\"weights\":\"%s\",\"ms_median\":%.4f,\"ms_p99\":%.4f,"
                    "\"runs\":%d}\n",
                    scheduler == TurnScheduler::kRoundScan ? "round_scan" : "event_heap", n, m,
                    skewed ? "skewed" : "equal", s.median_ms, s.p99_ms, s.runs);
        std::fflush(stdout);
    }
}

void bench_fingerprint(size_t n, uint32_t m, int runs)
{
    const sluice::maglev::Table table =
        sluice::maglev::build_table(make_backends(n, false), m).value();
    uint64_t fp = 0;
    const Stats s = time_runs(runs, [&] {
        fp = sluice::maglev::fingerprint(table);
        consume(&fp);
    });
    std::printf("{\"bench\":\"maglev_fingerprint\",\"backends\":%zu,\"table_size\":%u,"
                "\"ms_median\":%.4f,\"ms_p99\":%.4f,\"runs\":%d,\"fingerprint\":\"%016llx\"}\n",
                n, m, s.median_ms, s.p99_ms, s.runs, static_cast<unsigned long long>(fp));
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv)
{
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const int small_runs = quick ? 10 : 200;
    const int large_runs = quick ? 5 : 50;
    bench_build(100, 65537, false, small_runs);
    bench_build(1000, 65537, false, small_runs);
    bench_build(1000, 655373, false, large_runs);
    bench_build(1000, 65537, true, small_runs);
    bench_schedulers(1000, 65537, false, small_runs);
    bench_schedulers(1000, 65537, true, small_runs);
    bench_fingerprint(1000, 655373, large_runs);
    return 0;
}
