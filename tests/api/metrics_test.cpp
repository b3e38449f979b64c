// /metrics text: every promised family present, labels escaped, and the
// whole output accepted by the real promtool.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "api/metrics.h"
#include "fake_view.h"
#include "test_env.h"

namespace sluice::api {
namespace {

std::string find_promtool()
{
    for (const char* path : {"/usr/bin/promtool", "/usr/local/bin/promtool", "/bin/promtool"}) {
        if (access(path, X_OK) == 0) return path;
    }
    return "";
}

// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& promtool, const std::string& text)
{
    char path[] = "/tmp/sluice-metrics-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return {-1, "mkstemp failed"};
    close(fd);
    std::ofstream(path) << text;
    const std::string command = promtool + " check metrics < " + path + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    std::string output;
    std::array<char, 4096> buffer{};
    while (pipe != nullptr && fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
    const int status = pipe != nullptr ? pclose(pipe) : -1;
    unlink(path);
    return {status, output};
}

// Runs `command` (stderr included); returns its exit status and output.
std::pair<int, std::string> run_command(const std::string& command)
{
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    std::string output;
    std::array<char, 4096> buffer{};
    while (pipe != nullptr && fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
    return {pipe != nullptr ? pclose(pipe) : -1, output};
}

// Every family the issue names is exported with HELP and TYPE.
TEST(MetricsTest, EveryFamilyHasHelpAndType)
{
    testing::FakeView view;
    const std::string text = render_metrics(view.services(), view.stats());
    for (const char* family :
         {"sluice_rx_packets_total", "sluice_tx_packets_total", "sluice_rx_bytes_total", "sluice_tx_bytes_total",
          "sluice_exception_packets_total", "sluice_control_packets_total", "sluice_drops_total",
          "sluice_conn_hits_total", "sluice_conn_misses_total", "sluice_conn_evictions_total",
          "sluice_vip_packets_total", "sluice_vip_bytes_total", "sluice_backend_packets_total",
          "sluice_backend_bytes_total", "sluice_backend_up", "sluice_backend_draining",
          "sluice_service_all_backends_down", "sluice_discovery_up",
          "sluice_discovery_last_update_timestamp_seconds", "sluice_table_rebuilds_total",
          "sluice_publications_total", "sluice_publish_duration_seconds", "sluice_reloads_total", "sluice_info",
          "sluice_conn_table_info", "sluice_conn_table_capacity", "sluice_conn_table_live_entries",
          "sluice_worker_rx_packets_total", "sluice_worker_tx_packets_total", "sluice_worker_drops_total",
          "sluice_worker_busy_seconds_total", "sluice_port_rx_packets_total", "sluice_port_tx_packets_total",
          "sluice_port_rx_bytes_total", "sluice_port_tx_bytes_total", "sluice_port_rx_missed_total",
          "sluice_port_rx_errors_total", "sluice_port_rx_nombuf_total", "sluice_port_tx_errors_total"}) {
        EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
        EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
    }
    // One drops series per reason of the X-macro, zeros included.
    EXPECT_NE(text.find("sluice_drops_total{reason=\"no_backend\"} 30\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_drops_total{reason=\"control_full\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_backend_up{service=\"web\",backend=\"10.0.0.1\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_backend_up{service=\"web\",backend=\"[2001:db8::3]:8080\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_reloads_total{result=\"failed\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_publish_duration_seconds 0.0125\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_conn_table_info{layout=\"per-worker\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_conn_table_capacity{partition=\"1\"} 1048576\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_conn_table_live_entries{partition=\"0\"} 1200\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_conn_table_live_entries{partition=\"1\"} 35000\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_worker_tx_packets_total{worker=\"1\",cpu=\"3\"} 450\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_worker_drops_total{worker=\"0\",cpu=\"2\"} 5\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_worker_busy_seconds_total{worker=\"0\",cpu=\"2\"} 1.51\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_port_rx_packets_total{port=\"lan\"} 1500\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_port_rx_missed_total{port=\"lan\"} 17\n"), std::string::npos);
    EXPECT_NE(text.find("sluice_port_rx_nombuf_total{port=\"lan\"} 2\n"), std::string::npos);
    // No busy time for a worker that does not measure it (XDP).
    EXPECT_EQ(text.find("sluice_worker_busy_seconds_total{worker=\"1\""), std::string::npos);
    EXPECT_NE(text.find("sluice_discovery_last_update_timestamp_seconds{service=\"web\",source=\"static\"} 1795000000\n"),
              std::string::npos);
}

// Quotes, backslashes and newlines in label values are escaped.
TEST(MetricsTest, LabelValuesEscaped)
{
    EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    testing::FakeView view;
    const std::string text = render_metrics(view.services(), view.stats());
    EXPECT_NE(text.find("sluice_service_all_backends_down{service=\"odd\\\"name\\\\x\"} 1\n"), std::string::npos)
        << text;
}

// promtool, the reference parser and linter, accepts the output, odd
// service names included.
TEST(MetricsTest, PromtoolAccepts)
{
    const std::string promtool = find_promtool();
    SLUICE_REQUIRE(!promtool.empty(), "promtool (package prometheus)");
    testing::FakeView view;
    auto [status, output] = promtool_check(promtool, render_metrics(view.services(), view.stats()));
    EXPECT_EQ(status, 0) << output;
    EXPECT_EQ(output, "") << "promtool lint findings";
    // And with no services at all (a fresh daemon).
    auto [empty_status, empty_output] = promtool_check(promtool, render_metrics({}, view.stats()));
    EXPECT_EQ(empty_status, 0) << empty_output;
}

// promtool really catches what we test for: a broken exposition fails.
TEST(MetricsTest, PromtoolRejectsBrokenText)
{
    const std::string promtool = find_promtool();
    SLUICE_REQUIRE(!promtool.empty(), "promtool (package prometheus)");
    auto [status, output] = promtool_check(promtool, "# TYPE x counter\nx{a=\"unterminated} 1\n");
    EXPECT_NE(status, 0) << output;
}

// The alerting rules shipped for operators (config/prometheus/) load, and
// each alert fires and stays quiet where tests/api/alerts_test.yml says.
TEST(AlertRules, PromtoolChecksAndTestsThem)
{
    const std::string promtool = find_promtool();
    SLUICE_REQUIRE(!promtool.empty(), "promtool (package prometheus)");
    const std::string rules = sluice::testing::source_path("config/prometheus/sluice-alerts.yml");
    auto [check_status, check_output] = run_command(promtool + " check rules " + rules);
    EXPECT_EQ(check_status, 0) << check_output;
    EXPECT_NE(check_output.find("SUCCESS: 10 rules found"), std::string::npos) << check_output;
    auto [test_status, test_output] =
        run_command(promtool + " test rules " + sluice::testing::source_path("tests/api/alerts_test.yml"));
    EXPECT_EQ(test_status, 0) << test_output;
}

// Every sluice_* series the rules query is one /metrics exports: a renamed
// metric cannot leave an alert that never fires.
TEST(AlertRules, NameOnlyExportedMetrics)
{
    std::ifstream in(sluice::testing::source_path("config/prometheus/sluice-alerts.yml"));
    ASSERT_TRUE(in) << "config/prometheus/sluice-alerts.yml";
    const std::string rules((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    testing::FakeView view;
    const std::string text = render_metrics(view.services(), view.stats());
    size_t names = 0;
    for (size_t at = rules.find("sluice_"); at != std::string::npos; at = rules.find("sluice_", at + 1)) {
        if (at > 0 && (std::isalnum(static_cast<unsigned char>(rules[at - 1])) || rules[at - 1] == '_')) continue;
        size_t end = at;
        while (end < rules.size() && (std::islower(static_cast<unsigned char>(rules[end])) ||
                                      std::isdigit(static_cast<unsigned char>(rules[end])) || rules[end] == '_'))
            ++end;
        const std::string name = rules.substr(at, end - at);
        if (name == "sluice_") continue;  // prose
        ++names;
        EXPECT_NE(text.find("# TYPE " + name + " "), std::string::npos) << name << " is not exported";
    }
    EXPECT_GE(names, 12u);
}

}  // namespace
}  // namespace sluice::api
