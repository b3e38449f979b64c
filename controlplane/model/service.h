// A load-balanced service in the configuration model: its VIP, how packets
// reach the backends, where the backends come from (static list or a
// discovery source), how their health is probed, and its own filters.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/address.h"
#include "model/filter.h"

namespace sluice::model {

enum class Protocol : uint8_t { kTcp, kUdp };

// Matches enum sluice_forwarding in dataplane/abi/tables.h value for value.
enum class Forwarding : uint8_t {
    kIpip = 0,   // IP-in-IP (4in4, 6in6, 4in6, 6in4 by the two families)
    kGue = 1,    // GUE variant 1 over UDP; source port carries flow entropy
    kL2Dsr = 2,  // rewrite the destination MAC; backends share our segment
};

enum class BackendState : uint8_t {
    kActive,    // in the Maglev table when healthy
    kDraining,  // no new flows; established flows stay until the drain deadline
};

// One statically configured backend.
struct Backend {
    IpAddress address;           // where packets are sent (outer destination, or L2 next hop)
    std::optional<uint16_t> port;  // port health checks probe; unset = the VIP's port.
                                   // Traffic keeps the VIP's port: sluice never rewrites it.
    uint32_t weight = 100;       // relative share of Maglev slots, 1..10000
    BackendState state = BackendState::kActive;  // operator-set state
};

// Backends from etcd v3: every key under `prefix` is one backend.
struct EtcdDiscovery {
    std::vector<std::string> endpoints;        // client URLs, http:// or https://
    std::string prefix;                        // key prefix watched
    std::optional<std::string> username;       // etcd user, when auth is on
    std::optional<std::string> password_file;  // file holding that user's password
    std::optional<std::string> ca_file;        // CA bundle that signs the etcd servers
    std::optional<std::string> cert_file;      // client certificate (mutual TLS)
    std::optional<std::string> key_file;       // client key (mutual TLS)
    std::chrono::milliseconds dial_timeout{5000};  // connect timeout per endpoint
};

// Backends from a local file, reloaded when it changes (inotify).
struct FileDiscovery {
    std::string path;  // absolute path of the backend list
};

enum class DnsRecord : uint8_t { kA, kAaaa, kSrv };

// Backends from DNS records, re-resolved periodically.
struct DnsDiscovery {
    std::string name;                  // name queried
    DnsRecord record = DnsRecord::kA;  // A / AAAA give addresses, SRV also ports and weights
    std::optional<Endpoint> resolver;  // server to ask; unset = /etc/resolv.conf
    std::optional<uint16_t> port;      // health-check port for A/AAAA backends; unset = VIP port
    std::chrono::milliseconds refresh_interval{30000};  // how often to re-resolve
};

using Discovery = std::variant<EtcdDiscovery, FileDiscovery, DnsDiscovery>;

enum class HealthCheckType : uint8_t { kNone, kTcp, kHttp, kHttps, kUdp };

// How backends are probed. A backend is up after `rise` consecutive good
// probes and down after `fall` consecutive bad ones.
struct HealthCheck {
    HealthCheckType type = HealthCheckType::kTcp;  // default: tcp for TCP services, none for UDP
    std::chrono::milliseconds interval{2000};      // time between probes of one backend
    std::chrono::milliseconds timeout{1000};       // a probe older than this failed; < interval
    uint32_t rise = 2;                             // good probes to mark a backend up
    uint32_t fall = 3;                             // bad probes to mark a backend down
    std::optional<uint16_t> port;                  // probe this port instead of the backend's
    std::string http_path = "/";                   // http/https: request path
    std::optional<std::string> http_host;          // http/https: Host header; unset = address
    uint16_t http_expect_status = 200;             // http/https: status that means healthy
    std::string udp_send;                          // udp: datagram payload sent
    std::optional<std::string> udp_expect;         // udp: reply must contain this; unset = any reply
};

// Which fields of a flow pick its backend.
enum class HashFields : uint8_t {
    kFiveTuple,  // client address and port, VIP address and port, protocol
    kClient,     // the same without the client's port: one backend per client address (affinity)
};

// What to do when every backend of a service is down.
enum class AllDownPolicy : uint8_t {
    kKeepAll,  // fail open: spread over all backends as if healthy
    kDrop,     // fail closed: drop the VIP's new flows (counted)
};

// One VIP and its backend pool.
struct Service {
    std::string name;                          // unique; used in the API and metrics
    Endpoint vip;                              // VIP address and port (0 = all ports)
    Protocol protocol = Protocol::kTcp;        // tcp or udp
    Forwarding forwarding = Forwarding::kIpip; // how packets reach backends
    uint16_t gue_port = 6080;                  // GUE destination port (forwarding = gue)
    uint32_t table_size = 65537;               // Maglev table size M, prime
    HashFields hash = HashFields::kFiveTuple;  // see HashFields
    std::vector<Backend> backends;             // static backends (empty when discovered)
    std::optional<Discovery> discovery;        // discovery source (unset when static)
    HealthCheck health_check;                  // probe settings
    AllDownPolicy on_all_backends_down = AllDownPolicy::kKeepAll;  // see AllDownPolicy
    std::chrono::milliseconds drain_deadline{300000};  // draining backend's flows end by then
    Filter filter;                             // this VIP's own filters, after the global ones
    RateLimits rate_limit;                     // this VIP's token buckets
};

}  // namespace sluice::model
