// Helpers shared by the test suites: environment checks that skip on a
// developer's machine but fail loudly in CI, where every test must run.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sluice::testing {

// True when running under CI (CI=true), where a missing privilege or kernel
// feature is a failure rather than a reason to skip.
inline bool in_ci()
{
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string(ci) == "true";
}

// Absolute path of a file in the source tree (meson sets SLUICE_SOURCE_ROOT).
inline std::string source_path(const std::string& relative)
{
    const char* root = std::getenv("SLUICE_SOURCE_ROOT");
    return std::string(root != nullptr ? root : ".") + "/" + relative;
}

}  // namespace sluice::testing

// Skips (developer machine) or fails (CI) the current test unless `cond`
// holds; `why` says what is missing.
#define SLUICE_REQUIRE(cond, why)                                                  \
    do {                                                                           \
        if (!(cond)) {                                                             \
            if (::sluice::testing::in_ci()) {                                      \
                FAIL() << "required in CI but missing: " << (why);                 \
            } else {                                                               \
                GTEST_SKIP() << "missing: " << (why) << " (would fail with CI=true)"; \
            }                                                                      \
        }                                                                          \
    } while (0)

#define SLUICE_REQUIRE_ROOT() SLUICE_REQUIRE(::geteuid() == 0, "root (CAP_BPF, CAP_NET_ADMIN)")
