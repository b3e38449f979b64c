// The pipeline's per-chunk flow memo (pipeline_impl.h: a packet of the same
// 5-tuple as the one just before it reuses its hash, service and, when that
// one was a repeatable hit, its backend without a connection-table lookup)
// against the same packets processed one per burst, where no memo can
// apply: verdicts, output bytes, every counter, the filter's calls and the
// connection table's entries must be the same.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/pipeline.h"
#include "core/pipeline_impl.h"
#include "fixture_table.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::core {
namespace {

constexpr uint32_t kVip = 0x0A640001;  // 10.100.0.1: TCP 80 IPIP, UDP 53 GUE
constexpr uint32_t kVipNoSport = 0x0A640002;  // 10.100.0.2: TCP 80 IPIP, hashed without the source port
constexpr uint32_t kClient = 0x0B000007;
constexpr uint16_t kGuePort = 6080;
constexpr uint16_t kPort = 0;        // one-arm, next hop resolved
constexpr uint16_t kNoNextHop = 1;   // next hop unresolved: the fast tunnel is not ready
constexpr uint32_t kHeadroom = 128;
constexpr uint16_t kMtu = 1500;
constexpr uint32_t kBackends = 3;

sluice_addr v4(uint32_t host)
{
    sluice_addr a{};
    a.v4 = htonl(host);
    return a;
}

// Backends 0-2; `draining` is valid but out of the rings, `removed` is not
// there at all (and out of the rings).
std::unique_ptr<const ForwardingState> make_state(int draining = -1, int removed = -1)
{
    ForwardingStateBuilder b;
    b.set_local_ipv4(v4(0x0A000001));
    for (uint16_t id : {kPort, kNoNextHop}) {
        PortConfig p{};
        const uint8_t mac[6] = {0x02, 0, 0, 0, 0, static_cast<uint8_t>(0x10 + id)};
        const uint8_t nh[6] = {0x02, 0, 0, 0, 0, 0xF0};
        std::memcpy(p.mac, mac, 6);
        if (id == kPort) std::memcpy(p.nexthop_mac, nh, 6);
        p.mtu = kMtu;
        p.egress_port = id;
        b.add_port(id, p);
    }
    std::vector<uint32_t> in_ring;
    for (uint32_t id = 0; id < kBackends; ++id) {
        if (static_cast<int>(id) == removed) continue;
        sluice_backend be{};
        be.addr = v4(0x0A010000 + 10 + id);
        be.family = SLUICE_FAMILY_IPV4;
        be.flags = SLUICE_BACKEND_F_VALID;
        if (static_cast<int>(id) == draining) {
            be.flags |= SLUICE_BACKEND_F_DRAINING;
        } else {
            in_ring.push_back(id);
        }
        b.add_backend(id, be);
    }
    std::vector<uint32_t> ring;
    for (uint32_t i = 0; i < 7; ++i) ring.push_back(in_ring[i % in_ring.size()]);
    auto vip = [&](uint32_t id, uint32_t addr, uint16_t p, uint8_t proto, uint8_t fwd, uint8_t flags) {
        ForwardingStateBuilder::VipSpec v{};
        v.key.addr = v4(addr);
        v.key.port = htons(p);
        v.key.proto = proto;
        v.key.family = SLUICE_FAMILY_IPV4;
        v.vip_id = id;
        v.forwarding = fwd;
        v.flags = flags;
        v.gue_port = fwd == SLUICE_FWD_GUE ? kGuePort : 0;
        v.ring = ring;
        b.add_vip(std::move(v));
    };
    vip(0, kVip, 80, SLUICE_IPPROTO_TCP, SLUICE_FWD_IPIP, 0);
    vip(1, kVip, 53, SLUICE_IPPROTO_UDP, SLUICE_FWD_GUE, 0);
    vip(2, kVipNoSport, 80, SLUICE_IPPROTO_TCP, SLUICE_FWD_IPIP, SLUICE_VIP_F_HASH_NO_SPORT);
    auto st = b.build();
    EXPECT_TRUE(st.ok()) << st.error();
    return std::move(*st);
}

// One packet of a test sequence: Ethernet / IPv4 (DF) / TCP or UDP.
struct Spec {
    uint8_t proto = SLUICE_IPPROTO_TCP;
    uint32_t daddr = kVip;
    uint16_t sport = 40000;
    uint16_t dport = 80;
    uint8_t flags = SLUICE_TCP_ACK;
    uint32_t payload = 6;
    bool df = true;
    bool vlan = false;
    uint16_t in_port = kPort;
};

Spec ack(uint16_t sport = 40000) { return Spec{.sport = sport}; }
Spec tcp(uint8_t flags, uint16_t sport = 40000) { return Spec{.sport = sport, .flags = flags}; }
Spec udp(uint16_t sport = 5000)
{
    return Spec{.proto = SLUICE_IPPROTO_UDP, .sport = sport, .dport = 53, .flags = 0};
}

std::vector<uint8_t> make_frame(const Spec& s, uint16_t ip_id)
{
    std::vector<uint8_t> f(12, 0x02);
    f[11] = 0x01;
    if (s.vlan) f.insert(f.end(), {0x81, 0x00, 0x20, 0x64});
    f.insert(f.end(), {0x08, 0x00});
    const size_t l3 = f.size();
    const uint32_t l4len = (s.proto == SLUICE_IPPROTO_UDP ? 8u : 20u) + s.payload;
    const uint32_t total = 20 + l4len;
    f.resize(l3 + total, 0);
    uint8_t* ip = f.data() + l3;
    auto set16 = [](uint8_t* p, uint16_t v) {
        p[0] = static_cast<uint8_t>(v >> 8);
        p[1] = static_cast<uint8_t>(v);
    };
    ip[0] = 0x45;
    ip[1] = 0x10;
    set16(ip + 2, static_cast<uint16_t>(total));
    set16(ip + 4, ip_id);
    set16(ip + 6, s.df ? 0x4000 : 0);
    ip[8] = 61;
    ip[9] = s.proto;
    const uint32_t src = htonl(kClient), dst = htonl(s.daddr);
    std::memcpy(ip + 12, &src, 4);
    std::memcpy(ip + 16, &dst, 4);
    uint8_t* l4 = ip + 20;
    set16(l4, s.sport);
    set16(l4 + 2, s.dport);
    if (s.proto == SLUICE_IPPROTO_UDP) {
        set16(l4 + 4, static_cast<uint16_t>(l4len));
    } else {
        l4[12] = 5 << 4;
        l4[13] = s.flags;
    }
    for (uint32_t i = 0; i < s.payload; ++i) f[l3 + total - s.payload + i] = static_cast<uint8_t>(ip_id + i);
    return f;
}

sluice_flow_key key_of(const Spec& s, bool no_sport = false)
{
    sluice_flow_key k{};
    k.src.v4 = htonl(kClient);
    k.dst.v4 = htonl(s.daddr);
    k.sport = no_sport ? 0 : htons(s.sport);
    k.dport = htons(s.dport);
    k.proto = s.proto;
    k.family = SLUICE_FAMILY_IPV4;
    return k;
}

// Records every call and refuses the ones whose index is in `refuse` (a
// rate limit running dry and refilling, deterministic).
struct ScriptedFilter {
    static constexpr bool kEnabled = true;
    struct Call {
        uint16_t vip_id;
        uint8_t new_flow;
        uint32_t src;
        uint32_t payload_len;
        bool operator==(const Call&) const = default;
    };
    std::vector<uint32_t> refuse;
    std::vector<Call> calls;
    uint8_t check(const FilterQuery& q)
    {
        const auto index = static_cast<uint32_t>(calls.size());
        calls.push_back({q.vip_id, q.new_flow, q.src->v4, q.payload_len});
        for (uint32_t r : refuse)
            if (r == index) return SLUICE_DROP_RATE_LIMIT_PACKETS;
        return kFilterPass;
    }
};

// A burst: the packets, and the state and clock they are processed with.
struct Burst {
    const ForwardingState* state;
    uint64_t now;
    std::vector<Spec> packets;
};

struct Outcome {
    std::vector<Verdict> verdicts;
    std::vector<std::vector<uint8_t>> bytes;
};

// Runs the bursts on `w`, whole (the memo applies) or one packet per
// process_burst call (it cannot), and returns every verdict and output frame.
template <class Filter>
Outcome run(Worker& w, Filter& filter, const std::vector<Burst>& bursts, bool whole, uint16_t mtu_payload)
{
    Outcome o;
    uint16_t ip_id = 1;
    for (const Burst& b : bursts) {
        std::vector<std::vector<uint8_t>> bufs;
        std::vector<Packet> pkts;
        for (const Spec& s : b.packets) {
            Spec t = s;
            if (t.payload == 0) t.payload = mtu_payload;  // 0: one byte over the MTU
            const std::vector<uint8_t> frame = make_frame(t, ip_id++);
            std::vector<uint8_t> buf(kHeadroom + frame.size() + 64, 0xEE);
            std::copy(frame.begin(), frame.end(), buf.begin() + kHeadroom);
            bufs.push_back(std::move(buf));
        }
        for (size_t i = 0; i < bufs.size(); ++i) {
            const auto len = static_cast<uint32_t>(bufs[i].size() - kHeadroom - 64);
            pkts.push_back(Packet{bufs[i].data() + kHeadroom, len, kHeadroom, b.packets[i].in_port, 0});
        }
        std::vector<Packet*> ptrs;
        for (Packet& p : pkts) ptrs.push_back(&p);
        std::vector<Verdict> out(pkts.size());
        if (whole) {
            process_burst(w, ptrs.data(), static_cast<uint16_t>(ptrs.size()), *b.state, b.now, out.data(), filter);
        } else {
            for (size_t i = 0; i < ptrs.size(); ++i) process_burst(w, &ptrs[i], 1, *b.state, b.now, &out[i], filter);
        }
        for (size_t i = 0; i < pkts.size(); ++i) {
            o.verdicts.push_back(out[i]);
            o.bytes.emplace_back(pkts[i].data, pkts[i].data + pkts[i].len);
        }
    }
    return o;
}

// Runs the bursts both ways on fresh workers and compares everything.
template <class Filter>
void expect_same_as_unmemoized(const std::vector<Burst>& bursts, Filter fa, Filter fb,
                               const ConnectionTable::Config& config = testing::small_conn_config())
{
    Worker wa(config), wb(config);
    // Over the MTU by one byte with DF: an ICMP error from the general path.
    const auto over = static_cast<uint16_t>(kMtu - 20 - 20 - 20 + 1);
    const Outcome a = run(wa, fa, bursts, true, over);
    const Outcome b = run(wb, fb, bursts, false, over);
    ASSERT_EQ(a.verdicts.size(), b.verdicts.size());
    for (size_t i = 0; i < a.verdicts.size(); ++i) {
        SCOPED_TRACE("packet " + std::to_string(i));
        EXPECT_EQ(a.verdicts[i].action, b.verdicts[i].action);
        EXPECT_EQ(a.verdicts[i].reason, b.verdicts[i].reason);
        EXPECT_EQ(a.verdicts[i].port, b.verdicts[i].port);
        EXPECT_EQ(a.bytes[i], b.bytes[i]);
    }
    EXPECT_EQ(std::memcmp(&wa.stats, &wb.stats, sizeof wa.stats), 0);
    EXPECT_EQ(wa.stats.rx_packets, testing::accounted(wa.stats));
    for (uint32_t id = 0; id < 3; ++id) {
        EXPECT_EQ(wa.vip_counters[id].packets, wb.vip_counters[id].packets) << "vip " << id;
        EXPECT_EQ(wa.vip_counters[id].bytes, wb.vip_counters[id].bytes) << "vip " << id;
    }
    for (uint32_t id = 0; id < kBackends; ++id) {
        EXPECT_EQ(wa.backend_counters[id].packets, wb.backend_counters[id].packets) << "backend " << id;
        EXPECT_EQ(wa.backend_counters[id].bytes, wb.backend_counters[id].bytes) << "backend " << id;
    }
    if constexpr (Filter::kEnabled) {
        EXPECT_TRUE(fa.calls == fb.calls);
    }
    // Every flow's entry, read at each burst's clock.
    EXPECT_EQ(wa.conns.size(), wb.conns.size());
    for (const Burst& bu : bursts) {
        for (const Spec& s : bu.packets) {
            const sluice_flow_key k = key_of(s, s.daddr == kVipNoSport);
            const uint32_t h = sluice_flow_hash(&k);
            const auto ea = wa.conns.peek_copy(k, h, bu.now);
            const auto eb = wb.conns.peek_copy(k, h, bu.now);
            ASSERT_EQ(ea.has_value(), eb.has_value());
            if (!ea) continue;
            EXPECT_EQ(ea->backend_id, eb->backend_id);
            EXPECT_EQ(ea->state, eb->state);
            EXPECT_EQ(ea->last_seen, eb->last_seen);
        }
    }
}

constexpr uint8_t kSyn = SLUICE_TCP_SYN;
constexpr uint8_t kAck = SLUICE_TCP_ACK;
constexpr uint8_t kFin = SLUICE_TCP_FIN;
constexpr uint8_t kRst = SLUICE_TCP_RST;
constexpr uint8_t kPsh = SLUICE_TCP_PSH;

// Trains of one flow interleaved with what ends or changes the memo: the
// handshake, a FIN then more ACKs, an RST, a SYN reusing the port, another
// flow, UDP, a packet too big for the fast tunnel, an ingress port whose
// tunnel is not ready, a tagged packet, a no-sport VIP (two source ports,
// one key); more than one 32-packet chunk; flows ended by the last packet
// of theirs in the burst.
std::vector<Spec> mixed_train()
{
    Spec big = ack();
    big.payload = 0;  // over the MTU
    Spec nonh = ack();
    nonh.in_port = kNoNextHop;
    Spec tagged = ack();
    tagged.vlan = true;
    Spec ns1 = ack(41000), ns2 = ack(41001);
    ns1.daddr = ns2.daddr = kVipNoSport;
    return {
        tcp(kSyn), tcp(kSyn | kAck), ack(), ack(), tcp(kAck | kPsh), ack(), tcp(kSyn, 40001), ack(40001), ack(40001),
        ack(), ack(), udp(), udp(), udp(), udp(5001), udp(), ack(), big, ack(), ack(), nonh, ack(), ack(), tagged,
        ack(), tcp(kAck | kFin), ack(), ack(), tcp(kAck | kFin), ack(), ack(40001), ack(40001), ack(40001),
        tcp(kRst, 40001), ack(40001), ack(40001), tcp(kSyn, 40001), ack(40001), ack(40001), ns1, ns1, ns2, ns2, ns1,
        ack(), ack(), ack(),
        // Flows whose last packet in the burst ends them, so the table
        // state left behind shows whether that packet was looked up.
        ack(40002), ack(40002), tcp(kRst, 40002), ack(40003), ack(40003), tcp(kAck | kFin, 40003), ack(40004),
        ack(40004), tcp(kSyn, 40004),
    };
}

// One burst of the mixed train, then (new snapshots between bursts) the
// flows' backends draining, then removed: trains on a draining backend
// stay, a SYN on it re-picks; a removed backend's flows re-pin, then hit.
TEST(FlowMemo, SameAsOnePacketPerBurst)
{
    const auto st = make_state();
    const std::vector<Spec> train = mixed_train();
    // Which backend did the flows take? Drain and remove each in turn.
    for (int target = 0; target < static_cast<int>(kBackends); ++target) {
        SCOPED_TRACE("backend " + std::to_string(target));
        const auto draining = make_state(target);
        const auto removed = make_state(-1, target);
        const std::vector<Spec> after = {ack(), ack(), ack(), tcp(kSyn), ack(), ack(), ack(40001), ack(40001),
                                         udp(), udp(), tcp(kSyn, 40001), ack(40001), ack(40001)};
        const std::vector<Burst> bursts = {
            {st.get(), 1000, train}, {st.get(), 1000, train},  // the same clock again: entries touched at `now`
            {draining.get(), 2000, after}, {removed.get(), 3000, after}, {st.get(), 4000, train},
        };
        expect_same_as_unmemoized(bursts, NoFilter{}, NoFilter{});
    }
}

// A rate-limited VIP: the filter refuses some packets of a train (a refused
// memo hit leaves the table alone and is not a hit), with the same calls in
// the same order both ways.
TEST(FlowMemo, FilteredSameAsOnePacketPerBurst)
{
    const auto st = make_state();
    const auto draining = make_state(1);
    const std::vector<Burst> bursts = {
        {st.get(), 1000, mixed_train()}, {st.get(), 1000, mixed_train()}, {draining.get(), 2000, mixed_train()}};
    for (uint32_t period : {2u, 3u, 5u}) {
        SCOPED_TRACE("refusing every " + std::to_string(period));
        ScriptedFilter f;
        for (uint32_t i = 1; i < 200; i += period) f.refuse.push_back(i);
        expect_same_as_unmemoized(bursts, f, f);
    }
    ScriptedFilter all;
    for (uint32_t i = 0; i < 200; ++i) all.refuse.push_back(i);
    expect_same_as_unmemoized(bursts, all, all);
}

// Timeouts of zero: an entry touched at `now` is already expired, so a
// hit is never repeated (an ACK moving an entry from transitory to an
// established state that expires at once must miss next time).
TEST(FlowMemo, ZeroTimeoutsNeverRepeat)
{
    const auto st = make_state();
    const std::vector<Burst> bursts = {{st.get(), 1000, mixed_train()}, {st.get(), 1000, mixed_train()}};
    expect_same_as_unmemoized(bursts, NoFilter{}, NoFilter{}, {1024, 0, 10'000'000'000ull, 0});
    expect_same_as_unmemoized(bursts, NoFilter{}, NoFilter{}, {1024, 10'000'000'000ull, 0, 10'000'000'000ull});
}

// A train of one flow: the first packet's lookup pins it, every other
// packet is counted as a hit (memo or not).
TEST(FlowMemo, TrainIsAllHits)
{
    const auto st = make_state();
    Worker w(testing::small_conn_config());
    NoFilter nf;
    std::vector<Spec> train(40, ack());
    run(w, nf, {{st.get(), 1000, train}}, true, 0);
    EXPECT_EQ(w.stats.conn_misses, 1u);
    EXPECT_EQ(w.stats.conn_hits, 39u);
    EXPECT_EQ(w.stats.tx_packets, 40u);
    EXPECT_EQ(w.conns.size(), 1u);
}

}  // namespace
}  // namespace sluice::core
