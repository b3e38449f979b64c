// XdpDataplane: opening, pinning, attaching and reading counters. Filling
// the maps (apply, rings, ACL, limits) is in xdp_apply.cpp.
#include "loader/xdp_dataplane.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "xdp_lb.skel.h"

namespace sluice::xdp {

namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// The scratch map and the ICMP-error buckets are per-CPU working memory,
// not state (a restart starts the buckets full), and the program's
// read-only data (the table's shape) belongs to this load: never pinned.
bool pinnable(const bpf_map* map)
{
    const char* name = bpf_map__name(map);
    return std::strcmp(name, "sluice_xdp_scratch") != 0 && std::strcmp(name, "sluice_vip_cache") != 0 &&
           std::strcmp(name, "sluice_vip_gen") != 0 && std::strcmp(name, "sluice_icmp_bucket") != 0 &&
           !bpf_map__is_internal(map);
}

// Pins of earlier layouts that a new one replaced (a new _vN name): never
// adopted, removed so they do not hold kernel memory for nothing. Each with
// what removing it costs, for the log.
struct StalePin {
    const char* name;
    const char* cost;
};
constexpr StalePin kStalePins[] = {
    // the kernel LRU hash of struct sluice_conn
    {"sluice_conns_v1", "established flows are picked again by Maglev (the same backend wherever the ring did not change)"},
    // last_seen on CLOCK_MONOTONIC_COARSE, not the jiffies clock
    {"sluice_conns_v2", "established flows are picked again by Maglev (the same backend wherever the ring did not change)"},
    // one connection timeout for every state
    {"sluice_node_v1", "none (rewritten from the config)"},
    // no ICMP-error limit
    {"sluice_node_v2", "none (rewritten from the config)"},
    // sluice_stats without icmp_rate_limited
    {"sluice_stats_v1", "the node counters start again from zero"},
    // sluice_token_bucket values, no refill remainder
    {"sluice_buckets_v1", "the per-VIP rate-limit buckets start again full (burst tokens)"},
};

// The kernel's CONFIG_HZ where libbpf finds a __kconfig value:
// /boot/config-$(uname -r), else /proc/config.gz (gzread passes a plain
// file through). 0 when neither says.
uint32_t kernel_hz()
{
    utsname u{};
    const std::string boot = ::uname(&u) == 0 ? std::string("/boot/config-") + u.release : std::string();
    for (const char* path : {boot.c_str(), "/proc/config.gz"}) {
        if (*path == '\0') continue;
        gzFile f = ::gzopen(path, "rb");
        if (f == nullptr) continue;
        char line[256];
        uint32_t hz = 0;
        while (::gzgets(f, line, sizeof(line)) != nullptr) {
            if (std::strncmp(line, "CONFIG_HZ=", 10) == 0) {
                hz = static_cast<uint32_t>(std::strtoul(line + 10, nullptr, 10));
                break;
            }
        }
        ::gzclose(f);
        if (hz != 0) return hz;
    }
    return 0;
}

}  // namespace

Result<std::unique_ptr<XdpDataplane>> XdpDataplane::open(const OpenOptions& options)
{
    std::unique_ptr<XdpDataplane> dp(new XdpDataplane());
    dp->pin_dir_ = options.pin_dir;
    dp->skel_ = xdp_lb__open();
    if (dp->skel_ == nullptr) return make_error("xdp_lb: open failed: " + errno_text(errno));
    if (!dp->pin_dir_.empty()) {
        if (::mkdir(dp->pin_dir_.c_str(), 0700) != 0 && errno != EEXIST)
            return make_error("pin dir " + dp->pin_dir_ + ": " + errno_text(errno) + " (is bpffs mounted there?)");
        // A pin directory on another file system (bpffs not mounted, so
        // the directory landed on tmpfs or the root fs) would fail later
        // with a bare ENOENT or EPERM from the first pin: say what it is.
        struct statfs fs = {};
        if (::statfs(dp->pin_dir_.c_str(), &fs) != 0)
            return make_error("pin dir " + dp->pin_dir_ + ": " + errno_text(errno));
        if (static_cast<unsigned long>(fs.f_type) != BPF_FS_MAGIC)
            return make_error("pin dir " + dp->pin_dir_ +
                              " is not on a bpffs: mount one there first (mount -t bpf bpf /sys/fs/bpf, "
                              "which systemd does at boot) or set dataplane.xdp.pin_path");
        bpf_map* map;
        bpf_object__for_each_map(map, dp->skel_->obj)
        {
            if (!pinnable(map)) continue;
            const std::string path = dp->pin_dir_ + "/" + bpf_map__name(map);
            if (int err = bpf_map__set_pin_path(map, path.c_str()); err != 0)
                return make_error("pin path " + path + ": " + errno_text(err));
        }
    }
    if (Result<void> r = dp->prepare_conn_table(options); !r) return make_error(r.error());
    // libbpf reuses a pinned map of the same name when its type, sizes and
    // flags match, and refuses to load otherwise (a layout change comes with
    // a new _vN name, so an old pin is simply left alone).
    if (int err = xdp_lb__load(dp->skel_); err != 0)
        return make_error("xdp_lb: load failed: " + errno_text(err) +
                          " (verifier log above; a pinned map of another layout also fails here)");
    if (Result<void> r = dp->map_conn_table(); !r) return make_error(r.error());
    if (Result<void> r = dp->bump_vip_generation(); !r) return make_error(r.error());
    if (!dp->pin_dir_.empty()) {
        if (Result<void> r = dp->adopt_pinned_state(); !r) return make_error(r.error());
        if (Result<void> r = dp->adopt_bindings(options.log); !r) return make_error(r.error());
    }
    return dp;
}

XdpDataplane::~XdpDataplane()
{
    for (uint32_t ifindex : std::set<uint32_t>(attached_)) (void)detach(ifindex);
    for (auto& [id, s] : services_) close_service(s);
    if (conn_buckets_ != nullptr) ::munmap(conn_buckets_, conn_map_bytes_);
    if (skel_ != nullptr) xdp_lb__destroy(skel_);
}

// One partition per CPU id up to the highest online one: a VM may declare
// far more possible CPUs than it has, and 64 MiB per partition (the
// default) for CPUs that never run would be memory for nothing. A CPU
// brought online later with a higher id finds no partition: its packets
// are forwarded by Maglev alone (counted as misses) until a restart.
static int conn_partitions()
{
    const int possible = libbpf_num_possible_cpus();
    std::FILE* f = std::fopen("/sys/devices/system/cpu/online", "r");
    if (f == nullptr) return possible;
    char buf[4096] = {};
    const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
    std::fclose(f);
    int highest = -1;
    for (size_t i = 0; i < n;) {  // "0-3,8,10-11\n": the last number of each range
        if (buf[i] < '0' || buf[i] > '9') {
            ++i;
            continue;
        }
        int v = 0;
        while (i < n && buf[i] >= '0' && buf[i] <= '9') v = v * 10 + (buf[i++] - '0');
        highest = std::max(highest, v);
    }
    if (highest < 0 || possible <= 0) return possible;
    return std::min(highest + 1, possible);
}

// Before load: the table's shape (CPUs x buckets per CPU), and what to do
// with pins of an older layout or another shape.
Result<void> XdpDataplane::prepare_conn_table(const OpenOptions& options)
{
    const int ncpu = options.shared_conn_table ? 1 : conn_partitions();
    if (ncpu <= 0) return make_error("cannot count CPUs");
    const uint32_t want = options.conn_table_size != 0 ? options.conn_table_size : 1;
    uint32_t shift = 0;
    while ((uint64_t{1} << shift) * SLUICE_CONN_WAYS < want) ++shift;
    const uint64_t entries = static_cast<uint64_t>(ncpu) << shift;
    if (shift > 24 || entries > UINT32_MAX)
        return make_error("connection table of " + std::to_string(want) + " entries per CPU x " + std::to_string(ncpu) +
                          " CPUs is too large for one BPF array");
    conn_shift_ = shift;
    conn_cpus_ = static_cast<uint32_t>(ncpu);
    conn_shared_ = options.shared_conn_table;
    skel_->rodata->xlb_conn_shift = shift;
    skel_->rodata->xlb_conn_cpu_mask = options.shared_conn_table ? 0u : ~0u;
    // The table's clock (conn_table.h): jiffies x tick when HZ is known,
    // else the coarse monotonic clock. Rounded down for HZ = 300; every
    // reader goes through the same clock, so only its rate is 10^-7 off.
    const uint32_t hz = kernel_hz();
    conn_tick_ns_ = hz != 0 ? 1000000000u / hz : 0;
    skel_->rodata->xlb_ns_per_tick = conn_tick_ns_;
    if (hz == 0 && options.log) {
        // Not silent: the fallback costs a helper call per packet, and a
        // pinned table stamped on the other clock reads as expired once.
        options.log("kernel CONFIG_HZ not found in /boot/config-$(uname -r) or /proc/config.gz: connection "
                    "timestamps use bpf_ktime_get_coarse_ns (a helper call per packet) instead of jiffies");
    }
    skel_->rodata->xlb_fast_path_mode = options.fast_path_mode;
#if defined(__x86_64__)
    skel_->rodata->xlb_vip_cache_on = 1;  // see lookup.h: needs load-load ordering
#endif
    if (int err = bpf_map__set_max_entries(skel_->maps.sluice_conns_v3, static_cast<uint32_t>(entries)); err != 0)
        return make_error("connection table size: " + errno_text(err));
    if (pin_dir_.empty()) return {};
    auto say = [&](const std::string& line) {
        if (options.log) options.log(line);
    };
    for (const StalePin& stale : kStalePins) {
        const std::string path = pin_dir_ + "/" + stale.name;
        if (::unlink(path.c_str()) == 0) {
            say("removed the pinned " + path + " of an older layout; what that costs: " + stale.cost);
        } else if (errno != ENOENT) {
            return make_error("removing the stale pin " + path + ": " + errno_text(errno));
        }
    }
    // A pinned table of another shape (conn_table_size changed, or the CPU
    // count, or per-CPU against shared on a host of more than one CPU)
    // cannot be adopted: libbpf would refuse to load.
    const std::string path = pin_dir_ + "/sluice_conns_v3";
    const int fd = bpf_obj_get(path.c_str());
    if (fd < 0) return {};
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    const int r = bpf_obj_get_info_by_fd(fd, &info, &len);
    ::close(fd);
    if (r != 0) return make_error("pinned " + path + ": " + errno_text(errno));
    if (info.max_entries == entries && info.value_size == sizeof(sluice_conn_bucket) &&
        info.type == BPF_MAP_TYPE_ARRAY && (info.map_flags & BPF_F_MMAPABLE) != 0)
        return {};
    if (::unlink(path.c_str()) != 0) return make_error("removing " + path + ": " + errno_text(errno));
    say("the pinned connection table " + path + " has " + std::to_string(info.max_entries) + " buckets, this one " +
        std::to_string(entries) + " (conn_table_size, the CPU count or conn_table_mode changed): dropped it; established flows are "
        "picked again by Maglev");
    return {};
}

// After every change to the service table, before waiting for readers:
// invalidates every CPU's cached service lookups (sluice_vip_cache). The
// first call (at open) makes the generation 1, so empty slots never match.
Result<void> XdpDataplane::bump_vip_generation()
{
    ++vip_gen_;
    const uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_vip_gen), &zero, &vip_gen_, BPF_ANY) != 0)
        return make_error("service generation: " + errno_text(errno));
    return {};
}

// After load: the table mapped into this process, so walks and lookups
// read memory instead of making a syscall per bucket.
Result<void> XdpDataplane::map_conn_table()
{
    const size_t bytes = (static_cast<size_t>(conn_cpus_) << conn_shift_) * sizeof(sluice_conn_bucket);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(skel_->maps.sluice_conns_v3), 0);
    if (p == MAP_FAILED) return make_error("mapping the connection table: " + errno_text(errno));
    conn_buckets_ = static_cast<sluice_conn_bucket*>(p);
    conn_map_bytes_ = bytes;
    return {};
}

void XdpDataplane::close_service(Service& s)
{
    for (RingSlot& slot : s.slots) {
        if (slot.fd >= 0) ::close(slot.fd);
        slot.fd = -1;
    }
}

// After a restart the pinned maps are the truth: rebuild the per-service
// bookkeeping (which generation is live, the inner ring maps) from them.
// Ring contents are unknown, so the next update of a ring writes it whole.
Result<void> XdpDataplane::adopt_pinned_state()
{
    const int vips = bpf_map__fd(skel_->maps.sluice_vips_v1);
    const int outer = bpf_map__fd(skel_->maps.sluice_rings_v1);
    sluice_vip_key key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(vips, prev, &next) == 0) {
        key = next;
        prev = &key;
        sluice_vip_meta meta{};
        if (bpf_map_lookup_elem(vips, &key, &meta) != 0) continue;
        Service& s = services_[meta.vip_id];
        s.key = key;
        s.meta = meta;
        s.has_live = true;
        for (uint32_t gen = 0; gen < 2; ++gen) {
            const uint32_t slot = 2 * meta.vip_id + gen;
            uint32_t inner_id = 0;
            if (bpf_map_lookup_elem(outer, &slot, &inner_id) == 0) s.slots[gen].fd = bpf_map_get_fd_by_id(inner_id);
        }
    }
    // Each live service's rate-limit buckets as pinned: the first apply()
    // keeps them (tokens spent before the restart stay spent) when that
    // service's per-CPU rates and bursts are the new config's, and restarts
    // them otherwise (write_rate_limits).
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return make_error("cannot count CPUs");
    const int buckets = bpf_map__fd(skel_->maps.sluice_buckets_v2);
    std::vector<sluice_carried_bucket> per_cpu(static_cast<size_t>(ncpu));
    for (const auto& [vip_id, s] : services_) {
        AppliedRateLimit pinned;
        pinned.key = s.key;
        pinned.per_cpu.resize(4 * static_cast<size_t>(ncpu));
        bool read = true;
        for (uint32_t kind = 0; kind < 2 && read; ++kind) {
            const uint32_t index = 2 * vip_id + kind;
            read = bpf_map_lookup_elem(buckets, &index, per_cpu.data()) == 0;
            for (size_t cpu = 0; read && cpu < per_cpu.size(); ++cpu) {
                pinned.per_cpu[2 * (kind * per_cpu.size() + cpu)] = per_cpu[cpu].bucket.rate_per_sec;
                pinned.per_cpu[2 * (kind * per_cpu.size() + cpu) + 1] = per_cpu[cpu].bucket.burst;
            }
        }
        if (read) rate_limits_[vip_id] = std::move(pinned);
    }
    // What apply() removes when a description drops it: valid backends, ACL
    // prefixes, VIP addresses and ports as the old process left them.
    const int backends = bpf_map__fd(skel_->maps.sluice_backends_v1);
    for (uint32_t id = 0; id < SLUICE_MAX_BACKENDS; ++id) {
        sluice_backend be{};
        if (bpf_map_lookup_elem(backends, &id, &be) == 0 && (be.flags & SLUICE_BACKEND_F_VALID) != 0)
            backend_ids_.insert(id);
    }
    const int ports = bpf_map__fd(skel_->maps.sluice_ports_v1);
    for (uint32_t id = 0; id < SLUICE_MAX_PORTS; ++id) {
        sluice_port_config pc{};
        if (bpf_map_lookup_elem(ports, &id, &pc) == 0 && (pc.flags & SLUICE_PORT_F_PRESENT) != 0)
            ports_[static_cast<uint16_t>(id)] = pc;
    }
    auto collect = [](int fd, size_t key_size, std::set<std::vector<uint8_t>>& out) {
        std::vector<uint8_t> cur(key_size), found(key_size);
        const void* prev_key = nullptr;
        while (bpf_map_get_next_key(fd, prev_key, found.data()) == 0) {
            out.insert(found);
            cur = found;
            prev_key = cur.data();
        }
    };
    collect(bpf_map__fd(skel_->maps.sluice_acl4_v1), sizeof(sluice_acl_key), acl4_keys_);
    collect(bpf_map__fd(skel_->maps.sluice_acl6_v1), sizeof(sluice_acl_key), acl6_keys_);
    collect(bpf_map__fd(skel_->maps.sluice_vip_addrs_v1), sizeof(sluice_vip_key), vip_addr_keys_);
    return {};
}

Result<AttachMode> XdpDataplane::attach(uint32_t ifindex, bool allow_generic)
{
    const int fd = bpf_program__fd(skel_->progs.sluice_xdp_lb);
    int err = bpf_xdp_attach(static_cast<int>(ifindex), fd, XDP_FLAGS_DRV_MODE, nullptr);
    if (err == 0) {
        attached_.insert(ifindex);
        attach_flags_[ifindex] = XDP_FLAGS_DRV_MODE;
        return AttachMode::kNative;
    }
    if (!allow_generic)
        return make_error("native XDP attach to ifindex " + std::to_string(ifindex) + " failed: " + errno_text(err) +
                          " (generic mode not allowed)");
    const int native_err = err;
    err = bpf_xdp_attach(static_cast<int>(ifindex), fd, XDP_FLAGS_SKB_MODE, nullptr);
    if (err != 0)
        return make_error("XDP attach to ifindex " + std::to_string(ifindex) + " failed: native: " +
                          errno_text(native_err) + ", generic: " + errno_text(err));
    attached_.insert(ifindex);
    attach_flags_[ifindex] = XDP_FLAGS_SKB_MODE;
    return AttachMode::kGeneric;
}

Result<AttachMode> XdpDataplane::attach(uint32_t ifindex, AttachMode mode, bool allow_generic_fallback)
{
    if (mode == AttachMode::kNative) return attach(ifindex, allow_generic_fallback);
    const int fd = bpf_program__fd(skel_->progs.sluice_xdp_lb);
    if (int err = bpf_xdp_attach(static_cast<int>(ifindex), fd, XDP_FLAGS_SKB_MODE, nullptr); err != 0)
        return make_error("generic XDP attach to ifindex " + std::to_string(ifindex) + " failed: " + errno_text(err));
    attached_.insert(ifindex);
    attach_flags_[ifindex] = XDP_FLAGS_SKB_MODE;
    return AttachMode::kGeneric;
}

Result<void> XdpDataplane::detach(uint32_t ifindex)
{
    const uint32_t flags = attach_flags_.count(ifindex) != 0 ? attach_flags_[ifindex] : 0;
    attached_.erase(ifindex);
    attach_flags_.erase(ifindex);
    if (int err = bpf_xdp_detach(static_cast<int>(ifindex), flags, nullptr); err != 0)
        return make_error("XDP detach from ifindex " + std::to_string(ifindex) + ": " + errno_text(err));
    return {};
}

Result<void> XdpDataplane::unpin()
{
    if (pin_dir_.empty()) return {};
    bpf_map* map;
    bpf_object__for_each_map(map, skel_->obj)
    {
        if (!pinnable(map)) continue;
        if (int err = bpf_map__unpin(map, nullptr); err != 0 && err != -ENOENT)
            return make_error(std::string("unpin ") + bpf_map__name(map) + ": " + errno_text(err));
    }
    if (::rmdir(pin_dir_.c_str()) != 0 && errno != ENOENT)
        return make_error("rmdir " + pin_dir_ + ": " + errno_text(errno));
    return {};
}

Result<StatsByCpu> XdpDataplane::read_stats_by_cpu() const
{
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return make_error("cannot count CPUs");
    std::vector<sluice_stats> per_cpu(static_cast<size_t>(ncpu));
    const uint32_t key = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.sluice_stats_v2), &key, per_cpu.data()) != 0)
        return make_error("stats map: " + errno_text(errno));
    StatsByCpu out;
    auto* total = reinterpret_cast<uint64_t*>(&out.total);
    for (const sluice_stats& s : per_cpu) {
        const auto* in = reinterpret_cast<const uint64_t*>(&s);
        for (size_t i = 0; i < sizeof(sluice_stats) / sizeof(uint64_t); ++i) total[i] += in[i];
    }
    per_cpu.resize(std::min(per_cpu.size(), static_cast<size_t>(std::max(conn_partitions(), 0))));
    out.per_cpu = std::move(per_cpu);
    return out;
}

Result<sluice_stats> XdpDataplane::read_stats() const
{
    Result<StatsByCpu> s = read_stats_by_cpu();
    if (!s) return make_error(s.error());
    return s->total;
}

Result<std::vector<sluice_counter>> XdpDataplane::read_backend_counters(const std::vector<uint32_t>& ids) const
{
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return make_error("cannot count CPUs");
    std::vector<sluice_counter> per_cpu(static_cast<size_t>(ncpu));
    std::vector<sluice_counter> out(ids.size());
    const int fd = bpf_map__fd(skel_->maps.sluice_backend_stats_v1);
    if (ids.size() > 64) {
        // Many backends (100 services x 1000 on one node): one syscall per
        // batch of ids instead of one per id.
        uint32_t top = 0;
        for (uint32_t id : ids) top = std::max(top, id);
        if (top >= SLUICE_MAX_BACKENDS) return make_error("backend id " + std::to_string(top) + " out of range");
        std::vector<sluice_counter> sums(static_cast<size_t>(top) + 1);
        constexpr uint32_t kBatch = 512;
        std::vector<uint32_t> keys(kBatch);
        std::vector<sluice_counter> values(static_cast<size_t>(kBatch) * static_cast<size_t>(ncpu));
        uint32_t next = 0;
        void* in_batch = nullptr;
        uint32_t in_copy = 0;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        while (next <= top) {
            uint32_t count = std::min(kBatch, top + 1 - next);
            uint32_t out_batch = 0;
            const int r = bpf_map_lookup_batch(fd, in_batch, &out_batch, keys.data(), values.data(), &count, &opts);
            if (r != 0 && errno != ENOENT) return make_error("backend stats batch: " + errno_text(errno));
            for (uint32_t i = 0; i < count; ++i) {
                if (keys[i] > top) continue;
                for (int c = 0; c < ncpu; ++c) {
                    const sluice_counter& v = values[static_cast<size_t>(i) * static_cast<size_t>(ncpu) + static_cast<size_t>(c)];
                    sums[keys[i]].packets += v.packets;
                    sums[keys[i]].bytes += v.bytes;
                }
            }
            if (r != 0 || count == 0) break;
            next = keys[count - 1] + 1;
            in_copy = out_batch;
            in_batch = &in_copy;
        }
        for (size_t i = 0; i < ids.size(); ++i) out[i] = sums[ids[i]];
        return out;
    }
    for (size_t i = 0; i < ids.size(); ++i) {
        if (bpf_map_lookup_elem(fd, &ids[i], per_cpu.data()) != 0)
            return make_error("backend stats of " + std::to_string(ids[i]) + ": " + errno_text(errno));
        for (const sluice_counter& c : per_cpu) {
            out[i].packets += c.packets;
            out[i].bytes += c.bytes;
        }
    }
    return out;
}

// The connection table is read and edited through the mapping while the
// program writes it on every CPU. Each edit is one aligned 4-byte store
// (backend_id, used), so the program sees the old or the new value; an edit
// racing the program's own read-modify-write of the same word may be lost
// or undone, which leaves an entry that names no backend (re-picked by its
// next packet) or one the operator meant to clear (aged out as usual).
namespace {

uint32_t load_u32(const uint32_t& word) { return __atomic_load_n(&word, __ATOMIC_RELAXED); }
void store_u32(uint32_t& word, uint32_t value) { __atomic_store_n(&word, value, __ATOMIC_RELAXED); }

}  // namespace

Result<void> XdpDataplane::clear_connections()
{
    const size_t buckets = static_cast<size_t>(conn_cpus_) << conn_shift_;
    for (size_t i = 0; i < buckets; ++i) {
        sluice_conn_bucket& b = conn_buckets_[i];
        if (load_u32(b.used) == 0) continue;
        // Backend first: a way the program marks used again meanwhile
        // names no backend and is re-picked.
        for (sluice_conn_entry& e : b.entries) store_u32(e.backend_id, SLUICE_BACKEND_NONE);
        store_u32(b.used, 0);
    }
    return {};
}

std::vector<ConnectionEntry> XdpDataplane::lookup_connection(const sluice_flow_key& key) const
{
    std::vector<ConnectionEntry> out;
    const uint32_t hash = sluice_flow_hash(&key);
    const size_t mask = (size_t{1} << conn_shift_) - 1;
    for (uint32_t cpu = 0; cpu < conn_cpus_; ++cpu) {
        const sluice_conn_bucket& b = conn_buckets_[(static_cast<size_t>(cpu) << conn_shift_) | (hash & mask)];
        const uint32_t used = load_u32(b.used);
        for (uint32_t way = 0; way < SLUICE_CONN_WAYS; ++way) {
            if (((used >> way) & 1u) == 0 || load_u32(b.sig[way]) != hash) continue;
            ConnectionEntry c{cpu, {}};
            std::memcpy(&c.entry, &b.entries[way], sizeof c.entry);
            if (std::memcmp(&c.entry.key, &key, sizeof key) == 0) out.push_back(c);
        }
    }
    return out;
}

size_t XdpDataplane::count_connections() const
{
    const size_t buckets = static_cast<size_t>(conn_cpus_) << conn_shift_;
    size_t n = 0;
    for (size_t i = 0; i < buckets; ++i) {
        const sluice_conn_bucket& b = conn_buckets_[i];
        const uint32_t used = load_u32(b.used);
        if (used == 0) continue;
        for (uint32_t way = 0; way < SLUICE_CONN_WAYS; ++way) {
            if (((used >> way) & 1u) != 0 && load_u32(b.entries[way].backend_id) != SLUICE_BACKEND_NONE) ++n;
        }
    }
    return n;
}

uint32_t XdpDataplane::connection_partitions() const { return conn_cpus_; }

std::vector<core::ConnCensus> XdpDataplane::connection_census(uint64_t now,
                                                              const uint64_t (&timeout)[SLUICE_CONN_STATES]) const
{
    std::vector<core::ConnCensus> out;
    const size_t per_partition = size_t{1} << conn_shift_;
    for (uint32_t cpu = 0; cpu < conn_cpus_; ++cpu)
        out.push_back(core::conn_census(conn_buckets_ + cpu * per_partition, per_partition, now, timeout));
    return out;
}

std::vector<uint64_t> XdpDataplane::connections_by_backend(uint64_t now,
                                                           const uint64_t (&timeout)[SLUICE_CONN_STATES]) const
{
    std::vector<uint64_t> counts(SLUICE_MAX_BACKENDS);
    core::conn_count_by_backend(conn_buckets_, static_cast<size_t>(conn_cpus_) << conn_shift_, now, timeout,
                                counts.data());
    return counts;
}

size_t XdpDataplane::connection_capacity() const
{
    return (static_cast<size_t>(conn_cpus_) << conn_shift_) * SLUICE_CONN_WAYS;
}

Result<std::map<uint32_t, sluice_backend>> XdpDataplane::current_backends() const
{
    const int fd = bpf_map__fd(skel_->maps.sluice_backends_v1);
    std::map<uint32_t, sluice_backend> out;
    for (uint32_t id = 0; id < SLUICE_MAX_BACKENDS; ++id) {
        sluice_backend be{};
        if (bpf_map_lookup_elem(fd, &id, &be) != 0) return make_error("backends map: " + errno_text(errno));
        if ((be.flags & SLUICE_BACKEND_F_VALID) != 0) out.emplace(id, be);
    }
    return out;
}

Result<size_t> XdpDataplane::forget_connections_to(const std::set<uint32_t>& backend_ids)
{
    if (backend_ids.empty()) return size_t{0};
    const size_t buckets = static_cast<size_t>(conn_cpus_) << conn_shift_;
    size_t forgotten = 0;
    for (size_t i = 0; i < buckets; ++i) {
        sluice_conn_bucket& b = conn_buckets_[i];
        const uint32_t used = load_u32(b.used);
        if (used == 0) continue;
        for (uint32_t way = 0; way < SLUICE_CONN_WAYS; ++way) {
            if (((used >> way) & 1u) == 0) continue;
            uint32_t& id = b.entries[way].backend_id;
            const uint32_t cur = load_u32(id);
            if (cur == SLUICE_BACKEND_NONE || backend_ids.count(cur) == 0) continue;
            store_u32(id, SLUICE_BACKEND_NONE);
            ++forgotten;
        }
    }
    return forgotten;
}

Result<RingInfo> XdpDataplane::live_ring(uint32_t vip_id) const
{
    auto it = services_.find(vip_id);
    if (it == services_.end() || !it->second.has_live) return make_error("vip " + std::to_string(vip_id) + " has no ring");
    return RingInfo{it->second.meta.ring_id, it->second.meta.ring_size};
}

int XdpDataplane::program_fd() const { return bpf_program__fd(skel_->progs.sluice_xdp_lb); }

Result<uint64_t> XdpDataplane::connection_clock_ns() const
{
    // sluice_xdp_clock writes the program's now into the frame's first
    // word; a frame of one Ethernet header's size at least, as XDP runs need.
    uint8_t in[64] = {}, out[64] = {};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_out = out, .data_size_in = sizeof(in),
                .data_size_out = sizeof(out), .repeat = 1);
    if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.sluice_xdp_clock), &opts) != 0)
        return make_error("reading the connection table's clock: " + errno_text(errno));
    if (opts.retval != XDP_PASS || opts.data_size_out < sizeof(uint64_t))
        return make_error("reading the connection table's clock: the program refused");
    uint64_t now = 0;
    std::memcpy(&now, out, sizeof(now));
    return now;
}

uint64_t XdpDataplane::connection_clock_tick_ns() const { return conn_tick_ns_; }

uint64_t XdpDataplane::fast_path_packets() const
{
    return __atomic_load_n(&skel_->bss->xlb_fast_path_packets, __ATOMIC_RELAXED);
}

int XdpDataplane::map_fd(const std::string& name) const
{
    bpf_map* map = bpf_object__find_map_by_name(skel_->obj, name.c_str());
    return map != nullptr ? bpf_map__fd(map) : -1;
}

uint32_t XdpDataplane::program_instructions() const
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(program_fd(), &info, &len) != 0) return 0;
    return info.xlated_prog_len / 8;
}

uint32_t XdpDataplane::verifier_processed_instructions() const
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(program_fd(), &info, &len) != 0) return 0;
    return info.verified_insns;
}

}  // namespace sluice::xdp
