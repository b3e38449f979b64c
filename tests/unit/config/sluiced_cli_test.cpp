// Runs the real sluiced binary: --check-config exit codes and output,
// --version, and what --config refuses before starting anything.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "test_env.h"

namespace {

struct RunResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The binary under test: $SLUICED if set, else the one meson built.
std::string sluiced_path()
{
    const char* env = std::getenv("SLUICED");
    return env != nullptr ? env : SLUICED_PATH;
}

// Runs sluiced with `args` (already shell-quoted) and captures both streams.
RunResult run_sluiced(const std::string& args)
{
    char dir_template[] = "/tmp/sluiced-cli-XXXXXX";
    const std::string dir = ::mkdtemp(dir_template);
    const std::string out = dir + "/out";
    const std::string err = dir + "/err";
    const std::string command = "'" + sluiced_path() + "' " + args + " >" + out + " 2>" + err;
    const int status = std::system(command.c_str());
    RunResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = slurp(out);
    result.err = slurp(err);
    std::remove(out.c_str());
    std::remove(err.c_str());
    ::rmdir(dir.c_str());
    return result;
}

// The shipped example passes: exit 0, "ok" with the service count on stdout, nothing on stderr.
TEST(SluicedCli, CheckConfigAcceptsExample)
{
    const std::string path = sluice::testing::source_path("config/example.toml");
    const RunResult r = run_sluiced("--check-config '" + path + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, path + ": ok (3 services)\n");
    EXPECT_EQ(r.err, "");
}

// A bad file exits 2 with every diagnostic on stderr as FILE:LINE:COL and nothing on stdout.
TEST(SluicedCli, CheckConfigRefusesBadFile)
{
    const std::string path = sluice::testing::source_path("tests/unit/config/fixtures/many_errors.toml");
    const RunResult r = run_sluiced("--check-config '" + path + "'");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(path + ":14:14: error: table_size 65536 is not prime"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(path + ":15:38: error: unknown key 'wieght'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("5 errors, 0 warnings; configuration refused"), std::string::npos) << r.err;
}

// A missing file is a refused config too (exit 2), not a crash.
TEST(SluicedCli, CheckConfigMissingFile)
{
    const RunResult r = run_sluiced("--check-config /nonexistent/sluice.toml");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("/nonexistent/sluice.toml: error: cannot open"), std::string::npos) << r.err;
}

// --version prints the project version from meson and exits 0.
TEST(SluicedCli, Version)
{
    const RunResult r = run_sluiced("--version");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, std::string("sluiced ") + SLUICE_VERSION + "\n");
}

// --config validates like --check-config (a bad file exits 2 with its
// diagnostics) before anything starts; an XDP data plane on an interface
// that does not exist fails to start (1) naming it, before anything is
// loaded or attached; no action at all, or an unknown flag, is 64.
// (Running the DPDK and XDP data planes is proven in tests/integration/.)
TEST(SluicedCli, RunRefusesBadConfigAndMissingXdpInterface)
{
    const std::string bad = sluice::testing::source_path("tests/unit/config/fixtures/many_errors.toml");
    const RunResult refused = run_sluiced("--config '" + bad + "'");
    EXPECT_EQ(refused.exit_code, 2);
    EXPECT_NE(refused.err.find("5 errors, 0 warnings; configuration refused"), std::string::npos) << refused.err;

    char path_template[] = "/tmp/sluiced-xdp-XXXXXX";
    const int fd = ::mkstemp(path_template);
    ASSERT_GE(fd, 0);
    // Never a real interface name: this test must not attach to the host's NIC.
    const std::string xdp = "[daemon]\nstate_dir = \"/nonexistent/sluice-state\"\n\n[dataplane]\ntype = \"xdp\"\n\n[dataplane.xdp]\n"
                            "interfaces = [\"sl-no-such-if0\"]\npin_path = \"/nonexistent/sluice\"\n";
    ASSERT_EQ(::write(fd, xdp.data(), xdp.size()), static_cast<ssize_t>(xdp.size()));
    ::close(fd);
    const RunResult r = run_sluiced(std::string("--config '") + path_template + "'");
    std::remove(path_template);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot start the XDP data plane: interface sl-no-such-if0"), std::string::npos) << r.err;

    EXPECT_EQ(run_sluiced("").exit_code, 64);
    EXPECT_EQ(run_sluiced("--no-such-flag").exit_code, 64);
}

}  // namespace
