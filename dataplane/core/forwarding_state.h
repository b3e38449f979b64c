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
#include "core/packet.h"

extern "C" {
#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::core {

constexpr uint16_t kMaxPorts = 16;

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

class ForwardingStateBuilder;

class ForwardingState {
public:
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

    // The VIP with this dense id, or nullptr.
    const VipRuntime* vip(uint32_t vip_id) const
    {
        return vip_id < vip_by_id_.size() && vip_by_id_[vip_id].present ? &vip_by_id_[vip_id] : nullptr;
    }

private:
    friend class ForwardingStateBuilder;
    ForwardingState() = default;

    VipTable vips_;
    std::vector<VipRuntime> vip_by_id_;  // dense by vip_id
    std::vector<uint32_t> rings_;        // all rings back to back
    std::vector<sluice_backend> backends_;
    std::array<PortConfig, kMaxPorts> ports_{};
    sluice_addr local_v4_{};
    sluice_addr local_v6_{};
    bool exception_path_ = true;
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
        std::vector<uint32_t> ring;     // Maglev ring, prime size
    };

    ForwardingStateBuilder& set_local_ipv4(const sluice_addr& addr);
    ForwardingStateBuilder& set_local_ipv6(const sluice_addr& addr);
    ForwardingStateBuilder& set_exception_path(bool enabled);
    ForwardingStateBuilder& add_port(uint16_t id, const PortConfig& port);
    ForwardingStateBuilder& add_backend(uint32_t id, const sluice_backend& backend);
    ForwardingStateBuilder& add_vip(VipSpec vip);

    // Validates everything a worker relies on without checking again (ids in
    // range, rings prime and naming existing backends, ports and local
    // addresses present where used) and returns the immutable snapshot.
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
};

// True for a prime n (trial division; control plane only).
bool is_prime(uint32_t n);

}  // namespace sluice::core
