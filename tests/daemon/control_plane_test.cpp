// ControlPlane (the daemon's api::ControlPlaneView) over a real
// ServiceManager and a fake driver: reloads that apply, that are refused
// for a bad file, and that are refused for settings needing a restart;
// lookups; counters.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <fstream>

#include "../discovery/etcd_server.h"
#include "../discovery/support.h"
#include "config_text.h"
#include "daemon/control_plane.h"
#include "harness.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::daemon {
namespace {

using namespace sluice::daemon::testing;
using namespace std::chrono_literals;
namespace dt = sluice::discovery::testing;

constexpr auto kBound = 5000ms;

const std::string kHc = "health_check = { type = \"none\" }\n";

void write(const std::string& path, const std::string& text)
{
    std::ofstream out(path, std::ios::trunc);
    out << text;
}

struct Fixture {
    dt::TempDir dir;
    std::string path = dir.path() + "/sluice.toml";
    ManagerRunner runner;
    std::unique_ptr<ControlPlane> cp;

    explicit Fixture(const std::string& text)
    {
        write(path, text);
        EXPECT_TRUE(runner.start(load(text)).ok());
        EXPECT_TRUE(runner.wait_first_publish(kBound));
        cp = std::make_unique<ControlPlane>(path, runner.manager(), runner.driver(), "fake", 1, quiet_log());
    }
};

std::string two_services()
{
    return std::string(kNode) +
           service("a", "192.0.2.10:80", kHc + "backends = [ { address = \"10.0.0.1\" }, { address = \"10.0.0.2\" } ]") +
           service("b", "192.0.2.11:53", kHc + "protocol = \"udp\"\nbackends = [ { address = \"10.0.1.1\" } ]");
}

// A good reload applies live: a service added, one changed, one removed.
// A backend the reload drops from a service drains (source "removed") until
// drain_deadline, like one that leaves discovery.
TEST(ControlPlane, ReloadAppliesServiceChanges)
{
    Fixture f(two_services());
    auto& fake = f.runner.driver();
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "b") == "10.0.1.1"; }, kBound));

    write(f.path, std::string(kNode) +
                      service("a", "192.0.2.10:80", kHc + "backends = [ { address = \"10.0.0.2\" }, { address = "
                                                          "\"10.0.0.3\" } ]") +
                      service("c", "192.0.2.12:80", kHc + "backends = [ { address = \"10.0.2.1\" } ]"));
    auto r = f.cp->reload();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->applied);
    EXPECT_TRUE(fake.wait_for(
        [](const auto& p) {
            return p.services.size() == 2 && backends_text(p, "a") == "10.0.0.1~ 10.0.0.2 10.0.0.3" &&
                   backends_text(p, "c") == "10.0.2.1";
        },
        kBound));
    EXPECT_EQ(f.cp->stats().reloads_ok, 1u);
    EXPECT_EQ(f.cp->services().size(), 2u);
    // The digest of the config in force is the file's, as coreutils computes it.
    const auto sum = dt::run_capture("sha256sum " + f.path);
    ASSERT_TRUE(sum.has_value());
    EXPECT_EQ(f.cp->stats().config_sha256, sum->substr(0, 64));
    EXPECT_EQ(f.cp->stats().config_path, f.path);
    // A refused reload leaves it (and the config) as it was.
    write(f.path, "[daemon\n");
    auto bad = f.cp->reload();
    ASSERT_TRUE(bad.ok());
    EXPECT_FALSE(bad->applied);
    EXPECT_EQ(f.cp->stats().config_sha256, sum->substr(0, 64));
}

// The ICMP-error limit is not restart-only: a reload that changes it
// publishes a plan carrying the new values (each core's bucket then starts
// again at its next oversized packet: icmp_limit_test, xdp_icmp_limit_test).
TEST(ControlPlane, ReloadChangesTheIcmpErrorLimit)
{
    Fixture f(two_services());
    auto& fake = f.runner.driver();
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return p.node.icmp_errors_per_sec == 1000; }, kBound));
    std::string text = two_services();
    text.insert(text.find("type = \"dpdk\"\n") + 14, "icmp_errors_per_sec = 7\nicmp_errors_burst = 3\n");
    write(f.path, text);
    auto r = f.cp->reload();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->applied);
    EXPECT_TRUE(fake.wait_for(
        [](const auto& p) { return p.node.icmp_errors_per_sec == 7 && p.node.icmp_errors_burst == 3; }, kBound));
}

// A bad file is refused with file:line:column diagnostics; the running plan
// and config stay, and the refusal is counted.
TEST(ControlPlane, BadReloadIsRefusedAndOldConfigStays)
{
    Fixture f(two_services());
    auto& fake = f.runner.driver();
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "b") == "10.0.1.1"; }, kBound));
    const size_t before = fake.count();

    write(f.path, std::string(kNode) + service("a", "192.0.2.10:80", kHc + "backends = [ { address = \"10.0.0.9\", "
                                                                           "weight = 0 } ]\nfrobnicate = 1"));
    auto r = f.cp->reload();
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->applied);
    ASSERT_FALSE(r->diagnostics.empty());
    EXPECT_NE(r->diagnostics[0].find(f.path + ":"), std::string::npos) << r->diagnostics[0];
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(fake.count(), before);
    EXPECT_EQ(f.runner.manager().config().services.size(), 2u);
    EXPECT_EQ(f.cp->stats().reloads_failed, 1u);
    EXPECT_EQ(f.cp->stats().reloads_ok, 0u);
}

// Node settings the data plane took at start (here: worker lcores and the
// connection-table timeouts) are refused by name; nothing else applies.
TEST(ControlPlane, ReloadNeedingRestartIsRefused)
{
    Fixture f(two_services());
    auto& fake = f.runner.driver();
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "b") == "10.0.1.1"; }, kBound));
    const size_t before = fake.count();
    std::string text = two_services();
    text.replace(text.find("worker_lcores = [1]"), 19, "worker_lcores = [1, 2]");
    text += "[conntrack]\nudp_s = 5\n";
    text.replace(text.find("10.0.1.1"), 8, "10.0.1.9");  // a live change that must not sneak in
    write(f.path, text);
    auto r = f.cp->reload();
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->applied);
    std::string all;
    for (const auto& d : r->diagnostics) all += d + "\n";
    EXPECT_NE(all.find("dataplane.dpdk.worker_lcores changed: restart sluiced"), std::string::npos) << all;
    EXPECT_NE(all.find("conntrack.udp_s changed"), std::string::npos) << all;
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(fake.count(), before);
    EXPECT_EQ(backends_text(*f.runner.manager().current_plan(), "b"), "10.0.1.1");
}

// lookup names the service, the Maglev slot (flow hash mod M, the data
// plane's formula) and the backend in that slot; a non-VIP is an error.
TEST(ControlPlane, LookupFollowsTheTable)
{
    Fixture f(two_services());
    auto& fake = f.runner.driver();
    ASSERT_TRUE(fake.wait_for([](const auto& p) { return backends_text(p, "b") == "10.0.1.1"; }, kBound));
    api::LookupRequest req{"198.51.100.7", 40000, "192.0.2.10", 80, "tcp"};
    auto r = f.cp->lookup(req);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->service, "a");
    EXPECT_EQ(r->reason, "maglev");
    EXPECT_EQ(r->slot, r->flow_hash % 251);
    const auto plan = *f.runner.manager().current_plan();
    const auto* a = find_service(plan, "a");
    std::string expect;
    for (const auto& b : a->backends) {
        if (b.id == a->ring[r->slot]) expect = b.address.to_string();
    }
    EXPECT_EQ(r->backend, expect);

    // A connection entry (the data plane's) wins over the slot while its
    // backend is in the plan: the flow stays where it started.
    uint32_t other = SLUICE_BACKEND_NONE;
    std::string other_address;
    for (const auto& b : a->backends) {
        if (b.address.to_string() != expect) {
            other = b.id;
            other_address = b.address.to_string();
        }
    }
    sluice_flow_key key;
    std::memset(&key, 0, sizeof key);
    const uint8_t client[4] = {198, 51, 100, 7}, vip[4] = {192, 0, 2, 10};
    std::memcpy(key.src.bytes, client, 4);
    std::memcpy(key.dst.bytes, vip, 4);
    key.sport = htons(40000);
    key.dport = htons(80);
    key.proto = SLUICE_IPPROTO_TCP;
    key.family = SLUICE_FAMILY_IPV4;
    fake.set_connection(key, other);
    auto pinned = f.cp->lookup(req);
    ASSERT_TRUE(pinned.ok()) << pinned.error();
    EXPECT_EQ(pinned->reason, "connection table");
    EXPECT_EQ(pinned->backend, other_address);
    EXPECT_EQ(pinned->slot, r->slot);  // the slot is still reported
    // An entry naming a backend the plan no longer has is not followed.
    sluice_flow_key gone = key;
    gone.sport = htons(40001);
    fake.set_connection(gone, 999);
    auto repick = f.cp->lookup({"198.51.100.7", 40001, "192.0.2.10", 80, "tcp"});
    ASSERT_TRUE(repick.ok());
    EXPECT_EQ(repick->reason, "maglev");
    EXPECT_TRUE(repick->connection_table_error.empty());

    // A table that cannot be judged is said so, beside Maglev's pick, not
    // hidden behind it.
    fake.fail_connection_reads("clock program failed");
    auto unread = f.cp->lookup(req);
    ASSERT_TRUE(unread.ok()) << unread.error();
    EXPECT_EQ(unread->reason, "maglev");
    EXPECT_EQ(unread->slot, r->slot);
    EXPECT_NE(unread->connection_table_error.find("clock program failed"), std::string::npos);
    // And for the per-backend walk.
    EXPECT_FALSE(f.cp->connections().ok());
    // The same for the table's census in the stats: an error, no figures.
    const api::StatsView unread_stats = f.cp->stats();
    EXPECT_NE(unread_stats.conn_table.error.find("clock program failed"), std::string::npos);
    EXPECT_TRUE(unread_stats.conn_table.partitions.empty());
    fake.fail_connection_reads("");
    const api::StatsView stats = f.cp->stats();
    EXPECT_EQ(stats.conn_table.layout, "per-worker");
    ASSERT_EQ(stats.conn_table.partitions.size(), 1u);
    EXPECT_EQ(stats.conn_table.partitions[0].capacity, 1024u);
    EXPECT_EQ(stats.conn_table.partitions[0].live_estimate, 10u);
    EXPECT_TRUE(stats.conn_table.error.empty());
    // Connections by backend: the driver's counts by id, under each
    // service's backends in the plan (ids 0 and 1 have 3 and 1).
    auto conns = f.cp->connections();
    ASSERT_TRUE(conns.ok()) << conns.error();
    uint64_t total = 0, named = 0;
    for (const auto& s : conns->services) {
        for (const auto& b : s.backends) {
            total += b.connections;
            if (b.backend.in_plan && b.backend.backend_id <= 1) {
                EXPECT_EQ(b.connections, b.backend.backend_id == 0 ? 3u : 1u) << b.backend.address;
            }
            named += b.backend.in_plan ? 1 : 0;
        }
    }
    EXPECT_EQ(total, 4u);
    EXPECT_GE(named, 2u);
    // Asked again at once: the same walk's counts, not another walk.
    const uint64_t walks = fake.walks();
    auto again = f.cp->connections();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(fake.walks(), walks);
    EXPECT_GE(again->age_seconds, 0.0);
    EXPECT_LT(again->age_seconds, 1.0);
    ASSERT_EQ(stats.per_worker.size(), 1u);  // the driver's workers, as they are
    EXPECT_EQ(stats.per_worker[0].cpu, 1u);
    EXPECT_EQ(stats.per_worker[0].rx_packets, 100u);
    EXPECT_EQ(stats.per_worker[0].tx_packets, 90u);
    EXPECT_EQ(stats.per_worker[0].drops, 10u);
    EXPECT_EQ(stats.per_worker[0].busy_seconds, 0.25);
    EXPECT_TRUE(stats.counters_error.empty());
    fake.fail_stats("node counters: stats map: test");
    EXPECT_EQ(f.cp->stats().counters_error, "node counters: stats map: test");
    fake.fail_stats("");

    EXPECT_FALSE(f.cp->lookup({"198.51.100.7", 40000, "192.0.2.10", 81, "tcp"}).ok());
    EXPECT_FALSE(f.cp->lookup({"198.51.100.7", 40000, "192.0.2.11", 53, "tcp"}).ok());  // b is UDP
    EXPECT_TRUE(f.cp->lookup({"198.51.100.7", 40000, "192.0.2.11", 53, "udp"}).ok());
    EXPECT_FALSE(f.cp->lookup({"not-an-ip", 1, "192.0.2.10", 80, "tcp"}).ok());
    EXPECT_TRUE(f.cp->alive());
    EXPECT_TRUE(dt::wait_until([&] { return f.cp->ready(); }, kBound));
}

}  // namespace
}  // namespace sluice::daemon
