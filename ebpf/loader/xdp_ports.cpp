// XdpDataplane: interface bindings and the per-interface port records the
// packet path reads (sluice_ifport_records_v1), kept in step with the port
// table (sluice_ports_v1) and the bindings, and read back after a restart.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "loader/xdp_dataplane.h"
#include "xdp_lb.skel.h"

namespace sluice::xdp {

namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// The map the records replaced (ifindex → port id + 1, 0 = unbound): a
// restart over pins of a program before it takes the bindings from it.
constexpr const char* kLegacyIndexPin = "sluice_ifport_index_v1";

}  // namespace

uint32_t XdpDataplane::ifindex_direct() const
{
    return bpf_map__max_entries(skel_->maps.sluice_ifport_records_v1) - SLUICE_MAX_PORTS;
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
    if (Result<void> r = map_interface(ifindex, port_id); !r) return r;
    // The port's new ifindex is the redirect target of every interface
    // that leaves by it, not only of this one.
    return write_ifport_records();
}

Result<void> XdpDataplane::map_interface(uint32_t ifindex, uint32_t port_id)
{
    if (ifindex >= ifindex_direct() &&
        bpf_map_update_elem(bpf_map__fd(skel_->maps.sluice_ifports_v1), &ifindex, &port_id, BPF_ANY) != 0)
        return make_error("ifports map: " + errno_text(errno));
    bindings_[ifindex] = static_cast<uint16_t>(port_id);
    return {};
}

// What interfaces whose packets arrive on port `in_id` need; READY only
// when that port and its egress port are both present (ports_ holds only
// present ones), as the lookup chain it replaces required.
sluice_ifport_record XdpDataplane::ifport_record(uint16_t in_id, bool bound) const
{
    sluice_ifport_record rec{};
    rec.in_id = static_cast<uint8_t>(in_id);
    rec.flags = bound ? SLUICE_IFPORT_F_BOUND : 0;
    const auto in = ports_.find(in_id);
    if (in == ports_.end() || (in->second.flags & SLUICE_PORT_F_PRESENT) == 0) return rec;
    const auto eg = ports_.find(in->second.egress_port);
    if (eg == ports_.end() || (eg->second.flags & SLUICE_PORT_F_PRESENT) == 0) return rec;
    std::memcpy(rec.eg_mac, eg->second.mac, sizeof(rec.eg_mac));
    std::memcpy(rec.eg_nexthop_mac, eg->second.nexthop_mac, sizeof(rec.eg_nexthop_mac));
    rec.eg_mtu = eg->second.mtu;
    rec.eg_id = static_cast<uint8_t>(eg->first);
    rec.eg_ifindex = eg->second.ifindex;
    std::memcpy(rec.in_mac, in->second.mac, sizeof(rec.in_mac));
    rec.flags |= SLUICE_IFPORT_F_READY;
    return rec;
}

// After every write of ports or bindings (so the records never name a port
// state the port map has not reached): one record per bound ifindex below
// ifindex_direct(), one per port id above it, each written only when it
// changed. A record rewritten in place can be read half-written, as a port
// of sluice_ports_v1 always could: a packet in that window may leave by
// the old or the new port's values.
Result<void> XdpDataplane::write_ifport_records()
{
    const uint32_t direct = ifindex_direct();
    std::map<uint32_t, sluice_ifport_record> want;
    for (const auto& [ifindex, port_id] : bindings_) {
        if (ifindex < direct) want[ifindex] = ifport_record(port_id, true);
    }
    for (uint16_t id = 0; id < SLUICE_MAX_PORTS; ++id) want[direct + id] = ifport_record(id, false);
    const int fd = bpf_map__fd(skel_->maps.sluice_ifport_records_v1);
    for (const auto& [slot, rec] : want) {
        const auto it = ifport_records_.find(slot);
        if (it != ifport_records_.end() && std::memcmp(&it->second, &rec, sizeof(rec)) == 0) continue;
        if (bpf_map_update_elem(fd, &slot, &rec, BPF_ANY) != 0)
            return make_error("ifport records map: " + errno_text(errno));
        ifport_records_[slot] = rec;
    }
    // Records of ifindexes bound no more (only after a restart over the
    // pins of an older program: see adopt_bindings).
    for (auto it = ifport_records_.begin(); it != ifport_records_.end();) {
        if (want.count(it->first) != 0) {
            ++it;
            continue;
        }
        const sluice_ifport_record none{};
        if (bpf_map_update_elem(fd, &it->first, &none, BPF_ANY) != 0)
            return make_error("ifport records map: " + errno_text(errno));
        it = ifport_records_.erase(it);
    }
    return {};
}

// After a restart (ports_ already read back): the bindings the old process
// made, from the pinned records (BOUND) and the large-ifindex hash map, or
// from sluice_ifport_index_v1 when an older program left that instead (read
// once, then unpinned); then the records made to match ports_.
Result<void> XdpDataplane::adopt_bindings(const std::function<void(const std::string&)>& log)
{
    const uint32_t direct = ifindex_direct();
    const int records = bpf_map__fd(skel_->maps.sluice_ifport_records_v1);
    for (uint32_t slot = 0; slot < direct + SLUICE_MAX_PORTS; ++slot) {
        sluice_ifport_record rec{};
        const sluice_ifport_record zero{};
        if (bpf_map_lookup_elem(records, &slot, &rec) != 0 || std::memcmp(&rec, &zero, sizeof(rec)) == 0) continue;
        ifport_records_[slot] = rec;
        if (slot < direct && (rec.flags & SLUICE_IFPORT_F_BOUND) != 0) bindings_[slot] = rec.in_id;
    }
    const std::string legacy = pin_dir_ + "/" + kLegacyIndexPin;
    if (const int fd = bpf_obj_get(legacy.c_str()); fd >= 0) {
        // The last process to run used it: its bindings are the truth.
        for (auto it = bindings_.begin(); it != bindings_.end();) {
            if (it->first < direct) it = bindings_.erase(it);
            else ++it;
        }
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.key_size != 4 || info.value_size != 4) {
            ::close(fd);
            return make_error("pinned " + legacy + ": not the ifindex → port map it should be");
        }
        for (uint32_t ifindex = 0; ifindex < info.max_entries && ifindex < direct; ++ifindex) {
            uint32_t port_plus_one = 0;
            if (bpf_map_lookup_elem(fd, &ifindex, &port_plus_one) == 0 && port_plus_one != 0 &&
                port_plus_one <= SLUICE_MAX_PORTS)
                bindings_[ifindex] = static_cast<uint16_t>(port_plus_one - 1);
        }
        ::close(fd);
    }
    const int hash = bpf_map__fd(skel_->maps.sluice_ifports_v1);
    uint32_t key = 0, next = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(hash, prev, &next) == 0) {
        key = next;
        prev = &key;
        uint32_t port_id = 0;
        if (bpf_map_lookup_elem(hash, &key, &port_id) == 0 && port_id < SLUICE_MAX_PORTS)
            bindings_[key] = static_cast<uint16_t>(port_id);
    }
    if (Result<void> r = write_ifport_records(); !r) return r;
    // Only now: until the records are written, the old map is the only
    // copy of the bindings.
    if (::unlink(legacy.c_str()) == 0) {
        if (log) {
            log("moved the interface bindings of the pinned " + legacy +
                " (an older layout) to sluice_ifport_records_v1 and removed it");
        }
    } else if (errno != ENOENT) {
        return make_error("removing the stale pin " + legacy + ": " + errno_text(errno));
    }
    return {};
}

}  // namespace sluice::xdp
