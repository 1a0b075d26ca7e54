// Tests of src/engine/cutoffs.cc: unscheduled cutoffs, scheduled levels and
// the homa_prio cutoff computation (spec 3.5, 4).
#include "engine/cutoffs.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace {

using namespace uhoma::engine;

constexpr std::uint32_t M = 1'000'000;
constexpr std::uint32_t INTMAX = 0x7fff'ffff;
const CutoffTable default_table = Config{}.unsched_cutoffs;  // 0 0 0 0 1M 15000 2800 200

std::size_t bucket_with_limit(std::uint32_t limit) {
    for (std::size_t i = 0; i < Metrics::small_buckets + Metrics::medium_buckets; ++i) {
        if (Metrics::bucket_limit(i) == limit) return i;
    }
    ADD_FAILURE() << "no bucket with limit " << limit;
    return 0;
}

// Options that accept any histogram with at least one message.
CutoffOptions options_for_tests() {
    CutoffOptions o;
    o.min_messages = 1;
    return o;
}

// ---------------------------------------------------------------- tables

TEST(cutoffs, normalize_cutoffs__forces_entry_0_and_unused_levels) {
    const CutoffTable in = {5, 6, 7, 8, 9, 10, 11, 12};
    EXPECT_EQ(normalize_cutoffs(in, 8), (CutoffTable{INTMAX, 6, 7, 8, 9, 10, 11, 12}));
    EXPECT_EQ(normalize_cutoffs(in, 4), (CutoffTable{INTMAX, 6, 7, 8, 0, 0, 0, 0}));
    EXPECT_EQ(normalize_cutoffs(in, 1), (CutoffTable{INTMAX, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(cutoffs, normalize_cutoffs__clamps_num_priorities) {
    const CutoffTable in = {5, 6, 7, 8, 9, 10, 11, 12};
    EXPECT_EQ(normalize_cutoffs(in, 0), normalize_cutoffs(in, 1));
    EXPECT_EQ(normalize_cutoffs(in, 9), normalize_cutoffs(in, 8));
    EXPECT_EQ(normalize_cutoffs(in, 0xFFFF'FFFF), normalize_cutoffs(in, 8));
}

TEST(cutoffs, normalize_cutoffs__default_table) {
    EXPECT_EQ(normalize_cutoffs(default_table, 8),
              (CutoffTable{INTMAX, 0, 0, 0, M, 15000, 2800, 200}));
}

TEST(cutoffs, max_sched_prio__defaults_give_3) {
    EXPECT_EQ(max_sched_prio(default_table, 8), 3u);
    EXPECT_EQ(max_sched_prio(normalize_cutoffs(default_table, 8), 8), 3u);
}

TEST(cutoffs, max_sched_prio__first_large_entry_from_the_top) {
    EXPECT_EQ(max_sched_prio({INTMAX, M, M, M, M, M, M, 200}, 8), 5u);
    EXPECT_EQ(max_sched_prio({INTMAX, M, M, M, M, M, M, M}, 8), 6u);
    EXPECT_EQ(max_sched_prio({INTMAX, M, 9000, 5000, 3000, 1000, 500, 100}, 8), 0u);
    // Values above 1,000,000 count too.
    EXPECT_EQ(max_sched_prio({INTMAX, 0, 0, 0, 0, INTMAX, 2800, 200}, 8), 4u);
    // Only the levels in use are read.
    EXPECT_EQ(max_sched_prio({INTMAX, 0, M, 5000, 0, 0, 0, 0}, 4), 1u);
}

TEST(cutoffs, max_sched_prio__degenerate_cases_give_0) {
    // No entry >= 1,000,000 above entry 0.
    EXPECT_EQ(max_sched_prio({INTMAX, 500000, 15000, 5000, 3000, 1000, 500, 100}, 8), 0u);
    EXPECT_EQ(max_sched_prio({0, 0, 0, 0, 0, 0, 0, 0}, 8), 0u);
    EXPECT_EQ(max_sched_prio(default_table, 1), 0u);
    EXPECT_EQ(max_sched_prio(default_table, 0), 0u);
}

TEST(cutoffs, initial_peer_cutoffs__level_6_for_everything) {
    EXPECT_EQ(initial_peer_cutoffs(), (CutoffTable{0, 0, 0, 0, 0, 0, INTMAX, 0}));
    // Messages are at least 1 byte long ([7] = 0 would match length 0).
    for (std::uint32_t length : {1u, 100u, 200u, 201u, 40000u, 1000000u, 0x7fff'ffffu}) {
        EXPECT_EQ(unsched_priority(initial_peer_cutoffs(), length, 8), 6u) << length;
    }
}

TEST(cutoffs, unsched_priority__default_table) {
    const std::vector<std::pair<std::uint32_t, unsigned>> cases = {
        {1, 7},     {100, 7},   {200, 7},   {201, 6},    {2800, 6},   {2801, 5},
        {15000, 5}, {15001, 4}, {40000, 4}, {999999, 4}, {1000000, 4}};
    for (const auto& [length, level] : cases) {
        EXPECT_EQ(unsched_priority(default_table, length, 8), level) << length;
        EXPECT_EQ(unsched_priority(normalize_cutoffs(default_table, 8), length, 8), level)
            << length;
    }
}

TEST(cutoffs, unsched_priority__fewer_priorities_skip_upper_levels) {
    const CutoffTable t = normalize_cutoffs({0, M, 10000, 1000, 500, 0, 0, 0}, 4);
    EXPECT_EQ(unsched_priority(t, 100, 4), 3u);
    EXPECT_EQ(unsched_priority(t, 1001, 4), 2u);
    EXPECT_EQ(unsched_priority(t, 10001, 4), 1u);
    // Entries at 4.. are not read even when nonzero.
    EXPECT_EQ(unsched_priority({0, M, 10000, 1000, 500, 0, 0, 0}, 400, 4), 3u);
}

TEST(cutoffs, unsched_priority__nothing_large_enough_gives_0) {
    EXPECT_EQ(unsched_priority({0, 0, 0, 0, 0, 0, 0, 200}, 201, 8), 0u);
    // After normalizing, entry 0 always matches.
    EXPECT_EQ(unsched_priority(normalize_cutoffs({0, 0, 0, 0, 0, 0, 0, 200}, 8), 0x7fff'ffff, 8),
              0u);
}

TEST(cutoffs, sched_priority__default_table_spec_examples) {
    // M = 3: N=1 -> 0; N=2 -> 1,0; N=3 -> 2,1,0; N>=4 -> 3,2,1,0, rest 0.
    const std::vector<std::vector<unsigned>> expected = {
        {0}, {1, 0}, {2, 1, 0}, {3, 2, 1, 0}, {3, 2, 1, 0, 0}};
    for (std::uint32_t n = 1; n <= 5; ++n) {
        for (std::uint32_t rank = 0; rank < n; ++rank) {
            EXPECT_EQ(sched_priority(rank, n, 3), expected[n - 1][rank]) << n << " " << rank;
        }
    }
    for (std::uint32_t rank = 4; rank < 8; ++rank) EXPECT_EQ(sched_priority(rank, 8, 3), 0u);
}

TEST(cutoffs, sched_priority__other_max_sched_prio) {
    EXPECT_EQ(sched_priority(0, 1, 0), 0u);
    EXPECT_EQ(sched_priority(0, 8, 0), 0u);
    EXPECT_EQ(sched_priority(0, 8, 6), 6u);
    EXPECT_EQ(sched_priority(0, 2, 6), 1u);
    EXPECT_EQ(sched_priority(5, 8, 6), 1u);
    EXPECT_EQ(sched_priority(0, 0, 3), 0u);            // no active RPCs: lowest level
    EXPECT_EQ(sched_priority(0, 8, 1000), 7u);         // M clamped to 7
    EXPECT_EQ(sched_priority(0xFFFF'FFFF, 8, 3), 0u);  // no underflow
}

// ---------------------------------------------------------------- homa_prio

TEST(cutoffs, estimated_messages__two_bytes_over_lo_plus_hi) {
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 96 * 1000;   // lo 64: 1000 messages
    m.msg_bytes[bucket_with_limit(64)] = 64 * 10;      // lo 0: estimated 20
    m.msg_bytes[bucket_with_limit(5120)] = 4608 * 10;  // lo 4096: 10
    m.msg_bytes[bucket_with_limit(2048)] = 3000;       // 6000/4032 = 1 (integer)
    m.large_msg_count = 7;
    m.large_msg_bytes = 7 * 500000;
    EXPECT_EQ(estimated_messages(m), 1000u + 20u + 10u + 1u + 7u);
    EXPECT_EQ(estimated_messages(Metrics{}), 0u);
}

TEST(cutoffs, compute_cutoffs__four_equal_buckets_hand_computed) {
    // All unscheduled, 8 levels, 960,000 bytes in each of 4 buckets: a level
    // closes every 1 + 3,840,000/8 = 480,001 bytes, i.e. at every bucket
    // except the last, which ends the walk.
    Metrics m;
    for (std::uint32_t limit : {128u, 1024u, 4096u, 16384u}) {
        m.msg_bytes[bucket_with_limit(limit)] = 960000;
    }
    const auto table = compute_cutoffs(m, CutoffOptions{});
    ASSERT_TRUE(table.has_value());
    EXPECT_EQ(*table, (CutoffTable{INTMAX, M, M, M, M, 4096, 1024, 128}));
    EXPECT_EQ(max_sched_prio(*table, 8), 3u);
}

TEST(cutoffs, compute_cutoffs__mixed_traffic_hand_computed) {
    // Buckets 65-128 and 1985-2048 with 960,000 bytes each, and two 1 MB
    // messages: total 3,920,000, unscheduled 960,000*2 + 2*40,000 =
    // 2,000,000; levels = round(8 * 0.5102) = 4; 500,001 bytes per level.
    // 128 closes level 7 (960,000), 2048 closes level 6 (1,920,000), and the
    // next threshold 2,420,001 passes the total, so level 5 is the lowest
    // unscheduled one.
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 960000;
    m.msg_bytes[bucket_with_limit(2048)] = 960000;
    m.large_msg_count = 2;
    m.large_msg_bytes = 2000000;
    const auto table = compute_cutoffs(m, CutoffOptions{});
    ASSERT_TRUE(table.has_value());
    EXPECT_EQ(*table, (CutoffTable{INTMAX, M, M, M, M, M, 2048, 128}));
    EXPECT_EQ(max_sched_prio(*table, 8), 4u);
    EXPECT_EQ(unsched_priority(*table, 100, 8), 7u);
    EXPECT_EQ(unsched_priority(*table, 2000, 8), 6u);
    EXPECT_EQ(unsched_priority(*table, 500000, 8), 5u);
}

TEST(cutoffs, compute_cutoffs__unsched_boost_shifts_the_level_count) {
    // As above with boost -1.6: round(4.08 - 1.6) = 2 levels of 1,000,001
    // bytes; 2048 (1,920,000) closes level 7, then 2,920,001 ends the walk.
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 960000;
    m.msg_bytes[bucket_with_limit(2048)] = 960000;
    m.large_msg_count = 2;
    m.large_msg_bytes = 2000000;
    CutoffOptions o;
    o.unsched_boost = -1.6;
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, M, M, M, M, M, 2048}));
    // A huge negative boost still leaves one level: nothing closes.
    o.unsched_boost = -100;
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, M, M, M, M, M, M}));
    // A huge positive boost is capped at num_priorities: 8 levels of
    // 250,001 bytes; 128 closes 7, 2048 closes 6 and leaves 1,920,000 +
    // 250,001 >= 2,000,000.
    o.unsched_boost = 100;
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, M, M, M, M, 2048, 128}));
}

TEST(cutoffs, compute_cutoffs__fixed_unsched_levels) {
    Metrics m;
    for (std::uint32_t limit : {128u, 1024u, 4096u, 16384u}) {
        m.msg_bytes[bucket_with_limit(limit)] = 960000;
    }
    CutoffOptions o;
    o.fixed_unsched_levels = 2;  // 1,920,001 bytes per level: 4096 closes 7
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, M, M, M, M, M, 4096}));
    EXPECT_EQ(max_sched_prio(*compute_cutoffs(m, o), 8), 5u);
    o.fixed_unsched_levels = 1;
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, M, M, M, M, M, M}));
    o.fixed_unsched_levels = 50;  // capped at 8, as computed
    EXPECT_EQ(compute_cutoffs(m, o), compute_cutoffs(m, CutoffOptions{}));
}

TEST(cutoffs, compute_cutoffs__four_priorities_hand_computed) {
    // 4 levels of 960,001 bytes: 128 (960,000) falls one byte short, 1024
    // closes level 3, 4096 (2,880,000) falls one byte short of 2,880,001,
    // 16384 ends the walk.
    Metrics m;
    for (std::uint32_t limit : {128u, 1024u, 4096u, 16384u}) {
        m.msg_bytes[bucket_with_limit(limit)] = 960000;
    }
    CutoffOptions o;
    o.num_priorities = 4;
    const auto table = compute_cutoffs(m, o);
    ASSERT_TRUE(table.has_value());
    EXPECT_EQ(*table, (CutoffTable{INTMAX, M, M, 1024, 0, 0, 0, 0}));
    EXPECT_EQ(max_sched_prio(*table, 4), 1u);
}

TEST(cutoffs, compute_cutoffs__all_messages_100_bytes) {
    // 10,000 messages of 100 bytes: everything is unscheduled (8 levels), but
    // one bucket cannot be split, so no level closes: every message goes at
    // level 7 and levels 0..6 are left to (absent) scheduled traffic.
    Metrics m;
    for (int i = 0; i < 10000; ++i) m.record_message_length(100);
    EXPECT_GE(estimated_messages(m), 10000u);
    const auto table = compute_cutoffs(m, CutoffOptions{});
    ASSERT_TRUE(table.has_value());
    EXPECT_EQ(*table, (CutoffTable{INTMAX, M, M, M, M, M, M, M}));
    EXPECT_EQ(unsched_priority(*table, 100, 8), 7u);
    EXPECT_EQ(max_sched_prio(*table, 8), 6u);
}

TEST(cutoffs, compute_cutoffs__bucket_above_unsched_bytes_counts_messages) {
    // Bucket 64513-65536 with 100 messages (6,502,400 bytes) contributes
    // only 100 * 40,000 unscheduled bytes; with 960,000 in 65-128 that is
    // 4,960,000 of 7,462,400: round(5.32) = 5 levels of 992,001 bytes, so
    // 128 closes nothing and 65536 ends the walk.
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 960000;
    m.msg_bytes[bucket_with_limit(65536)] = 6502400;
    EXPECT_EQ(compute_cutoffs(m, options_for_tests()), (CutoffTable{INTMAX, M, M, M, M, M, M, M}));
    // With unsched_bytes 1000 the 65536 bucket adds 100,000 unscheduled
    // bytes, so 128 holds 90% of them: round(8*1,060,000/7,462,400) = 1.
    CutoffOptions o = options_for_tests();
    o.unsched_bytes = 1000;
    o.fixed_unsched_levels = 2;  // 530,001 per level: 128 closes level 7
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, M, M, M, M, M, 128}));
}

TEST(cutoffs, compute_cutoffs__w4_like_mixture_is_sensible) {
    // Many short messages, most bytes in long ones (like W4, Hadoop).
    const std::vector<std::pair<std::uint32_t, int>> mix = {
        {100, 30000},  {300, 10000},  {1000, 10000}, {3000, 5000},  {10000, 3000},
        {30000, 1000}, {100000, 500}, {500000, 200}, {1000000, 100}};
    Metrics m;
    for (const auto& [length, count] : mix) {
        for (int i = 0; i < count; ++i) m.record_message_length(length);
    }
    const auto table = compute_cutoffs(m, CutoffOptions{});
    ASSERT_TRUE(table.has_value());
    const CutoffTable& t = *table;
    EXPECT_EQ(t, normalize_cutoffs(t, 8));
    const std::uint32_t msp = max_sched_prio(t, 8);
    // Unscheduled bytes are about 123 MB of 341 MB: round(2.9) = 3 levels of
    // about 41 MB. 10240 closes level 7 (61 MB), 100352 closes level 6
    // (111 MB), and the next threshold (152 MB) passes the total.
    EXPECT_EQ(t, (CutoffTable{INTMAX, M, M, M, M, M, 100352, 10240}));
    EXPECT_EQ(msp, 4u);
    // Cutoffs grow from the top level down to the lowest unscheduled one.
    for (std::uint32_t level = 7; level > msp + 1; --level) EXPECT_LT(t[level], t[level - 1]);
    EXPECT_EQ(t[msp + 1], M);
    // Shorter messages never get a lower level; all use unscheduled levels.
    std::uint8_t previous = 7;
    for (const auto& [length, count] : mix) {
        const std::uint8_t level = unsched_priority(t, length, 8);
        EXPECT_LE(level, previous) << length;
        EXPECT_GT(level, msp) << length;
        previous = level;
    }
    EXPECT_EQ(unsched_priority(t, 100, 8), 7u);
    EXPECT_LT(unsched_priority(t, 1000000, 8), 7u);
}

TEST(cutoffs, compute_cutoffs__too_few_messages_gives_nullopt) {
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 96 * 9999;  // 9,999 messages
    EXPECT_FALSE(compute_cutoffs(m, CutoffOptions{}).has_value());
    m.large_msg_count = 1;  // large messages count too
    m.large_msg_bytes = 200000;
    EXPECT_TRUE(compute_cutoffs(m, CutoffOptions{}).has_value());
    CutoffOptions o;
    o.min_messages = 10001;
    EXPECT_FALSE(compute_cutoffs(m, o).has_value());
}

TEST(cutoffs, compute_cutoffs__no_bytes_or_one_priority_gives_nullopt) {
    CutoffOptions o;
    o.min_messages = 0;
    EXPECT_FALSE(compute_cutoffs(Metrics{}, o).has_value());
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 960000;
    o.num_priorities = 1;
    EXPECT_FALSE(compute_cutoffs(m, o).has_value());
    o.num_priorities = 0;
    EXPECT_FALSE(compute_cutoffs(m, o).has_value());
    o.num_priorities = 2;
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, 0, 0, 0, 0, 0, 0}));
}

TEST(cutoffs, compute_cutoffs__zero_unsched_bytes) {
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 960000;
    CutoffOptions o;
    o.unsched_bytes = 0;
    EXPECT_EQ(compute_cutoffs(m, o), (CutoffTable{INTMAX, M, M, M, M, M, M, M}));
}

TEST(cutoffs, cutoff_options__from_config) {
    Config c;
    c.num_priorities = 4;
    c.unsched_bytes = 60000;
    const CutoffOptions o = cutoff_options(c);
    EXPECT_EQ(o.num_priorities, 4u);
    EXPECT_EQ(o.unsched_bytes, 60000u);
    EXPECT_EQ(o.min_messages, 10000u);
    EXPECT_EQ(o.fixed_unsched_levels, 0u);
    EXPECT_EQ(o.unsched_boost, 0.0);
    EXPECT_EQ(o.min_drift, 1.0);
}

// ---------------------------------------------------------------- drift

TEST(cutoffs, length_deciles__single_and_split_distributions) {
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 96 * 1000;
    EXPECT_EQ(length_deciles(m), (Deciles{128, 128, 128, 128, 128, 128, 128, 128, 128}));
    // 30% at <=128, 70% at <=2048.
    m.msg_bytes[bucket_with_limit(128)] = 96 * 300;
    m.msg_bytes[bucket_with_limit(2048)] = 2016 * 700;
    EXPECT_EQ(length_deciles(m), (Deciles{128, 128, 128, 2048, 2048, 2048, 2048, 2048, 2048}));
}

TEST(cutoffs, length_deciles__large_messages_and_empty) {
    EXPECT_EQ(length_deciles(Metrics{}), (Deciles{M, M, M, M, M, M, M, M, M}));
    Metrics m;
    m.msg_bytes[bucket_with_limit(128)] = 96 * 500;
    m.large_msg_count = 500;
    m.large_msg_bytes = 500 * 200000;
    EXPECT_EQ(length_deciles(m), (Deciles{128, 128, 128, 128, 128, M, M, M, M}));
}

TEST(cutoffs, decile_drift__sum_of_relative_differences) {
    const Deciles a = {128, 128, 128, 128, 128, 128, 128, 128, 128};
    const Deciles b = {1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024};
    EXPECT_DOUBLE_EQ(decile_drift(a, a), 0.0);
    EXPECT_DOUBLE_EQ(decile_drift(a, b), 9 * (1024.0 - 128.0) / 1024.0);  // 7.875
    EXPECT_DOUBLE_EQ(decile_drift(b, a), decile_drift(a, b));
    // Against the initial all-zero deciles every pair adds 1.
    EXPECT_DOUBLE_EQ(decile_drift(Deciles{}, a), 9.0);
    EXPECT_DOUBLE_EQ(decile_drift(Deciles{}, Deciles{}), 0.0);
    const Deciles c = {128, 128, 128, 128, 128, 128, 128, 128, 256};
    EXPECT_DOUBLE_EQ(decile_drift(a, c), 0.5);
}

TEST(cutoffs, decile_drift__of_histograms) {
    Metrics small;
    small.msg_bytes[bucket_with_limit(128)] = 96 * 1000;
    Metrics big;
    big.msg_bytes[bucket_with_limit(1024)] = 992 * 1000;
    EXPECT_DOUBLE_EQ(decile_drift(small, small), 0.0);
    EXPECT_DOUBLE_EQ(decile_drift(small, big), 7.875);
    // Same shape, more traffic: no drift.
    Metrics twice = small;
    twice += small;
    EXPECT_DOUBLE_EQ(decile_drift(small, twice), 0.0);
}

}  // namespace
