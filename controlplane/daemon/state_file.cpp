// Persisted last good sets: the discovery JSON schema, one file per service.
#include "daemon/state_file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace sluice::daemon {
namespace {

std::string path_for(const std::string& dir, const std::string& service)
{
    std::string safe = service;
    for (char& c : safe) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
    }
    return dir + "/backends-" + safe + ".json";
}

}  // namespace

Result<void> write_state_file(const std::string& dir, const std::string& service, const PersistedSet& persisted)
{
    const discovery::BackendSet& set = persisted.set;
    nlohmann::json backends = nlohmann::json::array();
    for (const auto& e : set.backends) {
        nlohmann::json b = {{"address", e.address.to_string()}, {"weight", e.weight}};
        if (e.port != 0) b["port"] = e.port;
        if (e.draining) b["state"] = "draining";
        backends.push_back(std::move(b));
    }
    const nlohmann::json doc = {{"service", service}, {"source", persisted.source}, {"revision", set.revision}, {"backends", backends}};
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(dir + ": " + ec.message());
    const std::string path = path_for(dir, service);
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << doc.dump(1) << '\n';
        if (!out.flush()) return make_error(tmp + ": write failed");
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) return make_error(path + ": " + ec.message());
    return {};
}

Result<std::optional<PersistedSet>> read_state_file(const std::string& dir, const std::string& service)
{
    const std::string path = path_for(dir, service);
    std::ifstream in(path);
    if (!in) return std::optional<PersistedSet>{};
    std::stringstream text;
    text << in.rdbuf();
    const auto doc = nlohmann::json::parse(text.str(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("backends") || !doc["backends"].is_array()) {
        return make_error(path + ": not a sluice state file");
    }
    if (!doc.contains("source") || !doc["source"].is_string()) {
        return make_error(path + ": names no discovery source (written by an older sluiced)");
    }
    PersistedSet out;
    out.source = doc["source"].get<std::string>();
    discovery::BackendSet& set = out.set;
    set.revision = doc.value("revision", uint64_t{0});
    std::vector<discovery::BackendEntry> entries;
    for (const auto& b : doc["backends"]) {
        auto e = discovery::parse_backend_json(b);
        if (!e) return make_error(path + ": " + e.error());
        entries.push_back(*e);
    }
    auto canonical = discovery::canonical_backends(std::move(entries));
    if (!canonical) return make_error(path + ": " + canonical.error());
    set.backends = std::move(*canonical);
    return std::optional<PersistedSet>{std::move(out)};
}

}  // namespace sluice::daemon
