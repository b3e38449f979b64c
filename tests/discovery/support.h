// Helpers for the discovery tests: a recorder of delivered sets, bounded
// waits, temp dirs, free ports, and child processes (etcd, dnsmasq) that
// are stopped by PID on every exit path: RAII on normal and failed paths,
// PR_SET_PDEATHSIG when the test process itself dies.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "discovery/source.h"

namespace sluice::discovery::testing {

using namespace std::chrono_literals;

// Polls `pred` every 20 ms until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

// Collects every set a source delivers; thread-safe.
class Recorder {
public:
    UpdateCallback callback()
    {
        return [this](const BackendSet& set) {
            std::lock_guard lock(mutex_);
            sets_.push_back(set);
            threads_.push_back(std::this_thread::get_id());
        };
    }
    // True if every delivery so far came from one thread other than the caller's.
    bool delivered_from_one_worker_thread() const
    {
        std::lock_guard lock(mutex_);
        return !threads_.empty() && threads_.front() != std::this_thread::get_id() &&
               std::all_of(threads_.begin(), threads_.end(), [&](auto id) { return id == threads_.front(); });
    }
    size_t count() const
    {
        std::lock_guard lock(mutex_);
        return sets_.size();
    }
    BackendSet last() const
    {
        std::lock_guard lock(mutex_);
        return sets_.empty() ? BackendSet{} : sets_.back();
    }
    // Addresses of the last set, "addr:port" joined by spaces, for compact asserts.
    std::string last_text() const { return text(last()); }
    static std::string text(const BackendSet& set)
    {
        std::string out;
        for (const auto& b : set.backends) {
            out += (out.empty() ? "" : " ") + describe(b);
        }
        return out;
    }
    // Waits until the last delivered set reads `expected`.
    bool wait_for_text(const std::string& expected, std::chrono::milliseconds timeout) const
    {
        return wait_until([&] { return count() > 0 && last_text() == expected; }, timeout);
    }

private:
    mutable std::mutex mutex_;
    std::vector<BackendSet> sets_;
    std::vector<std::thread::id> threads_;
};

class TempDir {
public:
    TempDir()
    {
        char tmpl[] = "/tmp/sluice-disc-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline void write_file(const std::string& path, const std::string& text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

// Writes a temp file next to `path` and renames it over: the atomic update.
inline void replace_file(const std::string& path, const std::string& text)
{
    write_file(path + ".tmp", text);
    std::filesystem::rename(path + ".tmp", path);
}

inline std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A loopback port free for both TCP and UDP right now (the kernel picks it).
inline uint16_t free_port()
{
    for (int attempt = 0; attempt < 50; ++attempt) {
        const int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        ::bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::getsockname(tcp, reinterpret_cast<sockaddr*>(&addr), &len);
        const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
        const bool udp_ok = ::bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(udp);
        ::close(tcp);
        if (udp_ok) {
            return ntohs(addr.sin_port);
        }
    }
    return 0;
}

inline bool have_program(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// A child process, output to `log`; stopped (SIGTERM, then SIGKILL after
// 5 s) by its PID in stop() and in the destructor.
class Process {
public:
    Process() = default;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process() { stop(); }

    bool start(std::vector<std::string> argv, const std::string& log, const std::vector<std::string>& more = {})
    {
        stop();
        argv.insert(argv.end(), more.begin(), more.end());
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ == 0) {
            // Dies with the test, even if the test is killed or crashes.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) {
                ::_exit(127);
            }
            std::FILE* out = std::fopen(log.c_str(), "a");
            if (out != nullptr) {
                ::dup2(::fileno(out), 1);
                ::dup2(::fileno(out), 2);
            }
            std::vector<char*> args;
            for (const auto& a : argv) {
                args.push_back(const_cast<char*>(a.c_str()));
            }
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        return pid_ > 0;
    }

    bool running()
    {
        if (pid_ <= 0) {
            return false;
        }
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        return true;
    }

    void signal(int sig)
    {
        if (pid_ > 0) {
            ::kill(pid_, sig);
        }
    }

    void stop()
    {
        if (pid_ <= 0) {
            return;
        }
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 250; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

}  // namespace sluice::discovery::testing
