// sluiced: the sluice daemon's entry point. --check-config validates a
// config; --config runs the data plane it selects (DPDK today) with the
// services and static backends it names until SIGTERM or SIGINT.
#include <CLI/CLI.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/loader.h"
#include "driver/dpdk_driver.h"
#include "driver/forwarding_plan.h"
#include "driver/stats_format.h"

#ifndef SLUICE_VERSION
#error "SLUICE_VERSION must be defined by the build (meson.project_version())"
#endif

namespace {

using sluice::driver::LogSeverity;

// Exit codes. 2 for a refused config is the contract in DESIGN.md; 64 is
// sysexits.h's EX_USAGE, for every use this binary cannot serve; 1 is a
// start-up failure (EAL, ports, memory).
constexpr int kExitOk = 0;
constexpr int kExitFatal = 1;
constexpr int kExitBadConfig = 2;
constexpr int kExitUsage = 64;

// ARP/ND answers and the kernel's frames (TAP) wait for this poll: keep it short.
constexpr auto kPollInterval = std::chrono::milliseconds(1);
constexpr auto kSummaryInterval = std::chrono::seconds(5);

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int signo) { g_signal.store(signo); }

// Prints the loader's diagnostics; true when the config was accepted.
bool report_load(const std::string& path, const sluice::config::LoadResult& result)
{
    size_t errors = 0;
    size_t warnings = 0;
    for (const auto& diagnostic : result.diagnostics) {
        std::cerr << diagnostic.to_string() << '\n';
        (diagnostic.severity == sluice::config::Severity::kError ? errors : warnings) += 1;
    }
    if (!result.ok()) {
        std::cerr << path << ": " << errors << (errors == 1 ? " error" : " errors") << ", " << warnings
                  << (warnings == 1 ? " warning" : " warnings") << "; configuration refused\n";
    }
    return result.ok();
}

int check_config(const std::string& path)
{
    const sluice::config::LoadResult result = sluice::config::load_file(path);
    if (!report_load(path, result)) return kExitBadConfig;
    const size_t services = result.config->services.size();
    std::cout << path << ": ok (" << services << (services == 1 ? " service" : " services") << ")\n";
    return kExitOk;
}

// Log lines on stderr: "2026-11-22T01:02:03Z info: message". Written from
// the control thread only.
class Logger {
public:
    explicit Logger(sluice::model::LogLevel level) : level_(level) {}

    void operator()(LogSeverity severity, std::string_view message) const
    {
        if (!enabled(severity)) return;
        static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
        char when[32];
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        gmtime_r(&now, &tm);
        std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        std::cerr << when << ' ' << kNames[static_cast<int>(severity)] << ": " << message << std::endl;
    }

private:
    bool enabled(LogSeverity severity) const
    {
        using sluice::model::LogLevel;
        switch (severity) {
        case LogSeverity::kDebug: return level_ <= LogLevel::kDebug;
        case LogSeverity::kInfo: return level_ <= LogLevel::kInfo;
        case LogSeverity::kWarn: return level_ <= LogLevel::kWarn;
        case LogSeverity::kError: return true;
        }
        return true;
    }
    sluice::model::LogLevel level_;
};

// "--static-neighbor 192.0.2.5=02:00:00:00:00:05", repeatable.
bool parse_static_neighbors(const std::vector<std::string>& specs,
                            std::map<sluice::model::IpAddress, sluice::model::MacAddress>& out)
{
    for (const std::string& spec : specs) {
        const auto eq = spec.find('=');
        auto ip = sluice::model::parse_ip_address(spec.substr(0, eq));
        if (eq == std::string::npos || !ip) {
            std::cerr << "sluiced: --static-neighbor '" << spec << "': want ADDRESS=MAC"
                      << (ip ? "" : " (" + ip.error() + ")") << '\n';
            return false;
        }
        auto mac = sluice::model::parse_mac_address(spec.substr(eq + 1));
        if (!mac) {
            std::cerr << "sluiced: --static-neighbor '" << spec << "': " << mac.error() << '\n';
            return false;
        }
        out[*ip] = *mac;
    }
    return true;
}

int run(const std::string& path, const std::vector<std::string>& neighbor_specs)
{
    const sluice::config::LoadResult result = sluice::config::load_file(path);
    if (!report_load(path, result)) return kExitBadConfig;
    const sluice::model::Config& config = *result.config;
    const Logger log(config.daemon.log_level);
    std::map<sluice::model::IpAddress, sluice::model::MacAddress> neighbors;
    if (!parse_static_neighbors(neighbor_specs, neighbors)) return kExitUsage;

    if (config.dataplane.type == sluice::model::DataplaneType::kXdp) {
        std::cerr << "sluiced: the XDP data plane is not built yet; use dataplane.type = \"dpdk\"\n";
        return kExitUsage;
    }
    if (config.dataplane.type == sluice::model::DataplaneType::kAuto) {
        log(LogSeverity::kWarn, "dataplane.type = \"auto\": the XDP fallback is not built yet, trying DPDK only");
    }

    sluice::driver::PlanBuilder planner;
    auto plan = planner.build(config);
    if (!plan) {
        log(LogSeverity::kError, "cannot build the forwarding plan: " + plan.error());
        return kExitFatal;
    }
    for (const std::string& w : plan->warnings) log(LogSeverity::kWarn, w);

    // Handlers before the EAL starts: a SIGTERM during a slow start-up still
    // ends in an orderly stop.
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto driver = std::make_unique<sluice::driver::DpdkDriver>(
        *config.dataplane.dpdk, std::move(neighbors),
        [&log](LogSeverity severity, std::string_view message) { log(severity, message); });
    auto started = driver->start(*plan);
    if (!started) {
        log(LogSeverity::kError, "cannot start the DPDK data plane: " + started.error());
        driver.reset();  // releases what did start (ports, EAL)
        return kExitFatal;
    }
    log(LogSeverity::kInfo, "running; SIGTERM or SIGINT stops");

    auto next_summary = std::chrono::steady_clock::now() + kSummaryInterval;
    while (g_signal.load() == 0) {
        std::this_thread::sleep_for(kPollInterval);
        driver->poll();
        if (std::chrono::steady_clock::now() >= next_summary) {
            log(LogSeverity::kInfo, "stats: " + sluice::driver::format_summary(driver->stats()));
            next_summary += kSummaryInterval;
        }
    }
    log(LogSeverity::kInfo, std::string("stopping on ") + (g_signal.load() == SIGINT ? "SIGINT" : "SIGTERM"));
    driver->stop();
    // Final counters on stdout, one "name value" per line, for operators
    // and scripts alike.
    std::cout << "final counters:\n";
    for (const std::string& line : sluice::driver::format_counters(driver->stats(), *plan)) {
        std::cout << "  " << line << '\n';
    }
    std::cout.flush();
    driver.reset();
    log(LogSeverity::kInfo, "stopped");
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv)
{
    CLI::App app{"sluiced: the sluice L4 load balancer daemon"};
    app.set_version_flag("--version", std::string("sluiced ") + SLUICE_VERSION);
    std::string check_path;
    std::string config_path;
    std::vector<std::string> neighbors;
    auto* check = app.add_option("--check-config", check_path, "validate FILE and exit: 0 if valid, 2 if not")
                      ->type_name("FILE");
    auto* run_opt = app.add_option("--config", config_path, "run the daemon with FILE until SIGTERM")
                        ->type_name("FILE");
    app.add_option("--static-neighbor", neighbors,
                   "next-hop MAC that needs no ARP/ND, ADDRESS=MAC (repeatable)")
        ->type_name("ADDRESS=MAC")
        ->needs(run_opt);
    check->excludes(run_opt);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);  // prints help, version or the parse error
        return code == 0 ? kExitOk : kExitUsage;
    }

    if (!check_path.empty()) return check_config(check_path);
    if (!config_path.empty()) return run(config_path, neighbors);
    std::cerr << "sluiced: nothing to do: give --config FILE, --check-config FILE or --version\n";
    return kExitUsage;
}
