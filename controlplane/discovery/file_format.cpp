// Parser of the backend-list file, with positions for every error.
#include "discovery/file_format.h"

#include <nlohmann/json.hpp>

namespace sluice::discovery {
namespace {

// 1-based line and column of byte `offset` in `text`.
std::pair<size_t, size_t> line_col(std::string_view text, size_t offset)
{
    size_t line = 1;
    size_t col = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return {line, col};
}

// Offset of the object that starts entry `index` of the top-level
// "backends" array. nlohmann::json keeps no positions, so this scans the
// (already valid) text: entries are the objects opened at nesting depth 2,
// which is only that array once unknown top-level keys are refused.
size_t entry_offset(std::string_view text, size_t index)
{
    int depth = 0;
    bool in_string = false;
    size_t seen = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (depth == 2 && seen++ == index) {
                return i;
            }
            ++depth;
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return 0;
}

}  // namespace

Result<std::vector<BackendEntry>> parse_backend_file(std::string_view text, const std::string& path)
{
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::parse_error& e) {
        // e.byte is 1-based and points just past the offending character.
        const auto [line, col] = line_col(text, e.byte > 0 ? e.byte - 1 : 0);
        std::string what = e.what();
        const auto cut = what.find("syntax error");
        if (cut != std::string::npos) {
            what = what.substr(cut);
        }
        if (text.empty()) {
            what = "file is empty (partly written?)";
        }
        return make_error(path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
    } catch (const std::exception& e) {
        return make_error(path + ": " + e.what());
    }
    if (!doc.is_object()) {
        return make_error(path + ":1:1: expected an object {\"backends\": [...]}");
    }
    for (const auto& [key, value] : doc.items()) {
        if (key != "backends") {
            return make_error(path + ": unknown top-level key '" + key + "' (expected \"backends\")");
        }
    }
    const auto it = doc.find("backends");
    if (it == doc.end() || !it->is_array()) {
        return make_error(path + ": \"backends\" must be present and an array");
    }
    std::vector<BackendEntry> entries;
    entries.reserve(it->size());
    for (size_t i = 0; i < it->size(); ++i) {
        auto entry = parse_backend_json((*it)[i]);
        if (!entry) {
            const auto [line, col] = line_col(text, entry_offset(text, i));
            return make_error(path + ":" + std::to_string(line) + ": backends[" + std::to_string(i) +
                              "]: " + entry.error());
        }
        entries.push_back(*entry);
    }
    auto canonical = canonical_backends(std::move(entries));
    if (!canonical) {
        return make_error(path + ": " + canonical.error());
    }
    return std::move(*canonical);
}

}  // namespace sluice::discovery
