// The control-plane half of the XDP end-to-end test, without BPF or
// privileges: config text -> ForwardingPlan -> xdp::Description. Proves the
// interfaces become ports with their kernel MAC/MTU/ifindex and the
// gateway's MAC as next hop, L2 DSR backends carry their own MACs, VIP keys
// and rings are the plan's, ACL scopes and rate limits land per VIP, and the
// next hops the driver asks the kernel for are exactly the needed ones.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "config/loader.h"
#include "driver/forwarding_plan.h"
#include "driver/xdp_description.h"

extern "C" {
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace {

using sluice::driver::ForwardingPlan;
using sluice::driver::PlanBuilder;
using sluice::driver::XdpInterface;
using sluice::model::IpAddress;
using sluice::model::MacAddress;

constexpr const char* kNode = R"(
[dataplane]
type = "xdp"
[dataplane.xdp]
interfaces = ["eth1", "eth2"]
[network]
source_ipv4 = "192.0.2.2"
gateway_ipv4 = "192.0.2.1"
[conntrack]
tcp_established_s = 100
udp_s = 300
[filter]
deny = ["198.51.100.0/24"]
)";

std::string service(const std::string& name, const std::string& vip, const std::string& forwarding,
                    const std::string& backends, const std::string& extra = "")
{
    return "[[service]]\nname = \"" + name + "\"\nvip = \"" + vip + "\"\nforwarding = \"" + forwarding +
           "\"\ntable_size = 251\nhealth_check = { type = \"none\" }\nbackends = [" + backends + "]\n" + extra;
}

ForwardingPlan plan_of(const std::string& services)
{
    auto r = sluice::config::load_string(std::string(kNode) + services, "xdp_plan_test.toml");
    std::string diags;
    for (const auto& d : r.diagnostics) diags += d.to_string() + "\n";
    EXPECT_TRUE(r.ok()) << diags;
    PlanBuilder builder;
    auto plan = builder.build(*r.config);
    EXPECT_TRUE(plan.ok()) << plan.error();
    return *plan;
}

IpAddress ip(const std::string& text) { return *sluice::model::parse_ip_address(text); }
MacAddress mac(const std::string& text) { return *sluice::model::parse_mac_address(text); }

std::vector<XdpInterface> interfaces()
{
    return {XdpInterface{"eth1", 7, {2, 0, 0, 0, 0, 7}, 1600}, XdpInterface{"eth2", 9, {2, 0, 0, 0, 0, 9}, 1500}};
}

// A neighbour table holding the gateway and two of three backends.
std::optional<MacAddress> neighbors(const IpAddress& a)
{
    static const std::map<IpAddress, MacAddress> table{{ip("192.0.2.1"), mac("02:00:00:00:00:01")},
                                                       {ip("192.0.2.21"), mac("02:00:00:00:00:21")},
                                                       {ip("192.0.2.22"), mac("02:00:00:00:00:22")}};
    auto it = table.find(a);
    if (it == table.end()) return std::nullopt;
    return it->second;
}

bool mac_is(const uint8_t* got, const std::string& want)
{
    return std::memcmp(got, mac(want).bytes.data(), 6) == 0;
}

const std::string kThree = R"({address="192.0.2.21"},{address="192.0.2.22"},{address="192.0.2.23", state="draining"})";

// Each configured interface is one port (id = its position), one-arm, with
// the interface's own MAC, MTU and ifindex, and the gateway's MAC as the
// next hop of IPIP/GUE; the node's tunnel source and the longest idle
// timeout are the node's settings.
TEST(XdpDescription, InterfacesBecomePortsWithTheGatewayAsNextHop)
{
    const ForwardingPlan plan = plan_of(service("web", "192.0.2.100:80", "ipip", kThree));
    auto d = sluice::driver::build_xdp_description(plan, interfaces(), neighbors);
    ASSERT_TRUE(d.ok()) << d.error();
    ASSERT_EQ(d->ports.size(), 2u);
    for (uint16_t i = 0; i < 2; ++i) {
        const auto& p = d->ports[i];
        EXPECT_EQ(p.id, i);
        EXPECT_EQ(p.egress_port, i);
        EXPECT_EQ(p.ifindex, interfaces()[i].ifindex);
        EXPECT_EQ(p.mtu, interfaces()[i].mtu);
        EXPECT_EQ(std::memcmp(p.mac, interfaces()[i].mac.data(), 6), 0);
        EXPECT_TRUE(mac_is(p.nexthop_mac, "02:00:00:00:00:01"));
    }
    const IpAddress src = ip("192.0.2.2");
    EXPECT_EQ(std::memcmp(d->node.local_v4.bytes, src.bytes.data(), 16), 0);
    // Each state ages with its own [conntrack] timeout, as on the DPDK plane
    // (tcp_syn_fin_s keeps its default of 30 s).
    EXPECT_EQ(d->node.conn_timeout_ns[SLUICE_CONN_TCP_TRANSITORY], 30ull * 1000 * 1000 * 1000);
    EXPECT_EQ(d->node.conn_timeout_ns[SLUICE_CONN_TCP_ESTABLISHED], 100ull * 1000 * 1000 * 1000);
    EXPECT_EQ(d->node.conn_timeout_ns[SLUICE_CONN_TCP_CLOSING], 30ull * 1000 * 1000 * 1000);
    EXPECT_EQ(d->node.conn_timeout_ns[SLUICE_CONN_UDP], 300ull * 1000 * 1000 * 1000);
}

// IPIP backends take no MAC of their own (they leave through the gateway);
// L2 DSR backends take their neighbour entry's, zero while unresolved; a
// draining backend stays valid with the DRAINING flag.
TEST(XdpDescription, L2DsrBackendsCarryTheirMacs)
{
    const ForwardingPlan plan = plan_of(service("dsr", "192.0.2.100:80", "l2dsr", kThree) +
                                        service("tun", "192.0.2.101:80", "ipip", kThree));
    auto d = sluice::driver::build_xdp_description(plan, interfaces(), neighbors);
    ASSERT_TRUE(d.ok()) << d.error();
    ASSERT_EQ(d->backends.size(), 6u);
    std::map<std::string, const sluice::xdp::BackendSpec*> by_key;
    for (const auto& s : plan.services) {
        for (const auto& b : s.backends) {
            for (const auto& spec : d->backends) {
                if (spec.id == b.id) by_key[s.name + "/" + b.address.to_string()] = &spec;
            }
        }
    }
    ASSERT_EQ(by_key.size(), 6u);
    EXPECT_TRUE(mac_is(by_key["dsr/192.0.2.21"]->mac, "02:00:00:00:00:21"));
    EXPECT_TRUE(mac_is(by_key["dsr/192.0.2.22"]->mac, "02:00:00:00:00:22"));
    EXPECT_TRUE(mac_is(by_key["dsr/192.0.2.23"]->mac, "00:00:00:00:00:00"));  // unresolved
    EXPECT_TRUE(mac_is(by_key["tun/192.0.2.21"]->mac, "00:00:00:00:00:00"));
    EXPECT_EQ(by_key["dsr/192.0.2.21"]->flags, SLUICE_BACKEND_F_VALID);
    EXPECT_EQ(by_key["dsr/192.0.2.23"]->flags, SLUICE_BACKEND_F_VALID | SLUICE_BACKEND_F_DRAINING);
    EXPECT_EQ(by_key["tun/192.0.2.22"]->family, SLUICE_FAMILY_IPV4);
}

// VIP keys as the program looks them up (port in network order, protocol,
// family), with the plan's vip_id, mode, GUE port and ring unchanged.
TEST(XdpDescription, VipsAreThePlansServices)
{
    const ForwardingPlan plan = plan_of(service("web", "192.0.2.100:80", "gue", kThree, "gue_port = 7000\n") +
                                        service("dns", "192.0.2.53:53", "l2dsr", kThree, "protocol = \"udp\"\n"));
    auto d = sluice::driver::build_xdp_description(plan, interfaces(), neighbors);
    ASSERT_TRUE(d.ok()) << d.error();
    ASSERT_EQ(d->vips.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        const auto& s = plan.services[i];
        const auto& v = d->vips[i];
        EXPECT_EQ(v.vip_id, s.vip_id);
        EXPECT_EQ(v.ring.slots(), s.ring.slots());
        EXPECT_TRUE(v.ring.shares_with(s.ring)) << "the description holds the plan's ring, not a copy";
        EXPECT_EQ(v.ring.size(), 251u);
        EXPECT_EQ(v.key.port, __builtin_bswap16(s.vip.port));
        EXPECT_EQ(v.key.family, SLUICE_FAMILY_IPV4);
        EXPECT_EQ(std::memcmp(v.key.addr.bytes, s.vip.address.bytes.data(), 16), 0);
    }
    EXPECT_EQ(d->vips[0].forwarding, SLUICE_FWD_GUE);
    EXPECT_EQ(d->vips[0].gue_port, 7000);
    EXPECT_EQ(d->vips[0].key.proto, SLUICE_IPPROTO_TCP);
    EXPECT_EQ(d->vips[1].forwarding, SLUICE_FWD_L2DSR);
    EXPECT_EQ(d->vips[1].key.proto, SLUICE_IPPROTO_UDP);
    EXPECT_EQ(d->vips[1].key.port, __builtin_bswap16(53));
}

// The global ACL is scoped to SLUICE_MAX_VIPS, a service's to its vip_id;
// a service's token buckets become its VipSpec limits.
TEST(XdpDescription, FiltersAndRateLimitsAreScoped)
{
    const ForwardingPlan plan = plan_of(service("web", "192.0.2.100:80", "ipip", kThree,
                                                "[service.filter]\nallow = [\"203.0.113.0/24\"]\n"
                                                "[service.rate_limit]\npackets_per_sec = 1000\n"
                                                "new_flows_per_sec = 10\nnew_flows_burst = 20\n"));
    auto d = sluice::driver::build_xdp_description(plan, interfaces(), neighbors);
    ASSERT_TRUE(d.ok()) << d.error();
    ASSERT_EQ(d->acl.size(), 2u);
    EXPECT_EQ(d->acl[0].scope, static_cast<uint32_t>(SLUICE_MAX_VIPS));
    EXPECT_TRUE(d->acl[0].deny);
    EXPECT_EQ(d->acl[0].prefix_len, 24);
    EXPECT_EQ(d->acl[1].scope, plan.services[0].vip_id);
    EXPECT_FALSE(d->acl[1].deny);
    const IpAddress allowed = ip("203.0.113.0");
    EXPECT_EQ(std::memcmp(d->acl[1].addr.bytes, allowed.bytes.data(), 16), 0);
    const auto& limits = d->vips[0].limits;
    EXPECT_EQ(limits.packets_per_sec, 1000u);
    EXPECT_EQ(limits.packets_burst, 1000u);  // defaults to the rate
    EXPECT_EQ(limits.new_flows_per_sec, 10u);
    EXPECT_EQ(limits.new_flows_burst, 20u);
}

// Without the gateway's MAC the next hop stays zero (the program counts
// NO_NEXTHOP), and a description for fewer interfaces than the plan names
// is refused.
TEST(XdpDescription, UnresolvedGatewayAndMissingInterfaces)
{
    const ForwardingPlan plan = plan_of(service("web", "192.0.2.100:80", "ipip", kThree));
    auto d = sluice::driver::build_xdp_description(plan, interfaces(),
                                                   [](const IpAddress&) { return std::optional<MacAddress>(); });
    ASSERT_TRUE(d.ok()) << d.error();
    EXPECT_TRUE(mac_is(d->ports[0].nexthop_mac, "00:00:00:00:00:00"));
    auto short_of_one = sluice::driver::build_xdp_description(plan, {interfaces()[0]}, neighbors);
    EXPECT_FALSE(short_of_one.ok());
}

// What the driver asks the kernel to resolve: L2 DSR backends (draining
// ones too: they keep established flows), and the gateway only when an
// IPIP/GUE service has backends.
TEST(XdpDescription, NextHopsAreTheNeededOnes)
{
    using sluice::driver::next_hop_addresses;
    EXPECT_EQ(next_hop_addresses(plan_of(service("dsr", "192.0.2.100:80", "l2dsr", kThree))),
              (std::vector<IpAddress>{ip("192.0.2.21"), ip("192.0.2.22"), ip("192.0.2.23")}));
    EXPECT_EQ(next_hop_addresses(plan_of(service("tun", "192.0.2.100:80", "gue", kThree))),
              (std::vector<IpAddress>{ip("192.0.2.1")}));
    EXPECT_EQ(next_hop_addresses(plan_of(service("tun", "192.0.2.100:80", "ipip", kThree) +
                                             service("dsr", "192.0.2.101:80", "l2dsr", R"({address="192.0.2.21"})"))),
              (std::vector<IpAddress>{ip("192.0.2.1"), ip("192.0.2.21")}));
}

// IPv6: the node's IPv6 tunnel source, the IPv6 gateway's MAC as next hop
// when there is no IPv4 gateway, IPv6 VIP keys and backends, and the IPv6
// gateway as the next hop to resolve for IPv6 backends behind IPIP.
TEST(XdpDescription, Ipv6NodeVipsAndNextHops)
{
    const std::string node = R"(
[dataplane]
type = "xdp"
[dataplane.xdp]
interfaces = ["eth1"]
[network]
source_ipv6 = "2001:db8::2"
gateway_ipv6 = "2001:db8::1"
)";
    auto r = sluice::config::load_string(node + service("v6", "[2001:db8::100]:443", "ipip",
                                                        R"({address="2001:db8::21"},{address="2001:db8::22"})"),
                                         "xdp_plan_test_v6.toml");
    ASSERT_TRUE(r.ok());
    PlanBuilder builder;
    auto plan = builder.build(*r.config);
    ASSERT_TRUE(plan.ok()) << plan.error();
    auto d = sluice::driver::build_xdp_description(
        *plan, {interfaces()[0]}, [](const IpAddress& a) -> std::optional<MacAddress> {
            if (a == ip("2001:db8::1")) return mac("02:00:00:00:06:01");
            return std::nullopt;
        });
    ASSERT_TRUE(d.ok()) << d.error();
    EXPECT_TRUE(mac_is(d->ports[0].nexthop_mac, "02:00:00:00:06:01"));
    const IpAddress src = ip("2001:db8::2");
    EXPECT_EQ(std::memcmp(d->node.local_v6.bytes, src.bytes.data(), 16), 0);
    ASSERT_EQ(d->vips.size(), 1u);
    EXPECT_EQ(d->vips[0].key.family, SLUICE_FAMILY_IPV6);
    EXPECT_EQ(d->vips[0].key.port, __builtin_bswap16(443));
    ASSERT_EQ(d->backends.size(), 2u);
    for (const auto& b : d->backends) EXPECT_EQ(b.family, SLUICE_FAMILY_IPV6);
    EXPECT_EQ(sluice::driver::next_hop_addresses(*plan), (std::vector<IpAddress>{ip("2001:db8::1")}));
}

// conn_table_mode: forced either way; "auto" shares the table when one
// interface has no device behind it in sysfs, itself or under it, and
// names it, and keeps a partition per CPU when every one is a device or
// stacks on devices. A made-up sysfs tree: eth0 and eth1 with a device
// link, veth0 without; bond0 over eth0 and eth1, vlan over bond0, br0 over
// eth1 and veth0 (lower_* links, as the kernel makes them).
TEST(XdpConnTableLayout, ModeAndInterfaces)
{
    namespace fs = std::filesystem;
    char dir[] = "/tmp/sluice-sysfs-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const fs::path net(dir);
    fs::create_directories(net / "eth0" / "device");
    fs::create_directories(net / "eth1" / "device");
    fs::create_directories(net / "veth0");
    for (const char* d : {"bond0", "bond0.10", "br0"}) fs::create_directories(net / d);
    fs::create_directory_symlink("../eth0", net / "bond0" / "lower_eth0");
    fs::create_directory_symlink("../eth1", net / "bond0" / "lower_eth1");
    fs::create_directory_symlink("../bond0", net / "bond0.10" / "lower_bond0");
    fs::create_directory_symlink("../eth1", net / "br0" / "lower_eth1");
    fs::create_directory_symlink("../veth0", net / "br0" / "lower_veth0");
    auto itf = [](const char* name) {
        XdpInterface i;
        i.name = name;
        return i;
    };
    using sluice::driver::choose_conn_table_layout;
    using Mode = sluice::model::XdpConnTableMode;
    const std::vector<XdpInterface> nics = {itf("eth0"), itf("eth1")};
    const std::vector<XdpInterface> mixed = {itf("eth0"), itf("veth0")};

    const auto nic_auto = choose_conn_table_layout(Mode::kAuto, nics, dir);
    EXPECT_FALSE(nic_auto.shared) << nic_auto.why;
    EXPECT_NE(nic_auto.why.find("every interface is a device"), std::string::npos) << nic_auto.why;
    const auto mixed_auto = choose_conn_table_layout(Mode::kAuto, mixed, dir);
    EXPECT_TRUE(mixed_auto.shared) << mixed_auto.why;
    EXPECT_NE(mixed_auto.why.find("and veth0, a virtual interface"), std::string::npos) << mixed_auto.why;
    const auto stacked = choose_conn_table_layout(Mode::kAuto, {itf("bond0"), itf("bond0.10")}, dir);
    EXPECT_FALSE(stacked.shared) << "a bond and a VLAN over NICs: " << stacked.why;
    const auto bridge = choose_conn_table_layout(Mode::kAuto, {itf("eth0"), itf("br0")}, dir);
    EXPECT_TRUE(bridge.shared) << bridge.why;
    EXPECT_NE(bridge.why.find("br0 stacks on veth0"), std::string::npos) << bridge.why;
    EXPECT_TRUE(choose_conn_table_layout(Mode::kAuto, {itf("nosuch0")}, dir).shared) << "unknown: no promise";
    EXPECT_FALSE(choose_conn_table_layout(Mode::kPerCpu, mixed, dir).shared);
    EXPECT_TRUE(choose_conn_table_layout(Mode::kShared, nics, dir).shared);
    fs::remove_all(net);
}

}  // namespace
