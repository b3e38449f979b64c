// The per-packet pipeline behind process_burst(); see pipeline.h. A header
// because process_burst() is a template on its filter policy
// (core/filter_hook.h): each plane instantiates it with its own filter.
// Each step either hands the packet on or returns its one verdict, and the
// burst loop counts that verdict, so no path can leave a packet uncounted.
#pragma once

#include "core/encap.h"
#include "core/fast_mod.h"
#include "core/fast_path.h"
#include "core/filter_hook.h"
#include "core/icmp.h"
#include "core/parse.h"
#include "core/pipeline.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::core {
namespace pipeline_detail {


SLUICE_ALWAYS_INLINE Verdict not_for_vip(const ForwardingState& st)
{
    return st.exception_path_enabled() ? Verdict::exception() : Verdict::drop(SLUICE_DROP_NOT_FOR_VIP);
}

SLUICE_ALWAYS_INLINE bool mac_is_zero(const uint8_t* mac)
{
    return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

SLUICE_ALWAYS_INLINE Verdict parse_drop(const ParseResult& r)
{
    return Verdict::drop(static_cast<sluice_drop_reason>(r.reason));
}

// Finds the service for a parsed VIP packet and fills pp.key. Returns
// nullptr with `v` set when the packet ends here.
SLUICE_ALWAYS_INLINE const VipRuntime* classify(const uint8_t* data, ParsedPacket& pp, const ForwardingState& st,
                                                Verdict& v)
{
    if (pp.family == SLUICE_FAMILY_IPV6) {
        Ipv6Walk w;
        const ParseResult r = walk_ipv6_exthdrs(data, pp.l4_offset, pp.l3_offset + pp.l3_len, pp.l4_proto, w);
        if (r.kind != ParseResult::kOk) {
            v = parse_drop(r);
            return nullptr;
        }
        pp.l4_offset = static_cast<uint16_t>(w.offset);
        pp.l4_proto = w.proto;
        pp.fragment = w.fragment;
    }

    const bool tcp_udp = pp.l4_proto == SLUICE_IPPROTO_TCP || pp.l4_proto == SLUICE_IPPROTO_UDP;
    if (pp.fragment) {
        // Fragments are steered by (client, VIP, protocol) with ports zero,
        // first fragment or not, so all fragments of a datagram meet at one
        // backend that can reassemble them. Trade-off: every fragmented
        // datagram of one client→VIP pair lands on the same backend
        // whatever its ports, and fragments never enter the connection
        // table (a first fragment's ports would pin a flow the later ones
        // cannot find). The service is the address's port-0 service, else
        // its only one of that protocol; several without a port-0 one are
        // ambiguous and dropped.
        if (!tcp_udp) {
            v = Verdict::drop(SLUICE_DROP_FRAGMENT_UNSUPPORTED);
            return nullptr;
        }
        set_fragment_key(pp);
        bool ambiguous = false;
        const VipRuntime* vip = st.find_fragment_service(pp.key, ambiguous);
        if (vip == nullptr)
            v = Verdict::drop(ambiguous ? SLUICE_DROP_FRAGMENT_UNSUPPORTED : SLUICE_DROP_VIP_PORT_MISS);
        return vip;
    }

    ParseResult r;
    if (tcp_udp) {
        r = parse_tcp_udp(data, pp);
    } else if ((pp.family == SLUICE_FAMILY_IPV4 && pp.l4_proto == SLUICE_IPPROTO_ICMP) ||
               (pp.family == SLUICE_FAMILY_IPV6 && pp.l4_proto == SLUICE_IPPROTO_ICMPV6)) {
        // Echo requests and other non-errors are dropped (ICMP_NOT_ERROR):
        // answering pings for the VIP would be a separate responder.
        r = parse_icmp_error(data, pp);
    } else {
        v = Verdict::drop(SLUICE_DROP_UNSUPPORTED_L4);
        return nullptr;
    }
    if (r.kind != ParseResult::kOk) {
        v = parse_drop(r);
        return nullptr;
    }
    const VipRuntime* vip;
    if (pp.fragment) {  // an ICMP error quoting a fragment follows the fragments
        bool ambiguous = false;
        vip = st.find_fragment_service(pp.key, ambiguous);
    } else {
        vip = st.find_service(pp.key);
    }
    if (vip == nullptr) v = Verdict::drop(SLUICE_DROP_VIP_PORT_MISS);
    return vip;
}

// The oversized packet's fate: an ICMP error back to the client when it
// asked for PMTU discovery (IPv4 DF, or any IPv6), else a counted drop.
// IPv4 without DF is not fragmented: the XDP plane cannot fragment, parity
// requires the same bytes from both, and backends would have to reassemble;
// senders without DF are rare and their traffic is counted as MTU_EXCEEDED.
// Never an error about an ICMP error (RFC 1122 §3.2.2). The packet is one
// MTU_EXCEEDED drop whatever happens to the error; the error itself is
// counted icmp_sent when built, icmp_rate_limited when the worker's bucket
// (core/icmp_limit.h) was empty. The same order on the XDP plane
// (ebpf/xdp_lb.bpf.c): the checks that send nothing spend no token.
// Out of line and cold: inlined, its bucket and builders cost the common
// packet about one instruction (register allocation of the whole loop, by
// callgrind) for a path the common packet never takes.
[[gnu::noinline, gnu::cold]] inline Verdict mtu_exceeded(Worker& w, Packet& pkt, const ParsedPacket& pp,
                                                         const PortConfig& in_port, uint32_t reported_mtu,
                                                         const ForwardingState& st, uint64_t now)
{
    if (pp.icmp_error || (pp.family == SLUICE_FAMILY_IPV4 && !pp.ipv4_df))
        return Verdict::drop(SLUICE_DROP_MTU_EXCEEDED);
    // An IPv6 host never lowers its path MTU below 1280 (RFC 8200 §5, RFC
    // 8201 §4): a "packet too big" reporting less changes nothing for it, so
    // none is sent. Only the operator can fix such a port (the control plane
    // warns when it publishes one; docs/operations.md).
    if (pp.family == SLUICE_FAMILY_IPV6 && reported_mtu < kIcmpV6MinMtu)
        return Verdict::drop(SLUICE_DROP_MTU_EXCEEDED);
    if (!w.icmp_limiter.take(st.icmp_error_limit(), now)) {
        w.stats.icmp_rate_limited++;
        return Verdict::drop(SLUICE_DROP_MTU_EXCEEDED);
    }
    const bool built = pp.family == SLUICE_FAMILY_IPV4
                           ? build_icmp4_frag_needed(pkt, pp, in_port.mac, reported_mtu)
                           : build_icmp6_packet_too_big(pkt, pp, in_port.mac, reported_mtu);
    if (!built) return Verdict::drop(SLUICE_DROP_MTU_EXCEEDED);
    return Verdict::icmp_reply(pkt.in_port, SLUICE_DROP_MTU_EXCEEDED);
}

// The L4 payload the payload rules scan: after the TCP header (data offset)
// to the end of the IP packet, or the UDP datagram after its header (by the
// UDP length, which parse_tcp_udp() checked). Fragments and ICMP errors
// carry no payload for the filters (their ports, or their flow, are not
// this packet's own L4 header).
SLUICE_ALWAYS_INLINE void l4_payload(const uint8_t* data, const ParsedPacket& pp, FilterQuery& q)
{
    q.payload = nullptr;
    q.payload_len = 0;
    if (pp.fragment || pp.icmp_error) return;
    const uint8_t* l4 = data + pp.l4_offset;
    uint32_t header, end;
    if (pp.l4_proto == SLUICE_IPPROTO_TCP) {
        header = (l4[12] >> 4) * 4u;
        end = pp.l3_offset + pp.l3_len - pp.l4_offset;
    } else {
        header = kUdpHdrLen;
        end = ntoh16(load<uint16_t>(l4 + 4));
    }
    q.payload = l4 + header;
    q.payload_len = end - header;
}

// What pass 1 of the burst learns about a packet that reached a service,
// for pass 2.
struct Classified {
    ParsedPacket pp;
    const VipRuntime* vip;  // nullptr: the packet ended in pass 1 (its verdict is written)
    uint32_t hash;          // sluice_flow_hash(&pp.key)
    FastTuple tuple;        // fast: its 5-tuple; else ports = kNone (no packet's)
    bool fast;              // classify_fast() took it: IPv4, unfragmented, TCP/UDP, no ICMP error
    bool repeat;            // fast, and so was the packet just before it in the chunk, same 5-tuple
};

// Pass 2's memo of the packet just before (see forward_classified): set
// (outer != nullptr) only when that packet was a repeatable
// connection-table hit (a lookup for its key would hit again and change
// nothing) forwarded by the fast tunnel to `backend_id`, whose outer header
// is `outer`.
struct ConnMemo {
    const FastOuterV4* outer = nullptr;
    uint32_t backend_id = 0;
};

// Per-chunk counters kept in registers and added to the worker's once per
// chunk: stores into packet bytes (uint8_t*) may alias anything, so a
// counter in memory would be reloaded and stored again for every packet.
struct ChunkCounters {
    uint64_t conn_hits = 0;
    uint64_t conn_misses = 0;
    uint64_t conn_evictions = 0;
};

// Both halves of pass 1 after the service is known: the hashing flag and
// the flow hash.
SLUICE_ALWAYS_INLINE void finish_classified(const VipRuntime* vip, Classified& c)
{
    if ((vip->meta.flags & SLUICE_VIP_F_HASH_NO_SPORT) != 0) c.pp.key.sport = 0;
    c.vip = vip;
    c.hash = sluice_flow_hash(&c.pp.key);
}

// Pass 1: parse and classify, up to the flow hash. Reads the packet and the
// snapshot only, so running it for a whole burst before pass 2 changes no
// verdict. Returns false with `v` set when the packet ends here.
SLUICE_ALWAYS_INLINE bool classify_packet(const Packet& pkt, const ForwardingState& st, Classified& c, Verdict& v)
{
    ParsedPacket& pp = c.pp;
    pp.icmp_error = false;
    ParseResult r = parse_l2(pkt.data, pkt.len, pp);
    if (r.kind == ParseResult::kArp) {
        v = Verdict::control();
        return false;
    }
    if (r.kind == ParseResult::kNotIp) {
        v = not_for_vip(st);
        return false;
    }
    if (r.kind == ParseResult::kDrop) {
        v = parse_drop(r);
        return false;
    }
    r = pp.family == SLUICE_FAMILY_IPV4 ? parse_ipv4(pkt.data, pkt.len, pp) : parse_ipv6(pkt.data, pkt.len, pp);
    if (r.kind == ParseResult::kDrop) {
        v = parse_drop(r);
        return false;
    }
    // Before the VIP check: a unicast NS for a VIP (neighbour unreachability
    // detection) is addressed to the VIP itself.
    if (pp.family == SLUICE_FAMILY_IPV6 && is_neighbor_discovery(pkt.data, pp)) {
        v = Verdict::control();
        return false;
    }

    // One VIP-table probe for the common packet: the service lookup comes
    // first, and the address-only check runs only when it did not settle
    // the packet. This gives the same verdicts as checking the address
    // first: the parse steps in classify() only read the packet, every
    // service and fragment entry's address also has an address entry (the
    // builder inserts both), and a service or fragment hit is keyed on
    // pp.dst, except for ICMP errors, keyed on the embedded flow's address,
    // whose outer destination is therefore still checked.
    v = Verdict::drop(SLUICE_DROP_INTERNAL);
    const VipRuntime* vip = classify(pkt.data, pp, st, v);
    if (SLUICE_UNLIKELY(vip == nullptr || pp.icmp_error)) {
        if (!st.is_vip_address(pp.family, pp.dst)) {
            v = not_for_vip(st);
            return false;
        }
        if (vip == nullptr) return false;
    }
    c.fast = false;
    finish_classified(vip, c);
    return true;
}

// Pass 1 for one packet: the fast path's classification, else the general
// one (classify_fast() wrote nothing when it declined). `prev` is the
// packet just before in the chunk, or a sentinel whose tuple is no
// packet's: a fast packet of its 5-tuple takes its service and flow hash (a
// function of the key, which the 5-tuple and the service's flags make the
// same).
// kDetect false: no repeats are looked for (c.repeat false, c.tuple unset).
template <bool kDetect>
SLUICE_ALWAYS_INLINE bool classify_any(const Packet& pkt, const ForwardingState& st, Classified& c, Verdict& v,
                                       const Classified& prev)
{
    if constexpr (!kDetect) {
        c.repeat = false;
        if (const VipRuntime* vip = classify_fast(pkt, st, c.pp); SLUICE_LIKELY(vip != nullptr)) {
            c.fast = true;
            finish_classified(vip, c);
            return true;
        }
        return classify_packet(pkt, st, c, v);
    }
    bool repeat = false;
    if (const VipRuntime* vip = classify_fast(pkt, st, c.pp, prev.tuple, prev.vip, c.tuple, repeat);
        SLUICE_LIKELY(vip != nullptr)) {
        if ((vip->meta.flags & SLUICE_VIP_F_HASH_NO_SPORT) != 0) c.pp.key.sport = 0;
        c.vip = vip;
        c.fast = true;
        c.repeat = repeat;
        c.hash = repeat ? prev.hash : sluice_flow_hash(&c.pp.key);
        return true;
    }
    c.tuple.ports = FastTuple::kNone;  // the next packet's "just before" is not a fast one
    c.repeat = false;
    return classify_packet(pkt, st, c, v);
}

// Pass 2: filters, connection table or Maglev, and the rewrite, for a
// packet classify_any() kept. kMemo: the chunk has a repeat, so the flow
// memo is kept and used (without, none of its code is there).
template <bool kMemo, class Filter>
SLUICE_ALWAYS_INLINE Verdict forward_classified(Worker& w, Packet& pkt, Classified& c, const ForwardingState& st,
                                                uint64_t now, Filter& filter, ChunkCounters& cc, ConnMemo& memo)
{
    ParsedPacket& pp = c.pp;
    const VipRuntime* const vip = c.vip;
    const uint32_t hash = c.hash;

    // Counted before the filters: what reached the VIP, dropped or not.
    sluice_counter& vc = w.vip_counters[vip->meta.vip_id];
    vc.packets++;
    vc.bytes += pkt.len;

    // The filters' view of the packet; new_flow is filled in where it is known.
    FilterQuery fq;
    uint8_t filtered = kFilterPass;
    if constexpr (Filter::kEnabled) {
        fq.src = &pp.src;
        fq.vip_id = static_cast<uint16_t>(vip->meta.vip_id);
        fq.family = pp.family;
        fq.new_flow = 0;
        l4_payload(pkt.data, pp, fq);
    }

    auto pick = [&] { return vip->ring[fastmod(hash, vip->ring_reciprocal, vip->meta.ring_size)]; };
    auto valid_backend = [&](uint32_t id) -> const sluice_backend* {
        const sluice_backend* b = st.backend(id);
        return b != nullptr && (b->flags & SLUICE_BACKEND_F_VALID) != 0 ? b : nullptr;
    };
    auto is_valid = [&](uint32_t id) { return valid_backend(id) != nullptr; };
    // A pure SYN opens a new connection: on a 5-tuple whose live entry names
    // a draining backend it is picked again (port reuse, or a SYN
    // retransmitted across a drain), since a draining backend takes no new
    // flows. Any other packet keeps its draining backend.
    const bool opening = (pp.tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN;
    auto keeps = [&](uint32_t id) {
        const sluice_backend* b = valid_backend(id);
        return b != nullptr && (!opening || (b->flags & SLUICE_BACKEND_F_DRAINING) == 0);
    };
    // The flow memo. Packet i may skip the connection-table lookup and use
    // what packet i-1 of the same chunk got exactly when:
    //   - i and i-1 are fast-path packets of the same 5-tuple (c.repeat),
    //     hence the same service, key and hash, in the same snapshot and
    //     at the same `now` (one per burst);
    //   - i-1's lookup (or memo use) was admitted, hit a live entry with a
    //     valid backend, and that entry is repeatable (LookupResult), and
    //     i-1 then went out by the fast tunnel (memo.outer; i-1 cleared it
    //     otherwise, and nothing else touches the table between the two);
    //   - i carries none of SYN, FIN, RST (UDP: no flags): so it is not
    //     `opening`, keeps() is plain validity, still true for the same
    //     backend in the same snapshot, and touch() would change nothing.
    // Then a lookup would return the same backend as a hit and leave the
    // table as it is, so only what the lookup's caller does is repeated:
    // the filters' admit(false) (a refusal drops the packet and writes
    // nothing, as in lookup_or_insert) and the hit counter.
    const FastOuterV4* const memo_outer = kMemo ? memo.outer : nullptr;
    const bool reuse = kMemo && c.repeat && memo_outer != nullptr &&
                       (pp.tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_FIN | SLUICE_TCP_RST)) == 0;
    if constexpr (kMemo) memo.outer = nullptr;
    if (reuse) {
        if constexpr (Filter::kEnabled) {
            filtered = filter.check(fq);
            if (filtered != kFilterPass) return Verdict::drop(static_cast<sluice_drop_reason>(filtered));
        }
        cc.conn_hits++;
        // i-1's backend, valid IPv4, and mode (same service) went by the
        // fast tunnel; the ingress port and this packet's size are its own.
        const FastIngress& fi = st.fast_ingress(pkt.in_port);
        if (fi.tunnel_ready) {
            const Encap mode = static_cast<Encap>(vip->meta.forwarding);
            const bool sent = mode == Encap::kIpip
                                  ? tunnel_fast_v4<Encap::kIpip>(pkt, pp, fi, *memo_outer, hash, vip->meta.gue_dport)
                                  : tunnel_fast_v4<Encap::kGue>(pkt, pp, fi, *memo_outer, hash, vip->meta.gue_dport);
            if (SLUICE_LIKELY(sent)) {
                sluice_counter& bc = w.backend_counters[memo.backend_id];
                bc.packets++;
                bc.bytes += pkt.len;
                if constexpr (kMemo) memo.outer = memo_outer;
                return Verdict::tx(fi.egress_port);
            }
        }
    }

    uint32_t backend_id;
    bool repeatable = false;
    if (reuse) {
        backend_id = memo.backend_id;  // the general path decides (MTU, headroom, ingress not ready)
    } else if (pp.fragment || pp.icmp_error) {
        // Never a new flow: neither fragments nor ICMP errors make entries.
        if constexpr (Filter::kEnabled) {
            filtered = filter.check(fq);
            if (filtered != kFilterPass) return Verdict::drop(static_cast<sluice_drop_reason>(filtered));
        }
        if (pp.fragment) {
            backend_id = pick();
        } else {
            backend_id = w.conns.lookup(pp.key, hash, now, is_valid);
            if (backend_id == SLUICE_BACKEND_NONE) backend_id = pick();
        }
    } else {
        // The filters run inside the lookup, once it is known whether the
        // packet would write an entry and before it does: a packet a filter
        // drops leaves no entry behind and refreshes none.
        auto admit = [&](bool new_flow) {
            if constexpr (Filter::kEnabled) {
                fq.new_flow = new_flow ? 1 : 0;
                filtered = filter.check(fq);
                return filtered == kFilterPass;
            } else {
                (void)new_flow;
                return true;
            }
        };
        const ConnectionTable::LookupResult lr =
            w.conns.lookup_or_insert(pp.key, hash, now, pp.tcp_flags, keeps, pick, admit);
        if (!lr.admitted) return Verdict::drop(static_cast<sluice_drop_reason>(filtered));
        backend_id = lr.backend_id;
        repeatable = lr.repeatable;
        if (SLUICE_LIKELY(lr.hit)) {
            cc.conn_hits++;
        } else {
            cc.conn_misses++;
            cc.conn_evictions += lr.evicted;  // only a miss evicts
        }
    }
    const sluice_backend* const chosen = valid_backend(backend_id);  // NONE is out of range: null
    if (chosen == nullptr) return Verdict::drop(SLUICE_DROP_NO_BACKEND);
    const sluice_backend& be = *chosen;

    const Encap mode = static_cast<Encap>(vip->meta.forwarding);
    if (c.fast && mode != Encap::kL2Dsr && be.family == SLUICE_FAMILY_IPV4) {
        // The fast path's tunnel: the same bytes and verdict as the general
        // code below, which takes the packet when it declines.
        const FastIngress& fi = st.fast_ingress(pkt.in_port);
        if (fi.tunnel_ready) {
            const FastOuterV4& o = st.fast_outer_v4(backend_id);
            const bool sent = mode == Encap::kIpip
                                  ? tunnel_fast_v4<Encap::kIpip>(pkt, pp, fi, o, hash, vip->meta.gue_dport)
                                  : tunnel_fast_v4<Encap::kGue>(pkt, pp, fi, o, hash, vip->meta.gue_dport);
            if (SLUICE_LIKELY(sent)) {
                sluice_counter& bc = w.backend_counters[backend_id];
                bc.packets++;
                bc.bytes += pkt.len;
                if constexpr (kMemo) {
                    memo.outer = repeatable ? &o : nullptr;
                    memo.backend_id = backend_id;
                }
                return Verdict::tx(fi.egress_port);
            }
        }
    }

    const PortConfig* in_port = st.port(pkt.in_port);
    if (in_port == nullptr) return Verdict::drop(SLUICE_DROP_INTERNAL);  // runtime polls an unconfigured port
    const PortConfig& eg = *st.port(in_port->egress_port);  // builder checked it exists

    const uint8_t outer = mode == Encap::kL2Dsr ? pp.family : be.family;
    EncapParams ep;
    ep.src_mac = eg.mac;
    ep.dst_mac = mode == Encap::kL2Dsr ? be.mac : eg.nexthop_mac;
    ep.outer_src = &st.local_addr(be.family);
    ep.outer_dst = &be.addr;
    ep.flow_hash = hash;
    ep.gue_dport = vip->meta.gue_dport;
    ep.mtu = eg.mtu;
    // One-arm: the tag names the segment the backends share with the
    // clients' router, so it stays. Two-arm: it meant something only on the
    // ingress link, so it goes.
    ep.keep_vlan = pp.has_vlan && in_port->egress_port == pkt.in_port;
    if (mac_is_zero(ep.dst_mac)) return Verdict::drop(SLUICE_DROP_NO_NEXTHOP);

    switch (forward_packet(mode, outer, pkt, pp, ep)) {
    case EncapStatus::kOk: {
        sluice_counter& bc = w.backend_counters[backend_id];
        bc.packets++;
        bc.bytes += pkt.len;
        return Verdict::tx(in_port->egress_port);
    }
    case EncapStatus::kNoHeadroom:
        return Verdict::drop(SLUICE_DROP_NO_HEADROOM);
    case EncapStatus::kMtuExceeded:
        return mtu_exceeded(w, pkt, pp, *in_port, eg.mtu - encap_overhead(mode, outer), st, now);
    }
    return Verdict::drop(SLUICE_DROP_INTERNAL);
}

// Pass 2 over a chunk, and its counters. kMemo: see forward_classified.
template <bool kMemo, class Filter>
SLUICE_ALWAYS_INLINE void forward_chunk(Worker& w, Packet* pkts[], uint16_t n, Classified c[],
                                        const ForwardingState& st, uint64_t now, Verdict out[], Filter& filter)
{
    sluice_stats& s = w.stats;
    // rx and tx in registers, added once per chunk (see ChunkCounters),
    // after the chunk's work: a reader of the counters, racy anyway, sees rx
    // move when packets are done, never ahead of them (republish_test
    // relies on it), at most a chunk late.
    ChunkCounters cc;
    ConnMemo conn_memo;
    uint64_t rx_bytes = 0;
    uint64_t tx_packets = 0;
    uint64_t tx_bytes = 0;
    for (uint16_t i = 0; i < n; ++i) {
        Packet& pkt = *pkts[i];
        rx_bytes += pkt.len;  // before the rewrite changes it
        // The verdict from registers: written to out[i] field by field and
        // read back whole, it would wait for store forwarding, which cannot
        // merge several stores into one load (tens of cycles per packet).
        Verdict v;
        if (c[i].vip != nullptr) {
            v = forward_classified<kMemo>(w, pkt, c[i], st, now, filter, cc, conn_memo);
            out[i] = v;
        } else {
            if constexpr (kMemo) conn_memo.outer = nullptr;  // c[i + 1].repeat is false anyway; simple to check
            v = out[i];  // written in pass 1, long since in the cache
        }
        if (SLUICE_LIKELY(v.counted_as_tx())) {
            tx_packets++;
            tx_bytes += pkt.len;
        } else if (v.action == Action::kException) {
            s.exception_packets++;
        } else if (v.action == Action::kControl) {
            s.control_packets++;
        } else {
            s.drops[v.reason]++;
            if (v.action == Action::kTx) s.icmp_sent++;
        }
    }
    s.rx_packets += n;
    s.rx_bytes += rx_bytes;
    s.tx_packets += tx_packets;
    s.tx_bytes += tx_bytes;
    s.conn_hits += cc.conn_hits;
    s.conn_misses += cc.conn_misses;
    s.conn_evictions += cc.conn_evictions;
}

// One chunk of at most kStageBurst packets in stages (as DPDK's rte_hash
// bulk lookup and DPVS do): pass 1 parses and classifies every packet and
// prefetches its connection-table bucket; a short pass then reads each
// bucket's signatures and prefetches the way the lookup will read (or, for
// a new flow, write); pass 2 does the lookups and rewrites. At many flows
// the buckets' cache and TLB misses so overlap across the burst instead of
// stalling each packet in turn. Pass 2 keeps packet order, so the table and
// the filters see the same sequence as one pass would.
inline constexpr uint16_t kStageBurst = 32;

// A guess, not a decision: whether a chunk starts with two packets of one
// flow (read as untagged IPv4 without options: protocol at byte 23,
// addresses and ports at 26-37). Either answer gives the same results; it
// picks the instance of the chunk's passes that looks for repeats, so a
// chunk of many flows pays one compare for the memo, not one per packet
// (looking for repeats in every packet cost the 1M-flow and SYN paths
// 10-17% more time, more than its instructions explain). A train that
// starts later in a chunk waits for the next one.
SLUICE_ALWAYS_INLINE bool starts_with_a_train(const Packet& a, const Packet& b)
{
    constexpr uint32_t kEnd = 38;
    if (a.len < kEnd || b.len < kEnd) return false;
    return load<uint64_t>(a.data + 26) == load<uint64_t>(b.data + 26) &&
           load<uint32_t>(a.data + 34) == load<uint32_t>(b.data + 34) && a.data[23] == b.data[23];
}

template <bool kDetect, class Filter>
SLUICE_ALWAYS_INLINE void process_chunk_passes(Worker& w, Packet* pkts[], uint16_t n, const ForwardingState& st,
                                               uint64_t now, Verdict out[], Filter& filter)
{
    // c[-1]: the sentinel "packet just before" the first (no packet's
    // tuple; its service and hash are never read, but set, as GCC cannot
    // tell).
    Classified classified[kStageBurst + 1];
    classified[0].tuple = FastTuple{0, FastTuple::kNone};
    classified[0].vip = nullptr;
    classified[0].hash = 0;
    Classified* const c = classified + 1;
    bool any_repeat = false;
    for (uint16_t i = 0; i < n; ++i) {
        // The next packet's headers load while this one is parsed (l3fwd).
        if (i + 1 < n) __builtin_prefetch(pkts[i + 1]->data);
        if (classify_any<kDetect>(*pkts[i], st, c[i], out[i], c[i - 1])) {
            any_repeat |= c[i].repeat;
            if (!kDetect || !c[i].repeat) w.conns.prefetch(c[i].hash);  // a repeat's bucket is its predecessor's
        } else {
            c[i].vip = nullptr;
            c[i].hash = 0;  // never read; GCC cannot tell (-Wmaybe-uninitialized)
        }
    }
    for (uint16_t i = 0; i < n; ++i) {
        if (c[i].vip != nullptr && (!kDetect || !c[i].repeat)) w.conns.prefetch_ways(c[i].hash);  // fragments too
    }
    // The memo's code only where it can pay: a chunk with a repeat (the
    // many-flow paths would pay its bookkeeping for nothing).
    if (kDetect && any_repeat) {
        forward_chunk<true>(w, pkts, n, c, st, now, out, filter);
    } else {
        forward_chunk<false>(w, pkts, n, c, st, now, out, filter);
    }
}

template <class Filter>
SLUICE_ALWAYS_INLINE void process_chunk(Worker& w, Packet* pkts[], uint16_t n, const ForwardingState& st,
                                        uint64_t now, Verdict out[], Filter& filter)
{
    if (n >= 2 && starts_with_a_train(*pkts[0], *pkts[1])) {
        process_chunk_passes<true>(w, pkts, n, st, now, out, filter);
    } else {
        process_chunk_passes<false>(w, pkts, n, st, now, out, filter);
    }
}

}  // namespace pipeline_detail

template <class Filter>
void process_burst(Worker& worker, Packet* pkts[], uint16_t n, const ForwardingState& state, uint64_t now,
                   Verdict out[], Filter& filter)
{
    for (uint16_t done = 0; done < n;) {
        const uint16_t chunk = n - done < pipeline_detail::kStageBurst ? static_cast<uint16_t>(n - done)
                                                                        : pipeline_detail::kStageBurst;
        pipeline_detail::process_chunk(worker, pkts + done, chunk, state, now, out + done, filter);
        done = static_cast<uint16_t>(done + chunk);
    }
}

}  // namespace sluice::core
