// sluicectl run as a real subprocess against the admin API server over a
// fake ControlPlaneView: tables, --json, watch and every exit code.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/admin_server.h"
#include "fake_view.h"
#include "test_env.h"

namespace sluice::api {
namespace {

using nlohmann::json;

struct CtlRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Runs sluicectl with `args`, stdout and stderr captured through files,
// killed after 20 s so a hang fails the test instead of the suite.
CtlRun sluicectl(const std::vector<std::string>& args)
{
    const char* exe = std::getenv("SLUICECTL");
    if (exe == nullptr) return CtlRun{-1, "", "SLUICECTL not set (run through meson test)"};
    char out_path[] = "/tmp/sluicectl-out-XXXXXX";
    char err_path[] = "/tmp/sluicectl-err-XXXXXX";
    const int out_fd = mkstemp(out_path);
    const int err_fd = mkstemp(err_path);
    std::vector<char*> argv{const_cast<char*>(exe)};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        unsetenv("SLUICE_API");
        unsetenv("SLUICE_TOKEN_FILE");
        execv(exe, argv.data());
        _exit(127);
    }
    close(out_fd);
    close(err_fd);
    CtlRun run;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            run.err = "timed out; ";
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = slurp(out_path);
    run.err += slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    return run;
}

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// A loopback port with nothing listening: bound, never listened, closed.
uint16_t closed_port()
{
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

class SluicectlTest : public ::testing::Test {
protected:
    void SetUp() override { start(std::nullopt); }

    void start(std::optional<std::string> token)
    {
        server_.reset();
        AdminSettings settings;
        settings.port = 0;
        settings.token = std::move(token);
        server_ = std::make_unique<AdminServer>(view_, settings);
        ASSERT_TRUE(server_->start().ok());
        api_ = "http://127.0.0.1:" + std::to_string(server_->port());
    }

    CtlRun ctl(std::vector<std::string> args)
    {
        args.insert(args.begin(), {"--api", api_});
        return sluicectl(args);
    }

    testing::FakeView view_;
    std::unique_ptr<AdminServer> server_;
    std::string api_;
};

// `services` prints a header and one row per service, columns aligned:
// every left-aligned column starts at the same offset on every line.
TEST_F(SluicectlTest, ServicesTableAligned)
{
    const CtlRun run = ctl({"services"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto rows = lines(run.out);
    ASSERT_EQ(rows.size(), 3u) << run.out;
    for (const char* column : {"VIP", "PROTO", "FWD", "DISCOVERY", "FINGERPRINT"}) {
        const size_t at = rows[0].find(column);
        ASSERT_NE(at, std::string::npos) << column;
        for (const std::string& row : rows) {
            EXPECT_EQ(row[at - 1], ' ') << column << " in: " << row;
            EXPECT_NE(row[at], ' ') << column << " in: " << row;
        }
    }
    EXPECT_NE(rows[1].find("192.0.2.10:80"), std::string::npos);
    EXPECT_NE(rows[2].find("(ALL DOWN)"), std::string::npos) << rows[2];
    for (const std::string& row : rows) EXPECT_NE(row.back(), ' ') << "trailing blank: " << row;
}

// `backends SERVICE` aligns its columns too, right-aligning numbers.
TEST_F(SluicectlTest, BackendsTableAligned)
{
    const CtlRun run = ctl({"backends", "web"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto rows = lines(run.out);
    ASSERT_EQ(rows.size(), 4u) << run.out;
    const size_t health = rows[0].find("HEALTH");
    const size_t packets_end = rows[0].find("PACKETS") + std::string("PACKETS").size();
    for (const std::string& row : rows) {
        EXPECT_NE(row[health], ' ') << row;
        EXPECT_EQ(row[health - 1], ' ') << row;
        EXPECT_NE(row[packets_end - 1], ' ') << "numbers end in one column: " << row;
        EXPECT_EQ(row[packets_end], ' ') << row;
    }
    EXPECT_NE(rows[3].find("[2001:db8::3]:8080"), std::string::npos);
    EXPECT_NE(rows[3].find("connect: connection refused"), std::string::npos);
}

// --json prints the API's JSON, which parses, for each read command.
TEST_F(SluicectlTest, JsonParses)
{
    for (const auto& args : std::vector<std::vector<std::string>>{{"--json", "services"},
                                                                  {"--json", "backends", "web"},
                                                                  {"--json", "stats"},
                                                                  {"--json", "status"},
                                                                  {"--json", "fingerprint", "web"},
                                                                  {"--json", "lookup", "198.51.100.7:4000",
                                                                   "192.0.2.10:80"}}) {
        const CtlRun run = ctl(args);
        ASSERT_EQ(run.exit_code, 0) << args[1] << ": " << run.err;
        const json body = json::parse(run.out, nullptr, false);
        EXPECT_FALSE(body.is_discarded()) << args[1] << ": " << run.out;
    }
    const CtlRun run = ctl({"--json", "services"});
    EXPECT_EQ(json::parse(run.out)["services"][0]["name"], "web");
    EXPECT_EQ(json::parse(ctl({"--json", "fingerprint", "web"}).out),
              (json{{"fingerprints", {{"web", "0123456789abcdef"}}}}));
}

// drain and undrain reach the view and exit 0; an unknown backend exits 1
// with the API's message.
TEST_F(SluicectlTest, DrainUndrainAndUnknownBackend)
{
    EXPECT_EQ(ctl({"drain", "web", "10.0.0.2"}).exit_code, 0);
    EXPECT_EQ(ctl({"undrain", "web", "10.0.0.2"}).exit_code, 0);
    ASSERT_EQ(view_.drains().size(), 2u);
    EXPECT_EQ(view_.drains()[0], std::make_pair(std::string("web/10.0.0.2"), true));
    const CtlRun unknown = ctl({"drain", "web", "10.9.9.9"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_NE(unknown.err.find("has no backend '10.9.9.9'"), std::string::npos) << unknown.err;
    EXPECT_EQ(ctl({"backends", "nope"}).exit_code, 1);
    EXPECT_EQ(ctl({"fingerprint", "nope"}).exit_code, 1);
}

// connections: one row per backend with its live connection entries.
TEST_F(SluicectlTest, ConnectionsPerBackend)
{
    const CtlRun run = ctl({"connections", "web"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto rows = lines(run.out);
    ASSERT_EQ(rows.size(), 5u) << run.out;  // header, three backends, the walk's time
    EXPECT_NE(rows[1].find("10.0.0.1"), std::string::npos) << run.out;
    EXPECT_NE(rows[1].find("in table"), std::string::npos) << run.out;
    EXPECT_EQ(rows[1].substr(rows[1].size() - 2), "11") << run.out;  // id 1
    EXPECT_NE(rows[3].find("[2001:db8::3]:8080"), std::string::npos) << run.out;
    EXPECT_NE(rows[4].find("0.0 s old; the walk took 2.0 ms"), std::string::npos) << run.out;
    EXPECT_EQ(ctl({"connections", "nope"}).exit_code, 1);
    const json all = json::parse(ctl({"--json", "connections"}).out);
    EXPECT_EQ(all["services"].size(), 2u);
}

// drain --wait returns once the backend has no connection left, printing
// the count as it falls; a backend that keeps some fails after the wait.
TEST_F(SluicectlTest, DrainWaitsForConnectionsToEnd)
{
    const CtlRun run = ctl({"drain", "web", "10.0.0.2", "--wait", "--wait-interval", "0.01", "--wait-timeout", "10"});
    ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
    EXPECT_NE(run.out.find("web/10.0.0.2: 3 connections left"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("web/10.0.0.2: 1 connection left"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("web/10.0.0.2: 0 connections left"), std::string::npos) << run.out;
    view_.set_stuck_connections(true);
    const CtlRun stuck = ctl({"drain", "web", "10.0.0.1", "--wait", "--wait-interval", "0.01", "--wait-timeout", "0.1"});
    EXPECT_EQ(stuck.exit_code, 1);
    EXPECT_NE(stuck.err.find("web/10.0.0.1 still has 3 connections after"), std::string::npos) << stuck.err;
    const CtlRun json_run = ctl({"--json", "drain", "web", "10.0.0.1", "--wait", "--wait-timeout", "0"});
    EXPECT_EQ(json_run.exit_code, 1);
    const auto json_lines = lines(json_run.out);
    ASSERT_EQ(json_lines.size(), 2u) << json_run.out;  // the drain's answer, then the wait's
    EXPECT_EQ(json::parse(json_lines[1])["connections"], 3);
    EXPECT_EQ(ctl({"drain", "web", "10.0.0.1", "--wait-timeout", "5"}).exit_code, 2) << "--wait-timeout needs --wait";
}

// reload: 0 when applied; 1 with the diagnostics on stderr when refused.
TEST_F(SluicectlTest, ReloadRefusedExitsOne)
{
    EXPECT_EQ(ctl({"reload"}).exit_code, 0);
    view_.set_reload_ok(false);
    const CtlRun run = ctl({"reload"});
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.err.find("12:3: error: unknown key 'prot'"), std::string::npos) << run.err;
}

// status exits 0 when ready and 1 when not.
TEST_F(SluicectlTest, StatusFollowsReadiness)
{
    const CtlRun ready = ctl({"status"});
    EXPECT_EQ(ready.exit_code, 0) << ready.err;
    EXPECT_NE(ready.out.find("dpdk, 4 workers"), std::string::npos) << ready.out;
    // How full the connection table is, and its fullest partition.
    EXPECT_NE(ready.out.find("per-worker, 2 x 1048576 entries, live ~36200 (1.7%), fullest: 1 at 3.3%"),
              std::string::npos)
        << ready.out;
    view_.set_ready(false);
    EXPECT_EQ(ctl({"status"}).exit_code, 1);
}

// lookup prints the chosen backend; a malformed tuple is a usage error (2).
TEST_F(SluicectlTest, Lookup)
{
    const CtlRun run = ctl({"lookup", "198.51.100.7:4000", "192.0.2.10:80"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.out.find("10.0.0.2"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("maglev"), std::string::npos) << run.out;
    EXPECT_EQ(ctl({"lookup", "198.51.100.7", "192.0.2.10:80"}).exit_code, 2);
    EXPECT_EQ(ctl({"lookup", "198.51.100.7:4000", "192.0.2.10:80", "--udp"}).exit_code, 1);  // no UDP VIP there
    // A connection table that could not be read: Maglev's pick is printed,
    // with a warning and exit 1, never as if it were the whole answer.
    const CtlRun unread = ctl({"lookup", "198.51.100.7:9999", "192.0.2.10:80"});
    EXPECT_EQ(unread.exit_code, 1);
    EXPECT_NE(unread.out.find("10.0.0.2"), std::string::npos) << unread.out;
    EXPECT_NE(unread.err.find("connection table not read (clock program failed)"), std::string::npos) << unread.err;
}

// workers: rates over the interval, each worker's share of what arrived
// (3:1 in the fake), busy time where measured and "-" where not.
TEST_F(SluicectlTest, WorkersShowsShareAndBusy)
{
    const CtlRun run = ctl({"workers", "--interval", "0.05"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto rows = lines(run.out);
    ASSERT_EQ(rows.size(), 4u) << run.out;  // the note, the header, two workers
    EXPECT_NE(rows[1].find("RX SHARE"), std::string::npos) << run.out;
    EXPECT_NE(rows[2].find("75.0%"), std::string::npos) << run.out;
    EXPECT_NE(rows[3].find("25.0%"), std::string::npos) << run.out;
    EXPECT_EQ(rows[3].substr(rows[3].size() - 1), "-") << run.out;
    const CtlRun json_run = ctl({"--json", "workers", "--interval", "0.05"});
    ASSERT_EQ(json_run.exit_code, 0) << json_run.err;
    const json j = json::parse(json_run.out);
    ASSERT_EQ(j["workers"].size(), 2u);
    EXPECT_DOUBLE_EQ(j["workers"][0]["rx_share"].get<double>(), 0.75);
    EXPECT_TRUE(j["workers"][0]["busy"].is_number());
    EXPECT_GE(j["workers"][0]["busy"].get<double>(), 0.0);
    EXPECT_LE(j["workers"][0]["busy"].get<double>(), 1.0);
    EXPECT_TRUE(j["workers"][1]["busy"].is_null());
    EXPECT_GT(j["interval_seconds"].get<double>(), 0.04);
}

// Unreadable data-plane counters: stats prints what it got and warns.
TEST_F(SluicectlTest, StatsWarnsWhenCountersUnreadable)
{
    view_.set_counters_error("node counters: stats map: Bad file descriptor");
    const CtlRun run = ctl({"stats"});
    EXPECT_NE(run.err.find("counters could not be read (the figures are not its own): node counters"),
              std::string::npos)
        << run.err;
    view_.set_counters_error("");
    EXPECT_EQ(ctl({"stats"}).err, "");
}

// A table that could not be read says so instead of a made-up figure.
TEST_F(SluicectlTest, StatsSaysWhenConnectionTableUnread)
{
    view_.set_conn_table_error("connection table not judged: its clock is unreadable: test");
    const CtlRun run = ctl({"stats"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.out.find("connection table: not read: connection table not judged"), std::string::npos) << run.out;
}

// stats --watch --count 2 prints two samples (the second with rates) and ends.
TEST_F(SluicectlTest, StatsWatchCountTwo)
{
    const CtlRun run = ctl({"stats", "--watch", "--interval", "0.1", "--count", "2"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    size_t samples = 0;
    for (size_t at = 0; (at = run.out.find("COUNTER", at)) != std::string::npos; ++at) ++samples;
    EXPECT_EQ(samples, 2u) << run.out;
    EXPECT_NE(run.out.find("PER SECOND"), std::string::npos);
    EXPECT_NE(run.out.find("drops.no_backend"), std::string::npos);
    EXPECT_NE(run.out.find("connection table: per-worker, 2 x 1048576 entries"), std::string::npos) << run.out;
    // The port's NIC drops, with their rate (10 more per sample in the fake).
    size_t missed = run.out.find("port.lan.rx_missed");
    ASSERT_NE(missed, std::string::npos) << run.out;
    missed = run.out.find("port.lan.rx_missed", missed + 1);  // the second sample's row has a rate
    ASSERT_NE(missed, std::string::npos) << run.out;
    const std::string row = run.out.substr(missed, run.out.find('\n', missed) - missed);
    EXPECT_EQ(row.find(" 0.0"), std::string::npos) << row;
    EXPECT_NE(run.out.find("port.lan.rx_nombuf"), std::string::npos) << run.out;
    EXPECT_EQ(run.out.find("port.lan.rx_errors"), std::string::npos) << "zero errors are not listed";
    const CtlRun json_run = ctl({"--json", "stats", "--watch", "--interval", "0.1", "--count", "2"});
    ASSERT_EQ(json_run.exit_code, 0);
    const auto json_lines = lines(json_run.out);
    ASSERT_EQ(json_lines.size(), 2u) << json_run.out;
    for (const std::string& line : json_lines) EXPECT_TRUE(json::parse(line)["totals"].is_object());
}

// Usage errors exit 2: no command, unknown command, missing argument,
// --count without --watch, a URL that is not http.
TEST_F(SluicectlTest, UsageErrorsExitTwo)
{
    EXPECT_EQ(sluicectl({}).exit_code, 2);
    EXPECT_EQ(ctl({"frobnicate"}).exit_code, 2);
    EXPECT_EQ(ctl({"backends"}).exit_code, 2);
    EXPECT_EQ(ctl({"stats", "--count", "2"}).exit_code, 2);
    EXPECT_EQ(sluicectl({"--api", "ftp://127.0.0.1:1", "status"}).exit_code, 2);
    const CtlRun help = sluicectl({"--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("Exit codes:"), std::string::npos);
}

// Nothing listening on the port: exit 3 with a message that says what to do.
TEST_F(SluicectlTest, UnreachableExitsThree)
{
    const std::string url = "http://127.0.0.1:" + std::to_string(closed_port());
    const CtlRun run = sluicectl({"--api", url, "services"});
    EXPECT_EQ(run.exit_code, 3);
    EXPECT_NE(run.err.find("cannot reach sluiced at " + url + ": connection refused"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("is it running?"), std::string::npos) << run.err;
}

// With a token on the server: exit 4 without one or with a wrong one, 0 with
// the right one; /healthz-only paths are not enough for `status`.
TEST_F(SluicectlTest, UnauthorizedExitsFour)
{
    start("right-token");
    char path[] = "/tmp/sluicectl-token-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_EQ(write(fd, "wrong-token\n", 12), 12);
    close(fd);
    const CtlRun none = ctl({"services"});
    EXPECT_EQ(none.exit_code, 4);
    EXPECT_NE(none.err.find("--token-file"), std::string::npos) << none.err;
    EXPECT_EQ(ctl({"--token-file", path, "services"}).exit_code, 4);
    EXPECT_EQ(ctl({"status"}).exit_code, 4);
    std::ofstream(path) << "right-token\n";
    EXPECT_EQ(ctl({"--token-file", path, "services"}).exit_code, 0);
    unlink(path);
    EXPECT_EQ(ctl({"--token-file", "/nonexistent/token", "services"}).exit_code, 2);
}

// validate runs the config loader locally: the shipped example is 0, a
// broken file 2 with file:line:col diagnostics.
TEST(SluicectlValidate, ExampleOkBrokenTwo)
{
    const CtlRun ok = sluicectl({"validate", testing::source_path("config/example.toml")});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_NE(ok.out.find(": ok ("), std::string::npos) << ok.out;
    char path[] = "/tmp/sluicectl-bad-XXXXXX";
    const int fd = mkstemp(path);
    const std::string broken = "[daemon]\nlog_level = \"loud\"\n";
    ASSERT_EQ(write(fd, broken.data(), broken.size()), static_cast<ssize_t>(broken.size()));
    close(fd);
    const CtlRun bad = sluicectl({"validate", path});
    unlink(path);
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find(std::string(path) + ":2:13: error:"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace sluice::api
