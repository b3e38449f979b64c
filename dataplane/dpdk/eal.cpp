// EAL start-up: turns a list of strings into argv, reports failures with
// the EAL's reason.
#include "dataplane/dpdk/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>

namespace sluice::dpdk {

Result<std::unique_ptr<Eal>> Eal::init(const std::vector<std::string>& args)
{
    // rte_eal_init permutes argv and keeps pointers into it (vdev args,
    // log prefixes), so argv and its strings live for the whole process;
    // a second initialisation is refused here rather than by the EAL.
    static std::vector<std::string> storage;
    static std::vector<char*> argv;
    if (!storage.empty()) {
        return make_error("EAL already initialised in this process");
    }
    storage.reserve(args.size() + 1);
    storage.emplace_back("sluiced");
    for (const auto& a : args) {
        storage.push_back(a);
    }
    for (auto& s : storage) {
        argv.push_back(s.data());
    }
    argv.push_back(nullptr);

    const int rc = rte_eal_init(static_cast<int>(storage.size()), argv.data());
    if (rc < 0) {
        return make_error("DPDK EAL initialisation failed: " + std::string(rte_strerror(rte_errno)));
    }
    return std::unique_ptr<Eal>(new Eal(args));
}

Eal::~Eal() { rte_eal_cleanup(); }

}  // namespace sluice::dpdk
