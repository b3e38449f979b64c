// Readers for addresses, prefixes, paths and names in the config.
#include "config/values.h"

#include <cctype>

namespace sluice::config::detail {

std::optional<model::IpAddress> read_ip_address(Context& ctx, const toml::node& node, std::string_view what,
                                                bool allow_unspecified)
{
    const std::optional<std::string> text = read_string(ctx, node, what);
    if (!text) {
        return std::nullopt;
    }
    auto address = model::parse_ip_address(*text);
    if (!address) {
        ctx.error(node.source(), "invalid " + quote(what) + ": " + address.error());
        return std::nullopt;
    }
    if (!allow_unspecified && address.value().is_unspecified()) {
        ctx.error(node.source(), "invalid " + quote(what) + ": the unspecified address " + *text +
                                     " names no host");
        return std::nullopt;
    }
    if (address.value().is_multicast()) {
        ctx.error(node.source(), "invalid " + quote(what) + ": " + *text + " is a multicast address");
        return std::nullopt;
    }
    return address.value();
}

std::optional<model::Endpoint> read_endpoint(Context& ctx, const toml::node& node, std::string_view what,
                                             model::PortRule rule, uint16_t default_port)
{
    const std::optional<std::string> text = read_string(ctx, node, what);
    if (!text) {
        return std::nullopt;
    }
    auto endpoint = model::parse_endpoint(*text, rule, default_port);
    if (!endpoint) {
        ctx.error(node.source(), "invalid " + quote(what) + ": " + endpoint.error());
        return std::nullopt;
    }
    const model::IpAddress& address = endpoint.value().address;
    if (address.is_unspecified() || address.is_multicast()) {
        ctx.error(node.source(), "invalid " + quote(what) + ": " + address.to_string() + " is " +
                                     (address.is_multicast() ? "a multicast" : "the unspecified") +
                                     " address");
        return std::nullopt;
    }
    return endpoint.value();
}

std::vector<model::Prefix> read_prefixes(Context& ctx, const toml::node& node, std::string_view what)
{
    std::vector<model::Prefix> prefixes;
    const toml::array* list = read_array(ctx, node, what);
    if (list == nullptr) {
        return prefixes;
    }
    for (size_t index = 0; index < list->size(); ++index) {
        const toml::node& element = (*list)[index];
        const std::optional<std::string> text = read_string(ctx, element, element_name(what, index));
        if (!text) {
            continue;
        }
        auto prefix = model::parse_prefix(*text);
        if (!prefix) {
            ctx.error(element.source(), "invalid prefix in " + quote(what) + ": " + prefix.error());
            continue;
        }
        prefixes.push_back(prefix.value());
    }
    return prefixes;
}

std::optional<std::string> read_absolute_path(Context& ctx, const toml::node& node, std::string_view what)
{
    std::optional<std::string> path = read_string(ctx, node, what);
    if (path && (path->empty() || path->front() != '/')) {
        ctx.error(node.source(), quote(what) + " must be an absolute path, got \"" + *path + "\"");
        return std::nullopt;
    }
    return path;
}

std::optional<std::string> read_interface_name(Context& ctx, const toml::node& node, std::string_view what)
{
    std::optional<std::string> name = read_string(ctx, node, what);
    if (!name) {
        return std::nullopt;
    }
    bool valid = !name->empty() && name->size() <= 15 && *name != "." && *name != "..";
    for (char c : *name) {
        valid = valid && c != '/' && c != ':' && std::isgraph(static_cast<unsigned char>(c));
    }
    if (!valid) {
        ctx.error(node.source(), quote(what) + " must be an interface name of 1 to 15 characters without '/', "
                                               "':' or spaces, got \"" + *name + "\"");
        return std::nullopt;
    }
    return name;
}

std::optional<std::string> read_identifier(Context& ctx, const toml::node& node, std::string_view what)
{
    std::optional<std::string> name = read_string(ctx, node, what);
    if (!name) {
        return std::nullopt;
    }
    bool valid = !name->empty() && name->size() <= 63 && std::isalnum(static_cast<unsigned char>(name->front()));
    for (char c : *name) {
        valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    }
    if (!valid) {
        ctx.error(node.source(), quote(what) + " must be 1 to 63 letters, digits, '.', '_' or '-', starting "
                                               "with a letter or digit; got \"" + *name + "\"");
        return std::nullopt;
    }
    return name;
}

}  // namespace sluice::config::detail
