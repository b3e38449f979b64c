// The checker's loop: commands in through an eventfd-woken queue, probe
// starts and timeouts from a deadline heap, readiness from one epoll set
// shared by socket probes and libcurl. See checker.h for the contract.
#include "health/checker.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>
#include <variant>

#include "health/http_prober.h"
#include "health/socket_probe.h"

namespace sluice::health {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// epoll tag of the command eventfd; probe serials start at 1 and curl
// sockets carry kCurlSocketTag.
constexpr uint64_t kWakeTag = 0;

// Two specs probe the same way when they differ at most in timing and
// thresholds; otherwise the counters describe a different probe.
bool same_probe(const CheckSpec& a, const CheckSpec& b)
{
    return a.type == b.type && a.http_path == b.http_path && a.http_host == b.http_host &&
           a.http_expect == b.http_expect && a.tls_verify == b.tls_verify &&
           a.udp_send == b.udp_send && a.udp_expect == b.udp_expect;
}

InitialState as_initial(HealthState state)
{
    switch (state) {
    case HealthState::kHealthy: return InitialState::kUp;
    case HealthState::kUnhealthy: return InitialState::kDown;
    case HealthState::kUnknown: break;
    }
    return InitialState::kUnknown;
}

struct Upsert {
    Target target;
};
struct Remove {
    TargetKey key;
};
using Command = std::variant<Upsert, Remove>;

// A heap entry: start a target's probe, or time out its running probe.
// Entries are never removed from the heap; a stale one (target gone,
// rescheduled, or probe finished) no longer matches `token` and is skipped.
struct Timer {
    Clock::time_point when;
    uint64_t target_id = 0;
    uint64_t token = 0;  // schedule generation (start) or probe serial (timeout)
    bool is_timeout = false;
    bool operator>(const Timer& other) const { return when > other.when; }
};

// Loop-owned state of one target. `status` is the published copy, written
// under status_mu_; every other field belongs to the loop thread alone.
struct Record {
    uint64_t id = 0;
    Target target;
    RiseFall machine;
    TargetStatus status;
    uint64_t schedule_gen = 0;
    uint64_t inflight = 0;  // serial of the running probe, 0 = none
    Clock::time_point probe_started;
    std::unique_ptr<SocketProbe> socket_probe;
};

}  // namespace

struct HealthChecker::Impl {
    StateCallback on_change;
    int epoll_fd = -1;
    int wake_fd = -1;
    std::thread thread;
    std::atomic<bool> stopping{false};

    mutable std::mutex command_mu;
    std::vector<Command> commands;  // guarded by command_mu
    std::atomic<size_t> pending{0};

    mutable std::mutex status_mu;
    std::map<TargetKey, std::unique_ptr<Record>> records;  // structure guarded by status_mu

    // Loop thread only.
    std::unordered_map<uint64_t, Record*> by_id;
    std::unordered_map<uint64_t, uint64_t> inflight;  // probe serial -> target id
    std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
    std::unique_ptr<HttpProber> http;
    std::mt19937_64 rng;
    uint64_t next_id = 1;
    uint64_t next_serial = 1;

    ~Impl()
    {
        if (thread.joinable()) {
            stopping.store(true);
            wake();
            thread.join();
        }
        // Probes before the prober and the epoll set they refer to.
        by_id.clear();
        records.clear();
        http.reset();
        if (wake_fd >= 0) ::close(wake_fd);
        if (epoll_fd >= 0) ::close(epoll_fd);
    }

    void wake() const
    {
        const uint64_t one = 1;
        // Cannot fail short of a counter overflow, which a reader resets.
        [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof(one));
    }

    void enqueue(Command command)
    {
        {
            std::lock_guard lock(command_mu);
            commands.push_back(std::move(command));
            pending.fetch_add(1);
        }
        wake();
    }

    void run();
    void dispatch(const epoll_event& event);
    void apply_commands();
    void apply(Upsert& upsert, Clock::time_point now);
    void apply(Remove& remove, Clock::time_point now);
    void schedule_first(Record& record, Clock::time_point now);
    void fire_timers(Clock::time_point now);
    void start_probe(Record& record, Clock::time_point now);
    void cancel_probe(Record& record);
    void complete_probe(uint64_t serial, ProbeResult result, Clock::time_point now);
    void publish(Record& record, const ProbeResult* result, Clock::time_point now,
                 std::optional<HealthState> changed);
    int wait_timeout_ms(Clock::time_point now) const;
};

void HealthChecker::Impl::dispatch(const epoll_event& event)
{
    const uint64_t tag = event.data.u64;
    if (tag == kWakeTag) {
        uint64_t count = 0;
        [[maybe_unused]] ssize_t r = ::read(wake_fd, &count, sizeof(count));
    } else if ((tag & kCurlSocketTag) != 0) {
        http->on_socket_event(static_cast<int>(tag & 0xffffffffu), event.events);
    } else if (auto it = inflight.find(tag); it != inflight.end()) {
        // A serial not in `inflight` is a probe that finished earlier in
        // this batch (its fd is closed): nothing to do.
        Record* record = by_id.at(it->second);
        record->socket_probe->on_events(event.events);
        if (record->socket_probe->result()) {
            complete_probe(tag, *record->socket_probe->result(), Clock::now());
        }
    }
}

void HealthChecker::Impl::run()
{
    // Visible in top -H / ps -L, and how the tests find the one loop thread.
    pthread_setname_np(pthread_self(), "sluice-health");
    std::vector<epoll_event> events(512);
    std::vector<std::pair<uint64_t, ProbeResult>> finished;
    while (!stopping.load()) {
        int timeout_ms = wait_timeout_ms(Clock::now());
        // Drain every ready event before firing timers: a probe whose
        // connect or reply is already in but not yet fetched (more than one
        // buffer of events after a stall) must not be failed as a timeout.
        for (int round = 0; round < 64; ++round) {
            const int n = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()),
                                     timeout_ms);
            if (n < 0 && errno != EINTR) return;  // only EBADF/EINVAL: a programming error
            for (int i = 0; i < std::max(n, 0); ++i) dispatch(events[i]);
            if (n < static_cast<int>(events.size())) break;
            timeout_ms = 0;
        }
        apply_commands();
        const auto now = Clock::now();
        if (auto deadline = http->deadline(); deadline && *deadline <= now) http->on_deadline();
        http->take_finished(finished);
        for (auto& [serial, result] : finished) complete_probe(serial, std::move(result), now);
        finished.clear();
        fire_timers(Clock::now());
        http->take_finished(finished);  // probes that failed while starting
        for (auto& [serial, result] : finished) {
            complete_probe(serial, std::move(result), Clock::now());
        }
        finished.clear();
    }
}

int HealthChecker::Impl::wait_timeout_ms(Clock::time_point now) const
{
    std::optional<Clock::time_point> next;
    if (!timers.empty()) next = timers.top().when;
    if (auto deadline = http->deadline(); deadline && (!next || *deadline < *next)) next = deadline;
    if (!next) return -1;
    if (*next <= now) return 0;
    // Round up: waking a little late keeps the schedule (lateness is
    // measured), waking early would spin until the deadline.
    const auto wait = std::chrono::ceil<milliseconds>(*next - now).count();
    return static_cast<int>(std::min<int64_t>(wait, 60'000));
}

void HealthChecker::Impl::apply_commands()
{
    std::vector<Command> batch;
    {
        std::lock_guard lock(command_mu);
        batch.swap(commands);
    }
    const auto now = Clock::now();
    for (Command& command : batch) {
        std::visit([&](auto& c) { apply(c, now); }, command);
        pending.fetch_sub(1);
    }
}

void HealthChecker::Impl::apply(Upsert& upsert, Clock::time_point now)
{
    Target& target = upsert.target;
    auto found = records.find(target.key);
    if (found == records.end()) {
        auto record = std::make_unique<Record>(Record{
            next_id++, target, RiseFall(target.spec.initial, target.spec.rise, target.spec.fall),
            TargetStatus{}, 0, 0, {}, nullptr});
        record->status.key = target.key;
        record->status.type = target.spec.type;
        record->status.state = record->machine.state();
        Record* raw = record.get();
        {
            std::lock_guard lock(status_mu);
            records.emplace(target.key, std::move(record));
        }
        by_id[raw->id] = raw;
        schedule_first(*raw, now);
        return;
    }
    Record& record = *found->second;
    const CheckSpec old = record.target.spec;
    if (old == target.spec) return;
    {
        std::lock_guard lock(status_mu);
        record.target.spec = target.spec;
        record.status.type = target.spec.type;
    }
    if (!same_probe(old, target.spec)) {
        cancel_probe(record);
        record.machine = RiseFall(as_initial(record.machine.state()), target.spec.rise,
                                  target.spec.fall);
        std::lock_guard lock(status_mu);
        record.status.consecutive_successes = 0;
        record.status.consecutive_failures = 0;
    } else {
        record.machine.set_thresholds(target.spec.rise, target.spec.fall);
    }
    if (old.interval != target.spec.interval || old.type != target.spec.type) {
        schedule_first(record, now);
    }
}

void HealthChecker::Impl::apply(Remove& remove, Clock::time_point /*now*/)
{
    auto found = records.find(remove.key);
    if (found == records.end()) return;
    cancel_probe(*found->second);
    by_id.erase(found->second->id);
    std::lock_guard lock(status_mu);
    records.erase(found);  // its heap entries go stale: by_id no longer knows the id
}

void HealthChecker::Impl::schedule_first(Record& record, Clock::time_point now)
{
    ++record.schedule_gen;  // older start entries go stale
    if (record.target.spec.type == CheckType::kNone) {
        // Nothing to probe: the backend counts as up (and as checked, so a
        // daemon waiting for first results does not wait for it).
        const bool was_healthy = record.machine.healthy();
        record.machine = RiseFall(InitialState::kUp, 1, 1);
        const ProbeResult none{true, {}};
        publish(record, &none, now,
                was_healthy ? std::nullopt : std::optional<HealthState>(HealthState::kHealthy));
        return;
    }
    const auto interval = duration_cast<Clock::duration>(record.target.spec.interval);
    std::uniform_int_distribution<Clock::rep> offset(0, interval.count() - 1);
    timers.push(Timer{now + Clock::duration(offset(rng)), record.id, record.schedule_gen, false});
}

void HealthChecker::Impl::fire_timers(Clock::time_point now)
{
    while (!timers.empty() && timers.top().when <= now) {
        const Timer timer = timers.top();
        timers.pop();
        auto it = by_id.find(timer.target_id);
        if (it == by_id.end()) continue;
        Record& record = *it->second;
        if (timer.is_timeout) {
            if (record.inflight != timer.token) continue;
            if (record.socket_probe) {
                record.socket_probe->on_timeout(record.target.spec.timeout);
                complete_probe(timer.token, *record.socket_probe->result(), now);
            } else {
                // HTTP backstop only: curl enforces the timeout itself.
                http->cancel(timer.token);
                complete_probe(timer.token,
                               ProbeResult{false, "no result from libcurl within timeout + 1 s"},
                               now);
            }
            continue;
        }
        if (timer.token != record.schedule_gen) continue;
        // Fixed rate: the next slot follows this one's due time, not `now`,
        // so lateness never accumulates. Slots already past are skipped
        // (counted) rather than fired in a burst.
        const auto interval = duration_cast<Clock::duration>(record.target.spec.interval);
        auto next = timer.when + interval;
        uint64_t skipped = 0;
        if (next <= now) {
            const auto behind = (now - timer.when) / interval;
            skipped = static_cast<uint64_t>(behind);
            next = timer.when + interval * (behind + 1);
        }
        timers.push(Timer{next, record.id, record.schedule_gen, false});
        const auto late = duration_cast<microseconds>(now - timer.when);
        {
            std::lock_guard lock(status_mu);
            record.status.skipped_slots += skipped;
            record.status.max_start_lateness = std::max(record.status.max_start_lateness, late);
            if (record.inflight != 0) ++record.status.skipped_slots;
        }
        // A fresh clock per start: starting hundreds of probes takes a while,
        // and a stale `now` would shorten the last ones' timeouts.
        if (record.inflight == 0) start_probe(record, Clock::now());
    }
}

void HealthChecker::Impl::start_probe(Record& record, Clock::time_point now)
{
    const uint64_t serial = next_serial++;
    const CheckSpec& spec = record.target.spec;
    record.inflight = serial;
    record.probe_started = now;
    inflight[serial] = record.id;
    if (spec.type == CheckType::kHttp || spec.type == CheckType::kHttps) {
        // curl enforces the timeout itself (CURLOPT_TIMEOUT_MS); the timer is
        // a backstop so that a transfer curl never reports cannot park the
        // target forever with a probe "in flight".
        if (auto started = http->start(serial, record.target.key, spec); !started) {
            complete_probe(serial, ProbeResult{false, started.error()}, now);
            return;
        }
        const auto backstop = duration_cast<Clock::duration>(spec.timeout + std::chrono::seconds(1));
        timers.push(Timer{now + backstop, record.id, serial, true});
        return;
    }
    record.socket_probe = std::make_unique<SocketProbe>(spec.type, record.target.key, spec);
    if (record.socket_probe->result()) {
        complete_probe(serial, *record.socket_probe->result(), now);
        return;
    }
    epoll_event event{};
    event.events = record.socket_probe->events();
    event.data.u64 = serial;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, record.socket_probe->fd(), &event) != 0) {
        const std::string error = std::string("epoll_ctl: ") + std::strerror(errno);
        complete_probe(serial, ProbeResult{false, error}, now);
        return;
    }
    timers.push(Timer{now + duration_cast<Clock::duration>(spec.timeout), record.id, serial, true});
}

void HealthChecker::Impl::cancel_probe(Record& record)
{
    if (record.inflight == 0) return;
    inflight.erase(record.inflight);
    http->cancel(record.inflight);
    record.socket_probe.reset();  // closing the fd leaves the epoll set
    record.inflight = 0;
}

void HealthChecker::Impl::complete_probe(uint64_t serial, ProbeResult result,
                                         Clock::time_point now)
{
    auto it = inflight.find(serial);
    if (it == inflight.end()) return;  // cancelled meanwhile
    Record& record = *by_id.at(it->second);
    inflight.erase(it);
    record.inflight = 0;
    record.socket_probe.reset();
    const auto changed = record.machine.record(result.success);
    publish(record, &result, now, changed);
}

void HealthChecker::Impl::publish(Record& record, const ProbeResult* result,
                                  Clock::time_point now, std::optional<HealthState> changed)
{
    TargetStatus& status = record.status;
    {
        std::lock_guard lock(status_mu);
        status.state = record.machine.state();
        status.checked = true;
        status.consecutive_successes = record.machine.consecutive_successes();
        status.consecutive_failures = record.machine.consecutive_failures();
        if (record.target.spec.type != CheckType::kNone) {
            status.last_latency = duration_cast<microseconds>(now - record.probe_started);
            ++status.probes;
            if (!result->success) ++status.failed_probes;
        }
        status.last_error = result->success ? std::string() : result->error;
        if (changed) ++status.transitions;
    }
    if (!changed || !on_change) return;
    std::string reason;
    const bool healthy = *changed == HealthState::kHealthy;
    if (record.target.spec.type == CheckType::kNone) {
        reason = "no health check configured";
    } else if (status.transitions == 1 && record.target.spec.initial == InitialState::kUnknown) {
        reason = healthy ? "first probe succeeded" : "first probe failed: " + result->error;
    } else if (healthy) {
        reason = std::to_string(status.consecutive_successes) + " consecutive successful probes";
    } else {
        reason = std::to_string(status.consecutive_failures) +
                 " consecutive failed probes, last: " + result->error;
    }
    // The callback runs without any lock held (it may call status()).
    try {
        on_change(record.target.key, healthy, reason);
    } catch (...) {
        // A throwing callback must not kill the loop that probes everything.
    }
}

Result<std::unique_ptr<HealthChecker>> HealthChecker::start(StateCallback on_change,
                                                            CheckerOptions options)
{
    auto impl = std::make_unique<Impl>();
    impl->on_change = std::move(on_change);
    impl->rng.seed(options.jitter_seed != 0 ? options.jitter_seed : std::random_device{}());
    impl->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (impl->epoll_fd < 0) {
        return make_error(std::string("epoll_create1: ") + std::strerror(errno));
    }
    impl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl->wake_fd < 0) return make_error(std::string("eventfd: ") + std::strerror(errno));
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kWakeTag;
    if (epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, impl->wake_fd, &event) != 0) {
        return make_error(std::string("epoll_ctl: ") + std::strerror(errno));
    }
    auto http = HttpProber::create(impl->epoll_fd);
    if (!http) return make_error(http.error());
    impl->http = std::move(http).value();
    try {
        impl->thread = std::thread([raw = impl.get()] { raw->run(); });
    } catch (const std::system_error& e) {
        return make_error(std::string("starting the health-check thread: ") + e.what());
    }
    return std::unique_ptr<HealthChecker>(new HealthChecker(std::move(impl)));
}

HealthChecker::HealthChecker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HealthChecker::~HealthChecker() = default;

Result<void> HealthChecker::upsert(Target target)
{
    if (auto valid = validate(target); !valid) return valid;
    impl_->enqueue(Upsert{std::move(target)});
    return {};
}

void HealthChecker::remove(const TargetKey& key) { impl_->enqueue(Remove{key}); }

std::vector<TargetStatus> HealthChecker::status() const
{
    std::lock_guard lock(impl_->status_mu);
    std::vector<TargetStatus> out;
    out.reserve(impl_->records.size());
    for (const auto& [key, record] : impl_->records) out.push_back(record->status);
    return out;
}

std::optional<TargetStatus> HealthChecker::status(const TargetKey& key) const
{
    std::lock_guard lock(impl_->status_mu);
    auto it = impl_->records.find(key);
    if (it == impl_->records.end()) return std::nullopt;
    return it->second->status;
}

size_t HealthChecker::pending_commands() const { return impl_->pending.load(); }

}  // namespace sluice::health
