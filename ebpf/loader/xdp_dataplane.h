// XdpDataplane: loads xdp_lb (libbpf skeleton), fills its maps from a
// Description, flips Maglev rings so no packet ever sees a half-written one,
// attaches to interfaces (native XDP; generic only when allowed, and then
// reported), and pins maps under bpffs so a restarted sluiced keeps the
// connection table and therefore its established flows.
//
// Thread safety: one control-plane thread owns an XdpDataplane; none of its
// methods may run concurrently. The data plane (the BPF program on every
// CPU) reads the maps at any time; every write below is ordered so that a
// reader sees either the old or the new state of each service.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "core/conn_census.h"
#include "loader/description.h"

extern "C" {
#include "abi/flow.h"
#include "abi/tables.h"
#include "abi/wire.h"
}

struct xdp_lb;  // the generated skeleton

namespace sluice::xdp {

struct OpenOptions {
    // bpffs directory for the maps (created if missing). Empty: nothing is
    // pinned and the maps die with the object. When it already holds maps of
    // the same names and layouts, they are reused (restart).
    std::string pin_dir;
    // Connection-table entries per CPU (the DPDK plane's conn_table_size
    // per worker): rounded up to a power-of-two count of 8-way buckets. The
    // table takes 64 bytes per entry per CPU up to the highest online one
    // (or 64 bytes per entry in all, shared_conn_table).
    // A pinned table of another size (or CPU count, or sharing) is
    // dropped: its flows are picked again.
    uint32_t conn_table_size = 1048576;
    // Where open() reports what it did to pinned state (stale pins removed).
    std::function<void(const std::string&)> log;
    // xlb_fast_path_mode (ebpf/xdp/fast_path.h): 1 the fast path for the
    // common packet first (production), 0 the general path only, 2 as 1 and
    // its packets counted in fast_path_packets() (tests: a shared counter).
    uint8_t fast_path_mode = 1;
    // One connection table shared by every CPU instead of a partition per
    // CPU (xlb_conn_cpu_mask, ebpf/xdp/conn_table.h): for interfaces where
    // a flow can change CPU mid-flow (veth: the sending CPU runs the
    // program). conn_table_size is then the whole table's size. The driver
    // decides (dataplane.xdp.conn_table_mode).
    bool shared_conn_table = false;
};

// The node counters summed over every possible CPU, and each CPU's own for
// CPU ids up to the highest online one now (a VM may declare hundreds of
// possible CPUs that never run).
struct StatsByCpu {
    sluice_stats total{};
    std::vector<sluice_stats> per_cpu;  // by CPU id
};

// A connection entry as one CPU's partition holds it.
struct ConnectionEntry {
    uint32_t cpu;             // partition (CPU) it lives in; 0 in a shared table
    sluice_conn_entry entry;  // a copy; backend_id SLUICE_BACKEND_NONE = forgotten
};

enum class AttachMode { kNative, kGeneric };

// The live ring of a service, for tests and diagnostics.
struct RingInfo {
    uint32_t ring_id;    // 2 * vip_id + generation
    uint32_t ring_size;  // M
};

class XdpDataplane {
public:
    // Control plane. Opens and loads the program and its maps (reusing
    // pinned ones under options.pin_dir); errors carry libbpf's reason.
    static Result<std::unique_ptr<XdpDataplane>> open(const OpenOptions& options);
    // Detaches from every interface this object attached to. Pinned maps
    // stay (that is the point of pinning); call unpin() to remove them.
    ~XdpDataplane();
    XdpDataplane(const XdpDataplane&) = delete;
    XdpDataplane& operator=(const XdpDataplane&) = delete;

    // Control plane. Makes the maps describe `desc`: new backends first,
    // then rings (each written into the VIP's inactive ring and flipped with
    // one map update), then addresses; what `desc` no longer has is removed
    // last, after the services that used it. Validates before writing.
    Result<void> apply(const Description& desc);

    // Control plane. Replaces one service's ring (same size or not): writes
    // the inactive ring (changed slots only, batched), flips the service's
    // entry, then waits until no CPU can still be reading the old ring so it
    // may be reused by the next update. Backends it names must be applied.
    Result<void> update_ring(uint32_t vip_id, const core::SharedRing& ring);

    // Control plane. Maps interface `ifindex` to port `port_id` (ingress
    // lookup, and the redirect target when the port is an egress).
    Result<void> bind_interface(uint32_t ifindex, uint16_t port_id);

    // Control plane. Attaches in native mode; if the driver refuses and
    // `allow_generic`, in generic (skb) mode. Returns the mode used.
    Result<AttachMode> attach(uint32_t ifindex, bool allow_generic);
    // Control plane. Attaches in `mode`; kNative falls back to generic only
    // when `allow_generic_fallback`. Returns the mode used.
    Result<AttachMode> attach(uint32_t ifindex, AttachMode mode, bool allow_generic_fallback);
    Result<void> detach(uint32_t ifindex);

    // Removes the pinned maps and the pin directory (decommissioning).
    Result<void> unpin();

    // Node counters summed over CPUs. These two only read maps through
    // descriptors fixed at open(), so unlike the rest they may run on any
    // thread, concurrently with the owner's calls.
    Result<sluice_stats> read_stats() const;
    // The same with each CPU's own, from one read of the map.
    Result<StatsByCpu> read_stats_by_cpu() const;
    // What was sent to each of `ids` (packets and bytes after
    // encapsulation), summed over CPUs, in the order of `ids`.
    Result<std::vector<sluice_counter>> read_backend_counters(const std::vector<uint32_t>& ids) const;
    // The entries of a flow, one per CPU partition that has one (live or
    // idle past their timeout: the caller judges; a flow that moved between
    // CPUs has several). `key` as the program builds it (client port zero
    // for hash_no_sport services). Any thread, like the two above: a racy
    // copy of memory the program writes, re-checked against the key, so at
    // worst a miss or a stale answer.
    std::vector<ConnectionEntry> lookup_connection(const sluice_flow_key& key) const;
    // Entries that name a backend, over all CPUs (diagnostics, benchmarks).
    size_t count_connections() const;
    // Entries the table holds at most, over all CPUs.
    size_t connection_capacity() const;
    // CPU partitions: CPU ids 0 .. this - 1 have one (the highest online
    // id + 1 at open(), at most the possible CPUs).
    uint32_t connection_partitions() const;
    // Whether every CPU shares one partition (OpenOptions::shared_conn_table).
    bool shared_connection_table() const { return conn_shared_; }
    // Each partition's live entries at `now` (connection_clock_ns()), with
    // `timeout` by entry state on that clock, from a sample of its buckets
    // (core/conn_census.h); in partition (CPU) order. Any thread, racy like
    // lookup_connection().
    std::vector<core::ConnCensus> connection_census(uint64_t now, const uint64_t (&timeout)[SLUICE_CONN_STATES]) const;
    // Live entries per backend id over every partition (SLUICE_MAX_BACKENDS
    // counts; a walk of the whole table), judged as connection_census().
    std::vector<uint64_t> connections_by_backend(uint64_t now, const uint64_t (&timeout)[SLUICE_CONN_STATES]) const;
    // The connection table's clock now, in ns: what the program writes in
    // last_seen and measures conn_timeout_ns against (the jiffies clock,
    // whose epoch is not CLOCK_MONOTONIC's; see ebpf/xdp/conn_table.h).
    // Read by running the program's sluice_xdp_clock. Any thread.
    Result<uint64_t> connection_clock_ns() const;
    // The tick that clock advances by (10^9 / HZ, rounded down), or 0 when
    // the loader could not read the kernel's HZ and the program uses the
    // coarse monotonic clock (the same resolution) instead.
    uint64_t connection_clock_tick_ns() const;
    // Packets the fast path took since open(), all CPUs; 0 unless opened
    // with fast_path_mode 2. Owner thread (a plain read of the counter).
    uint64_t fast_path_packets() const;
    // Empties the connection table (tests; operators after a drain).
    Result<void> clear_connections();
    // Makes the next apply() restart every VIP's rate-limit buckets, full,
    // as if each VIP were new (tests: a fixture's fresh state). Without it
    // apply() keeps the buckets of VIPs whose limits did not change. Owner
    // thread.
    void restart_rate_limits_at_next_apply() { rate_limits_.clear(); }
    // The valid backends the maps hold now, by id: what a previous process
    // left in pinned maps, before the first apply() of this one.
    Result<std::map<uint32_t, sluice_backend>> current_backends() const;
    // Forgets every connection entry that names one of `backend_ids` (one
    // walk of the table: its backend becomes SLUICE_BACKEND_NONE, so the
    // flow's next packet is picked by Maglev and re-pinned in place);
    // returns how many. A restarted sluiced calls it
    // for ids whose backend it assigns differently from the process that
    // pinned the table, so no flow follows an id to another backend.
    Result<size_t> forget_connections_to(const std::set<uint32_t>& backend_ids);
    // The live ring of a service, if it has one.
    Result<RingInfo> live_ring(uint32_t vip_id) const;

    int program_fd() const;
    int map_fd(const std::string& name) const;  // -1 for an unknown name
    // Verified program size, for reports.
    uint32_t program_instructions() const;
    // Instructions the verifier processed to accept the program, of the
    // 1,000,000 it allows (BPF_COMPLEXITY_LIMIT_INSNS); 0 when the kernel
    // does not say (before 5.16).
    uint32_t verifier_processed_instructions() const;

private:
    struct RingSlot {
        int fd = -1;                     // inner map, owned
        core::SharedRing content;        // what it holds; empty = unknown (write all)
    };
    struct Service {
        sluice_vip_key key{};
        sluice_vip_meta meta{};          // as last written (ring_id = live ring)
        bool has_live = false;
        RingSlot slots[2];
    };

    // One VIP's rate-limit buckets as last (re)initialised in
    // sluice_buckets_v2: apply() leaves them (tokens, last refill, carry on
    // every CPU) alone while the same service keeps the same limits, as
    // DPDK's WorkerRateLimiter::sync does (dataplane/filter/rate_limit.h).
    struct AppliedRateLimit {
        sluice_vip_key key{};            // the service the slot belongs to
        bool totals_known = false;       // false: adopted from pins, only per_cpu known
        RateLimitSpec limits{};          // the configured totals (totals_known)
        uint32_t shares = 0;             // split into this many shares (totals_known)
        std::vector<uint64_t> per_cpu;   // [kind][cpu] rate, burst: what the map holds
    };

    XdpDataplane() = default;
    Result<void> adopt_pinned_state();
    Result<void> write_ring(Service& s, uint32_t gen, const core::SharedRing& ring);
    Result<void> flip(Service& s, const core::SharedRing& ring);
    Result<void> wait_for_readers(const Service& s, uint32_t gen);
    Result<void> write_acl(const Description& desc, bool& global_acl, std::set<uint32_t>& vip_acl);
    Result<void> write_rate_limits(const Description& desc);
    static std::vector<uint64_t> bucket_shares(const RateLimitSpec& limits, uint32_t shares, uint32_t ncpu);
    static bool same_buckets(const AppliedRateLimit& applied, const AppliedRateLimit& want);
    Result<void> write_vip_addresses(const Description& desc);
    Result<void> remove_service(Service& s);
    void close_service(Service& s);

    Result<void> prepare_conn_table(const OpenOptions& options);
    Result<void> bump_vip_generation();
    // Interface bindings and the port records built from them and ports_
    // (xdp_ports.cpp). map_interface records a binding (and writes the
    // hash map for an ifindex >= ifindex_direct()); write_ifport_records
    // then brings sluice_ifport_records_v1 in line, after the ports.
    Result<void> map_interface(uint32_t ifindex, uint32_t port_id);
    Result<void> write_ifport_records();
    sluice_ifport_record ifport_record(uint16_t in_id, bool bound) const;
    uint32_t ifindex_direct() const;  // SLUICE_XDP_IFINDEX_DIRECT as built
    Result<void> adopt_bindings(const std::function<void(const std::string&)>& log);
    Result<void> map_conn_table();

    xdp_lb* skel_ = nullptr;
    std::string pin_dir_;
    // The connection table, mapped: conn_cpus_ partitions of
    // (1 << conn_shift_) buckets.
    sluice_conn_bucket* conn_buckets_ = nullptr;
    size_t conn_map_bytes_ = 0;
    uint32_t conn_shift_ = 0;
    uint32_t conn_cpus_ = 0;
    bool conn_shared_ = false;
    uint64_t conn_tick_ns_ = 0;  // xlb_ns_per_tick as loaded
    uint64_t vip_gen_ = 0;  // sluice_vip_gen as last written
    std::map<uint32_t, Service> services_;          // by vip_id
    std::map<uint32_t, AppliedRateLimit> rate_limits_;  // by vip_id, each live service's
    std::map<uint16_t, sluice_port_config> ports_;  // as written
    std::map<uint32_t, uint16_t> bindings_;         // ifindex → port id, every one made (never unbound)
    std::map<uint32_t, sluice_ifport_record> ifport_records_;  // slot → record, as written
    std::set<uint32_t> backend_ids_;                // ids written valid by apply()
    std::set<std::vector<uint8_t>> acl4_keys_, acl6_keys_, vip_addr_keys_;
    std::set<uint32_t> attached_;                   // ifindex → attached by us
    std::map<uint32_t, uint32_t> attach_flags_;
};

}  // namespace sluice::xdp
