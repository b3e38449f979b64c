// DPDK environment start-up and shutdown. The EAL can be initialised once
// per process; Eal owns that one initialisation and cleans it up.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace sluice::dpdk {

class Eal {
public:
    // Initialises the EAL with `args` (argv[0] excluded; a program name is
    // prepended). Call once, from the main thread, before any other DPDK
    // call. Fails with the EAL's own reason (e.g. "no hugepages").
    static Result<std::unique_ptr<Eal>> init(const std::vector<std::string>& args);

    // Releases EAL resources (hugepages, vdevs). Main thread only, after
    // every worker lcore has returned.
    ~Eal();

    Eal(const Eal&) = delete;
    Eal& operator=(const Eal&) = delete;

    // Arguments as given (for logs and diagnostics).
    const std::vector<std::string>& args() const { return args_; }

private:
    explicit Eal(std::vector<std::string> args) : args_(std::move(args)) {}
    std::vector<std::string> args_;
};

}  // namespace sluice::dpdk
