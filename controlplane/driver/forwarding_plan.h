// The forwarding plan: what every data plane must do, derived from the model
// and independent of how a plane does it. A driver turns it into its own
// form (DPDK: a core::ForwardingState snapshot; XDP: BPF map contents).
// Building it is where Maglev tables are made and backend ids are assigned.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "core/shared_ring.h"
#include "driver/id_allocator.h"
#include "maglev/maglev.h"
#include "model/config.h"

namespace sluice::driver {

// One NIC port (DPDK) or interface (XDP) the data plane owns.
struct PlanPort {
    std::string name;              // operator's label
    std::string device;            // PCI address / vdev devargs (DPDK) or interface name (XDP)
    uint16_t rx_queues = 0;        // 0 = one per worker
    uint16_t egress = 0;           // index into NodePlan::ports where VIP traffic received here leaves
};

// Settings of this node that are not per service.
struct NodePlan {
    std::vector<PlanPort> ports;                 // in config order
    std::optional<model::IpAddress> source_ipv4; // outer source of IPv4 encapsulation
    std::optional<model::IpAddress> source_ipv6; // outer source of IPv6 encapsulation
    std::optional<model::IpAddress> gateway_ipv4;  // next hop of IPIP/GUE to IPv4 backends
    std::optional<model::IpAddress> gateway_ipv6;  // next hop of IPIP/GUE to IPv6 backends
    std::optional<model::MacAddress> next_hop_mac; // fixed next hop of IPIP/GUE; no resolution
    bool exception_path = true;                  // non-VIP traffic to the host kernel
    std::string exception_tap;                   // name of the TAP for that
    uint32_t conn_table_size = 1048576;          // entries per worker
    model::ConnectionTimeouts timeouts;          // connection-table idle timeouts
    uint32_t icmp_errors_per_sec = 1000;         // ICMP errors per worker/CPU per second; 0 = unlimited
    uint32_t icmp_errors_burst = 50;             // that bucket's depth
};

// One backend of one service.
struct PlanBackend {
    uint32_t id = 0;            // global dense id, stable for (service, address)
    model::IpAddress address;   // outer destination (IPIP/GUE) or L2 next hop (L2 DSR)
    uint32_t weight = 0;        // Maglev weight; 0 while draining
    bool draining = false;      // valid for established flows, in no slot
};

struct PlanService {
    std::string name;                // unique service name
    uint32_t vip_id = 0;             // dense id, stable for (protocol, VIP endpoint)
    model::Endpoint vip;             // address and port (0 = all ports)
    model::Protocol protocol = model::Protocol::kTcp;
    model::Forwarding forwarding = model::Forwarding::kIpip;
    uint16_t gue_port = 0;           // GUE destination port (host order); GUE only
    uint8_t flags = 0;               // SLUICE_VIP_F_*
    std::vector<PlanBackend> backends;  // sorted by Maglev id (the table's order)
    // table_size slots of global backend ids or SLUICE_BACKEND_NONE. Shared:
    // the next plan reuses this ring while the service's table and ids stay
    // the same, and a DPDK snapshot holds it without a copy.
    core::SharedRing ring;
    uint64_t fingerprint = 0;        // maglev::fingerprint of the table; nodes compare it
    model::Filter filter;            // this VIP's own ACL and payload rules (after the global ones)
    model::RateLimits rate_limit;    // this VIP's token buckets (node totals)
};

struct ForwardingPlan {
    NodePlan node;
    std::vector<PlanService> services;  // in config order
    model::Filter global_filter;        // [filter]: every VIP
    std::vector<std::string> warnings;  // what the plan leaves out, for the log
};

// True when the plan asks for any filter (an ACL prefix, a payload rule or
// a rate limit, global or per VIP): a data plane without filters must not
// pretend to run it.
bool has_filters(const ForwardingPlan& plan);

// Builds plans and keeps the id allocators that make backend and VIP ids
// stable from one plan to the next, so one instance lives as long as the
// daemon. Control thread only; not thread-safe.
class PlanBuilder {
public:
    // `clock` feeds the id quarantine (tests inject one).
    explicit PlanBuilder(StableIdAllocator::Clock clock = [] { return std::chrono::steady_clock::now(); });

    // The plan for `config`, from each service's static backend list: the
    // ServiceManager hands it discovered pools resolved into that list. A
    // service that still has a discovery source gets an empty table (a
    // warning says so). Errors:
    // Maglev refusals (table size) and id exhaustion; on error the ids
    // assigned so far stay as they were.
    Result<ForwardingPlan> build(const model::Config& config);

private:
    // Maglev tables are a pure function of (sorted ids and weights, M), so a
    // service whose input did not change reuses its last table: a discovery
    // change in one of 100 services rebuilds one table, not 100. Its ring
    // (the table in global ids) is reused too while those ids stay the same,
    // so that service's plan entry costs no copy of M slots either.
    struct BuiltTable {
        maglev::Table table;
        uint64_t fingerprint = 0;  // maglev::fingerprint(table): as costly as the build itself
    };
    struct CachedTable {
        std::vector<std::pair<std::string, uint32_t>> input;  // (Maglev id, weight) as given
        uint32_t table_size = 0;
        std::shared_ptr<const BuiltTable> built;
        std::shared_ptr<const BuiltTable> ring_table;  // the table `ring` was made from (may be older than built)
        std::vector<uint32_t> ring_ids;  // global id of each table.ids entry that `ring` was made with
        core::SharedRing ring;           // ring_table's slots in ring_ids; empty until the first plan
        // The service's backends as the last plan saw them (config order),
        // and what was derived from them: an unchanged pool skips the
        // address-to-text conversions and the id lookups (work per backend
        // of every service, which outweighed the one changed table).
        std::vector<std::pair<model::IpAddress, uint32_t>> pool;  // (address, Maglev weight)
        std::vector<uint32_t> order;     // index into the pool of each table.ids entry
        std::vector<std::string> keys;   // backend_id_key() of each table.ids entry
    };
    Result<std::shared_ptr<const BuiltTable>> table_for(const std::string& service,
                                                        const std::vector<maglev::Backend>& input,
                                                        uint32_t table_size);

    StableIdAllocator backend_ids_;
    StableIdAllocator vip_ids_;
    std::map<std::string, CachedTable> tables_;  // by service name
    // The allocator's last answer: the services it covered (config order)
    // and the ids of their keys (tables_[name].keys, in that order). While
    // no service's keys change (a drain, a weight change, a republish) the
    // same keys get these ids without hashing 100 000 keys again, which is
    // what StableIdAllocator::assign would answer. Cleared as soon as a
    // build sees any service's keys change, even if it then fails.
    std::vector<std::string> last_services_;
    std::vector<uint32_t> last_backend_ids_;
    bool last_ids_valid_ = false;
};

// The addresses whose MACs the plan needs (L2 DSR backends, and the
// gateway of each family IPIP/GUE backends use unless a fixed next hop is
// set), sorted and unique: what a driver must resolve (DPDK by ARP/ND
// itself, XDP through the kernel).
std::vector<model::IpAddress> next_hop_addresses(const ForwardingPlan& plan);

// The key a backend's id is kept under: one id per (service, address).
std::string backend_id_key(const std::string& service, const model::IpAddress& address);

// The Maglev id of a backend (decides its permutation, so every node must
// derive the same one): its address. The backend port is only where health
// checks probe, so changing it must not reshuffle the table.
std::string maglev_id(const model::IpAddress& address);

// How long a released backend id stays unusable: the longest connection
// idle timeout (after which no entry can still name it) plus a margin.
std::chrono::milliseconds id_quarantine(const model::ConnectionTimeouts& timeouts);

}  // namespace sluice::driver
