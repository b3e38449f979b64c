// The sluice version string, as the build names it (meson project version),
// for /metrics (sluice_info), /v1/stats and sluicectl --version.
#pragma once

namespace sluice::api {

// "0.1.0". Thread-safe.
const char* version();

}  // namespace sluice::api
