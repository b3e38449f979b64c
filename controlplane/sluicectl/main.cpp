// sluicectl: the operator's command line for a running sluiced (through the
// admin API) and for checking a config file before it is deployed.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include "api/admin_settings.h"
#include "api/version.h"
#include "config/loader.h"
#include "model/config.h"
#include "sluicectl/commands.h"
#include "sluicectl/exit_codes.h"

namespace {

using namespace sluice::ctl;

// `validate FILE`: the loader run locally, printed like `sluiced
// --check-config` so the two are interchangeable in scripts.
int validate(const std::string& path)
{
    const sluice::config::LoadResult result = sluice::config::load_file(path);
    size_t errors = 0;
    size_t warnings = 0;
    for (const auto& diagnostic : result.diagnostics) {
        std::cerr << diagnostic.to_string() << '\n';
        (diagnostic.severity == sluice::config::Severity::kError ? errors : warnings) += 1;
    }
    if (!result.ok()) {
        std::cerr << path << ": " << errors << (errors == 1 ? " error" : " errors") << ", " << warnings
                  << (warnings == 1 ? " warning" : " warnings") << "; configuration refused\n";
        return kExitUsage;
    }
    const size_t services = result.config->services.size();
    std::cout << path << ": ok (" << services << (services == 1 ? " service" : " services") << ")\n";
    return kExitOk;
}

std::string default_api_url()
{
    const sluice::model::AdminApi defaults;
    return "http://" + defaults.listen.to_string() + ":" + std::to_string(defaults.port);
}

int run(int argc, char** argv)
{
    CLI::App app{"sluicectl: inspect and steer a running sluiced through its admin API"};
    app.footer(std::string("\n") + kExitCodesHelp);
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("sluicectl ") + sluice::api::version());

    std::string api_url = default_api_url();
    std::string token_file;
    bool json = false;
    double timeout = 5.0;
    app.add_option("--api", api_url, "admin API URL (default from daemon.admin: " + default_api_url() + ")")
        ->envname("SLUICE_API");
    app.add_option("--token-file", token_file, "file holding the bearer token (daemon.admin.token_file)")
        ->envname("SLUICE_TOKEN_FILE");
    app.add_flag("--json", json, "print the API's JSON instead of tables (for scripts)");
    app.add_option("--timeout", timeout, "seconds to wait for sluiced (connect and answer)")
        ->check(CLI::Range(0.1, 3600.0));

    auto* status = app.add_subcommand("status", "health, readiness and a summary; exit 1 when not ready");
    auto* services = app.add_subcommand("services", "list services");
    std::string service;
    std::string backend;
    auto* backends = app.add_subcommand("backends", "list a service's backends");
    backends->add_option("SERVICE", service, "service name")->required();
    auto* drain = app.add_subcommand("drain", "stop sending new flows to a backend");
    drain->add_option("SERVICE", service, "service name")->required();
    drain->add_option("BACKEND", backend, "backend address, or address:port")->required();
    DrainWait drain_wait;
    auto* wait_flag = drain->add_flag("--wait", drain_wait.wait,
                                      "then wait until the backend has no live connection; exit 1 if it still has "
                                      "some after --wait-timeout");
    drain->add_option("--wait-timeout", drain_wait.timeout, "seconds to wait (default 300)")
        ->check(CLI::Range(0.0, 86400.0))
        ->needs(wait_flag);
    drain->add_option("--wait-interval", drain_wait.interval, "seconds between looks (default 1)")
        ->check(CLI::Range(0.01, 3600.0))
        ->needs(wait_flag);
    std::optional<std::string> connections_service;
    auto* connections = app.add_subcommand("connections", "live connections per backend (a walk of the table)");
    connections->add_option("SERVICE", connections_service, "only this service");
    auto* undrain = app.add_subcommand("undrain", "let a drained backend take new flows again");
    undrain->add_option("SERVICE", service, "service name")->required();
    undrain->add_option("BACKEND", backend, "backend address, or address:port")->required();
    WatchOptions watch;
    auto* stats = app.add_subcommand("stats", "node counters and drops");
    auto* watch_flag = stats->add_flag("--watch", watch.watch, "repeat, with rates per second");
    stats->add_option("--interval", watch.interval, "seconds between samples (default 2)")
        ->check(CLI::Range(0.01, 86400.0))
        ->needs(watch_flag);
    stats->add_option("--count", watch.count, "stop after N samples (default: until interrupted)")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
        ->needs(watch_flag);
    double workers_interval = 1.0;
    auto* workers = app.add_subcommand("workers", "per worker core: packets per second, RSS share, busy time");
    workers->add_option("--interval", workers_interval, "seconds between the two samples (default 1)")
        ->check(CLI::Range(0.01, 3600.0));
    std::string client;
    std::string vip;
    bool udp = false;
    auto* lookup = app.add_subcommand("lookup", "which backend a flow reaches, and why");
    lookup->add_option("CLIENT", client, "client ADDRESS:PORT ([v6]:PORT)")->required();
    lookup->add_option("VIP", vip, "VIP ADDRESS:PORT")->required();
    lookup->add_flag("--udp", udp, "the flow is UDP (default TCP)");
    std::optional<std::string> fingerprint_service;
    auto* fingerprint = app.add_subcommand("fingerprint", "Maglev table fingerprints (equal on nodes that agree)");
    fingerprint->add_option("SERVICE", fingerprint_service, "only this service");
    auto* reload = app.add_subcommand("reload", "re-read the config file; exit 1 when refused");
    std::string config_file;
    auto* validate_cmd = app.add_subcommand("validate", "check a config file locally (as sluiced --check-config)");
    validate_cmd->add_option("FILE", config_file, "config file")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);  // prints help, version or the error
        return code == 0 ? kExitOk : kExitUsage;
    }

    if (validate_cmd->parsed()) return validate(config_file);

    ApiOptions options;
    options.url = api_url;
    options.timeout_seconds = timeout;
    if (!token_file.empty()) {
        auto token = sluice::api::read_token_file(token_file);
        if (!token) {
            std::cerr << "sluicectl: " << token.error() << '\n';
            return kExitUsage;
        }
        options.token = *token;
    }
    auto created = ApiClient::create(options);
    if (auto* failure = std::get_if<Failure>(&created)) {
        std::cerr << "sluicectl: " << failure->message << '\n';
        return failure->exit_code;
    }
    ApiClient& api = std::get<ApiClient>(created);
    Context ctx{api, json, std::cout, std::cerr};

    if (status->parsed()) return cmd_status(ctx);
    if (services->parsed()) return cmd_services(ctx);
    if (backends->parsed()) return cmd_backends(ctx, service);
    if (drain->parsed()) return cmd_drain(ctx, service, backend, true, drain_wait);
    if (connections->parsed()) return cmd_connections(ctx, connections_service);
    if (undrain->parsed()) return cmd_drain(ctx, service, backend, false);
    if (stats->parsed()) return cmd_stats(ctx, watch);
    if (workers->parsed()) return cmd_workers(ctx, workers_interval);
    if (lookup->parsed()) return cmd_lookup(ctx, client, vip, udp);
    if (fingerprint->parsed()) return cmd_fingerprint(ctx, fingerprint_service);
    if (reload->parsed()) return cmd_reload(ctx);
    return kExitUsage;
}

}  // namespace

int main(int argc, char** argv)
{
    // CLI11 and nlohmann::json throw; nothing may escape main as a crash.
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "sluicectl: unexpected answer or internal error: " << e.what() << '\n';
        return kExitFailed;
    }
}
