// The backend-list file read by the file source. JSON, one object:
//
//   {
//     "backends": [
//       {"address": "10.0.0.1", "port": 8080, "weight": 100},
//       {"address": "2001:db8::2", "state": "draining"}
//     ]
//   }
//
// Each entry follows the schema of parse_backend_json (backend_set.h), the
// same one etcd values use. JSON rather than TOML because a truncated JSON
// document never parses (its closing brackets are missing), while a TOML
// file cut after a complete line is valid and would silently drop backends.
// A file is written as a unit, so any bad entry refuses the whole file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "discovery/backend_set.h"

namespace sluice::discovery {

// Parses the file's text. Errors read "PATH:LINE:COL: message" (syntax) or
// "PATH:LINE: backends[I]: message" (the line where entry I starts), and
// the duplicate-address check of canonical_backends applies. The result is
// in canonical order. Pure; any thread; never throws.
Result<std::vector<BackendEntry>> parse_backend_file(std::string_view text, const std::string& path);

}  // namespace sluice::discovery
