// The forwarding snapshot workers read: VIPs, backends, Maglev rings, ports
// and local addresses. The control plane builds one with
// ForwardingStateBuilder and publishes it whole (one atomic pointer store,
// freed after an RCU grace period, see dataplane/dpdk/rcu_publisher.h);
// after build() nothing in it changes, so workers read it without locks.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "common/result.h"
#include "core/fast_mod.h"
#include "core/icmp_limit.h"
#include "core/packet.h"
#include "core/shared_ring.h"

extern "C" {
#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::core {

constexpr uint16_t kMaxPorts = 16;
// The smallest port MTU a state accepts (abi/tables.h, as the XDP loader).
constexpr uint16_t kMinPortMtu = SLUICE_MIN_PORT_MTU;

// One NIC port as the worker sees it.
struct PortConfig {
    uint8_t mac[6];          // our MAC on this port: source of everything we send on it
    uint8_t nexthop_mac[6];  // router toward the backends when this port is an egress (IPIP/GUE)
    uint16_t mtu;            // L3 MTU: the largest IP packet we may send on it
    uint16_t egress_port;    // where VIP traffic received here leaves; itself = one-arm
    bool present;            // configured
};

// Per-VIP data the worker needs after the lookup, dense by vip_id.
struct VipRuntime {
    const uint32_t* ring;             // Maglev ring: meta.ring_size backend ids
    uint64_t ring_reciprocal;         // fastmod_reciprocal(meta.ring_size)
    struct sluice_vip_meta meta;      // id, ring size, forwarding, flags, GUE port
    struct sluice_vip_key key;        // the service key, for diagnostics
    bool present;                     // a VIP with this id exists
};

// Open-addressing hash (linear probing, load <= 1/2) over three kinds of
// entries sharing one array: services (address, port or 0, protocol), VIP
// addresses alone (to tell "VIP, wrong port" from "not ours"), and the
// service fragments of an (address, protocol) go to. Probes stop at an
// empty slot, so a miss costs about two probes at this load.
class VipTable {
public:
    enum Kind : uint8_t { kEmpty = 0, kService = 1, kAddress = 2, kFragment = 3 };
    static constexpr uint32_t kAmbiguous = 0xFFFFFFFFu;  // kFragment: several services, none port 0

    struct Entry {
        struct sluice_vip_key key;  // kAddress: port 0, proto 0
        uint8_t kind;               // Kind
        uint8_t pad[3];             // zero
        uint32_t vip_id;            // or kAmbiguous
    };

    // Control plane: sized for `n` entries.
    void reset(size_t n);
    // Control plane: false if the (key, kind) pair is already present.
    bool insert(const sluice_vip_key& key, Kind kind, uint32_t vip_id);
    // Any thread: the entry for (key, kind), or nullptr. Inline: it runs
    // once or twice per packet, and a call plus a re-hash out of line cost
    // more than the probe itself.
    SLUICE_ALWAYS_INLINE const Entry* find(const sluice_vip_key& key, Kind kind) const
    {
        if (SLUICE_UNLIKELY(slots_.empty())) return nullptr;
        const Entry* const slots = slots_.data();
        // Terminates: reset() keeps at least half the slots empty.
        for (uint32_t i = hash(key, kind);; ++i) {
            const Entry& e = slots[i & mask_];
            if (e.kind == kEmpty) return nullptr;
            if (e.kind == kind && std::memcmp(&e.key, &key, sizeof(key)) == 0) return &e;
        }
    }

private:
    // Slot hash of a (key, kind). Internal to this table (insert and find
    // agree; nothing else sees it), so it need not be the flow hash: three
    // xor-multiply steps and the product's high half, whose bits depend on
    // every input bit. Good enough for linear probing at load <= 1/2 over a
    // few thousand control-plane-chosen keys, at a fraction of the cost of
    // sluice_hash_finish.
    static SLUICE_ALWAYS_INLINE uint32_t hash(const sluice_vip_key& key, Kind kind)
    {
        static_assert(sizeof(sluice_vip_key) == 20, "three words below");
        uint64_t w0, w1;
        uint32_t w2;
        std::memcpy(&w0, reinterpret_cast<const uint8_t*>(&key), 8);
        std::memcpy(&w1, reinterpret_cast<const uint8_t*>(&key) + 8, 8);
        std::memcpy(&w2, reinterpret_cast<const uint8_t*>(&key) + 16, 4);
        uint64_t h = (w0 ^ SLUICE_FLOW_HASH_SEED) * SLUICE_FLOW_HASH_MUL;
        h = (h ^ w1) * SLUICE_FLOW_HASH_MUL;
        h = (h ^ (static_cast<uint64_t>(w2) | static_cast<uint64_t>(kind) << 32)) * SLUICE_FLOW_HASH_MUL;
        return static_cast<uint32_t>(h >> 32);
    }
    std::vector<Entry> slots_;
    uint32_t mask_ = 0;
};

// The fast path's service lookup for IPv4 (core/fast_path.h): the same
// services as VipTable's kService entries of family IPv4, keyed by one
// 64-bit word (address, port, protocol) so a probe is a multiply, a load
// and a compare instead of VipTable's three-word hash and 20-byte memcmp.
// Open addressing with linear probing at load <= 1/4; key 0 marks an empty
// slot (a packed key always has bit 56 set).
class ServiceV4Table {
public:
    static constexpr uint32_t kNone = 0xFFFFFFFFu;

    // The packed key of (address, port, protocol), address and port as on
    // the wire.
    static SLUICE_ALWAYS_INLINE uint64_t pack(uint32_t addr, uint16_t port, uint8_t proto)
    {
        return static_cast<uint64_t>(addr) | static_cast<uint64_t>(port) << 32 |
               static_cast<uint64_t>(proto) << 48 | uint64_t{1} << 56;
    }

    // Control plane: sized for `n` services.
    void reset(size_t n);
    // Control plane: the caller inserts each key once (VipTable refused duplicates).
    void insert(uint64_t key, uint32_t vip_id);

    // Any thread: the vip_id of a packed key, or kNone.
    SLUICE_ALWAYS_INLINE uint32_t find(uint64_t key) const
    {
        // Terminates: reset() keeps at least three quarters of the slots empty.
        for (uint32_t i = slot(key);; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.key == key) return s.vip_id;
            if (s.key == 0) return kNone;
        }
    }

private:
    struct Slot {
        uint64_t key;     // pack(), or 0: empty
        uint32_t vip_id;  // the service
        uint32_t pad;     // zero
    };
    SLUICE_ALWAYS_INLINE uint32_t slot(uint64_t key) const
    {
        return static_cast<uint32_t>((key * SLUICE_FLOW_HASH_MUL) >> 40) & mask_;
    }
    std::vector<Slot> slots_;
    uint32_t mask_ = 0;
};

// What the fast path needs about the port a packet arrived on, derived at
// build time from PortConfig: the egress port and the Ethernet header of an
// IPv4 tunnel packet leaving on it (next hop, our MAC, EtherType IPv4).
struct alignas(32) FastIngress {
    uint8_t l2_ipv4[16];  // 14 header bytes + 2 zero (one 16-byte store)
    uint16_t egress_port; // PortConfig::egress_port
    uint16_t mtu;         // egress L3 MTU
    bool one_arm;         // egress_port == this port (a VLAN tag stays)
    bool tunnel_ready;    // port present and the egress next-hop MAC known
};
static_assert(sizeof(FastIngress) == 32, "indexed by a shift");

// The precomputed part of a backend's outer IPv4 header (IPIP/GUE 4in4):
// its addresses and their RFC 1071 sum with the constant words (version/IHL
// 0x45, TTL 64), folded to 16 bits, to which a packet adds only its own
// fields.
struct FastOuterV4 {
    uint32_t saddr;  // local IPv4 address, wire order
    uint32_t daddr;  // backend address, wire order
    uint32_t sum;    // sluice_csum_fold(saddr + daddr + wire_word(0x45, 0) + wire_word(64, 0))
    uint32_t pad;    // zero
};

class ForwardingStateBuilder;

class ForwardingState {
public:
    // The IPv4 service for a flow, as find_service() gives it, by the fast
    // path's table: exact port first, then the port-0 service.
    SLUICE_ALWAYS_INLINE const VipRuntime* find_service_v4(uint32_t addr, uint16_t port, uint8_t proto) const
    {
        uint32_t id = services_v4_.find(ServiceV4Table::pack(addr, port, proto));
        if (id == ServiceV4Table::kNone && port != 0) id = services_v4_.find(ServiceV4Table::pack(addr, 0, proto));
        return id != ServiceV4Table::kNone ? &vip_by_id_[id] : nullptr;
    }

    // The fast path's view of an arrival port, any id (one not configured,
    // or beyond kMaxPorts, reads as !tunnel_ready).
    SLUICE_ALWAYS_INLINE const FastIngress& fast_ingress(uint16_t in_port) const
    {
        return fast_ingress_[in_port < kMaxPorts ? in_port : kMaxPorts];
    }

    // The precomputed outer IPv4 header of a backend (valid IPv4 backends of
    // a state with a local IPv4 address; id < backend_count()).
    SLUICE_ALWAYS_INLINE const FastOuterV4& fast_outer_v4(uint32_t id) const { return fast_outer_v4_[id]; }

    // The service for a flow: exact port first, then the port-0 ("all
    // ports") service of the same protocol.
    SLUICE_ALWAYS_INLINE const VipRuntime* find_service(const sluice_flow_key& key) const
    {
        sluice_vip_key vk{};
        vk.addr = key.dst;
        vk.port = key.dport;
        vk.proto = key.proto;
        vk.family = key.family;
        const VipTable::Entry* e = vips_.find(vk, VipTable::kService);
        if (e == nullptr && key.dport != 0) {
            vk.port = 0;
            e = vips_.find(vk, VipTable::kService);
        }
        return e != nullptr ? &vip_by_id_[e->vip_id] : nullptr;
    }

    // The service that receives fragments to (address, protocol): its port-0
    // service, else its only service of that protocol. `ambiguous` is set
    // when several services share the protocol and none is port 0.
    SLUICE_ALWAYS_INLINE const VipRuntime* find_fragment_service(const sluice_flow_key& key,
                                                                 bool& ambiguous) const
    {
        sluice_vip_key vk{};
        vk.addr = key.dst;
        vk.proto = key.proto;
        vk.family = key.family;
        const VipTable::Entry* e = vips_.find(vk, VipTable::kFragment);
        ambiguous = e != nullptr && e->vip_id == VipTable::kAmbiguous;
        return e != nullptr && !ambiguous ? &vip_by_id_[e->vip_id] : nullptr;
    }

    // True when `addr` is the address of any VIP (any port or protocol).
    SLUICE_ALWAYS_INLINE bool is_vip_address(uint8_t family, const sluice_addr& addr) const
    {
        sluice_vip_key vk{};
        vk.addr = addr;
        vk.family = family;
        return vips_.find(vk, VipTable::kAddress) != nullptr;
    }

    // The backend with this id, or nullptr beyond the table.
    SLUICE_ALWAYS_INLINE const sluice_backend* backend(uint32_t id) const
    {
        return id < backends_.size() ? &backends_[id] : nullptr;
    }
    size_t backend_count() const { return backends_.size(); }

    // The port's configuration, or nullptr if it is not configured.
    SLUICE_ALWAYS_INLINE const PortConfig* port(uint16_t id) const
    {
        return id < kMaxPorts && ports_[id].present ? &ports_[id] : nullptr;
    }

    // Source address of outer headers of this family.
    SLUICE_ALWAYS_INLINE const sluice_addr& local_addr(uint8_t family) const
    {
        return family == SLUICE_FAMILY_IPV4 ? local_v4_ : local_v6_;
    }

    // Whether non-VIP traffic goes to the host kernel (else NOT_FOR_VIP).
    bool exception_path_enabled() const { return exception_path_; }

    // Each worker's limit on the ICMP errors it generates (core/icmp_limit.h).
    const IcmpErrorLimit& icmp_error_limit() const { return icmp_error_limit_; }

    // The VIP with this dense id, or nullptr.
    const VipRuntime* vip(uint32_t vip_id) const
    {
        return vip_id < vip_by_id_.size() && vip_by_id_[vip_id].present ? &vip_by_id_[vip_id] : nullptr;
    }

private:
    friend class ForwardingStateBuilder;
    ForwardingState() = default;

    VipTable vips_;
    ServiceV4Table services_v4_;         // the IPv4 kService entries again, for the fast path
    std::vector<VipRuntime> vip_by_id_;  // dense by vip_id
    std::vector<FastOuterV4> fast_outer_v4_;           // by backend id
    std::array<FastIngress, kMaxPorts + 1> fast_ingress_{};  // by arrival port; the last never ready
    // Each VIP's ring, shared with the plan it came from and with other
    // snapshots: VipRuntime::ring points into these bodies, which this
    // snapshot keeps alive until it is itself freed (after the grace period).
    std::vector<SharedRing> rings_;
    std::vector<sluice_backend> backends_;
    std::array<PortConfig, kMaxPorts> ports_{};
    sluice_addr local_v4_{};
    sluice_addr local_v6_{};
    bool exception_path_ = true;
    IcmpErrorLimit icmp_error_limit_{};
};

// Control plane only (allocates, validates, reports errors as text). Not
// thread-safe; build() may be called more than once.
class ForwardingStateBuilder {
public:
    struct VipSpec {
        struct sluice_vip_key key;      // address, port (0 = all), protocol, family
        uint32_t vip_id;                // dense id < SLUICE_MAX_VIPS, stable across rebuilds
        uint8_t forwarding;             // enum sluice_forwarding
        uint8_t flags;                  // SLUICE_VIP_F_*
        uint16_t gue_port;              // GUE destination port, host order (GUE only)
        SharedRing ring;                // Maglev ring, prime size; shared, not copied, into the snapshot
    };

    ForwardingStateBuilder& set_local_ipv4(const sluice_addr& addr);
    ForwardingStateBuilder& set_local_ipv6(const sluice_addr& addr);
    ForwardingStateBuilder& set_exception_path(bool enabled);
    // Per worker; defaults to kDefaultIcmpErrorLimit (the config's defaults),
    // so a state built without it is still limited.
    ForwardingStateBuilder& set_icmp_error_limit(const IcmpErrorLimit& limit);
    ForwardingStateBuilder& add_port(uint16_t id, const PortConfig& port);
    ForwardingStateBuilder& add_backend(uint32_t id, const sluice_backend& backend);
    ForwardingStateBuilder& add_vip(VipSpec vip);

    // Validates everything a worker relies on without checking again (ids in
    // range, rings prime and naming existing backends, ports and local
    // addresses present where used) and returns the immutable snapshot.
    // A ring's backends are checked from SharedRing::backends(), so the cost
    // is per backend a ring names, not per slot, and no ring is copied.
    Result<std::unique_ptr<const ForwardingState>> build() const;

private:
    std::vector<VipSpec> vips_;
    std::vector<std::pair<uint32_t, sluice_backend>> backends_;
    std::vector<std::pair<uint16_t, PortConfig>> ports_;
    sluice_addr local_v4_{};
    sluice_addr local_v6_{};
    bool has_v4_ = false;
    bool has_v6_ = false;
    bool exception_path_ = true;
    IcmpErrorLimit icmp_error_limit_ = kDefaultIcmpErrorLimit;
};

// True for a prime n (trial division; control plane only).
bool is_prime(uint32_t n);

}  // namespace sluice::core
