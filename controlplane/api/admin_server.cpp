// The admin API server: routing, authentication and the endpoint handlers.
// Handlers only translate HTTP to ControlPlaneView calls and views to JSON
// (json_views.h); what they return is documented in admin_server.h.
#include "api/admin_server.h"

#include <httplib.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <functional>
#include <regex>
#include <thread>
#include <vector>

#include "api/json_views.h"
#include "api/metrics.h"
#include "model/address.h"

namespace sluice::api {
namespace {

using nlohmann::json;
using Handler = std::function<void(const httplib::Request&, httplib::Response&, const std::smatch&)>;

constexpr const char* kJsonType = "application/json";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
// An admin client that stalls must not hold a request thread for long.
constexpr time_t kIoTimeoutSeconds = 5;
constexpr time_t kKeepAliveSeconds = 2;
constexpr size_t kMaxRequestBody = 64 * 1024;
constexpr auto kStartWait = std::chrono::seconds(5);

struct Route {
    std::regex pattern;
    const char* method;  // "GET" or "POST"
    bool needs_token;
    Handler handler;
};

void reply(httplib::Response& res, int status, const json& body)
{
    res.status = status;
    res.set_content(dump(body) + "\n", kJsonType);
}

void reply_error(httplib::Response& res, int status, const std::string& message)
{
    reply(res, status, json{{"error", message}});
}

const ServiceView* find_service(const std::vector<ServiceView>& services, const std::string& name)
{
    for (const ServiceView& s : services) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

// Port query parameter: a decimal 0..65535.
std::optional<uint16_t> parse_port(const std::string& text)
{
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value > 65535) return std::nullopt;
    return static_cast<uint16_t>(value);
}

}  // namespace

struct AdminServer::Impl {
    Impl(ControlPlaneView& v, AdminSettings s) : view(v), settings(std::move(s)) {}

    ControlPlaneView& view;
    AdminSettings settings;
    httplib::Server server;
    std::vector<Route> routes;
    std::thread thread;
    std::atomic<uint16_t> port{0};
    std::atomic<bool> listen_returned{false};
    bool started = false;
    bool used = false;  // an httplib::Server is not restartable

    void add_routes();
    void dispatch(const httplib::Request& req, httplib::Response& res);
    bool authorized(const httplib::Request& req) const;
    void serve();

    void services(const httplib::Request&, httplib::Response& res, const std::smatch&);
    void service(const httplib::Request&, httplib::Response& res, const std::smatch& m);
    void backends(const httplib::Request&, httplib::Response& res, const std::smatch& m);
    void drain(const httplib::Request&, httplib::Response& res, const std::smatch& m);
    void reload(const httplib::Request&, httplib::Response& res, const std::smatch&);
    void lookup(const httplib::Request& req, httplib::Response& res, const std::smatch&);
};

void AdminServer::Impl::add_routes()
{
    auto add = [this](const char* pattern, const char* method, bool needs_token, Handler handler) {
        routes.push_back(Route{std::regex(pattern), method, needs_token, std::move(handler)});
    };
    using std::placeholders::_1, std::placeholders::_2, std::placeholders::_3;
    // /healthz stays open so a supervisor can probe liveness without the secret.
    add("/healthz", "GET", false, [this](const httplib::Request&, httplib::Response& res, const std::smatch&) {
        const bool alive = view.alive();
        reply(res, alive ? 200 : 503, json{{"status", alive ? "ok" : "unhealthy"}});
    });
    add("/readyz", "GET", true, [this](const httplib::Request&, httplib::Response& res, const std::smatch&) {
        const bool ready = view.ready();
        reply(res, ready ? 200 : 503, json{{"status", ready ? "ready" : "not ready"}});
    });
    add("/metrics", "GET", true, [this](const httplib::Request&, httplib::Response& res, const std::smatch&) {
        const StatsView stats = view.stats();
        // Zeros in place of unreadable counters would read as counter
        // resets; a failed scrape (up == 0) says what happened.
        if (!stats.counters_error.empty())
            return reply_error(res, 503, "data-plane counters unreadable: " + stats.counters_error);
        res.status = 200;
        res.set_content(render_metrics(view.services(), stats), kMetricsType);
    });
    add("/v1/services", "GET", true, std::bind(&Impl::services, this, _1, _2, _3));
    add("/v1/services/([^/]+)", "GET", true, std::bind(&Impl::service, this, _1, _2, _3));
    add("/v1/services/([^/]+)/backends", "GET", true, std::bind(&Impl::backends, this, _1, _2, _3));
    add("/v1/services/([^/]+)/backends/([^/]+)/(drain|undrain)", "POST", true,
        std::bind(&Impl::drain, this, _1, _2, _3));
    add("/v1/reload", "POST", true, std::bind(&Impl::reload, this, _1, _2, _3));
    add("/v1/stats", "GET", true, [this](const httplib::Request&, httplib::Response& res, const std::smatch&) {
        reply(res, 200, stats_json(view.stats(), std::chrono::system_clock::now()));
    });
    add("/v1/fingerprints", "GET", true, [this](const httplib::Request&, httplib::Response& res, const std::smatch&) {
        json map = json::object();
        for (const ServiceView& s : view.services()) map[s.name] = s.fingerprint;
        reply(res, 200, json{{"fingerprints", std::move(map)}});
    });
    add("/v1/lookup", "GET", true, std::bind(&Impl::lookup, this, _1, _2, _3));
    add("/v1/connections", "GET", true,
        [this](const httplib::Request& req, httplib::Response& res, const std::smatch&) {
            const std::string only = req.has_param("service") ? req.get_param_value("service") : "";
            auto result = view.connections();
            if (!result) return reply_error(res, 503, result.error());
            if (!only.empty()) {
                auto& list = result->services;
                list.erase(std::remove_if(list.begin(), list.end(),
                                          [&](const ConnectionsView::Service& s) { return s.name != only; }),
                           list.end());
                if (list.empty()) return reply_error(res, 404, "no service '" + only + "'");
            }
            reply(res, 200, connections_json(*result));
        });
}

bool AdminServer::Impl::authorized(const httplib::Request& req) const
{
    if (!settings.token || settings.token->empty()) return true;
    const std::string header = req.get_header_value("Authorization");
    static constexpr std::string_view kScheme = "bearer ";
    if (header.size() < kScheme.size()) return false;
    for (size_t i = 0; i < kScheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
    }
    return tokens_equal(std::string_view(header).substr(kScheme.size()), *settings.token);
}

// One entry point for every method and path, so an unknown path is a JSON
// 404 and a known path with the wrong method a 405, whatever the token.
void AdminServer::Impl::dispatch(const httplib::Request& req, httplib::Response& res)
{
    const std::string method = req.method == "HEAD" ? "GET" : req.method;
    std::string allowed;
    for (const Route& route : routes) {
        std::smatch match;
        if (!std::regex_match(req.path, match, route.pattern)) continue;
        if (route.needs_token && !authorized(req)) {
            res.set_header("WWW-Authenticate", "Bearer realm=\"sluice\"");
            reply_error(res, 401, "missing or wrong bearer token (Authorization: Bearer <token>)");
            return;
        }
        if (method != route.method) {
            allowed += allowed.empty() ? route.method : std::string(", ") + route.method;
            continue;
        }
        route.handler(req, res, match);
        return;
    }
    if (!allowed.empty()) {
        res.set_header("Allow", allowed);
        reply_error(res, 405, "method " + req.method + " not allowed on " + req.path + " (allowed: " + allowed + ")");
        return;
    }
    reply_error(res, 404, "no such endpoint: " + req.path);
}

void AdminServer::Impl::services(const httplib::Request&, httplib::Response& res, const std::smatch&)
{
    json list = json::array();
    for (const ServiceView& s : view.services()) list.push_back(service_json(s, /*with_backends=*/false));
    reply(res, 200, json{{"services", std::move(list)}});
}

void AdminServer::Impl::service(const httplib::Request&, httplib::Response& res, const std::smatch& m)
{
    const auto all = view.services();
    const ServiceView* s = find_service(all, m[1].str());
    if (s == nullptr) return reply_error(res, 404, "unknown service '" + m[1].str() + "'");
    reply(res, 200, service_json(*s, /*with_backends=*/true));
}

void AdminServer::Impl::backends(const httplib::Request&, httplib::Response& res, const std::smatch& m)
{
    const auto all = view.services();
    const ServiceView* s = find_service(all, m[1].str());
    if (s == nullptr) return reply_error(res, 404, "unknown service '" + m[1].str() + "'");
    json list = json::array();
    for (const BackendView& b : s->backends) list.push_back(backend_json(b));
    reply(res, 200, json{{"service", s->name}, {"backends", std::move(list)}});
}

// Names are checked against the view first so an unknown service or backend
// is a 404; an error from set_drain after that is the daemon refusing (409).
void AdminServer::Impl::drain(const httplib::Request&, httplib::Response& res, const std::smatch& m)
{
    const std::string service_name = m[1].str();
    const std::string backend_name = m[2].str();
    const bool drain = m[3].str() == "drain";
    const auto all = view.services();
    const ServiceView* s = find_service(all, service_name);
    if (s == nullptr) return reply_error(res, 404, "unknown service '" + service_name + "'");
    bool known = false;
    for (const BackendView& b : s->backends) known = known || b.address == backend_name || backend_label(b) == backend_name;
    if (!known) return reply_error(res, 404, "service '" + service_name + "' has no backend '" + backend_name + "'");
    auto done = view.set_drain(service_name, backend_name, drain);
    if (!done) return reply_error(res, 409, done.error());
    reply(res, 200, json{{"service", service_name}, {"backend", backend_name}, {"draining", drain}});
}

void AdminServer::Impl::reload(const httplib::Request&, httplib::Response& res, const std::smatch&)
{
    auto result = view.reload();
    if (!result) return reply_error(res, 500, "reload failed: " + result.error());
    json body{{"applied", result->applied}, {"diagnostics", result->diagnostics}};
    if (!result->applied) body["error"] = "configuration refused; the running configuration stays";
    reply(res, result->applied ? 200 : 422, body);
}

void AdminServer::Impl::lookup(const httplib::Request& req, httplib::Response& res, const std::smatch&)
{
    LookupRequest request;
    for (const char* name : {"client", "client_port", "vip", "vip_port"}) {
        if (!req.has_param(name)) return reply_error(res, 400, std::string("missing query parameter '") + name + "'");
    }
    request.client = req.get_param_value("client");
    request.vip = req.get_param_value("vip");
    for (const std::string* address : {&request.client, &request.vip}) {
        auto parsed = model::parse_ip_address(*address);
        if (!parsed) return reply_error(res, 400, "'" + *address + "': " + parsed.error());
    }
    auto client_port = parse_port(req.get_param_value("client_port"));
    auto vip_port = parse_port(req.get_param_value("vip_port"));
    if (!client_port || !vip_port) return reply_error(res, 400, "client_port and vip_port must be 0..65535");
    request.client_port = *client_port;
    request.vip_port = *vip_port;
    request.protocol = req.has_param("protocol") ? req.get_param_value("protocol") : "tcp";
    if (request.protocol != "tcp" && request.protocol != "udp") {
        return reply_error(res, 400, "protocol must be tcp or udp, not '" + request.protocol + "'");
    }
    auto result = view.lookup(request);
    if (!result) return reply_error(res, 404, result.error());
    reply(res, 200, lookup_json(request, *result));
}

// Body of the listener thread. Thread-pool threads are created inside
// listen_after_bind(), so the affinity set here is the one they inherit.
void AdminServer::Impl::serve()
{
    pthread_setname_np(pthread_self(), "sluice-admin");
    if (!settings.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (unsigned cpu : settings.cpus) CPU_SET(cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    server.listen_after_bind();
    listen_returned.store(true);
}

AdminServer::AdminServer(ControlPlaneView& view, AdminSettings settings)
    : impl_(std::make_unique<Impl>(view, std::move(settings)))
{
}

AdminServer::~AdminServer() { stop(); }

Result<void> AdminServer::start()
{
    Impl& s = *impl_;
    if (s.used) return make_error("admin API server already started once; construct a new one");
    if (auto checked = check_settings(s.settings); !checked) return checked;

    s.used = true;
    s.add_routes();
    const unsigned threads = s.settings.threads;
    s.server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s.server.set_read_timeout(kIoTimeoutSeconds, 0);
    s.server.set_write_timeout(kIoTimeoutSeconds, 0);
    s.server.set_keep_alive_timeout(kKeepAliveSeconds);
    // Answers are written as head and body apart: without TCP_NODELAY the
    // body waits for the client's delayed ACK, ~40 ms per request on a
    // kept-alive connection.
    s.server.set_tcp_nodelay(true);
    s.server.set_payload_max_length(kMaxRequestBody);
    auto dispatch = [&s](const httplib::Request& req, httplib::Response& res) { s.dispatch(req, res); };
    s.server.Get(".*", dispatch);
    s.server.Post(".*", dispatch);
    s.server.Put(".*", dispatch);
    s.server.Patch(".*", dispatch);
    s.server.Delete(".*", dispatch);
    s.server.Options(".*", dispatch);
    // httplib answers some errors itself (400 on a malformed request, 413):
    // give those a JSON body too; ours already have one.
    s.server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        reply_error(res, res.status, res.status == 400 ? "malformed request"
                                     : res.status == 413 ? "request body too large"
                                                         : "HTTP error " + std::to_string(res.status));
        return httplib::Server::HandlerResponse::Handled;
    }));
    s.server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        reply_error(res, 500, "internal error in the admin API");
    });

    // httplib's default also sets SO_REUSEPORT, which would let a second
    // daemon bind the same admin port and silently share its requests.
    s.server.set_socket_options([](int sock) {
        const int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });

    errno = 0;
    int port = 0;
    if (s.settings.port == 0) {
        port = s.server.bind_to_any_port(s.settings.listen);
    } else {
        port = s.server.bind_to_port(s.settings.listen, s.settings.port) ? s.settings.port : -1;
    }
    if (port <= 0) {
        const int err = errno;
        return make_error("cannot listen on " + s.settings.listen + ":" + std::to_string(s.settings.port) +
                          " for the admin API" + (err != 0 ? std::string(": ") + std::strerror(err) : std::string()) +
                          " (daemon.admin.listen / daemon.admin.port)");
    }
    s.port.store(static_cast<uint16_t>(port));
    s.started = true;
    s.thread = std::thread([&s] { s.serve(); });

    // The socket already listens (connections queue in the backlog); wait
    // for the accept loop only so stop() right after start() is well defined.
    const auto deadline = std::chrono::steady_clock::now() + kStartWait;
    while (!s.server.is_running() && !s.listen_returned.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!s.server.is_running()) {
        stop();
        return make_error("admin API server did not start accepting connections");
    }
    return {};
}

void AdminServer::stop()
{
    Impl& s = *impl_;
    if (!s.started) return;
    s.server.stop();
    if (s.thread.joinable()) s.thread.join();
    s.started = false;
}

uint16_t AdminServer::port() const { return impl_->port.load(); }

}  // namespace sluice::api
