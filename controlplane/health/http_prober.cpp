// libcurl multi-socket glue for HTTP/HTTPS probes (see http_prober.h).
#include "health/http_prober.h"

#include <curl/curl.h>
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

namespace sluice::health {

namespace {

constexpr size_t kMaxBodyBytes = 64 * 1024;

CURLM* as_multi(void* p) { return static_cast<CURLM*>(p); }

// The host part of a configured Host header value, for the URL (and so the
// TLS SNI): "example.com:8080" -> "example.com", "[::1]:80" -> "[::1]", a
// bare IPv6 literal gets its brackets.
std::string url_host(const std::string& host)
{
    if (!host.empty() && host.front() == '[') return host.substr(0, host.find(']') + 1);
    const size_t colon = host.find(':');
    if (colon == std::string::npos) return host;
    if (host.find(':', colon + 1) != std::string::npos) return "[" + host + "]";
    return host.substr(0, colon);
}

std::string address_literal(const model::IpAddress& address)
{
    return address.is_ipv4() ? address.to_string() : "[" + address.to_string() + "]";
}

}  // namespace

// One in-flight GET. Owns its easy handle and the lists curl keeps
// pointers to until the transfer ends.
struct HttpProber::Request {
    CURL* easy = nullptr;
    curl_slist* connect_to = nullptr;
    curl_slist* headers = nullptr;
    std::vector<StatusRange> expect;
    long timeout_ms = 0;
    size_t body_bytes = 0;
    char error[CURL_ERROR_SIZE] = {};

    ~Request()
    {
        if (easy != nullptr) curl_easy_cleanup(easy);
        curl_slist_free_all(connect_to);
        curl_slist_free_all(headers);
    }

    static size_t discard_body(char* /*data*/, size_t size, size_t count, void* self)
    {
        auto* request = static_cast<Request*>(self);
        request->body_bytes += size * count;
        // Returning less than given aborts the transfer (CURLE_WRITE_ERROR);
        // the status line has been read by then, so the probe is judged.
        return request->body_bytes > kMaxBodyBytes ? 0 : size * count;
    }
};

HttpProber::HttpProber(int epoll_fd) : epoll_fd_(epoll_fd) {}

Result<std::unique_ptr<HttpProber>> HttpProber::create(int epoll_fd)
{
    // curl_global_init is thread-safe only from 7.84 on; call it once.
    static std::once_flag once;
    static CURLcode init_code = CURLE_OK;
    std::call_once(once, [] { init_code = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (init_code != CURLE_OK) {
        return make_error(std::string("curl_global_init: ") + curl_easy_strerror(init_code));
    }
    std::unique_ptr<HttpProber> prober(new HttpProber(epoll_fd));
    CURLM* multi = curl_multi_init();
    if (multi == nullptr) return make_error("curl_multi_init failed");
    prober->multi_ = multi;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &HttpProber::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, prober.get());
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &HttpProber::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, prober.get());
    return prober;
}

HttpProber::~HttpProber()
{
    for (auto& [serial, request] : requests_) {
        curl_multi_remove_handle(as_multi(multi_), request->easy);
    }
    requests_.clear();
    if (multi_ != nullptr) curl_multi_cleanup(as_multi(multi_));
}

Result<void> HttpProber::start(uint64_t serial, const TargetKey& key, const CheckSpec& spec)
{
    auto request = std::make_unique<Request>();
    request->easy = curl_easy_init();
    if (request->easy == nullptr) return make_error("curl_easy_init failed");
    request->expect = spec.http_expect;
    request->timeout_ms = static_cast<long>(spec.timeout.count());

    const std::string target_host = address_literal(key.address);
    const std::string port = std::to_string(key.port);
    const std::string host = spec.http_host ? url_host(*spec.http_host) : target_host;
    const char* scheme = spec.type == CheckType::kHttps ? "https://" : "http://";
    const std::string url = scheme + host + ":" + port + spec.http_path;
    // "::addr:port" = any host and port in the URL connects to addr:port.
    request->connect_to =
        curl_slist_append(nullptr, ("::" + target_host + ":" + port).c_str());
    if (spec.http_host) {
        // Verbatim, so "example.com" is not sent as "example.com:8080".
        request->headers = curl_slist_append(nullptr, ("Host: " + *spec.http_host).c_str());
    }
    if (request->connect_to == nullptr || (spec.http_host && request->headers == nullptr)) {
        return make_error("out of memory building the request");
    }

    CURL* easy = request->easy;
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_CONNECT_TO, request->connect_to);
    if (request->headers != nullptr) curl_easy_setopt(easy, CURLOPT_HTTPHEADER, request->headers);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "sluice-health");
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, request->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, spec.tls_verify ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, spec.tls_verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Request::discard_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, request.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, request->error);
    void* serial_ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(serial));
    curl_easy_setopt(easy, CURLOPT_PRIVATE, serial_ptr);

    const CURLMcode code = curl_multi_add_handle(as_multi(multi_), easy);
    if (code != CURLM_OK) {
        return make_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(code));
    }
    requests_[serial] = std::move(request);
    return {};
}

void HttpProber::cancel(uint64_t serial)
{
    auto it = requests_.find(serial);
    if (it == requests_.end()) return;
    curl_multi_remove_handle(as_multi(multi_), it->second->easy);
    requests_.erase(it);
}

int HttpProber::on_socket(void* /*easy*/, int fd, int what, void* self, void* /*socket_data*/)
{
    auto* prober = static_cast<HttpProber*>(self);
    if (what == CURL_POLL_REMOVE) {
        // May fail when curl closed the fd first (the kernel dropped it).
        epoll_ctl(prober->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        return 0;
    }
    epoll_event event{};
    event.events = ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0u) |
                   ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0u);
    event.data.u64 = kCurlSocketTag | static_cast<uint32_t>(fd);
    // curl reports each change; we do not track which fds are registered,
    // because a closed fd leaves the epoll set by itself and its number may
    // come back: try MOD, fall back to ADD.
    // If both fail (ENOMEM, max_user_watches) we still return 0: -1 would
    // make curl abort EVERY transfer of the multi handle, while an
    // unwatched socket only lets this one transfer run into its timeout,
    // reported as that target's failed probe.
    if (epoll_ctl(prober->epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT) {
        epoll_ctl(prober->epoll_fd_, EPOLL_CTL_ADD, fd, &event);
    }
    return 0;
}

int HttpProber::on_timer(void* /*multi*/, long timeout_ms, void* self)
{
    auto* prober = static_cast<HttpProber*>(self);
    // Never call socket_action from here (curl forbids re-entry): record
    // the deadline and let the loop call on_deadline().
    if (timeout_ms < 0) {
        prober->deadline_.reset();
    } else {
        prober->deadline_ =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    }
    return 0;
}

void HttpProber::on_socket_event(int fd, uint32_t events)
{
    int flags = 0;
    if ((events & EPOLLIN) != 0) flags |= CURL_CSELECT_IN;
    if ((events & EPOLLOUT) != 0) flags |= CURL_CSELECT_OUT;
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) flags |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(as_multi(multi_), fd, flags, &running);
    collect();
}

void HttpProber::on_deadline()
{
    deadline_.reset();  // the timer callback sets it again if curl wants
    int running = 0;
    curl_multi_socket_action(as_multi(multi_), CURL_SOCKET_TIMEOUT, 0, &running);
    collect();
}

void HttpProber::collect()
{
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(as_multi(multi_), &queued)) {
        if (message->msg != CURLMSG_DONE) continue;
        void* serial_ptr = nullptr;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &serial_ptr);
        const auto serial = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(serial_ptr));
        auto it = requests_.find(serial);
        if (it == requests_.end()) continue;
        Request& request = *it->second;
        const CURLcode code = message->data.result;
        long status = 0;
        curl_easy_getinfo(request.easy, CURLINFO_RESPONSE_CODE, &status);

        ProbeResult result;
        const bool cut_off = code == CURLE_WRITE_ERROR && request.body_bytes > kMaxBodyBytes;
        if (code == CURLE_OK || cut_off) {
            for (const StatusRange& range : request.expect) {
                if (status >= range.low && status <= range.high) result.success = true;
            }
            if (!result.success) {
                result.error = "HTTP status " + std::to_string(status) + " not expected";
            }
        } else if (code == CURLE_OPERATION_TIMEDOUT) {
            result.error = "timeout after " + std::to_string(request.timeout_ms) + " ms";
        } else {
            result.error = std::string("http: ") +
                           (request.error[0] != '\0' ? request.error : curl_easy_strerror(code));
        }
        curl_multi_remove_handle(as_multi(multi_), request.easy);
        requests_.erase(it);
        finished_.emplace_back(serial, std::move(result));
    }
}

void HttpProber::take_finished(std::vector<std::pair<uint64_t, ProbeResult>>& out)
{
    for (auto& entry : finished_) out.push_back(std::move(entry));
    finished_.clear();
}

}  // namespace sluice::health
