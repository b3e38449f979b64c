// The worker's state and the filterless instantiation of process_burst();
// the pipeline itself is in core/pipeline_impl.h.
#include "core/pipeline.h"

#include "core/pipeline_impl.h"

namespace sluice::core {

Worker::Worker(const ConnectionTable::Config& conn_config, uint64_t clock_hz)
    : conns(conn_config),
      vip_counters(std::make_unique<sluice_counter[]>(SLUICE_MAX_VIPS)),
      backend_counters(std::make_unique<sluice_counter[]>(SLUICE_MAX_BACKENDS)),
      icmp_limiter(clock_hz)
{
}

void process_burst(Worker& worker, Packet* pkts[], uint16_t n, const ForwardingState& state, uint64_t now,
                   Verdict out[])
{
    NoFilter none;
    process_burst(worker, pkts, n, state, now, out, none);
}

}  // namespace sluice::core
