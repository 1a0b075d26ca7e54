// Priority levels and the homa_prio cutoff computation. Design notes are in
// cutoffs.h.
#include "engine/cutoffs.h"

#include <algorithm>
#include <cmath>

namespace uhoma::engine {

namespace {

constexpr std::size_t num_buckets = Metrics::small_buckets + Metrics::medium_buckets;

std::uint32_t clamp_priorities(std::uint32_t num_priorities) {
    return std::clamp<std::uint32_t>(num_priorities, 1, 8);
}

std::uint32_t bucket_low(std::size_t index) {
    return index == 0 ? 0 : Metrics::bucket_limit(index - 1);
}

// min(bytes, messages * unsched_bytes) without overflow.
std::uint64_t capped_unsched(std::uint64_t bytes, std::uint64_t messages,
                             std::uint64_t unsched_bytes) {
    if (unsched_bytes == 0) return 0;
    return messages > bytes / unsched_bytes ? bytes : std::min(bytes, messages * unsched_bytes);
}

std::uint64_t bucket_messages(const Metrics& m, std::size_t index) {
    const std::uint64_t span = std::uint64_t{bucket_low(index)} + Metrics::bucket_limit(index);
    return 2 * m.msg_bytes[index] / span;
}

}  // namespace

CutoffTable normalize_cutoffs(const CutoffTable& cutoffs, std::uint32_t num_priorities) {
    const std::uint32_t n = clamp_priorities(num_priorities);
    CutoffTable out = cutoffs;
    for (std::uint32_t i = n; i < out.size(); ++i) out[i] = 0;
    out[0] = cutoff_int_max;
    return out;
}

std::uint32_t max_sched_prio(const CutoffTable& cutoffs, std::uint32_t num_priorities) {
    const std::uint32_t n = clamp_priorities(num_priorities);
    for (std::uint32_t i = n - 1; i > 0; --i) {
        if (cutoffs[i] >= unsched_level_marker) return i - 1;
    }
    return 0;
}

CutoffTable initial_peer_cutoffs() {
    CutoffTable t{};
    t[6] = cutoff_int_max;
    return t;
}

std::uint8_t unsched_priority(const CutoffTable& peer_cutoffs, std::uint32_t message_length,
                              std::uint32_t num_priorities) {
    const std::uint32_t n = clamp_priorities(num_priorities);
    for (std::uint32_t i = n; i-- > 0;) {
        if (peer_cutoffs[i] >= message_length) return static_cast<std::uint8_t>(i);
    }
    return 0;
}

std::uint8_t sched_priority(std::uint32_t rank, std::uint32_t active,
                            std::uint32_t max_sched_prio) {
    const std::int64_t m = std::min<std::uint32_t>(max_sched_prio, 7);
    const std::int64_t shift = std::max<std::int64_t>(0, m + 1 - std::int64_t{active});
    const std::int64_t prio = m - std::int64_t{rank} - shift;
    return static_cast<std::uint8_t>(std::max<std::int64_t>(0, prio));
}

CutoffOptions cutoff_options(const Config& config) {
    CutoffOptions options;
    options.num_priorities = config.num_priorities;
    options.unsched_bytes = config.unsched_bytes;
    return options;
}

std::uint64_t estimated_messages(const Metrics& histogram) {
    std::uint64_t total = histogram.large_msg_count;
    for (std::size_t i = 0; i < num_buckets; ++i) total += bucket_messages(histogram, i);
    return total;
}

std::optional<CutoffTable> compute_cutoffs(const Metrics& delta, const CutoffOptions& options) {
    const std::uint32_t n = clamp_priorities(options.num_priorities);
    if (options.num_priorities < 2) return std::nullopt;
    const std::uint64_t unsched_bytes = options.unsched_bytes;

    // (1) Unscheduled bytes per bucket and in total.
    std::array<std::uint64_t, num_buckets> unsched{};
    std::uint64_t total_bytes = delta.large_msg_bytes;
    std::uint64_t total_unsched =
        capped_unsched(delta.large_msg_bytes, delta.large_msg_count, unsched_bytes);
    std::uint64_t total_messages = delta.large_msg_count;
    for (std::size_t i = 0; i < num_buckets; ++i) {
        const std::uint64_t bytes = delta.msg_bytes[i];
        const std::uint64_t messages = bucket_messages(delta, i);
        unsched[i] = Metrics::bucket_limit(i) <= unsched_bytes
                         ? bytes
                         : capped_unsched(bytes, messages, unsched_bytes);
        total_bytes += bytes;
        total_unsched += unsched[i];
        total_messages += messages;
    }
    if (total_messages < options.min_messages || total_bytes == 0) return std::nullopt;

    // (2) How many levels go to unscheduled traffic.
    std::uint64_t levels = options.fixed_unsched_levels;
    if (levels == 0) {
        const double share = static_cast<double>(n) * static_cast<double>(total_unsched) /
                             static_cast<double>(total_bytes);
        const double rounded = std::floor(share + options.unsched_boost + 0.5);
        levels = rounded < 1.0 ? 1 : static_cast<std::uint64_t>(std::min<double>(rounded, n));
    }
    levels = std::min<std::uint64_t>(levels, n);

    // (3) Close a level each time about total_unsched/levels bytes collected.
    CutoffTable table{};
    const std::uint64_t per_level = 1 + total_unsched / levels;
    std::uint64_t threshold = per_level;
    std::uint64_t sum = 0;
    std::uint32_t next_level = n - 1;  // never reaches 0: at most levels-1 close
    for (std::size_t i = 0; i < num_buckets; ++i) {
        sum += unsched[i];
        if (sum >= total_unsched) break;
        if (sum >= threshold) {
            table[next_level] = Metrics::bucket_limit(i);
            --next_level;
            threshold = sum + per_level;
            if (threshold >= total_unsched) break;
        }
    }
    for (std::uint32_t level = 0; level <= next_level; ++level) {
        table[level] = unsched_level_marker;
    }
    return normalize_cutoffs(table, n);
}

Deciles length_deciles(const Metrics& histogram) {
    Deciles deciles;
    deciles.fill(unsched_level_marker);
    const std::uint64_t per_decile = estimated_messages(histogram) / 10;
    std::uint64_t next = per_decile;
    std::uint64_t so_far = 0;
    std::size_t d = 0;
    for (std::size_t i = 0; i < num_buckets && d < deciles.size(); ++i) {
        const std::uint64_t messages = bucket_messages(histogram, i);
        if (messages == 0) continue;
        so_far += messages;
        while (so_far >= next && d < deciles.size()) {
            deciles[d++] = Metrics::bucket_limit(i);
            next += per_decile;
        }
    }
    return deciles;
}

double decile_drift(const Deciles& a, const Deciles& b) {
    double drift = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const std::uint32_t larger = std::max(a[i], b[i]);
        const std::uint32_t smaller = std::min(a[i], b[i]);
        if (larger != 0) drift += static_cast<double>(larger - smaller) / larger;
    }
    return drift;
}

double decile_drift(const Metrics& a, const Metrics& b) {
    return decile_drift(length_deciles(a), length_deciles(b));
}

}  // namespace uhoma::engine
