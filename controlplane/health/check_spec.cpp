// Validation of health-check targets and the mapping from the config model.
#include "health/check_spec.h"

#include <string_view>

namespace sluice::health {

const char* check_type_name(CheckType type)
{
    switch (type) {
    case CheckType::kNone: return "none";
    case CheckType::kTcp: return "tcp";
    case CheckType::kHttp: return "http";
    case CheckType::kHttps: return "https";
    case CheckType::kUdp: return "udp";
    }
    return "?";
}

std::string TargetKey::to_string() const
{
    return service + "/" + model::Endpoint{address, port}.to_string();
}

namespace {

// Characters that would let a configured value break out of the request
// line or the Host header (CR/LF injection) or that a URL cannot carry.
bool has_forbidden_char(std::string_view text, std::string_view extra)
{
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || extra.find(c) != std::string_view::npos) return true;
    }
    return false;
}

}  // namespace

Result<void> validate(const Target& target)
{
    const CheckSpec& spec = target.spec;
    const std::string who = target.key.to_string() + ": ";
    if (target.key.service.empty()) return make_error(who + "service name is empty");
    if (spec.type == CheckType::kNone) return {};
    if (target.key.port == 0) return make_error(who + "probe port is 0");
    if (spec.interval.count() <= 0) return make_error(who + "interval must be positive");
    if (spec.timeout.count() <= 0) return make_error(who + "timeout must be positive");
    // A probe still running when the next one is due would make the
    // schedule skip slots; the model enforces the same rule at load time.
    if (spec.timeout >= spec.interval) {
        return make_error(who + "timeout (" + std::to_string(spec.timeout.count()) +
                          " ms) must be shorter than interval (" +
                          std::to_string(spec.interval.count()) + " ms)");
    }
    if (spec.rise == 0 || spec.fall == 0) return make_error(who + "rise and fall must be >= 1");
    if (spec.type == CheckType::kHttp || spec.type == CheckType::kHttps) {
        if (spec.http_path.empty() || spec.http_path.front() != '/' ||
            has_forbidden_char(spec.http_path, "#")) {
            return make_error(who + "http path must start with '/' and hold no spaces, "
                                    "control characters or '#'");
        }
        if (spec.http_host && (spec.http_host->empty() ||
                               has_forbidden_char(*spec.http_host, "/?#@\\"))) {
            return make_error(who + "http host must be a bare host[:port]");
        }
        if (spec.http_expect.empty()) return make_error(who + "no expected http status");
        for (const StatusRange& range : spec.http_expect) {
            if (range.low < 100 || range.high > 599 || range.low > range.high) {
                return make_error(who + "expected status range " + std::to_string(range.low) +
                                  "-" + std::to_string(range.high) + " is not within 100-599");
            }
        }
    }
    if (spec.type == CheckType::kUdp && spec.udp_send.size() > 65507) {
        return make_error(who + "udp payload larger than one datagram");
    }
    return {};
}

CheckSpec spec_from_model(const model::HealthCheck& check)
{
    CheckSpec spec;
    switch (check.type) {
    case model::HealthCheckType::kNone: spec.type = CheckType::kNone; break;
    case model::HealthCheckType::kTcp: spec.type = CheckType::kTcp; break;
    case model::HealthCheckType::kHttp: spec.type = CheckType::kHttp; break;
    case model::HealthCheckType::kHttps: spec.type = CheckType::kHttps; break;
    case model::HealthCheckType::kUdp: spec.type = CheckType::kUdp; break;
    }
    spec.interval = check.interval;
    spec.timeout = check.timeout;
    spec.rise = check.rise;
    spec.fall = check.fall;
    spec.http_path = check.http_path;
    spec.http_host = check.http_host;
    spec.http_expect = {StatusRange{check.http_expect_status, check.http_expect_status}};
    spec.udp_send = check.udp_send;
    spec.udp_expect = check.udp_expect;
    return spec;
}

Result<Target> target_for(const model::Service& service, const model::Backend& backend)
{
    Target target;
    target.key.service = service.name;
    target.key.address = backend.address;
    target.spec = spec_from_model(service.health_check);
    uint16_t port = service.vip.port;
    if (backend.port) port = *backend.port;
    if (service.health_check.port) port = *service.health_check.port;
    target.key.port = port;
    if (port == 0 && target.spec.type != CheckType::kNone) {
        return make_error("service " + service.name + ": backend " +
                          backend.address.to_string() +
                          " has no probe port (VIP port 0 and neither health_check.port "
                          "nor the backend's port set)");
    }
    return target;
}

}  // namespace sluice::health
