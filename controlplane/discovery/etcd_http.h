// HTTP for the etcd source: unary and streamed POSTs of JSON over libcurl's
// multi interface, so that the worker blocks only in curl_multi_poll() and
// stop() can wake it at once with curl_multi_wakeup() instead of waiting
// for a timeout or the next byte of a quiet watch stream.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sluice::discovery {

struct HttpTls {
    std::optional<std::string> ca_file;    // CURLOPT_CAINFO
    std::optional<std::string> cert_file;  // CURLOPT_SSLCERT
    std::optional<std::string> key_file;   // CURLOPT_SSLKEY
};

class EtcdHttp {
public:
    // `stopping` is polled by every transfer; true ends it with an error.
    EtcdHttp(HttpTls tls, std::chrono::milliseconds connect_timeout, std::function<bool()> stopping);
    ~EtcdHttp();
    EtcdHttp(const EtcdHttp&) = delete;
    EtcdHttp& operator=(const EtcdHttp&) = delete;

    // POSTs `body` to `url` and returns the response body of a 200 reply;
    // any other status is an error carrying the body. `token`, if not
    // empty, goes in the Authorization header. Worker thread only.
    Result<std::string> post(const std::string& url, const std::string& body, const std::string& token,
                             std::chrono::milliseconds timeout);

    // A request that must succeed every `interval` while a stream runs. A
    // quiet watch says nothing, and TCP keepalive only proves the peer's
    // kernel is there: a hung etcd (stopped, deadlocked, cut from its
    // quorum) keeps both. A linearizable read answered within `timeout`
    // proves the server serves.
    struct Probe {
        std::string url;
        std::string body;
        std::chrono::milliseconds interval{5000};
        std::chrono::milliseconds timeout{3000};
    };

    // POSTs and hands each received piece of the body to `on_data` until the
    // server ends the response (an error: a watch never ends by itself),
    // the transfer fails, stop is requested, `probe` (if given) fails or
    // times out (an error naming it), or `on_data` returns false (success).
    // No total timeout. Worker thread only.
    Result<void> stream(const std::string& url, const std::string& body, const std::string& token,
                        const std::function<bool(std::string_view)>& on_data, const Probe* probe = nullptr);

    // Wakes a transfer blocked in curl_multi_poll so it sees `stopping`.
    // Any thread.
    void wake();

private:
    struct Transfer;
    // Runs `transfer` to its end; with `probe`, also issues the probe every
    // probe->interval on the same multi handle and fails when one fails.
    Result<long> perform(Transfer& transfer, const Probe* probe = nullptr, const std::string& token = {});
    void prepare(Transfer& t, const std::string& url, const std::string& body, const std::string& token);

    HttpTls tls_;
    std::chrono::milliseconds connect_timeout_;
    std::function<bool()> stopping_;
    CURLM* multi_ = nullptr;
};

}  // namespace sluice::discovery
