// Reader for one [[service]]: VIP, forwarding, Maglev table size, static
// backends or a discovery source, health check, drain and filters.
#include <algorithm>
#include <cctype>

#include "abi/tables.h"
#include "config/sections.h"
#include "config/values.h"

namespace sluice::config::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool is_prime(int64_t n)
{
    if (n < 2) return false;
    for (int64_t d = 2; d * d <= n; ++d) {
        if (n % d == 0) return false;
    }
    return true;
}

// The primes nearest below and above n, for the "not prime" message.
std::string nearby_primes(int64_t n)
{
    int64_t below = n - 1;
    while (below > 1 && !is_prime(below)) --below;
    int64_t above = n + 1;
    while (!is_prime(above)) ++above;
    std::string text;
    if (below > 1) text = std::to_string(below) + " or ";
    if (above <= SLUICE_MAX_RING_SIZE) {
        text += std::to_string(above);
    } else if (!text.empty()) {
        text.resize(text.size() - 4);  // drop " or "
    }
    return text;
}

void read_table_size(Context& ctx, const TableReader& r, model::Service& out)
{
    const toml::node* node = r.node("table_size");
    if (node == nullptr) return;
    const auto size = read_integer(ctx, *node, "table_size", 2, INT64_MAX);
    if (!size) return;
    if (*size > SLUICE_MAX_RING_SIZE) {
        ctx.error(node->source(), "table_size " + std::to_string(*size) + " exceeds the largest supported size " +
                                      std::to_string(SLUICE_MAX_RING_SIZE) + " (SLUICE_MAX_RING_SIZE)");
        return;
    }
    // Maglev's permutation (offset + j * skip) mod M visits every slot only
    // when M is prime (paper, section 3.4).
    if (!is_prime(*size)) {
        ctx.error(node->source(), "table_size " + std::to_string(*size) + " is not prime; try " + nearby_primes(*size));
        return;
    }
    out.table_size = static_cast<uint32_t>(*size);
}

void read_backend(Context& ctx, const toml::table& table, model::Backend& out, const toml::node*& address_node)
{
    TableReader r(ctx, table, table_schema("service.backends"));
    address_node = nullptr;
    if (const toml::node* address = r.require("address")) {
        // "10.0.0.1:8080" is the commonest slip here; say where the port goes.
        const auto* text = address->as_string();
        auto endpoint = text != nullptr ? model::parse_endpoint(text->get()) : Error{""};
        if (endpoint && endpoint.value().port != 0) {
            ctx.error(address->source(), "invalid 'address': \"" + text->get() + "\" includes a port; write address = \"" +
                                             endpoint.value().address.to_string() + "\", port = " +
                                             std::to_string(endpoint.value().port));
        } else if (auto parsed = read_ip_address(ctx, *address, "address")) {
            if (parsed->is_loopback()) {
                ctx.error(address->source(), "invalid 'address': " + parsed->to_string() + " is a loopback address");
            } else {
                out.address = *parsed;
                address_node = address;
            }
        }
    }
    if (auto port = r.integer("port", 1, 65535)) out.port = static_cast<uint16_t>(*port);
    if (const toml::node* weight = r.node("weight")) {
        if (weight->as_integer() != nullptr && weight->as_integer()->get() == 0) {
            ctx.error(weight->source(), "'weight' must be between 1 and 10000, got 0; to stop new flows to a "
                                        "backend set state = \"draining\"");
        } else if (auto w = read_integer(ctx, *weight, "weight", 1, 10000)) {
            out.weight = static_cast<uint32_t>(*w);
        }
    }
    if (auto state = r.choice<model::BackendState>("state", {{"active", model::BackendState::kActive},
                                                             {"draining", model::BackendState::kDraining}})) {
        out.state = *state;
    }
}

void read_backends(Context& ctx, const toml::array& list, model::Service& out, ServiceNodes& nodes)
{
    if (list.empty()) {
        ctx.error(list.source(), "'backends' is empty: list at least one backend, or use a discovery source");
    }
    for (size_t index = 0; index < list.size(); ++index) {
        const toml::node& element = list[index];
        const toml::table* table = read_table(ctx, element, element_name("backends", index));
        if (table == nullptr) continue;
        model::Backend backend;
        const toml::node* address = nullptr;
        read_backend(ctx, *table, backend, address);
        if (address == nullptr) continue;
        // Encapsulation and DSR keep the VIP's port, so two entries with one
        // address are one host counted twice in the Maglev table.
        const auto same = std::find_if(out.backends.begin(), out.backends.end(),
                                       [&](const model::Backend& b) { return b.address == backend.address; });
        if (same != out.backends.end()) {
            const toml::node* first = nodes.backend_addresses[static_cast<size_t>(same - out.backends.begin())];
            ctx.error(address->source(), "backend " + backend.address.to_string() + " is listed twice (first on line " +
                                             std::to_string(first->source().begin.line) + ")");
            continue;
        }
        out.backends.push_back(backend);
        nodes.backend_addresses.push_back(address);
    }
}

void read_etcd(Context& ctx, const TableReader& r, model::EtcdDiscovery& out)
{
    if (r.require("endpoints") != nullptr) {
        if (const toml::array* list = r.array("endpoints")) {
            if (list->empty()) ctx.error(list->source(), "'endpoints' is empty: list at least one etcd URL");
            for (size_t index = 0; index < list->size(); ++index) {
                const toml::node& element = (*list)[index];
                auto url = read_string(ctx, element, element_name("endpoints", index));
                if (!url) continue;
                if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) {
                    ctx.error(element.source(), "etcd endpoint \"" + *url + "\" must start with http:// or https://");
                    continue;
                }
                out.endpoints.push_back(*url);
            }
        }
    }
    if (auto prefix = r.string("prefix", /*required=*/true)) {
        if (prefix->empty()) ctx.error(r.node("prefix")->source(), "'prefix' is empty: it would watch the whole keyspace");
        out.prefix = *prefix;
    }
    if (auto user = r.string("username")) out.username = *user;
    for (auto [key, target] : {std::pair{"password_file", &out.password_file}, std::pair{"ca_file", &out.ca_file},
                               std::pair{"cert_file", &out.cert_file}, std::pair{"key_file", &out.key_file}}) {
        if (const toml::node* node = r.node(key)) *target = read_absolute_path(ctx, *node, key);
    }
    if (r.has("password_file") != r.has("username")) {
        ctx.error(r.node(r.has("username") ? "username" : "password_file")->source(),
                  "'username' and 'password_file' go together");
    }
    if (r.has("cert_file") != r.has("key_file")) {
        ctx.error(r.node(r.has("cert_file") ? "cert_file" : "key_file")->source(),
                  "'cert_file' and 'key_file' go together (mutual TLS)");
    }
    if (auto ms = r.integer("dial_timeout_ms", 100, 60000)) out.dial_timeout = milliseconds(*ms);
}

void read_dns(Context& ctx, const TableReader& r, model::DnsDiscovery& out, ServiceNodes& nodes)
{
    if (auto name = r.string("name", /*required=*/true)) {
        const bool valid = !name->empty() && name->size() <= 253 &&
                           std::all_of(name->begin(), name->end(), [](char c) {
                               return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
                           });
        if (!valid) ctx.error(r.node("name")->source(), "'name' \"" + *name + "\" is not a DNS name");
        out.name = *name;
    }
    if (auto record = r.choice<model::DnsRecord>("record", {{"A", model::DnsRecord::kA},
                                                             {"AAAA", model::DnsRecord::kAaaa},
                                                             {"SRV", model::DnsRecord::kSrv}},
                                                  /*required=*/true)) {
        out.record = *record;
        nodes.dns_record = r.node("record");
    }
    if (const toml::node* resolver = r.node("resolver")) {
        out.resolver = read_endpoint(ctx, *resolver, "resolver", model::PortRule::kOptional, 53);
    }
    if (auto port = r.integer("port", 1, 65535)) {
        out.port = static_cast<uint16_t>(*port);
        if (out.record == model::DnsRecord::kSrv) {
            ctx.warning(r.node("port")->source(), "'port' is ignored with record = \"SRV\": SRV records carry ports");
        }
    }
    if (auto ms = r.integer("refresh_ms", 1000, 86400000)) out.refresh_interval = milliseconds(*ms);
}

void read_discovery(Context& ctx, const toml::table& table, model::Service& out, ServiceNodes& nodes)
{
    // The keys allowed depend on `type`, so the unknown-key check waits for it.
    TableReader any(ctx, table, table_schema("service.discovery", "etcd"), /*check_keys=*/false);
    const toml::node* type_node = any.require("type");
    const auto type = type_node != nullptr ? read_choice_index(ctx, *type_node, "type", {"etcd", "file", "dns"})
                                           : std::nullopt;
    if (!type) return;
    static constexpr std::string_view kVariants[] = {"etcd", "file", "dns"};
    const std::string_view variant = kVariants[*type];
    const TableSchema& schema = table_schema("service.discovery", variant);
    check_unknown_keys(ctx, table, schema, "discovery type \"" + std::string(variant) + "\"");
    TableReader r(ctx, table, schema, /*check_keys=*/false);
    if (variant == "etcd") {
        read_etcd(ctx, r, std::get<model::EtcdDiscovery>(out.discovery.emplace(model::EtcdDiscovery{})));
    } else if (variant == "file") {
        model::FileDiscovery file;
        if (const toml::node* path = r.require("path")) {
            if (auto text = read_absolute_path(ctx, *path, "path")) file.path = *text;
        }
        out.discovery = file;
    } else {
        read_dns(ctx, r, std::get<model::DnsDiscovery>(out.discovery.emplace(model::DnsDiscovery{})), nodes);
    }
}

void read_health_check(Context& ctx, const toml::table* table, model::Service& out)
{
    model::HealthCheck& hc = out.health_check;
    // TCP services are probed with a connect by default; a UDP service has
    // no equally safe default probe, so it has none until one is written.
    hc.type = out.protocol == model::Protocol::kTcp ? model::HealthCheckType::kTcp : model::HealthCheckType::kNone;
    if (table == nullptr) return;
    TableReader r(ctx, *table, table_schema("service.health_check"));
    if (auto type = r.choice<model::HealthCheckType>("type", {{"none", model::HealthCheckType::kNone},
                                                              {"tcp", model::HealthCheckType::kTcp},
                                                              {"http", model::HealthCheckType::kHttp},
                                                              {"https", model::HealthCheckType::kHttps},
                                                              {"udp", model::HealthCheckType::kUdp}})) {
        hc.type = *type;
    }
    if (auto ms = r.integer("interval_ms", 100, 3600000)) hc.interval = milliseconds(*ms);
    if (auto ms = r.integer("timeout_ms", 10, 3600000)) hc.timeout = milliseconds(*ms);
    if (hc.timeout >= hc.interval) {
        ctx.error(r.has("timeout_ms") ? r.node("timeout_ms")->source() : r.where(),
                  "timeout_ms (" + std::to_string(hc.timeout.count()) + ") must be shorter than interval_ms (" +
                      std::to_string(hc.interval.count()) + ")");
    }
    if (auto n = r.integer("rise", 1, 100)) hc.rise = static_cast<uint32_t>(*n);
    if (auto n = r.integer("fall", 1, 100)) hc.fall = static_cast<uint32_t>(*n);
    if (auto port = r.integer("port", 1, 65535)) hc.port = static_cast<uint16_t>(*port);
    if (auto path = r.string("path")) {
        if (path->empty() || path->front() != '/') {
            ctx.error(r.node("path")->source(), "'path' must start with '/', got \"" + *path + "\"");
        }
        hc.http_path = *path;
    }
    if (auto host = r.string("host")) hc.http_host = *host;
    if (auto status = r.integer("expect_status", 100, 599)) hc.http_expect_status = static_cast<uint16_t>(*status);
    if (auto send = r.string("send")) hc.udp_send = *send;
    if (auto expect = r.string("expect")) hc.udp_expect = *expect;

    const bool http = hc.type == model::HealthCheckType::kHttp || hc.type == model::HealthCheckType::kHttps;
    const bool udp = hc.type == model::HealthCheckType::kUdp;
    const bool none = hc.type == model::HealthCheckType::kNone;
    const auto unused = [&](std::string_view key, bool applies, std::string_view types) {
        if (r.has(key) && !applies) {
            ctx.warning(r.node(key)->source(), quote(key) + " has no effect with this health check type (it applies to " +
                                                   std::string(types) + ")");
        }
    };
    for (std::string_view key : {"path", "host", "expect_status"}) unused(key, http, "http and https");
    for (std::string_view key : {"send", "expect"}) unused(key, udp, "udp");
    for (std::string_view key : {"interval_ms", "timeout_ms", "rise", "fall", "port"}) unused(key, !none, "every type but none");
}

}  // namespace

void read_service(Context& ctx, const toml::table& table, model::Service& out, ServiceNodes& nodes)
{
    TableReader r(ctx, table, table_schema("service"));
    nodes.table = &table;
    if (const toml::node* name = r.require("name")) {
        if (auto text = read_identifier(ctx, *name, "name")) {
            out.name = *text;
            nodes.name_ok = true;
        }
    }
    if (const toml::node* vip = r.require("vip")) {
        if (auto endpoint = read_endpoint(ctx, *vip, "vip")) {
            out.vip = *endpoint;
            nodes.vip = vip;
        }
    }
    if (auto protocol = r.choice<model::Protocol>("protocol", {{"tcp", model::Protocol::kTcp},
                                                               {"udp", model::Protocol::kUdp}})) {
        out.protocol = *protocol;
    }
    if (auto forwarding = r.choice<model::Forwarding>("forwarding", {{"ipip", model::Forwarding::kIpip},
                                                                     {"gue", model::Forwarding::kGue},
                                                                     {"l2dsr", model::Forwarding::kL2Dsr}})) {
        out.forwarding = *forwarding;
        nodes.forwarding = r.node("forwarding");
    }
    // Port 0 would be "any" to the kernel's GUE receiver, which cannot work as a destination.
    if (auto port = r.integer("gue_port", 1, 65535)) {
        out.gue_port = static_cast<uint16_t>(*port);
        if (out.forwarding != model::Forwarding::kGue) {
            ctx.warning(r.node("gue_port")->source(), "gue_port has no effect unless forwarding = \"gue\"");
        }
    }
    read_table_size(ctx, r, out);
    if (auto hash = r.choice<model::HashFields>("hash", {{"five_tuple", model::HashFields::kFiveTuple},
                                                         {"client", model::HashFields::kClient}})) {
        out.hash = *hash;
    }

    const toml::array* backends = r.array("backends");
    if (backends != nullptr) read_backends(ctx, *backends, out, nodes);
    const toml::table* discovery = r.table("discovery");
    if (discovery != nullptr) read_discovery(ctx, *discovery, out, nodes);
    const std::string who = nodes.name_ok ? "service \"" + out.name + "\"" : "this service";
    if (r.has("backends") && r.has("discovery")) {
        ctx.error(r.node("discovery")->source(), who + " has both 'backends' and 'discovery'; keep one");
    } else if (!r.has("backends") && !r.has("discovery")) {
        ctx.error(r.where(), who + " has no backends: set 'backends' or 'discovery'");
    }

    read_health_check(ctx, r.table("health_check"), out);
    if (auto policy = r.choice<model::AllDownPolicy>("on_all_backends_down", {{"keep_all", model::AllDownPolicy::kKeepAll},
                                                                              {"drop", model::AllDownPolicy::kDrop}})) {
        out.on_all_backends_down = *policy;
    }
    if (auto s = r.integer("drain_deadline_s", 0, 86400)) out.drain_deadline = seconds(*s);
    if (const toml::table* filter = r.table("filter")) {
        nodes.payload_rules = read_filter(ctx, *filter, "service.filter", out.filter);
    }
    if (const toml::table* limits = r.table("rate_limit")) read_rate_limit(ctx, *limits, out.rate_limit);
}

}  // namespace sluice::config::detail
