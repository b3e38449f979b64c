// sluiced: the sluice daemon's entry point. For now it validates a config
// (--check-config) and reports its version; running the data plane is not
// built yet, and it says so rather than pretending.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "config/loader.h"

#ifndef SLUICE_VERSION
#error "SLUICE_VERSION must be defined by the build (meson.project_version())"
#endif

namespace {

// Exit codes. 2 for a refused config is the contract in DESIGN.md; 64 is
// sysexits.h's EX_USAGE, for every use this binary cannot serve.
constexpr int kExitOk = 0;
constexpr int kExitBadConfig = 2;
constexpr int kExitUsage = 64;

int check_config(const std::string& path)
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
        return kExitBadConfig;
    }
    const size_t services = result.config->services.size();
    std::cout << path << ": ok (" << services << (services == 1 ? " service" : " services") << ")\n";
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv)
{
    CLI::App app{"sluiced: the sluice L4 load balancer daemon"};
    app.set_version_flag("--version", std::string("sluiced ") + SLUICE_VERSION);
    std::string check_path;
    std::string config_path;
    auto* check = app.add_option("--check-config", check_path, "validate FILE and exit: 0 if valid, 2 if not")
                      ->type_name("FILE");
    auto* run = app.add_option("--config", config_path, "run the daemon with FILE (not built yet)")->type_name("FILE");
    check->excludes(run);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);  // prints help, version or the parse error
        return code == 0 ? kExitOk : kExitUsage;
    }

    if (!check_path.empty()) {
        return check_config(check_path);
    }
    std::cerr << "sluiced: running the daemon is not built yet; this build can only --check-config FILE "
                 "and --version\n";
    return kExitUsage;
}
