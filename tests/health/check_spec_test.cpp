// Mapping the config model onto check targets (probe port precedence,
// field by field) and the validation the checker applies before queueing.
#include <gtest/gtest.h>

#include "health/check_spec.h"

namespace sluice::health {
namespace {

using namespace std::chrono_literals;

model::Service service_with_vip_port(uint16_t port)
{
    model::Service service;
    service.name = "web";
    service.vip = model::Endpoint{model::parse_ip_address("192.0.2.1").value(), port};
    return service;
}

model::Backend backend_at(const char* address, std::optional<uint16_t> port)
{
    model::Backend backend;
    backend.address = model::parse_ip_address(address).value();
    backend.port = port;
    return backend;
}

// Proves: the probe port is health_check.port, else the backend's port,
// else the VIP's port; with none of them (a port-0 VIP) the target is
// refused unless the type is none.
TEST(CheckSpec, ProbePortPrecedence)
{
    model::Service service = service_with_vip_port(80);
    auto target = target_for(service, backend_at("10.0.0.1", std::nullopt));
    ASSERT_TRUE(target.ok()) << target.error();
    EXPECT_EQ(target->key.port, 80);
    EXPECT_EQ(target->key.service, "web");
    EXPECT_EQ(target->key.address.to_string(), "10.0.0.1");

    target = target_for(service, backend_at("10.0.0.1", 8080));
    ASSERT_TRUE(target.ok());
    EXPECT_EQ(target->key.port, 8080);

    service.health_check.port = 9000;
    target = target_for(service, backend_at("10.0.0.1", 8080));
    ASSERT_TRUE(target.ok());
    EXPECT_EQ(target->key.port, 9000);

    model::Service all_ports = service_with_vip_port(0);
    target = target_for(all_ports, backend_at("10.0.0.1", std::nullopt));
    ASSERT_FALSE(target.ok());
    EXPECT_NE(target.error().find("no probe port"), std::string::npos) << target.error();
    all_ports.health_check.type = model::HealthCheckType::kNone;
    EXPECT_TRUE(target_for(all_ports, backend_at("10.0.0.1", std::nullopt)).ok());
}

// Proves: every model field lands in the spec; the single expected status
// becomes a one-code range; TLS verification is off (the model has no key).
TEST(CheckSpec, FromModelCopiesEveryField)
{
    model::HealthCheck check;
    check.type = model::HealthCheckType::kHttps;
    check.interval = 5000ms;
    check.timeout = 700ms;
    check.rise = 4;
    check.fall = 6;
    check.http_path = "/ready";
    check.http_host = "svc.example";
    check.http_expect_status = 204;
    check.udp_send = "x";
    check.udp_expect = "y";
    const CheckSpec spec = spec_from_model(check);
    EXPECT_EQ(spec.type, CheckType::kHttps);
    EXPECT_EQ(spec.interval, 5000ms);
    EXPECT_EQ(spec.timeout, 700ms);
    EXPECT_EQ(spec.rise, 4u);
    EXPECT_EQ(spec.fall, 6u);
    EXPECT_EQ(spec.http_path, "/ready");
    EXPECT_EQ(spec.http_host, "svc.example");
    ASSERT_EQ(spec.http_expect.size(), 1u);
    EXPECT_EQ(spec.http_expect[0], (StatusRange{204, 204}));
    EXPECT_FALSE(spec.tls_verify);
    EXPECT_EQ(spec.udp_send, "x");
    EXPECT_EQ(spec.udp_expect, "y");
    EXPECT_EQ(spec.initial, InitialState::kUnknown);
}

// Proves: validation refuses header/request-line injection through the
// path or Host, out-of-range or inverted status ranges, and an empty list.
TEST(CheckSpec, ValidationRefusesUnsafeHttpValues)
{
    Target target;
    target.key = TargetKey{"web", model::parse_ip_address("10.0.0.1").value(), 80};
    target.spec.type = CheckType::kHttp;
    target.spec.interval = 1000ms;
    target.spec.timeout = 500ms;
    EXPECT_TRUE(validate(target).ok());

    Target bad = target;
    bad.spec.http_path = "/a\r\nX-Injected: 1";
    EXPECT_FALSE(validate(bad).ok());
    bad = target;
    bad.spec.http_path = "relative";
    EXPECT_FALSE(validate(bad).ok());
    bad = target;
    bad.spec.http_host = "evil\r\nX: y";
    EXPECT_FALSE(validate(bad).ok());
    bad = target;
    bad.spec.http_host = "user@host";
    EXPECT_FALSE(validate(bad).ok());
    bad = target;
    bad.spec.http_expect = {StatusRange{300, 200}};
    EXPECT_FALSE(validate(bad).ok());
    bad = target;
    bad.spec.http_expect = {StatusRange{99, 200}};
    EXPECT_FALSE(validate(bad).ok());
    bad = target;
    bad.spec.http_expect.clear();
    EXPECT_FALSE(validate(bad).ok());
    Target fine = target;
    fine.spec.http_host = "[2001:db8::1]:8443";
    EXPECT_TRUE(validate(fine).ok());
}

}  // namespace
}  // namespace sluice::health
