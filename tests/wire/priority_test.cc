// Tests of src/wire/priority.h: priority <-> IP TOS / Traffic Class (spec 1.1).
#include "wire/priority.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace {

using namespace uhoma::wire;

TEST(priority, tos_for_priority__identity_map_is_p_shifted_by_5) {
    // The top three DSCP bits: 0x00, 0x20, ..., 0xE0.
    const std::array<std::uint8_t, 8> expected = {0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0, 0xE0};
    for (unsigned p = 0; p < 8; ++p) {
        EXPECT_EQ(tos_for_priority(p), expected[p]) << p;
        EXPECT_EQ(tos_for_priority(p, identity_priority_map), expected[p]) << p;
    }
}

TEST(priority, tos_for_priority__custom_map) {
    // priority_map[p] << 5: e.g. a fabric with the order reversed, or with
    // only four queues.
    const PriorityMap reversed = {7, 6, 5, 4, 3, 2, 1, 0};
    EXPECT_EQ(tos_for_priority(0, reversed), 0xE0u);
    EXPECT_EQ(tos_for_priority(3, reversed), 0x80u);
    EXPECT_EQ(tos_for_priority(7, reversed), 0x00u);
    const PriorityMap four_queues = {0, 0, 1, 1, 2, 2, 3, 3};
    EXPECT_EQ(tos_for_priority(1, four_queues), 0x00u);
    EXPECT_EQ(tos_for_priority(2, four_queues), 0x20u);
    EXPECT_EQ(tos_for_priority(5, four_queues), 0x40u);
    EXPECT_EQ(tos_for_priority(6, four_queues), 0x60u);
}

TEST(priority, tos_for_priority__clamps_priority_above_7) {
    EXPECT_EQ(tos_for_priority(8), 0xE0u);
    EXPECT_EQ(tos_for_priority(255), 0xE0u);
    EXPECT_EQ(tos_for_priority(0xFFFF'FFFFu), 0xE0u);
    // Clamped to level 7, then mapped.
    const PriorityMap reversed = {7, 6, 5, 4, 3, 2, 1, 0};
    EXPECT_EQ(tos_for_priority(8, reversed), 0x00u);
    EXPECT_EQ(tos_for_priority(100, reversed), 0x00u);
}

TEST(priority, tos_for_priority__clamps_map_entries_above_7) {
    const PriorityMap wild = {8, 9, 255, 7, 0, 16, 1, 128};
    EXPECT_EQ(tos_for_priority(0, wild), 0xE0u);
    EXPECT_EQ(tos_for_priority(1, wild), 0xE0u);
    EXPECT_EQ(tos_for_priority(2, wild), 0xE0u);
    EXPECT_EQ(tos_for_priority(3, wild), 0xE0u);
    EXPECT_EQ(tos_for_priority(4, wild), 0x00u);
    EXPECT_EQ(tos_for_priority(5, wild), 0xE0u);
    EXPECT_EQ(tos_for_priority(6, wild), 0x20u);
    EXPECT_EQ(tos_for_priority(7, wild), 0xE0u);
}

TEST(priority, priority_from_tos__top_three_bits) {
    EXPECT_EQ(priority_from_tos(0x00), 0u);
    EXPECT_EQ(priority_from_tos(0x1F), 0u);  // low 5 bits (ECN, rest of DSCP) ignored
    EXPECT_EQ(priority_from_tos(0x20), 1u);
    EXPECT_EQ(priority_from_tos(0x3F), 1u);
    EXPECT_EQ(priority_from_tos(0xA3), 5u);
    EXPECT_EQ(priority_from_tos(0xE0), 7u);
    EXPECT_EQ(priority_from_tos(0xFF), 7u);
    for (unsigned tos = 0; tos < 256; ++tos) {
        EXPECT_EQ(priority_from_tos(static_cast<std::uint8_t>(tos)), tos / 32) << tos;
    }
}

TEST(priority, priority_from_tos__inverts_tos_for_priority) {
    for (std::uint8_t p = 0; p < 8; ++p) {
        EXPECT_EQ(priority_from_tos(tos_for_priority(p)), p) << unsigned{p};
    }
    const PriorityMap reversed = {7, 6, 5, 4, 3, 2, 1, 0};
    for (unsigned p = 0; p < 8; ++p) {
        EXPECT_EQ(priority_from_tos(tos_for_priority(p, reversed)), 7 - p) << p;
    }
}

}  // namespace
