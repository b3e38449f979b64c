// Internal to the loader: the diagnostic sink and typed readers over toml++
// nodes. Every reader reports a precise diagnostic on a wrong type or range
// and returns "nothing", so callers keep their defaults and carry on.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "config/schema.h"

namespace sluice::config::detail {

// Collects diagnostics for one source. Not thread-safe; one per load.
class Context {
public:
    explicit Context(std::string file) : file_(std::move(file)) {}

    void error(const toml::source_region& where, std::string message);
    void warning(const toml::source_region& where, std::string message);
    void error_without_position(std::string message);

    bool has_errors() const { return sluice::config::has_errors(diagnostics_); }
    const std::string& file() const { return file_; }

    // The diagnostics in file order (stable for equal positions).
    std::vector<Diagnostic> take_sorted();

private:
    void add(const toml::source_region& where, Severity severity, std::string message);

    std::string file_;
    std::vector<Diagnostic> diagnostics_;
};

// "a string", "an integer", ... for "expected X, got Y" messages.
std::string_view type_name(const toml::node& node);

// "key[3]": how the messages name an array element.
std::string element_name(std::string_view key, size_t index);

// "'key'" for messages.
std::string quote(std::string_view text);

// How a table is written in messages: "[daemon]", "[[service]]", "the top level".
std::string display_name(std::string_view schema_path);

std::optional<std::string> read_string(Context& ctx, const toml::node& node, std::string_view what);
std::optional<int64_t> read_integer(Context& ctx, const toml::node& node, std::string_view what,
                                    int64_t min, int64_t max);
std::optional<bool> read_bool(Context& ctx, const toml::node& node, std::string_view what);
const toml::table* read_table(Context& ctx, const toml::node& node, std::string_view what);
const toml::array* read_array(Context& ctx, const toml::node& node, std::string_view what);

// Index of the string value among `names`; suggests the closest on a miss.
std::optional<size_t> read_choice_index(Context& ctx, const toml::node& node, std::string_view what,
                                        const std::vector<std::string_view>& names);

// A named value of an enumeration, for read_choice.
template <typename T>
struct Choice {
    std::string_view name;
    T value;
};

template <typename T>
std::optional<T> read_choice(Context& ctx, const toml::node& node, std::string_view what,
                             std::initializer_list<Choice<T>> choices)
{
    std::vector<std::string_view> names;
    for (const Choice<T>& c : choices) names.push_back(c.name);
    const std::optional<size_t> index = read_choice_index(ctx, node, what, names);
    if (!index) return std::nullopt;
    return (choices.begin() + *index)->value;
}

// Reports each key of `table` that `schema` does not list, at the key, with
// a suggestion when one is near. `context` overrides the table's name in the
// message (e.g. "discovery type \"etcd\"").
void check_unknown_keys(Context& ctx, const toml::table& table, const TableSchema& schema,
                        std::string_view context = {});

// Typed access to one table's keys. Construction checks for unknown keys;
// each getter reports a wrong type or range at the value and a missing
// required key at the table.
class TableReader {
public:
    TableReader(Context& ctx, const toml::table& table, const TableSchema& schema,
                bool check_keys = true);

    const toml::table& table() const { return table_; }
    const toml::source_region& where() const { return table_.source(); }

    // The node under `key`, or nullptr. `key` must be in the schema.
    const toml::node* node(std::string_view key) const;
    bool has(std::string_view key) const { return node(key) != nullptr; }
    // Like node(), but reports "missing required key" when absent.
    const toml::node* require(std::string_view key) const;

    std::optional<std::string> string(std::string_view key, bool required = false) const;
    std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max,
                                   bool required = false) const;
    std::optional<bool> boolean(std::string_view key) const;
    const toml::table* table(std::string_view key) const;
    const toml::array* array(std::string_view key) const;
    // An array of strings; bad elements are reported and skipped.
    std::optional<std::vector<std::string>> strings(std::string_view key) const;

    template <typename T>
    std::optional<T> choice(std::string_view key, std::initializer_list<Choice<T>> choices,
                            bool required = false) const
    {
        const toml::node* n = required ? require(key) : node(key);
        return n != nullptr ? read_choice(ctx_, *n, key, choices) : std::nullopt;
    }

private:
    Context& ctx_;
    const toml::table& table_;
    const TableSchema& schema_;
};

}  // namespace sluice::config::detail
