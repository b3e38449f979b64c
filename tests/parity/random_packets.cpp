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

}  // namespace sluice::testing
