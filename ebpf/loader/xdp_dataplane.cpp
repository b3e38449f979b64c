// XdpDataplane: opening, pinning, attaching and reading counters. Filling
// the maps (apply, rings, ACL, limits) is in xdp_apply.cpp.
#include "loader/xdp_dataplane.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

#include "xdp_lb.skel.h"

namespace sluice::xdp {

namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// The scratch map is per-CPU working memory, not state: never pinned.
bool pinnable(const char* name) { return std::strcmp(name, "sluice_xdp_scratch") != 0; }

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
        bpf_map* map;
        bpf_object__for_each_map(map, dp->skel_->obj)
        {
            if (!pinnable(bpf_map__name(map))) continue;
            const std::string path = dp->pin_dir_ + "/" + bpf_map__name(map);
            if (int err = bpf_map__set_pin_path(map, path.c_str()); err != 0)
                return make_error("pin path " + path + ": " + errno_text(err));
        }
    }
    // libbpf reuses a pinned map of the same name when its type, sizes and
    // flags match, and refuses to load otherwise (a layout change comes with
    // a new _vN name, so an old pin is simply left alone).
    if (int err = xdp_lb__load(dp->skel_); err != 0)
        return make_error("xdp_lb: load failed: " + errno_text(err) +
                          " (verifier log above; a pinned map of another layout also fails here)");
    if (!dp->pin_dir_.empty()) {
        if (Result<void> r = dp->adopt_pinned_state(); !r) return make_error(r.error());
    }
    return dp;
}

XdpDataplane::~XdpDataplane()
{
    for (uint32_t ifindex : std::set<uint32_t>(attached_)) (void)detach(ifindex);
    for (auto& [id, s] : services_) close_service(s);
    if (skel_ != nullptr) xdp_lb__destroy(skel_);
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

Result<void> XdpDataplane::bind_interface(uint32_t ifindex, uint16_t port_id)
{
    if (port_id >= SLUICE_MAX_PORTS) return make_error("port id " + std::to_string(port_id) + " out of range");
    auto it = ports_.find(port_id);
    if (it == ports_.end()) return make_error("port " + std::to_string(port_id) + " is not configured");
    it->second.ifindex = ifindex;
    const uint32_t key = port_id;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_ports_v1), &key, &it->second, BPF_ANY) != 0)
        return make_error("ports map: " + errno_text(errno));
    const uint32_t id = port_id;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_ifports_v1), &ifindex, &id, BPF_ANY) != 0)
        return make_error("ifports map: " + errno_text(errno));
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
        if (!pinnable(bpf_map__name(map))) continue;
        if (int err = bpf_map__unpin(map, nullptr); err != 0 && err != -ENOENT)
            return make_error(std::string("unpin ") + bpf_map__name(map) + ": " + errno_text(err));
    }
    if (::rmdir(pin_dir_.c_str()) != 0 && errno != ENOENT)
        return make_error("rmdir " + pin_dir_ + ": " + errno_text(errno));
    return {};
}

Result<sluice_stats> XdpDataplane::read_stats() const
{
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return make_error("cannot count CPUs");
    std::vector<sluice_stats> per_cpu(static_cast<size_t>(ncpu));
    const uint32_t key = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.sluice_stats_v1), &key, per_cpu.data()) != 0)
        return make_error("stats map: " + errno_text(errno));
    sluice_stats total{};
    auto* out = reinterpret_cast<uint64_t*>(&total);
    for (const sluice_stats& s : per_cpu) {
        const auto* in = reinterpret_cast<const uint64_t*>(&s);
        for (size_t i = 0; i < sizeof(sluice_stats) / sizeof(uint64_t); ++i) out[i] += in[i];
    }
    return total;
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

namespace {

// Every (key, value) of the connection table that `want` selects, by one
// walk with the batch interface (a get_next_key walk that deletes as it goes
// restarts from the first key after every delete: quadratic at 1M entries).
Result<std::vector<sluice_flow_key>> conn_keys(int fd, const std::function<bool(const sluice_conn&)>& want)
{
    constexpr uint32_t kBatch = 4096;
    std::vector<sluice_flow_key> keys(kBatch), out;
    std::vector<sluice_conn> values(kBatch);
    sluice_flow_key out_batch{};
    void* in_batch = nullptr;
    sluice_flow_key in_copy{};
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    for (;;) {
        uint32_t count = kBatch;
        const int r = bpf_map_lookup_batch(fd, in_batch, &out_batch, keys.data(), values.data(), &count, &opts);
        const int err = r != 0 ? errno : 0;
        if (r != 0 && err != ENOENT) return make_error("conn table walk: " + errno_text(err));
        for (uint32_t i = 0; i < count; ++i) {
            if (want(values[i])) out.push_back(keys[i]);
        }
        if (r != 0) break;  // ENOENT: that was the last batch
        in_copy = out_batch;
        in_batch = &in_copy;
    }
    return out;
}

Result<size_t> delete_keys(int fd, const std::vector<sluice_flow_key>& keys)
{
    size_t deleted = 0;
    for (const sluice_flow_key& k : keys) {
        if (bpf_map_delete_elem(fd, &k) == 0) {
            ++deleted;
        } else if (errno != ENOENT) {  // gone meanwhile (LRU eviction) is fine
            return make_error("conn table delete: " + errno_text(errno));
        }
    }
    return deleted;
}

}  // namespace

Result<void> XdpDataplane::clear_connections()
{
    const int fd = bpf_map__fd(skel_->maps.sluice_conns_v1);
    auto keys = conn_keys(fd, [](const sluice_conn&) { return true; });
    if (!keys) return Error{keys.error()};
    if (auto d = delete_keys(fd, *keys); !d) return Error{d.error()};
    return {};
}

Result<std::optional<sluice_conn>> XdpDataplane::lookup_connection(const sluice_flow_key& key) const
{
    sluice_conn c{};
    // A lookup from user space does not refresh the entry's LRU position.
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.sluice_conns_v1), &key, &c) == 0) return std::optional(c);
    if (errno == ENOENT) return std::optional<sluice_conn>();
    return make_error("conn table lookup: " + errno_text(errno));
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
    const int fd = bpf_map__fd(skel_->maps.sluice_conns_v1);
    auto keys = conn_keys(fd, [&](const sluice_conn& c) { return backend_ids.count(c.backend_id) != 0; });
    if (!keys) return Error{keys.error()};
    return delete_keys(fd, *keys);
}

Result<RingInfo> XdpDataplane::live_ring(uint32_t vip_id) const
{
    auto it = services_.find(vip_id);
    if (it == services_.end() || !it->second.has_live) return make_error("vip " + std::to_string(vip_id) + " has no ring");
    return RingInfo{it->second.meta.ring_id, it->second.meta.ring_size};
}

int XdpDataplane::program_fd() const { return bpf_program__fd(skel_->progs.sluice_xdp_lb); }

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

}  // namespace sluice::xdp
