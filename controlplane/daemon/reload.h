// What a reload may change live and what needs a restart. Ports, lcores,
// the data-plane type, EAL and mempool settings, connection-table size and
// timeouts are taken once when the data plane starts; the admin listener
// binds once; so a reload that changes them is refused, naming each.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"

namespace sluice::daemon {

// One message per setting that differs and needs a restart, e.g.
// "dataplane.dpdk.worker_lcores changed: restart sluiced to apply it".
// Empty: `next` can be applied live. Pure; any thread.
std::vector<std::string> restart_required(const model::Config& running, const model::Config& next);

}  // namespace sluice::daemon
