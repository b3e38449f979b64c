// The fast path (core/fast_path.h) against the general path it shortcuts:
// where it takes a packet it must produce what the general parser,
// classifier and encapsulator produce (same ParsedPacket, service, bytes);
// at each condition it does not handle it must decline and write nothing,
// so the general path sees the packet untouched. The fixture table and the
// parity suite then run both through process_burst.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fast_path.h"
#include "core/pipeline.h"
#include "core/pipeline_impl.h"
#include "fixture_table.h"

extern "C" {
#include "abi/checksum.h"
#include "abi/wire.h"
}

namespace sluice::core {
namespace {

constexpr uint32_t kVip = 0x0A640001;      // 10.100.0.1: TCP 80 IPIP, UDP 53 GUE
constexpr uint32_t kVipAll = 0x0A640002;   // 10.100.0.2: TCP port 0 (all ports), IPIP
constexpr uint32_t kVipDsr = 0x0A640003;   // 10.100.0.3: TCP 80 L2 DSR
constexpr uint32_t kVipV6Be = 0x0A640004;  // 10.100.0.4: TCP 80 IPIP to an IPv6 backend
constexpr uint16_t kGuePort = 6080;
constexpr uint16_t kOneArm = 0;   // port 0 egresses on itself
constexpr uint16_t kTwoArm = 1;   // port 1 egresses on port 2
constexpr uint16_t kNoNextHop = 3;  // port 3: next hop not resolved yet
constexpr uint32_t kHeadroom = 128;

sluice_addr v4(uint32_t host)
{
    sluice_addr a{};
    a.v4 = htonl(host);
    return a;
}

std::unique_ptr<const ForwardingState> make_state(uint16_t mtu = 1500)
{
    ForwardingStateBuilder b;
    b.set_local_ipv4(v4(0x0A000001));
    sluice_addr l6{};
    l6.bytes[0] = 0xfd;
    l6.bytes[15] = 1;
    b.set_local_ipv6(l6);
    auto port = [&](uint16_t id, uint16_t egress, bool nexthop) {
        PortConfig p{};
        const uint8_t mac[6] = {0x02, 0, 0, 0, 0, static_cast<uint8_t>(0x10 + id)};
        const uint8_t nh[6] = {0x02, 0, 0, 0, 0, static_cast<uint8_t>(0xF0 + id)};
        std::memcpy(p.mac, mac, 6);
        if (nexthop) std::memcpy(p.nexthop_mac, nh, 6);
        p.mtu = mtu;
        p.egress_port = egress;
        b.add_port(id, p);
    };
    port(kOneArm, kOneArm, true);
    port(kTwoArm, 2, true);
    port(2, 2, true);
    port(kNoNextHop, kNoNextHop, false);
    for (uint32_t id = 0; id < 3; ++id) {
        sluice_backend be{};
        be.addr = v4(0x0A010000 + 10 + id);
        be.family = SLUICE_FAMILY_IPV4;
        be.flags = SLUICE_BACKEND_F_VALID;
        const uint8_t mac[6] = {0x02, 0xbe, 0, 0, 0, static_cast<uint8_t>(id)};
        std::memcpy(be.mac, mac, 6);
        b.add_backend(id, be);
    }
    sluice_backend be6{};
    be6.addr.bytes[0] = 0xfd;
    be6.addr.bytes[15] = 0x10;
    be6.family = SLUICE_FAMILY_IPV6;
    be6.flags = SLUICE_BACKEND_F_VALID;
    b.add_backend(3, be6);
    auto vip = [&](uint32_t id, uint32_t addr, uint16_t p, uint8_t proto, uint8_t fwd, std::vector<uint32_t> ring) {
        ForwardingStateBuilder::VipSpec v{};
        v.key.addr = v4(addr);
        v.key.port = htons(p);
        v.key.proto = proto;
        v.key.family = SLUICE_FAMILY_IPV4;
        v.vip_id = id;
        v.forwarding = fwd;
        v.gue_port = fwd == SLUICE_FWD_GUE ? kGuePort : 0;
        v.ring = std::move(ring);
        b.add_vip(std::move(v));
    };
    vip(0, kVip, 80, SLUICE_IPPROTO_TCP, SLUICE_FWD_IPIP, {0, 1, 2, 0, 1, 2, 0});
    vip(1, kVip, 53, SLUICE_IPPROTO_UDP, SLUICE_FWD_GUE, {2, 1, 0, 2, 1, 0, 2});
    vip(2, kVipAll, 0, SLUICE_IPPROTO_TCP, SLUICE_FWD_IPIP, {1, 1, 1});
    vip(3, kVipDsr, 80, SLUICE_IPPROTO_TCP, SLUICE_FWD_L2DSR, {0, 1, 2});
    vip(4, kVipV6Be, 80, SLUICE_IPPROTO_TCP, SLUICE_FWD_IPIP, {3, 3, 3});
    auto st = b.build();
    EXPECT_TRUE(st.ok()) << st.error();
    return std::move(*st);
}

// An Ethernet (+ tag) / IPv4 / TCP or UDP frame; fields are set by the
// tests afterwards through the offsets below.
struct Frame {
    std::vector<uint8_t> bytes;
    uint32_t l3;
    uint8_t* ip() { return bytes.data() + l3; }
    uint8_t* l4() { return bytes.data() + l3 + 20; }
    void set16(size_t off, uint16_t v)
    {
        bytes[off] = static_cast<uint8_t>(v >> 8);
        bytes[off + 1] = static_cast<uint8_t>(v);
    }
};

Frame make_frame(uint8_t proto, uint32_t daddr, uint16_t dport, bool vlan = false, uint32_t payload = 6,
                 uint32_t padding = 0)
{
    Frame f;
    f.bytes.assign(12, 0x02);
    f.bytes[11] = 0x01;
    if (vlan) f.bytes.insert(f.bytes.end(), {0x81, 0x00, 0x20, 0x64});
    f.bytes.insert(f.bytes.end(), {0x08, 0x00});
    f.l3 = static_cast<uint32_t>(f.bytes.size());
    const uint32_t l4len = (proto == SLUICE_IPPROTO_UDP ? 8u : 20u) + payload;
    const uint32_t total = 20 + l4len;
    f.bytes.resize(f.l3 + total + padding, 0);
    uint8_t* ip = f.ip();
    ip[0] = 0x45;
    ip[1] = 0xB8;  // DSCP EF, ECN 0
    f.set16(f.l3 + 2, static_cast<uint16_t>(total));
    f.set16(f.l3 + 4, 0x1234);
    f.set16(f.l3 + 6, 0x4000);  // DF
    ip[8] = 61;
    ip[9] = proto;
    const uint32_t s = htonl(0x0B000007), d = htonl(daddr);
    std::memcpy(ip + 12, &s, 4);
    std::memcpy(ip + 16, &d, 4);
    f.set16(f.l3 + 20, 40000);
    f.set16(f.l3 + 22, dport);
    if (proto == SLUICE_IPPROTO_UDP) {
        f.set16(f.l3 + 24, static_cast<uint16_t>(l4len));
    } else {
        f.l4()[12] = 5 << 4;
        f.l4()[13] = SLUICE_TCP_ACK;
    }
    for (uint32_t i = 0; i < payload; ++i) f.bytes[f.l3 + total - payload + i] = static_cast<uint8_t>(0xA0 + i);
    return f;
}

// The frame in an mbuf-like buffer: headroom, frame, tailroom.
struct Buffer {
    std::vector<uint8_t> bytes;
    Packet pkt;
    Buffer(const std::vector<uint8_t>& frame, uint16_t in_port, uint32_t headroom = kHeadroom)
        : bytes(headroom + frame.size() + 64, 0xEE)
    {
        std::copy(frame.begin(), frame.end(), bytes.begin() + headroom);
        pkt = Packet{bytes.data() + headroom, static_cast<uint32_t>(frame.size()), headroom, in_port, 0};
    }
};

void expect_same_parse(const ParsedPacket& a, const ParsedPacket& b)
{
    EXPECT_EQ(a.l3_offset, b.l3_offset);
    EXPECT_EQ(a.l4_offset, b.l4_offset);
    EXPECT_EQ(a.l3_len, b.l3_len);
    EXPECT_EQ(a.vlan_tci, b.vlan_tci);
    EXPECT_EQ(a.ipv4_id, b.ipv4_id);
    EXPECT_EQ(a.family, b.family);
    EXPECT_EQ(a.l4_proto, b.l4_proto);
    EXPECT_EQ(a.tos, b.tos);
    EXPECT_EQ(a.tcp_flags, b.tcp_flags);
    EXPECT_EQ(a.has_vlan, b.has_vlan);
    EXPECT_EQ(a.ipv4_df, b.ipv4_df);
    EXPECT_EQ(a.fragment, b.fragment);
    EXPECT_EQ(a.icmp_error, b.icmp_error);
    EXPECT_EQ(std::memcmp(&a.src, &b.src, sizeof a.src), 0);
    EXPECT_EQ(std::memcmp(&a.dst, &b.dst, sizeof a.dst), 0);
    EXPECT_EQ(std::memcmp(&a.key, &b.key, sizeof a.key), 0);
}

// Runs both classifiers on the same bytes. Returns whether the fast one
// took the packet; when it did, checks it agrees with the general one in
// every field; when it did not, checks it wrote nothing.
bool classify_both(const ForwardingState& st, const std::vector<uint8_t>& frame, const std::string& what)
{
    Buffer buf(frame, kOneArm);
    ParsedPacket fast;
    std::memset(&fast, 0x5A, sizeof fast);
    const VipRuntime* fvip = classify_fast(buf.pkt, st, fast);
    pipeline_detail::Classified general{};
    Verdict v = Verdict::drop(SLUICE_DROP_INTERNAL);
    const bool taken = pipeline_detail::classify_packet(buf.pkt, st, general, v);
    if (fvip == nullptr) {
        ParsedPacket untouched;
        std::memset(&untouched, 0x5A, sizeof untouched);
        EXPECT_EQ(std::memcmp(&fast, &untouched, sizeof fast), 0) << what << ": declined but wrote";
        return false;
    }
    EXPECT_TRUE(taken) << what << ": fast path took a packet the general path ends (" << int(v.reason) << ")";
    if (!taken) return true;
    EXPECT_EQ(fvip, general.vip) << what;
    SCOPED_TRACE(what);
    expect_same_parse(fast, general.pp);
    EXPECT_EQ(general.pp.key.sport, fast.key.sport);
    return true;
}

// The packets the fast path is for: TCP and UDP, with and without a tag,
// with Ethernet padding, TCP options, DF clear, and a port-0 service.
TEST(FastPath, TakesTheCommonPacketsAsTheGeneralPathParsesThem)
{
    const auto st = make_state();
    EXPECT_TRUE(classify_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80).bytes, "tcp"));
    EXPECT_TRUE(classify_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, true).bytes, "tcp vlan"));
    EXPECT_TRUE(classify_both(*st, make_frame(SLUICE_IPPROTO_UDP, kVip, 53).bytes, "udp"));
    EXPECT_TRUE(classify_both(*st, make_frame(SLUICE_IPPROTO_UDP, kVip, 53, false, 0).bytes, "udp no payload"));
    EXPECT_TRUE(classify_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, false, 0, 6).bytes, "padded to 60"));
    EXPECT_TRUE(classify_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVipAll, 4242).bytes, "port-0 service"));
    EXPECT_TRUE(classify_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVipDsr, 80).bytes, "l2 dsr"));
    Frame opts = make_frame(SLUICE_IPPROTO_TCP, kVip, 80, false, 12);
    opts.l4()[12] = 8 << 4;  // 12 bytes of TCP options
    EXPECT_TRUE(classify_both(*st, opts.bytes, "tcp options"));
    Frame no_df = make_frame(SLUICE_IPPROTO_TCP, kVip, 80);
    no_df.set16(no_df.l3 + 6, 0);
    EXPECT_TRUE(classify_both(*st, no_df.bytes, "df clear"));
}

// Each condition the fast path leaves to the general path, one at a time.
TEST(FastPath, DeclinesEveryOtherPacket)
{
    const auto st = make_state();
    struct Case {
        const char* what;
        std::vector<uint8_t> frame;
    };
    std::vector<Case> cases;
    auto mutate = [&](const char* what, auto&& change, uint8_t proto = SLUICE_IPPROTO_TCP, uint16_t port = 80) {
        Frame f = make_frame(proto, kVip, port);
        change(f);
        cases.push_back({what, f.bytes});
    };
    mutate("ipv6 ethertype", [](Frame& f) { f.set16(12, SLUICE_ETH_P_IPV6); });
    mutate("arp", [](Frame& f) { f.set16(12, SLUICE_ETH_P_ARP); });
    {
        Frame f = make_frame(SLUICE_IPPROTO_TCP, kVip, 80, true);
        f.set16(16, SLUICE_ETH_P_VLAN);  // QinQ
        cases.push_back({"qinq", f.bytes});
    }
    mutate("ip options", [](Frame& f) { f.ip()[0] = 0x46; });
    mutate("ip version 6", [](Frame& f) { f.ip()[0] = 0x65; });
    mutate("ihl below 5", [](Frame& f) { f.ip()[0] = 0x44; });
    mutate("more fragments", [](Frame& f) { f.set16(f.l3 + 6, 0x2000); });
    mutate("fragment offset", [](Frame& f) { f.set16(f.l3 + 6, 0x0001); });
    mutate("icmp", [](Frame& f) { f.ip()[9] = SLUICE_IPPROTO_ICMP; });
    mutate("gre", [](Frame& f) { f.ip()[9] = 47; });
    mutate("total length past the frame", [](Frame& f) { f.set16(f.l3 + 2, 47); });
    mutate("total length below the header", [](Frame& f) { f.set16(f.l3 + 2, 19); });
    mutate("tcp header truncated", [](Frame& f) { f.set16(f.l3 + 2, 39); });
    mutate("tcp data offset 4", [](Frame& f) { f.l4()[12] = 4 << 4; });
    mutate("tcp data offset past the packet", [](Frame& f) { f.l4()[12] = 7 << 4; });
    mutate("udp length 7", [](Frame& f) { f.set16(f.l3 + 24, 7); }, SLUICE_IPPROTO_UDP, 53);
    mutate("udp length past the packet", [](Frame& f) { f.set16(f.l3 + 24, 15); }, SLUICE_IPPROTO_UDP, 53);
    mutate("udp header truncated", [](Frame& f) { f.set16(f.l3 + 2, 27); }, SLUICE_IPPROTO_UDP, 53);
    mutate("vip, no such port", [](Frame& f) { f.set16(f.l3 + 22, 81); });
    mutate("vip, no such protocol", [](Frame& f) { f.ip()[9] = SLUICE_IPPROTO_UDP; f.set16(f.l3 + 24, 26); });
    mutate("not a vip", [](Frame& f) { f.ip()[19] = 99; });
    {
        Frame f = make_frame(SLUICE_IPPROTO_UDP, kVip, 53, false, 0);
        f.bytes.resize(f.bytes.size() - 1);  // 41 bytes: shorter than any frame taken
        cases.push_back({"frame of 41 bytes", f.bytes});
    }
    for (const Case& c : cases) EXPECT_FALSE(classify_both(*st, c.frame, c.what)) << c.what;
}

// Random corruption of the fields the fast path reads: whatever it takes,
// the general path parses the same way; whatever it declines, it left alone.
TEST(FastPath, RandomHeadersAgreeWithTheGeneralPath)
{
    const auto st = make_state();
    std::mt19937 rng(20261122);
    const std::vector<size_t> ip_fields = {0, 2, 3, 6, 7, 9, 16, 17, 18, 19};
    int taken = 0;
    for (int i = 0; i < 20000; ++i) {
        const bool udp = rng() & 1;
        Frame f = make_frame(udp ? SLUICE_IPPROTO_UDP : SLUICE_IPPROTO_TCP, (rng() & 3) == 0 ? kVipAll : kVip,
                             udp ? 53 : 80, rng() & 1, rng() % 16, rng() % 3 == 0 ? rng() % 8 : 0);
        const int changes = 1 + static_cast<int>(rng() % 2);
        for (int k = 0; k < changes; ++k) {
            const uint32_t what = rng() % 4;
            // Writes stay inside the frame: an earlier change may have truncated it.
            const size_t ip_at = static_cast<size_t>(f.ip() - f.bytes.data());
            const size_t l4_at = static_cast<size_t>(f.l4() - f.bytes.data());
            if (what == 0) {
                const size_t at = ip_at + ip_fields[rng() % ip_fields.size()];
                const auto v = static_cast<uint8_t>(rng());
                if (at < f.bytes.size()) f.bytes[at] = v;
            } else if (what == 1) {
                const size_t at = l4_at + rng() % 16;
                const auto v = static_cast<uint8_t>(rng());
                if (at < f.bytes.size()) f.bytes[at] = v;
            } else if (what == 2) {
                f.bytes.resize(f.bytes.size() - std::min<size_t>(f.bytes.size() - 1, rng() % 12));
            } else {
                f.bytes[12 + rng() % 6] = static_cast<uint8_t>(rng() & 1 ? 0x81 : rng());
            }
        }
        taken += classify_both(*st, f.bytes, "random " + std::to_string(i));
        if (HasFailure()) break;
    }
    EXPECT_GT(taken, 1000);  // the mix still exercises the fast path
}

// The pipeline's parameters for the general encapsulator, as
// forward_classified() fills them.
EncapParams general_params(const ForwardingState& st, const ParsedPacket& pp, uint16_t in_port, uint32_t backend,
                           uint32_t hash, const VipRuntime& vip)
{
    const PortConfig& in = *st.port(in_port);
    const PortConfig& eg = *st.port(in.egress_port);
    const sluice_backend& be = *st.backend(backend);
    EncapParams ep{};
    ep.src_mac = eg.mac;
    ep.dst_mac = eg.nexthop_mac;
    ep.outer_src = &st.local_addr(be.family);
    ep.outer_dst = &be.addr;
    ep.flow_hash = hash;
    ep.gue_dport = vip.meta.gue_dport;
    ep.mtu = eg.mtu;
    ep.keep_vlan = pp.has_vlan && in.egress_port == in_port;
    return ep;
}

struct TunnelOutcome {
    bool fast_sent;
    EncapStatus general;
};

// Tunnels the frame both ways into separate buffers; where the fast path
// sends, the bytes, length and headroom must be the general path's; where
// it declines, its buffer must be unchanged.
TunnelOutcome tunnel_both(const ForwardingState& st, const Frame& f, uint16_t in_port, uint32_t backend,
                          uint32_t headroom, const std::string& what)
{
    SCOPED_TRACE(what);
    Buffer a(f.bytes, in_port, headroom), b(f.bytes, in_port, headroom);
    ParsedPacket pp;
    const VipRuntime* vip = classify_fast(a.pkt, st, pp);
    EXPECT_NE(vip, nullptr);
    if (vip == nullptr) return {false, EncapStatus::kNoHeadroom};
    const uint32_t hash = sluice_flow_hash(&pp.key);
    const Encap mode = static_cast<Encap>(vip->meta.forwarding);
    const FastIngress& fi = st.fast_ingress(in_port);
    EXPECT_TRUE(fi.tunnel_ready);
    const std::vector<uint8_t> before = a.bytes;
    const bool sent = mode == Encap::kIpip
                          ? tunnel_fast_v4<Encap::kIpip>(a.pkt, pp, fi, st.fast_outer_v4(backend), hash,
                                                         vip->meta.gue_dport)
                          : tunnel_fast_v4<Encap::kGue>(a.pkt, pp, fi, st.fast_outer_v4(backend), hash,
                                                        vip->meta.gue_dport);
    const EncapStatus status = forward_packet(mode, SLUICE_FAMILY_IPV4, b.pkt, pp,
                                              general_params(st, pp, in_port, backend, hash, *vip));
    if (!sent) {
        EXPECT_EQ(a.bytes, before) << "declined but wrote";
        EXPECT_EQ(a.pkt.data, a.bytes.data() + headroom);
        return {false, status};
    }
    EXPECT_EQ(status, EncapStatus::kOk);
    EXPECT_EQ(a.pkt.len, b.pkt.len);
    EXPECT_EQ(a.pkt.headroom, b.pkt.headroom);
    EXPECT_EQ(a.pkt.data - a.bytes.data(), b.pkt.data - b.bytes.data());
    EXPECT_EQ(a.bytes, b.bytes);
    // And the outer header checks (a shared mistake would pass the above).
    const uint32_t l2_len = a.pkt.data[12] == 0x81 && a.pkt.data[13] == 0x00 ? kEthHdrLen + kVlanHdrLen : kEthHdrLen;
    EXPECT_EQ(sluice_csum_fold(sluice_csum_add(0, a.pkt.data + l2_len, kIpv4HdrLen)), 0xFFFF);
    return {true, status};
}

// IPIP and GUE: the same bytes as the general encapsulator, for TCP and UDP,
// TOS/ID/DF carried over, padding cut, two-arm with a tag (the tag goes),
// every backend.
TEST(FastPath, TunnelsWriteTheGeneralPathsBytes)
{
    const auto st = make_state();
    for (uint32_t backend = 0; backend < 3; ++backend) {
        EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80), kOneArm, backend, kHeadroom, "ipip").fast_sent);
        EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_UDP, kVip, 53), kOneArm, backend, kHeadroom, "gue").fast_sent);
    }
    Frame no_df = make_frame(SLUICE_IPPROTO_TCP, kVip, 80, false, 100, 7);
    no_df.set16(no_df.l3 + 6, 0);
    no_df.ip()[1] = 0x03;  // ECN CE
    EXPECT_TRUE(tunnel_both(*st, no_df, kOneArm, 1, kHeadroom, "no df, padding").fast_sent);
    EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, true), kTwoArm, 2, kHeadroom,
                            "two-arm tag dropped").fast_sent);
    EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_UDP, kVip, 53, true), kTwoArm, 0, kHeadroom,
                            "gue two-arm tag dropped").fast_sent);
    EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, true), kOneArm, 1, kHeadroom,
                            "one-arm tag kept").fast_sent);
    EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_UDP, kVip, 53, true), kOneArm, 2, kHeadroom,
                            "gue one-arm tag kept").fast_sent);
    // Exactly enough headroom with the tag kept: 20 + 18 - 18.
    EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, true), kOneArm, 0, 20,
                            "one-arm tag, tight headroom").fast_sent);
    // Exactly enough headroom: 20 + 14 - 14 bytes before the frame.
    EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80), kOneArm, 0, 20, "tight headroom").fast_sent);
    // Exactly the MTU: 1500 inner bytes less the 20 of IPIP.
    EXPECT_TRUE(tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, false, 1500 - 40 - 20), kOneArm, 0,
                            kHeadroom, "at the mtu").fast_sent);
}

// The outer checksum from the pre-folded backend sum equals the general
// path's for every IPv4 ID (so every residue of the sum, the one that folds
// to 0xFFFF included), with and without DF, for IPIP and GUE.
TEST(FastPath, TunnelChecksumEveryId)
{
    const auto st = make_state();
    for (const uint8_t proto : {SLUICE_IPPROTO_TCP, SLUICE_IPPROTO_UDP}) {
        for (const uint16_t frag : {uint16_t{0x4000}, uint16_t{0}}) {
            Frame f = make_frame(proto, kVip, proto == SLUICE_IPPROTO_TCP ? 80 : 53);
            f.set16(f.l3 + 6, frag);
            Buffer a(f.bytes, kOneArm), b(f.bytes, kOneArm);
            for (uint32_t id = 0; id <= 0xFFFF; ++id) {
                for (Buffer* x : {&a, &b}) {
                    std::copy(f.bytes.begin(), f.bytes.end(), x->bytes.begin() + kHeadroom);
                    x->bytes[kHeadroom + f.l3 + 4] = static_cast<uint8_t>(id >> 8);
                    x->bytes[kHeadroom + f.l3 + 5] = static_cast<uint8_t>(id);
                    x->pkt = Packet{x->bytes.data() + kHeadroom, static_cast<uint32_t>(f.bytes.size()), kHeadroom,
                                    kOneArm, 0};
                }
                ParsedPacket pp;
                const VipRuntime* vip = classify_fast(a.pkt, *st, pp);
                ASSERT_NE(vip, nullptr);
                const uint32_t hash = sluice_flow_hash(&pp.key);
                const Encap mode = static_cast<Encap>(vip->meta.forwarding);
                const FastIngress& fi = st->fast_ingress(kOneArm);
                const bool sent = mode == Encap::kIpip
                                      ? tunnel_fast_v4<Encap::kIpip>(a.pkt, pp, fi, st->fast_outer_v4(2), hash,
                                                                     vip->meta.gue_dport)
                                      : tunnel_fast_v4<Encap::kGue>(a.pkt, pp, fi, st->fast_outer_v4(2), hash,
                                                                    vip->meta.gue_dport);
                ASSERT_TRUE(sent);
                ASSERT_EQ(forward_packet(mode, SLUICE_FAMILY_IPV4, b.pkt, pp, general_params(*st, pp, kOneArm, 2, hash, *vip)),
                          EncapStatus::kOk);
                ASSERT_EQ(load<uint16_t>(a.pkt.data + kEthHdrLen + 10), load<uint16_t>(b.pkt.data + kEthHdrLen + 10))
                    << "id " << id << " proto " << int(proto) << " frag " << frag;
            }
        }
    }
}

// What the fast tunnel leaves to the general path: the MTU exceeded by one
// byte, one byte of headroom short (with and without a tag to keep).
TEST(FastPath, TunnelDeclinesWhatTheGeneralPathDecides)
{
    const auto st = make_state();
    const TunnelOutcome vlan_room =
        tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, true), kOneArm, 0, 19, "one-arm tag, headroom - 1");
    EXPECT_FALSE(vlan_room.fast_sent);
    EXPECT_EQ(vlan_room.general, EncapStatus::kNoHeadroom);
    const TunnelOutcome mtu = tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80, false, 1500 - 40 - 19),
                                          kOneArm, 0, kHeadroom, "mtu + 1");
    EXPECT_FALSE(mtu.fast_sent);
    EXPECT_EQ(mtu.general, EncapStatus::kMtuExceeded);
    const TunnelOutcome gue_mtu = tunnel_both(*st, make_frame(SLUICE_IPPROTO_UDP, kVip, 53, false, 1500 - 28 - 27),
                                              kOneArm, 0, kHeadroom, "gue mtu + 1");
    EXPECT_FALSE(gue_mtu.fast_sent);
    EXPECT_EQ(gue_mtu.general, EncapStatus::kMtuExceeded);
    const TunnelOutcome room =
        tunnel_both(*st, make_frame(SLUICE_IPPROTO_TCP, kVip, 80), kOneArm, 0, 19, "headroom - 1");
    EXPECT_FALSE(room.fast_sent);
    EXPECT_EQ(room.general, EncapStatus::kNoHeadroom);
}

// Ports the fast tunnel must not take: an unresolved next hop (the general
// path counts NO_NEXTHOP), a port not configured, an id past kMaxPorts.
TEST(FastPath, IngressNotReadyForTunnels)
{
    const auto st = make_state();
    EXPECT_TRUE(st->fast_ingress(kOneArm).tunnel_ready);
    EXPECT_TRUE(st->fast_ingress(kTwoArm).tunnel_ready);
    EXPECT_EQ(st->fast_ingress(kTwoArm).egress_port, 2);
    EXPECT_FALSE(st->fast_ingress(kTwoArm).one_arm);
    EXPECT_FALSE(st->fast_ingress(kNoNextHop).tunnel_ready);
    EXPECT_FALSE(st->fast_ingress(7).tunnel_ready);
    EXPECT_FALSE(st->fast_ingress(kMaxPorts).tunnel_ready);
    EXPECT_FALSE(st->fast_ingress(0xFFFF).tunnel_ready);
}

// Whole bursts through process_burst, the fast path's packets beside the
// general path's: every packet accounted, and the verdict of each fast-path
// boundary the one the general path gives (tx for the one-arm tag, ICMP for
// DF over the MTU, a drop without DF, NO_NEXTHOP, an IPv6 backend, L2 DSR).
TEST(FastPath, MixedBurstVerdicts)
{
    const auto st = make_state();
    Worker w(testing::small_conn_config());
    struct Case {
        const char* what;
        Frame frame;
        uint16_t in_port;
        Action action;
        uint8_t reason;
        uint32_t out_len;  // 0: not checked
    };
    Frame big_df = make_frame(SLUICE_IPPROTO_TCP, kVip, 80, false, 1500 - 40 - 19);
    Frame big = big_df;
    big.set16(big.l3 + 6, 0);
    const std::vector<Case> cases = {
        {"ipip", make_frame(SLUICE_IPPROTO_TCP, kVip, 80), kOneArm, Action::kTx, Verdict::kNoReason, 14 + 20 + 46},
        {"gue", make_frame(SLUICE_IPPROTO_UDP, kVip, 53), kOneArm, Action::kTx, Verdict::kNoReason, 14 + 28 + 34},
        {"one-arm tag kept", make_frame(SLUICE_IPPROTO_TCP, kVip, 80, true), kOneArm, Action::kTx,
         Verdict::kNoReason, 18 + 20 + 46},
        {"df over mtu", big_df, kOneArm, Action::kTx, SLUICE_DROP_MTU_EXCEEDED, 0},
        {"over mtu", big, kOneArm, Action::kDrop, SLUICE_DROP_MTU_EXCEEDED, 0},
        {"no next hop", make_frame(SLUICE_IPPROTO_TCP, kVip, 80), kNoNextHop, Action::kDrop, SLUICE_DROP_NO_NEXTHOP,
         0},
        {"ipv6 backend", make_frame(SLUICE_IPPROTO_TCP, kVipV6Be, 80), kOneArm, Action::kTx, Verdict::kNoReason,
         14 + 40 + 46},
        {"l2 dsr", make_frame(SLUICE_IPPROTO_TCP, kVipDsr, 80), kOneArm, Action::kTx, Verdict::kNoReason, 14 + 46},
        {"wrong port", make_frame(SLUICE_IPPROTO_TCP, kVip, 81), kOneArm, Action::kDrop, SLUICE_DROP_VIP_PORT_MISS, 0},
    };
    std::vector<std::unique_ptr<Buffer>> bufs;
    std::vector<Packet*> pkts;
    for (const Case& c : cases) {
        bufs.push_back(std::make_unique<Buffer>(c.frame.bytes, c.in_port));
        pkts.push_back(&bufs.back()->pkt);
    }
    std::vector<Verdict> out(cases.size());
    process_burst(w, pkts.data(), static_cast<uint16_t>(pkts.size()), *st, 1, out.data());
    for (size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(cases[i].what);
        EXPECT_EQ(out[i].action, cases[i].action);
        EXPECT_EQ(out[i].reason, cases[i].reason);
        if (cases[i].out_len != 0) {
            EXPECT_EQ(pkts[i]->len, cases[i].out_len);
        }
    }
    EXPECT_EQ(w.stats.rx_packets, cases.size());
    EXPECT_EQ(testing::accounted(w.stats), cases.size());
    EXPECT_EQ(w.stats.tx_packets, 5u);
}

}  // namespace
}  // namespace sluice::core
