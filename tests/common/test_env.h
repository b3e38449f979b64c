// Helpers shared by the test suites: environment checks that skip on a
// developer's machine but fail loudly in CI, where every test must run.
#pragma once

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace sluice::testing {

// True when running under CI (CI=true), where a missing privilege or kernel
// feature is a failure rather than a reason to skip.
// CLOCK_MONOTONIC in ns: the clock bpf_ktime_get_ns reads, so a test can
// bracket a BPF program's timestamps.
inline uint64_t monotonic_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Pins the calling thread to the CPU it is on and returns that CPU, or -1.
// BPF_PROG_TEST_RUN runs on the calling CPU, whose per-CPU map entries the
// program then uses.
inline int pin_to_this_cpu()
{
    const int cpu = sched_getcpu();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof(one), &one) == 0 ? cpu : -1;
}

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

// A bpffs of the test's own, mounted on a fresh directory under /tmp and
// unmounted, with every pin in it, when the object goes. Tests that pin
// maps use it rather than /sys/fs/bpf, which a fresh machine (or a
// container) may not have mounted, and where a crashed test would leave
// pins behind. Needs root; check ok() with SLUICE_REQUIRE.
//
// The mount is made in a mount namespace of the test's own (made by the
// first ScratchBpffs, for the constructing thread and the threads and
// processes it starts afterwards), so a test killed before its destructor
// runs (a timeout's SIGKILL) leaves no bpffs mounted on the host: the
// namespace, and the mount, go with the process. Only an empty directory
// under /tmp may stay. Other processes never see the mount (iproute2's tc
// would otherwise take it for the system's bpffs).
class ScratchBpffs {
public:
    ScratchBpffs()
    {
        static const std::string private_ns = private_mount_namespace();
        if (!private_ns.empty()) {
            error_ = private_ns;
            return;
        }
        char dir[] = "/tmp/sluice-bpffs-XXXXXX";
        if (::mkdtemp(dir) == nullptr) {
            error_ = std::string("mkdtemp: ") + std::strerror(errno);
            return;
        }
        if (::mount("bpf", dir, "bpf", 0, nullptr) != 0) {
            error_ = std::string("mount -t bpf bpf ") + dir + ": " + std::strerror(errno);
            ::rmdir(dir);
            return;
        }
        path_ = dir;
    }
    ~ScratchBpffs()
    {
        if (path_.empty()) return;
        ::umount2(path_.c_str(), MNT_DETACH);
        ::rmdir(path_.c_str());
    }
    ScratchBpffs(const ScratchBpffs&) = delete;
    ScratchBpffs& operator=(const ScratchBpffs&) = delete;

    bool ok() const { return !path_.empty(); }
    const std::string& path() const { return path_; }
    const std::string& error() const { return error_; }

private:
    // "" once this thread has a mount namespace of its own whose mounts do
    // not propagate to the host's; else why not.
    static std::string private_mount_namespace()
    {
        if (::unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
        if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            return std::string("mount --make-rprivate /: ") + std::strerror(errno);
        return "";
    }

    std::string path_;
    std::string error_;
};

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
