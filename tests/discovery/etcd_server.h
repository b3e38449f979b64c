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
        return scheme_ + "://127.0.0.1:" + std::to_string(port ? port : client_port_);
    }
    std::string dir() const { return dir_.path(); }

    // Serves clients over TLS with these files and requires client
    // certificates; etcdctl uses `client_cert`/`client_key`. Before start().
    void use_tls(const std::string& ca, const std::string& cert, const std::string& key,
                 const std::string& client_cert, const std::string& client_key)
    {
        scheme_ = "https";
        extra_args_ = {"--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth"};
        ctl_flags_ = " --cacert=" + ca + " --cert=" + client_cert + " --key=" + client_key;
    }
    // etcdctl authenticates as root from now on (after `auth enable`).
    void ctl_as(const std::string& user_password) { ctl_user_ = " --user=" + shell_quote(user_password); }
    // Throws the data away (stopped server only): the next start is a new store.
    void wipe()
    {
        std::error_code ec;
        std::filesystem::remove_all(dir_.path() + "/data", ec);
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
                       log_path(), extra_args_);
        served_ = port ? port : client_port_;
        return wait_until([&] { return process_.running() && ctl("endpoint health").has_value(); }, 20s);
    }
    void stop() { process_.stop(); }
    // Freezes the server (SIGSTOP): its sockets stay open, it answers nothing.
    void pause() { process_.signal(SIGSTOP); }
    void resume() { process_.signal(SIGCONT); }

    // etcdctl against the port currently served.
    std::optional<std::string> ctl(const std::string& args) const
    {
        return run_capture(std::string(kEtcdctl) + " --dial-timeout=2s --command-timeout=5s --endpoints=" +
                           url(served_) + ctl_flags_ + ctl_user_ + " " + args);
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
    std::string scheme_ = "http";
    std::vector<std::string> extra_args_;
    std::string ctl_flags_;
    std::string ctl_user_;
    Process process_;
};

}  // namespace sluice::discovery::testing
