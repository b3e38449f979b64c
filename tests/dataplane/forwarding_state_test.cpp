// The snapshot builder refuses what a worker would trip on, the VIP table
// finds what was put in it and nothing else, snapshots share rings instead
// of copying them, and the Maglev slot's fast modulo equals `%` exactly (so
// DPDK and XDP pick the same slot).
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <functional>
#include <random>

#include "core/fast_mod.h"
#include "core/forwarding_state.h"

extern "C" {
#include "abi/wire.h"
}

namespace sluice::core {
namespace {

// fastmod equals % for edge values and random ones, for the primes sluice
// uses and for divisors near 2^32.
TEST(FastMod, EqualsModulo)
{
    std::mt19937 rng(3);
    for (uint32_t d : {1u, 2u, 3u, 7u, 251u, 65537u, 655373u, 1000003u, 0x7FFFFFFFu, 0xFFFFFFFBu, 0xFFFFFFFFu}) {
        const uint64_t r = fastmod_reciprocal(d);
        for (uint32_t a : {0u, 1u, d - 1, d, d + 1, 0x7FFFFFFFu, 0xFFFFFFFEu, 0xFFFFFFFFu})
            ASSERT_EQ(fastmod(a, r, d), a % d) << a << " % " << d;
        for (int i = 0; i < 200000; ++i) {
            const uint32_t a = static_cast<uint32_t>(rng());
            ASSERT_EQ(fastmod(a, r, d), a % d) << a << " % " << d;
        }
    }
}

sluice_addr v4(uint32_t host)
{
    sluice_addr a{};
    a.v4 = htonl(host);
    return a;
}

ForwardingStateBuilder base()
{
    ForwardingStateBuilder b;
    b.set_local_ipv4(v4(0x0A000001));
    PortConfig p{};
    p.mtu = 1500;
    b.add_port(0, p);
    sluice_backend be{};
    be.addr = v4(0x0A01000A);
    be.family = SLUICE_FAMILY_IPV4;
    be.flags = SLUICE_BACKEND_F_VALID;
    b.add_backend(0, be);
    return b;
}

ForwardingStateBuilder::VipSpec vip(uint32_t id, uint32_t addr, uint16_t port, uint8_t proto = SLUICE_IPPROTO_TCP)
{
    ForwardingStateBuilder::VipSpec v{};
    v.key.addr = v4(addr);
    v.key.port = htons(port);
    v.key.proto = proto;
    v.key.family = SLUICE_FAMILY_IPV4;
    v.vip_id = id;
    v.forwarding = SLUICE_FWD_IPIP;
    v.ring = {0, 0, 0};
    return v;
}

// Each invalid input is refused with a message naming the problem.
TEST(ForwardingStateBuilder, RefusesInvalidInput)
{
    struct Case {
        const char* what;
        std::function<void(ForwardingStateBuilder&)> mutate;
    };
    const std::vector<Case> cases = {
        {"not a prime", [](auto& b) { auto v = vip(0, 1, 80); v.ring = {0, 0, 0, 0}; b.add_vip(v); }},
        {"unknown backend", [](auto& b) { auto v = vip(0, 1, 80); v.ring = {0, 5, 0}; b.add_vip(v); }},
        {"unknown backend 4294967294", [](auto& b) { auto v = vip(0, 1, 80); v.ring = {0, 0xFFFFFFFEu, 0}; b.add_vip(v); }},
        {"added twice", [](auto& b) { b.add_vip(vip(0, 1, 80)); b.add_vip(vip(1, 1, 80)); }},
        {"used twice", [](auto& b) { b.add_vip(vip(0, 1, 80)); b.add_vip(vip(0, 1, 81)); }},
        {"GUE needs a port", [](auto& b) { auto v = vip(0, 1, 80); v.forwarding = SLUICE_FWD_GUE; b.add_vip(v); }},
        {"TCP or UDP", [](auto& b) { b.add_vip(vip(0, 1, 80, 1)); }},
        {"SLUICE_MAX_VIPS", [](auto& b) { b.add_vip(vip(SLUICE_MAX_VIPS, 1, 80)); }},
        {"egress port", [](auto& b) { PortConfig p{}; p.mtu = 1500; p.egress_port = 9; b.add_port(1, p); }},
        {"mtu below", [](auto& b) { PortConfig p{}; p.mtu = kMinPortMtu - 1; p.egress_port = 1; b.add_port(1, p); }},
        {"no local IPv6", [](auto& b) {
             sluice_backend be{};
             be.family = SLUICE_FAMILY_IPV6;
             be.flags = SLUICE_BACKEND_F_VALID;
             b.add_backend(1, be);
             auto v = vip(0, 1, 80);
             v.ring = {1, 1, 1};
             b.add_vip(v);
         }},
    };
    for (const auto& c : cases) {
        auto b = base();
        c.mutate(b);
        auto st = b.build();
        ASSERT_FALSE(st.ok()) << c.what;
        EXPECT_NE(st.error().find(c.what), std::string::npos) << st.error();
    }
    auto ok = base();
    ok.add_vip(vip(0, 1, 80));
    EXPECT_TRUE(ok.build().ok());
}

// A ring knows the distinct backends it names (what a snapshot validates
// instead of each slot), ascending, without SLUICE_BACKEND_NONE, ids past
// the table last; copies share one body, a vector converted twice does not.
TEST(SharedRing, NamesEachBackendOnceAndSharesItsBody)
{
    const std::vector<uint32_t> slots{7, SLUICE_BACKEND_NONE, 3, 7, 0xFFFFFFF0u, 3, 0, SLUICE_MAX_BACKENDS, 0xFFFFFFF0u};
    const SharedRing ring(slots);
    EXPECT_EQ(ring.slots(), slots);
    EXPECT_EQ(ring.backends(), (std::vector<uint32_t>{0, 3, 7, SLUICE_MAX_BACKENDS, 0xFFFFFFF0u}));
    const SharedRing copy = ring;
    EXPECT_TRUE(copy.shares_with(ring));
    EXPECT_EQ(ring.use_count(), 2);
    const SharedRing other(slots);
    EXPECT_FALSE(other.shares_with(ring));
    EXPECT_TRUE(other == ring);  // equal slots, another body
    const SharedRing empty;
    EXPECT_TRUE(empty.empty());
    EXPECT_TRUE(empty.backends().empty());
    EXPECT_FALSE(empty.shares_with(SharedRing{}));
}

// A snapshot holds its VIPs' rings by reference: the worker's ring pointer
// is the ring's own memory (no copy), two snapshots built from one ring
// share it, and the ring stays alive and unchanged while any snapshot holds
// it, after every other owner (plan, builder) is gone.
TEST(ForwardingState, SharesRingsAndKeepsThemAlive)
{
    std::vector<uint32_t> slots(251);
    for (size_t i = 0; i < slots.size(); ++i) slots[i] = i % 3 == 0 ? SLUICE_BACKEND_NONE : 0;
    SharedRing ring(slots);
    const uint32_t* const memory = ring.data();

    std::unique_ptr<const ForwardingState> first;
    std::unique_ptr<const ForwardingState> second;
    {
        auto b = base();
        auto v = vip(0, 1, 80);
        v.ring = ring;
        b.add_vip(v);
        auto st = b.build();
        ASSERT_TRUE(st.ok()) << st.error();
        first = std::move(*st);
        auto again = b.build();
        ASSERT_TRUE(again.ok()) << again.error();
        second = std::move(*again);
    }
    EXPECT_EQ(first->vip(0)->ring, memory);
    EXPECT_EQ(second->vip(0)->ring, memory);
    EXPECT_EQ(ring.use_count(), 3);  // ours and the two snapshots'

    ring = SharedRing{};  // the plan lets go: the snapshots keep the body
    const VipRuntime* rt = first->vip(0);
    ASSERT_NE(rt, nullptr);
    EXPECT_EQ(rt->meta.ring_size, 251u);
    for (size_t i = 0; i < slots.size(); ++i) ASSERT_EQ(rt->ring[i], slots[i]) << i;
    second.reset();
    for (size_t i = 0; i < slots.size(); ++i) ASSERT_EQ(first->vip(0)->ring[i], slots[i]) << i;
}

sluice_flow_key key(uint32_t dst, uint16_t dport, uint8_t proto = SLUICE_IPPROTO_TCP)
{
    sluice_flow_key k{};
    k.dst = v4(dst);
    k.dport = htons(dport);
    k.proto = proto;
    k.family = SLUICE_FAMILY_IPV4;
    return k;
}

// SLUICE_MAX_VIPS services are all found by exact port, a port-0 service
// catches other ports of its protocol only, and absent addresses miss.
TEST(ForwardingState, VipLookupAtFullSize)
{
    auto b = base();
    for (uint32_t i = 0; i + 1 < SLUICE_MAX_VIPS; ++i) b.add_vip(vip(i, 0xC0000000 + i / 4, static_cast<uint16_t>(80 + i % 4)));
    b.add_vip(vip(SLUICE_MAX_VIPS - 1, 0xC0000000, 0));
    auto st = b.build();
    ASSERT_TRUE(st.ok()) << st.error();
    const ForwardingState& s = **st;
    for (uint32_t i = 0; i + 1 < SLUICE_MAX_VIPS; ++i) {
        const VipRuntime* v = s.find_service(key(0xC0000000 + i / 4, static_cast<uint16_t>(80 + i % 4)));
        ASSERT_NE(v, nullptr) << i;
        EXPECT_EQ(v->meta.vip_id, i);
        EXPECT_TRUE(s.is_vip_address(SLUICE_FAMILY_IPV4, v4(0xC0000000 + i / 4)));
    }
    EXPECT_EQ(s.find_service(key(0xC0000000, 9999))->meta.vip_id, SLUICE_MAX_VIPS - 1u);
    EXPECT_EQ(s.find_service(key(0xC0000001, 9999)), nullptr);
    EXPECT_EQ(s.find_service(key(0xC0000000, 80, SLUICE_IPPROTO_UDP)), nullptr);
    EXPECT_FALSE(s.is_vip_address(SLUICE_FAMILY_IPV4, v4(0xC1000000)));
    EXPECT_FALSE(s.is_vip_address(SLUICE_FAMILY_IPV6, v4(0xC0000000)));
}

// Fragments go to the port-0 service, else the only service of the
// protocol; two services without a port-0 one are ambiguous.
TEST(ForwardingState, FragmentService)
{
    auto b = base();
    b.add_vip(vip(0, 1, 80));
    b.add_vip(vip(1, 2, 80));
    b.add_vip(vip(2, 2, 81));
    b.add_vip(vip(3, 3, 80));
    b.add_vip(vip(4, 3, 0));
    auto st = b.build();
    ASSERT_TRUE(st.ok()) << st.error();
    bool ambiguous = false;
    EXPECT_EQ((*st)->find_fragment_service(key(1, 0), ambiguous)->meta.vip_id, 0u);
    EXPECT_EQ((*st)->find_fragment_service(key(2, 0), ambiguous), nullptr);
    EXPECT_TRUE(ambiguous);
    EXPECT_EQ((*st)->find_fragment_service(key(3, 0), ambiguous)->meta.vip_id, 4u);
    EXPECT_FALSE(ambiguous);
    EXPECT_EQ((*st)->find_fragment_service(key(1, 0, SLUICE_IPPROTO_UDP), ambiguous), nullptr);
    EXPECT_FALSE(ambiguous);
}

}  // namespace
}  // namespace sluice::core
