// One test per class of config error: each asserts the exact line:column
// the operator is sent to and the part of the message that explains it.
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace sluice::config::testing {
namespace {

// A TOML syntax error is reported at toml++'s position, and nothing else is checked.
TEST(ConfigErrors, SyntaxErrorHasPosition)
{
    const LoadResult r = load_string("[daemon]\nlog_level = \"info\nport = 3\n", "syntax.toml");
    EXPECT_FALSE(r.ok());
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
    EXPECT_EQ(r.diagnostics[0].file, "syntax.toml");
    EXPECT_EQ(r.diagnostics[0].line, 2u);
    EXPECT_EQ(r.diagnostics[0].column, 18u);  // the newline inside the unterminated string
    EXPECT_NE(r.diagnostics[0].message.find("TOML syntax: Error while parsing string"), std::string::npos);
}

// A key defined twice is a TOML error too, reported at the second definition.
TEST(ConfigErrors, DuplicateKeyIsSyntaxError)
{
    const LoadResult r = load_string("[daemon]\nlog_level = \"info\"\nlog_level = \"debug\"\n", "dup.toml");
    EXPECT_TRUE(has_diagnostic(r, 3, 13, "cannot redefine existing string 'log_level'"));
}

// A misspelt key is reported at the key itself, with the closest real key suggested.
TEST(ConfigErrors, UnknownKeySuggestsClosest)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
tabel_size = 65537
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(has_diagnostic(r, 4, 1, "unknown key 'tabel_size' in [[service]]; did you mean 'table_size'?"));
}

// A real key written in the wrong table says where it belongs.
TEST(ConfigErrors, KeyOfAnotherTableSaysWhereItBelongs)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11" }]
new_flows_per_sec = 100
)");
    EXPECT_TRUE(has_diagnostic(r, 5, 1, "it belongs in [service.rate_limit]"));
}

// A discovery key of another discovery type names the type it belongs to.
TEST(ConfigErrors, DiscoveryKeyOfAnotherType)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "api"
vip = "203.0.113.20:80"
discovery = { type = "file", path = "/etc/sluice/api.json", record = "A" }
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 61, "unknown key 'record' in discovery type \"file\"; it is a setting of discovery type \"dns\""));
}

// A value of the wrong TOML type is reported at the value, naming expected and actual types.
TEST(ConfigErrors, WrongTypeSaysExpectedAndGot)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
table_size = "65537"
backends = [{ address = "10.1.0.11", weight = 1.5 }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 14, "'table_size' must be an integer, got a string"));
    EXPECT_TRUE(has_diagnostic(r, 5, 47, "'weight' must be an integer, got a floating-point number"));
}

// Numbers outside their range are refused at the value, with the range in the message.
TEST(ConfigErrors, OutOfRangeNumbers)
{
    const LoadResult r = load_string(R"([daemon.admin]
port = 70000
[conntrack]
udp_s = 0
[dataplane]
type = "dpdk"
[dataplane.dpdk]
worker_lcores = [1, 2048]
ports = [{ name = "p0", device = "0000:03:00.0", rx_queues = 5000 }]
[network]
source_ipv4 = "192.0.2.10"
[[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11", port = 65536, weight = 10001 }]
health_check = { interval_ms = 50 }
)", "range.toml");
    EXPECT_TRUE(has_diagnostic(r, 2, 8, "'port' must be between 1 and 65535, got 70000"));
    EXPECT_TRUE(has_diagnostic(r, 4, 9, "'udp_s' must be between 1 and 86400, got 0"));
    EXPECT_TRUE(has_diagnostic(r, 8, 21, "'worker_lcores[1]' must be between 0 and 1023, got 2048"));
    EXPECT_TRUE(has_diagnostic(r, 9, 62, "'rx_queues' must be between 1 and 1024, got 5000"));
    EXPECT_TRUE(has_diagnostic(r, 15, 45, "'port' must be between 1 and 65535, got 65536"));
    EXPECT_TRUE(has_diagnostic(r, 15, 61, "'weight' must be between 1 and 10000, got 10001"));
    EXPECT_TRUE(has_diagnostic(r, 16, 32, "'interval_ms' must be between 100 and 3600000, got 50"));
}

// The ICMP-error limit's keys: range errors at the value, with the range;
// a burst of 0 (never an error out) is refused, a rate of 0 (unlimited) is not.
TEST(ConfigErrors, IcmpErrorLimitRanges)
{
    const LoadResult r = load_string(R"([dataplane]
type = "dpdk"
icmp_errors_per_sec = 1000001
icmp_errors_burst = 0
[dataplane.dpdk]
worker_lcores = [1]
ports = [{ name = "p0", device = "0000:03:00.0" }]
)", "icmp.toml");
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(has_diagnostic(r, 3, 23, "'icmp_errors_per_sec' must be between 0 and 1000000, got 1000001"));
    EXPECT_TRUE(has_diagnostic(r, 4, 21, "'icmp_errors_burst' must be between 1 and 1000000, got 0"));

    const LoadResult negative = load_string(R"([dataplane]
type = "xdp"
icmp_errors_per_sec = -1
[dataplane.xdp]
interfaces = ["eth0"]
)", "icmp.toml");
    EXPECT_TRUE(has_diagnostic(negative, 3, 23, "'icmp_errors_per_sec' must be between 0 and 1000000, got -1"));

    const LoadResult typo = load_string(R"([dataplane]
type = "xdp"
icmp_error_burst = 5
[dataplane.xdp]
interfaces = ["eth0"]
)", "icmp.toml");
    EXPECT_TRUE(has_diagnostic(typo, 3, 1, "did you mean 'icmp_errors_burst'?"));

    const LoadResult ok = load_string(R"([dataplane]
type = "xdp"
icmp_errors_per_sec = 0
icmp_errors_burst = 1000000
[dataplane.xdp]
interfaces = ["eth0"]
)", "icmp.toml");
    ASSERT_TRUE(ok.ok()) << dump(ok);
    EXPECT_EQ(ok.config->dataplane.icmp_errors_per_sec, 0u);
    EXPECT_EQ(ok.config->dataplane.icmp_errors_burst, 1000000u);
}

// Weight 0 is refused with a pointer to the draining state, which is what it usually means.
TEST(ConfigErrors, ZeroWeightPointsToDraining)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11", weight = 0 }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 47, "set state = \"draining\""));
}

// A Maglev table size that is not prime is refused and the nearest primes suggested.
TEST(ConfigErrors, NonPrimeTableSize)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
table_size = 65536
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 14, "table_size 65536 is not prime; try 65521 or 65537"));
}

// A table size above SLUICE_MAX_RING_SIZE is refused even when prime.
TEST(ConfigErrors, TableSizeAboveMaximum)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
table_size = 1000003
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 14, "exceeds the largest supported size 655373"));
}

// Fewer table slots than static backends is an error; fewer than 100 per backend a warning.
TEST(ConfigErrors, TableSizeAgainstBackendCount)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "tiny"
vip = "203.0.113.10:443"
table_size = 2
backends = [{ address = "10.1.0.11" }, { address = "10.1.0.12" }, { address = "10.1.0.13" }]
[[service]]
name = "small"
vip = "203.0.113.11:443"
table_size = 101
backends = [{ address = "10.1.0.11" }, { address = "10.1.0.12" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 14, "smaller than the 3 backends"));
    EXPECT_TRUE(has_diagnostic(r, 9, 14, "fewer than 100 slots to each of 2 backends", Severity::kWarning));
}

// Something that is not an IP address at all is refused; host names are not resolved.
TEST(ConfigErrors, InvalidAddress)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "backend-1.example" }, { address = "10.1.0.300" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 25, "'backend-1.example' is not an IPv4 or IPv6 address (host names are not resolved)"));
    EXPECT_TRUE(has_diagnostic(r, 4, 60, "'10.1.0.300' is not an IPv4 or IPv6 address"));
}

// An IPv6 VIP with a port but without brackets is refused as ambiguous, showing the fix.
TEST(ConfigErrors, Ipv6WithPortNeedsBrackets)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web6"
vip = "2001:db8::10:443"
backends = [{ address = "2001:db8:1::11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 3, 7, "an IPv6 address with a port must be written in brackets, e.g. '[2001:db8::10]:443'"));
}

// A backend address with a port attached says to move the port into its own key.
TEST(ConfigErrors, BackendAddressWithPort)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11:8443" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 25, "write address = \"10.1.0.11\", port = 8443"));
}

// l2dsr forwards the client's packet unchanged, so an IPv6 backend of an IPv4 VIP is refused.
TEST(ConfigErrors, L2DsrMixedFamilies)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "dsr"
vip = "203.0.113.10:80"
forwarding = "l2dsr"
backends = [{ address = "10.1.0.11" }, { address = "2001:db8:1::12" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 5, 52, "backend 2001:db8:1::12 is IPv6 but VIP 203.0.113.10 is IPv4"));
    EXPECT_EQ(count(r, Severity::kError), 1u) << dump(r);
}

// The same mix-up through DNS: AAAA records cannot serve an IPv4 VIP in l2dsr mode.
TEST(ConfigErrors, L2DsrDnsRecordFamily)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "dsr"
vip = "203.0.113.10:80"
forwarding = "l2dsr"
discovery = { type = "dns", name = "web.internal.example", record = "AAAA" }
)");
    EXPECT_TRUE(has_diagnostic(r, 5, 69, "record \"AAAA\" is IPv6 but VIP 203.0.113.10 is IPv4"));
}

// Encapsulating to an IPv6 backend needs an IPv6 outer source address.
TEST(ConfigErrors, EncapsulationNeedsSourceOfBackendFamily)
{
    const LoadResult r = load_string(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11" }, { address = "2001:db8:1::12" }]
[dataplane]
type = "xdp"
[dataplane.xdp]
interfaces = ["eth0"]
[network]
source_ipv4 = "192.0.2.10"
)", "source.toml");
    EXPECT_TRUE(has_diagnostic(r, 4, 52, "is IPv6: set source_ipv6 in [network]"));
    EXPECT_EQ(count(r, Severity::kError), 1u) << dump(r);
}

// A prefix longer than its family allows is refused.
TEST(ConfigErrors, PrefixLengthOutOfRange)
{
    const LoadResult r = load_with_base(R"([filter]
deny = ["10.0.0.0/8", "2001:db8::/129"]
)");
    EXPECT_TRUE(has_diagnostic(r, 2, 23, "prefix length '129' is out of range for IPv6 (0..128)"));
}

// A prefix with host bits set is refused and the network prefix suggested.
TEST(ConfigErrors, PrefixWithHostBitsSet)
{
    const LoadResult r = load_with_base(R"([filter]
allow = ["192.168.1.7/24"]
)");
    EXPECT_TRUE(has_diagnostic(r, 2, 10, "'192.168.1.7/24' has host bits set; did you mean '192.168.1.0/24'?"));
}

// A bare host address where a prefix belongs asks for an explicit /32.
TEST(ConfigErrors, PrefixWithoutLength)
{
    const LoadResult r = load_with_base(R"([filter]
deny = ["198.51.100.7"]
)");
    EXPECT_TRUE(has_diagnostic(r, 2, 9, "write '198.51.100.7/32' for a single host"));
}

// Two services with one name are refused at the second, pointing to the first.
TEST(ConfigErrors, DuplicateServiceName)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11" }]
[[service]]
name = "web"
vip = "203.0.113.11:443"
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 6, 8, "service name \"web\" is used twice (first on line 2)"));
}

// Two services on one address, port and protocol are refused; another protocol is fine.
TEST(ConfigErrors, DuplicateVip)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11" }]
[[service]]
name = "quic"
vip = "203.0.113.10:443"
protocol = "udp"
backends = [{ address = "10.1.0.11" }]
[[service]]
name = "web-again"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.12" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 12, 7, "VIP 203.0.113.10:443/tcp is already used by service \"web\" (line 3)"));
    EXPECT_EQ(count(r, Severity::kError), 1u) << dump(r);
}

// The same backend address twice in one service is refused at the second entry.
TEST(ConfigErrors, BackendListedTwice)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [
  { address = "10.1.0.11", port = 8443 },
  { address = "10.1.0.11", port = 9443 },
]
)");
    EXPECT_TRUE(has_diagnostic(r, 6, 15, "backend 10.1.0.11 is listed twice (first on line 5)"));
}

// A service with static backends and a discovery source is refused at 'discovery'.
TEST(ConfigErrors, BackendsAndDiscoveryBoth)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11" }]
discovery = { type = "file", path = "/etc/sluice/web.json" }
)");
    EXPECT_TRUE(has_diagnostic(r, 5, 13, "service \"web\" has both 'backends' and 'discovery'; keep one"));
}

// A service with neither static backends nor discovery is refused at its header.
TEST(ConfigErrors, NoBackendSource)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
)");
    EXPECT_TRUE(has_diagnostic(r, 1, 1, "service \"web\" has no backends: set 'backends' or 'discovery'"));
}

// A required key that is missing is reported at the table that lacks it.
TEST(ConfigErrors, MissingRequiredKey)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 1, 1, "missing required key 'vip' in [[service]]"));
}

// A string outside its set of choices lists the choices and suggests the nearest.
TEST(ConfigErrors, BadChoiceSuggestsNearest)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
forwarding = "gue4"
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 14, "'forwarding' must be one of \"ipip\", \"gue\", \"l2dsr\"; got \"gue4\"; did you mean \"gue\"?"));
}

// service.hash takes "five_tuple" or "client"; anything else points at its value.
TEST(ConfigErrors, HashChoice)
{
    const LoadResult ok = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
hash = "client"
backends = [{ address = "10.1.0.11" }]
)");
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok.config->services.back().hash, sluice::model::HashFields::kClient);
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
hash = "source_ip"
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 8, "'hash' must be one of \"five_tuple\", \"client\"; got \"source_ip\""));
}

// dataplane.xdp.conn_table_mode: "auto" when unset, the two others by
// name, and a near miss refused at its line and column with a suggestion.
TEST(ConfigErrors, XdpConnTableMode)
{
    const char* base = "[dataplane]\ntype = \"xdp\"\n[dataplane.xdp]\ninterfaces = [\"eth0\"]\n";
    const LoadResult unset = load_string(base, "mode.toml");
    ASSERT_TRUE(unset.ok()) << dump(unset);
    EXPECT_EQ(unset.config->dataplane.xdp->conn_table_mode, model::XdpConnTableMode::kAuto);
    const LoadResult shared = load_string(std::string(base) + "conn_table_mode = \"shared\"\n", "mode.toml");
    ASSERT_TRUE(shared.ok()) << dump(shared);
    EXPECT_EQ(shared.config->dataplane.xdp->conn_table_mode, model::XdpConnTableMode::kShared);
    const LoadResult per_cpu = load_string(std::string(base) + "conn_table_mode = \"per-cpu\"\n", "mode.toml");
    ASSERT_TRUE(per_cpu.ok()) << dump(per_cpu);
    EXPECT_EQ(per_cpu.config->dataplane.xdp->conn_table_mode, model::XdpConnTableMode::kPerCpu);
    const LoadResult bad = load_string(std::string(base) + "conn_table_mode = \"percpu\"\n", "mode.toml");
    EXPECT_TRUE(has_diagnostic(bad, 5, 19,
                               "'conn_table_mode' must be one of \"auto\", \"per-cpu\", \"shared\"; got \"percpu\"; "
                               "did you mean \"per-cpu\"?"))
        << dump(bad);
}

// Payload rules on the XDP data plane are refused without the explicit opt-in.
TEST(ConfigErrors, PayloadRulesOnXdpNeedOptIn)
{
    const LoadResult r = load_string(R"([dataplane]
type = "xdp"
[dataplane.xdp]
interfaces = ["eth0"]
[filter]
payload_rules = [{ id = 1, pattern = "^GET /admin" }]
)", "xdp.toml");
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(has_diagnostic(r, 6, 17, "payload rules need the DPDK data plane; dataplane type \"xdp\" does not enforce them"));
}

// With the opt-in, the same rules load with a warning that they are not enforced.
TEST(ConfigErrors, PayloadRulesOnXdpWithOptInWarn)
{
    const LoadResult r = load_string(R"([dataplane]
type = "xdp"
[dataplane.xdp]
interfaces = ["eth0"]
[filter]
payload_rules = [{ id = 1, pattern = "^GET /admin" }]
allow_unenforced_payload_rules = true
)", "xdp.toml");
    EXPECT_TRUE(r.ok()) << dump(r);
    EXPECT_TRUE(has_diagnostic(r, 6, 17, "not enforced by the XDP data plane", Severity::kWarning));
}

// "auto" may end up on XDP, so a service's payload rules need the opt-in there too;
// the service's own opt-in is enough.
TEST(ConfigErrors, PayloadRulesOnAutoPerService)
{
    const LoadResult r = load_string(R"([[service]]
name = "strict"
vip = "203.0.113.10:80"
backends = [{ address = "10.1.0.11" }]
filter = { payload_rules = [{ id = 7, pattern = "evil" }] }
[[service]]
name = "relaxed"
vip = "203.0.113.11:80"
backends = [{ address = "10.1.0.11" }]
filter = { payload_rules = [{ id = 7, pattern = "evil" }], allow_unenforced_payload_rules = true }
[dataplane]
type = "auto"
[dataplane.xdp]
interfaces = ["eth0"]
[dataplane.dpdk]
worker_lcores = [1]
ports = [{ name = "p0", device = "0000:03:00.0" }]
[network]
source_ipv4 = "192.0.2.10"
)", "auto.toml");
    EXPECT_TRUE(has_diagnostic(r, 5, 28, "dataplane type \"auto\" may select xdp"));
    EXPECT_TRUE(has_diagnostic(r, 10, 28, "not enforced by the XDP data plane", Severity::kWarning));
    EXPECT_EQ(count(r, Severity::kError), 1u) << dump(r);
}

// A payload pattern Hyperscan cannot compile is refused at load, not when the data plane starts.
TEST(ConfigErrors, PayloadPatternMustCompile)
{
    const LoadResult r = load_with_base(R"([filter]
payload_rules = [{ id = 1, pattern = "GET /(admin" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 2, 38, "Hyperscan cannot compile 'pattern'"));
}

// gue_port is range-checked, and setting it without GUE forwarding is flagged.
TEST(ConfigErrors, GuePortChecks)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "gue"
vip = "203.0.113.10:443"
forwarding = "gue"
gue_port = 0
backends = [{ address = "10.1.0.11" }]
[[service]]
name = "ipip"
vip = "203.0.113.11:443"
gue_port = 6081
backends = [{ address = "10.1.0.11" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 5, 12, "'gue_port' must be between 1 and 65535, got 0"));
    EXPECT_TRUE(has_diagnostic(r, 10, 12, "gue_port has no effect unless forwarding = \"gue\"", Severity::kWarning));
}

// A health-check timeout not shorter than its interval is refused.
TEST(ConfigErrors, HealthTimeoutNotBelowInterval)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "web"
vip = "203.0.113.10:443"
backends = [{ address = "10.1.0.11" }]
[service.health_check]
interval_ms = 1000
timeout_ms = 1000
)");
    EXPECT_TRUE(has_diagnostic(r, 7, 14, "timeout_ms (1000) must be shorter than interval_ms (1000)"));
}

// An all-ports VIP gives health checks no port unless one is written.
TEST(ConfigErrors, AllPortsVipNeedsHealthPort)
{
    const LoadResult r = load_with_base(R"([[service]]
name = "any"
vip = "203.0.113.10:0"
backends = [{ address = "10.1.0.11", port = 80 }, { address = "10.1.0.12" }]
)");
    EXPECT_TRUE(has_diagnostic(r, 4, 63, "covers all ports, so the health check has no port"));
}

// The admin API off loopback without a token is refused (DESIGN.md: bearer token when bound elsewhere).
TEST(ConfigErrors, AdminBeyondLoopbackNeedsToken)
{
    const LoadResult r = load_with_base(R"([daemon.admin]
listen = "::"
)");
    EXPECT_TRUE(has_diagnostic(r, 2, 10, "beyond loopback, without a token: set token_file"));
}

// Core placement mistakes: a worker listed twice, or the main lcore as a worker.
TEST(ConfigErrors, WorkerLcoreConflicts)
{
    const LoadResult r = load_string(R"([dataplane]
type = "dpdk"
[dataplane.dpdk]
main_lcore = 0
worker_lcores = [0, 1, 1]
ports = [{ name = "p0", device = "0000:03:00.0" }]
egress_port = "p1"
)", "lcores.toml");
    EXPECT_TRUE(has_diagnostic(r, 5, 18, "lcore 0 is the main_lcore"));
    EXPECT_TRUE(has_diagnostic(r, 5, 24, "lcore 1 is listed twice in worker_lcores"));
    EXPECT_TRUE(has_diagnostic(r, 7, 15, "egress_port \"p1\" is not one of the ports (\"p0\")"));
}

// The selected data plane must have its section.
TEST(ConfigErrors, SelectedDataplaneNeedsSection)
{
    const LoadResult r = load_string("[dataplane]\ntype = \"xdp\"\n", "dp.toml");
    EXPECT_TRUE(has_diagnostic(r, 2, 8, "type = \"xdp\" needs a [dataplane.xdp] section"));
}

// [service] with single brackets is explained rather than reported as a bare type error.
TEST(ConfigErrors, ServiceMustBeArrayOfTables)
{
    const LoadResult r = load_with_base(R"([service]
name = "web"
)");
    EXPECT_TRUE(has_diagnostic(r, 1, 1, "'service' must be written [[service]] (double brackets)"));
}

// A file that cannot be opened is one positionless error naming the file.
TEST(ConfigErrors, MissingFile)
{
    const LoadResult r = load_file("/nonexistent/sluice.toml");
    ASSERT_EQ(r.diagnostics.size(), 1u);
    EXPECT_EQ(r.diagnostics[0].to_string(), "/nonexistent/sluice.toml: error: cannot open: No such file or directory");
}

}  // namespace
}  // namespace sluice::config::testing
