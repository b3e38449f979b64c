// Test servers for tests/health (see test_servers.h).
#include "test_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace sluice::health::testing {

namespace {

void name_thread() { pthread_setname_np(pthread_self(), "test-srv"); }

// Binds 127.0.0.1:port or [::1]:port (SO_REUSEADDR so a restart gets the
// same port).
int bind_loopback(int type, uint16_t port, bool ipv6, uint16_t& bound)
{
    const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage storage{};
    socklen_t len = 0;
    if (ipv6) {
        auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
        addr->sin6_family = AF_INET6;
        addr->sin6_port = htons(port);
        addr->sin6_addr = in6addr_loopback;
        len = sizeof(*addr);
    } else {
        auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
        addr->sin_family = AF_INET;
        addr->sin_port = htons(port);
        addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*addr);
    }
    auto* addr = reinterpret_cast<sockaddr*>(&storage);
    if (::bind(fd, addr, len) != 0 || (type == SOCK_STREAM && ::listen(fd, 4096) != 0) ||
        ::getsockname(fd, addr, &len) != 0) {
        ::close(fd);
        return -1;
    }
    bound = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    return fd;
}

// Waits for `fd` readable or the stop eventfd; false when stopping.
bool wait_readable(int fd, int stop_fd)
{
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0) {
    }
    return (fds[1].revents & POLLIN) == 0;
}

void signal_stop(int stop_fd)
{
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd, &one, sizeof(one));
}

}  // namespace

model::IpAddress loopback()
{
    return model::parse_ip_address("127.0.0.1").value();
}

model::IpAddress loopback6()
{
    return model::parse_ip_address("::1").value();
}

bool TcpServer::start(uint16_t port, bool ipv6)
{
    listen_fd_ = bind_loopback(SOCK_STREAM, port, ipv6, port_);
    if (listen_fd_ < 0) return false;
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
    return true;
}

void TcpServer::run()
{
    name_thread();
    while (wait_readable(listen_fd_, stop_fd_)) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            accepted_.fetch_add(1);
            ::close(fd);
        }
    }
}

void TcpServer::stop()
{
    if (!thread_.joinable()) return;
    signal_stop(stop_fd_);
    thread_.join();
    ::close(listen_fd_);
    ::close(stop_fd_);
    listen_fd_ = stop_fd_ = -1;
}

bool HttpServer::start(uint16_t port, bool ipv6)
{
    listen_fd_ = bind_loopback(SOCK_STREAM, port, ipv6, port_);
    if (listen_fd_ < 0) return false;
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    stopping_.store(false);
    thread_ = std::thread([this] { run(); });
    return true;
}

void HttpServer::run()
{
    name_thread();
    while (wait_readable(listen_fd_, stop_fd_)) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::lock_guard lock(mu_);
        workers_.emplace_back([this, fd] { serve(fd); });
    }
}

void HttpServer::serve(int fd)
{
    name_thread();
    std::string request;
    char buffer[4096];
    // Read the head (bounded: 1 s, 64 KiB); the probes send no body.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536 &&
           std::chrono::steady_clock::now() < give_up) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 50) <= 0) continue;
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
    }
    requests_.fetch_add(1);
    {
        std::lock_guard lock(mu_);
        last_request_line_ = request.substr(0, request.find("\r\n"));
        const size_t host = request.find("\r\nHost: ");
        last_host_ = host == std::string::npos
                         ? std::string()
                         : request.substr(host + 8, request.find("\r\n", host + 8) - host - 8);
    }
    // Sleep in slices so stop() never waits for a long delay.
    const auto reply_at =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_.load());
    while (!stopping_.load() && std::chrono::steady_clock::now() < reply_at) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const std::string response = "HTTP/1.1 " + std::to_string(status_.load()) +
                                 " Test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
    ::close(fd);
}

void HttpServer::stop()
{
    if (!thread_.joinable()) return;
    stopping_.store(true);
    signal_stop(stop_fd_);
    thread_.join();
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(mu_);
        workers.swap(workers_);
    }
    for (std::thread& worker : workers) worker.join();
    ::close(listen_fd_);
    ::close(stop_fd_);
    listen_fd_ = stop_fd_ = -1;
}

std::string HttpServer::last_request_line() const
{
    std::lock_guard lock(mu_);
    return last_request_line_;
}

std::string HttpServer::last_host() const
{
    std::lock_guard lock(mu_);
    return last_host_;
}

bool UdpServer::start(uint16_t port, bool ipv6)
{
    fd_ = bind_loopback(SOCK_DGRAM, port, ipv6, port_);
    if (fd_ < 0) return false;
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
    return true;
}

void UdpServer::run()
{
    name_thread();
    char buffer[65536];
    while (wait_readable(fd_, stop_fd_)) {
        sockaddr_storage peer{};
        socklen_t len = sizeof(peer);
        const ssize_t n = ::recvfrom(fd_, buffer, sizeof(buffer), MSG_DONTWAIT,
                                     reinterpret_cast<sockaddr*>(&peer), &len);
        if (n < 0) continue;
        received_.fetch_add(1);
        if (silent_.load()) continue;
        std::string reply;
        {
            std::lock_guard lock(mu_);
            reply = reply_;
        }
        ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
    }
}

void UdpServer::set_reply(std::string reply)
{
    std::lock_guard lock(mu_);
    reply_ = std::move(reply);
}

void UdpServer::stop()
{
    if (!thread_.joinable()) return;
    signal_stop(stop_fd_);
    thread_.join();
    ::close(fd_);
    ::close(stop_fd_);
    fd_ = stop_fd_ = -1;
}

void TransitionLog::add(const TargetKey& key, bool healthy, const std::string& reason)
{
    {
        std::lock_guard lock(mu_);
        events_.push_back(Event{key, healthy, reason, std::chrono::steady_clock::now()});
    }
    cv_.notify_all();
}

std::optional<TransitionLog::Event> TransitionLog::wait_for(
    const TargetKey& key, bool healthy, std::chrono::steady_clock::time_point since,
    std::chrono::milliseconds limit)
{
    std::unique_lock lock(mu_);
    std::optional<Event> found;
    cv_.wait_for(lock, limit, [&] {
        for (const Event& event : events_) {
            if (event.key == key && event.healthy == healthy && event.when >= since) {
                found = event;
                return true;
            }
        }
        return false;
    });
    return found;
}

std::vector<TransitionLog::Event> TransitionLog::events() const
{
    std::lock_guard lock(mu_);
    return events_;
}

}  // namespace sluice::health::testing
