// What a successful load produces: the example file's model, the defaults
// applied to omitted keys, and the reporting of several errors at once.
#include <gtest/gtest.h>

#include <variant>

#include "config_test_util.h"
#include "test_env.h"

namespace sluice::config::testing {
namespace {

using namespace std::chrono_literals;

model::IpAddress ip(const char* text) { return model::parse_ip_address(text).value(); }

// The shipped example loads without errors and yields the model it describes.
TEST(ConfigModel, ExampleLoadsAsDocumented)
{
    const LoadResult r = load_file(sluice::testing::source_path("config/example.toml"));
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(count(r, Severity::kWarning), 0u) << dump(r);
    const model::Config& c = *r.config;

    EXPECT_EQ(c.dataplane.type, model::DataplaneType::kDpdk);
    ASSERT_TRUE(c.dataplane.dpdk.has_value());
    EXPECT_EQ(c.dataplane.dpdk->worker_lcores, (std::vector<uint32_t>{1, 2, 3, 4}));
    ASSERT_EQ(c.dataplane.dpdk->ports.size(), 2u);
    EXPECT_EQ(c.dataplane.dpdk->ports[0].device, "0000:03:00.0");
    EXPECT_EQ(c.dataplane.dpdk->ports[0].rx_queues, 4);
    EXPECT_EQ(c.dataplane.dpdk->egress_port, "backend");
    ASSERT_TRUE(c.dataplane.xdp.has_value());
    EXPECT_FALSE(c.dataplane.xdp->allow_generic_fallback);
    EXPECT_EQ(c.network.source_ipv6, ip("2001:db8:100::10"));
    EXPECT_EQ(c.timeouts.tcp_syn_fin, 30s);
    ASSERT_EQ(c.filter.payload_rules.size(), 1u);
    EXPECT_EQ(c.filter.payload_rules[0].flags, model::kPayloadCaseless);
    EXPECT_EQ(c.filter.deny.size(), 2u);

    ASSERT_EQ(c.services.size(), 3u);
    const model::Service& web = c.services[0];
    EXPECT_EQ(web.name, "web");
    EXPECT_EQ(web.vip.to_string(), "203.0.113.10:443");
    EXPECT_EQ(web.forwarding, model::Forwarding::kIpip);
    ASSERT_EQ(web.backends.size(), 3u);
    EXPECT_EQ(web.backends[2].weight, 50u);
    EXPECT_EQ(web.backends[2].state, model::BackendState::kDraining);
    EXPECT_EQ(web.backends[0].port, 8443);
    EXPECT_EQ(web.health_check.type, model::HealthCheckType::kHttp);
    EXPECT_EQ(web.health_check.http_path, "/healthz");
    ASSERT_TRUE(web.rate_limit.new_flows.has_value());
    EXPECT_EQ(web.rate_limit.new_flows->burst, 100000u);
    EXPECT_EQ(web.rate_limit.packets->burst, 2000000u);  // defaulted to one second's worth

    const model::Service& api = c.services[1];
    EXPECT_EQ(api.forwarding, model::Forwarding::kGue);
    ASSERT_TRUE(api.discovery.has_value());
    const auto& etcd = std::get<model::EtcdDiscovery>(*api.discovery);
    EXPECT_EQ(etcd.endpoints.size(), 2u);
    EXPECT_EQ(etcd.prefix, "/sluice/services/api/");
    EXPECT_EQ(etcd.dial_timeout, 3000ms);

    const model::Service& dns = c.services[2];
    EXPECT_TRUE(dns.vip.address.is_ipv6());
    EXPECT_EQ(dns.vip.port, 0);
    EXPECT_EQ(dns.protocol, model::Protocol::kUdp);
    EXPECT_EQ(dns.table_size, 251u);
    const auto& resolver = std::get<model::DnsDiscovery>(*dns.discovery);
    EXPECT_EQ(resolver.record, model::DnsRecord::kAaaa);
    EXPECT_EQ(resolver.resolver->to_string(), "[2001:db8:100::2]:53");
    EXPECT_EQ(dns.health_check.udp_expect, "pong");
}

// Omitted keys take the documented defaults.
TEST(ConfigModel, DefaultsApplied)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11" }]
[[service]]
name = "dns"
vip = "203.0.113.10:53"
protocol = "udp"
backends = [{ address = "10.1.0.11" }]
)");
    ASSERT_TRUE(r.ok()) << dump(r);
    const model::Config& c = *r.config;
    EXPECT_EQ(c.daemon.log_level, model::LogLevel::kInfo);
    EXPECT_EQ(c.daemon.admin.listen, ip("127.0.0.1"));
    EXPECT_EQ(c.daemon.admin.port, 9180);
    EXPECT_EQ(c.daemon.state_dir, "/var/lib/sluice");
    EXPECT_EQ(c.dataplane.dpdk->main_lcore, 0u);
    EXPECT_TRUE(c.dataplane.dpdk->exception_path);
    EXPECT_EQ(c.dataplane.dpdk->exception_tap, "sluice0");
    EXPECT_EQ(c.dataplane.dpdk->conn_table_size, 1048576u);
    EXPECT_EQ(c.dataplane.icmp_errors_per_sec, 1000u);  // Linux's icmp_msgs_per_sec, per core
    EXPECT_EQ(c.dataplane.icmp_errors_burst, 50u);       // and icmp_msgs_burst
    EXPECT_EQ(c.dataplane.dpdk->ports[0].rx_queues, 0);  // 0 = one per worker
    EXPECT_FALSE(c.dataplane.xdp.has_value());
    EXPECT_EQ(c.timeouts.tcp_established, 3600s);
    EXPECT_EQ(c.timeouts.udp, 60s);

    const model::Service& web = c.services[0];
    EXPECT_EQ(web.protocol, model::Protocol::kTcp);
    EXPECT_EQ(web.forwarding, model::Forwarding::kIpip);
    EXPECT_EQ(web.gue_port, 6080);
    EXPECT_EQ(web.table_size, 65537u);
    EXPECT_EQ(web.hash, model::HashFields::kFiveTuple);
    EXPECT_EQ(web.backends[0].weight, 100u);
    EXPECT_FALSE(web.backends[0].port.has_value());
    EXPECT_EQ(web.backends[0].state, model::BackendState::kActive);
    EXPECT_EQ(web.health_check.type, model::HealthCheckType::kTcp);
    EXPECT_EQ(web.health_check.interval, 2000ms);
    EXPECT_EQ(web.health_check.timeout, 1000ms);
    EXPECT_EQ(web.health_check.rise, 2u);
    EXPECT_EQ(web.health_check.fall, 3u);
    EXPECT_EQ(web.on_all_backends_down, model::AllDownPolicy::kKeepAll);
    EXPECT_EQ(web.drain_deadline, 300s);
    EXPECT_FALSE(web.rate_limit.packets.has_value());
    // A UDP service gets no probe until one is configured.
    EXPECT_EQ(c.services[1].health_check.type, model::HealthCheckType::kNone);
}

// Every mistake in one file is reported, in file order, and no model is returned.
TEST(ConfigModel, AllErrorsReportedInOrder)
{
    const std::string path = sluice::testing::source_path("tests/unit/config/fixtures/many_errors.toml");
    const LoadResult r = load_file(path);
    EXPECT_FALSE(r.ok());
    ASSERT_EQ(r.diagnostics.size(), 5u) << dump(r);
    EXPECT_TRUE(has_diagnostic(r, 3, 13, "'log_level' must be one of"));
    EXPECT_TRUE(has_diagnostic(r, 14, 14, "table_size 65536 is not prime"));
    EXPECT_TRUE(has_diagnostic(r, 15, 38, "unknown key 'wieght'"));
    EXPECT_TRUE(has_diagnostic(r, 18, 8, "service name \"web\" is used twice"));
    EXPECT_TRUE(has_diagnostic(r, 19, 7, "must be written in brackets"));
    for (size_t i = 1; i < r.diagnostics.size(); ++i) {
        EXPECT_LE(r.diagnostics[i - 1].line, r.diagnostics[i].line);
    }
    EXPECT_EQ(r.diagnostics[0].file, path);
}

// Warnings alone do not refuse a config.
TEST(ConfigModel, WarningsDoNotRefuse)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
gue_port = 6081
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(count(r, Severity::kWarning), 1u) << dump(r);
}

// Diagnostics print as FILE:LINE:COL: severity: message, like a compiler's.
TEST(ConfigModel, DiagnosticFormat)
{
    const Diagnostic error{"a.toml", 3, 7, Severity::kError, "bad"};
    const Diagnostic warning{"a.toml", 4, 1, Severity::kWarning, "odd"};
    EXPECT_EQ(error.to_string(), "a.toml:3:7: error: bad");
    EXPECT_EQ(warning.to_string(), "a.toml:4:1: warning: odd");
}

}  // namespace
}  // namespace sluice::config::testing
