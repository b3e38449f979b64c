// Connection table allocation (start-up only; see conn_table.h).
#include "core/conn_table.h"

namespace sluice::core {

ConnectionTable::ConnectionTable(const Config& config) : config_(config)
{
    uint32_t buckets = 1;
    while (static_cast<uint64_t>(buckets) * kWays < config.capacity) buckets *= 2;
    mask_ = buckets - 1;
    // Value-initialised: every bucket starts with no way used.
    buckets_ = std::make_unique<Bucket[]>(buckets);
}

}  // namespace sluice::core
