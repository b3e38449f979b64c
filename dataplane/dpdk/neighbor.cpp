// Neighbour manager: see neighbor.h. One control thread owns all of it; the
// only shared objects are the per-worker rings, whose consumer side is here.
#include "dataplane/dpdk/neighbor.h"

#include <rte_errno.h>
#include <rte_ethdev.h>

#include <cstring>
#include <map>

namespace sluice::dpdk {
namespace {

constexpr MacAddress kBroadcast = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
constexpr MacAddress kZeroMac = {};

VlanTag tag_of(const NeighborMessage& m) { return VlanTag{m.has_vlan, m.vlan_tci}; }

// Every address lookup() answers, for telling whether update() changed one.
std::map<std::pair<uint8_t, std::array<uint8_t, 16>>, MacAddress> resolved_view(const auto& entries)
{
    std::map<std::pair<uint8_t, std::array<uint8_t, 16>>, MacAddress> out;
    for (const auto& [addr, e] : entries)
        if (e.resolved) out[{addr.family, addr.bytes}] = e.mac;
    return out;
}

}  // namespace

Result<std::unique_ptr<NeighborManager>> NeighborManager::create(NeighborConfig config, rte_mempool* pool)
{
    if (pool == nullptr) return make_error("neighbour manager: no mbuf pool");
    if (config.ring_size < 2 || (config.ring_size & (config.ring_size - 1)) != 0)
        return make_error("neighbour manager: ring size " + std::to_string(config.ring_size) +
                          " is not a power of two");
    if (config.timers.refresh_percent == 0 || config.timers.refresh_percent >= 100 || config.timers.lifetime == 0)
        return make_error("neighbour manager: refresh must start within the lifetime (1..99 percent)");
    const uint16_t workers = config.workers;
    const std::string name = config.name;
    std::unique_ptr<NeighborManager> mgr(new NeighborManager(std::move(config), pool));
    for (uint16_t w = 0; w < workers; ++w) {
        const std::string ring_name = name + "_ctl" + std::to_string(w);
        rte_ring* r = rte_ring_create(ring_name.c_str(), mgr->config_.ring_size, SOCKET_ID_ANY,
                                      RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (r == nullptr)
            return make_error("neighbour manager: cannot create ring " + ring_name + ": " +
                              rte_strerror(rte_errno));
        mgr->rings_.push_back(r);
    }
    mgr->update(mgr->config_.targets);
    return mgr;
}

NeighborManager::~NeighborManager()
{
    for (rte_ring* r : rings_) {
        void* m = nullptr;
        while (rte_ring_sc_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
        rte_ring_free(r);
    }
}

rte_ring* NeighborManager::control_ring(uint16_t worker) const
{
    return worker < rings_.size() ? rings_[worker] : nullptr;
}

void NeighborManager::update(const NeighborTargets& targets)
{
    const auto before = resolved_view(entries_);
    config_.targets = targets;
    ours_.clear();
    ours_.insert(targets.local_addresses.begin(), targets.local_addresses.end());
    ours_.insert(targets.vips.begin(), targets.vips.end());

    std::unordered_map<NeighborAddress, Entry, NeighborAddressHash> next;
    for (const auto& t : targets.resolve) {
        auto it = entries_.find(t.address);
        Entry e = it != entries_.end() && !it->second.is_static ? it->second : Entry{};
        e.port_id = t.port_id;
        next[t.address] = e;
    }
    // Static entries last: they win over a resolve target of the same address.
    for (const auto& [addr, mac] : targets.static_entries) {
        Entry e;
        e.mac = mac;
        e.resolved = true;
        e.is_static = true;
        next[addr] = e;
    }
    entries_ = std::move(next);
    if (resolved_view(entries_) != before) ++generation_;
}

std::optional<MacAddress> NeighborManager::lookup(const NeighborAddress& address) const
{
    auto it = entries_.find(address);
    if (it == entries_.end() || !it->second.resolved) return std::nullopt;
    return it->second.mac;
}

void NeighborManager::poll(uint64_t now)
{
    uint32_t budget = config_.max_per_poll;
    for (rte_ring* r : rings_) {
        rte_mbuf* burst[32];
        while (budget != 0) {
            const unsigned want = budget < 32 ? budget : 32;
            const unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(burst), want, nullptr);
            for (unsigned i = 0; i < n; ++i) handle(burst[i], now);
            budget -= n;
            if (n < want) break;
        }
    }
    run_timers(now);
    if (changed_) {
        changed_ = false;
        ++generation_;
        if (on_change_) on_change_();
    }
}

const NeighborPort* NeighborManager::find_port(uint16_t port_id) const
{
    for (const auto& p : config_.ports)
        if (p.port_id == port_id) return &p;
    return nullptr;
}

const NeighborAddress* NeighborManager::source_for(uint8_t family) const
{
    for (const auto& a : config_.targets.local_addresses)
        if (a.family == family) return &a;
    return nullptr;
}

bool NeighborManager::is_ours(const NeighborAddress& a) const { return ours_.count(a) != 0; }

// One message from a worker: learn what it announces, then answer it when it
// asks for one of our addresses, else let the kernel see it (its own
// neighbours, and replies to the requests it sent through the TAP).
void NeighborManager::handle(rte_mbuf* m, uint64_t now)
{
    ++stats_.received;
    const NeighborPort* port = find_port(m->port);
    const auto msg = parse_neighbor_message(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
    if (port == nullptr || !msg) {
        ++stats_.invalid;
        rte_pktmbuf_free(m);
        return;
    }
    learn(*msg, port->port_id, now);
    using Kind = NeighborMessage::Kind;
    const bool asks_us = (msg->kind == Kind::kArpRequest || msg->kind == Kind::kSolicit) && is_ours(msg->target) &&
                         !msg->sender.is_unspecified();
    if (asks_us && answer(*msg, *port)) {
        rte_pktmbuf_free(m);
        return;
    }
    to_kernel(m, port);
}

void NeighborManager::learn(const NeighborMessage& msg, uint16_t port_id, uint64_t now)
{
    if (!msg.announced_mac) return;
    auto it = entries_.find(msg.announced);
    if (it == entries_.end() || it->second.is_static) return;  // not ours to track, or fixed by the operator
    Entry& e = it->second;
    if (e.port_id != kAnyPort && e.port_id != port_id) return;  // the neighbour lives on another segment
    const MacAddress& mac = *msg.announced_mac;
    if (e.resolved && mac == e.mac) {
        ++stats_.confirmed;
    } else {
        // An NA without the override flag must not replace a binding we
        // hold (RFC 4861 §7.2.5): proxies and anycast send those.
        if (e.resolved && msg.kind == NeighborMessage::Kind::kAdvert && !msg.override_flag) return;
        e.mac = mac;
        e.resolved = true;
        changed_ = true;
        ++stats_.learned;
    }
    e.learned_port = port_id;
    e.confirmed_at = now;
    e.next_probe_at = now;
}

bool NeighborManager::answer(const NeighborMessage& msg, const NeighborPort& port)
{
    uint8_t frame[kMaxNeighborFrameLen + 8];
    uint32_t len;
    const MacAddress dst = msg.announced_mac.value_or(msg.eth_src);
    if (msg.kind == NeighborMessage::Kind::kArpRequest) {
        len = build_arp(frame, SLUICE_ARP_OP_REPLY, msg.eth_src, port.mac, msg.target, dst, msg.sender, tag_of(msg));
    } else {
        len = build_neighbor_advert(frame, port.mac, msg.target, dst, msg.sender, tag_of(msg));
    }
    if (!transmit(port.port_id, port.control_tx_queue, frame, len)) return false;
    ++stats_.answered;
    return true;
}

void NeighborManager::to_kernel(rte_mbuf* m, const NeighborPort* port)
{
    if (port == nullptr || port->kernel_port == kNoPort) {
        rte_pktmbuf_free(m);
        ++stats_.no_kernel;
        return;
    }
    if (rte_eth_tx_burst(port->kernel_port, port->kernel_tx_queue, &m, 1) != 1) {
        rte_pktmbuf_free(m);
        ++stats_.tx_failed;
        return;
    }
    ++stats_.to_kernel;
}

bool NeighborManager::transmit(uint16_t port_id, uint16_t queue, const uint8_t* frame, uint32_t len)
{
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    char* p = m != nullptr ? rte_pktmbuf_append(m, static_cast<uint16_t>(len)) : nullptr;
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        ++stats_.tx_failed;
        return false;
    }
    std::memcpy(p, frame, len);
    if (rte_eth_tx_burst(port_id, queue, &m, 1) != 1) {
        rte_pktmbuf_free(m);
        ++stats_.tx_failed;
        return false;
    }
    return true;
}

// Unresolved: broadcast/multicast every retry interval. Resolved: from
// refresh_percent of the lifetime, a unicast probe to the MAC we hold every
// retry interval (a live neighbour answers and the binding is confirmed,
// with no gap); at the lifetime with no answer the binding is dropped, so
// the data plane counts NO_NEXTHOP instead of sending to a vanished MAC.
void NeighborManager::run_timers(uint64_t now)
{
    const NeighborTimers& t = config_.timers;
    const uint64_t refresh_after = t.lifetime / 100 * t.refresh_percent;
    for (auto& [addr, e] : entries_) {
        if (e.is_static) continue;
        if (e.resolved) {
            const uint64_t age = now - e.confirmed_at;
            if (age >= t.lifetime) {
                e.resolved = false;
                e.mac = kZeroMac;
                changed_ = true;
                ++stats_.expired;
                probe(addr, e, now, false);
            } else if (age >= refresh_after && now >= e.next_probe_at) {
                probe(addr, e, now, true);
            }
        } else if (now >= e.next_probe_at) {
            probe(addr, e, now, false);
        }
    }
}

void NeighborManager::probe(const NeighborAddress& address, Entry& e, uint64_t now, bool unicast)
{
    e.next_probe_at = now + config_.timers.retry_interval;
    const uint16_t where = unicast && e.learned_port != kAnyPort ? e.learned_port : e.port_id;
    const std::optional<MacAddress> mac = unicast ? std::optional<MacAddress>(e.mac) : std::nullopt;
    for (const auto& p : config_.ports) {
        if (where == kAnyPort || p.port_id == where) send_probe_on(p, address, mac);
    }
}

void NeighborManager::send_probe_on(const NeighborPort& port, const NeighborAddress& address,
                                    const std::optional<MacAddress>& unicast_mac)
{
    const NeighborAddress* src = source_for(address.family);
    if (src == nullptr) return;  // no local address of that family to ask from
    uint8_t frame[kMaxNeighborFrameLen + 8];
    uint32_t len;
    if (address.family == SLUICE_FAMILY_IPV4) {
        len = build_arp(frame, SLUICE_ARP_OP_REQUEST, unicast_mac.value_or(kBroadcast), port.mac, *src, kZeroMac,
                        address);
    } else {
        len = build_neighbor_solicit(frame, port.mac, *src, address, unicast_mac);
    }
    if (transmit(port.port_id, port.control_tx_queue, frame, len)) ++stats_.probes_sent;
}

}  // namespace sluice::dpdk
