// Real servers for the health-check tests, as threads of the test process
// on 127.0.0.1 (or ::1): a TCP acceptor, a tiny HTTP/1.1 server with a settable
// status and delay, and a UDP responder. Each can stop (its port then
// refuses) and restart on the same port. Their threads are named "test-srv"
// so the one-loop-thread test can tell them from the checker's.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "health/check_spec.h"

namespace sluice::health::testing {

model::IpAddress loopback();   // 127.0.0.1
model::IpAddress loopback6();  // ::1

// Accepts and closes connections. Not thread-safe: drive from the test thread.
class TcpServer {
public:
    TcpServer() = default;
    ~TcpServer() { stop(); }
    // 0 = pick a free port; false on bind failure. ipv6: bind ::1, not 127.0.0.1.
    bool start(uint16_t port = 0, bool ipv6 = false);
    void stop();                    // closes the listener: connects are refused
    uint16_t port() const { return port_; }
    uint64_t accepted() const { return accepted_.load(); }

private:
    void run();
    int listen_fd_ = -1;
    int stop_fd_ = -1;
    uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<uint64_t> accepted_{0};
};

// Answers every request with `status` after `delay`, and remembers the last
// request line and Host header. A thread per connection, all joined by stop().
class HttpServer {
public:
    HttpServer() = default;
    ~HttpServer() { stop(); }
    bool start(uint16_t port = 0, bool ipv6 = false);
    void stop();
    uint16_t port() const { return port_; }
    void set_status(int status) { status_.store(status); }
    void set_delay(std::chrono::milliseconds delay) { delay_ms_.store(delay.count()); }
    std::string last_request_line() const;
    std::string last_host() const;
    uint64_t requests() const { return requests_.load(); }

private:
    void run();
    void serve(int fd);
    int listen_fd_ = -1;
    int stop_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> status_{200};
    std::atomic<int64_t> delay_ms_{0};
    std::atomic<uint64_t> requests_{0};
    mutable std::mutex mu_;
    std::string last_request_line_;  // guarded by mu_
    std::string last_host_;          // guarded by mu_
    std::vector<std::thread> workers_;  // guarded by mu_
    std::thread thread_;
};

// Replies to each datagram with `reply`, or stays silent.
class UdpServer {
public:
    UdpServer() = default;
    ~UdpServer() { stop(); }
    bool start(uint16_t port = 0, bool ipv6 = false);
    void stop();  // closes the socket: probes get ICMP port unreachable
    uint16_t port() const { return port_; }
    void set_reply(std::string reply);
    void set_silent(bool silent) { silent_.store(silent); }
    uint64_t received() const { return received_.load(); }

private:
    void run();
    int fd_ = -1;
    int stop_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> silent_{false};
    std::atomic<uint64_t> received_{0};
    mutable std::mutex mu_;
    std::string reply_ = "pong";  // guarded by mu_
    std::thread thread_;
};

// Records state-change callbacks; lets a test wait (bounded) for one.
class TransitionLog {
public:
    struct Event {
        TargetKey key;
        bool healthy;
        std::string reason;
        std::chrono::steady_clock::time_point when;
    };
    void add(const TargetKey& key, bool healthy, const std::string& reason);
    // First event for `key` with `healthy`, recorded at or after `since`;
    // waits up to `limit`.
    std::optional<Event> wait_for(const TargetKey& key, bool healthy,
                                  std::chrono::steady_clock::time_point since,
                                  std::chrono::milliseconds limit);
    std::vector<Event> events() const;

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Event> events_;
};

// Polls `predicate` every 5 ms for up to `limit`; true when it held.
template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds limit)
{
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (predicate()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return predicate();
}

}  // namespace sluice::health::testing
