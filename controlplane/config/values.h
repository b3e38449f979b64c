// Internal to the loader: readers for values with a syntax of their own
// (addresses, prefixes, paths, interface and service names), reporting
// the parser's explanation at the value's position.
#pragma once

#include <toml++/toml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.h"
#include "model/address.h"

namespace sluice::config::detail {

// A bare IPv4/IPv6 literal; unspecified and multicast addresses refused
// unless `allow_unspecified` (a listen address may be 0.0.0.0 or ::).
std::optional<model::IpAddress> read_ip_address(Context& ctx, const toml::node& node, std::string_view what,
                                                bool allow_unspecified = false);

// An "addr:port" / "[v6]:port" endpoint; see model::parse_endpoint.
std::optional<model::Endpoint> read_endpoint(Context& ctx, const toml::node& node, std::string_view what,
                                             model::PortRule rule = model::PortRule::kRequired,
                                             uint16_t default_port = 0);

// An array of "addr/len" prefixes; bad elements reported and skipped.
std::vector<model::Prefix> read_prefixes(Context& ctx, const toml::node& node, std::string_view what);

// A string holding an absolute path (the daemon does not resolve paths
// against its working directory, which is / under systemd).
std::optional<std::string> read_absolute_path(Context& ctx, const toml::node& node, std::string_view what);

// A Linux interface name: 1..15 bytes (IFNAMSIZ - 1), no '/', ':' or spaces.
std::optional<std::string> read_interface_name(Context& ctx, const toml::node& node, std::string_view what);

// A name used in the API and metrics labels: [A-Za-z0-9][A-Za-z0-9._-]{0,62}.
std::optional<std::string> read_identifier(Context& ctx, const toml::node& node, std::string_view what);

}  // namespace sluice::config::detail
