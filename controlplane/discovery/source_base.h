// What every Source shares: the status under a mutex, de-duplicated
// delivery to the callback, and the worker thread with an eventfd that
// wakes it for stop(). Internal to controlplane/discovery.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "discovery/source.h"

namespace sluice::discovery {

// An eventfd a worker polls next to its own fds, so stop() wakes it at once
// instead of after the next timeout.
class WakeFd {
public:
    WakeFd();
    ~WakeFd();
    WakeFd(const WakeFd&) = delete;
    WakeFd& operator=(const WakeFd&) = delete;

    bool valid() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void signal() const;  // any thread
    void drain() const;   // worker thread

private:
    int fd_ = -1;
};

class SourceBase : public Source {
public:
    SourceBase(UpdateCallback on_update, uint16_t default_port);
    ~SourceBase() override;

    Result<void> start() override;
    void stop() override;
    SourceStatus status() const override;

protected:
    // The worker's body; returns when stopping() is true. Worker thread.
    virtual void run() = 0;
    // Wakes a worker blocked outside wake_fd() (curl, c-ares). Any thread.
    virtual void wake_extra() {}

    bool stopping() const { return stop_.load(std::memory_order_acquire); }
    const WakeFd& wake_fd() const { return wake_; }

    // Sleeps up to `d` or until stop(); true if stopping. Worker thread.
    bool sleep_for(std::chrono::milliseconds d);

    // A good set was read: status ok, and the callback runs if the backends
    // differ from those last delivered (or nothing was delivered yet).
    // Entries with port 0 get the default port first. Worker thread.
    // `ignored` counts entries the source left out (bad values).
    void accept(BackendSet set, size_t ignored = 0);
    // The source is failing: stale if a good set exists, else error. The set
    // in force is kept. Worker thread.
    void fail(const std::string& error);
    // Records a problem that does not change the state (an ignored entry).
    void note_error(const std::string& error);

private:
    UpdateCallback on_update_;
    uint16_t default_port_;
    WakeFd wake_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    bool started_ = false;

    mutable std::mutex mutex_;  // guards status_ only; never held across the callback
    SourceStatus status_;
    std::optional<BackendSet> delivered_;  // worker thread only
};

}  // namespace sluice::discovery
