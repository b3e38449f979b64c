// Ethernet port start-up: probe (PCI or virtual device), RSS over the RX
// queues, one TX queue per worker, MTU, and start. Control thread only.
#pragma once

#include <rte_ether.h>
#include <rte_mempool.h>

#include <cstdint>
#include <string>

#include "common/result.h"

namespace sluice::dpdk {

struct PortConfig {
    std::string name;          // operator's name for the port (logs, stats)
    std::string device;        // PCI address ("0000:3b:00.0") or vdev args ("net_af_packet0,iface=eth1")
    uint16_t rx_queues = 1;    // one per worker lcore
    uint16_t tx_queues = 1;    // one per worker lcore
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    uint16_t mtu = 1500;       // L3 MTU
    bool promiscuous = false;  // needed where VIP traffic arrives for MACs we do not own
};

struct Port {
    std::string name;
    uint16_t port_id = 0;
    rte_ether_addr mac{};
    uint16_t mtu = 0;
    uint16_t rx_queues = 0;
    uint16_t tx_queues = 0;
    bool rss = false;          // hardware RSS active (false: the PMD spreads flows its own way, or one queue)
};

// Probes `config.device` if it is not yet a port, configures RSS over
// rx_queues (IP/TCP/UDP fields the device supports), sets up queues from
// `pool` and starts the port. Fails with the PMD's reason.
Result<Port> start_port(const PortConfig& config, rte_mempool* pool);

// Stops and closes a port started by start_port().
void stop_port(const Port& port);

// Formats a MAC address as aa:bb:cc:dd:ee:ff.
std::string format_mac(const rte_ether_addr& mac);

}  // namespace sluice::dpdk
