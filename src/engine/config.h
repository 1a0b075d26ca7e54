// Engine configuration: the parameters of spec section 9 that apply outside
// the kernel, named as Linux Homa's sysctls, with the same defaults.
//
// Design notes
// ------------
// One plain struct, so a Config can be copied into each engine and compared in
// tests. Parameters are also settable by their sysctl name from text
// (set_parameter), which is how the runtime will read environment variables
// and config files without a second list of names. validate() checks the
// ranges the kernel enforces and names the offending field, so a bad setting
// fails loudly at start-up rather than misbehaving later.
//
// Kernel-only knobs (GRO policy, softirq cores, qdisc shares, skb page pools,
// TCP hijacking on the host stack) are not here; uhoma-specific additions are
// marked as such.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "uhoma/expected.h"

namespace uhoma::engine {

struct Config {
    // --- Grants (spec 3)
    std::uint32_t unsched_bytes = 40000;
    std::uint32_t window = 0;  // 0: dynamic, max_incoming / (N + 1)
    std::uint32_t max_incoming = 400000;
    std::uint32_t max_overcommit = 8;         // <= 8
    std::uint32_t grant_fifo_fraction = 50;   // per mille, <= 500
    std::uint32_t fifo_grant_increment = 50000;

    // --- Priorities (spec 4)
    std::uint32_t num_priorities = 8;  // <= 8
    std::array<std::uint8_t, 8> priority_map = {0, 1, 2, 3, 4, 5, 6, 7};
    std::array<std::uint32_t, 8> unsched_cutoffs = {0, 0, 0, 0, 1000000, 15000, 2800, 200};

    // --- Output (spec 5)
    std::uint32_t link_mbps = 25000;
    std::uint32_t max_nic_est_backlog_usecs = 5;  // old name: max_nic_queue_ns/1000
    std::uint32_t defer_min_bytes = 1000;         // old name: throttle_min_bytes
    std::uint32_t pacer_fifo_fraction = 50;       // per mille
    std::uint32_t flags = 0;                      // 2 = HOMA_FLAG_DONT_THROTTLE
    std::uint32_t max_gso_size = 0;               // 0: MTU-sized packets
    std::uint64_t wmem_max = 100000000;

    // --- Timers (spec 6), in ticks of tick_usecs
    std::uint32_t resend_ticks = 5;
    std::uint32_t resend_interval = 5;
    std::uint32_t timeout_ticks = 100;
    std::uint32_t request_ack_ticks = 2;

    // --- Receive (spec 7)
    std::uint32_t bpage_lease_usecs = 10000;

    // --- Peers
    std::uint32_t peer_gc_threshold = 5000;
    std::uint32_t peer_idle_secs_max = 120;

    // --- Cutoff computation (what util/homa_prio does for Linux Homa, built
    // in): every cutoff_interval_ms the receiver recomputes its unscheduled
    // cutoffs from the lengths of the messages it received, if at least
    // cutoff_min_messages arrived and their distribution drifted by
    // cutoff_min_drift_percent/100 (homa_prio's --min-drift) since the last
    // change. 0 disables: the cutoffs stay as configured.
    std::uint32_t cutoff_interval_ms = 1000;
    std::uint32_t cutoff_min_messages = 10000;
    std::uint32_t cutoff_min_drift_percent = 100;

    // --- uhoma-specific
    std::uint32_t tick_usecs = 1000;  // the kernel's timer tick is 1 ms
    std::uint32_t mtu = 1500;         // of the path; sets max_seg_data
    // Bytes between the IP header and the Homa header: 8 when Homa rides
    // in UDP, 0 for raw IP. Packets must fit the MTU with them, or the
    // kernel refuses (GSO) or fragments (single packets) them.
    std::uint32_t encapsulation_bytes = 0;

    static constexpr std::uint32_t dont_throttle_flag = 2;
};

struct ConfigError {
    std::string field;    // the sysctl name, e.g. "max_overcommit"
    std::string message;  // one line, e.g. "must be between 1 and 8 (got 9)"
};

// Checks every field against the kernel's limits.
// Errors: the first field out of range.
Expected<std::monostate, ConfigError> validate(const Config& config);

// Sets the parameter named `name` (a sysctl name, or an old alias such as
// throttle_min_bytes) from text: an integer, or for array parameters 8
// integers separated by spaces or commas. Does not validate ranges.
// Errors: unknown name; value not a number / wrong count of numbers.
Expected<std::monostate, ConfigError> set_parameter(Config& config, std::string_view name,
                                                    std::string_view value);

// Names accepted by set_parameter, for help texts and config dumps.
std::vector<std::string> parameter_names();

}  // namespace uhoma::engine
