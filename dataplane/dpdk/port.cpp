// Port start-up with RSS. Virtual devices are probed by their devargs so
// the same code path serves PCI NICs, af_packet/af_xdp on a veth, and the
// ring ethdevs of the tests and benchmarks.
#include "dataplane/dpdk/port.h"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include <cstdio>
#include <cstring>

namespace sluice::dpdk {
namespace {

std::string err(const std::string& what, int rc)
{
    return what + ": " + rte_strerror(rc < 0 ? -rc : rc);
}

// A PCI address or a vdev: the part before the first comma names the device.
std::string device_name(const std::string& device)
{
    const auto comma = device.find(',');
    return comma == std::string::npos ? device : device.substr(0, comma);
}

}  // namespace

std::string format_mac(const rte_ether_addr& mac)
{
    char buf[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(buf, sizeof(buf), &mac);
    return buf;
}

Result<Port> start_port(const PortConfig& config, rte_mempool* pool)
{
    Port port;
    port.name = config.name;
    const std::string name = device_name(config.device);
    if (rte_eth_dev_get_port_by_name(name.c_str(), &port.port_id) != 0) {
        const int rc = rte_dev_probe(config.device.c_str());
        if (rc != 0) {
            return make_error(err("port " + config.name + ": cannot probe '" + config.device + "'", rc));
        }
        if (rte_eth_dev_get_port_by_name(name.c_str(), &port.port_id) != 0) {
            return make_error("port " + config.name + ": probed '" + config.device +
                              "' but no ethdev named '" + name + "' appeared");
        }
    }

    rte_eth_dev_info info{};
    int rc = rte_eth_dev_info_get(port.port_id, &info);
    if (rc != 0) {
        return make_error(err("port " + config.name + ": device info", rc));
    }
    if (config.rx_queues > info.max_rx_queues || config.tx_queues > info.max_tx_queues) {
        return make_error("port " + config.name + ": wants " + std::to_string(config.rx_queues) + " rx / " +
                          std::to_string(config.tx_queues) + " tx queues, device has at most " +
                          std::to_string(info.max_rx_queues) + " / " + std::to_string(info.max_tx_queues));
    }

    rte_eth_conf conf{};
    const uint64_t wanted_rss = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
    if (config.rx_queues > 1 && (info.flow_type_rss_offloads & wanted_rss) != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & wanted_rss;
        port.rss = true;
    }
    if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE) != 0) {
        // All mbufs come from one pool and are never shared: safe.
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    }
    rc = rte_eth_dev_configure(port.port_id, config.rx_queues, config.tx_queues, &conf);
    if (rc != 0) {
        return make_error(err("port " + config.name + ": configure", rc));
    }
    uint16_t rx_desc = config.rx_descriptors;
    uint16_t tx_desc = config.tx_descriptors;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port.port_id, &rx_desc, &tx_desc);
    if (rc != 0) {
        return make_error(err("port " + config.name + ": descriptor counts", rc));
    }
    const int socket = rte_eth_dev_socket_id(port.port_id);
    const unsigned socket_id = socket < 0 ? 0u : static_cast<unsigned>(socket);
    for (uint16_t q = 0; q < config.rx_queues; ++q) {
        rc = rte_eth_rx_queue_setup(port.port_id, q, rx_desc, socket_id, nullptr, pool);
        if (rc != 0) {
            return make_error(err("port " + config.name + ": rx queue " + std::to_string(q), rc));
        }
    }
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    for (uint16_t q = 0; q < config.tx_queues; ++q) {
        rc = rte_eth_tx_queue_setup(port.port_id, q, tx_desc, socket_id, &txconf);
        if (rc != 0) {
            return make_error(err("port " + config.name + ": tx queue " + std::to_string(q), rc));
        }
    }
    // Not every PMD lets the MTU change (ring, null): keep its own then,
    // and report what is in force.
    if (rte_eth_dev_set_mtu(port.port_id, config.mtu) != 0) {
        rte_eth_dev_get_mtu(port.port_id, &port.mtu);
    } else {
        port.mtu = config.mtu;
    }
    rc = rte_eth_dev_start(port.port_id);
    if (rc != 0) {
        return make_error(err("port " + config.name + ": start", rc));
    }
    if (config.promiscuous) {
        rte_eth_promiscuous_enable(port.port_id);
    }
    rte_eth_macaddr_get(port.port_id, &port.mac);
    port.rx_queues = config.rx_queues;
    port.tx_queues = config.tx_queues;
    return port;
}

void stop_port(const Port& port)
{
    rte_eth_dev_stop(port.port_id);
    rte_eth_dev_close(port.port_id);
}

}  // namespace sluice::dpdk
