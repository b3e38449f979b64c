// GoogleTest main for the control-path tests: one EAL per process without
// hugepages or PCI, with a per-process file prefix so parallel tests do not
// collide. Two lcores: the test thread is the control thread, the other
// runs a worker loop.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "dataplane/dpdk/eal.h"

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    const std::string prefix = "sluice-ctl-" + std::to_string(::getpid());
    auto eal = sluice::dpdk::Eal::init({"--no-huge", "--no-pci", "-m", "256", "--no-shconf", "--file-prefix",
                                        prefix, "-l", "0-1", "--log-level", "4"});
    if (!eal) {
        std::fprintf(stderr, "test main: %s\n", eal.error().c_str());
        return 1;
    }
    return RUN_ALL_TESTS();
}
