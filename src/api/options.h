// Runtime options from the environment, shared by the C++ API (transport.cc)
// and the Linux-compatible C API (c_api.cc).
//
// Design notes
// ------------
// Both APIs take protocol parameters by their Linux sysctl names, from the
// same places and in the same order, so a program behaves the same whichever
// API it uses: first the file named by UHOMA_CONFIG (`name = value` lines,
// `#` comments), then environment variables UHOMA_<NAME> (e.g.
// UHOMA_UNSCHED_BYTES=60000), then the caller's own overrides. The C API has
// no options argument (socket() takes none), so for it the environment is the
// only source.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/runtime.h"
#include "uhoma/expected.h"

namespace uhoma::api {

// Errors: one line naming the file and line, the environment variable, or
// the override whose name or value is invalid, or an unreadable UHOMA_CONFIG
// file.
Expected<runtime::RuntimeOptions, std::string> runtime_options_from_environment(
    const std::vector<std::pair<std::string, std::string>>& overrides = {});

}  // namespace uhoma::api
