// TCP-connect and UDP send/expect probes on non-blocking sockets.
#include "health/socket_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace sluice::health {

namespace {

socklen_t to_sockaddr(const model::IpAddress& address, uint16_t port, sockaddr_storage& out)
{
    std::memset(&out, 0, sizeof(out));
    if (address.is_ipv4()) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&out);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        std::memcpy(&sin->sin_addr, address.bytes.data(), 4);
        return sizeof(sockaddr_in);
    }
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, address.bytes.data(), 16);
    return sizeof(sockaddr_in6);
}

std::string errno_text(const char* what, int err)
{
    return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

SocketProbe::SocketProbe(CheckType type, const TargetKey& key, const CheckSpec& spec)
    : type_(type), expect_(spec.udp_expect)
{
    if (type_ == CheckType::kTcp) {
        start_tcp(key);
    } else if (type_ == CheckType::kUdp) {
        start_udp(key, spec.udp_send);
    } else {
        finish(false, "internal: socket probe for a non-socket check type");
    }
}

SocketProbe::~SocketProbe()
{
    if (fd_ < 0) return;
    if (type_ == CheckType::kTcp) {
        // RST instead of FIN: no TIME_WAIT on our side (see the header).
        linger abort_close{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
    }
    ::close(fd_);
}

uint32_t SocketProbe::events() const
{
    return type_ == CheckType::kTcp ? EPOLLOUT : EPOLLIN;
}

void SocketProbe::finish(bool success, std::string error)
{
    if (!result_) result_ = ProbeResult{success, std::move(error)};
}

void SocketProbe::start_tcp(const TargetKey& key)
{
    sockaddr_storage addr;
    const socklen_t len = to_sockaddr(key.address, key.port, addr);
    fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return finish(false, errno_text("socket", errno));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
        return finish(true, {});
    }
    if (errno != EINPROGRESS) finish(false, errno_text("connect", errno));
}

void SocketProbe::start_udp(const TargetKey& key, const std::string& payload)
{
    sockaddr_storage addr;
    const socklen_t len = to_sockaddr(key.address, key.port, addr);
    fd_ = ::socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return finish(false, errno_text("socket", errno));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        return finish(false, errno_text("connect", errno));
    }
    if (::send(fd_, payload.data(), payload.size(), 0) < 0) {
        return finish(false, errno_text("send", errno));
    }
}

void SocketProbe::on_events(uint32_t /*events*/)
{
    if (result_) return;
    // The mask does not matter: both paths ask the socket itself, which
    // holds the authoritative error (EPOLLERR only says "look").
    if (type_ == CheckType::kTcp) {
        on_tcp_events();
    } else {
        on_udp_events();
    }
}

void SocketProbe::on_tcp_events()
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) return finish(true, {});
    if (err == EINPROGRESS) return;  // spurious wake-up; keep waiting
    finish(false, errno_text("connect", err));
}

void SocketProbe::on_udp_events()
{
    // 64 KiB holds any UDP datagram whole, so the "contains" test always
    // sees the entire reply (a datagram is never split across reads).
    static thread_local char buffer[65536];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (errno == ECONNREFUSED) return finish(false, "port unreachable (ICMP)");
        return finish(false, errno_text("recv", errno));
    }
    if (!expect_) return finish(true, {});
    const std::string_view reply(buffer, static_cast<size_t>(n));
    if (reply.find(*expect_) != std::string_view::npos) return finish(true, {});
    finish(false, "reply of " + std::to_string(n) + " bytes does not contain the expected bytes");
}

void SocketProbe::on_timeout(std::chrono::milliseconds timeout)
{
    const char* waiting = type_ == CheckType::kTcp ? "connecting" : "waiting for a reply";
    finish(false, "timeout after " + std::to_string(timeout.count()) + " ms " + waiting);
}

}  // namespace sluice::health
