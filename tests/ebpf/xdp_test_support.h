// Shared by the XDP tests (tests/ebpf/xdp_*, tests/parity/): turns the
// fixture config (tests/fixtures/config.json) into the loader's
// Description, and runs single packets through the loaded xdp_lb with
// BPF_PROG_TEST_RUN, reporting verdicts in fixture notation.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "fixture_loader.h"
#include "loader/description.h"
#include "loader/xdp_dataplane.h"

namespace sluice::testing {

// config.json (with any patch applied) → the plane-neutral description.
// Port ifindexes are left 0: XdpRunner binds the test interface per packet.
Result<xdp::Description> description_from_config(const nlohmann::json& config);

// What one test run produced.
struct XdpRun {
    int error = 0;                 // errno of BPF_PROG_TEST_RUN, 0 when it ran
    uint32_t retval = 0;           // XDP_* action
    std::vector<uint8_t> output;   // frame after the program
    std::string verdict;           // "tx:PORT", "exception" or "drop:LABEL"
    std::string account;           // "tx", "exception" or "drop:LABEL" (stats delta)
    bool icmp_sent = false;        // icmp_sent moved
    bool icmp_rate_limited = false;  // icmp_rate_limited moved
};

// How the XDP plane differs from a fixture by design (the fixture test and
// the parity test both check these expectations instead of the table's).
enum class XdpDifference {
    kNone,
    // The kernel never runs XDP on a frame shorter than an Ethernet header,
    // and BPF_PROG_TEST_RUN refuses one (EINVAL). (The program still drops
    // such a frame as malformed_l2 if it ever sees one.)
    kRefusedByKernel,
    // XDP always passes non-VIP traffic to the kernel: the exception_path
    // switch is DPDK-only (the fixture's notes say so).
    kAlwaysPass,
    // XDP guarantees XDP_PACKET_HEADROOM (256 bytes) and test runs cannot
    // offer less than 224, so "no headroom" cannot happen: the packet is
    // forwarded exactly as the core forwards it with enough headroom.
    kHeadroomAlwaysEnough,
};
XdpDifference xdp_documented_difference(const Fixture& f);

// Fields of a fixture the XDP tests read straight from packets.json, so
// they do not depend on the loader's Fixture having them: `after` (run
// these fixtures first, on the same fresh state) and `xdp_expected` (what
// XDP does instead where it differs by design, e.g. unenforced payload
// rules: verdict, account, output).
struct FixtureExtras {
    std::vector<std::string> after;
    nlohmann::json xdp_expected;  // null when XDP does what the table says
};
Result<std::map<std::string, FixtureExtras>> load_fixture_extras(const std::string& dir);

// The core's verdict string in XDP terms: ARP/ND go to the DPDK runtime's
// control thread ("control"); XDP hands them to the kernel ("exception").
std::string as_xdp_verdict(const std::string& core_verdict);

// One loaded program fed by one Description. Not thread-safe, except
// run_raw(), which any number of threads may call at once.
class XdpRunner {
public:
    // `pin_dir`, `conn_table_size` (entries per CPU): see xdp::OpenOptions
    // (empty: nothing pinned; the default keeps each test's table at 4 MiB
    // per CPU), `log` its open() lines, `fast_path_mode` and
    // `shared_conn_table` as there.
    static Result<std::unique_ptr<XdpRunner>> create(const nlohmann::json& config, const std::string& pin_dir = "",
                                                     uint32_t conn_table_size = 65536,
                                                     std::function<void(const std::string&)> log = {},
                                                     uint8_t fast_path_mode = 1, bool shared_conn_table = false);

    // Runs `frame` as received on port `in_port` and classifies the result
    // from the return value and the per-CPU stats delta. The first call
    // pins the calling thread to the CPU it is on: the connection table has
    // one partition per CPU, and a test that follows a flow over several
    // packets (or runners: a restart) must meet the same partition.
    XdpRun run(const std::vector<uint8_t>& frame, uint16_t in_port);
    // Empty connection table and full token buckets: a fixture's fresh state.
    Result<void> reset_state();
    // Makes the test interface port `in_port` for the following runs.
    Result<void> bind_port(uint16_t in_port);
    // Runs the following packets as received on `ifindex` instead of the
    // loopback (a real interface: the kernel resolves it per test run).
    void set_ingress_interface(uint32_t ifindex)
    {
        ifindex_ = ifindex;
        bound_port_ = -1;
    }
    // Just the program: retval and output, no stats (thread-safe).
    int run_raw(const std::vector<uint8_t>& frame, uint32_t& retval, std::vector<uint8_t>& out) const;

    xdp::XdpDataplane& dataplane() { return *dp_; }
    const xdp::Description& description() const { return desc_; }

private:
    std::unique_ptr<xdp::XdpDataplane> dp_;
    xdp::Description desc_;
    uint32_t ifindex_ = 0;         // loopback: the ingress interface of every run
    int bound_port_ = -1;
};

// A 60-byte TCP segment (ACK-less header with `tcp_flags`) or UDP datagram
// 203.0.113.5:client_port → 198.51.100.7:port, untagged IPv4, checksums
// zero: the flow the XDP table and fast-path tests drive through the
// program.
std::vector<uint8_t> tcp_udp_frame(uint16_t client_port, uint8_t tcp_flags, bool udp, uint16_t port);

}  // namespace sluice::testing
