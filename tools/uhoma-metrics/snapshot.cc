// homa_metrics parsing and deltas. Design notes are in snapshot.h.
#include "uhoma-metrics/snapshot.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace uhoma::metrics_tool {

namespace {

constexpr std::size_t max_name = 64;
constexpr std::size_t max_description = 200;

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view next_token(std::string_view& line) {
    std::size_t i = 0;
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t j = i;
    while (j < line.size() && !is_space(line[j])) ++j;
    const std::string_view token = line.substr(i, j - i);
    line.remove_prefix(j);
    return token;
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > max_name) return false;
    if (name[0] >= '0' && name[0] <= '9') return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_';
        if (!ok) return false;
    }
    return true;
}

std::optional<std::uint64_t> parse_value(std::string_view text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
        v = v * 10 + digit;
    }
    return v;
}

std::string clean_description(std::string_view text) {
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    std::string out(text.substr(0, max_description));
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    }
    return out;
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max()
                                                              : a + b;
}

// The sum of the named counters that `s` has, or nullopt if it has none.
std::optional<std::uint64_t> sum(const Snapshot& s, std::initializer_list<const char*> names) {
    std::optional<std::uint64_t> total;
    for (const char* n : names) {
        if (auto v = s.value(n)) total = saturating_add(total.value_or(0), *v);
    }
    return total;
}

std::uint64_t difference(std::uint64_t before, std::uint64_t after) {
    return after >= before ? after - before : after;
}

}  // namespace

std::optional<std::uint64_t> Snapshot::value(std::string_view name) const {
    const auto it = index.find(std::string(name));
    if (it == index.end()) return std::nullopt;
    return counters[it->second].value;
}

Expected<Snapshot, std::string> parse_metrics(std::string_view text) {
    if (text.size() > max_metrics_bytes) {
        return Unexpected{"metrics text too large (" + std::to_string(text.size()) + " bytes)"};
    }
    Snapshot s;
    while (!text.empty()) {
        const auto newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::string_view rest = line;
        const std::string_view name = next_token(rest);
        if (name.empty()) continue;  // blank line
        const std::string_view value_text = next_token(rest);
        const auto value = parse_value(value_text);
        if (!valid_name(name) || !value) {
            ++s.skipped_lines;
            continue;
        }
        if (name == "time_cycles") {
            if (!s.time_cycles) s.time_cycles = *value;
            continue;
        }
        if (name == "cpu_khz") {
            if (!s.cpu_khz) s.cpu_khz = *value;
            continue;
        }
        if (name == "core") {
            ++s.cores;
            continue;
        }
        const std::string key(name);
        auto it = s.index.find(key);
        if (it == s.index.end()) {
            if (s.counters.size() >= max_metrics_counters) {
                return Unexpected{"more than " + std::to_string(max_metrics_counters) +
                                  " distinct counters"};
            }
            s.index.emplace(key, s.counters.size());
            s.counters.push_back(Counter{key, *value, clean_description(rest)});
        } else {
            Counter& c = s.counters[it->second];
            c.value = saturating_add(c.value, *value);
        }
    }
    if (s.counters.empty()) {
        return Unexpected{std::string("no counters: not homa_metrics text")};
    }
    return s;
}

std::optional<double> snapshot_interval(const Snapshot& before, const Snapshot& after) {
    if (!before.time_cycles || !after.time_cycles || !before.cpu_khz || !after.cpu_khz) {
        return std::nullopt;
    }
    if (*after.cpu_khz == 0 || *after.cpu_khz != *before.cpu_khz ||
        *after.time_cycles <= *before.time_cycles) {
        return std::nullopt;
    }
    return static_cast<double>(*after.time_cycles - *before.time_cycles) /
           (static_cast<double>(*after.cpu_khz) * 1000.0);
}

std::string human(double value) {
    const char* suffixes[] = {"", " K", " M", " G", " T", " P"};
    std::size_t i = 0;
    double v = value;
    while (std::fabs(v) >= 1000.0 && i + 1 < std::size(suffixes)) {
        v /= 1000.0;
        ++i;
    }
    const double magnitude = std::fabs(v);
    const char* format = "%.0f%s";
    if (i > 0 || v != std::floor(v)) {
        format = magnitude < 10.0 ? "%.2f%s" : magnitude < 100.0 ? "%.1f%s" : "%.0f%s";
    }
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), format, v, suffixes[i]);
    return buffer;
}

std::string format_delta(const Snapshot& before, const Snapshot& after, double seconds,
                         bool all) {
    const double interval = snapshot_interval(before, after).value_or(seconds);
    std::string out;
    char line[512];
    std::snprintf(line, sizeof(line), "interval %.3f s\n%-30s %20s %14s  %s\n", interval,
                  "counter", "delta", "rate", "description");
    out += line;
    for (const Counter& c : after.counters) {
        const std::uint64_t old = before.value(c.name).value_or(0);
        const bool reset = c.value < old;
        const std::uint64_t delta = difference(old, c.value);
        if (delta == 0 && !all) continue;
        const std::string rate = human(static_cast<double>(delta) / interval) + "/s";
        std::snprintf(line, sizeof(line), "%-30s %20llu %14s  %s%s\n", c.name.c_str(),
                      static_cast<unsigned long long>(delta), rate.c_str(),
                      reset ? "(reset) " : "", c.description.c_str());
        out += line;
    }

    // The summary: only lines whose counters the snapshots have.
    auto delta_of = [&](std::initializer_list<const char*> names) -> std::optional<double> {
        const auto a = sum(before, names);
        const auto b = sum(after, names);
        if (!b) return std::nullopt;
        return static_cast<double>(difference(a.value_or(0), *b));
    };
    out += "\nsummary\n";
    auto per_second = [&](const char* label, std::optional<double> d, const char* what) {
        if (!d) return;
        std::snprintf(line, sizeof(line), "  %-28s %12s/s  (%s)\n", label,
                      human(*d / interval).c_str(), what);
        out += line;
    };
    auto gbps = [&](const char* label, std::optional<double> bytes, const char* what) {
        if (!bytes) return;
        std::snprintf(line, sizeof(line), "  %-28s %10.3f Gbps  (%s)\n", label,
                      *bytes * 8.0 / interval / 1e9, what);
        out += line;
    };
    per_second("client RPCs completed", delta_of({"client_responses_done"}),
               "client_responses_done");
    per_second("server requests received", delta_of({"server_requests_done"}),
               "server_requests_done");
    const char* sent[] = {"packets_sent_DATA",    "packets_sent_GRANT",       "packets_sent_RESEND",
                          "packets_sent_RPC_UNKNOWN", "packets_sent_BUSY", "packets_sent_CUTOFFS",
                          "packets_sent_FREEZE",  "packets_sent_NEED_ACK",    "packets_sent_ACK"};
    const char* rcvd[] = {"packets_rcvd_DATA",    "packets_rcvd_GRANT",       "packets_rcvd_RESEND",
                          "packets_rcvd_RPC_UNKNOWN", "packets_rcvd_BUSY", "packets_rcvd_CUTOFFS",
                          "packets_rcvd_FREEZE",  "packets_rcvd_NEED_ACK",    "packets_rcvd_ACK"};
    auto total = [&](const char* const (&names)[9]) -> std::optional<double> {
        std::optional<double> t;
        for (const char* n : names) {
            if (auto d = delta_of({n})) t = t.value_or(0) + *d;
        }
        return t;
    };
    per_second("packets sent", total(sent), "packets_sent_*");
    per_second("  DATA", delta_of({"packets_sent_DATA"}), "packets_sent_DATA");
    per_second("  GRANT", delta_of({"packets_sent_GRANT"}), "packets_sent_GRANT");
    per_second("packets received", total(rcvd), "packets_rcvd_*");
    per_second("  DATA", delta_of({"packets_rcvd_DATA"}), "packets_rcvd_DATA");
    per_second("  GRANT", delta_of({"packets_rcvd_GRANT"}), "packets_rcvd_GRANT");
    gbps("sent on the wire", delta_of({"priority0_bytes", "priority1_bytes", "priority2_bytes",
                                        "priority3_bytes", "priority4_bytes", "priority5_bytes",
                                        "priority6_bytes", "priority7_bytes"}),
         "priority*_bytes");
    gbps("message bytes sent",
         delta_of({"client_request_bytes_done", "server_response_bytes_done"}),
         "client_request_bytes_done + server_response_bytes_done");
    gbps("message bytes received",
         delta_of({"client_response_bytes_done", "server_request_bytes_done"}),
         "client_response_bytes_done + server_request_bytes_done");
    per_second("retransmitted packets", delta_of({"resent_packets"}), "resent_packets");
    per_second("RPC timeouts", delta_of({"rpc_timeouts"}), "rpc_timeouts");
    return out;
}

}  // namespace uhoma::metrics_tool
