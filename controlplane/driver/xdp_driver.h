// The XDP implementation of DataplaneDriver: the xdp_lb program and its maps
// (ebpf/loader/) on the interfaces of [dataplane.xdp], filled from the plan
// (xdp_description.h), with next-hop MACs from the kernel's neighbour table
// (kernel_neighbors.h), republished when one appears or changes.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "driver/dataplane_driver.h"
#include "driver/mtu_check.h"
#include "driver/next_hop_log.h"
#include "driver/kernel_neighbors.h"
#include "driver/xdp_description.h"
#include "model/config.h"

namespace sluice::xdp {
class XdpDataplane;
}

namespace sluice::driver {

class XdpDriver final : public DataplaneDriver {
public:
    // `settings`: the [dataplane.xdp] section. `static_neighbors`: next-hop
    // MACs that need no resolution (sluiced --static-neighbor). Nothing is
    // loaded or attached until start().
    XdpDriver(model::XdpSettings settings, std::map<model::IpAddress, model::MacAddress> static_neighbors,
              LogSink log);
    ~XdpDriver() override;

    // Resolves the interfaces, loads the program with the maps pinned under
    // pin_path (reusing a previous run's, so established flows keep their
    // backends), asks the kernel for the next hops and waits briefly for
    // them, fills the maps, then attaches to every interface. On error
    // nothing stays attached.
    Result<void> start(const ForwardingPlan& initial) override;
    Result<void> publish(const ForwardingPlan& plan) override;
    // Reads the kernel's neighbour table (at most every kNeighborInterval),
    // asks it to resolve or refresh next hops, republishes on a change.
    void poll() override;
    DataplaneStats stats() const override;
    Result<std::optional<uint32_t>> connection_backend(const sluice_flow_key& key) const override;
    Result<ConnectionTableCensus> connection_census() const override;
    Result<std::vector<uint64_t>> connections_by_backend() const override;
    // Detaches from every interface; the pinned maps stay for the next run.
    void stop() override;

    // How often poll() reads the neighbour table.
    static constexpr std::chrono::milliseconds kNeighborInterval{250};

private:
    // start(): forgets pinned connection entries whose backend id the new
    // plan gives another backend (or none). Before the first apply().
    Result<void> forget_moved_ids(const ForwardingPlan& initial);
    using Clock = std::chrono::steady_clock;

    Result<std::vector<XdpInterface>> resolve_interfaces(const NodePlan& node) const;
    std::optional<model::MacAddress> lookup_neighbor(const model::IpAddress& address) const;
    // Reads the kernel's entries for the plan's next hops into learned_ and
    // probes the missing or stale ones; true when a MAC appeared, changed
    // or went away.
    bool refresh_neighbors(const ForwardingPlan& plan, bool probe_now);
    Result<void> apply(const ForwardingPlan& plan);
    void log_next_hops(const ForwardingPlan& plan);
    // Neighbour-table trouble repeats every poll: each message is logged once.
    void warn_once(const std::string& message);

    model::XdpSettings settings_;
    std::map<model::IpAddress, model::MacAddress> static_neighbors_;
    LogSink log_;
    std::unique_ptr<xdp::XdpDataplane> dp_;
    std::optional<KernelNeighbors> netlink_;
    std::vector<XdpInterface> interfaces_;   // NodePlan::ports order
    std::set<uint32_t> egress_ifindexes_;    // where next hops are resolved
    std::vector<uint32_t> attached_;         // ifindexes we attached to
    ForwardingPlan plan_;                    // the plan in force
    bool running_ = false;
    std::map<model::IpAddress, model::MacAddress> learned_;  // from the kernel, for the plan's next hops
    std::map<model::IpAddress, Clock::time_point> last_probe_;
    Clock::time_point next_refresh_{};
    NextHopLog next_hop_log_;                // what was said about each next hop
    MtuWarningLog mtu_log_;                  // what was said about egress MTUs too small
    std::set<std::string> warned_;

    mutable std::mutex stats_mutex_;         // guards stats_ids_ (stats() runs on any thread)
    std::vector<uint32_t> stats_ids_;        // every backend id published since start
    std::atomic<uint64_t> publications_{0};
    // The program's idle timeouts by entry state, for the readers of the
    // connection table below.
    std::array<std::atomic<uint64_t>, SLUICE_CONN_STATES> conn_timeout_ns_{};
    // What a reader of the connection table judges liveness by, as the
    // program does: its clock now and the timeouts by state. An error when
    // the clock cannot be read.
    struct TableClock {
        uint64_t now = 0;
        uint64_t timeout[SLUICE_CONN_STATES] = {};
    };
    Result<TableClock> table_clock() const;
};

}  // namespace sluice::driver
