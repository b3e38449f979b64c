// A real etcd for the discovery tests: started on free loopback ports with
// its own data dir, restartable on the same data, stopped by PID; plus
// etcdctl helpers with bounded run times.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "support.h"

namespace sluice::discovery::testing {

inline const char* kEtcd = "/usr/bin/etcd";
inline const char* kEtcdctl = "/usr/bin/etcdctl";

// Runs a shell command (wrapped in `timeout 15`); returns stdout, or
// nullopt on a non-zero exit.
inline std::optional<std::string> run_capture(const std::string& command)
{
    std::string out;
    std::FILE* pipe = ::popen(("timeout 15 " + command + " 2>/dev/null").c_str(), "r");
    if (pipe == nullptr) {
        return std::nullopt;
    }
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) {
        out.append(buf, n);
    }
    const int status = ::pclose(pipe);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return std::nullopt;
    }
    return out;
}

inline std::string shell_quote(const std::string& s)
{
    std::string out = "'";
    for (const char c : s) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

class EtcdServer {
public:
    EtcdServer() : client_port_(free_port()), peer_port_(free_port()) {}

    uint16_t client_port() const { return client_port_; }
    std::string url(uint16_t port = 0) const
    {
        return "http://127.0.0.1:" + std::to_string(port ? port : client_port_);
    }
    std::string log_path() const { return dir_.path() + "/etcd.log"; }

    // Starts (or restarts on the same data) serving clients on `port`
    // (default: the usual one) and waits until it answers. False on timeout.
    bool start(uint16_t port = 0)
    {
        const std::string client = url(port);
        const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
        process_.start({kEtcd, "--name", "default", "--data-dir", dir_.path() + "/data",
                        "--listen-client-urls", client, "--advertise-client-urls", client,
                        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                        "--initial-cluster", "default=" + peer, "--log-level", "warn"},
                       log_path());
        served_ = port ? port : client_port_;
        return wait_until([&] { return process_.running() && ctl("endpoint health").has_value(); }, 20s);
    }
    void stop() { process_.stop(); }

    // etcdctl against the port currently served.
    std::optional<std::string> ctl(const std::string& args) const
    {
        return run_capture(std::string(kEtcdctl) + " --dial-timeout=2s --command-timeout=5s --endpoints=" +
                           url(served_) + " " + args);
    }
    bool put(const std::string& key, const std::string& value) const
    {
        return ctl("put " + shell_quote(key) + " " + shell_quote(value)).has_value();
    }
    bool del(const std::string& key) const { return ctl("del " + shell_quote(key)).has_value(); }
    // The store's current revision, or -1.
    int64_t revision() const
    {
        auto out = ctl("get / --prefix --keys-only -w json");
        if (!out) {
            return -1;
        }
        auto j = nlohmann::json::parse(*out, nullptr, false);
        if (j.is_discarded()) {
            return -1;
        }
        return j["header"].value("revision", int64_t{-1});
    }

private:
    TempDir dir_;
    uint16_t client_port_;
    uint16_t peer_port_;
    uint16_t served_ = 0;
    Process process_;
};

}  // namespace sluice::discovery::testing
