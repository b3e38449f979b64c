// TAP creation and the kernel → NIC direction of the exception path; see
// exception.h.
#include "dataplane/dpdk/exception.h"

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstdio>

namespace sluice::dpdk {
namespace {

std::string mac_text(const MacAddress& m)
{
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

std::string failure(const std::string& iface, const std::string& what, int rc)
{
    return "exception path: TAP " + iface + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc);
}

}  // namespace

Result<std::unique_ptr<ExceptionPath>> ExceptionPath::create(const ExceptionConfig& config, rte_mempool* pool)
{
    std::unique_ptr<ExceptionPath> path(new ExceptionPath(config));
    for (const auto& port : config.ports) {
        auto r = path->add_tap(port, pool);
        if (!r) return make_error(r.error());  // the destructor removes the TAPs made so far
    }
    return path;
}

Result<void> ExceptionPath::add_tap(const ExceptionPortConfig& port, rte_mempool* pool)
{
    if (port.iface.empty() || port.iface.size() > 15)
        return make_error("exception path: interface name '" + port.iface + "' must be 1 to 15 characters");
    // net_tap matches vdevs by the "net_tap" prefix; the interface name
    // makes the vdev name unique per process.
    const std::string vdev = "net_tap_" + port.iface;
    // Probed through the EAL as port.cpp probes vdevs, so no bus-specific
    // library is needed at link time.
    const std::string devargs = vdev + ",iface=" + port.iface + ",mac=" + mac_text(port.mac);
    int rc = rte_dev_probe(devargs.c_str());
    if (rc != 0) return make_error(failure(port.iface, "cannot create (" + devargs + ")", rc));
    uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(vdev.c_str(), &id) != 0)
        return make_error("exception path: TAP " + port.iface + ": created but no ethdev " + vdev);
    taps_.push_back(Tap{port.nic_port, id, vdev});

    const uint16_t queues = static_cast<uint16_t>(config_.workers + 1);
    rte_eth_conf conf{};
    rc = rte_eth_dev_configure(id, queues, queues, &conf);
    if (rc != 0) return make_error(failure(port.iface, "configure " + std::to_string(queues) + " queues", rc));
    const int socket = rte_eth_dev_socket_id(id);
    const unsigned socket_id = socket < 0 ? 0u : static_cast<unsigned>(socket);
    for (uint16_t q = 0; q < queues; ++q) {
        rc = rte_eth_rx_queue_setup(id, q, config_.descriptors, socket_id, nullptr, pool);
        if (rc != 0) return make_error(failure(port.iface, "rx queue " + std::to_string(q), rc));
        rc = rte_eth_tx_queue_setup(id, q, config_.descriptors, socket_id, nullptr);
        if (rc != 0) return make_error(failure(port.iface, "tx queue " + std::to_string(q), rc));
    }
    // Same MTU as the NIC: what the kernel sends must fit out of the NIC.
    rc = rte_eth_dev_set_mtu(id, port.mtu);
    if (rc != 0) return make_error(failure(port.iface, "MTU " + std::to_string(port.mtu), rc));
    rc = rte_eth_dev_start(id);
    if (rc != 0) return make_error(failure(port.iface, "start", rc));
    rc = rte_eth_dev_set_link_up(id);
    if (rc != 0 && rc != -ENOTSUP) return make_error(failure(port.iface, "link up", rc));
    return {};
}

ExceptionPath::~ExceptionPath()
{
    // Removing the device closes the port and deletes the kernel interface.
    for (const Tap& t : taps_) {
        rte_eth_dev_info info{};
        rte_eth_dev_stop(t.tap_port);
        if (rte_eth_dev_info_get(t.tap_port, &info) == 0 && info.device != nullptr) {
            rte_dev_remove(info.device);
        } else {
            rte_eth_dev_close(t.tap_port);
        }
    }
}

uint16_t ExceptionPath::tap_port(uint16_t nic_port) const
{
    for (const Tap& t : taps_)
        if (t.nic_port == nic_port) return t.tap_port;
    return kNoPort;
}

uint32_t ExceptionPath::poll()
{
    uint32_t moved = 0;
    const uint16_t queues = static_cast<uint16_t>(config_.workers + 1);
    for (const Tap& t : taps_) {
        uint32_t budget = config_.max_per_poll;
        for (uint16_t q = 0; q < queues && budget != 0; ++q) {
            rte_mbuf* burst[32];
            uint16_t n;
            do {
                const uint16_t want = static_cast<uint16_t>(budget < 32 ? budget : 32);
                n = rte_eth_rx_burst(t.tap_port, q, burst, want);
                if (n == 0) break;
                budget -= n;
                const uint16_t sent = rte_eth_tx_burst(t.nic_port, config_.nic_control_tx_queue, burst, n);
                if (sent < n) {
                    rte_pktmbuf_free_bulk(&burst[sent], static_cast<unsigned>(n - sent));
                    stats_.from_kernel_dropped += n - sent;
                }
                stats_.from_kernel += sent;
                moved += sent;
                if (n < want) break;
            } while (budget != 0);
        }
    }
    return moved;
}

}  // namespace sluice::dpdk
