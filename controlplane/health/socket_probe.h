// One in-flight TCP-connect or UDP send/expect probe on a non-blocking
// socket. The checker's loop owns it, watches fd() with events() in its
// epoll set, and feeds readiness (or its own timeout) back in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "health/check_spec.h"

namespace sluice::health {

// Outcome of one probe, of any type.
struct ProbeResult {
    bool success = false;
    std::string error;  // why it failed; empty on success
};

// Not thread-safe: created, driven and destroyed on the loop thread.
//
// TCP: success = the three-way handshake completed (connect() reported no
// error). The socket is then closed with SO_LINGER {1, 0}, i.e. a RST: at
// 500 targets x 20 probes/s an orderly close would park 10 000 sockets/s in
// TIME_WAIT on the balancer and run it out of ephemeral ports in seconds
// (HAProxy closes its checks the same way). Backends log a reset.
//
// UDP: the socket is connect()ed to the backend so the kernel (a) passes
// only that peer's datagrams and (b) reports an ICMP port unreachable as
// ECONNREFUSED on the next recv: a closed port fails at once instead of
// waiting for the timeout. The first reply decides: it must contain
// udp_expect (when set); a reply without it fails the probe immediately.
class SocketProbe {
public:
    // Creates the socket and starts the exchange. May finish at once (an
    // immediate connect, or a socket error): check result() before waiting.
    SocketProbe(CheckType type, const TargetKey& key, const CheckSpec& spec);
    ~SocketProbe();
    SocketProbe(const SocketProbe&) = delete;
    SocketProbe& operator=(const SocketProbe&) = delete;

    int fd() const { return fd_; }
    uint32_t events() const;  // epoll mask to wait for
    const std::optional<ProbeResult>& result() const { return result_; }

    // Readiness reported by epoll for fd(); may set result().
    void on_events(uint32_t events);
    // The probe's deadline passed without a result: it failed.
    void on_timeout(std::chrono::milliseconds timeout);

private:
    void finish(bool success, std::string error);
    void start_tcp(const TargetKey& key);
    void start_udp(const TargetKey& key, const std::string& payload);
    void on_tcp_events();
    void on_udp_events();

    CheckType type_;
    std::optional<std::string> expect_;  // udp: copied, the target may be updated meanwhile
    int fd_ = -1;
    std::optional<ProbeResult> result_;
};

}  // namespace sluice::health
