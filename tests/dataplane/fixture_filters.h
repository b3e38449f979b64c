// The filters of a fixture config (its "filters" object, see
// tests/fixtures/README.md) as the DPDK plane builds them: a FilterSet.
// Apart from fixture_loader so that planes without these filters (XDP
// tests build fixture_loader.cpp alone) need neither DPDK nor Hyperscan.
// Building needs a running EAL (the ACL's rte_lpm tables).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>

#include "common/result.h"
#include "filter/filter_set.h"

namespace sluice::testing {

// The FilterConfig a fixture config describes (pure: no EAL).
Result<filter::FilterConfig> filter_config(const nlohmann::json& config);

// The FilterSet for a fixture config, built for `workers` workers; null
// when the config has no "filters" object (the filterless pipeline).
Result<std::unique_ptr<const filter::FilterSet>> build_filters(const nlohmann::json& config, uint32_t workers);

}  // namespace sluice::testing
