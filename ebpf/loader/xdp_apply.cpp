// XdpDataplane: filling the maps from a Description, and the ring flip.
//
// Ring flip (DESIGN.md "XDP driver"): every VIP has two rings, ring ids
// 2 * vip_id + 0 and + 1, each its own inner array map in sluice_rings_v1.
// The service entry (a hash-map element, replaced as a whole under RCU)
// names the live one together with its size. An update writes the inactive
// ring, then replaces the service entry: a packet reads either the old
// (ring_id, ring_size) and the old, untouched ring, or the new pair and the
// complete new ring. Before that old ring may be written again, the loader
// waits for an RCU grace period (a map-in-map update makes the kernel run
// synchronize_rcu), so no program still holds the old entry.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <tuple>
#include <vector>

#include "loader/xdp_dataplane.h"
#include "xdp_lb.skel.h"

namespace sluice::xdp {

namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

std::vector<uint8_t> bytes_of(const void* p, size_t n)
{
    const auto* b = static_cast<const uint8_t*>(p);
    return std::vector<uint8_t>(b, b + n);
}

// Writes (keys[i], values[i]) with one batched syscall where the kernel has
// it, else element by element.
int update_many(int fd, std::vector<uint32_t>& keys, std::vector<uint32_t>& values)
{
    if (keys.empty()) return 0;
    uint32_t count = static_cast<uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
    if (bpf_map_update_batch(fd, keys.data(), values.data(), &count, &opts) == 0 && count == keys.size()) return 0;
    for (size_t i = 0; i < keys.size(); ++i) {
        if (bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY) != 0) return -errno;
    }
    return 0;
}

bool is_prime(uint32_t n)
{
    if (n < 2) return false;
    for (uint32_t d = 2; static_cast<uint64_t>(d) * d <= n; ++d) {
        if (n % d == 0) return false;
    }
    return true;
}

// The DPDK path's per-worker share (dataplane/filter/rate_limit.h): rate/N,
// the remainder spread over the first CPUs, at least 1 of a non-zero value.
// With fewer shares than CPUs, CPU c enforces share c mod N.
uint64_t cpu_share(uint64_t total, uint32_t cpu, uint32_t cpus)
{
    if (total == 0) return 0;
    cpu %= cpus;
    const uint64_t share = total / cpus + (cpu < total % cpus ? 1 : 0);
    return share == 0 ? 1 : share;
}

}  // namespace

// Each CPU's (rate, burst) for a VIP's limits, packets bucket then new
// flows bucket: [kind][cpu] pairs, what sluice_buckets_v2 holds.
std::vector<uint64_t> XdpDataplane::bucket_shares(const RateLimitSpec& limits, uint32_t shares, uint32_t ncpu)
{
    const uint64_t rates[2] = {limits.packets_per_sec, limits.new_flows_per_sec};
    const uint64_t bursts[2] = {limits.packets_burst, limits.new_flows_burst};
    std::vector<uint64_t> out;
    out.reserve(4 * static_cast<size_t>(ncpu));
    for (uint32_t kind = 0; kind < 2; ++kind) {
        for (uint32_t cpu = 0; cpu < ncpu; ++cpu) {
            out.push_back(cpu_share(rates[kind], cpu, shares));
            out.push_back(cpu_share(bursts[kind], cpu, shares));
        }
    }
    return out;
}

// Whether `applied` may stay as it is for `want`: the same service, and
// DPDK's test (the configured totals, and here the number of shares, as
// DPDK's worker count is fixed for a process). Buckets adopted from pins
// carry no totals: there each CPU's rate and burst must match instead.
bool XdpDataplane::same_buckets(const AppliedRateLimit& applied, const AppliedRateLimit& want)
{
    if (std::memcmp(&applied.key, &want.key, sizeof(want.key)) != 0 || applied.per_cpu != want.per_cpu) return false;
    return !applied.totals_known || (applied.limits == want.limits && applied.shares == want.shares);
}

Result<void> XdpDataplane::write_ring(Service& s, uint32_t gen, const core::SharedRing& ring)
{
    RingSlot& slot = s.slots[gen];
    const uint32_t ring_id = 2 * s.meta.vip_id + gen;
    const int outer = bpf_map__fd(skel_->maps.sluice_rings_v1);
    std::vector<uint32_t> keys, values;
    if (slot.fd >= 0 && slot.content.size() == ring.size()) {
        // Same size: only the slots that differ (a backend change moves
        // about 1/N of them).
        for (uint32_t i = 0; i < ring.size(); ++i) {
            if (slot.content[i] != ring[i]) {
                keys.push_back(i);
                values.push_back(ring[i]);
            }
        }
        if (int err = update_many(slot.fd, keys, values); err != 0)
            return make_error("ring " + std::to_string(ring_id) + ": " + errno_text(err));
    } else {
        // New size (or unknown content after a restart): a fresh inner map,
        // filled before the outer slot points at it.
        LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
        const std::string name = "sluice_ring_" + std::to_string(ring_id);
        const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name.substr(0, 15).c_str(), sizeof(uint32_t),
                                      sizeof(uint32_t), static_cast<uint32_t>(ring.size()), &opts);
        if (fd < 0) return make_error("ring " + std::to_string(ring_id) + ": create: " + errno_text(errno));
        for (uint32_t i = 0; i < ring.size(); ++i) {
            keys.push_back(i);
            values.push_back(ring[i]);
        }
        if (int err = update_many(fd, keys, values); err != 0) {
            ::close(fd);
            return make_error("ring " + std::to_string(ring_id) + ": fill: " + errno_text(err));
        }
        if (bpf_map_update_elem(outer, &ring_id, &fd, BPF_ANY) != 0) {
            const int err = errno;
            ::close(fd);
            return make_error("ring " + std::to_string(ring_id) + ": install: " + errno_text(err));
        }
        if (slot.fd >= 0) ::close(slot.fd);
        slot.fd = fd;
    }
    slot.content = ring;
    return {};
}

// Returns once no running program can still hold a service entry that
// names ring `gen`: re-installing the ring's own inner map in its outer
// slot is a no-op for readers, and the kernel follows every map-in-map
// update with synchronize_rcu (maybe_wait_bpf_programs), the grace period
// XDP programs (RCU readers) need.
Result<void> XdpDataplane::wait_for_readers(const Service& s, uint32_t gen)
{
    const RingSlot& slot = s.slots[gen];
    if (slot.fd < 0) return {};
    const uint32_t ring_id = 2 * s.meta.vip_id + gen;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_rings_v1), &ring_id, &slot.fd, BPF_ANY) != 0)
        return make_error("ring " + std::to_string(ring_id) + ": grace period: " + errno_text(errno));
    return {};
}

Result<void> XdpDataplane::flip(Service& s, const core::SharedRing& ring)
{
    const uint32_t old_gen = s.meta.ring_id & 1u;
    const uint32_t new_gen = s.has_live ? 1u - old_gen : 0u;
    if (Result<void> r = write_ring(s, new_gen, ring); !r) return r;
    sluice_vip_meta meta = s.meta;
    meta.ring_id = 2 * s.meta.vip_id + new_gen;
    meta.ring_size = static_cast<uint32_t>(ring.size());
    // One element replacement: the flip. Then no cached copy of the old
    // entry is used by a packet that starts from now on.
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_vips_v1), &s.key, &meta, BPF_ANY) != 0)
        return make_error("service of vip " + std::to_string(s.meta.vip_id) + ": " + errno_text(errno));
    if (Result<void> r = bump_vip_generation(); !r) return r;
    const bool had_live = s.has_live;
    s.meta = meta;
    s.has_live = true;
    if (had_live) return wait_for_readers(s, old_gen);
    return {};
}

Result<void> XdpDataplane::update_ring(uint32_t vip_id, const core::SharedRing& ring)
{
    auto it = services_.find(vip_id);
    if (it == services_.end()) return make_error("vip " + std::to_string(vip_id) + " is not configured");
    if (ring.empty() || ring.size() > SLUICE_MAX_RING_SIZE || !is_prime(static_cast<uint32_t>(ring.size())))
        return make_error("ring size " + std::to_string(ring.size()) + " is not a prime <= SLUICE_MAX_RING_SIZE");
    for (uint32_t b : ring.backends()) {  // each id the ring names, once
        if (backend_ids_.count(b) == 0)
            return make_error("ring names backend " + std::to_string(b) + ", which is not applied");
    }
    return flip(it->second, ring);
}

Result<void> XdpDataplane::remove_service(Service& s)
{
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.sluice_vips_v1), &s.key) != 0 && errno != ENOENT)
        return make_error("delete service: " + errno_text(errno));
    if (Result<void> r = bump_vip_generation(); !r) return r;
    const int outer = bpf_map__fd(skel_->maps.sluice_rings_v1);
    for (uint32_t gen = 0; gen < 2; ++gen) {
        const uint32_t ring_id = 2 * s.meta.vip_id + gen;
        (void)bpf_map_delete_elem(outer, &ring_id);  // map-in-map delete: also a grace period
    }
    close_service(s);
    return {};
}

Result<void> XdpDataplane::write_acl(const Description& desc, bool& global_acl, std::set<uint32_t>& vip_acl)
{
    // Per (scope, family, prefix): deny wins over allow. A scope with an
    // allow list is default-deny in both families: a /0 deny unless the
    // scope lists /0 itself.
    std::map<std::tuple<uint8_t, std::vector<uint8_t>>, uint32_t> entries;
    std::set<uint32_t> allow_scopes;
    for (const AclPrefixSpec& p : desc.acl) {
        const uint32_t max_len = p.family == SLUICE_FAMILY_IPV4 ? 32 : 128;
        if (p.prefix_len > max_len || (p.family != SLUICE_FAMILY_IPV4 && p.family != SLUICE_FAMILY_IPV6))
            return make_error("ACL prefix length " + std::to_string(p.prefix_len) + " too long for its family");
        if (p.scope > SLUICE_MAX_VIPS) return make_error("ACL scope " + std::to_string(p.scope) + " out of range");
        sluice_acl_key key{};
        key.prefixlen = 32 + p.prefix_len;
        key.vip_id = __builtin_bswap32(p.scope);
        for (uint32_t bit = 0; bit < p.prefix_len; ++bit) {
            if (p.addr.bytes[bit / 8] & (0x80u >> (bit % 8))) key.addr.bytes[bit / 8] |= 0x80u >> (bit % 8);
        }
        uint32_t& v = entries[{p.family, bytes_of(&key, sizeof(key))}];
        v = p.deny || v == SLUICE_ACL_DENY ? SLUICE_ACL_DENY : SLUICE_ACL_ALLOW;
        if (!p.deny) allow_scopes.insert(p.scope);
        if (p.scope == SLUICE_MAX_VIPS) global_acl = true;
        else vip_acl.insert(p.scope);
    }
    for (uint32_t scope : allow_scopes) {
        for (uint8_t family : {SLUICE_FAMILY_IPV4, SLUICE_FAMILY_IPV6}) {
            sluice_acl_key key{};
            key.prefixlen = 32;
            key.vip_id = __builtin_bswap32(scope);
            entries.try_emplace({family, bytes_of(&key, sizeof(key))}, SLUICE_ACL_DENY);
        }
    }
    // New entries first, stale ones after: never a moment with fewer denies
    // than either the old or the new list implies, beyond one element.
    std::set<std::vector<uint8_t>> new4, new6;
    for (const auto& [k, verdict] : entries) {
        const auto& [family, key] = k;
        const int fd = bpf_map__fd(family == SLUICE_FAMILY_IPV4 ? skel_->maps.sluice_acl4_v1 : skel_->maps.sluice_acl6_v1);
        if (bpf_map_update_elem(fd, key.data(), &verdict, BPF_ANY) != 0) return make_error("ACL: " + errno_text(errno));
        (family == SLUICE_FAMILY_IPV4 ? new4 : new6).insert(key);
    }
    for (const auto& key : acl4_keys_) {
        if (new4.count(key) == 0) (void)bpf_map_delete_elem(bpf_map__fd(skel_->maps.sluice_acl4_v1), key.data());
    }
    for (const auto& key : acl6_keys_) {
        if (new6.count(key) == 0) (void)bpf_map_delete_elem(bpf_map__fd(skel_->maps.sluice_acl6_v1), key.data());
    }
    acl4_keys_ = std::move(new4);
    acl6_keys_ = std::move(new6);
    return {};
}

// Per-VIP buckets, DPDK's rule (WorkerRateLimiter::sync): a VIP whose
// limits did not change keeps every CPU's bucket as it is (tokens spent,
// last refill, carry), so a publish for any other reason (a backend's
// health, another VIP's limit, discovery) grants no fresh burst. A VIP
// that is new, whose limits (either bucket's rate or burst, or the number
// of shares) changed, or whose vip_id now belongs to another service, gets
// both buckets restarted as DPDK's bucket_configure starts one: `burst`
// tokens at the moment of the write on the program's clock
// (bpf_ktime_get_ns is CLOCK_MONOTONIC), remainder 0. A bucket with last
// refill 0 would instead refill to its brim (burst + 1023/1024) at its
// first packet.
Result<void> XdpDataplane::write_rate_limits(const Description& desc)
{
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return make_error("cannot count CPUs");
    const uint32_t shares = desc.node.rate_limit_shares != 0 ? desc.node.rate_limit_shares : static_cast<uint32_t>(ncpu);
    const int fd = bpf_map__fd(skel_->maps.sluice_buckets_v2);
    std::vector<sluice_carried_bucket> per_cpu(static_cast<size_t>(ncpu));
    for (const VipSpec& v : desc.vips) {
        AppliedRateLimit want;
        want.key = v.key;
        want.totals_known = true;
        want.limits = v.limits;
        want.shares = shares;
        want.per_cpu = bucket_shares(v.limits, shares, static_cast<uint32_t>(ncpu));
        auto it = rate_limits_.find(v.vip_id);
        if (it != rate_limits_.end() && same_buckets(it->second, want)) {
            it->second = std::move(want);  // adopted from pins: now the totals are known too
            continue;
        }
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        const uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
        for (uint32_t kind = 0; kind < 2; ++kind) {
            for (uint32_t cpu = 0; cpu < static_cast<uint32_t>(ncpu); ++cpu) {
                per_cpu[cpu] = {};
                sluice_token_bucket& b = per_cpu[cpu].bucket;
                b.rate_per_sec = want.per_cpu[2 * (kind * ncpu + cpu)];
                b.burst = want.per_cpu[2 * (kind * ncpu + cpu) + 1];
                b.tokens = b.burst << 10;
                b.last_ns = now;
            }
            const uint32_t index = 2 * v.vip_id + kind;
            if (bpf_map_update_elem(fd, &index, per_cpu.data(), BPF_ANY) != 0)
                return make_error("rate limits: " + errno_text(errno));
        }
        rate_limits_[v.vip_id] = std::move(want);
    }
    return {};
}

// Address entries: "this is a VIP", and where its fragments go (the core's
// kFragment rule: the port-0 service, else the only one, else ambiguous).
Result<void> XdpDataplane::write_vip_addresses(const Description& desc)
{
    std::map<std::vector<uint8_t>, sluice_vip_addr_info> infos;
    std::map<std::tuple<std::vector<uint8_t>, uint8_t>, std::vector<const VipSpec*>> by_proto;
    for (const VipSpec& v : desc.vips) {
        sluice_vip_key ak{};
        ak.addr = v.key.addr;
        ak.family = v.key.family;
        const auto k = bytes_of(&ak, sizeof(ak));
        infos.try_emplace(k, sluice_vip_addr_info{});
        by_proto[{k, v.key.proto}].push_back(&v);
    }
    for (const auto& [k, services] : by_proto) {
        const auto& [addr_key, proto] = k;
        const VipSpec* chosen = nullptr;
        for (const VipSpec* s : services) {
            if (s->key.port == 0) chosen = s;
        }
        if (chosen == nullptr && services.size() == 1) chosen = services.front();
        sluice_vip_addr_info& info = infos[addr_key];
        const uint8_t state = chosen != nullptr ? SLUICE_FRAG_SERVICE : SLUICE_FRAG_AMBIGUOUS;
        const uint16_t port = chosen != nullptr ? chosen->key.port : 0;
        if (proto == SLUICE_IPPROTO_TCP) {
            info.frag_tcp = state;
            info.frag_port_tcp = port;
        } else {
            info.frag_udp = state;
            info.frag_port_udp = port;
        }
    }
    const int fd = bpf_map__fd(skel_->maps.sluice_vip_addrs_v1);
    std::set<std::vector<uint8_t>> keys;
    for (const auto& [k, info] : infos) {
        if (bpf_map_update_elem(fd, k.data(), &info, BPF_ANY) != 0) return make_error("VIP addresses: " + errno_text(errno));
        keys.insert(k);
    }
    for (const auto& k : vip_addr_keys_) {
        if (keys.count(k) == 0) (void)bpf_map_delete_elem(fd, k.data());
    }
    vip_addr_keys_ = std::move(keys);
    return {};
}

Result<void> XdpDataplane::apply(const Description& desc)
{
    // Validate everything first: a refused description changes nothing.
    std::set<uint32_t> backends;
    for (const BackendSpec& b : desc.backends) {
        if (b.id >= SLUICE_MAX_BACKENDS || !backends.insert(b.id).second)
            return make_error("backend id " + std::to_string(b.id) + " out of range or repeated");
    }
    std::set<uint16_t> port_ids;
    for (const PortSpec& p : desc.ports) {
        if (p.id >= SLUICE_MAX_PORTS || !port_ids.insert(p.id).second)
            return make_error("port id " + std::to_string(p.id) + " out of range or repeated");
    }
    for (const PortSpec& p : desc.ports) {
        if (p.mtu < SLUICE_MIN_PORT_MTU)
            return make_error("port " + std::to_string(p.id) + ": mtu below " + std::to_string(SLUICE_MIN_PORT_MTU) +
                              " (IPv4's minimum)");
        if (port_ids.count(p.egress_port) == 0)
            return make_error("port " + std::to_string(p.id) + ": egress port " + std::to_string(p.egress_port) + " is not configured");
    }
    std::set<uint32_t> vip_ids;
    for (const VipSpec& v : desc.vips) {
        const std::string name = "vip " + std::to_string(v.vip_id);
        if (v.vip_id >= SLUICE_MAX_VIPS || !vip_ids.insert(v.vip_id).second) return make_error(name + ": id out of range or repeated");
        if (v.forwarding >= SLUICE_FWD_MAX) return make_error(name + ": bad forwarding mode");
        if (v.ring.empty() || v.ring.size() > SLUICE_MAX_RING_SIZE || !is_prime(static_cast<uint32_t>(v.ring.size())))
            return make_error(name + ": ring size " + std::to_string(v.ring.size()) + " is not a prime <= SLUICE_MAX_RING_SIZE");
        for (uint32_t b : v.ring.backends()) {  // each id the ring names, once: not M slots per VIP
            if (backends.count(b) == 0) return make_error(name + ": ring names unknown backend " + std::to_string(b));
        }
    }

    if (desc.node.icmp_errors_per_sec > SLUICE_ICMP_ERRORS_MAX || desc.node.icmp_errors_burst > SLUICE_ICMP_ERRORS_MAX ||
        (desc.node.icmp_errors_per_sec != 0 && desc.node.icmp_errors_burst == 0))
        return make_error("ICMP error limit " + std::to_string(desc.node.icmp_errors_per_sec) + "/s, burst " +
                          std::to_string(desc.node.icmp_errors_burst) + ": out of range");

    bool global_acl = false;
    std::set<uint32_t> vip_acl;
    // 1. Node, ports, backends: everything a new ring may name.
    sluice_node_config node{};
    node.local_v4 = desc.node.local_v4;
    node.local_v6 = desc.node.local_v6;
    static_assert(sizeof(node.conn_timeout_ns) == sizeof(desc.node.conn_timeout_ns), "one timeout per state");
    std::memcpy(node.conn_timeout_ns, desc.node.conn_timeout_ns, sizeof(node.conn_timeout_ns));
    node.exception_path = desc.node.exception_path ? 1 : 0;
    // Each CPU's bucket sees the new values at its next oversized packet
    // and starts again, full (xdp/icmp.h): a reload takes effect at once.
    node.icmp_errors_per_sec = desc.node.icmp_errors_per_sec;
    node.icmp_errors_burst = desc.node.icmp_errors_burst;
    for (const AclPrefixSpec& p : desc.acl) {
        if (p.scope == SLUICE_MAX_VIPS) node.flags |= SLUICE_NODE_F_GLOBAL_ACL;
    }
    const uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_node_v3), &zero, &node, BPF_ANY) != 0)
        return make_error("node map: " + errno_text(errno));
    std::map<uint16_t, sluice_port_config> ports;
    for (const PortSpec& p : desc.ports) {
        sluice_port_config pc{};
        std::memcpy(pc.mac, p.mac, 6);
        std::memcpy(pc.nexthop_mac, p.nexthop_mac, 6);
        pc.mtu = p.mtu;
        pc.egress_port = p.egress_port;
        pc.ifindex = p.ifindex;
        pc.flags = SLUICE_PORT_F_PRESENT;
        ports[p.id] = pc;
    }
    for (uint32_t id = 0; id < SLUICE_MAX_PORTS; ++id) {
        sluice_port_config pc{};
        if (auto it = ports.find(static_cast<uint16_t>(id)); it != ports.end()) pc = it->second;
        if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_ports_v1), &id, &pc, BPF_ANY) != 0)
            return make_error("ports map: " + errno_text(errno));
        if (pc.ifindex != 0) {
            if (Result<void> r = map_interface(pc.ifindex, id); !r) return r;
        }
    }
    ports_ = std::move(ports);
    // The records after the ports and bindings they are made from.
    if (Result<void> r = write_ifport_records(); !r) return r;
    for (const BackendSpec& b : desc.backends) {
        sluice_backend be{};
        be.addr = b.addr;
        be.family = b.family;
        be.flags = b.flags;
        std::memcpy(be.mac, b.mac, 6);
        if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_backends_v1), &b.id, &be, BPF_ANY) != 0)
            return make_error("backends map: " + errno_text(errno));
    }
    backend_ids_.insert(backends.begin(), backends.end());

    // 2. Filters, then services (ring written, entry flipped), then the
    // addresses that make their traffic ours.
    if (Result<void> r = write_acl(desc, global_acl, vip_acl); !r) return r;
    if (Result<void> r = write_rate_limits(desc); !r) return r;
    for (const VipSpec& v : desc.vips) {
        Service& s = services_[v.vip_id];
        if (s.has_live && std::memcmp(&s.key, &v.key, sizeof(v.key)) != 0) {
            if (Result<void> r = remove_service(s); !r) return r;
            s = Service{};
        }
        s.key = v.key;
        const sluice_vip_meta before = s.meta;
        const uint32_t ring_id = s.meta.ring_id;
        s.meta = {};
        s.meta.vip_id = v.vip_id;
        s.meta.ring_id = s.has_live ? ring_id : 0;
        s.meta.ring_size = s.has_live ? before.ring_size : 0;
        s.meta.forwarding = v.forwarding;
        s.meta.flags = static_cast<uint8_t>(v.flags & SLUICE_VIP_F_HASH_NO_SPORT);
        if (vip_acl.count(v.vip_id) != 0) s.meta.flags |= SLUICE_VIP_F_ACL;
        if (v.limits.packets_per_sec != 0 || v.limits.new_flows_per_sec != 0) s.meta.flags |= SLUICE_VIP_F_RATE_LIMIT;
        s.meta.gue_dport = __builtin_bswap16(v.gue_port);
        // A reload that changes nothing for this service flips nothing.
        const RingSlot& live = s.slots[s.meta.ring_id & 1u];
        if (s.has_live && live.content == v.ring && std::memcmp(&s.meta, &before, sizeof(before)) == 0) continue;
        if (Result<void> r = flip(s, v.ring); !r) return r;
    }
    if (Result<void> r = write_vip_addresses(desc); !r) return r;

    // 3. Removals, after nothing new refers to them.
    for (auto it = services_.begin(); it != services_.end();) {
        if (vip_ids.count(it->first) == 0) {
            if (Result<void> r = remove_service(it->second); !r) return r;
            // Its buckets stay in the map, unreachable; whatever service
            // gets the id next finds no record and restarts them.
            rate_limits_.erase(it->first);
            it = services_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = backend_ids_.begin(); it != backend_ids_.end();) {
        if (backends.count(*it) == 0) {
            // No ring names it any more; connection entries that still do
            // fall back to the ring (a zeroed entry is not VALID).
            const sluice_backend gone{};
            const uint32_t id = *it;
            if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_backends_v1), &id, &gone, BPF_ANY) != 0)
                return make_error("backends map: " + errno_text(errno));
            it = backend_ids_.erase(it);
        } else {
            ++it;
        }
    }
    return {};
}

}  // namespace sluice::xdp
