// Packets the benchmarks generate: 60-byte Ethernet/IPv4/TCP frames (64
// bytes on the wire with the FCS) toward one VIP, with the flow number
// spread over client address and port.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" {
#include "abi/wire.h"
}

namespace sluice::bench {

inline constexpr uint32_t kVip = 0x0a640001;      // 10.100.0.1
inline constexpr uint16_t kVipPort = 80;
inline constexpr uint16_t kFrameLen = 60;

inline constexpr size_t kIpOffset = sizeof(sluice_eth_hdr);
inline constexpr size_t kTcpOffset = kIpOffset + sizeof(sluice_ipv4_hdr);

// The frame without its per-flow fields, built once. Headers are built
// aside and copied: in a frame the IP header is only 2-byte aligned.
inline const std::array<uint8_t, kFrameLen>& frame_template()
{
    static const std::array<uint8_t, kFrameLen> frame = [] {
        std::array<uint8_t, kFrameLen> f{};
        sluice_eth_hdr eth{};
        const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01};
        const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x02};
        std::memcpy(eth.dst, dst, 6);
        std::memcpy(eth.src, src, 6);
        eth.ethertype = SLUICE_HTONS(SLUICE_ETH_P_IPV4);
        sluice_ipv4_hdr ip{};
        ip.version_ihl = SLUICE_IPV4_VERSION_IHL(5);
        ip.total_len = SLUICE_HTONS(kFrameLen - sizeof(sluice_eth_hdr));
        ip.ttl = 64;
        ip.protocol = SLUICE_IPPROTO_TCP;
        ip.frag_off = SLUICE_HTONS(SLUICE_IPV4_DF);
        ip.daddr = SLUICE_HTONL(kVip);
        sluice_tcp_hdr tcp{};
        tcp.dport = SLUICE_HTONS(kVipPort);
        tcp.doff_res = 5 << 4;
        std::memcpy(f.data(), &eth, sizeof(eth));
        std::memcpy(f.data() + kIpOffset, &ip, sizeof(ip));
        std::memcpy(f.data() + kTcpOffset, &tcp, sizeof(tcp));
        return f;
    }();
    return frame;
}

// Writes flow `flow` (0 = the same flow every time) into `m`: a SYN when
// `syn`, else an ACK.
inline void write_tcp_packet(rte_mbuf* m, uint64_t flow, bool syn)
{
    auto* p = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(p, frame_template().data(), kFrameLen);
    // 64512 ports per client address, 2^24 addresses: a billion distinct flows.
    const uint32_t saddr = SLUICE_HTONL(0x0b000000u | static_cast<uint32_t>((flow / 64512) & 0xffffff));
    const uint16_t sport = SLUICE_HTONS(static_cast<uint16_t>(1024 + flow % 64512));
    const uint8_t flags = syn ? SLUICE_TCP_SYN : SLUICE_TCP_ACK;
    std::memcpy(p + kIpOffset + offsetof(sluice_ipv4_hdr, saddr), &saddr, sizeof(saddr));
    std::memcpy(p + kTcpOffset + offsetof(sluice_tcp_hdr, sport), &sport, sizeof(sport));
    std::memcpy(p + kTcpOffset + offsetof(sluice_tcp_hdr, flags), &flags, sizeof(flags));
    m->data_len = kFrameLen;
    m->pkt_len = kFrameLen;
}

}  // namespace sluice::bench
