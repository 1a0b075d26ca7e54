// homa_metrics text: parsing one snapshot, and the deltas between two.
//
// Design notes
// ------------
// Input. The text of Linux Homa's /proc/net/homa_metrics, which uhoma's
// control socket also produces (spec 10): `"%-30s %20llu %s\n"` lines,
// `time_cycles` and `cpu_khz` first, then per core a `core N` line and that
// core's counters. The parser sums a counter over cores (readers of Linux's
// file must) and keeps names in order of first appearance, so uhoma's
// single "core 0" and a many-core Linux file read alike.
//
// Untrusted. The text comes from another process (or a file named on the
// command line), so it is checked rather than believed: a line whose name is
// not an identifier of at most 64 characters, or whose value is not a
// decimal number that fits 64 bits, is skipped and counted; sums saturate
// instead of wrapping; at most max_metrics_bytes of text and
// max_metrics_counters distinct names are accepted; descriptions are cut to
// 200 characters and control characters in them become spaces. A text with
// no counter at all is an error, not an empty snapshot.
//
// Deltas, after Homa's util/metrics.py: for every counter, the change and
// the rate per second, skipping counters that did not change (unless asked
// for all), then a summary of the numbers one usually wants (RPCs, packets
// and throughput per second, retransmissions). The interval is taken from
// the snapshots' own clocks (time_cycles / cpu_khz) when both have them, so
// the rates do not depend on how long the tool took to ask; otherwise from
// the caller's measurement. A counter that went backwards (the process
// restarted between snapshots) is shown with its new value, marked "reset".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "uhoma/expected.h"

namespace uhoma::metrics_tool {

inline constexpr std::size_t max_metrics_bytes = 16u << 20;
inline constexpr std::size_t max_metrics_counters = 20000;

struct Counter {
    std::string name;
    std::uint64_t value = 0;
    std::string description;
};

struct Snapshot {
    std::optional<std::uint64_t> time_cycles;
    std::optional<std::uint64_t> cpu_khz;
    std::vector<Counter> counters;  // summed over cores, in order of first appearance
    std::size_t cores = 0;          // `core` lines seen
    std::size_t skipped_lines = 0;  // malformed lines ignored

    // The counter's value, if the snapshot has it.
    std::optional<std::uint64_t> value(std::string_view name) const;

    std::unordered_map<std::string, std::size_t> index;  // name -> counters[i]
};

// Errors: one line: text too large, too many counters, or no counter at all.
Expected<Snapshot, std::string> parse_metrics(std::string_view text);

// Seconds between the snapshots by their time_cycles and cpu_khz, if both
// have them and time moved forward.
std::optional<double> snapshot_interval(const Snapshot& before, const Snapshot& after);

// The delta report (see design notes). `seconds` is the interval to use when
// the snapshots do not give one; must be > 0. `all`: also counters that did
// not change.
std::string format_delta(const Snapshot& before, const Snapshot& after, double seconds, bool all);

// "1.23 K", "45.6 M", "789": a rate with an SI suffix, 3 significant digits.
std::string human(double value);

}  // namespace uhoma::metrics_tool
