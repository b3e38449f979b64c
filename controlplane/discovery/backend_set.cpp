// Canonical ordering of backend sets and the shared backend JSON schema.
#include "discovery/backend_set.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace sluice::discovery {

Result<std::vector<BackendEntry>> canonical_backends(std::vector<BackendEntry> backends)
{
    std::sort(backends.begin(), backends.end());
    for (size_t i = 1; i < backends.size(); ++i) {
        if (backends[i].address == backends[i - 1].address) {
            return make_error("backend " + backends[i].address.to_string() + " appears twice");
        }
    }
    return backends;
}

Result<BackendEntry> parse_backend_json(const nlohmann::json& value)
{
    if (!value.is_object()) {
        return make_error(std::string("a backend must be a JSON object, not ") + value.type_name());
    }
    BackendEntry entry;
    bool have_address = false;
    for (const auto& [key, item] : value.items()) {
        if (key == "address") {
            if (!item.is_string()) {
                return make_error("'address' must be a string");
            }
            auto address = model::parse_ip_address(item.get_ref<const std::string&>());
            if (!address) {
                return make_error("'address': " + address.error());
            }
            entry.address = *address;
            have_address = true;
        } else if (key == "port") {
            if (!item.is_number_integer() || item.get<int64_t>() < 1 || item.get<int64_t>() > 65535) {
                return make_error("'port' must be an integer 1..65535, not " + item.dump());
            }
            entry.port = static_cast<uint16_t>(item.get<int64_t>());
        } else if (key == "weight") {
            if (!item.is_number_integer() || item.get<int64_t>() < kMinWeight ||
                item.get<int64_t>() > kMaxWeight) {
                return make_error("'weight' must be an integer 1..10000, not " + item.dump());
            }
            entry.weight = static_cast<uint32_t>(item.get<int64_t>());
        } else if (key == "state") {
            if (item == "active") {
                entry.draining = false;
            } else if (item == "draining") {
                entry.draining = true;
            } else {
                return make_error("'state' must be \"active\" or \"draining\", not " + item.dump());
            }
        } else {
            return make_error("unknown key '" + key + "' (expected address, port, weight, state)");
        }
    }
    if (!have_address) {
        return make_error("'address' is missing");
    }
    return entry;
}

std::string describe(const BackendEntry& entry)
{
    std::string text = entry.address.to_string();
    if (entry.port != 0) {
        text = model::Endpoint{entry.address, entry.port}.to_string();
    }
    text += " w=" + std::to_string(entry.weight);
    if (entry.draining) {
        text += " draining";
    }
    return text;
}

}  // namespace sluice::discovery
