// The admin API client. httplib reports transport errors as an enum; they
// become exit 3 with the hint an operator needs first (is sluiced running?).
#include "sluicectl/api_client.h"

#include <httplib.h>

#include <regex>

#include "sluicectl/exit_codes.h"

namespace sluice::ctl {

ApiClient::ApiClient(std::string url, std::unique_ptr<httplib::Client> client)
    : url_(std::move(url)), client_(std::move(client))
{
}
ApiClient::~ApiClient() = default;
ApiClient::ApiClient(ApiClient&&) noexcept = default;

std::variant<ApiClient, Failure> ApiClient::create(const ApiOptions& options)
{
    // Checked here because httplib throws on an unknown scheme.
    static const std::regex kUrl(R"(^(https?)://([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$)");
    std::smatch match;
    if (!std::regex_match(options.url, match, kUrl)) {
        return Failure{kExitUsage, "--api '" + options.url + "': want http://HOST:PORT (e.g. http://127.0.0.1:9180)"};
    }
    std::string url = options.url;
    if (!url.empty() && url.back() == '/') url.pop_back();
    auto client = std::make_unique<httplib::Client>(url);
    if (!client->is_valid()) return Failure{kExitUsage, "--api '" + options.url + "': not a usable URL"};
    const auto seconds = static_cast<time_t>(options.timeout_seconds);
    const auto micros = static_cast<time_t>((options.timeout_seconds - static_cast<double>(seconds)) * 1e6);
    client->set_connection_timeout(seconds, micros);
    client->set_read_timeout(seconds, micros);
    client->set_write_timeout(seconds, micros);
    client->set_tcp_nodelay(true);  // small requests, answered at once: no Nagle delay
    if (options.token) client->set_bearer_token_auth(*options.token);
    return ApiClient(std::move(url), std::move(client));
}

namespace {

std::variant<Reply, Failure> finish(const httplib::Result& result, const std::string& url, const std::string& path)
{
    if (!result) {
        const httplib::Error error = result.error();
        std::string why;
        switch (error) {
        case httplib::Error::Connection: why = "connection refused"; break;
        case httplib::Error::ConnectionTimeout: why = "connection timed out"; break;
        case httplib::Error::Read: why = "no answer (read failed or timed out) for " + path; break;
        case httplib::Error::Write: why = "request could not be sent"; break;
        default: why = httplib::to_string(error); break;
        }
        return Failure{kExitUnreachable, "cannot reach sluiced at " + url + ": " + why +
                                             " \u2014 is it running? (sluiced --config FILE; the address is "
                                             "daemon.admin.listen/port, or pass --api URL)"};
    }
    Reply reply;
    reply.status = result->status;
    reply.raw = result->body;
    reply.body = nlohmann::json::parse(reply.raw, nullptr, /*allow_exceptions=*/false);
    if (reply.body.is_discarded()) reply.body = nullptr;
    return reply;
}

}  // namespace

std::variant<Reply, Failure> ApiClient::get(const std::string& path)
{
    auto result = client_->Get(path);
    return finish(result, url_, path);
}

std::variant<Reply, Failure> ApiClient::post(const std::string& path)
{
    auto result = client_->Post(path, "", "application/json");
    return finish(result, url_, path);
}


Failure failure_of(const Reply& reply)
{
    std::string message = reply.body.is_object() && reply.body.contains("error") && reply.body["error"].is_string()
                              ? reply.body["error"].get<std::string>()
                              : "HTTP " + std::to_string(reply.status);
    if (reply.status == 401) {
        return Failure{kExitUnauthorized, "unauthorized: " + message + " (pass --token-file FILE)"};
    }
    if (reply.status == 400) return Failure{kExitUsage, message};
    return Failure{kExitFailed, message};
}

std::string url_encode(const std::string& text)
{
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

}  // namespace sluice::ctl
