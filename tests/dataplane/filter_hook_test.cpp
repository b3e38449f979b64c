// The core's filter hook (core/filter_hook.h): what a filter is told about
// each VIP packet, where it runs relative to the connection table, and that
// a packet a filter drops is counted with the filter's reason and leaves no
// connection-table entry behind (nor refreshes one). With a fake filter,
// and with the DPDK plane's FilterSet (no ACL prefixes, so no EAL needed).
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/pipeline.h"
#include "core/pipeline_impl.h"
#include "filter/pipeline_filter.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::core {
namespace {

constexpr uint32_t kVip = 0xC000020Au;     // 192.0.2.10
constexpr uint32_t kClient = 0xC6336407u;  // 198.51.100.7
constexpr uint16_t kVipId = 7;

ConnectionTable::Config conn_config() { return {1024, 1'000'000, 100'000, 300'000}; }

// One IPv4 VIP, TCP 192.0.2.10:80 (IPIP to 10.1.0.10) and UDP :53.
std::unique_ptr<const ForwardingState> make_state()
{
    ForwardingStateBuilder b;
    sluice_addr local{};
    local.v4 = htonl(0x0A000001u);
    b.set_local_ipv4(local);
    PortConfig p{};
    p.mac[0] = 2;
    p.nexthop_mac[0] = 2;
    p.nexthop_mac[5] = 0xFE;
    p.mtu = 1500;
    b.add_port(0, p);
    sluice_backend be{};
    be.addr.v4 = htonl(0x0A01000Au);
    be.family = SLUICE_FAMILY_IPV4;
    be.flags = SLUICE_BACKEND_F_VALID;
    b.add_backend(0, be);
    for (const auto& [port, proto, id] : {std::tuple{80, SLUICE_IPPROTO_TCP, kVipId},
                                          std::tuple{53, SLUICE_IPPROTO_UDP, uint16_t(kVipId + 1)}}) {
        ForwardingStateBuilder::VipSpec v{};
        v.key.addr.v4 = htonl(kVip);
        v.key.port = htons(static_cast<uint16_t>(port));
        v.key.proto = static_cast<uint8_t>(proto);
        v.key.family = SLUICE_FAMILY_IPV4;
        v.vip_id = id;
        v.forwarding = SLUICE_FWD_IPIP;
        v.ring = {0, 0, 0};
        b.add_vip(v);
    }
    auto st = b.build();
    EXPECT_TRUE(st.ok()) << st.error();
    return std::move(*st);
}

// An Ethernet + IPv4 + TCP (with `tcp_options` bytes of options) or UDP
// frame from the client to the VIP, with `payload`, in a buffer with
// headroom for the encapsulation.
struct Frame {
    std::vector<uint8_t> buf;
    Packet pkt;
    Frame(uint8_t proto, uint16_t sport, uint8_t tcp_flags, const std::string& payload, uint32_t tcp_options = 0)
        : buf(128 + 1600, 0)
    {
        uint8_t* f = buf.data() + 128;
        const uint8_t eth[14] = {2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0xC1, 1, 0x08, 0x00};
        std::memcpy(f, eth, 14);
        const uint32_t l4 = proto == SLUICE_IPPROTO_TCP ? 20 + tcp_options : 8;
        const uint32_t total = 20 + l4 + static_cast<uint32_t>(payload.size());
        uint8_t* ip = f + 14;
        ip[0] = 0x45;
        ip[2] = static_cast<uint8_t>(total >> 8);
        ip[3] = static_cast<uint8_t>(total);
        ip[6] = 0x40;  // DF
        ip[8] = 57;
        ip[9] = proto;
        const uint32_t src = htonl(kClient), dst = htonl(kVip);
        std::memcpy(ip + 12, &src, 4);
        std::memcpy(ip + 16, &dst, 4);
        uint8_t* t = ip + 20;
        t[0] = static_cast<uint8_t>(sport >> 8);
        t[1] = static_cast<uint8_t>(sport);
        t[3] = proto == SLUICE_IPPROTO_TCP ? 80 : 53;
        if (proto == SLUICE_IPPROTO_TCP) {
            t[12] = static_cast<uint8_t>((l4 / 4) << 4);
            t[13] = tcp_flags;
            for (uint32_t i = 20; i < l4; ++i) t[i] = 1;  // NOP options
        } else {
            const size_t udp_len = l4 + payload.size();
            t[4] = static_cast<uint8_t>(udp_len >> 8);
            t[5] = static_cast<uint8_t>(udp_len);
        }
        std::memcpy(t + l4, payload.data(), payload.size());
        pkt = Packet{f, 14 + total, 128, 0, 0};
    }
};

sluice_flow_key key_of(uint8_t proto, uint16_t sport)
{
    sluice_flow_key k{};
    k.src.v4 = htonl(kClient);
    k.dst.v4 = htonl(kVip);
    k.sport = htons(sport);
    k.dport = htons(proto == SLUICE_IPPROTO_TCP ? 80 : 53);
    k.proto = proto;
    k.family = SLUICE_FAMILY_IPV4;
    return k;
}

// A fake filter: records what it was asked and drops by a rule of the test's.
struct RecordingFilter {
    static constexpr bool kEnabled = true;
    struct Seen {
        uint32_t src;
        std::string payload;
        uint16_t vip_id;
        uint8_t family;
        uint8_t new_flow;
    };
    std::vector<Seen> seen;
    uint8_t drop_new_flows = kFilterPass;  // reason for new flows, or pass
    uint8_t drop_all = kFilterPass;        // reason for every packet, or pass

    uint8_t check(const FilterQuery& q)
    {
        seen.push_back({q.src->v4, std::string(reinterpret_cast<const char*>(q.payload), q.payload_len), q.vip_id,
                        q.family, q.new_flow});
        if (drop_all != kFilterPass) return drop_all;
        return q.new_flow ? drop_new_flows : kFilterPass;
    }
};

Verdict run(Worker& w, const ForwardingState& st, Frame& f, RecordingFilter& filter, uint64_t now)
{
    Packet* pkts[1] = {&f.pkt};
    Verdict v[1];
    process_burst(w, pkts, 1, st, now, v, filter);
    return v[0];
}

// A SYN the filter drops as a new flow is counted with the filter's reason
// and leaves no connection-table entry; the same SYN admitted later makes
// one, and is then reported as a new flow exactly once.
TEST(FilterHook, FilterDroppedSynLeavesNoConnectionEntry)
{
    const auto st = make_state();
    Worker w(conn_config());
    RecordingFilter filter;
    filter.drop_new_flows = SLUICE_DROP_RATE_LIMIT_NEW_FLOWS;
    const sluice_flow_key key = key_of(SLUICE_IPPROTO_TCP, 40000);
    const uint32_t hash = sluice_flow_hash(&key);

    Frame syn(SLUICE_IPPROTO_TCP, 40000, SLUICE_TCP_SYN, "");
    const Verdict dropped = run(w, *st, syn, filter, 10);
    EXPECT_EQ(dropped.action, Action::kDrop);
    EXPECT_EQ(dropped.reason, SLUICE_DROP_RATE_LIMIT_NEW_FLOWS);
    EXPECT_EQ(w.stats.drops[SLUICE_DROP_RATE_LIMIT_NEW_FLOWS], 1u);
    EXPECT_EQ(w.conns.size(), 0u);
    EXPECT_EQ(w.conns.peek(key, hash, 10), nullptr);
    EXPECT_EQ(w.stats.conn_misses + w.stats.conn_hits, 0u) << "a filtered packet does not count as a lookup";
    ASSERT_EQ(filter.seen.size(), 1u);
    EXPECT_EQ(filter.seen[0].new_flow, 1);

    filter.drop_new_flows = kFilterPass;
    Frame again(SLUICE_IPPROTO_TCP, 40000, SLUICE_TCP_SYN, "");
    EXPECT_TRUE(run(w, *st, again, filter, 11).counted_as_tx());
    EXPECT_EQ(w.conns.size(), 1u);
    EXPECT_NE(w.conns.peek(key, hash, 11), nullptr);
    Frame ack(SLUICE_IPPROTO_TCP, 40000, SLUICE_TCP_ACK, "x");
    EXPECT_TRUE(run(w, *st, ack, filter, 12).counted_as_tx());
    ASSERT_EQ(filter.seen.size(), 3u);
    EXPECT_EQ(filter.seen[1].new_flow, 1);
    EXPECT_EQ(filter.seen[2].new_flow, 0) << "a connection-table hit is not a new flow";
}

// A packet of an established flow that a filter drops does not refresh its
// entry: the entry still expires when it would have without that packet.
TEST(FilterHook, FilterDroppedPacketDoesNotRefreshItsEntry)
{
    const auto st = make_state();
    Worker w(conn_config());
    RecordingFilter filter;
    const sluice_flow_key key = key_of(SLUICE_IPPROTO_TCP, 40001);
    const uint32_t hash = sluice_flow_hash(&key);
    Frame syn(SLUICE_IPPROTO_TCP, 40001, SLUICE_TCP_SYN, "");
    ASSERT_TRUE(run(w, *st, syn, filter, 100).counted_as_tx());
    Frame ack(SLUICE_IPPROTO_TCP, 40001, SLUICE_TCP_ACK, "");
    ASSERT_TRUE(run(w, *st, ack, filter, 200).counted_as_tx());  // established, last seen 200

    filter.drop_all = SLUICE_DROP_PAYLOAD_RULE;
    Frame evil(SLUICE_IPPROTO_TCP, 40001, SLUICE_TCP_ACK | SLUICE_TCP_PSH, "evil");
    const Verdict v = run(w, *st, evil, filter, 900'000);
    EXPECT_EQ(v.reason, SLUICE_DROP_PAYLOAD_RULE);
    const ConnectionTable::Entry* e = w.conns.peek(key, hash, 900'000);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->last_seen, 200u);
    EXPECT_EQ(w.conns.peek(key, hash, 200 + conn_config().tcp_established_timeout), nullptr);
}

// The filter sees the client address, the VIP id, the family and exactly
// the L4 payload: after TCP options (by the data offset), after the UDP
// header up to the UDP length (Ethernet padding excluded).
TEST(FilterHook, QueryCarriesSourceVipAndPayload)
{
    const auto st = make_state();
    Worker w(conn_config());
    RecordingFilter filter;
    Frame tcp(SLUICE_IPPROTO_TCP, 40002, SLUICE_TCP_ACK | SLUICE_TCP_PSH, "GET /", 12);
    ASSERT_TRUE(run(w, *st, tcp, filter, 1).counted_as_tx());
    Frame udp(SLUICE_IPPROTO_UDP, 40003, 0, "query");
    udp.pkt.len += 20;  // trailing padding past the IP packet: not payload
    ASSERT_TRUE(run(w, *st, udp, filter, 1).counted_as_tx());
    ASSERT_EQ(filter.seen.size(), 2u);
    EXPECT_EQ(filter.seen[0].src, htonl(kClient));
    EXPECT_EQ(filter.seen[0].vip_id, kVipId);
    EXPECT_EQ(filter.seen[0].family, SLUICE_FAMILY_IPV4);
    EXPECT_EQ(filter.seen[0].payload, "GET /");
    EXPECT_EQ(filter.seen[1].vip_id, kVipId + 1);
    EXPECT_EQ(filter.seen[1].payload, "query");
    EXPECT_EQ(filter.seen[1].new_flow, 1);
}

// Packets that are not VIP traffic never reach the filter.
TEST(FilterHook, NonVipTrafficIsNotFiltered)
{
    const auto st = make_state();
    Worker w(conn_config());
    RecordingFilter filter;
    filter.drop_all = SLUICE_DROP_ACL_DENY;
    Frame f(SLUICE_IPPROTO_TCP, 40004, SLUICE_TCP_SYN, "");
    f.pkt.data[14 + 19] = 11;  // destination 192.0.2.11: not a VIP
    EXPECT_EQ(run(w, *st, f, filter, 1).action, Action::kException);
    EXPECT_TRUE(filter.seen.empty());
}

// With the DPDK plane's FilterSet as the policy (a new-flows limit of 1/s,
// burst 1, and a payload rule): the second flow's SYN is dropped as
// RATE_LIMIT_NEW_FLOWS and leaves no entry, the first flow's data goes on
// (a hit spends no new-flow token), and a matching payload is dropped as
// PAYLOAD_RULE without touching the table.
TEST(FilterHook, FilterSetDropsLeaveNoEntries)
{
    filter::FilterConfig fc;
    fc.rate_limits.vip[kVipId] = filter::VipRateLimit{0, 0, 1, 1};
    fc.payload_rules.push_back(filter::PayloadRule{9, "evil[0-9]+", 0, {kVipId}});
    auto set = filter::FilterSet::build(fc, 1);
    ASSERT_TRUE(set.ok()) << set.error();
    filter::PipelineFilter pf(0, 1);
    const auto st = make_state();
    Worker w(conn_config());
    auto send = [&](Frame& f, uint64_t now) {
        pf.begin_burst(**set, now);
        Packet* pkts[1] = {&f.pkt};
        Verdict v[1];
        process_burst(w, pkts, 1, *st, now, v, pf);
        return v[0];
    };
    Frame a(SLUICE_IPPROTO_TCP, 41000, SLUICE_TCP_SYN, "");
    EXPECT_TRUE(send(a, 1000).counted_as_tx());
    Frame b(SLUICE_IPPROTO_TCP, 41001, SLUICE_TCP_SYN, "");
    EXPECT_EQ(send(b, 1001).reason, SLUICE_DROP_RATE_LIMIT_NEW_FLOWS);
    EXPECT_EQ(w.conns.size(), 1u);
    const sluice_flow_key kb = key_of(SLUICE_IPPROTO_TCP, 41001);
    EXPECT_EQ(w.conns.peek(kb, sluice_flow_hash(&kb), 1001), nullptr);
    Frame a_data(SLUICE_IPPROTO_TCP, 41000, SLUICE_TCP_ACK, "hello");
    EXPECT_TRUE(send(a_data, 1002).counted_as_tx());
    // A new flow with a matching payload while the bucket is empty: the
    // limit comes first (filter_set.h's order), so Hyperscan never sees it.
    Frame c(SLUICE_IPPROTO_TCP, 41002, SLUICE_TCP_SYN | SLUICE_TCP_PSH, "evil42");
    EXPECT_EQ(send(c, 1003).reason, SLUICE_DROP_RATE_LIMIT_NEW_FLOWS);
    Frame a_evil(SLUICE_IPPROTO_TCP, 41000, SLUICE_TCP_ACK, "evil42");
    EXPECT_EQ(send(a_evil, 1004).reason, SLUICE_DROP_PAYLOAD_RULE);
    EXPECT_EQ(w.conns.size(), 1u);
    EXPECT_EQ(w.stats.drops[SLUICE_DROP_RATE_LIMIT_NEW_FLOWS], 2u);
    EXPECT_EQ(w.stats.drops[SLUICE_DROP_PAYLOAD_RULE], 1u);
    EXPECT_EQ((*set)->payload_rules().hits(9), 1u);
}

}  // namespace
}  // namespace sluice::core
