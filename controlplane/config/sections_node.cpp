// Readers for the node-wide sections: [daemon], [dataplane] with its dpdk
// and xdp parts, [network] and [conntrack].
#include <algorithm>
#include <set>

#include "config/sections.h"
#include "config/values.h"

extern "C" {
#include "abi/tables.h"
}

namespace sluice::config::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Largest lcore id accepted; DPDK's RTE_MAX_LCORE is a build option and
// 1024 is the largest value distributions use.
constexpr int64_t kMaxLcore = 1023;

// Reads the table under `key` of `parent`, or nullptr when absent or not a table.
const toml::table* section(Context& ctx, const toml::table& parent, std::string_view key)
{
    const toml::node* node = parent.get(key);
    return node != nullptr ? read_table(ctx, *node, key) : nullptr;
}

void read_admin(Context& ctx, const toml::table& table, model::AdminApi& out)
{
    TableReader r(ctx, table, table_schema("daemon.admin"));
    const toml::node* listen = r.node("listen");
    if (listen != nullptr) {
        if (auto address = read_ip_address(ctx, *listen, "listen", /*allow_unspecified=*/true)) {
            out.listen = *address;
        }
    }
    if (auto port = r.integer("port", 1, 65535)) out.port = static_cast<uint16_t>(*port);
    if (const toml::node* token = r.node("token_file")) out.token_file = read_absolute_path(ctx, *token, "token_file");
    // DESIGN.md: loopback by default, a bearer token when bound elsewhere.
    if (!out.listen.is_loopback() && !r.has("token_file")) {
        ctx.error(listen != nullptr ? listen->source() : r.where(),
                  "the admin API listens on " + out.listen.to_string() +
                      ", beyond loopback, without a token: set token_file");
    }
}

void read_port(Context& ctx, const toml::table& table, model::DpdkPort& out)
{
    TableReader r(ctx, table, table_schema("dataplane.dpdk.ports"));
    if (const toml::node* name = r.require("name")) {
        if (auto text = read_identifier(ctx, *name, "name")) out.name = *text;
    }
    if (auto device = r.string("device", /*required=*/true)) {
        if (device->empty()) {
            ctx.error(r.node("device")->source(), "'device' must name a PCI address or vdev devargs");
        }
        out.device = *device;
    }
    if (auto queues = r.integer("rx_queues", 1, 1024)) out.rx_queues = static_cast<uint16_t>(*queues);
}

void read_dpdk(Context& ctx, const toml::table& table, model::DpdkSettings& out)
{
    TableReader r(ctx, table, table_schema("dataplane.dpdk"));
    if (auto args = r.strings("eal_args")) {
        out.eal_args = *args;
        // Core placement is ours to decide (main_lcore, worker_lcores); an
        // EAL core list as well would leave two sources of truth.
        const toml::array& list = *r.array("eal_args");
        for (size_t i = 0; i < list.size(); ++i) {
            const auto* text = list[i].as_string();
            if (text == nullptr) continue;
            const std::string& arg = text->get();
            if (arg == "-l" || arg == "-c" || arg == "--lcores" || arg.rfind("--lcores=", 0) == 0 ||
                arg == "--main-lcore" || arg.rfind("--main-lcore=", 0) == 0) {
                ctx.error(list[i].source(), "'" + arg + "' in eal_args: set main_lcore and worker_lcores instead");
            }
        }
    }
    if (auto main = r.integer("main_lcore", 0, kMaxLcore)) out.main_lcore = static_cast<uint32_t>(*main);
    if (r.require("worker_lcores") != nullptr) {
        if (const toml::array* list = r.array("worker_lcores")) {
            if (list->empty()) ctx.error(list->source(), "'worker_lcores' is empty: list at least one lcore");
            std::set<int64_t> seen;
            for (size_t index = 0; index < list->size(); ++index) {
                const toml::node& element = (*list)[index];
                auto lcore = read_integer(ctx, element, element_name("worker_lcores", index), 0, kMaxLcore);
                if (!lcore) continue;
                if (!seen.insert(*lcore).second) {
                    ctx.error(element.source(), "lcore " + std::to_string(*lcore) + " is listed twice in worker_lcores");
                } else if (static_cast<uint32_t>(*lcore) == out.main_lcore) {
                    ctx.error(element.source(), "lcore " + std::to_string(*lcore) +
                                                    " is the main_lcore; workers need cores of their own");
                } else {
                    out.worker_lcores.push_back(static_cast<uint32_t>(*lcore));
                }
            }
        }
    }
    if (r.require("ports") != nullptr) {
        if (const toml::array* list = r.array("ports")) {
            if (list->empty()) ctx.error(list->source(), "'ports' is empty: list at least one port");
            for (size_t index = 0; index < list->size(); ++index) {
                const toml::node& element = (*list)[index];
                const toml::table* port_table = read_table(ctx, element, element_name("ports", index));
                if (port_table == nullptr) continue;
                model::DpdkPort port;
                read_port(ctx, *port_table, port);
                const bool duplicate = !port.name.empty() &&
                    std::any_of(out.ports.begin(), out.ports.end(), [&](const auto& p) { return p.name == port.name; });
                if (duplicate) {
                    ctx.error(port_table->get("name")->source(), "port name \"" + port.name + "\" is used twice");
                    continue;
                }
                out.ports.push_back(std::move(port));
            }
        }
    }
    if (auto size = r.integer("mbuf_pool_size", 1024, 16777216)) out.mbuf_pool_size = static_cast<uint32_t>(*size);
    if (auto size = r.integer("conn_table_size", 1024, 67108864)) out.conn_table_size = static_cast<uint32_t>(*size);
    if (auto on = r.boolean("exception_path")) out.exception_path = *on;
    if (const toml::node* tap = r.node("exception_tap")) {
        if (auto name = read_interface_name(ctx, *tap, "exception_tap")) out.exception_tap = *name;
    }
    if (const toml::node* egress = r.node("egress_port")) {
        if (auto name = read_string(ctx, *egress, "egress_port")) {
            const bool known = std::any_of(out.ports.begin(), out.ports.end(), [&](const auto& p) { return p.name == *name; });
            if (!known) {
                std::string names;
                for (const auto& p : out.ports) names += (names.empty() ? "\"" : ", \"") + p.name + "\"";
                ctx.error(egress->source(), "egress_port \"" + *name + "\" is not one of the ports (" + names + ")");
            } else {
                out.egress_port = *name;
            }
        }
    }
    if (const toml::node* mac_node = r.node("next_hop_mac")) {
        if (auto text = read_string(ctx, *mac_node, "next_hop_mac")) {
            auto mac = model::parse_mac_address(*text);
            if (!mac) {
                ctx.error(mac_node->source(), "invalid 'next_hop_mac': " + mac.error());
            } else if ((mac.value().bytes[0] & 0x01) != 0) {
                ctx.error(mac_node->source(), "invalid 'next_hop_mac': " + *text + " is a multicast MAC");
            } else {
                out.next_hop_mac = mac.value();
            }
        }
    }
    // Each (port, queue) pair is polled by one worker; fewer pairs than
    // workers leaves cores spinning on nothing.
    size_t queues = 0;
    for (const auto& port : out.ports) queues += port.rx_queues != 0 ? port.rx_queues : out.worker_lcores.size();
    if (!out.ports.empty() && queues < out.worker_lcores.size()) {
        ctx.warning(r.node("worker_lcores")->source(),
                    std::to_string(out.worker_lcores.size()) + " worker lcores but only " + std::to_string(queues) +
                        " RX queues in all: some workers will have no queue to poll");
    }
}

void read_xdp(Context& ctx, const toml::table& table, model::XdpSettings& out)
{
    TableReader r(ctx, table, table_schema("dataplane.xdp"));
    if (r.require("interfaces") != nullptr) {
        if (const toml::array* list = r.array("interfaces")) {
            if (list->empty()) ctx.error(list->source(), "'interfaces' is empty: list at least one interface");
            for (size_t index = 0; index < list->size(); ++index) {
                const toml::node& element = (*list)[index];
                auto name = read_interface_name(ctx, element, element_name("interfaces", index));
                if (!name) continue;
                if (std::find(out.interfaces.begin(), out.interfaces.end(), *name) != out.interfaces.end()) {
                    ctx.error(element.source(), "interface \"" + *name + "\" is listed twice");
                    continue;
                }
                out.interfaces.push_back(*name);
            }
        }
    }
    if (auto mode = r.choice<model::XdpMode>("mode", {{"native", model::XdpMode::kNative},
                                                      {"generic", model::XdpMode::kGeneric}})) {
        out.mode = *mode;
    }
    if (auto fallback = r.boolean("allow_generic_fallback")) {
        out.allow_generic_fallback = *fallback;
        if (*fallback && out.mode == model::XdpMode::kGeneric) {
            ctx.warning(r.node("allow_generic_fallback")->source(),
                        "allow_generic_fallback has no effect with mode = \"generic\"");
        }
    }
    if (const toml::node* pin = r.node("pin_path")) {
        if (auto path = read_absolute_path(ctx, *pin, "pin_path")) out.pin_path = *path;
    }
    if (auto size = r.integer("conn_table_size", 1024, 16777216)) out.conn_table_size = static_cast<uint32_t>(*size);
    if (auto mode = r.choice<model::XdpConnTableMode>("conn_table_mode",
                                                      {{"auto", model::XdpConnTableMode::kAuto},
                                                       {"per-cpu", model::XdpConnTableMode::kPerCpu},
                                                       {"shared", model::XdpConnTableMode::kShared}})) {
        out.conn_table_mode = *mode;
    }
}

// One of network's addresses, which must be of `family`.
void read_family_address(Context& ctx, const TableReader& r, std::string_view key, model::IpFamily family,
                         std::optional<model::IpAddress>& out)
{
    const toml::node* node = r.node(key);
    if (node == nullptr) return;
    auto address = read_ip_address(ctx, *node, key);
    if (!address) return;
    if (address->family != family) {
        ctx.error(node->source(), quote(key) + " must be an " + std::string(model::family_name(family)) +
                                      " address, got " + std::string(model::family_name(address->family)) + " " +
                                      address->to_string());
        return;
    }
    out = *address;
}

}  // namespace

void read_daemon(Context& ctx, const toml::table& root, model::DaemonSettings& out)
{
    const toml::table* table = section(ctx, root, "daemon");
    if (table == nullptr) return;
    TableReader r(ctx, *table, table_schema("daemon"));
    if (auto level = r.choice<model::LogLevel>("log_level", {{"trace", model::LogLevel::kTrace},
                                                             {"debug", model::LogLevel::kDebug},
                                                             {"info", model::LogLevel::kInfo},
                                                             {"warn", model::LogLevel::kWarn},
                                                             {"error", model::LogLevel::kError}})) {
        out.log_level = *level;
    }
    if (const toml::node* dir = r.node("state_dir")) {
        if (auto path = read_absolute_path(ctx, *dir, "state_dir")) out.state_dir = *path;
    }
    if (const toml::table* admin = r.table("admin")) read_admin(ctx, *admin, out.admin);
}

const toml::node* read_dataplane(Context& ctx, const toml::table& root, model::DataplaneSettings& out)
{
    if (root.get("dataplane") == nullptr) {
        ctx.error(root.source(), "missing required section [dataplane]: set type = \"dpdk\", \"xdp\" or \"auto\"");
        return nullptr;
    }
    const toml::table* table = section(ctx, root, "dataplane");
    if (table == nullptr) return nullptr;
    TableReader r(ctx, *table, table_schema("dataplane"));
    const auto type = r.choice<model::DataplaneType>("type", {{"dpdk", model::DataplaneType::kDpdk},
                                                              {"xdp", model::DataplaneType::kXdp},
                                                              {"auto", model::DataplaneType::kAuto}},
                                                     /*required=*/true);
    if (type) out.type = *type;
    // Per core, not split between cores (docs/configuration.md). A burst of
    // 0 would never let an error out: the rate is the way to say "unlimited".
    if (auto rate = r.integer("icmp_errors_per_sec", 0, SLUICE_ICMP_ERRORS_MAX))
        out.icmp_errors_per_sec = static_cast<uint32_t>(*rate);
    if (auto burst = r.integer("icmp_errors_burst", 1, SLUICE_ICMP_ERRORS_MAX))
        out.icmp_errors_burst = static_cast<uint32_t>(*burst);
    if (const toml::table* dpdk = r.table("dpdk")) read_dpdk(ctx, *dpdk, out.dpdk.emplace());
    if (const toml::table* xdp = r.table("xdp")) read_xdp(ctx, *xdp, out.xdp.emplace());
    if (type) {
        const bool needs_dpdk = *type != model::DataplaneType::kXdp;
        const bool needs_xdp = *type != model::DataplaneType::kDpdk;
        const std::string selected = *type == model::DataplaneType::kDpdk  ? "dpdk"
                                     : *type == model::DataplaneType::kXdp ? "xdp"
                                                                           : "auto";
        if (needs_dpdk && !r.has("dpdk")) {
            ctx.error(r.node("type")->source(), "type = \"" + selected + "\" needs a [dataplane.dpdk] section");
        }
        if (needs_xdp && !r.has("xdp")) {
            ctx.error(r.node("type")->source(), "type = \"" + selected + "\" needs a [dataplane.xdp] section");
        }
    }
    return r.node("type");
}

void read_network(Context& ctx, const toml::table& root, model::NetworkSettings& out)
{
    const toml::table* table = section(ctx, root, "network");
    if (table == nullptr) return;
    TableReader r(ctx, *table, table_schema("network"));
    read_family_address(ctx, r, "source_ipv4", model::IpFamily::kIpv4, out.source_ipv4);
    read_family_address(ctx, r, "source_ipv6", model::IpFamily::kIpv6, out.source_ipv6);
    read_family_address(ctx, r, "gateway_ipv4", model::IpFamily::kIpv4, out.gateway_ipv4);
    read_family_address(ctx, r, "gateway_ipv6", model::IpFamily::kIpv6, out.gateway_ipv6);
}

void read_conntrack(Context& ctx, const toml::table& root, model::ConnectionTimeouts& out)
{
    const toml::table* table = section(ctx, root, "conntrack");
    if (table == nullptr) return;
    TableReader r(ctx, *table, table_schema("conntrack"));
    if (auto s = r.integer("tcp_established_s", 1, 7 * 86400)) out.tcp_established = seconds(*s);
    if (auto s = r.integer("tcp_syn_fin_s", 1, 3600)) out.tcp_syn_fin = seconds(*s);
    if (auto s = r.integer("udp_s", 1, 86400)) out.udp = seconds(*s);
    if (out.tcp_syn_fin > out.tcp_established) {
        ctx.warning(r.has("tcp_syn_fin_s") ? r.node("tcp_syn_fin_s")->source() : r.where(),
                    "tcp_syn_fin_s is longer than tcp_established_s: half-open flows would outlive established ones");
    }
}

}  // namespace sluice::config::detail
