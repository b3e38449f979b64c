// The DPDK implementation of DataplaneDriver: EAL arguments from
// [dataplane.dpdk], the runtime (dataplane/dpdk/runtime.h) and the plan ->
// snapshot translation, republished when a next hop's MAC changes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "driver/dataplane_driver.h"
#include "driver/mtu_check.h"
#include "driver/next_hop_log.h"
#include "driver/dpdk_state.h"
#include "model/config.h"

namespace sluice::dpdk {
class Runtime;
}
namespace sluice::filter {
class FilterSet;
struct FilterConfig;
}

namespace sluice::driver {

class DpdkDriver final : public DataplaneDriver {
public:
    // `settings`: the [dataplane.dpdk] section. `static_neighbors`: next-hop
    // MACs that need no resolution (operator-given, like `ip neigh ...
    // permanent`). Nothing starts until start().
    DpdkDriver(model::DpdkSettings settings, std::map<model::IpAddress, model::MacAddress> static_neighbors,
               LogSink log);
    ~DpdkDriver() override;

    Result<void> start(const ForwardingPlan& initial) override;
    Result<void> publish(const ForwardingPlan& plan) override;
    void poll() override;
    DataplaneStats stats() const override;
    Result<std::optional<uint32_t>> connection_backend(const sluice_flow_key& key) const override;
    Result<ConnectionTableCensus> connection_census() const override;
    Result<std::vector<uint64_t>> connections_by_backend() const override;
    void stop() override;

    // The EAL argument list for `settings`: lcores from main_lcore and
    // worker_lcores, then the operator's eal_args verbatim, then a
    // --file-prefix unique to this process unless the operator gave one
    // (two sluiced on one host must not share DPDK runtime files).
    static std::vector<std::string> eal_args(const model::DpdkSettings& settings, int pid);

    // Whether the EAL memory `settings` give (-m, --socket-mem, or the 64
    // MiB DPDK takes with --no-huge and neither) holds the mbuf pool and the
    // source ACL of `filters` twice over: a reload keeps the old snapshot's
    // LPM tables (64 MiB per address family with prefixes, filter/acl.h)
    // until the workers' grace period ends. The error says how much to ask
    // for. Unknown memory (hugepages, no -m) passes. Pure.
    static Result<void> check_filter_memory(const model::DpdkSettings& settings,
                                            const filter::FilterConfig& filters);

private:
    std::optional<model::MacAddress> lookup_neighbor(const model::IpAddress& address) const;
    // Builds and publishes the snapshot of `plan` with the neighbours known
    // now, and tells the neighbour manager what `plan` needs answered and
    // resolved.
    Result<void> publish_locked(const ForwardingPlan& plan);
    // Logs next hops that gained, changed or lost their MAC since last time.
    void log_next_hops(const ForwardingPlan& plan);
    // The FilterSet for `plan`: the one in force when the plan's filters are
    // the same, a new one otherwise, null when the plan has none. Builds
    // LPM tables in EAL memory (fails with the reason when it runs out).
    Result<std::shared_ptr<const filter::FilterSet>> filters_for(const ForwardingPlan& plan);

    model::DpdkSettings settings_;
    std::map<model::IpAddress, model::MacAddress> static_neighbors_;
    LogSink log_;
    std::unique_ptr<dpdk::Runtime> runtime_;
    std::vector<StartedPort> ports_;
    ForwardingPlan plan_;                 // the plan in force
    bool running_ = false;
    uint64_t neighbor_generation_ = 0;    // NeighborManager::generation() the snapshot used
    NextHopLog next_hop_log_;                // what was said about each next hop
    MtuWarningLog mtu_log_;               // what was said about egress MTUs too small
    std::shared_ptr<const filter::FilterSet> filters_;  // in force (null: none)
    std::string filters_key_;                           // filter_key() of the config filters_ was built from
};

}  // namespace sluice::driver
