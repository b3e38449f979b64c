// HTTP/HTTPS GET probes on one libcurl multi handle, driven by the
// checker's epoll loop through the multi "socket" interface: curl tells us
// which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
// (CURLMOPT_TIMERFUNCTION); we call curl_multi_socket_action on readiness.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "health/check_spec.h"
#include "health/socket_probe.h"

namespace sluice::health {

// Marks an epoll_event.data.u64 as "curl socket, fd in the low bits". The
// loop's own tags (probe serials) stay below it.
inline constexpr uint64_t kCurlSocketTag = uint64_t{1} << 63;

// Not thread-safe: created, driven and destroyed on the loop thread (the
// constructor may run elsewhere before the loop starts).
//
// Each probe is a fresh connection (CURLOPT_FRESH_CONNECT, FORBID_REUSE):
// a reused keep-alive connection would prove nothing about accepting new
// ones. The request goes to the target's address and port whatever the
// Host header says (CURLOPT_CONNECT_TO), so http_host sets the Host header
// and the TLS SNI without any DNS lookup. Redirects are not followed: a 3xx
// is judged against the expected statuses like any other code. At most
// 64 KiB of body is read; a longer body is cut off and judged by its status.
class HttpProber {
public:
    static Result<std::unique_ptr<HttpProber>> create(int epoll_fd);
    ~HttpProber();
    HttpProber(const HttpProber&) = delete;
    HttpProber& operator=(const HttpProber&) = delete;

    // Starts one GET; `serial` identifies it in finished(). An error means
    // the request could not even be set up (the caller counts a failure).
    Result<void> start(uint64_t serial, const TargetKey& key, const CheckSpec& spec);
    // Abandons a probe; its result never appears.
    void cancel(uint64_t serial);

    // epoll reported `events` on a curl socket.
    void on_socket_event(int fd, uint32_t events);
    // When curl wants to be called even without socket activity.
    std::optional<std::chrono::steady_clock::time_point> deadline() const { return deadline_; }
    // Call once deadline() has passed.
    void on_deadline();

    // Moves out the probes that finished since the last call.
    void take_finished(std::vector<std::pair<uint64_t, ProbeResult>>& out);

private:
    struct Request;
    explicit HttpProber(int epoll_fd);
    void collect();
    static int on_socket(void* easy, int fd, int what, void* self, void* socket_data);
    static int on_timer(void* multi, long timeout_ms, void* self);

    int epoll_fd_;
    void* multi_ = nullptr;  // CURLM*, kept opaque so users need not include curl.h
    std::optional<std::chrono::steady_clock::time_point> deadline_;
    std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
    std::vector<std::pair<uint64_t, ProbeResult>> finished_;
};

}  // namespace sluice::health
