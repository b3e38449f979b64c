// The control loop of sluiced (see run.h). Order matters twice: signals are
// blocked before the EAL or any source starts a thread, so only the signalfd
// sees them; and shutdown stops discovery and health (nothing new to
// publish), then the API (nothing new to ask), then the data plane.
#include "daemon/run.h"

#include <jemalloc/jemalloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "api/admin_server.h"
#include "api/admin_settings.h"
#include "config/loader.h"
#include "daemon/control_plane.h"
#include "daemon/log.h"
#include "daemon/service_manager.h"
#include "driver/dpdk_driver.h"
#include "driver/stats_format.h"
#include "driver/xdp_driver.h"

namespace sluice::daemon {
namespace {

using driver::LogSeverity;

// ARP/ND answers and the kernel's frames (TAP) wait for driver.poll(): keep it short.
constexpr auto kPollInterval = std::chrono::milliseconds(1);
constexpr auto kSummaryInterval = std::chrono::seconds(5);

// Logs the allocator in use. jemalloc is linked as malloc; being loaded is
// not proof that malloc() reaches it (interposition order), so a 1 MiB
// malloc must show up in jemalloc's own per-thread counter.
void log_allocator(spdlog::logger& log)
{
    const char* version = nullptr;
    size_t len = sizeof version;
    if (mallctl("version", &version, &len, nullptr, 0) != 0 || version == nullptr) {
        log.warn("component=daemon msg=\"jemalloc is linked but mallctl(version) failed\"");
        return;
    }
    auto allocated = [] {
        uint64_t n = 0;
        size_t size = sizeof n;
        return mallctl("thread.allocated", &n, &size, nullptr, 0) == 0 ? n : 0;
    };
    constexpr size_t kProbe = 1 << 20;
    const uint64_t before = allocated();
    void* volatile probe = std::malloc(kProbe);
    const bool in_use = allocated() - before >= kProbe;
    std::free(probe);
    if (in_use) {
        log.info("component=daemon msg=\"allocator\" allocator=jemalloc version={} malloc_is_jemalloc=true", version);
    } else {
        log.warn("component=daemon msg=\"allocator\" allocator=jemalloc version={} malloc_is_jemalloc=false", version);
    }
}

// Blocks the daemon's signals in this thread (and so in every thread
// started later) and returns a signalfd for them.
int block_signals()
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

bool report_load(spdlog::logger& log, const std::string& path, const config::LoadResult& result)
{
    size_t errors = 0;
    size_t warnings = 0;
    for (const auto& d : result.diagnostics) {
        const bool error = d.severity == config::Severity::kError;
        (error ? errors : warnings) += 1;
        log.log(error ? spdlog::level::err : spdlog::level::warn, "component=config diagnostic={}",
                quoted(d.to_string()));
    }
    if (!result.ok()) {
        // The summary keeps sluiced --check-config's wording, which scripts grep for.
        log.error("component=config msg={} file={} errors={} warnings={}",
                  quoted(path + ": " + std::to_string(errors) + (errors == 1 ? " error, " : " errors, ") +
                         std::to_string(warnings) + (warnings == 1 ? " warning" : " warnings") +
                         "; configuration refused"),
                  path, errors, warnings);
    }
    return result.ok();
}

}  // namespace

int run_daemon(const RunOptions& options)
{
    // Before any thread exists: the EAL, sources, health and the API inherit the mask.
    const int sigfd = block_signals();
    auto log = make_logger(model::LogLevel::kInfo);
    if (sigfd < 0) {
        log->error("component=daemon msg=\"signalfd: {}\"", std::strerror(errno));
        return kExitFatal;
    }
    const config::LoadResult loaded = config::load_file(options.config_path);
    if (!report_load(*log, options.config_path, loaded)) return kExitBadConfig;
    // A copy: with dataplane.type = "auto" it is set to the plane that
    // started, so the plan, the manager and every reload see that plane.
    model::Config config = *loaded.config;
    log->set_level(to_spdlog(config.daemon.log_level));
    log->info("component=daemon msg=\"starting\" version={} config={} services={}", options.version,
              options.config_path, config.services.size());
    log_allocator(*log);

    // The one place that knows which plane runs: everything above the
    // driver (manager, API, metrics) sees a DataplaneDriver, a plane name
    // and a worker count. "auto" tries DPDK, then XDP when DPDK cannot take
    // the ports (not bound to a DPDK driver, no hugepages...), and says so.
    const bool automatic = config.dataplane.type == model::DataplaneType::kAuto;
    const std::vector<model::DataplaneType> attempts =
        automatic ? std::vector{model::DataplaneType::kDpdk, model::DataplaneType::kXdp}
                  : std::vector{config.dataplane.type};
    std::unique_ptr<driver::DataplaneDriver> driver;
    std::unique_ptr<ServiceManager> manager_owner;
    std::string plane;
    uint32_t workers = 0;
    for (size_t attempt = 0; attempt < attempts.size(); ++attempt) {
        const bool xdp = attempts[attempt] == model::DataplaneType::kXdp;
        config.dataplane.type = attempts[attempt];
        plane = xdp ? "xdp" : "dpdk";
        if (xdp) {
            driver = std::make_unique<driver::XdpDriver>(*config.dataplane.xdp, options.static_neighbors,
                                                         log_sink(log, "xdp"));
            const long cpus = sysconf(_SC_NPROCESSORS_ONLN);  // the program runs on whichever CPU takes the interrupt
            workers = cpus > 0 ? static_cast<uint32_t>(cpus) : 1;
        } else {
            driver = std::make_unique<driver::DpdkDriver>(*config.dataplane.dpdk, options.static_neighbors,
                                                          log_sink(log, "dpdk"));
            workers = static_cast<uint32_t>(config.dataplane.dpdk->worker_lcores.size());
        }
        ManagerOptions manager_options;
        manager_options.state_dir = config.daemon.state_dir;
        manager_owner = std::make_unique<ServiceManager>(*driver, log_sink(log, "manager"), manager_options);
        auto plan = manager_owner->prepare(config);
        if (!plan) {
            log->error("component=daemon msg={}", quoted("cannot build the forwarding plan: " + plan.error()));
            return kExitFatal;
        }
        for (const std::string& w : plan->warnings) log->warn("component=plan msg={}", quoted(w));
        auto started = driver->start(*plan);
        if (started) break;
        const std::string why = "cannot start the " + std::string(xdp ? "XDP" : "DPDK") + " data plane: " +
                                started.error();
        manager_owner.reset();
        driver.reset();  // releases what did start (ports, EAL; XDP attachments)
        if (attempt + 1 == attempts.size()) {
            log->error("component=daemon msg={}", quoted(why));
            return kExitFatal;
        }
        log->warn("component=daemon msg={}", quoted(why + "; dataplane.type = auto: falling back to XDP"));
    }
    if (automatic) log->info("component=daemon msg=\"dataplane.type = auto: running the {} data plane\"", plane);
    ServiceManager& manager = *manager_owner;
    // DPDK: the EAL pinned this thread to main_lcore, so every thread made
    // from here on (discovery, health, API) inherits that CPU, never a worker's.
    auto manager_started = manager.start();
    if (!manager_started) {
        log->error("component=daemon msg={}", quoted(manager_started.error()));
        manager.stop();
        driver->stop();
        return kExitFatal;
    }
    ControlPlane control(options.config_path, manager, *driver, plane, workers, log_sink(log, "control"),
                         [log](model::LogLevel level) { log->set_level(to_spdlog(level)); });
    control.set_config_digest(loaded.sha256);
    if (automatic) control.resolve_auto_dataplane(config.dataplane.type);
    std::unique_ptr<api::AdminServer> admin;
    auto admin_settings = api::settings_from_config(config.daemon.admin);
    if (admin_settings) {
        admin = std::make_unique<api::AdminServer>(control, *admin_settings);
        if (auto r = admin->start(); !r) admin_settings = Error{r.error()};
    }
    if (!admin_settings) {
        log->error("component=api msg={}", quoted("cannot start the admin API: " + admin_settings.error()));
        admin.reset();
        manager.stop();
        driver->stop();
        return kExitFatal;
    }
    log->info("component=api msg=\"admin API listening\" listen={} port={}", admin_settings->listen, admin->port());
    log->info("component=daemon msg=\"running; SIGTERM or SIGINT stops, SIGHUP reloads\"");

    int stop_signal = 0;
    auto next_summary = std::chrono::steady_clock::now() + kSummaryInterval;
    while (stop_signal == 0) {
        const auto wait = std::min(manager.process(), std::chrono::milliseconds(kPollInterval));
        pollfd fds[2] = {{sigfd, POLLIN, 0}, {manager.wake_fd(), POLLIN, 0}};
        ::poll(fds, 2, static_cast<int>(wait.count()));
        signalfd_siginfo info;
        while (::read(sigfd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
            if (info.ssi_signo == SIGHUP) {
                log->info("component=daemon msg=\"SIGHUP: reloading\" config={}", options.config_path);
                (void)control.reload();  // logs its own outcome
            } else {
                stop_signal = static_cast<int>(info.ssi_signo);
            }
        }
        driver->poll();
        if (std::chrono::steady_clock::now() >= next_summary) {
            log->info("component={} msg={}", plane, quoted("stats: " + driver::format_summary(driver->stats())));
            next_summary += kSummaryInterval;
        }
    }
    log->info("component=daemon msg=\"stopping on {}\"", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
    manager.stop();
    admin->stop();
    driver->stop();
    // Final counters on stdout, one "name value" per line, for operators
    // and scripts alike.
    std::cout << "final counters:\n";
    for (const std::string& line : driver::format_counters(driver->stats(), *manager.current_plan())) {
        std::cout << "  " << line << '\n';
    }
    std::cout.flush();
    driver.reset();
    ::close(sigfd);
    log->info("component=daemon msg=\"stopped\"");
    return kExitOk;
}

}  // namespace sluice::daemon
