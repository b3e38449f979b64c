// sluiced: the sluice daemon's entry point. --check-config validates a
// config; --config runs the daemon (daemon/run.h: data plane, discovery,
// health, admin API) until SIGTERM or SIGINT; SIGHUP reloads.
#include <CLI/CLI.hpp>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "config/loader.h"
#include "daemon/run.h"
#include "model/address.h"

#ifndef SLUICE_VERSION
#error "SLUICE_VERSION must be defined by the build (meson.project_version())"
#endif

namespace {

using sluice::daemon::kExitBadConfig;
using sluice::daemon::kExitOk;
using sluice::daemon::kExitUsage;

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
    sluice::daemon::RunOptions options;
    options.config_path = path;
    options.version = SLUICE_VERSION;
    if (!parse_static_neighbors(neighbor_specs, options.static_neighbors)) return kExitUsage;
    return sluice::daemon::run_daemon(options);
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
