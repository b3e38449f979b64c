// ServiceManager::view: the services as the admin API shows them, joined
// from the config, the source's status, health, drains, the plan in force
// and the data plane's per-backend counters.
#include <cstdio>
#include <map>
#include <optional>

#include "daemon/service_manager.h"
#include "daemon/service_state.h"

namespace sluice::daemon {
namespace {

const char* forwarding_name(model::Forwarding f)
{
    switch (f) {
    case model::Forwarding::kIpip: return "ipip";
    case model::Forwarding::kGue: return "gue";
    case model::Forwarding::kL2Dsr: return "l2dsr";
    }
    return "?";
}

std::string hex16(uint64_t v)
{
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

std::vector<api::ServiceView> ServiceManager::view(const driver::DataplaneStats& stats) const
{
    std::shared_ptr<health::HealthChecker> checker;
    {
        std::lock_guard lock(mu_);
        checker = health_;
    }
    std::map<health::TargetKey, health::TargetStatus> health;
    if (checker) {
        for (auto& t : checker->status()) health.emplace(t.key, std::move(t));
    }
    std::map<uint32_t, sluice_counter> sent;
    for (const auto& b : stats.backends) sent[b.id] = b.sent;
    std::map<std::string, health::AllDownCounters::Entry> all_down;
    for (auto& e : all_down_.snapshot()) all_down.emplace(e.service, e);

    std::lock_guard lock(mu_);
    std::vector<api::ServiceView> out;
    for (const model::Service& s : config_.services) {
        const ServiceState& st = *services_.at(s.name);
        api::ServiceView v;
        v.name = s.name;
        v.vip = s.vip.to_string();
        v.protocol = s.protocol == model::Protocol::kTcp ? "tcp" : "udp";
        v.forwarding = forwarding_name(s.forwarding);
        v.table_size = s.table_size;
        if (st.source) {
            const discovery::SourceStatus status = st.source->status();
            v.discovery = std::string(st.source->kind());
            v.discovery_state = std::string(discovery::state_name(status.state));
            v.discovery_error = status.last_error;
            v.discovery_updated = status.last_update;
            // A set read back from state_dir stands in for the source's:
            // say the pool is stale rather than "error" or "syncing".
            if (st.from_state_file && status.state != discovery::SourceState::kOk) {
                v.discovery_state = "stale";
                if (v.discovery_error.empty()) v.discovery_error = "serving the persisted last good set";
            }
        } else {
            v.discovery = "static";
            v.discovery_state = "ok";
        }
        if (const auto e = all_down.find(s.name); e != all_down.end()) {
            v.all_backends_down = e->second.all_down;
            v.all_down_events = e->second.episodes;
        }
        v.table_rebuilds = st.rebuilds;
        const driver::PlanService* ps = nullptr;
        if (plan_) {
            for (const auto& p : plan_->services) {
                if (p.name == s.name) ps = &p;
            }
        }
        std::map<uint32_t, uint32_t> slots;
        std::map<model::IpAddress, const driver::PlanBackend*> in_plan;
        if (ps) {
            v.fingerprint = hex16(ps->fingerprint);
            for (uint32_t id : ps->ring) {
                if (id != SLUICE_BACKEND_NONE) ++slots[id];
            }
            for (const auto& pb : ps->backends) in_plan.emplace(pb.address, &pb);
        }
        const auto last_ids = last_ids_.find(s.name);
        // The discovered backends, then the departed ones still draining
        // (drain_source "removed"; not in the discovered or persisted set).
        const auto add_backend = [&](const discovery::BackendEntry& e) {
            api::BackendView b;
            b.address = e.address.to_string();
            b.port = e.port;
            b.weight = e.weight;
            if (const DrainTracker::Mark* mark = st.drains.find(e.address)) {
                b.draining = true;
                b.drain_source = mark->source;
            }
            if (s.health_check.type == model::HealthCheckType::kNone) {
                b.health = "none";
            } else if (const auto t = st.targets.find(e.address); t != st.targets.end()) {
                const auto h = health.find(t->second.key);
                if (h == health.end() || h->second.state == health::HealthState::kUnknown) {
                    b.health = "unknown";
                } else {
                    b.health = h->second.state == health::HealthState::kHealthy ? "up" : "down";
                    b.health_error = h->second.last_error;
                }
            } else {
                b.health = "unknown";
            }
            std::optional<uint32_t> counted;  // the id whose counters are this backend's
            if (const auto pb = in_plan.find(e.address); pb != in_plan.end()) {
                b.backend_id = pb->second->id;
                b.in_plan = true;
                b.slots = slots[pb->second->id];
                b.in_table = b.slots > 0;
                counted = pb->second->id;
            } else if (last_ids != last_ids_.end()) {
                // Out of the plan (down, or departed): what it was sent
                // while it had its last id, so the counter never goes back.
                if (const auto l = last_ids->second.find(e.address); l != last_ids->second.end()) counted = l->second.id;
            }
            if (counted) {
                if (const auto c = sent.find(*counted); c != sent.end()) {
                    b.packets = c->second.packets;
                    b.bytes = c->second.bytes;
                }
            }
            // The data plane counts per backend, not per VIP: a VIP's
            // traffic is what its backends were sent.
            v.packets += b.packets;
            v.bytes += b.bytes;
            v.backends.push_back(std::move(b));
        };
        if (st.desired) {
            for (const discovery::BackendEntry& e : st.desired->backends) add_backend(e);
        }
        for (const discovery::BackendEntry& e : st.drains.departed()) add_backend(e);
        out.push_back(std::move(v));
    }
    return out;
}

}  // namespace sluice::daemon
