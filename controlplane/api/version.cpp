// The version comes from the build so that the binary, /metrics and the
// package can never disagree.
#include "api/version.h"

#ifndef SLUICE_VERSION
#error "SLUICE_VERSION must be defined by the build (meson.project_version())"
#endif

namespace sluice::api {

const char* version() { return SLUICE_VERSION; }

}  // namespace sluice::api
