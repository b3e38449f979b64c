// The DNS source against a real dnsmasq on a loopback port picked by the
// test: A, AAAA, SRV, TTL-driven re-resolution, NXDOMAIN and a dead resolver.
#include <gtest/gtest.h>

#include "discovery/source.h"
#include "support.h"
#include "test_env.h"

namespace sluice::discovery {
namespace {

using namespace testing;
using namespace std::chrono_literals;

constexpr auto kBound = 5000ms;
const char* const kDnsmasq = "/usr/sbin/dnsmasq";

#define REQUIRE_DNSMASQ() SLUICE_REQUIRE(have_program(kDnsmasq), "dnsmasq (dnsmasq-base)")

// dnsmasq answering for svc.test from a hosts file (re-read on SIGHUP) and
// optional --srv-host records (fixed until restarted).
class Dnsmasq {
public:
    Dnsmasq() : port_(free_port()) {}

    uint16_t port() const { return port_; }
    std::string hosts_path() const { return dir_.path() + "/hosts"; }
    std::string log_path() const { return dir_.path() + "/dnsmasq.log"; }

    bool start(const std::string& hosts, int ttl, const std::vector<std::string>& srv = {})
    {
        write_file(hosts_path(), hosts);
        std::vector<std::string> argv = {kDnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=" + std::to_string(port_),
                                         "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                                         "--no-hosts", "--addn-hosts=" + hosts_path(), "--local=/svc.test/",
                                         "--local-ttl=" + std::to_string(ttl), "--user=root", "--group=root",
                                         "--pid-file=", "--log-facility=-"};
        for (const auto& s : srv) {
            argv.push_back("--srv-host=" + s);
        }
        process_.start(argv, log_path());
        // Ready when it listens: a UDP bind to its port fails.
        return wait_until([&] { return process_.running() && !udp_port_free(); }, 10s);
    }
    void stop() { process_.stop(); }
    // New hosts file, re-read on SIGHUP.
    void update_hosts(const std::string& hosts)
    {
        replace_file(hosts_path(), hosts);
        process_.signal(SIGHUP);
    }

private:
    bool udp_port_free() const
    {
        const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port_);
        const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        return free;
    }

    TempDir dir_;
    uint16_t port_;
    Process process_;
};

model::Service dns_service(const std::string& name, model::DnsRecord record, uint16_t port,
                           std::chrono::milliseconds refresh = 30000ms)
{
    model::Service s;
    s.name = "dns";
    s.vip.port = 53;
    model::DnsDiscovery d;
    d.name = name;
    d.record = record;
    d.resolver = model::Endpoint{*model::parse_ip_address("127.0.0.1"), port};
    d.refresh_interval = refresh;
    s.discovery = d;
    return s;
}

SourceOptions fast_options()
{
    SourceOptions o;
    o.dns_retry = 300ms;
    o.dns_timeout = 300ms;
    return o;
}

// A records become backends on the VIP port; a changed record is seen when its 1 s TTL expires.
TEST(DnsSource, ARecordsFollowTtl)
{
    REQUIRE_DNSMASQ();
    Dnsmasq dns;
    ASSERT_TRUE(dns.start("10.0.0.2 web.svc.test\n10.0.0.1 web.svc.test\n", 1)) << read_file(dns.log_path());
    Recorder rec;
    auto src = make_source(dns_service("web.svc.test", model::DnsRecord::kA, dns.port()), rec.callback(),
                           fast_options());
    ASSERT_TRUE(src) << src.error();
    ASSERT_TRUE((*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:53 w=100 10.0.0.2:53 w=100", kBound)) << rec.last_text();
    EXPECT_EQ((*src)->status().state, SourceState::kOk);

    dns.update_hosts("10.0.0.1 web.svc.test\n10.0.0.3 web.svc.test\n");
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:53 w=100 10.0.0.3:53 w=100", kBound)) << rec.last_text();
    (*src)->stop();
}

// A long TTL is capped by refresh_ms: a change behind a 600 s TTL is still seen within ~1.5 s.
TEST(DnsSource, LongTtlClampedToRefreshInterval)
{
    REQUIRE_DNSMASQ();
    Dnsmasq dns;
    ASSERT_TRUE(dns.start("10.0.0.1 web.svc.test\n", 600)) << read_file(dns.log_path());
    Recorder rec;
    auto src = make_source(dns_service("web.svc.test", model::DnsRecord::kA, dns.port(), 1500ms),
                           rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:53 w=100", kBound)) << rec.last_text();
    dns.update_hosts("10.0.0.9 web.svc.test\n");
    EXPECT_TRUE(rec.wait_for_text("10.0.0.9:53 w=100", kBound)) << rec.last_text();
    (*src)->stop();
}

// AAAA records give IPv6 backends, with discovery.port as their port.
TEST(DnsSource, AaaaRecords)
{
    REQUIRE_DNSMASQ();
    Dnsmasq dns;
    ASSERT_TRUE(dns.start("2001:db8::2 v6.svc.test\n2001:db8::1 v6.svc.test\n10.0.0.1 v6.svc.test\n", 1))
        << read_file(dns.log_path());
    Recorder rec;
    auto service = dns_service("v6.svc.test", model::DnsRecord::kAaaa, dns.port());
    std::get<model::DnsDiscovery>(*service.discovery).port = 5353;
    auto src = make_source(service, rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    EXPECT_TRUE(rec.wait_for_text("[2001:db8::1]:5353 w=100 [2001:db8::2]:5353 w=100", kBound)) << rec.last_text();
    (*src)->stop();
}

// SRV gives port and weight per target, keeps only the lowest priority, resolves targets
// to A and AAAA, and a changed record set (dnsmasq restarted) is picked up.
TEST(DnsSource, SrvRecordsGivePortsAndWeights)
{
    REQUIRE_DNSMASQ();
    Dnsmasq dns;
    const std::string hosts = "10.0.0.1 t1.svc.test\n2001:db8::2 t2.svc.test\n10.0.0.3 t3.svc.test\n";
    ASSERT_TRUE(dns.start(hosts, 1,
                          {"_api._tcp.svc.test,t1.svc.test,8080,0,10", "_api._tcp.svc.test,t2.svc.test,8081,0,0",
                           "_api._tcp.svc.test,t3.svc.test,9000,1,50", "_api._tcp.svc.test,gone.svc.test,9001,0,5"}))
        << read_file(dns.log_path());
    Recorder rec;
    auto src = make_source(dns_service("_api._tcp.svc.test", model::DnsRecord::kSrv, dns.port()), rec.callback(),
                           fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:8080 w=10 [2001:db8::2]:8081 w=1", kBound)) << rec.last_text();
    EXPECT_NE((*src)->status().last_error.find("gone.svc.test has no A or AAAA"), std::string::npos)
        << (*src)->status().last_error;

    dns.stop();
    ASSERT_TRUE(dns.start(hosts, 1, {"_api._tcp.svc.test,t3.svc.test,9000,0,50"})) << read_file(dns.log_path());
    EXPECT_TRUE(rec.wait_for_text("10.0.0.3:9000 w=50", kBound)) << rec.last_text();
    (*src)->stop();
}

// NXDOMAIN (the name removed) keeps the last good set and says stale; the name returning resumes.
TEST(DnsSource, NxdomainKeepsLastGood)
{
    REQUIRE_DNSMASQ();
    Dnsmasq dns;
    ASSERT_TRUE(dns.start("10.0.0.1 web.svc.test\n", 1)) << read_file(dns.log_path());
    Recorder rec;
    auto src = make_source(dns_service("web.svc.test", model::DnsRecord::kA, dns.port()), rec.callback(),
                           fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:53 w=100", kBound));
    dns.update_hosts("10.0.0.5 other.svc.test\n");
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, kBound));
    const auto st = (*src)->status();
    EXPECT_NE(st.last_error.find("web.svc.test A: Domain name not found"), std::string::npos) << st.last_error;
    EXPECT_EQ(rec.count(), 1u);
    EXPECT_EQ(st.backend_count, 1u);
    dns.update_hosts("10.0.0.1 web.svc.test\n10.0.0.2 web.svc.test\n");
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:53 w=100 10.0.0.2:53 w=100", kBound)) << rec.last_text();
    EXPECT_EQ((*src)->status().state, SourceState::kOk);
    (*src)->stop();
}

// The resolver down keeps the last good set (stale, error recorded); back up, the source resyncs.
TEST(DnsSource, ResolverDownKeepsLastGood)
{
    REQUIRE_DNSMASQ();
    Dnsmasq dns;
    ASSERT_TRUE(dns.start("10.0.0.1 web.svc.test\n", 1)) << read_file(dns.log_path());
    Recorder rec;
    auto src = make_source(dns_service("web.svc.test", model::DnsRecord::kA, dns.port()), rec.callback(),
                           fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:53 w=100", kBound));
    dns.stop();
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, kBound));
    std::this_thread::sleep_for(1500ms);  // several failed rounds
    EXPECT_EQ(rec.count(), 1u);
    EXPECT_EQ((*src)->status().state, SourceState::kStale);
    EXPECT_NE((*src)->status().last_error.find("keeping the last good"), std::string::npos);
    ASSERT_TRUE(dns.start("10.0.0.1 web.svc.test\n10.0.0.4 web.svc.test\n", 1)) << read_file(dns.log_path());
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:53 w=100 10.0.0.4:53 w=100", kBound)) << rec.last_text();
    EXPECT_EQ((*src)->status().state, SourceState::kOk);
    const auto t0 = std::chrono::steady_clock::now();
    (*src)->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

}  // namespace
}  // namespace sluice::discovery
