// sluicectl's exit codes: the contract scripts rely on (also in --help).
#pragma once

namespace sluice::ctl {

constexpr int kExitOk = 0;           // done
constexpr int kExitFailed = 1;       // the daemon refused or the operation failed
                                     // (unknown service/backend, reload refused, not ready)
constexpr int kExitUsage = 2;        // bad arguments, or `validate` found errors
constexpr int kExitUnreachable = 3;  // no answer from sluiced at --api
constexpr int kExitUnauthorized = 4; // the API wants a (different) bearer token

constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  ok\n"
    "  1  the daemon refused or the operation failed (unknown service or backend,\n"
    "     reload refused, status: not ready)\n"
    "  2  usage error, or validate: the configuration has errors\n"
    "  3  sluiced not reachable at --api\n"
    "  4  unauthorized: missing or wrong token (--token-file)\n";

}  // namespace sluice::ctl
