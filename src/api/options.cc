// Runtime options from UHOMA_CONFIG, UHOMA_<NAME> variables and overrides.
// Design notes are in options.h.
#include "api/options.h"

#include <cctype>
#include <cstdlib>
#include <fstream>

#include "engine/config.h"

namespace uhoma::api {

namespace {

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t\r");
    const auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Applies one parameter to the engine config or the runtime options.
Expected<std::monostate, std::string> apply(runtime::RuntimeOptions& options,
                                            const std::string& name, const std::string& value) {
    if (name == "poll_usecs") {
        char* end = nullptr;
        const unsigned long v = std::strtoul(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0') return Unexpected{"poll_usecs: not a number: " + value};
        options.poll_usecs = static_cast<std::uint32_t>(v);
        return std::monostate{};
    }
    if (name == "driver") {
        if (value == "udp") {
            options.driver = runtime::DriverKind::udp;
        } else if (value == "raw") {
            options.driver = runtime::DriverKind::raw;
        } else {
            return Unexpected{"driver: expected udp or raw, got " + value};
        }
        return std::monostate{};
    }
    auto r = engine::set_parameter(options.config, name, value);
    if (!r) return Unexpected{r.error().field + ": " + r.error().message};
    return std::monostate{};
}

}  // namespace

Expected<runtime::RuntimeOptions, std::string> runtime_options_from_environment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
    runtime::RuntimeOptions ro;
    if (const char* file = std::getenv("UHOMA_CONFIG")) {
        std::ifstream in(file);
        if (!in) return Unexpected{std::string("cannot read UHOMA_CONFIG file ") + file};
        std::string line;
        int number = 0;
        while (std::getline(in, line)) {
            ++number;
            line = trim(line.substr(0, line.find('#')));
            if (line.empty()) continue;
            const auto eq = line.find('=');
            if (eq == std::string::npos) {
                return Unexpected{std::string(file) + ":" + std::to_string(number) +
                                  ": expected name = value"};
            }
            auto r = apply(ro, trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
            if (!r) {
                return Unexpected{std::string(file) + ":" + std::to_string(number) + ": " +
                                  r.error()};
            }
        }
    }
    auto names = engine::parameter_names();
    names.push_back("poll_usecs");
    names.push_back("driver");
    for (const std::string& name : names) {
        if (const char* value = std::getenv(("UHOMA_" + upper(name)).c_str())) {
            auto r = apply(ro, name, value);
            if (!r) return Unexpected{"UHOMA_" + upper(name) + ": " + r.error()};
        }
    }
    for (const auto& [name, value] : overrides) {
        auto r = apply(ro, name, value);
        if (!r) return Unexpected{r.error()};
    }
    return ro;
}

}  // namespace uhoma::api
