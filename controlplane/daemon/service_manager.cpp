// ServiceManager: desired sets, health and drains in; one debounced plan
// publication out (see service_manager.h for the threading contract).
#include "daemon/service_manager.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "daemon/service_state.h"
#include "daemon/state_file.h"

namespace sluice::daemon {
namespace {

using driver::LogSeverity;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// How long the control thread may sleep when nothing is scheduled: short
// enough that a lost wake-up (there should be none) costs little.
constexpr milliseconds kIdleWait{1000};
// After a refused build or publish (the previous plan stays in force).
constexpr milliseconds kPublishRetry{1000};
// Every source's callback is bound to the generation it was made for, so
// a set from a source that a reload replaced is ignored.
std::atomic<uint64_t> g_generation{1};

std::string join(const std::vector<std::string>& parts, const char* sep)
{
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
    return out;
}

// Equal keys: the running source can stay (same peer, same prefix, same
// default port for entries without one).
std::string discovery_key(const model::Service& s)
{
    if (!s.discovery) return "";
    std::string key = "port=" + std::to_string(s.vip.port) + ";";
    if (const auto* e = std::get_if<model::EtcdDiscovery>(&*s.discovery)) {
        key += "etcd;" + join(e->endpoints, ",") + ";" + e->prefix + ";" + e->username.value_or("-") + ";" +
               e->password_file.value_or("-") + ";" + e->ca_file.value_or("-") + ";" + e->cert_file.value_or("-") +
               ";" + e->key_file.value_or("-") + ";" + std::to_string(e->dial_timeout.count());
    } else if (const auto* f = std::get_if<model::FileDiscovery>(&*s.discovery)) {
        key += "file;" + f->path;
    } else if (const auto* d = std::get_if<model::DnsDiscovery>(&*s.discovery)) {
        key += "dns;" + d->name + ";" + std::to_string(static_cast<int>(d->record)) + ";" +
               (d->resolver ? d->resolver->to_string() : "-") + ";" + std::to_string(d->port.value_or(0)) + ";" +
               std::to_string(d->refresh_interval.count());
    }
    return key;
}

// Where a discovered set's data lives: what a set persisted in state_dir
// must have come from to stand in for the service at start. Narrower than
// discovery_key: endpoints, credentials and timings change how the data is
// reached, not which data it is.
std::string source_identity(const model::Service& s)
{
    if (!s.discovery) return "";
    std::string id = "port=" + std::to_string(s.vip.port) + ";";
    if (const auto* e = std::get_if<model::EtcdDiscovery>(&*s.discovery)) {
        id += "etcd;prefix=" + e->prefix;
    } else if (const auto* f = std::get_if<model::FileDiscovery>(&*s.discovery)) {
        id += "file;path=" + f->path;
    } else if (const auto* d = std::get_if<model::DnsDiscovery>(&*s.discovery)) {
        id += "dns;name=" + d->name + ";record=" + std::to_string(static_cast<int>(d->record)) +
              ";port=" + std::to_string(d->port.value_or(0));
    }
    return id;
}

bool has_check(const model::Service& s) { return s.health_check.type != model::HealthCheckType::kNone; }

}  // namespace


ServiceManager::ServiceManager(driver::DataplaneDriver& driver, driver::LogSink log, ManagerOptions options)
    : driver_(driver), log_(std::move(log)), options_(std::move(options)),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
{
}

ServiceManager::~ServiceManager()
{
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ServiceManager::wake()
{
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);  // EAGAIN: already readable
}

void ServiceManager::mark_dirty_locked(Clock::time_point now)
{
    if (!dirty_since_) dirty_since_ = now;
}

Result<driver::ForwardingPlan> ServiceManager::prepare(const model::Config& config)
{
    std::vector<health::PoolMode> modes;
    model::Config composed;
    {
        std::lock_guard lock(mu_);
        config_ = config;
        for (const model::Service& s : config.services) {
            auto st = std::make_unique<ServiceState>();
            st->config = s;
            st->discovery_key = discovery_key(s);
            if (s.discovery) {
                st->generation = g_generation++;
                auto source = discovery::make_source(
                    s, [this, name = s.name, gen = st->generation](const discovery::BackendSet& set) {
                        on_discovery(name, gen, set);
                    },
                    options_.source_options);
                if (!source) return Error{"service " + s.name + ": discovery: " + source.error()};
                st->source = std::move(*source);
                if (auto saved = load_persisted(s)) {
                    st->desired = std::move(*saved);
                    st->from_state_file = true;
                }
            } else {
                st->desired = static_set(s);
            }
            services_[s.name] = std::move(st);
        }
        composed = compose_locked(Clock::now(), {}, modes);
    }
    auto plan = planner_.build(composed);
    if (!plan) return Error{plan.error()};
    std::lock_guard lock(mu_);
    plan_ = std::make_shared<const driver::ForwardingPlan>(*plan);
    for (size_t i = 0; i < composed.services.size(); ++i) all_down_.record(composed.services[i].name, modes[i]);
    return plan;
}

Result<void> ServiceManager::start()
{
    auto checker = health::HealthChecker::start(
        [this](const health::TargetKey& key, bool healthy, const std::string& reason) {
            log_(LogSeverity::kInfo, "health target=" + key.to_string() + " state=" + (healthy ? "up" : "down") +
                                         " reason=\"" + reason + "\"");
            on_health(key);
        },
        options_.health_options);
    if (!checker) return Error{"health checks: " + checker.error()};
    std::lock_guard apply_lock(apply_mu_);
    std::vector<discovery::Source*> sources;
    {
        std::lock_guard lock(mu_);
        health_ = std::shared_ptr<health::HealthChecker>(std::move(*checker));
        for (auto& [name, st] : services_) {
            if (st->source) sources.push_back(st->source.get());
            st->targets_stale = true;
            if (has_check(st->config)) {
                const auto wait = st->config.health_check.interval + st->config.health_check.timeout;
                hold_until_ = std::max(hold_until_.value_or(Clock::now()), Clock::now() + wait);
            }
        }
        started_ = true;
        mark_dirty_locked(Clock::now());
    }
    for (discovery::Source* source : sources) {
        auto r = source->start();
        if (!r) return Error{"discovery: " + r.error()};
    }
    wake();
    return {};
}

Result<void> ServiceManager::apply(const model::Config& config)
{
    std::lock_guard apply_lock(apply_mu_);
    std::map<std::string, std::string> running_keys;
    bool started = false;
    {
        std::lock_guard lock(mu_);
        for (const auto& [name, st] : services_) running_keys[name] = st->discovery_key;
        started = started_;
    }
    // Sources first, outside mu_: a refusal here must leave everything as it was.
    struct NewSource {
        uint64_t generation;
        std::unique_ptr<discovery::Source> source;
    };
    std::map<std::string, NewSource> fresh;
    for (const model::Service& s : config.services) {
        const std::string key = discovery_key(s);
        const auto running = running_keys.find(s.name);
        if (key.empty() || (running != running_keys.end() && running->second == key)) continue;
        const uint64_t gen = g_generation++;
        auto source = discovery::make_source(
            s, [this, name = s.name, gen](const discovery::BackendSet& set) { on_discovery(name, gen, set); },
            options_.source_options);
        if (!source) return Error{"service " + s.name + ": discovery: " + source.error()};
        fresh[s.name] = NewSource{gen, std::move(*source)};
    }

    std::vector<std::unique_ptr<discovery::Source>> to_stop;
    std::vector<discovery::Source*> to_start;
    {
        std::lock_guard lock(mu_);
        std::map<std::string, std::unique_ptr<ServiceState>> next;
        for (const model::Service& s : config.services) {
            auto found = services_.find(s.name);
            std::unique_ptr<ServiceState> st;
            if (found != services_.end()) {
                st = std::move(found->second);
                services_.erase(found);
            } else {
                st = std::make_unique<ServiceState>();
            }
            const std::string key = discovery_key(s);
            if (auto f = fresh.find(s.name); f != fresh.end()) {
                if (st->source) to_stop.push_back(std::move(st->source));
                st->source = std::move(f->second.source);
                st->generation = f->second.generation;
                to_start.push_back(st->source.get());
                // The old set (if any) serves until the new source answers:
                // a changed prefix must not empty the pool meanwhile.
            } else if (key.empty()) {
                if (st->source) to_stop.push_back(std::move(st->source));
                st->desired = static_set(s);
            }
            st->config = s;
            st->discovery_key = key;
            st->targets_stale = true;
            st->changed = true;
            next[s.name] = std::move(st);
        }
        for (auto& [name, st] : services_) {  // removed services
            if (st->source) to_stop.push_back(std::move(st->source));
            if (health_) {
                for (const auto& [address, target] : st->targets) health_->remove(target.key);
            }
            all_down_.forget(name);
            log_(LogSeverity::kInfo, "service=" + name + " msg=\"removed\"");
        }
        services_ = std::move(next);
        config_ = config;
        mark_dirty_locked(Clock::now());
    }
    for (auto& source : to_stop) source->stop();
    if (started) {
        for (discovery::Source* source : to_start) {
            auto r = source->start();
            if (!r) log_(LogSeverity::kError, "discovery source did not start: " + r.error());
        }
    }
    wake();
    return {};
}

void ServiceManager::stop()
{
    std::lock_guard apply_lock(apply_mu_);
    std::vector<discovery::Source*> sources;
    std::shared_ptr<health::HealthChecker> checker;
    {
        std::lock_guard lock(mu_);
        for (auto& [name, st] : services_) {
            if (st->source) sources.push_back(st->source.get());
        }
        checker = std::move(health_);
        started_ = false;
    }
    // Outside mu_: both join threads whose callbacks take it.
    for (discovery::Source* source : sources) source->stop();
    checker.reset();
}

void ServiceManager::on_discovery(const std::string& service, uint64_t generation, const discovery::BackendSet& set)
{
    {
        std::lock_guard lock(mu_);
        const auto it = services_.find(service);
        if (it == services_.end() || it->second->generation != generation) return;  // replaced source
        ServiceState& st = *it->second;
        st.desired = set;
        st.from_state_file = false;
        st.persist_pending = !options_.state_dir.empty();
        st.targets_stale = true;
        st.changed = true;
        mark_dirty_locked(Clock::now());
    }
    wake();
}

void ServiceManager::on_health(const health::TargetKey& key)
{
    {
        std::lock_guard lock(mu_);
        const auto it = services_.find(key.service);
        if (it == services_.end()) return;
        it->second->changed = true;
        mark_dirty_locked(Clock::now());
    }
    wake();
}

void ServiceManager::sync_targets_locked(ServiceState& st, Clock::time_point now)
{
    st.targets_stale = false;
    static const std::vector<discovery::BackendEntry> kNone;
    const auto& desired = st.desired ? st.desired->backends : kNone;
    // Departures first: a removed backend keeps its probe (and the health it
    // had) while it drains, so one that is also down can leave at once.
    st.drains.update(desired, st.api_drains, st.config.drain_deadline, now);
    std::vector<discovery::BackendEntry> probed = desired;
    for (const discovery::BackendEntry& e : st.drains.departed()) probed.push_back(e);
    std::map<model::IpAddress, health::Target> want;
    if (has_check(st.config)) {
        for (const discovery::BackendEntry& e : probed) {
            model::Backend b;
            b.address = e.address;
            if (e.port != 0) b.port = e.port;
            auto target = health::target_for(st.config, b);
            if (!target) {
                log_(LogSeverity::kWarn, "service=" + st.config.name + " backend=" + e.address.to_string() +
                                             " msg=\"not health-checked: " + target.error() + "\"");
                continue;
            }
            want.emplace(e.address, std::move(*target));
        }
    }
    if (!health_) return;  // before start(): registered at the first process()
    for (const auto& [address, old] : st.targets) {
        const auto w = want.find(address);
        if (w == want.end() || !(w->second.key == old.key)) health_->remove(old.key);
    }
    for (const auto& [address, target] : want) {
        const auto old = st.targets.find(address);
        if (old != st.targets.end() && old->second.key == target.key && old->second.spec == target.spec) continue;
        auto r = health_->upsert(target);
        if (!r) log_(LogSeverity::kWarn, "health target=" + target.key.to_string() + " msg=\"" + r.error() + "\"");
    }
    st.targets = std::move(want);
}

model::Config ServiceManager::compose_locked(Clock::time_point now, const std::vector<health::TargetStatus>& health,
                                             std::vector<health::PoolMode>& modes)
{
    std::map<health::TargetKey, health::HealthState> states;
    for (const auto& t : health) states[t.key] = t.state;
    model::Config out = config_;
    out.services.clear();
    next_expiry_.reset();
    for (const model::Service& s : config_.services) {
        ServiceState& st = *services_.at(s.name);
        static const std::vector<discovery::BackendEntry> kNone;
        const auto& desired = st.desired ? st.desired->backends : kNone;
        if (st.drains.update(desired, st.api_drains, s.drain_deadline, now)) st.targets_stale = true;
        const auto health_of = [&](const model::IpAddress& address) {
            const auto t = st.targets.find(address);
            if (t == st.targets.end()) return health::HealthState::kUnknown;
            const auto h = states.find(t->second.key);
            return h == states.end() ? health::HealthState::kUnknown : h->second;
        };
        std::vector<Candidate> candidates;
        for (const discovery::BackendEntry& e : desired) {
            candidates.push_back(Candidate{e, !has_check(s) || health_of(e.address) == health::HealthState::kHealthy,
                                           st.drains.find(e.address) != nullptr,
                                           st.drains.expired(e.address, s.drain_deadline, now)});
        }
        // Removed backends drain like any other (their flows stay until the
        // deadline), except one whose check has failed: it most likely left
        // because it died, and holding its flows would only turn a prompt
        // reset into a hang. Unknown health (no probe answered yet) keeps it.
        for (const discovery::BackendEntry& e : st.drains.departed()) {
            if (has_check(s) && health_of(e.address) == health::HealthState::kUnhealthy) {
                st.drains.forget_departed(e.address);
                st.targets_stale = true;
                log_(LogSeverity::kInfo, "service=" + s.name + " backend=" + e.address.to_string() +
                                             " msg=\"removed and failing its check: leaves at once\"");
                continue;
            }
            candidates.push_back(Candidate{e, false, true, false});
        }
        if (auto at = st.drains.next_expiry(s.drain_deadline, now); at && (!next_expiry_ || *at < *next_expiry_)) {
            next_expiry_ = at;
        }
        Pool pool = build_pool(candidates, s.on_all_backends_down);
        model::Service resolved = s;
        resolved.backends = std::move(pool.backends);
        resolved.discovery.reset();  // the plan builder takes the pool as static backends
        out.services.push_back(std::move(resolved));
        modes.push_back(pool.mode);
    }
    return out;
}

std::chrono::milliseconds ServiceManager::process()
{
    const auto now = Clock::now();
    last_loop_.store(now.time_since_epoch().count());
    uint64_t ignored;
    while (::read(wake_fd_, &ignored, sizeof ignored) > 0) {
    }
    {
        std::lock_guard lock(mu_);
        for (auto& [name, st] : services_) {
            if (st->targets_stale) sync_targets_locked(*st, now);
        }
        if (next_expiry_ && now >= *next_expiry_) mark_dirty_locked(now);
        if (retry_at_ && now >= *retry_at_) {
            retry_at_.reset();
            mark_dirty_locked(now);
        }
        if (!dirty_since_) {
            auto wake_at = next_expiry_;
            if (retry_at_ && (!wake_at || *retry_at_ < *wake_at)) wake_at = retry_at_;
            return wake_at ? std::max(milliseconds(1), duration_cast<milliseconds>(*wake_at - now) + milliseconds(1))
                           : kIdleWait;
        }
        const auto due = *dirty_since_ + options_.debounce;
        if (now < due) return std::max(milliseconds(1), duration_cast<milliseconds>(due - now));
        // At start, wait (bounded) for every probe's first result, so the
        // tables do not swing from "all down, keep all" to the real pool.
        if (hold_until_ && now < *hold_until_ && health_) {
            const auto all = health_->status();
            const bool checked = health_->pending_commands() == 0 &&
                                 std::all_of(all.begin(), all.end(), [](const auto& t) { return t.checked; });
            if (!checked) return milliseconds(10);
        }
        hold_until_.reset();
    }
    auto r = publish_now();
    if (!r) {
        // The previous plan stays in force; try again later rather than
        // only at the next change (a reload may be waiting on it).
        log_(LogSeverity::kError, "msg=\"publish failed, the previous plan stays; retrying in 1 s\" error=\"" +
                                      r.error() + "\"");
        std::lock_guard lock(mu_);
        retry_at_ = Clock::now() + kPublishRetry;
    }
    return milliseconds(1);
}

Result<void> ServiceManager::publish_now()
{
    std::shared_ptr<health::HealthChecker> checker;
    {
        std::lock_guard lock(mu_);
        checker = health_;
    }
    const std::vector<health::TargetStatus> health = checker ? checker->status() : std::vector<health::TargetStatus>{};
    std::vector<health::PoolMode> modes;
    model::Config composed;
    std::vector<std::pair<std::string, PersistedSet>> to_persist;
    std::vector<std::string> changed;
    {
        std::lock_guard lock(mu_);
        const auto now = Clock::now();
        composed = compose_locked(now, health, modes);
        dirty_since_.reset();
        for (auto& [name, st] : services_) {
            if (st->changed) {
                changed.push_back(name);
                ++st->rebuilds;
                st->changed = false;
            }
            if (st->persist_pending && st->desired) {
                to_persist.emplace_back(name, PersistedSet{source_identity(st->config), *st->desired});
            }
            st->persist_pending = false;
        }
    }
    for (const auto& [name, set] : to_persist) persist(name, set);

    const auto t0 = Clock::now();
    auto plan = planner_.build(composed);
    const auto t1 = Clock::now();
    if (!plan) {
        std::lock_guard lock(mu_);
        ++stats_.publish_failures;
        return Error{"plan: " + plan.error()};
    }
    auto published = driver_.publish(*plan);
    const auto t2 = Clock::now();
    std::lock_guard lock(mu_);
    if (!published) {
        ++stats_.publish_failures;
        return Error{"driver: " + published.error()};
    }
    for (size_t i = 0; i < composed.services.size(); ++i) all_down_.record(composed.services[i].name, modes[i]);
    ++stats_.publications;
    stats_.last_build = t1 - t0;
    stats_.last_publish = t2 - t1;
    stats_.last_published_at = t2;
    auto next = std::make_shared<const driver::ForwardingPlan>(std::move(*plan));
    for (const driver::PlanService& ps : next->services) {
        if (std::find(changed.begin(), changed.end(), ps.name) == changed.end()) continue;
        size_t active = 0, draining = 0;
        for (const auto& b : ps.backends) (b.draining ? draining : active) += 1;
        const auto m = std::find_if(composed.services.begin(), composed.services.end(),
                                    [&](const model::Service& s) { return s.name == ps.name; });
        const size_t idx = static_cast<size_t>(m - composed.services.begin());
        char fp[17];
        std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(ps.fingerprint));
        log_(LogSeverity::kInfo, "service=" + ps.name + " msg=\"table published\" active=" + std::to_string(active) +
                                     " draining=" + std::to_string(draining) + " mode=" +
                                     health::pool_mode_name(modes[idx]) + " fingerprint=" + fp);
    }
    remember_ids_locked(*next, t2);
    plan_ = std::move(next);
    return {};
}

void ServiceManager::remember_ids_locked(const driver::ForwardingPlan& next, Clock::time_point now)
{
    const auto quarantine = driver::id_quarantine(config_.timeouts);
    std::map<std::string, const driver::PlanService*> before;
    if (plan_) {
        for (const auto& ps : plan_->services) before.emplace(ps.name, &ps);
    }
    std::map<std::string, std::map<model::IpAddress, LastId>> kept;
    for (const auto& ps : next.services) {
        auto& ids = kept[ps.name];
        if (auto it = last_ids_.find(ps.name); it != last_ids_.end()) ids = std::move(it->second);
        std::erase_if(ids, [&](const auto& e) { return now - e.second.left > quarantine; });
        const auto old = before.find(ps.name);
        if (old == before.end()) continue;
        const auto& was = old->second->backends;
        const auto same = [](const driver::PlanBackend& a, const driver::PlanBackend& b) {
            return a.id == b.id && a.address == b.address;
        };
        // Most publications leave most services' backends as they were.
        if (std::equal(was.begin(), was.end(), ps.backends.begin(), ps.backends.end(), same)) continue;
        std::set<model::IpAddress> now_in;
        for (const auto& b : ps.backends) {
            now_in.insert(b.address);
            ids.erase(b.address);
        }
        for (const auto& b : was) {
            if (now_in.count(b.address) == 0) ids[b.address] = LastId{b.id, now};
        }
    }
    last_ids_ = std::move(kept);
}

Result<void> ServiceManager::set_drain(const std::string& service, const std::string& backend, bool drain)
{
    {
        std::lock_guard lock(mu_);
        const auto it = services_.find(service);
        if (it == services_.end()) return make_error("no service named '" + service + "'");
        ServiceState& st = *it->second;
        auto target = parse_backend_ref(backend);
        if (!target) return Error{target.error()};
        const bool known = st.desired && std::any_of(st.desired->backends.begin(), st.desired->backends.end(),
                                                     [&](const discovery::BackendEntry& e) {
                                                         return e.address == target->address &&
                                                                (target->port == 0 || target->port == e.port);
                                                     });
        if (!known) return make_error("service '" + service + "' has no backend " + backend);
        if (drain) {
            st.api_drains.insert(target->address);
        } else {
            st.api_drains.erase(target->address);
        }
        st.changed = true;
        mark_dirty_locked(Clock::now());
    }
    log_(LogSeverity::kInfo, "service=" + service + " backend=" + backend + " msg=\"" +
                                 (drain ? "drain" : "undrain") + " requested\" source=api");
    wake();
    return {};
}

std::shared_ptr<const driver::ForwardingPlan> ServiceManager::current_plan() const
{
    std::lock_guard lock(mu_);
    return plan_;
}

model::Config ServiceManager::config() const
{
    std::lock_guard lock(mu_);
    return config_;
}

PublishStats ServiceManager::publish_stats() const
{
    std::lock_guard lock(mu_);
    return stats_;
}

bool ServiceManager::ready() const
{
    std::lock_guard lock(mu_);
    if (!started_ || stats_.publications == 0) return false;
    for (const auto& [name, st] : services_) {
        if (!st->desired) return false;  // a discovered service that never had a set
    }
    return true;
}

void ServiceManager::persist(const std::string& service, const PersistedSet& set) const
{
    auto r = write_state_file(options_.state_dir, service, set);
    if (!r) log_(LogSeverity::kWarn, "service=" + service + " msg=\"cannot persist the last good set: " + r.error() + "\"");
}

std::optional<discovery::BackendSet> ServiceManager::load_persisted(const model::Service& service) const
{
    if (options_.state_dir.empty()) return std::nullopt;
    auto r = read_state_file(options_.state_dir, service.name);
    if (!r) {
        log_(LogSeverity::kWarn, "service=" + service.name + " msg=\"ignoring the persisted set: " + r.error() + "\"");
        return std::nullopt;
    }
    if (!*r) return std::nullopt;
    const std::string source = source_identity(service);
    if ((*r)->source != source) {
        // The config points discovery elsewhere than when the set was
        // saved: serving it would call a VIP ready with another pool.
        log_(LogSeverity::kWarn, "service=" + service.name +
                                     " msg=\"ignoring the persisted set: it came from another discovery source\" saved=\"" +
                                     (*r)->source + "\" configured=\"" + source + "\"");
        return std::nullopt;
    }
    log_(LogSeverity::kInfo, "service=" + service.name +
                                 " msg=\"serving the persisted last good set until discovery answers\" backends=" +
                                 std::to_string((*r)->set.backends.size()));
    return std::move((*r)->set);
}

}  // namespace sluice::daemon
