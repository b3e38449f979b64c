// The etcd source's security options against a real etcd: user/password
// authentication (token header) and mutual TLS with CA, cert and key files.
#include <gtest/gtest.h>

#include "discovery/source.h"
#include "etcd_server.h"
#include "support.h"
#include "test_env.h"

namespace sluice::discovery {
namespace {

using namespace testing;
using namespace std::chrono_literals;

constexpr auto kBound = 5000ms;
const std::string kPrefix = "/sluice/services/api/";
const char* const kOpenssl = "/usr/bin/openssl";

#define REQUIRE_ETCD()                                                                       \
    SLUICE_REQUIRE(have_program(kEtcd) && have_program(kEtcdctl), "etcd and etcdctl (etcd-server, etcd-client)")

model::Service etcd_service(const std::string& endpoint)
{
    model::Service s;
    s.name = "api";
    s.vip.port = 80;
    model::EtcdDiscovery d;
    d.endpoints = {endpoint};
    d.prefix = kPrefix;
    d.dial_timeout = 1000ms;
    s.discovery = d;
    return s;
}

model::EtcdDiscovery& etcd_of(model::Service& s) { return std::get<model::EtcdDiscovery>(*s.discovery); }

SourceOptions fast_options()
{
    SourceOptions o;
    o.backoff_initial = 100ms;
    o.backoff_max = 500ms;
    return o;
}

// With auth enabled, the source authenticates as its user and watches with the token;
// a wrong password is an error state with no set, never an empty one.
TEST(EtcdSecurity, UserPasswordAuthentication)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "a", R"({"address": "10.0.0.1"})"));
    ASSERT_TRUE(etcd.ctl("user add root:rootpw --interactive=false"));
    ASSERT_TRUE(etcd.ctl("user add sluice:s3cret --interactive=false"));
    ASSERT_TRUE(etcd.ctl("role add reader"));
    ASSERT_TRUE(etcd.ctl("role grant-permission reader read /sluice/ --prefix=true"));
    ASSERT_TRUE(etcd.ctl("user grant-role sluice reader"));
    ASSERT_TRUE(etcd.ctl("auth enable"));
    etcd.ctl_as("root:rootpw");
    ASSERT_FALSE(run_capture(std::string(kEtcdctl) + " --endpoints=" + etcd.url() + " get / --prefix"))
        << "auth is not enforced";

    write_file(etcd.dir() + "/password", "s3cret\n");
    write_file(etcd.dir() + "/wrong", "guess\n");
    auto service = etcd_service(etcd.url());
    etcd_of(service).username = "sluice";
    etcd_of(service).password_file = etcd.dir() + "/password";
    Recorder rec;
    auto src = make_source(service, rec.callback(), fast_options());
    ASSERT_TRUE(src) << src.error();
    ASSERT_TRUE((*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100", kBound)) << (*src)->status().last_error;
    ASSERT_TRUE(etcd.put(kPrefix + "b", R"({"address": "10.0.0.2"})"));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=100", kBound)) << rec.last_text();
    (*src)->stop();

    etcd_of(service).password_file = etcd.dir() + "/wrong";
    Recorder denied;
    auto bad = make_source(service, denied.callback(), fast_options());
    ASSERT_TRUE(bad && (*bad)->start());
    ASSERT_TRUE(wait_until([&] { return (*bad)->status().state == SourceState::kError; }, kBound));
    EXPECT_NE((*bad)->status().last_error.find("authenticate as sluice"), std::string::npos)
        << (*bad)->status().last_error;
    EXPECT_EQ(denied.count(), 0u);
    (*bad)->stop();

    // An unreadable password file is refused when the source is made.
    etcd_of(service).password_file = etcd.dir() + "/missing";
    EXPECT_FALSE(make_source(service, denied.callback(), fast_options()));
}

// Runs openssl (bounded); true on success.
bool openssl(const std::string& args)
{
    return run_capture(std::string(kOpenssl) + " " + args).has_value();
}

// Mutual TLS: the CA verifies etcd, the client certificate and key get the source in;
// without the client certificate the same endpoint refuses it.
TEST(EtcdSecurity, MutualTls)
{
    REQUIRE_ETCD();
    SLUICE_REQUIRE(have_program(kOpenssl), "openssl");
    TempDir pki;
    const std::string d = pki.path();
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    // clientAuth too: etcd's JSON gateway dials its own gRPC port with the server
    // certificate as its client certificate (etcd-io/etcd#16590).
    write_file(d + "/server.ext", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
    write_file(d + "/client.ext", "extendedKeyUsage=clientAuth\n");
    ASSERT_TRUE(openssl("req -x509 " + ec + " -keyout " + d + "/ca.key -out " + d +
                        "/ca.pem -days 1 -subj /CN=sluice-test-ca"));
    for (const std::string who : {"server", "client"}) {
        ASSERT_TRUE(openssl("req " + ec + " -keyout " + d + "/" + who + ".key -out " + d + "/" + who +
                            ".csr -subj /CN=" + who));
        ASSERT_TRUE(openssl("x509 -req -in " + d + "/" + who + ".csr -CA " + d + "/ca.pem -CAkey " + d +
                            "/ca.key -CAcreateserial -days 1 -out " + d + "/" + who + ".pem -extfile " + d + "/" +
                            who + ".ext"));
    }
    EtcdServer etcd;
    etcd.use_tls(d + "/ca.pem", d + "/server.pem", d + "/server.key", d + "/client.pem", d + "/client.key");
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "a", R"({"address": "10.0.0.1"})"));

    auto service = etcd_service(etcd.url());
    ASSERT_EQ(etcd.url().rfind("https://", 0), 0u);
    etcd_of(service).ca_file = d + "/ca.pem";
    etcd_of(service).cert_file = d + "/client.pem";
    etcd_of(service).key_file = d + "/client.key";
    Recorder rec;
    auto src = make_source(service, rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100", kBound)) << (*src)->status().last_error;
    ASSERT_TRUE(etcd.put(kPrefix + "b", R"({"address": "10.0.0.2"})"));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=100", kBound)) << rec.last_text();
    (*src)->stop();

    etcd_of(service).cert_file.reset();
    etcd_of(service).key_file.reset();
    Recorder refused;
    auto bad = make_source(service, refused.callback(), fast_options());
    ASSERT_TRUE(bad && (*bad)->start());
    ASSERT_TRUE(wait_until([&] { return (*bad)->status().state == SourceState::kError; }, kBound));
    EXPECT_EQ(refused.count(), 0u);
    (*bad)->stop();
}

}  // namespace
}  // namespace sluice::discovery
