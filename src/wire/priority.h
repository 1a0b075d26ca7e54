// Priority <-> IP TOS / IPv6 Traffic Class (spec 1.1).
//
// Homa carries a packet's priority only in the IP header: the TOS byte (or
// the IPv6 Traffic Class) is priority_map[p] << 5, the top three DSCP bits,
// which is what strict-priority switch queues classify on. Level 0 is the
// lowest, 7 the highest. Receivers ignore the priority; it matters only to the
// fabric, so uhoma-dump and the test fabric are its main readers.
#pragma once

#include <array>
#include <cstdint>

#include "wire/packet.h"

namespace uhoma::wire {

using PriorityMap = std::array<std::uint8_t, num_priorities>;
inline constexpr PriorityMap identity_priority_map = {0, 1, 2, 3, 4, 5, 6, 7};

// TOS/Traffic Class byte for internal level `priority` (0..7). Levels and map
// entries above 7 are clamped to 7 so the result always fits three bits.
constexpr std::uint8_t tos_for_priority(unsigned priority,
                                        const PriorityMap& map = identity_priority_map) {
    const unsigned level = priority < num_priorities ? priority : num_priorities - 1;
    const unsigned mapped = map[level] < num_priorities ? map[level] : num_priorities - 1;
    return static_cast<std::uint8_t>(mapped << 5);
}

// The priority a switch sees in a TOS/Traffic Class byte.
constexpr std::uint8_t priority_from_tos(std::uint8_t tos) {
    return static_cast<std::uint8_t>(tos >> 5);
}

}  // namespace uhoma::wire
