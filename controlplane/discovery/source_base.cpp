// Status bookkeeping, de-duplicated delivery and worker lifetime shared by
// every discovery source.
#include "discovery/source_base.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace sluice::discovery {

std::string_view state_name(SourceState state)
{
    switch (state) {
    case SourceState::kSyncing: return "syncing";
    case SourceState::kOk: return "ok";
    case SourceState::kStale: return "stale";
    case SourceState::kError: return "error";
    }
    return "unknown";
}

WakeFd::WakeFd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

WakeFd::~WakeFd()
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void WakeFd::signal() const
{
    const uint64_t one = 1;
    // A full counter (EAGAIN) is still readable, so the wake-up is not lost.
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
}

void WakeFd::drain() const
{
    uint64_t value = 0;
    [[maybe_unused]] ssize_t n = ::read(fd_, &value, sizeof value);
}

SourceBase::SourceBase(UpdateCallback on_update, uint16_t default_port)
    : on_update_(std::move(on_update)), default_port_(default_port)
{
}

SourceBase::~SourceBase()
{
    // Derived classes stop in their own destructors (run() uses their
    // members); this is the last line of defence for the thread.
    if (thread_.joinable()) {
        stop_.store(true, std::memory_order_release);
        wake_.signal();
        thread_.join();
    }
}

Result<void> SourceBase::start()
{
    if (started_) {
        return make_error("discovery source already started");
    }
    if (!wake_.valid()) {
        return make_error(std::string("eventfd: ") + std::strerror(errno));
    }
    try {
        thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
        return make_error(std::string("cannot start discovery thread: ") + e.what());
    }
    started_ = true;
    return {};
}

void SourceBase::stop()
{
    stop_.store(true, std::memory_order_release);
    wake_.signal();
    wake_extra();
    if (thread_.joinable()) {
        thread_.join();
    }
}

SourceStatus SourceBase::status() const
{
    std::lock_guard lock(mutex_);
    return status_;
}

bool SourceBase::sleep_for(std::chrono::milliseconds d)
{
    const auto deadline = std::chrono::steady_clock::now() + d;
    while (!stopping()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd p{wake_.fd(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
            wake_.drain();
        }
    }
    return true;
}

void SourceBase::accept(BackendSet set, size_t ignored)
{
    for (auto& entry : set.backends) {
        if (entry.port == 0) {
            entry.port = default_port_;
        }
    }
    const bool changed = !delivered_ || !delivered_->same_backends(set);
    {
        std::lock_guard lock(mutex_);
        status_.state = SourceState::kOk;
        status_.last_update = std::chrono::system_clock::now();
        status_.revision = set.revision;
        status_.backend_count = set.backends.size();
        status_.ignored_entries = ignored;
        if (changed) {
            ++status_.updates;
        }
    }
    if (changed) {
        delivered_ = set;
        if (on_update_) {
            on_update_(*delivered_);
        }
    }
}

void SourceBase::fail(const std::string& error)
{
    std::lock_guard lock(mutex_);
    status_.state = delivered_ ? SourceState::kStale : SourceState::kError;
    status_.last_error = error;
    status_.last_error_time = std::chrono::system_clock::now();
}

void SourceBase::note_error(const std::string& error)
{
    std::lock_guard lock(mutex_);
    status_.last_error = error;
    status_.last_error_time = std::chrono::system_clock::now();
}

}  // namespace sluice::discovery
