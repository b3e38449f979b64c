// GoogleTest main for tests that need a running EAL: initialises DPDK once
// without hugepages or PCI (so it runs anywhere, as any user with enough
// memory), with a per-process file prefix so parallel tests do not collide.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "dataplane/dpdk/eal.h"

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    const std::string prefix = "sluice-test-" + std::to_string(::getpid());
    auto eal = sluice::dpdk::Eal::init({"--no-huge", "--no-pci", "-m", "256", "--no-shconf",
                                        "--file-prefix", prefix, "-l", "0-1", "--log-level", "4"});
    if (!eal) {
        std::fprintf(stderr, "test main: %s\n", eal.error().c_str());
        return 1;
    }
    const int rc = RUN_ALL_TESTS();
    return rc;
}
