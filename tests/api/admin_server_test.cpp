// The admin API server over a fake ControlPlaneView on a loopback ephemeral
// port: JSON shapes, status codes, drain/reload/lookup reaching the view,
// and the bearer-token rules.
#include <gtest/gtest.h>
#include <httplib.h>

#include <dirent.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "api/admin_server.h"
#include "fake_view.h"

namespace sluice::api {
namespace {

using nlohmann::json;
using testing::FakeView;

class AdminServerTest : public ::testing::Test {
protected:
    void start(std::optional<std::string> token = std::nullopt)
    {
        AdminSettings settings;
        settings.listen = "127.0.0.1";
        settings.port = 0;
        settings.token = std::move(token);
        server_ = std::make_unique<AdminServer>(view_, settings);
        auto started = server_->start();
        ASSERT_TRUE(started.ok()) << started.error();
        ASSERT_NE(server_->port(), 0);
        client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
        client_->set_connection_timeout(2, 0);
        client_->set_read_timeout(5, 0);
    }

    // Status and parsed body of a request; the body must be JSON.
    std::pair<int, json> get(const std::string& path, const httplib::Headers& headers = {})
    {
        return parse(client_->Get(path, headers));
    }
    std::pair<int, json> post(const std::string& path, const httplib::Headers& headers = {})
    {
        return parse(client_->Post(path, headers, "", "application/json"));
    }
    static std::pair<int, json> parse(const httplib::Result& res)
    {
        if (!res) return {-1, json()};
        EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << res->body;
        return {res->status, json::parse(res->body, nullptr, /*allow_exceptions=*/false)};
    }

    FakeView view_;
    std::unique_ptr<AdminServer> server_;
    std::unique_ptr<httplib::Client> client_;
};

// /v1/services lists summaries with the documented fields and counts.
TEST_F(AdminServerTest, ServicesListsSummaries)
{
    start();
    auto [status, body] = get("/v1/services");
    ASSERT_EQ(status, 200);
    ASSERT_EQ(body["services"].size(), 2u);
    const json& web = body["services"][0];
    EXPECT_EQ(web["name"], "web");
    EXPECT_EQ(web["vip"], "192.0.2.10:80");
    EXPECT_EQ(web["protocol"], "tcp");
    EXPECT_EQ(web["forwarding"], "ipip");
    EXPECT_EQ(web["table_size"], 65537);
    EXPECT_EQ(web["fingerprint"], "0123456789abcdef");
    EXPECT_EQ(web["discovery"]["source"], "static");
    EXPECT_EQ(web["discovery"]["state"], "ok");
    EXPECT_TRUE(web["discovery"]["updated"].is_string());
    EXPECT_EQ(web["backends_total"], 3);
    EXPECT_EQ(web["backends_up"], 2);
    EXPECT_EQ(web["backends_in_table"], 2);
    EXPECT_FALSE(web.contains("backends"));
    EXPECT_TRUE(body["services"][1]["discovery"]["updated"].is_null());
}

// One service comes with its backends; its backends list alone too; an
// unknown service is a JSON 404.
TEST_F(AdminServerTest, ServiceAndBackends)
{
    start();
    auto [status, web] = get("/v1/services/web");
    ASSERT_EQ(status, 200);
    ASSERT_EQ(web["backends"].size(), 3u);
    const json& b = web["backends"][2];
    for (const char* key : {"name", "address", "port", "weight", "draining", "drain_source", "health", "health_error",
                            "in_table", "slots", "backend_id", "packets", "bytes"}) {
        EXPECT_TRUE(b.contains(key)) << key;
    }
    EXPECT_EQ(b["name"], "[2001:db8::3]:8080");
    EXPECT_EQ(b["health"], "down");

    auto [bstatus, backends] = get("/v1/services/web/backends");
    ASSERT_EQ(bstatus, 200);
    EXPECT_EQ(backends["service"], "web");
    EXPECT_EQ(backends["backends"].size(), 3u);

    // A URL-encoded name with a quote and a backslash reaches the lookup intact.
    auto [ostatus, odd] = get("/v1/services/odd%22name%5Cx");
    ASSERT_EQ(ostatus, 200);
    EXPECT_EQ(odd["name"], "odd\"name\\x");

    auto [missing, error] = get("/v1/services/nope");
    EXPECT_EQ(missing, 404);
    EXPECT_EQ(error["error"], "unknown service 'nope'");
}

// drain and undrain reach the view; unknown names are 404; a refusal by the
// daemon is 409 with its message.
TEST_F(AdminServerTest, DrainAndUndrainReachTheView)
{
    start();
    auto [status, body] = post("/v1/services/web/backends/10.0.0.1/drain");
    ASSERT_EQ(status, 200);
    EXPECT_EQ(body, (json{{"service", "web"}, {"backend", "10.0.0.1"}, {"draining", true}}));
    auto [ustatus, ubody] = post("/v1/services/web/backends/10.0.0.1/undrain");
    ASSERT_EQ(ustatus, 200);
    EXPECT_EQ(ubody["draining"], false);
    const auto drains = view_.drains();
    ASSERT_EQ(drains.size(), 2u);
    EXPECT_EQ(drains[0], std::make_pair(std::string("web/10.0.0.1"), true));
    EXPECT_EQ(drains[1], std::make_pair(std::string("web/10.0.0.1"), false));

    EXPECT_EQ(post("/v1/services/web/backends/10.9.9.9/drain").first, 404);
    EXPECT_EQ(post("/v1/services/nope/backends/10.0.0.1/drain").first, 404);
    view_.set_refuse_drain(true);
    auto [rstatus, refused] = post("/v1/services/web/backends/10.0.0.2/drain");
    EXPECT_EQ(rstatus, 409);
    EXPECT_EQ(refused["error"], "drain refused: backend is the last one up");
}

// A reload is 200 with diagnostics when applied, 422 with them when refused.
TEST_F(AdminServerTest, ReloadAppliedOrRefused)
{
    start();
    auto [status, body] = post("/v1/reload");
    ASSERT_EQ(status, 200);
    EXPECT_EQ(body["applied"], true);
    EXPECT_TRUE(body["diagnostics"].is_array());
    view_.set_reload_ok(false);
    auto [rstatus, refused] = post("/v1/reload");
    ASSERT_EQ(rstatus, 422);
    EXPECT_EQ(refused["applied"], false);
    ASSERT_EQ(refused["diagnostics"].size(), 1u);
    EXPECT_EQ(refused["diagnostics"][0], "/etc/sluice/sluice.toml:12:3: error: unknown key 'prot'");
    EXPECT_TRUE(refused["error"].is_string());
}

// /v1/stats has totals, every drop label and the control-plane timings.
TEST_F(AdminServerTest, StatsShape)
{
    start();
    auto [status, s] = get("/v1/stats");
    ASSERT_EQ(status, 200);
    EXPECT_EQ(s["dataplane"], "dpdk");
    EXPECT_EQ(s["workers"], 4);
    EXPECT_EQ(s["totals"]["tx_packets"], 1200);
    EXPECT_EQ(s["drops"].size(), static_cast<size_t>(SLUICE_DROP_MAX));
    EXPECT_EQ(s["drops"]["no_backend"], 30);
    EXPECT_EQ(s["drops"]["control_full"], 0);
    EXPECT_EQ(s["drops_total"], 34);
    EXPECT_EQ(s["publications"], 7);
    EXPECT_DOUBLE_EQ(s["last_publish_seconds"].get<double>(), 0.0125);
    EXPECT_EQ(s["reloads"], (json{{"ok", 2}, {"failed", 1}}));
    EXPECT_GE(s["uptime_seconds"].get<double>(), 89.0);
    EXPECT_TRUE(s["version"].is_string());
    const json& t = s["connection_table"];
    EXPECT_EQ(t["layout"], "per-worker");
    EXPECT_EQ(t["capacity"], 2 * 1048576);
    EXPECT_EQ(t["live_estimate"], 36200);
    EXPECT_EQ(t["partitions"], (json{{{"id", 0}, {"capacity", 1048576}, {"live_estimate", 1200}},
                                     {{"id", 1}, {"capacity", 1048576}, {"live_estimate", 35000}}}));
    EXPECT_EQ(t["error"], "");
    const json& w = s["per_worker"];
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0]["id"], 0);
    EXPECT_EQ(w[0]["cpu"], 2);
    EXPECT_EQ(w[0]["tx_packets"], 900);
    EXPECT_EQ(w[0]["drops"], 5);
    EXPECT_GT(w[0]["rx_packets"].get<uint64_t>(), 1000u);
    EXPECT_GT(w[0]["busy_seconds"].get<double>(), 1.5);
    EXPECT_EQ(w[1]["cpu"], 3);
    EXPECT_TRUE(w[1]["busy_seconds"].is_null());  // XDP-like: not measured
    ASSERT_EQ(s["ports"].size(), 1u);
    EXPECT_EQ(s["ports"][0]["name"], "lan");
    EXPECT_EQ(s["ports"][0]["rx_packets"], 1500);
    EXPECT_EQ(s["ports"][0]["tx_bytes"], 91000);
    EXPECT_EQ(s["ports"][0]["rx_nombuf"], 2);
    EXPECT_GT(s["ports"][0]["rx_missed"].get<uint64_t>(), 7u);
}

// /v1/connections: every service's backends with their live entries;
// ?service= narrows it (404 for an unknown one); a table that cannot be
// judged is 503 with the reason.
TEST_F(AdminServerTest, Connections)
{
    start();
    auto [status, body] = get("/v1/connections");
    ASSERT_EQ(status, 200);
    ASSERT_EQ(body["services"].size(), 2u);
    const json& web = body["services"][0];
    EXPECT_EQ(web["name"], "web");
    ASSERT_EQ(web["backends"].size(), 3u);
    EXPECT_EQ(web["backends"][0], (json{{"name", "10.0.0.1"}, {"address", "10.0.0.1"}, {"port", 0},
                                        {"draining", false}, {"drain_source", ""}, {"in_table", true},
                                        {"connections", 11}}));
    EXPECT_DOUBLE_EQ(body["walk_seconds"].get<double>(), 0.002);
    auto [one_status, one] = get("/v1/connections?service=web");
    ASSERT_EQ(one_status, 200);
    EXPECT_EQ(one["services"].size(), 1u);
    EXPECT_EQ(get("/v1/connections?service=nope").first, 404);
    view_.set_conn_table_error("connection table not judged: test");
    auto [bad_status, bad] = get("/v1/connections");
    EXPECT_EQ(bad_status, 503);
    EXPECT_EQ(bad["error"], "connection table not judged: test");
}

// Counters the data plane could not read: /metrics is a failed scrape (not
// zeros that would read as counter resets); /v1/stats says why.
TEST_F(AdminServerTest, UnreadableCountersFailTheScrape)
{
    start();
    view_.set_counters_error("node counters: stats map: Bad file descriptor");
    auto res = client_->Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_NE(res->body.find("data-plane counters unreadable: node counters"), std::string::npos) << res->body;
    auto [status, s] = get("/v1/stats");
    ASSERT_EQ(status, 200);
    EXPECT_EQ(s["counters_error"], "node counters: stats map: Bad file descriptor");
    view_.set_counters_error("");
    EXPECT_EQ(client_->Get("/metrics")->status, 200);
}

// /v1/fingerprints maps every service to its fingerprint.
TEST_F(AdminServerTest, Fingerprints)
{
    start();
    auto [status, body] = get("/v1/fingerprints");
    ASSERT_EQ(status, 200);
    EXPECT_EQ(body["fingerprints"], (json{{"web", "0123456789abcdef"}, {"odd\"name\\x", "fedcba9876543210"}}));
}

// /v1/lookup passes the tuple to the view; bad parameters are 400, a
// tuple that is no VIP is 404 with the view's message.
TEST_F(AdminServerTest, Lookup)
{
    start();
    auto [status, body] = get("/v1/lookup?client=198.51.100.7&client_port=40000&vip=192.0.2.10&vip_port=80");
    ASSERT_EQ(status, 200);
    EXPECT_EQ(body["service"], "web");
    EXPECT_EQ(body["backend"], "10.0.0.2");
    EXPECT_EQ(body["reason"], "maglev");
    EXPECT_EQ(body["slot"], 4242);
    EXPECT_EQ(body["request"]["protocol"], "tcp");
    EXPECT_FALSE(body.contains("connection_table_error"));
    auto [unread_status, unread] = get("/v1/lookup?client=198.51.100.7&client_port=9999&vip=192.0.2.10&vip_port=80");
    ASSERT_EQ(unread_status, 200);
    EXPECT_EQ(unread["reason"], "maglev");
    EXPECT_EQ(unread["connection_table_error"], "clock program failed");
    EXPECT_EQ(get("/v1/lookup?client=198.51.100.7&client_port=1&vip=192.0.2.10").first, 400);
    EXPECT_EQ(get("/v1/lookup?client=nohost&client_port=1&vip=192.0.2.10&vip_port=80").first, 400);
    EXPECT_EQ(get("/v1/lookup?client=198.51.100.7&client_port=70000&vip=192.0.2.10&vip_port=80").first, 400);
    EXPECT_EQ(get("/v1/lookup?client=198.51.100.7&client_port=1&vip=192.0.2.10&vip_port=80&protocol=sctp").first, 400);
    auto [miss, error] = get("/v1/lookup?client=198.51.100.7&client_port=1&vip=192.0.2.99&vip_port=80&protocol=udp");
    EXPECT_EQ(miss, 404);
    EXPECT_EQ(error["error"], "no service on 192.0.2.99:80/udp");
}

// Unknown paths are a JSON 404, a wrong method a 405 naming the allowed one.
TEST_F(AdminServerTest, UnknownPathAndWrongMethod)
{
    start();
    auto [status, body] = get("/v2/nothing");
    EXPECT_EQ(status, 404);
    EXPECT_TRUE(body["error"].is_string());
    auto res = client_->Get("/v1/reload");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 405);
    EXPECT_EQ(res->get_header_value("Allow"), "POST");
    EXPECT_EQ(post("/v1/services").first, 405);
    EXPECT_EQ(parse(client_->Delete("/v1/services/web")).first, 405);
}

// /healthz and /readyz follow the view; readyz is 503 while not ready.
TEST_F(AdminServerTest, HealthAndReadiness)
{
    start();
    EXPECT_EQ(get("/healthz"), std::make_pair(200, json{{"status", "ok"}}));
    EXPECT_EQ(get("/readyz"), std::make_pair(200, json{{"status", "ready"}}));
    view_.set_ready(false);
    EXPECT_EQ(get("/readyz"), std::make_pair(503, json{{"status", "not ready"}}));
}

// /metrics is Prometheus text 0.0.4.
TEST_F(AdminServerTest, MetricsEndpoint)
{
    start();
    auto res = client_->Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(res->body.find("sluice_rx_packets_total "), std::string::npos);
}

// With a token set, every endpoint but /healthz wants it: 401 (JSON, with
// WWW-Authenticate) without or with a wrong one, 200 with the right one.
TEST_F(AdminServerTest, TokenEnforcedWhenSet)
{
    start("s3cret-token");
    for (const char* path : {"/v1/services", "/v1/stats", "/metrics", "/readyz", "/v1/fingerprints"}) {
        auto res = client_->Get(path);
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 401) << path;
        EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer realm=\"sluice\"");
        EXPECT_TRUE(json::parse(res->body, nullptr, false)["error"].is_string());
    }
    EXPECT_EQ(post("/v1/reload").first, 401);
    EXPECT_EQ(get("/v1/services", {{"Authorization", "Bearer wrong-token!"}}).first, 401);
    EXPECT_EQ(get("/v1/services", {{"Authorization", "Bearer s3cret-toke"}}).first, 401);
    EXPECT_EQ(get("/v1/services", {{"Authorization", "Basic s3cret-token"}}).first, 401);
    EXPECT_EQ(get("/v1/services", {{"Authorization", "Bearer s3cret-token"}}).first, 200);
    EXPECT_EQ(get("/healthz").first, 200);
}

// Off loopback, start() refuses without a token and says what to set; with
// a token it starts. Loopback needs none.
TEST(AdminServerStart, TokenRequiredOffLoopback)
{
    FakeView view;
    AdminSettings settings;
    settings.listen = "0.0.0.0";
    settings.port = 0;
    AdminServer refused(view, settings);
    auto result = refused.start();
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("without a bearer token"), std::string::npos) << result.error();
    EXPECT_NE(result.error().find("daemon.admin.token_file"), std::string::npos) << result.error();

    settings.token = "";
    EXPECT_FALSE(AdminServer(view, settings).start().ok());
    settings.token = "t";
    AdminServer with_token(view, settings);
    EXPECT_TRUE(with_token.start().ok());

    EXPECT_TRUE(is_loopback_address("127.0.0.2").value());
    EXPECT_TRUE(is_loopback_address("::1").value());
    EXPECT_TRUE(is_loopback_address("::ffff:127.0.0.1").value());
    EXPECT_FALSE(is_loopback_address("::").value());
    EXPECT_FALSE(is_loopback_address("localhost").ok());
}

// A port already taken is a start error naming the address, not a crash.
TEST(AdminServerStart, BindFailureIsAnError)
{
    FakeView view;
    AdminSettings settings;
    settings.port = 0;
    AdminServer first(view, settings);
    ASSERT_TRUE(first.start().ok());
    settings.port = first.port();
    AdminServer second(view, settings);
    auto result = second.start();
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("127.0.0.1:" + std::to_string(first.port())), std::string::npos) << result.error();
}

// start/stop are safe in any order: stop twice, destroy unstarted, and a
// second start() is an error instead of a half-reused httplib server.
TEST(AdminServerStart, Lifecycle)
{
    FakeView view;
    AdminSettings settings;
    settings.port = 0;
    { AdminServer never_started(view, settings); }
    AdminServer server(view, settings);
    ASSERT_TRUE(server.start().ok());
    server.stop();
    server.stop();
    EXPECT_FALSE(server.start().ok());
}

// With settings.cpus, the listener and every request thread (they inherit
// its name, "sluice-admin") may run only there: never on a worker core.
TEST(AdminServerStart, ThreadsPinnedToControlCpus)
{
    FakeView view;
    AdminSettings settings;
    settings.port = 0;
    settings.cpus = {0};
    AdminServer server(view, settings);
    ASSERT_TRUE(server.start().ok());
    httplib::Client client("127.0.0.1", server.port());
    ASSERT_TRUE(client.Get("/healthz"));  // the pool exists once a request ran
    size_t admin_threads = 0;
    DIR* tasks = opendir("/proc/self/task");
    ASSERT_NE(tasks, nullptr);
    while (dirent* entry = readdir(tasks)) {
        if (entry->d_name[0] == '.') continue;
        const std::string dir = std::string("/proc/self/task/") + entry->d_name;
        std::string comm;
        std::getline(std::ifstream(dir + "/comm"), comm);
        if (comm != "sluice-admin") continue;
        ++admin_threads;
        std::ifstream status(dir + "/status");
        for (std::string line; std::getline(status, line);) {
            if (line.rfind("Cpus_allowed_list:", 0) == 0) {
                EXPECT_EQ(line, "Cpus_allowed_list:\t0") << dir;
            }
        }
    }
    closedir(tasks);
    EXPECT_GE(admin_threads, 1u + settings.threads);
}

// The token file's first line, trimmed, is the token; an empty file is refused.
TEST(AdminSettingsTest, TokenFile)
{
    char path[] = "/tmp/sluice-token-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "  abc123 \nignored\n", 18), 18);
    close(fd);
    EXPECT_EQ(read_token_file(path).value(), "abc123");
    FILE* f = fopen(path, "w");
    fclose(f);
    EXPECT_FALSE(read_token_file(path).ok());
    unlink(path);
    EXPECT_FALSE(read_token_file("/nonexistent/token").ok());
    EXPECT_TRUE(tokens_equal("abc", "abc"));
    EXPECT_FALSE(tokens_equal("abd", "abc"));
    EXPECT_FALSE(tokens_equal("abcd", "abc"));
    EXPECT_FALSE(tokens_equal("", "abc"));
}

}  // namespace
}  // namespace sluice::api
