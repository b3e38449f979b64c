// Admin API settings: the loopback rule and the bearer token file.
#include "api/admin_settings.h"

#include <fstream>

#include "model/address.h"

namespace sluice::api {

Result<bool> is_loopback_address(std::string_view listen)
{
    auto address = model::parse_ip_address(listen);
    if (!address) return make_error("admin listen address '" + std::string(listen) + "': " + address.error());
    if (address->is_loopback()) return true;
    // An IPv4-mapped 127.x address reaches the same loopback interface.
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (address->is_ipv6()) {
        bool mapped = true;
        for (size_t i = 0; i < sizeof(kMappedPrefix); ++i) mapped = mapped && address->bytes[i] == kMappedPrefix[i];
        if (mapped && address->bytes[12] == 127) return true;
    }
    return false;
}

Result<void> check_settings(const AdminSettings& settings)
{
    auto loopback = is_loopback_address(settings.listen);
    if (!loopback) return make_error(loopback.error());
    const bool has_token = settings.token.has_value() && !settings.token->empty();
    if (!*loopback && !has_token) {
        return make_error("refusing to serve the admin API on non-loopback address " + settings.listen +
                          " without a bearer token: set daemon.admin.token_file, or listen on 127.0.0.1");
    }
    if (settings.threads == 0) return make_error("admin API: threads must be at least 1");
    return {};
}

Result<std::string> read_token_file(const std::string& path)
{
    std::ifstream in(path);
    if (!in) return make_error("cannot read token file " + path);
    std::string line;
    std::getline(in, line);
    const auto first = line.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return make_error("token file " + path + " is empty");
    const auto last = line.find_last_not_of(" \t\r\n");
    return line.substr(first, last - first + 1);
}

Result<AdminSettings> settings_from_config(const model::AdminApi& admin)
{
    AdminSettings settings;
    settings.listen = admin.listen.to_string();
    settings.port = admin.port;
    if (admin.token_file) {
        auto token = read_token_file(*admin.token_file);
        if (!token) return make_error(token.error());
        settings.token = std::move(*token);
    }
    auto checked = check_settings(settings);
    if (!checked) return make_error(checked.error());
    return settings;
}

bool tokens_equal(std::string_view presented, std::string_view expected)
{
    // Walk the expected token whatever was presented; fold every difference
    // (including the length) into one accumulator and test it once.
    volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i) {
        const unsigned char got = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
        diff = static_cast<unsigned char>(diff | (got ^ static_cast<unsigned char>(expected[i])));
    }
    return diff == 0;
}

}  // namespace sluice::api
