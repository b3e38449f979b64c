// Counter formatting for logs (see stats_format.h).
#include "driver/stats_format.h"

extern "C" {
#include "abi/drop_reason.h"
}

namespace sluice::driver {
namespace {

constexpr const char* kDropLabels[] = {
#define SLUICE_DROP_LABEL_(name, label, text) label,
    SLUICE_DROP_REASONS(SLUICE_DROP_LABEL_)
#undef SLUICE_DROP_LABEL_
};
static_assert(sizeof(kDropLabels) / sizeof(kDropLabels[0]) == SLUICE_DROP_MAX);

uint64_t total_drops(const sluice_stats& s)
{
    uint64_t n = 0;
    for (uint64_t d : s.drops) n += d;
    return n;
}

}  // namespace

std::string format_summary(const DataplaneStats& stats)
{
    const sluice_stats& s = stats.totals;
    std::string out = "rx " + std::to_string(s.rx_packets) + " pkts / " + std::to_string(s.rx_bytes) + " B, tx " +
                      std::to_string(s.tx_packets) + " pkts / " + std::to_string(s.tx_bytes) + " B, exception " +
                      std::to_string(s.exception_packets) + ", control " + std::to_string(s.control_packets) +
                      ", conn hits " + std::to_string(s.conn_hits) + " misses " + std::to_string(s.conn_misses) +
                      ", drops " + std::to_string(total_drops(s));
    std::string reasons;
    for (int r = 0; r < SLUICE_DROP_MAX; ++r) {
        if (s.drops[r] != 0) reasons += std::string(reasons.empty() ? "" : ", ") + kDropLabels[r] + " " +
                                        std::to_string(s.drops[r]);
    }
    if (!reasons.empty()) out += " (" + reasons + ")";
    return out;
}

std::vector<std::string> format_counters(const DataplaneStats& stats, const ForwardingPlan& plan)
{
    const sluice_stats& s = stats.totals;
    std::vector<std::string> out;
    const std::pair<const char*, uint64_t> named[] = {
        {"rx_packets", s.rx_packets},         {"rx_bytes", s.rx_bytes},
        {"tx_packets", s.tx_packets},         {"tx_bytes", s.tx_bytes},
        {"exception_packets", s.exception_packets}, {"control_packets", s.control_packets},
        {"icmp_sent", s.icmp_sent},           {"conn_hits", s.conn_hits},
        {"conn_misses", s.conn_misses},       {"conn_evictions", s.conn_evictions},
        {"icmp_rate_limited", s.icmp_rate_limited},
    };
    for (const auto& [name, value] : named) out.push_back(std::string(name) + " " + std::to_string(value));
    for (int r = 0; r < SLUICE_DROP_MAX; ++r) {
        if (s.drops[r] != 0) out.push_back(std::string("drop_") + kDropLabels[r] + " " + std::to_string(s.drops[r]));
    }
    for (const DataplaneStats::Backend& b : stats.backends) {
        std::string who = "? ?";
        for (const PlanService& svc : plan.services) {
            for (const PlanBackend& pb : svc.backends) {
                if (pb.id == b.id) who = svc.name + " " + pb.address.to_string();
            }
        }
        out.push_back("backend " + who + " id " + std::to_string(b.id) + " packets " +
                      std::to_string(b.sent.packets) + " bytes " + std::to_string(b.sent.bytes));
    }
    return out;
}

}  // namespace sluice::driver
