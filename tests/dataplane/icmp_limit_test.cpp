// The worker's ICMP-error limit (core/icmp_limit.h) through the core
// pipeline, with the pipeline's clock in the test's hands: oversized DF
// packets get "fragmentation needed" / "packet too big" only while the
// worker's bucket has tokens, the rest are dropped MTU_EXCEEDED and counted
// icmp_rate_limited, every packet is accounted for, tokens come back at the
// configured rate, a new snapshot's limit takes effect, and an IPv6 error
// that would report less than 1280 is never sent. The XDP twin is
// tests/ebpf/xdp_icmp_limit_test.cpp.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <vector>

#include "core/pipeline.h"
#include "core/pipeline_impl.h"

extern "C" {
#include "abi/wire.h"
}

namespace sluice::core {
namespace {

constexpr uint32_t kVip = 0xC000020Au;     // 192.0.2.10
constexpr uint32_t kClient = 0xC6336407u;  // 198.51.100.7
constexpr uint64_t kT0 = 1'000'000'000'000ull;  // any start time, ns
constexpr uint64_t kSec = 1'000'000'000ull;

ConnectionTable::Config conn_config() { return {1024, 1'000'000 * kSec, 1'000'000 * kSec, 1'000'000 * kSec}; }

// IPv4 TCP 192.0.2.10:80 and IPv6 TCP [2001:db8::10]:80, IPIP to a backend
// of the VIP's family, one-arm on port 0 of L3 MTU `mtu`.
std::unique_ptr<const ForwardingState> make_state(IcmpErrorLimit limit, uint16_t mtu = 1000)
{
    ForwardingStateBuilder b;
    sluice_addr local4{}, local6{};
    local4.v4 = htonl(0x0A000001u);
    local6.bytes[0] = 0x20;
    local6.bytes[1] = 0x01;
    local6.bytes[15] = 1;
    b.set_local_ipv4(local4);
    b.set_local_ipv6(local6);
    b.set_icmp_error_limit(limit);
    PortConfig p{};
    p.mac[0] = 2;
    p.nexthop_mac[0] = 2;
    p.nexthop_mac[5] = 0xFE;
    p.mtu = mtu;
    p.present = true;
    b.add_port(0, p);
    sluice_backend be4{};
    be4.addr.v4 = htonl(0x0A01000Au);
    be4.family = SLUICE_FAMILY_IPV4;
    be4.flags = SLUICE_BACKEND_F_VALID;
    b.add_backend(0, be4);
    sluice_backend be6{};
    be6.addr = local6;
    be6.addr.bytes[15] = 0x10;
    be6.family = SLUICE_FAMILY_IPV6;
    be6.flags = SLUICE_BACKEND_F_VALID;
    b.add_backend(1, be6);
    ForwardingStateBuilder::VipSpec v4{};
    v4.key.addr.v4 = htonl(kVip);
    v4.key.port = htons(80);
    v4.key.proto = SLUICE_IPPROTO_TCP;
    v4.key.family = SLUICE_FAMILY_IPV4;
    v4.vip_id = 1;
    v4.forwarding = SLUICE_FWD_IPIP;
    v4.ring = {0, 0, 0};
    b.add_vip(v4);
    ForwardingStateBuilder::VipSpec v6 = v4;
    v6.key.addr = sluice_addr{};
    v6.key.addr.bytes[0] = 0x20;
    v6.key.addr.bytes[1] = 0x01;
    v6.key.addr.bytes[2] = 0x0d;
    v6.key.addr.bytes[3] = 0xb8;
    v6.key.addr.bytes[15] = 0x10;
    v6.key.family = SLUICE_FAMILY_IPV6;
    v6.vip_id = 2;
    v6.ring = {1, 1, 1};
    b.add_vip(v6);
    auto st = b.build();
    EXPECT_TRUE(st.ok()) << st.error();
    return st.ok() ? std::move(*st) : nullptr;
}

// A TCP ACK of `l3_len` bytes (IP header included) from the client to the
// VIP, IPv4 with or without DF, or IPv6, with headroom for any reply.
struct Frame {
    std::vector<uint8_t> buf;
    Packet pkt;
    Frame(uint8_t family, uint32_t l3_len, bool df = true, uint16_t sport = 40000) : buf(128 + 14 + l3_len, 0)
    {
        uint8_t* f = buf.data() + 128;
        const uint8_t eth[14] = {2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0xC1, 1, 0x08, 0x00};
        std::memcpy(f, eth, 14);
        uint8_t* ip = f + 14;
        uint8_t* t;
        if (family == SLUICE_FAMILY_IPV4) {
            ip[0] = 0x45;
            ip[2] = static_cast<uint8_t>(l3_len >> 8);
            ip[3] = static_cast<uint8_t>(l3_len);
            ip[6] = df ? 0x40 : 0;
            ip[8] = 57;
            ip[9] = SLUICE_IPPROTO_TCP;
            const uint32_t src = htonl(kClient), dst = htonl(kVip);
            std::memcpy(ip + 12, &src, 4);
            std::memcpy(ip + 16, &dst, 4);
            t = ip + 20;
        } else {
            f[12] = 0x86;
            f[13] = 0xDD;
            ip[0] = 0x60;
            ip[4] = static_cast<uint8_t>((l3_len - 40) >> 8);
            ip[5] = static_cast<uint8_t>(l3_len - 40);
            ip[6] = SLUICE_IPPROTO_TCP;
            ip[7] = 57;
            ip[8] = 0x20;  // 2001:db8::7 -> 2001:db8::10
            ip[9] = 0x01;
            ip[10] = 0x0d;
            ip[11] = 0xb8;
            ip[23] = 7;
            std::memcpy(ip + 24, ip + 8, 15);
            ip[39] = 0x10;
            t = ip + 40;
        }
        t[0] = static_cast<uint8_t>(sport >> 8);
        t[1] = static_cast<uint8_t>(sport);
        t[3] = 80;
        t[12] = 5 << 4;
        t[13] = SLUICE_TCP_ACK;
        pkt = Packet{f, 14 + l3_len, 128, 0, 0};
    }
};

// What a run of packets came to.
struct Outcome {
    unsigned icmp = 0;     // ICMP errors sent in place of the packet
    unsigned dropped = 0;  // MTU_EXCEEDED drops without an error
    unsigned other = 0;    // anything else (a bug here)
};

// `n` oversized packets of `family` (one burst each, so each sees `now`).
Outcome send(Worker& w, const ForwardingState& st, uint8_t family, unsigned n, uint64_t now, bool df = true,
             uint32_t l3_len = 1400)
{
    Outcome o;
    for (unsigned i = 0; i < n; ++i) {
        Frame f(family, l3_len, df, static_cast<uint16_t>(40000 + i));
        Packet* pkts[1] = {&f.pkt};
        Verdict v[1];
        process_burst(w, pkts, 1, st, now, v);
        if (v[0].action == Action::kTx && v[0].reason == SLUICE_DROP_MTU_EXCEEDED) {
            ++o.icmp;
        } else if (v[0].action == Action::kDrop && v[0].reason == SLUICE_DROP_MTU_EXCEEDED) {
            ++o.dropped;
        } else {
            ++o.other;
        }
    }
    return o;
}

// rx = tx + exception + control + every drop reason, after every burst.
void expect_accounted(const sluice_stats& s)
{
    uint64_t drops = 0;
    for (uint64_t d : s.drops) drops += d;
    EXPECT_EQ(s.rx_packets, s.tx_packets + s.exception_packets + s.control_packets + drops);
}

// Burst B, low rate: B + K oversized DF packets at one instant give exactly
// B errors and K rate-limited drops, each of them one MTU_EXCEEDED drop.
TEST(IcmpLimit, BurstThenRateLimited)
{
    constexpr unsigned kBurst = 5, kMore = 7;
    auto st = make_state({1, kBurst});
    ASSERT_TRUE(st);
    Worker w(conn_config());
    const Outcome o = send(w, *st, SLUICE_FAMILY_IPV4, kBurst + kMore, kT0);
    EXPECT_EQ(o.icmp, kBurst);
    EXPECT_EQ(o.dropped, kMore);
    EXPECT_EQ(o.other, 0u);
    EXPECT_EQ(w.stats.rx_packets, kBurst + kMore);
    EXPECT_EQ(w.stats.drops[SLUICE_DROP_MTU_EXCEEDED], kBurst + kMore);
    EXPECT_EQ(w.stats.icmp_sent, kBurst);
    EXPECT_EQ(w.stats.icmp_rate_limited, kMore);
    EXPECT_EQ(w.stats.tx_packets, 0u);
    expect_accounted(w.stats);
}

// One burst of B + K packets (a single process_burst call) counts the same.
TEST(IcmpLimit, WithinOneBurst)
{
    constexpr unsigned kBurst = 4, kMore = 6;
    auto st = make_state({1, kBurst});
    ASSERT_TRUE(st);
    Worker w(conn_config());
    std::vector<std::unique_ptr<Frame>> frames;
    Packet* pkts[kBurst + kMore];
    Verdict v[kBurst + kMore];
    for (unsigned i = 0; i < kBurst + kMore; ++i) {
        frames.push_back(std::make_unique<Frame>(SLUICE_FAMILY_IPV4, 1400, true, static_cast<uint16_t>(1000 + i)));
        pkts[i] = &frames.back()->pkt;
    }
    process_burst(w, pkts, kBurst + kMore, *st, kT0, v);
    for (unsigned i = 0; i < kBurst + kMore; ++i) {
        EXPECT_EQ(v[i].reason, SLUICE_DROP_MTU_EXCEEDED) << i;
        EXPECT_EQ(v[i].action, i < kBurst ? Action::kTx : Action::kDrop) << i;
    }
    EXPECT_EQ(w.stats.icmp_sent, kBurst);
    EXPECT_EQ(w.stats.icmp_rate_limited, kMore);
    EXPECT_EQ(w.stats.drops[SLUICE_DROP_MTU_EXCEEDED], kBurst + kMore);
    expect_accounted(w.stats);
}

// Tokens come back at the configured rate, to the nanosecond, and never
// beyond the burst.
TEST(IcmpLimit, RefillsAtTheRate)
{
    auto st = make_state({10, 2});  // one token per 100 ms
    ASSERT_TRUE(st);
    Worker w(conn_config());
    Outcome o = send(w, *st, SLUICE_FAMILY_IPV4, 3, kT0);
    EXPECT_EQ(o.icmp, 2u);
    EXPECT_EQ(o.dropped, 1u);
    o = send(w, *st, SLUICE_FAMILY_IPV4, 1, kT0 + 100'000'000 - 1);
    EXPECT_EQ(o.icmp, 0u) << "a token before its time";
    o = send(w, *st, SLUICE_FAMILY_IPV4, 1, kT0 + 100'000'000);
    EXPECT_EQ(o.icmp, 1u) << "the token due at 100 ms";
    o = send(w, *st, SLUICE_FAMILY_IPV4, 5, kT0 + 10 * kSec);  // idle 10 s: full, not more
    EXPECT_EQ(o.icmp, 2u);
    EXPECT_EQ(o.dropped, 3u);
    EXPECT_EQ(w.stats.icmp_sent, 5u);
    EXPECT_EQ(w.stats.icmp_rate_limited, 5u);
    expect_accounted(w.stats);
}

// The pipeline's clock in ticks (the runtime's TSC): the bucket converts
// with the worker's clock rate.
TEST(IcmpLimit, ClockInTicks)
{
    constexpr uint64_t kHz = 3'000'000'000ull;
    auto st = make_state({1, 1});
    ASSERT_TRUE(st);
    Worker w(conn_config(), kHz);
    const uint64_t t0 = 7 * kHz;
    EXPECT_EQ(send(w, *st, SLUICE_FAMILY_IPV4, 2, t0).icmp, 1u);
    EXPECT_EQ(send(w, *st, SLUICE_FAMILY_IPV4, 1, t0 + kHz - 3).icmp, 0u);  // 1 ns short of a second
    EXPECT_EQ(send(w, *st, SLUICE_FAMILY_IPV4, 1, t0 + kHz).icmp, 1u);
}

// A snapshot with another limit (a reload) takes effect at the next
// oversized packet, with a full bucket; one with the same limit keeps the
// tokens already spent.
TEST(IcmpLimit, NewSnapshotLimitTakesEffect)
{
    auto old_state = make_state({1, 2});
    auto same = make_state({1, 2});
    auto wider = make_state({1, 6});
    ASSERT_TRUE(old_state && same && wider);
    Worker w(conn_config());
    EXPECT_EQ(send(w, *old_state, SLUICE_FAMILY_IPV4, 4, kT0).icmp, 2u);
    EXPECT_EQ(send(w, *same, SLUICE_FAMILY_IPV4, 1, kT0).icmp, 0u);
    const Outcome o = send(w, *wider, SLUICE_FAMILY_IPV4, 8, kT0);
    EXPECT_EQ(o.icmp, 6u);
    EXPECT_EQ(o.dropped, 2u);
}

// Rate 0 is unlimited.
TEST(IcmpLimit, ZeroRateIsUnlimited)
{
    auto st = make_state({0, 1});
    ASSERT_TRUE(st);
    Worker w(conn_config());
    EXPECT_EQ(send(w, *st, SLUICE_FAMILY_IPV4, 300, kT0).icmp, 300u);
    EXPECT_EQ(w.stats.icmp_rate_limited, 0u);
}

// Packets that get no error spend no token: IPv4 without DF, and IPv6 when
// the error would report less than 1280 (RFC 8200 §5).
TEST(IcmpLimit, NoTokenWithoutAnError)
{
    auto st = make_state({1, 1});
    ASSERT_TRUE(st);
    Worker w(conn_config());
    Outcome o = send(w, *st, SLUICE_FAMILY_IPV4, 5, kT0, /*df=*/false);
    EXPECT_EQ(o.icmp, 0u);
    EXPECT_EQ(o.dropped, 5u);
    EXPECT_EQ(w.stats.icmp_rate_limited, 0u);
    EXPECT_EQ(send(w, *st, SLUICE_FAMILY_IPV4, 1, kT0).icmp, 1u) << "the token is still there";
}

// IPv6 over a port whose room after the 6in6 header is under 1280: the
// packet is dropped MTU_EXCEEDED, no "packet too big" and no token. At
// exactly 1280 the error is sent and reports 1280.
TEST(IcmpLimit, Ipv6NeverReportsBelow1280)
{
    auto narrow = make_state({1, 1}, 1280 + 40 - 1);
    auto exact = make_state({1, 1}, 1280 + 40);
    ASSERT_TRUE(narrow && exact);
    Worker w(conn_config());
    Outcome o = send(w, *narrow, SLUICE_FAMILY_IPV6, 3, kT0, true, 1300);
    EXPECT_EQ(o.icmp, 0u);
    EXPECT_EQ(o.dropped, 3u);
    EXPECT_EQ(w.stats.icmp_sent, 0u);
    EXPECT_EQ(w.stats.icmp_rate_limited, 0u);

    Frame f(SLUICE_FAMILY_IPV6, 1400);
    Packet* pkts[1] = {&f.pkt};
    Verdict v[1];
    process_burst(w, pkts, 1, *exact, kT0, v);
    ASSERT_EQ(v[0].action, Action::kTx);
    ASSERT_EQ(v[0].reason, SLUICE_DROP_MTU_EXCEEDED);
    const uint8_t* icmp6 = f.pkt.data + 14 + 40;
    EXPECT_EQ(icmp6[0], SLUICE_ICMPV6_PKT_TOOBIG);
    EXPECT_EQ((uint32_t{icmp6[4]} << 24) | (uint32_t{icmp6[5]} << 16) | (uint32_t{icmp6[6]} << 8) | icmp6[7], 1280u);
    EXPECT_EQ(w.stats.drops[SLUICE_DROP_MTU_EXCEEDED], 4u);
    EXPECT_EQ(w.stats.icmp_sent, 1u);
    expect_accounted(w.stats);
}

// The builder refuses limits the planes cannot keep identical.
TEST(IcmpLimit, BuilderRefusesOutOfRange)
{
    for (const IcmpErrorLimit& bad : {IcmpErrorLimit{1, 0}, IcmpErrorLimit{SLUICE_ICMP_ERRORS_MAX + 1, 1},
                                      IcmpErrorLimit{1, SLUICE_ICMP_ERRORS_MAX + 1}}) {
        ForwardingStateBuilder b;
        b.set_icmp_error_limit(bad);
        EXPECT_FALSE(b.build().ok()) << bad.per_sec << "/" << bad.burst;
    }
}

}  // namespace
}  // namespace sluice::core
