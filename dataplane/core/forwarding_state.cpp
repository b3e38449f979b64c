// Building and validating forwarding snapshots (control plane side).
#include "core/forwarding_state.h"

#include "core/encap.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <tuple>

extern "C" {
#include "abi/checksum.h"
}

namespace sluice::core {

namespace {

std::string vip_name(const sluice_vip_key& k, uint32_t id)
{
    return "vip " + std::to_string(id) + " (proto " + std::to_string(k.proto) + ", port " +
           std::to_string(__builtin_bswap16(k.port)) + ")";
}

}  // namespace

bool is_prime(uint32_t n)
{
    if (n < 2) return false;
    for (uint64_t d = 2; d * d <= n; ++d) {
        if (n % d == 0) return false;
    }
    return true;
}

void VipTable::reset(size_t n)
{
    size_t size = 8;
    while (size < 2 * n) size *= 2;
    slots_.assign(size, Entry{});
    mask_ = static_cast<uint32_t>(size - 1);
}

bool VipTable::insert(const sluice_vip_key& key, Kind kind, uint32_t vip_id)
{
    for (uint32_t i = hash(key, kind);; ++i) {
        Entry& e = slots_[i & mask_];
        if (e.kind == kEmpty) {
            e.key = key;
            e.kind = kind;
            e.vip_id = vip_id;
            return true;
        }
        if (e.kind == kind && std::memcmp(&e.key, &key, sizeof(key)) == 0) return false;
    }
}

void ServiceV4Table::reset(size_t n)
{
    size_t size = 16;
    while (size < 4 * n) size *= 2;
    slots_.assign(size, Slot{});
    mask_ = static_cast<uint32_t>(size - 1);
}

void ServiceV4Table::insert(uint64_t key, uint32_t vip_id)
{
    for (uint32_t i = slot(key);; i = (i + 1) & mask_) {
        Slot& s = slots_[i];
        if (s.key == 0) {
            s.key = key;
            s.vip_id = vip_id;
            return;
        }
    }
}

ForwardingStateBuilder& ForwardingStateBuilder::set_local_ipv4(const sluice_addr& addr)
{
    local_v4_ = addr;
    has_v4_ = true;
    return *this;
}

ForwardingStateBuilder& ForwardingStateBuilder::set_local_ipv6(const sluice_addr& addr)
{
    local_v6_ = addr;
    has_v6_ = true;
    return *this;
}

ForwardingStateBuilder& ForwardingStateBuilder::set_exception_path(bool enabled)
{
    exception_path_ = enabled;
    return *this;
}

ForwardingStateBuilder& ForwardingStateBuilder::set_icmp_error_limit(const IcmpErrorLimit& limit)
{
    icmp_error_limit_ = limit;
    return *this;
}

ForwardingStateBuilder& ForwardingStateBuilder::add_port(uint16_t id, const PortConfig& port)
{
    ports_.emplace_back(id, port);
    return *this;
}

ForwardingStateBuilder& ForwardingStateBuilder::add_backend(uint32_t id, const sluice_backend& backend)
{
    backends_.emplace_back(id, backend);
    return *this;
}

ForwardingStateBuilder& ForwardingStateBuilder::add_vip(VipSpec vip)
{
    vips_.push_back(std::move(vip));
    return *this;
}

Result<std::unique_ptr<const ForwardingState>> ForwardingStateBuilder::build() const
{
    std::unique_ptr<ForwardingState> st(new ForwardingState());
    st->local_v4_ = local_v4_;
    st->local_v6_ = local_v6_;
    st->exception_path_ = exception_path_;
    if (icmp_error_limit_.per_sec > kMaxIcmpErrorsPerSec || icmp_error_limit_.burst > kMaxIcmpErrorsBurst ||
        (icmp_error_limit_.per_sec != 0 && icmp_error_limit_.burst == 0))
        return make_error("ICMP error limit " + std::to_string(icmp_error_limit_.per_sec) + "/s, burst " +
                          std::to_string(icmp_error_limit_.burst) + ": out of range");
    st->icmp_error_limit_ = icmp_error_limit_;

    for (const auto& [id, port] : ports_) {
        if (id >= kMaxPorts) return make_error("port " + std::to_string(id) + ": id >= " + std::to_string(kMaxPorts));
        if (st->ports_[id].present) return make_error("port " + std::to_string(id) + " added twice");
        // IPv4's minimum link MTU (RFC 791), as the XDP loader checks. A
        // port too small for what an IPv6 client must be able to send
        // (1280 behind the tunnel header) is the control plane's warning
        // (driver/mtu_check.h); the data plane then sends no "packet too
        // big" below 1280 (pipeline_impl.h mtu_exceeded) rather than
        // refusing every port under 1328, IPv4-only nodes included.
        if (port.mtu < kMinPortMtu)
            return make_error("port " + std::to_string(id) + ": mtu below " + std::to_string(kMinPortMtu) +
                              " (IPv4's minimum)");
        st->ports_[id] = port;
        st->ports_[id].present = true;
    }
    for (const auto& [id, port] : ports_) {
        if (port.egress_port >= kMaxPorts || !st->ports_[port.egress_port].present)
            return make_error("port " + std::to_string(id) + ": egress port " + std::to_string(port.egress_port) +
                              " is not configured");
    }

    uint32_t nbackends = 0;
    for (const auto& [id, be] : backends_) {
        if (id >= SLUICE_MAX_BACKENDS) return make_error("backend " + std::to_string(id) + ": id >= SLUICE_MAX_BACKENDS");
        if (be.family != SLUICE_FAMILY_IPV4 && be.family != SLUICE_FAMILY_IPV6)
            return make_error("backend " + std::to_string(id) + ": bad family");
        nbackends = std::max(nbackends, id + 1);
    }
    // Ids are dense but may have holes: a hole is a zeroed entry without
    // SLUICE_BACKEND_F_VALID, which a connection entry treats as gone.
    st->backends_.assign(nbackends, sluice_backend{});
    std::vector<bool> seen(nbackends, false);
    for (const auto& [id, be] : backends_) {
        if (seen[id]) return make_error("backend " + std::to_string(id) + " added twice");
        seen[id] = true;
        st->backends_[id] = be;
    }

    // The fast path's per-port and per-backend precomputation (fast_path.h).
    for (uint16_t id = 0; id < kMaxPorts; ++id) {
        const PortConfig& in = st->ports_[id];
        if (!in.present) continue;
        const PortConfig& eg = st->ports_[in.egress_port];
        FastIngress& fi = st->fast_ingress_[id];
        std::memcpy(fi.l2_ipv4, eg.nexthop_mac, 6);
        std::memcpy(fi.l2_ipv4 + 6, eg.mac, 6);
        fi.l2_ipv4[12] = SLUICE_ETH_P_IPV4 >> 8;
        fi.l2_ipv4[13] = SLUICE_ETH_P_IPV4 & 0xFF;
        fi.egress_port = in.egress_port;
        fi.mtu = eg.mtu;
        fi.one_arm = in.egress_port == id;
        fi.tunnel_ready = (eg.nexthop_mac[0] | eg.nexthop_mac[1] | eg.nexthop_mac[2] | eg.nexthop_mac[3] |
                           eg.nexthop_mac[4] | eg.nexthop_mac[5]) != 0;
    }
    st->fast_outer_v4_.assign(nbackends, FastOuterV4{});
    for (uint32_t id = 0; id < nbackends; ++id) {
        const sluice_backend& be = st->backends_[id];
        if (be.family != SLUICE_FAMILY_IPV4) continue;
        FastOuterV4& o = st->fast_outer_v4_[id];
        o.saddr = local_v4_.v4;
        o.daddr = be.addr.v4;
        // The words encapsulate() sums, less the packet's own bytes (TOS, protocol).
        o.sum = sluice_csum_fold(static_cast<uint64_t>(o.saddr) + o.daddr + wire_word(SLUICE_IPV4_VERSION_IHL(5), 0) +
                                 wire_word(64, 0));
    }

    uint32_t max_vip = 0;
    for (const auto& v : vips_) max_vip = std::max(max_vip, v.vip_id + 1);
    if (max_vip > SLUICE_MAX_VIPS) return make_error("vip id >= SLUICE_MAX_VIPS");
    st->rings_.reserve(vips_.size());
    st->vip_by_id_.assign(max_vip, VipRuntime{});
    st->vips_.reset(vips_.size() * 3);
    st->services_v4_.reset(vips_.size());

    // (family, address, proto) -> services, to derive fragment entries.
    std::map<std::tuple<uint8_t, std::string, uint8_t>, std::vector<const VipSpec*>> by_proto;
    for (const auto& v : vips_) {
        const std::string name = vip_name(v.key, v.vip_id);
        if (v.key.family != SLUICE_FAMILY_IPV4 && v.key.family != SLUICE_FAMILY_IPV6)
            return make_error(name + ": bad family");
        if (v.key.proto != SLUICE_IPPROTO_TCP && v.key.proto != SLUICE_IPPROTO_UDP)
            return make_error(name + ": protocol must be TCP or UDP");
        if (v.forwarding >= SLUICE_FWD_MAX) return make_error(name + ": bad forwarding mode");
        if (v.forwarding == SLUICE_FWD_GUE && v.gue_port == 0) return make_error(name + ": GUE needs a port");
        if (v.ring.empty() || v.ring.size() > SLUICE_MAX_RING_SIZE || !is_prime(static_cast<uint32_t>(v.ring.size())))
            return make_error(name + ": ring size " + std::to_string(v.ring.size()) + " is not a prime <= SLUICE_MAX_RING_SIZE");
        if (st->vip_by_id_[v.vip_id].present) return make_error(name + ": vip id used twice");
        // Each id the ring names, once (not each slot): SharedRing found them
        // when the ring was made, and a ring shared by many snapshots is not
        // walked again by each.
        for (uint32_t b : v.ring.backends()) {
            if (b >= nbackends || !seen[b]) return make_error(name + ": ring names unknown backend " + std::to_string(b));
            const sluice_backend& be = st->backends_[b];
            if (v.forwarding != SLUICE_FWD_L2DSR) {
                if (be.family == SLUICE_FAMILY_IPV4 && !has_v4_)
                    return make_error(name + ": IPv4 backend " + std::to_string(b) + " but no local IPv4 address");
                if (be.family == SLUICE_FAMILY_IPV6 && !has_v6_)
                    return make_error(name + ": IPv6 backend " + std::to_string(b) + " but no local IPv6 address");
            }
        }
        if (!st->vips_.insert(v.key, VipTable::kService, v.vip_id)) return make_error(name + ": service added twice");
        // An IPv4 key with stray bytes past the address matches no packet in
        // VipTable (packets' addresses are zero-padded): nor here.
        static constexpr uint8_t kZero[12] = {};
        if (v.key.family == SLUICE_FAMILY_IPV4 && std::memcmp(v.key.addr.bytes + 4, kZero, 12) == 0)
            st->services_v4_.insert(ServiceV4Table::pack(v.key.addr.v4, v.key.port, v.key.proto), v.vip_id);
        sluice_vip_key addr_key{};
        addr_key.addr = v.key.addr;
        addr_key.family = v.key.family;
        (void)st->vips_.insert(addr_key, VipTable::kAddress, v.vip_id);  // shared by a VIP's services
        by_proto[{v.key.family, std::string(reinterpret_cast<const char*>(v.key.addr.bytes), 16), v.key.proto}]
            .push_back(&v);

        VipRuntime& rt = st->vip_by_id_[v.vip_id];
        st->rings_.push_back(v.ring);  // shares the body: the data pointer below stays valid
        rt.ring = v.ring.data();
        rt.meta = {};
        rt.meta.vip_id = v.vip_id;
        rt.meta.ring_size = static_cast<uint32_t>(v.ring.size());
        rt.meta.ring_id = v.vip_id;
        rt.meta.forwarding = v.forwarding;
        rt.meta.flags = v.flags;
        rt.meta.gue_dport = __builtin_bswap16(v.gue_port);
        rt.ring_reciprocal = fastmod_reciprocal(rt.meta.ring_size);
        rt.key = v.key;
        rt.present = true;
    }
    for (const auto& [k, services] : by_proto) {
        const VipSpec* chosen = nullptr;
        for (const VipSpec* s : services) {
            if (s->key.port == 0) chosen = s;
        }
        if (chosen == nullptr && services.size() == 1) chosen = services.front();
        sluice_vip_key fk = services.front()->key;
        fk.port = 0;
        (void)st->vips_.insert(fk, VipTable::kFragment, chosen != nullptr ? chosen->vip_id : VipTable::kAmbiguous);
    }
    return std::unique_ptr<const ForwardingState>(std::move(st));
}

}  // namespace sluice::core
