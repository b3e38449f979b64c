// Internal to the loader: one reader per config section, and the checks
// that span sections. Each reads what it can, reports what it cannot, and
// leaves model defaults in place for anything missing or wrong.
#pragma once

#include <toml++/toml.h>

#include <vector>

#include "config/reader.h"
#include "model/config.h"

namespace sluice::config::detail {

// Where one service's values were written, kept for the checks across
// services and sections. Pointers into the parsed document, which outlives
// the checks; nullptr when the value was absent or invalid.
struct ServiceNodes {
    const toml::table* table = nullptr;         // the [[service]] table
    const toml::node* vip = nullptr;            // set only when the VIP parsed
    const toml::node* forwarding = nullptr;     // the forwarding value, if written
    std::vector<const toml::node*> backend_addresses;  // aligned with Service::backends
    const toml::node* dns_record = nullptr;     // discovery.record of a DNS source
    const toml::node* payload_rules = nullptr;  // filter.payload_rules, if non-empty
    bool name_ok = false;                       // Service::name holds a valid name
};

// [daemon] and [daemon.admin].
void read_daemon(Context& ctx, const toml::table& root, model::DaemonSettings& out);

// [dataplane], [dataplane.dpdk], [dataplane.xdp]. Returns the node of
// dataplane.type for messages that depend on the selection.
const toml::node* read_dataplane(Context& ctx, const toml::table& root, model::DataplaneSettings& out);

// [network].
void read_network(Context& ctx, const toml::table& root, model::NetworkSettings& out);

// [conntrack].
void read_conntrack(Context& ctx, const toml::table& root, model::ConnectionTimeouts& out);

// A filter table ([filter] or a service's filter); `schema_path` selects
// which. Returns the payload_rules node when it holds at least one rule.
const toml::node* read_filter(Context& ctx, const toml::table& table, std::string_view schema_path,
                              model::Filter& out);

// A service's [service.rate_limit].
void read_rate_limit(Context& ctx, const toml::table& table, model::RateLimits& out);

// One [[service]] table.
void read_service(Context& ctx, const toml::table& table, model::Service& out, ServiceNodes& nodes);

// Checks that need more than one section: duplicate names and VIPs, address
// families against forwarding and local addresses, payload rules against
// the data plane, and the global limits of dataplane/abi/tables.h.
void check_across_sections(Context& ctx, const model::Config& config, const std::vector<ServiceNodes>& services,
                           const toml::node* dataplane_type, const toml::node* global_payload_rules,
                           const toml::table& root);

}  // namespace sluice::config::detail
