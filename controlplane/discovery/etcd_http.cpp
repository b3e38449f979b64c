// libcurl multi driver for the etcd source: one transfer at a time (and a
// watch's liveness probe beside it), woken
// by curl_multi_wakeup for shutdown.
#include "discovery/etcd_http.h"

#include <algorithm>
#include <memory>
#include <mutex>

namespace sluice::discovery {
namespace {

void global_init_once()
{
    // curl_global_init is not thread-safe on every build; run it once.
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

struct EtcdHttp::Transfer {
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    std::string body;  // kept alive for CURLOPT_POSTFIELDS
    std::string received;
    const std::function<bool(std::string_view)>* on_data = nullptr;
    bool aborted = false;  // on_data asked to end
    char error[CURL_ERROR_SIZE] = {};

    ~Transfer()
    {
        if (easy != nullptr) {
            curl_easy_cleanup(easy);
        }
        curl_slist_free_all(headers);
    }

    static size_t write(char* data, size_t size, size_t n, void* self)
    {
        auto* t = static_cast<Transfer*>(self);
        const std::string_view chunk(data, size * n);
        if (t->on_data == nullptr) {
            t->received.append(chunk);
            return chunk.size();
        }
        if (!(*t->on_data)(chunk)) {
            t->aborted = true;
            return 0;  // CURLE_WRITE_ERROR ends the transfer
        }
        return chunk.size();
    }
};

EtcdHttp::EtcdHttp(HttpTls tls, std::chrono::milliseconds connect_timeout, std::function<bool()> stopping)
    : tls_(std::move(tls)), connect_timeout_(connect_timeout), stopping_(std::move(stopping))
{
    global_init_once();
    multi_ = curl_multi_init();
}

EtcdHttp::~EtcdHttp()
{
    if (multi_ != nullptr) {
        curl_multi_cleanup(multi_);
    }
}

void EtcdHttp::wake()
{
    if (multi_ != nullptr) {
        curl_multi_wakeup(multi_);
    }
}

Result<long> EtcdHttp::perform(Transfer& t, const Probe* probe, const std::string& token)
{
    using Clock = std::chrono::steady_clock;
    if (multi_ == nullptr) {
        return make_error("curl_multi_init failed");
    }
    curl_multi_add_handle(multi_, t.easy);
    std::unique_ptr<Transfer> probing;  // in flight
    auto next_probe = Clock::now() + (probe ? probe->interval : std::chrono::milliseconds(0));
    auto end_probe = [&] {
        if (probing) {
            curl_multi_remove_handle(multi_, probing->easy);
            probing.reset();
        }
    };
    CURLcode result = CURLE_OK;
    bool done = false;
    while (!done) {
        if (stopping_()) {
            end_probe();
            curl_multi_remove_handle(multi_, t.easy);
            return make_error("stopped");
        }
        if (probe && !probing && Clock::now() >= next_probe) {
            probing = std::make_unique<Transfer>();
            probing->easy = curl_easy_init();
            if (probing->easy == nullptr) {
                probing.reset();
            } else {
                prepare(*probing, probe->url, probe->body, token);
                curl_easy_setopt(probing->easy, CURLOPT_TIMEOUT_MS, static_cast<long>(probe->timeout.count()));
                curl_multi_add_handle(multi_, probing->easy);
            }
            next_probe = Clock::now() + probe->interval;
        }
        int running = 0;
        if (curl_multi_perform(multi_, &running) != CURLM_OK) {
            break;
        }
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            if (msg->easy_handle == t.easy) {
                result = msg->data.result;
                done = true;
            } else if (probing && msg->easy_handle == probing->easy) {
                long status = 0;
                curl_easy_getinfo(probing->easy, CURLINFO_RESPONSE_CODE, &status);
                const CURLcode r = msg->data.result;
                std::string why;
                if (r != CURLE_OK) {
                    why = probing->error[0] != '\0' ? probing->error : curl_easy_strerror(r);
                } else if (status != 200) {
                    why = "HTTP " + std::to_string(status);
                }
                end_probe();
                if (!why.empty()) {
                    curl_multi_remove_handle(multi_, t.easy);
                    return make_error("liveness probe " + probe->url + " (every " +
                                      std::to_string(probe->interval.count()) + " ms, timeout " +
                                      std::to_string(probe->timeout.count()) + " ms) failed: " + why);
                }
            }
        }
        if (!done) {
            int wait_ms = 1000;
            if (probe && !probing) {
                const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(next_probe - Clock::now());
                wait_ms = static_cast<int>(std::clamp<int64_t>(until.count(), 0, 1000));
            }
            curl_multi_poll(multi_, nullptr, 0, wait_ms, nullptr);
        }
    }
    end_probe();
    curl_multi_remove_handle(multi_, t.easy);
    if (t.aborted) {
        return 0L;
    }
    if (result != CURLE_OK) {
        return make_error(t.error[0] != '\0' ? t.error : curl_easy_strerror(result));
    }
    long status = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

namespace {

void setup(CURL* easy, const std::string& url, const std::string& body, curl_slist* headers,
           const HttpTls& tls, std::chrono::milliseconds connect_timeout)
{
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
    // A silent peer (host gone, not just the process) ends a watch within
    // about 10 + 3 * 5 s instead of hanging on a quiet stream forever.
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 5L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (tls.ca_file) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, tls.ca_file->c_str());
    }
    if (tls.cert_file) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, tls.cert_file->c_str());
    }
    if (tls.key_file) {
        curl_easy_setopt(easy, CURLOPT_SSLKEY, tls.key_file->c_str());
    }
}

}  // namespace

void EtcdHttp::prepare(Transfer& t, const std::string& url, const std::string& body, const std::string& token)
{
    t.body = body;
    t.headers = curl_slist_append(t.headers, "Content-Type: application/json");
    if (!token.empty()) {
        t.headers = curl_slist_append(t.headers, ("Authorization: " + token).c_str());
    }
    setup(t.easy, url, t.body, t.headers, tls_, connect_timeout_);
    curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, &Transfer::write);
    curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.easy, CURLOPT_ERRORBUFFER, t.error);
}

Result<std::string> EtcdHttp::post(const std::string& url, const std::string& body, const std::string& token,
                                   std::chrono::milliseconds timeout)
{
    Transfer t;
    t.easy = curl_easy_init();
    if (t.easy == nullptr) {
        return make_error("curl_easy_init failed");
    }
    prepare(t, url, body, token);
    curl_easy_setopt(t.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    auto status = perform(t);
    if (!status) {
        return make_error(url + ": " + status.error());
    }
    if (*status != 200) {
        return make_error(url + ": HTTP " + std::to_string(*status) + ": " + t.received.substr(0, 300));
    }
    return std::move(t.received);
}

Result<void> EtcdHttp::stream(const std::string& url, const std::string& body, const std::string& token,
                              const std::function<bool(std::string_view)>& on_data, const Probe* probe)
{
    Transfer t;
    t.easy = curl_easy_init();
    if (t.easy == nullptr) {
        return make_error("curl_easy_init failed");
    }
    t.on_data = &on_data;
    prepare(t, url, body, token);
    auto status = perform(t, probe, token);
    if (!status) {
        return make_error(url + ": " + status.error());
    }
    if (t.aborted) {
        return {};
    }
    if (*status != 200) {
        return make_error(url + ": HTTP " + std::to_string(*status));
    }
    return make_error(url + ": watch stream closed by the server");
}

}  // namespace sluice::discovery
