// See random_packets.h.
#include "random_packets.h"

#include <cstring>

extern "C" {
#include "abi/checksum.h"
#include "abi/wire.h"
}

namespace sluice::testing {

namespace {

void put16(std::vector<uint8_t>& b, uint16_t host)
{
    b.push_back(static_cast<uint8_t>(host >> 8));
    b.push_back(static_cast<uint8_t>(host));
}

}  // namespace

RandomPacketSource::RandomPacketSource(const xdp::Description& desc, uint64_t seed) : desc_(desc), rng_(seed) {}

RandomPacket RandomPacketSource::next()
{
    // One packet in ten repeats an earlier flow (its next segment), so the
    // connection table's hit path is compared too.
    if (!replay_.empty() && chance(10)) {
        const size_t i = below(static_cast<uint32_t>(replay_.size()));
        RandomPacket p = replay_[i];
        replay_[i] = replay_.back();
        replay_.pop_back();
        return p;
    }
    // Four in a hundred are ICMP(v6) messages to a VIP about a flow, half
    // of them about one sent before (the error follows its connection).
    if (chance(4)) {
        RandomPacket p;
        p.in_port = chance(80) ? 0 : 1;
        if (!replay_.empty() && chance(50)) {
            p.frame = icmp_error_about(replay_[below(static_cast<uint32_t>(replay_.size()))].frame);
        } else {
            p.frame = icmp_error_about(build(desc_.vips[below(static_cast<uint32_t>(desc_.vips.size()))], false, false));
        }
        return p;
    }
    const xdp::VipSpec& vip = desc_.vips[below(static_cast<uint32_t>(desc_.vips.size()))];
    RandomPacket p;
    p.in_port = chance(80) ? 0 : 1;  // port 1 is the two-arm client side
    p.frame = build(vip, chance(3), chance(2));
    if (chance(10) && replay_.size() < 4096) replay_.push_back(p);
    return p;
}

std::vector<uint8_t> RandomPacketSource::build(const xdp::VipSpec& vip, bool other_proto, bool not_vip)
{
    const bool v4 = vip.key.family == SLUICE_FAMILY_IPV4;
    uint8_t proto = vip.key.proto;
    if (other_proto) proto = proto == SLUICE_IPPROTO_TCP ? SLUICE_IPPROTO_UDP : SLUICE_IPPROTO_TCP;
    const bool tcp = proto == SLUICE_IPPROTO_TCP;
    const bool fragment = chance(3);
    const bool first_fragment = fragment && chance(50);

    // L4: header, options for TCP, payload. Sizes reach past a 1500 MTU.
    std::vector<uint8_t> l4;
    const uint16_t sport = static_cast<uint16_t>(rng_());
    const uint16_t dport = vip.key.port != 0 ? __builtin_bswap16(vip.key.port) : static_cast<uint16_t>(rng_());
    const uint32_t payload = chance(75) ? below(200) : below(1500);
    put16(l4, sport);
    put16(l4, dport);
    if (tcp) {
        for (int i = 0; i < 8; ++i) l4.push_back(static_cast<uint8_t>(rng_()));  // seq, ack
        const uint32_t opt_words = chance(30) ? 1 + below(3) : 0;
        l4.push_back(static_cast<uint8_t>((5 + opt_words) << 4));
        static const uint8_t kFlags[] = {SLUICE_TCP_SYN, SLUICE_TCP_ACK, SLUICE_TCP_ACK | SLUICE_TCP_PSH,
                                         SLUICE_TCP_FIN | SLUICE_TCP_ACK, SLUICE_TCP_RST, SLUICE_TCP_SYN | SLUICE_TCP_ACK};
        l4.push_back(kFlags[below(sizeof(kFlags))]);
        put16(l4, static_cast<uint16_t>(rng_()));  // window
        put16(l4, static_cast<uint16_t>(rng_()));  // checksum (nobody checks it)
        put16(l4, 0);
        for (uint32_t i = 0; i < opt_words * 4; ++i) l4.push_back(1);  // NOPs
    } else {
        put16(l4, static_cast<uint16_t>(8 + payload));
        put16(l4, static_cast<uint16_t>(rng_()));
    }
    for (uint32_t i = 0; i < payload; ++i) l4.push_back(static_cast<uint8_t>(rng_()));
    if (fragment && !first_fragment) {
        // A later fragment: no L4 header at all, just bytes.
        l4.resize(8 * (1 + below(100)));
        for (auto& b : l4) b = static_cast<uint8_t>(rng_());
    }

    std::vector<uint8_t> f;
    const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x10};
    f.insert(f.end(), dst_mac, dst_mac + 6);
    const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0xc1, static_cast<uint8_t>(rng_())};
    f.insert(f.end(), src_mac, src_mac + 6);
    if (chance(10)) {
        put16(f, SLUICE_ETH_P_VLAN);
        put16(f, static_cast<uint16_t>(rng_() & 0xEFFF));
    }
    const size_t l3 = f.size() + 2;
    if (v4) {
        put16(f, SLUICE_ETH_P_IPV4);
        const uint32_t opt_words = chance(5) ? 1 + below(10) : 0;
        const uint16_t total = static_cast<uint16_t>(20 + opt_words * 4 + l4.size());
        f.push_back(static_cast<uint8_t>(0x45 + opt_words));
        f.push_back(static_cast<uint8_t>(rng_()));  // TOS
        put16(f, total);
        put16(f, static_cast<uint16_t>(rng_()));  // ID
        uint16_t frag = chance(70) ? SLUICE_IPV4_DF : 0;
        if (fragment) frag = static_cast<uint16_t>(first_fragment ? SLUICE_IPV4_MF : (SLUICE_IPV4_MF * chance(50)) | (1 + below(100)));
        put16(f, frag);
        f.push_back(static_cast<uint8_t>(1 + below(255)));  // TTL
        f.push_back(proto);
        put16(f, 0);
        uint32_t src = static_cast<uint32_t>(rng_());
        for (int i = 0; i < 4; ++i) f.push_back(static_cast<uint8_t>(src >> (24 - 8 * i)));
        sluice_addr dst = vip.key.addr;
        if (not_vip) dst.bytes[3] ^= 0x5a;
        f.insert(f.end(), dst.bytes, dst.bytes + 4);
        for (uint32_t i = 0; i < opt_words * 4; ++i) f.push_back(1);
        const __sum16 c = sluice_ipv4_hdr_csum(f.data() + l3, 20 + opt_words * 4);
        std::memcpy(f.data() + l3 + 10, &c, 2);
    } else {
        put16(f, SLUICE_ETH_P_IPV6);
        std::vector<uint8_t> ext;
        uint8_t first = proto;
        if (chance(5)) {  // destination options, 8 or 16 bytes
            const uint8_t len = static_cast<uint8_t>(below(2));
            ext.push_back(proto);
            ext.push_back(len);
            ext.resize(8 * (len + 1), 1);
            first = SLUICE_IPPROTO_DSTOPTS;
        }
        if (fragment) {
            const uint8_t inner_next = first;
            std::vector<uint8_t> fh = {inner_next, 0};
            const uint16_t off = first_fragment ? 1 : static_cast<uint16_t>(((1 + below(100)) << 3) | (chance(50) ? 1 : 0));
            put16(fh, off);
            for (int i = 0; i < 4; ++i) fh.push_back(static_cast<uint8_t>(rng_()));
            ext.insert(ext.begin(), fh.begin(), fh.end());
            first = SLUICE_IPPROTO_FRAGMENT;
        }
        const uint32_t vtf = (6u << 28) | (static_cast<uint32_t>(rng_()) & 0x0FFFFFFFu);
        for (int i = 0; i < 4; ++i) f.push_back(static_cast<uint8_t>(vtf >> (24 - 8 * i)));
        put16(f, static_cast<uint16_t>(ext.size() + l4.size()));
        f.push_back(first);
        f.push_back(static_cast<uint8_t>(rng_()));  // hop limit (255 + ICMPv6 never happens here)
        for (int i = 0; i < 16; ++i) f.push_back(static_cast<uint8_t>(i < 2 ? (i == 0 ? 0x20 : 0x01) : rng_()));
        sluice_addr dst = vip.key.addr;
        if (not_vip) dst.bytes[15] ^= 0x5a;
        f.insert(f.end(), dst.bytes, dst.bytes + 16);
        f.insert(f.end(), ext.begin(), ext.end());
    }
    f.insert(f.end(), l4.begin(), l4.end());
    if (f.size() < 60 || chance(5)) f.resize(std::max<size_t>(60, f.size() + (chance(50) ? below(8) : 0)), 0);
    return f;
}

// An ICMP(v6) message from a router to the VIP quoting the reply the
// backend sent for `client_frame`'s flow (VIP → client, ports swapped).
std::vector<uint8_t> RandomPacketSource::icmp_error_about(const std::vector<uint8_t>& client_frame)
{
    const size_t l3 = client_frame[12] == 0x81 ? 18 : 14;
    const bool v4 = client_frame[l3 - 2] == 0x08;
    std::vector<uint8_t> quote;
    if (v4) {
        const size_t ihl = (client_frame[l3] & 0x0F) * 4u;
        quote.assign(client_frame.begin() + static_cast<long>(l3), client_frame.begin() + static_cast<long>(l3 + 20));
        quote[0] = 0x45;
        std::memcpy(quote.data() + 12, client_frame.data() + l3 + 16, 4);  // VIP
        std::memcpy(quote.data() + 16, client_frame.data() + l3 + 12, 4);  // client
        const uint8_t* ports = client_frame.data() + l3 + ihl;
        const uint8_t l4[4] = {ports[2], ports[3], ports[0], ports[1]};
        quote.insert(quote.end(), l4, l4 + 4);
    } else {
        quote.assign(client_frame.begin() + static_cast<long>(l3), client_frame.begin() + static_cast<long>(l3 + 40));
        std::memcpy(quote.data() + 8, client_frame.data() + l3 + 24, 16);
        std::memcpy(quote.data() + 24, client_frame.data() + l3 + 8, 16);
        const uint8_t* ports = client_frame.data() + l3 + 40;
        const uint8_t l4[4] = {ports[2], ports[3], ports[0], ports[1]};
        quote.insert(quote.end(), l4, l4 + 4);
    }
    // The rest of the quoted L4 header, sometimes cut short (malformed),
    // sometimes long enough to overflow the MTU once encapsulated.
    const uint32_t extra = chance(5) ? below(4) : chance(10) ? 1400 + below(100) : 4 + below(60);
    for (uint32_t i = 0; i < extra; ++i) quote.push_back(static_cast<uint8_t>(rng_()));

    // Same L2 as the client's frame (our MAC, its VLAN tag), from a router.
    std::vector<uint8_t> f(client_frame.begin(), client_frame.begin() + static_cast<long>(l3));
    const uint8_t router_mac[6] = {0x02, 0, 0, 0, 0xee, 0x01};
    std::memcpy(f.data() + 6, router_mac, 6);
    static const uint8_t kTypes4[] = {SLUICE_ICMP_DEST_UNREACH, SLUICE_ICMP_TIME_EXCEEDED, SLUICE_ICMP_ECHO_REQUEST};
    static const uint8_t kTypes6[] = {SLUICE_ICMPV6_DEST_UNREACH, SLUICE_ICMPV6_PKT_TOOBIG, SLUICE_ICMPV6_TIME_EXCEED,
                                      SLUICE_ICMPV6_ECHO_REQUEST};
    const uint8_t icmp[8] = {v4 ? kTypes4[below(3)] : kTypes6[below(4)], static_cast<uint8_t>(below(5)), 0, 0,
                             0, 0, 0x05, 0x78};
    if (v4) {
        const uint16_t total = static_cast<uint16_t>(20 + 8 + quote.size());
        const uint8_t ip[20] = {0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total),
                                static_cast<uint8_t>(rng_()), 1, 0x40, 0, 64, SLUICE_IPPROTO_ICMP, 0, 0,
                                198, 18, 0, static_cast<uint8_t>(rng_()), 0, 0, 0, 0};
        const size_t at = f.size();
        f.insert(f.end(), ip, ip + 20);
        std::memcpy(f.data() + at + 16, quote.data() + 12, 4);  // to the VIP
        const __sum16 c = sluice_ipv4_hdr_csum(f.data() + at, 20);
        std::memcpy(f.data() + at + 10, &c, 2);
    } else {
        const uint16_t plen = static_cast<uint16_t>(8 + quote.size());
        const uint8_t ip[8] = {0x60, 0, 0, 0, static_cast<uint8_t>(plen >> 8), static_cast<uint8_t>(plen),
                               SLUICE_IPPROTO_ICMPV6, 64};
        f.insert(f.end(), ip, ip + 8);
        uint8_t router[16] = {0x20, 0x01, 0x0d, 0xb8, 0xee};
        router[15] = static_cast<uint8_t>(rng_());
        f.insert(f.end(), router, router + 16);
        f.insert(f.end(), quote.begin() + 8, quote.begin() + 24);  // to the VIP
    }
    f.insert(f.end(), icmp, icmp + 8);
    f.insert(f.end(), quote.begin(), quote.end());
    if (f.size() < 60) f.resize(60, 0);
    return f;
}

}  // namespace sluice::testing
