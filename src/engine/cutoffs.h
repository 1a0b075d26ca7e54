// Priority levels: unscheduled cutoffs, scheduled levels, and the homa_prio
// computation of cutoffs from traffic (spec 3.5 and 4).
//
// Design notes
// ------------
// Everything here is a pure function of small values, so the engine, the
// runtime's cutoff tuner and the tests share one definition and no state.
//
// A CutoffTable is Linux's unsched_cutoffs[8]: entry i is the longest message
// that may use level i; level 7 is the highest. A table is only meaningful
// after normalize_cutoffs (entry 0 = INT_MAX so every length finds a level,
// entries >= num_priorities = 0 so unused levels are never chosen), which is
// what homa_prios_changed() does whenever the sysctl changes.
//
// max_sched_prio: reading down from num_priorities-1, the first entry
// >= HOMA_MAX_MESSAGE_LENGTH (1,000,000) is the lowest unscheduled level and
// scheduled traffic uses the levels below it. Degenerate case: if that entry
// is entry 0 (always INT_MAX after normalizing), or num_priorities is 1,
// max_sched_prio is 0, so scheduled and unscheduled traffic share level 0.
// This is the kernel's choice; it never yields a negative level.
//
// num_priorities arguments are clamped to 1..8 (the kernel clamps to 8 and
// config validation rejects 0), so no input can index outside the table.
//
// compute_cutoffs follows util/homa_prio.cc, which the spec describes:
//   (1) Messages per histogram bucket are estimated as 2*bytes/(lo+hi), in
//       integers, with lo the previous bucket's limit (0 for the first);
//       large messages are counted exactly by large_msg_count. A bucket's
//       unscheduled bytes are all its bytes when hi <= unsched_bytes, else
//       min(bytes, messages*unsched_bytes); large messages add
//       count*unsched_bytes (uhoma caps this at large_msg_bytes, which only
//       matters if unsched_bytes > 131072, and keeps unscheduled <= total).
//   (2) levels = floor(num_priorities*unsched/total + unsched_boost + 0.5),
//       clamped to 1..num_priorities, or fixed_unsched_levels (also capped
//       at num_priorities) when that is nonzero. homa_prio lets the rounded
//       value exceed num_priorities and then switches to total/num_priorities
//       bytes per level; uhoma simply caps, which gives the same table
//       whenever all traffic is unscheduled.
//   (3) Each level gets 1 + total_unsched/levels bytes. Walking buckets from
//       short to long with a running sum of unscheduled bytes: stop once the
//       sum reaches total_unsched; otherwise, when it reaches the threshold,
//       give the next level down (starting at num_priorities-1) this
//       bucket's limit as its cutoff and set the threshold to sum + per-level
//       bytes, stopping if that is >= total_unsched. Levels not given a
//       cutoff get 1,000,000, so the highest of them is the lowest
//       unscheduled level and everything below is scheduled; then the table
//       is normalized.
// Consequences worth knowing: the walk closes at most levels-1 levels, and
// fewer when the bytes sit in few buckets, because a bucket cannot be split.
// If all traffic lies in one bucket (say every message is 100 bytes), no
// level is closed: the table is all 1,000,000, every message goes at the top
// level and max_sched_prio is num_priorities-2.
//
// min_messages counts the estimated messages (buckets plus large messages),
// as homa_prio does. min_drift is not applied by compute_cutoffs, which sees
// one histogram: the caller keeps the deciles of the histogram behind the
// cutoffs it installed last (initially all zero, giving drift 9) and
// recomputes only when decile_drift(previous, current) >= min_drift. Deciles
// past the histogram (in large messages) are 1,000,000, as in homa_prio.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "engine/config.h"
#include "engine/metrics.h"

namespace uhoma::engine {

using CutoffTable = std::array<std::uint32_t, 8>;

inline constexpr std::uint32_t cutoff_int_max = 0x7fff'ffff;      // INT_MAX
inline constexpr std::uint32_t unsched_level_marker = 1'000'000;  // HOMA_MAX_MESSAGE_LENGTH

// Forces entry 0 to INT_MAX and entries >= num_priorities to 0.
// No errors; num_priorities is clamped to 1..8.
CutoffTable normalize_cutoffs(const CutoffTable& cutoffs, std::uint32_t num_priorities);

// The highest level for scheduled packets: the index of the first entry
// >= 1,000,000, reading down from num_priorities-1, minus one; 0 if that is
// entry 0 or there is none. Defaults give 3. No errors; num_priorities is
// clamped to 1..8.
std::uint32_t max_sched_prio(const CutoffTable& cutoffs, std::uint32_t num_priorities);

// A sender's table for a peer before any CUTOFFS arrived (version 0):
// [7]=0, [6]=INT_MAX, the rest 0, so every unscheduled packet goes at 6.
CutoffTable initial_peer_cutoffs();

// Level for the unscheduled bytes of a message of `message_length` bytes:
// the first i from num_priorities-1 down with peer_cutoffs[i] >= length.
// No errors: 0 if no entry is large enough (impossible for a normalized
// table); num_priorities is clamped to 1..8.
std::uint8_t unsched_priority(const CutoffTable& peer_cutoffs, std::uint32_t message_length,
                              std::uint32_t num_priorities);

// Level of a GRANT for the active RPC of rank `rank` (0 = best) among
// `active` active RPCs: max(0, M - rank - max(0, M + 1 - active)) with
// M = max_sched_prio (spec 3.5). No errors; M is clamped to 7.
std::uint8_t sched_priority(std::uint32_t rank, std::uint32_t active, std::uint32_t max_sched_prio);

// Parameters of the homa_prio computation (its command-line options).
struct CutoffOptions {
    std::uint32_t num_priorities = 8;
    std::uint32_t unsched_bytes = 40000;
    double unsched_boost = 0.0;              // --unsched-boost
    std::uint32_t fixed_unsched_levels = 0;  // --unsched; 0: computed
    std::uint64_t min_messages = 10000;      // --min-messages
    double min_drift = 1.0;                  // --min-drift; applied by the caller
};

// num_priorities and unsched_bytes from a Config, the rest defaulted.
CutoffOptions cutoff_options(const Config& config);

// Estimated number of messages in a histogram: 2*bytes/(lo+hi) per bucket
// plus large_msg_count.
std::uint64_t estimated_messages(const Metrics& histogram);

// Cutoffs for the traffic in `delta` (the msg_bytes_* and large_msg_*
// difference between two snapshots), normalized. Returns nullopt, meaning
// "keep the current cutoffs", when fewer than min_messages messages are
// estimated, when delta holds no bytes, or when num_priorities < 2.
std::optional<CutoffTable> compute_cutoffs(const Metrics& delta, const CutoffOptions& options);

// Deciles of the estimated message-length distribution: entry d is the limit
// of the first bucket by which (d+1)/10 of the messages are counted;
// 1,000,000 for deciles past the histogram or when there are no messages.
using Deciles = std::array<std::uint32_t, 9>;
Deciles length_deciles(const Metrics& histogram);

// Sum over the 9 deciles of |a-b|/max(a,b) (pairs with max 0 add nothing):
// 0 for equal distributions, at most 9.
double decile_drift(const Deciles& a, const Deciles& b);
double decile_drift(const Metrics& a, const Metrics& b);

}  // namespace uhoma::engine
