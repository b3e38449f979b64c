// The whole configuration of one sluice node: daemon settings, the data
// plane and its NIC setup, local addresses, connection-table timeouts,
// global filters and the services. The config loader produces it; the
// control plane treats it as immutable once loaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/address.h"
#include "model/filter.h"
#include "model/service.h"

namespace sluice::model {

enum class LogLevel : uint8_t { kTrace, kDebug, kInfo, kWarn, kError };

// The admin HTTP API (JSON under /v1, /metrics, /healthz).
struct AdminApi {
    IpAddress listen{IpFamily::kIpv4, {127, 0, 0, 1}};  // bind address
    uint16_t port = 9180;                   // TCP port
    std::optional<std::string> token_file;  // bearer token file; required off loopback
};

// Process-level settings.
struct DaemonSettings {
    LogLevel log_level = LogLevel::kInfo;     // least severe level logged
    AdminApi admin;                           // admin API endpoint
    std::string state_dir = "/var/lib/sluice";  // runtime state (last known backends)
};

enum class DataplaneType : uint8_t {
    kDpdk,  // DPDK poll-mode driver owns the NICs
    kXdp,   // XDP program in the kernel driver
    kAuto,  // DPDK if its ports can be taken, else XDP
};

// One DPDK port.
struct DpdkPort {
    std::string name;        // label used in logs and by egress_port
    std::string device;      // PCI address ("0000:03:00.0") or vdev devargs ("net_tap0,iface=t0")
    uint16_t rx_queues = 0;  // RX queues (RSS); 0 = one per worker lcore
};

// DPDK data-plane settings.
struct DpdkSettings {
    std::vector<std::string> eal_args;   // extra EAL arguments, passed verbatim
    uint32_t main_lcore = 0;             // lcore running the control thread
    std::vector<uint32_t> worker_lcores; // lcores running the packet loop, one per queue
    std::vector<DpdkPort> ports;         // ports to take over
    uint32_t mbuf_pool_size = 65535;     // mbufs per NUMA socket
    uint32_t conn_table_size = 1048576;  // connection-table entries per worker lcore
    bool exception_path = true;          // hand non-VIP traffic to the kernel via TAP
    std::string exception_tap = "sluice0";  // TAP interface name for the exception path
    std::optional<std::string> egress_port;  // two-arm mode: port that sends to backends
    std::optional<MacAddress> next_hop_mac;  // fixed next-hop MAC instead of ARP/ND
};

enum class XdpMode : uint8_t {
    kNative,   // in the driver (fast; needs driver support)
    kGeneric,  // after skb allocation (slow; works everywhere)
};

// How XDP's connection table is laid out over the CPUs.
enum class XdpConnTableMode : uint8_t {
    kAuto,    // shared when an interface is virtual (veth, tun; not a bond/VLAN over NICs), else per CPU
    kPerCpu,  // a partition per CPU: no shared writes; a flow must stay on its CPU (NIC RSS)
    kShared,  // one table for every CPU: a flow may change CPU mid-flow (veth: the sending CPU)
};

// XDP data-plane settings.
struct XdpSettings {
    std::vector<std::string> interfaces;  // interfaces to attach to
    XdpMode mode = XdpMode::kNative;      // attach mode
    bool allow_generic_fallback = false;  // native attach failed: try generic instead of failing
    std::string pin_path = "/sys/fs/bpf/sluice";  // bpffs directory for pinned maps
    uint32_t conn_table_size = 1048576;   // connection-table entries per CPU, or in all when shared (64 B each)
    XdpConnTableMode conn_table_mode = XdpConnTableMode::kAuto;  // partition per CPU or one shared
};

// Which data plane runs and how each is set up. Only the selected one is
// used, but both are validated when present.
struct DataplaneSettings {
    DataplaneType type = DataplaneType::kDpdk;  // selected data plane
    std::optional<DpdkSettings> dpdk;           // required for dpdk and auto
    std::optional<XdpSettings> xdp;             // required for xdp and auto
    // Limit on the ICMP errors ("fragmentation needed", "packet too big")
    // each DPDK worker lcore / each XDP CPU generates: errors per second
    // (0 = unlimited) after a burst of up to icmp_errors_burst. Linux's
    // icmp_msgs_per_sec / icmp_msgs_burst defaults, per core here.
    uint32_t icmp_errors_per_sec = 1000;
    uint32_t icmp_errors_burst = 50;
};

// The node's own addresses, used as the outer source of encapsulated
// packets and to reach backends off-link.
struct NetworkSettings {
    std::optional<IpAddress> source_ipv4;   // outer source towards IPv4 backends
    std::optional<IpAddress> source_ipv6;   // outer source towards IPv6 backends
    std::optional<IpAddress> gateway_ipv4;  // IPv4 next hop for off-link backends
    std::optional<IpAddress> gateway_ipv6;  // IPv6 next hop for off-link backends
};

// Idle timeouts of connection-table entries, by flow state.
struct ConnectionTimeouts {
    std::chrono::milliseconds tcp_established{3600000};  // TCP after the handshake
    std::chrono::milliseconds tcp_syn_fin{30000};        // TCP half-open or closing
    std::chrono::milliseconds udp{60000};                // UDP "flows"
};

// Everything the loader produces.
struct Config {
    DaemonSettings daemon;           // [daemon]
    DataplaneSettings dataplane;     // [dataplane]
    NetworkSettings network;         // [network]
    ConnectionTimeouts timeouts;     // [conntrack]
    Filter filter;                   // [filter], applied to every VIP
    std::vector<Service> services;   // [[service]], in file order
};

}  // namespace sluice::model
