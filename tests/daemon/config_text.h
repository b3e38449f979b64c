// Config text for the daemon tests: a node section that needs no NIC and
// services built from a few parameters, loaded through the real loader.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "config/loader.h"

namespace sluice::daemon::testing {

inline constexpr const char* kNode = R"(
[dataplane]
type = "dpdk"
[dataplane.dpdk]
worker_lcores = [1]
exception_path = false
[[dataplane.dpdk.ports]]
name = "lan"
device = "net_null0"
[network]
source_ipv4 = "192.0.2.2"
gateway_ipv4 = "192.0.2.1"
)";

inline model::Config load(const std::string& text)
{
    auto r = config::load_string(text, "test.toml");
    std::string diags;
    for (const auto& d : r.diagnostics) diags += d.to_string() + "\n";
    EXPECT_TRUE(r.ok()) << diags;
    return r.ok() ? *r.config : model::Config{};
}

// One [[service]]; `extra` is more TOML lines inside it (backends,
// discovery, health_check, on_all_backends_down ...).
inline std::string service(const std::string& name, const std::string& vip, const std::string& extra)
{
    return "[[service]]\nname = \"" + name + "\"\nvip = \"" + vip + "\"\ntable_size = 251\n" + extra + "\n";
}

}  // namespace sluice::daemon::testing
