// Ring updates under load: while one thread flips a VIP's Maglev ring from
// generation to generation (sizes changing too, so both the in-place and
// the new-inner-map paths run), another runs packets through xdp_lb. Every
// packet must be forwarded (never an empty or missing ring: no drop) to
// exactly the backend that ring generation g or g+1 puts in its slot, where
// g is the last generation completed when the packet started. A ring
// written while live, or a size that does not match its ring, shows up as a
// backend no single generation would choose.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "test_env.h"
#include "xdp_test_support.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::testing {
namespace {

constexpr uint32_t kBackends = 8;
constexpr int kGenerations = 60;

// Ring size of generation g: mostly 65537 (same-size updates write only
// the changed slots of the inactive ring), every third 65521 (a fresh
// inner map of another size).
uint32_t ring_size(int g) { return g % 3 == 2 ? 65521u : 65537u; }

// The backend generation g puts in `slot`: varies by slot and generation,
// so a mix of two generations' slots, or a slot read with the other
// generation's size, names a backend neither generation would.
uint32_t backend_at(int g, uint32_t slot) { return (static_cast<uint32_t>(g) * 3u + slot * 5u) % kBackends; }

std::vector<uint32_t> ring_of(int g)
{
    std::vector<uint32_t> ring(ring_size(g));
    for (uint32_t i = 0; i < ring.size(); ++i) ring[i] = backend_at(g, i);
    return ring;
}

nlohmann::json flip_config()
{
    nlohmann::json cfg = {
        {"local_ipv4", "10.0.0.1"},
        {"local_ipv6", "fd00::1"},
        {"exception_path", true},
        {"ports", {{{"id", 0}, {"mac", "02:00:00:00:00:10"}, {"nexthop_mac", "02:00:00:00:00:fe"},
                    {"mtu", 1500}, {"egress_port", 0}}}},
        {"backends", nlohmann::json::array()},
        {"vips", nlohmann::json::array()},
    };
    for (uint32_t b = 0; b < kBackends; ++b)
        cfg["backends"].push_back({{"id", b}, {"addr", "10.9.0." + std::to_string(10 + b)}, {"flags", {"valid"}}});
    nlohmann::json ring = nlohmann::json::array();
    for (uint32_t v : ring_of(0)) ring.push_back(v);
    cfg["vips"].push_back({{"id", 0}, {"addr", "198.51.100.1"}, {"port", 80}, {"proto", "tcp"},
                           {"forwarding", "ipip"}, {"ring", ring}});
    return cfg;
}

// A TCP SYN from a random client to 198.51.100.1:80, and its flow key.
std::vector<uint8_t> syn(std::mt19937_64& rng, sluice_flow_key& key)
{
    std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0x10, 0x02, 0, 0, 0, 0xc1, 0x01, 0x08, 0x00,
                              0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0};
    const uint32_t src = static_cast<uint32_t>(rng());
    for (int i = 0; i < 4; ++i) f.push_back(static_cast<uint8_t>(src >> (24 - 8 * i)));
    const uint8_t dst[4] = {198, 51, 100, 1};
    f.insert(f.end(), dst, dst + 4);
    const uint16_t sport = static_cast<uint16_t>(rng() | 1024);
    const uint8_t tcp[20] = {static_cast<uint8_t>(sport >> 8), static_cast<uint8_t>(sport), 0, 80, 0, 0, 0, 1,
                             0, 0, 0, 0, 0x50, SLUICE_TCP_SYN, 0xff, 0xff, 0, 0, 0, 0};
    f.insert(f.end(), tcp, tcp + 20);
    key = {};
    std::memcpy(&key.src.v4, f.data() + 26, 4);
    std::memcpy(&key.dst.v4, f.data() + 30, 4);
    std::memcpy(&key.sport, f.data() + 34, 2);
    std::memcpy(&key.dport, f.data() + 36, 2);
    key.proto = SLUICE_IPPROTO_TCP;
    key.family = SLUICE_FAMILY_IPV4;
    return f;
}

// Flips under load never expose an empty, half-written or mis-sized ring.
TEST(XdpRingFlip, ReadersSeeWholeGenerations)
{
    SLUICE_REQUIRE_ROOT();
    auto runner = XdpRunner::create(flip_config());
    ASSERT_TRUE(runner) << runner.error();
    XdpRunner& r = **runner;
    ASSERT_TRUE(r.bind_port(0));
    std::atomic<int> completed{0};
    std::atomic<bool> done{false};
    std::atomic<uint64_t> packets{0}, bad{0}, straddling{0};
    std::string first_bad;

    std::thread reader([&] {
        std::mt19937_64 rng(42);
        std::vector<uint8_t> out;
        while (!done.load()) {
            sluice_flow_key key;
            const std::vector<uint8_t> frame = syn(rng, key);
            const int g0 = completed.load();
            uint32_t retval = 0;
            const int err = r.run_raw(frame, retval, out);
            const int g1 = completed.load();
            packets++;
            if (g1 != g0) straddling++;
            uint32_t backend = kBackends;
            if (err == 0 && retval == XDP_TX && out.size() >= 34) backend = out[33] - 10u;  // outer daddr 10.9.0.(10+b)
            const uint32_t hash = sluice_flow_hash(&key);
            bool ok = false;
            for (int g = g0; g <= std::min(g1 + 1, kGenerations); ++g) ok = ok || backend == backend_at(g, hash % ring_size(g));
            if (!ok && bad++ == 0)
                first_bad = "err " + std::to_string(err) + " retval " + std::to_string(retval) + " backend " +
                            std::to_string(backend) + " generations " + std::to_string(g0) + ".." + std::to_string(g1);
        }
    });
    for (int g = 1; g <= kGenerations; ++g) {
        auto res = r.dataplane().update_ring(0, ring_of(g));
        ASSERT_TRUE(res) << res.error();
        completed.store(g);
        auto live = r.dataplane().live_ring(0);
        ASSERT_TRUE(live);
        EXPECT_EQ(live->ring_id, static_cast<uint32_t>(g % 2)) << "the two rings alternate";
        EXPECT_EQ(live->ring_size, ring_size(g));
    }
    done.store(true);
    reader.join();
    std::printf("ring flips: %d generations, %llu packets (%llu during a flip), %llu bad\n", kGenerations,
                static_cast<unsigned long long>(packets.load()), static_cast<unsigned long long>(straddling.load()),
                static_cast<unsigned long long>(bad.load()));
    EXPECT_EQ(bad.load(), 0u) << first_bad;
    EXPECT_GT(straddling.load(), 0u) << "no packet ran during a flip: the test proved nothing";
}

}  // namespace
}  // namespace sluice::testing
