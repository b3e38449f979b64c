// The set of keys the loader accepts, table by table. It is the one list
// the unknown-key check, the "did you mean" suggestions and the test that
// keeps docs/configuration.md complete all read from.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config {

// The keys of one kind of table. `path` names the table with array levels
// dropped ("service.backends" is the table of each backend); `variant`
// distinguishes tables whose keys depend on their `type` (discovery).
struct TableSchema {
    std::string_view path;               // "" for the top level
    std::string_view variant;            // "" or a discovery type ("etcd", "file", "dns")
    std::vector<std::string_view> keys;  // every key the loader reads there
};

// All table schemas, top level first.
const std::vector<TableSchema>& schema();

// The schema of `path` (and `variant`); aborts on a name not in schema(),
// which is a loader bug, not a config error.
const TableSchema& table_schema(std::string_view path, std::string_view variant = "");

// Every accepted key as a dotted path ("service.health_check.interval_ms"),
// without duplicates, in schema order.
std::vector<std::string> schema_key_paths();

// Optimal-string-alignment distance (Levenshtein plus adjacent swaps), so
// "tabel_size" is one edit from "table_size". Case-insensitive.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is near enough to be a typo of it.
std::optional<std::string_view> closest_match(std::string_view word,
                                              const std::vector<std::string_view>& candidates);

}  // namespace sluice::config
