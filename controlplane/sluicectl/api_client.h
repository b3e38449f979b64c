// sluicectl's HTTP client for the admin API: one request at a time, the
// bearer token attached, and every failure mapped to an exit code with a
// message that says what to do.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace httplib {
class Client;
}

namespace sluice::ctl {

struct ApiOptions {
    std::string url;                   // "http://127.0.0.1:9180" (no path)
    std::optional<std::string> token;  // bearer token
    double timeout_seconds = 5;        // connect, read and write, each
};

// An HTTP answer whose body parsed as JSON (or stays raw: /metrics).
struct Reply {
    int status = 0;
    nlohmann::json body;  // null when the body is not JSON
    std::string raw;
};

// What a failed call becomes: the exit code and the message for stderr.
struct Failure {
    int exit_code = 0;
    std::string message;
};

// Not thread-safe: one command on one thread.
class ApiClient {
public:
    ~ApiClient();
    ApiClient(ApiClient&&) noexcept;

    // Error (as a Failure with kExitUsage): the URL is not http(s)://host[:port].
    static std::variant<ApiClient, Failure> create(const ApiOptions& options);

    // Any HTTP status is a Reply; no answer at all is a Failure (exit 3).
    std::variant<Reply, Failure> get(const std::string& path);
    std::variant<Reply, Failure> post(const std::string& path);

    const std::string& url() const { return url_; }

private:
    ApiClient(std::string url, std::unique_ptr<httplib::Client> client);

    std::string url_;
    std::unique_ptr<httplib::Client> client_;
};

// The Failure for a non-2xx Reply: 401 → exit 4, 400 → 2, else 1; the
// message is the API's {"error"} text. Thread-safe.
Failure failure_of(const Reply& reply);

// Percent-encodes one URL path segment or query value (RFC 3986 unreserved
// characters stay). Thread-safe.
std::string url_encode(const std::string& text);

}  // namespace sluice::ctl
