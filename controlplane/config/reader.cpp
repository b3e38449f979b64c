// Typed readers over toml++ nodes that turn every mismatch into a
// positioned diagnostic instead of an exception or a silent default.
#include "config/reader.h"

#include <algorithm>
#include <cassert>
#include <tuple>

namespace sluice::config::detail {

void Context::add(const toml::source_region& where, Severity severity, std::string message)
{
    diagnostics_.push_back(Diagnostic{file_, where.begin.line, where.begin.column, severity,
                                      std::move(message)});
}

void Context::error(const toml::source_region& where, std::string message)
{
    add(where, Severity::kError, std::move(message));
}

void Context::warning(const toml::source_region& where, std::string message)
{
    add(where, Severity::kWarning, std::move(message));
}

void Context::error_without_position(std::string message)
{
    diagnostics_.push_back(Diagnostic{file_, 0, 0, Severity::kError, std::move(message)});
}

std::vector<Diagnostic> Context::take_sorted()
{
    // Readers visit tables in toml++'s key order, not file order; sort so the
    // operator reads findings top to bottom.
    std::stable_sort(diagnostics_.begin(), diagnostics_.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return std::move(diagnostics_);
}

std::string_view type_name(const toml::node& node)
{
    switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
    }
    return "nothing";
}

std::string element_name(std::string_view key, size_t index)
{
    return std::string(key) + "[" + std::to_string(index) + "]";
}

std::string quote(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string display_name(std::string_view schema_path)
{
    static const std::vector<std::string_view> kArrayTables = {
        "service", "service.backends", "dataplane.dpdk.ports", "filter.payload_rules",
        "service.filter.payload_rules"};
    if (schema_path.empty()) {
        return "the top level";
    }
    if (std::find(kArrayTables.begin(), kArrayTables.end(), schema_path) != kArrayTables.end()) {
        return "[[" + std::string(schema_path) + "]]";
    }
    return "[" + std::string(schema_path) + "]";
}

namespace {

void wrong_type(Context& ctx, const toml::node& node, std::string_view what, std::string_view expected)
{
    ctx.error(node.source(), quote(what) + " must be " + std::string(expected) + ", got " +
                                 std::string(type_name(node)));
}

}  // namespace

std::optional<std::string> read_string(Context& ctx, const toml::node& node, std::string_view what)
{
    if (const auto* value = node.as_string()) {
        return value->get();
    }
    wrong_type(ctx, node, what, "a string");
    return std::nullopt;
}

std::optional<int64_t> read_integer(Context& ctx, const toml::node& node, std::string_view what,
                                    int64_t min, int64_t max)
{
    const auto* value = node.as_integer();
    if (value == nullptr) {
        wrong_type(ctx, node, what, "an integer");
        return std::nullopt;
    }
    const int64_t n = value->get();
    if (n < min || n > max) {
        ctx.error(node.source(), quote(what) + " must be between " + std::to_string(min) + " and " +
                                     std::to_string(max) + ", got " + std::to_string(n));
        return std::nullopt;
    }
    return n;
}

std::optional<bool> read_bool(Context& ctx, const toml::node& node, std::string_view what)
{
    if (const auto* value = node.as_boolean()) {
        return value->get();
    }
    wrong_type(ctx, node, what, "a boolean (true or false)");
    return std::nullopt;
}

const toml::table* read_table(Context& ctx, const toml::node& node, std::string_view what)
{
    if (const auto* table = node.as_table()) {
        return table;
    }
    wrong_type(ctx, node, what, "a table");
    return nullptr;
}

const toml::array* read_array(Context& ctx, const toml::node& node, std::string_view what)
{
    if (const auto* array = node.as_array()) {
        return array;
    }
    wrong_type(ctx, node, what, "an array");
    return nullptr;
}

std::optional<size_t> read_choice_index(Context& ctx, const toml::node& node, std::string_view what,
                                        const std::vector<std::string_view>& names)
{
    const std::optional<std::string> text = read_string(ctx, node, what);
    if (!text) {
        return std::nullopt;
    }
    for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == *text) {
            return i;
        }
    }
    std::string message = quote(what) + " must be one of ";
    for (size_t i = 0; i < names.size(); ++i) {
        message += (i == 0 ? "\"" : ", \"") + std::string(names[i]) + "\"";
    }
    message += "; got \"" + *text + "\"";
    if (auto near = closest_match(*text, names)) {
        message += "; did you mean \"" + std::string(*near) + "\"?";
    }
    ctx.error(node.source(), std::move(message));
    return std::nullopt;
}

void check_unknown_keys(Context& ctx, const toml::table& table, const TableSchema& schema,
                        std::string_view context)
{
    const std::string where = context.empty() ? display_name(schema.path) : std::string(context);
    for (auto&& [key, value] : table) {
        const std::string_view name = key.str();
        if (std::find(schema.keys.begin(), schema.keys.end(), name) != schema.keys.end()) {
            continue;
        }
        std::string message = "unknown key " + quote(name) + " in " + where;
        if (auto near = closest_match(name, schema.keys)) {
            message += "; did you mean " + quote(*near) + "?";
        } else {
            // Not a typo here: maybe a key of another table, written in the wrong place.
            for (const TableSchema& other : sluice::config::schema()) {
                if (&other == &schema ||
                    std::find(other.keys.begin(), other.keys.end(), name) == other.keys.end()) {
                    continue;
                }
                if (other.path == schema.path) {
                    message += "; it is a setting of discovery type \"" + std::string(other.variant) + "\"";
                } else {
                    message += "; it belongs in " + display_name(other.path);
                }
                break;
            }
        }
        ctx.error(key.source(), std::move(message));
    }
}

TableReader::TableReader(Context& ctx, const toml::table& table, const TableSchema& schema, bool check_keys)
    : ctx_(ctx), table_(table), schema_(schema)
{
    if (check_keys) {
        check_unknown_keys(ctx, table, schema);
    }
}

const toml::node* TableReader::node(std::string_view key) const
{
    // A reader asking for a key the schema does not list would make the
    // unknown-key check refuse the very key it reads.
    assert(std::find(schema_.keys.begin(), schema_.keys.end(), key) != schema_.keys.end());
    return table_.get(key);
}

const toml::node* TableReader::require(std::string_view key) const
{
    const toml::node* n = node(key);
    if (n == nullptr) {
        ctx_.error(where(), "missing required key " + quote(key) + " in " + display_name(schema_.path));
    }
    return n;
}

std::optional<std::string> TableReader::string(std::string_view key, bool required) const
{
    const toml::node* n = required ? require(key) : node(key);
    return n != nullptr ? read_string(ctx_, *n, key) : std::nullopt;
}

std::optional<int64_t> TableReader::integer(std::string_view key, int64_t min, int64_t max,
                                            bool required) const
{
    const toml::node* n = required ? require(key) : node(key);
    return n != nullptr ? read_integer(ctx_, *n, key, min, max) : std::nullopt;
}

std::optional<bool> TableReader::boolean(std::string_view key) const
{
    const toml::node* n = node(key);
    return n != nullptr ? read_bool(ctx_, *n, key) : std::nullopt;
}

const toml::table* TableReader::table(std::string_view key) const
{
    const toml::node* n = node(key);
    return n != nullptr ? read_table(ctx_, *n, key) : nullptr;
}

const toml::array* TableReader::array(std::string_view key) const
{
    const toml::node* n = node(key);
    return n != nullptr ? read_array(ctx_, *n, key) : nullptr;
}

std::optional<std::vector<std::string>> TableReader::strings(std::string_view key) const
{
    const toml::array* list = array(key);
    if (list == nullptr) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (size_t index = 0; index < list->size(); ++index) {
        const toml::node& element = (*list)[index];
        if (auto text = read_string(ctx_, element, element_name(key, index))) {
            out.push_back(std::move(*text));
        }
    }
    return out;
}

}  // namespace sluice::config::detail
