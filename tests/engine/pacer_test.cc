// Tests of src/engine/pacer.cc: the NIC queue estimate, the pacer bypass rule
// and the SRPT/FIFO choice among throttled messages (spec 5).
#include "engine/pacer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace {

using namespace uhoma::engine;
using std::chrono::microseconds;
using std::chrono::nanoseconds;

constexpr Instant t0 = Instant{} + microseconds(1000);

Config config_with(std::uint32_t link_mbps) {
    Config c;
    c.link_mbps = link_mbps;
    return c;
}

// Homa bytes that make a 1500-byte wire packet over IPv4.
constexpr std::size_t homa_1500 = 1500 - 20 - 42;

// ---------------------------------------------------------------- NicQueue

TEST(pacer, wire_bytes__ip_and_ethernet_overhead) {
    EXPECT_EQ(wire_bytes(1438, false), 1500u);
    EXPECT_EQ(wire_bytes(1418, true), 1500u);
    EXPECT_EQ(wire_bytes(28, false), 90u);
    EXPECT_EQ(wire_bytes(0, true), 82u);
}

TEST(pacer, on_send__25_gbps_link_idle_arithmetic) {
    // 1500 B at 0.99 * 25 Gb/s = 484.848... ns: whole nanoseconds are
    // reported and the fraction carries, so nothing drifts.
    NicQueue q(config_with(25000));
    EXPECT_EQ(q.link_idle(), Instant::min());
    q.on_send(homa_1500, false, t0);
    EXPECT_EQ(q.link_idle(), t0 + nanoseconds(484));
    q.on_send(homa_1500, false, t0);
    EXPECT_EQ(q.link_idle(), t0 + nanoseconds(969));  // 969.69...
    for (int i = 2; i < 33; ++i) q.on_send(homa_1500, false, t0);
    EXPECT_EQ(q.link_idle(), t0 + nanoseconds(16000));  // 33 * 484.848... exactly
    EXPECT_EQ(q.backlog(t0), nanoseconds(16000));
}

TEST(pacer, on_send__10_gbps_link_idle_arithmetic) {
    NicQueue q(config_with(10000));
    q.on_send(homa_1500, false, t0);
    EXPECT_EQ(q.link_idle(), t0 + nanoseconds(1212));  // 1212.12...
    for (int i = 1; i < 33; ++i) q.on_send(homa_1500, false, t0);
    EXPECT_EQ(q.link_idle(), t0 + nanoseconds(40000));
    // A 90-byte control packet: 90 * 8 / 9.9 = 72.72... ns.
    NicQueue c(config_with(10000));
    c.on_send(28, false, t0);
    EXPECT_EQ(c.link_idle(), t0 + nanoseconds(72));
}

TEST(pacer, on_send__ipv6_header_is_20_bytes_longer) {
    NicQueue v4(config_with(25000));
    NicQueue v6(config_with(25000));
    for (int i = 0; i < 33; ++i) {
        v4.on_send(homa_1500, false, t0);
        v6.on_send(homa_1500 - 20, true, t0);
    }
    EXPECT_EQ(v4.link_idle(), v6.link_idle());
    NicQueue more(config_with(25000));
    for (int i = 0; i < 33; ++i) more.on_send(homa_1500, true, t0);  // 1520 B on the wire
    EXPECT_EQ(more.link_idle(), t0 + nanoseconds(16213));            // 33*1520*8/24.75
}

TEST(pacer, on_send__idle_link_restarts_from_now) {
    NicQueue q(config_with(25000));
    q.on_send(homa_1500, false, t0);
    const Instant later = t0 + microseconds(10);
    q.on_send(homa_1500, false, later);
    EXPECT_EQ(q.link_idle(), later + nanoseconds(484));  // no backlog carried over
    // While busy, packets queue behind each other whatever `now` is.
    q.on_send(homa_1500, false, later + nanoseconds(100));
    EXPECT_EQ(q.link_idle(), later + nanoseconds(969));
}

TEST(pacer, backlog__zero_when_idle) {
    NicQueue q(config_with(25000));
    EXPECT_EQ(q.backlog(t0), nanoseconds(0));
    q.on_send(homa_1500, false, t0);
    EXPECT_EQ(q.backlog(t0 + nanoseconds(84)), nanoseconds(400));
    EXPECT_EQ(q.backlog(t0 + nanoseconds(484)), nanoseconds(0));
    EXPECT_EQ(q.backlog(t0 + microseconds(1)), nanoseconds(0));
}

TEST(pacer, can_send__boundary_at_exactly_5_us) {
    NicQueue q(config_with(25000));
    EXPECT_TRUE(q.can_send(t0));
    for (int i = 0; i < 33; ++i) q.on_send(homa_1500, false, t0);  // 16 us queued
    EXPECT_FALSE(q.can_send(t0));
    EXPECT_FALSE(q.can_send(t0 + nanoseconds(11000)));  // backlog exactly 5 us
    EXPECT_TRUE(q.can_send(t0 + nanoseconds(11001)));   // 4.999 us
    EXPECT_TRUE(q.can_send(t0 + microseconds(20)));
}

TEST(pacer, ready_at__first_time_can_send) {
    NicQueue q(config_with(25000));
    EXPECT_EQ(q.ready_at(), Instant::min());
    for (int i = 0; i < 33; ++i) q.on_send(homa_1500, false, t0);
    EXPECT_EQ(q.ready_at(), t0 + nanoseconds(11001));
    EXPECT_FALSE(q.can_send(q.ready_at() - nanoseconds(1)));
    EXPECT_TRUE(q.can_send(q.ready_at()));
    // A short backlog gives a time already past.
    NicQueue s(config_with(25000));
    s.on_send(homa_1500, false, t0);
    EXPECT_EQ(s.ready_at(), t0 + nanoseconds(484 - 5000 + 1));
    EXPECT_TRUE(s.can_send(t0));
}

TEST(pacer, can_send__other_limits) {
    Config c = config_with(25000);
    c.max_nic_est_backlog_usecs = 10;
    NicQueue q(c);
    for (int i = 0; i < 33; ++i) q.on_send(homa_1500, false, t0);
    EXPECT_FALSE(q.can_send(t0 + nanoseconds(6000)));
    EXPECT_TRUE(q.can_send(t0 + nanoseconds(6001)));
    EXPECT_EQ(q.ready_at(), t0 + nanoseconds(6001));
    // A limit of 0 allows one packet at a time: only an idle link may send.
    c.max_nic_est_backlog_usecs = 0;
    NicQueue z(c);
    EXPECT_TRUE(z.can_send(t0));
    z.on_send(homa_1500, false, t0);
    EXPECT_FALSE(z.can_send(t0 + nanoseconds(483)));
    EXPECT_TRUE(z.can_send(t0 + nanoseconds(484)));
    EXPECT_EQ(z.ready_at(), t0 + nanoseconds(484));
}

TEST(pacer, throttling_disabled__flag_2_turns_the_limit_off) {
    Config c = config_with(25000);
    EXPECT_FALSE(NicQueue(c).throttling_disabled());
    c.flags = 1;
    EXPECT_FALSE(NicQueue(c).throttling_disabled());
    c.flags = 2;
    NicQueue q(c);
    EXPECT_TRUE(q.throttling_disabled());
    for (int i = 0; i < 100; ++i) q.on_send(homa_1500, false, t0);
    EXPECT_TRUE(q.can_send(t0));
    EXPECT_EQ(q.ready_at(), Instant::min());
    EXPECT_GT(q.backlog(t0), microseconds(40));  // still estimated
}

TEST(pacer, bypasses_pacer__defer_min_bytes_threshold) {
    Config c;
    EXPECT_TRUE(bypasses_pacer(0, c));
    EXPECT_TRUE(bypasses_pacer(999, c));
    EXPECT_TRUE(bypasses_pacer(1000, c));
    EXPECT_FALSE(bypasses_pacer(1001, c));
    EXPECT_FALSE(bypasses_pacer(1000000, c));
    c.defer_min_bytes = 0;
    EXPECT_TRUE(bypasses_pacer(0, c));
    EXPECT_FALSE(bypasses_pacer(1, c));
}

// ---------------------------------------------------------------- PacerQueue

TEST(pacer, pick__fewest_bytes_remaining_first) {
    PacerQueue q(0);  // no FIFO share
    EXPECT_TRUE(q.add(1, 50000, t0));
    EXPECT_TRUE(q.add(2, 20000, t0 + microseconds(1)));
    EXPECT_TRUE(q.add(3, 90000, t0 + microseconds(2)));
    EXPECT_EQ(q.pick(), 2u);
    EXPECT_TRUE(q.remove(2));
    EXPECT_EQ(q.pick(), 1u);
    EXPECT_TRUE(q.remove(1));
    EXPECT_EQ(q.pick(), 3u);
    EXPECT_TRUE(q.remove(3));
    EXPECT_EQ(q.pick(), std::nullopt);
}

TEST(pacer, pick__ties_go_to_older_then_smaller_key) {
    PacerQueue q(0);
    q.add(9, 1000, t0 + microseconds(5));
    q.add(8, 1000, t0 + microseconds(3));
    q.add(7, 1000, t0 + microseconds(3));
    EXPECT_EQ(q.pick(), 7u);
    q.remove(7);
    EXPECT_EQ(q.pick(), 8u);
    q.remove(8);
    EXPECT_EQ(q.pick(), 9u);
}

TEST(pacer, update__reorders_both_ways) {
    PacerQueue q(0);
    q.add(1, 10000, t0);
    q.add(2, 20000, t0);
    q.add(3, 30000, t0);
    EXPECT_TRUE(q.update(3, 5000));  // moves to the front
    EXPECT_EQ(q.pick(), 3u);
    EXPECT_TRUE(q.update(3, 25000));  // back between 2 and ...
    EXPECT_EQ(q.pick(), 1u);
    EXPECT_TRUE(q.update(1, 40000));  // ... to the end
    EXPECT_EQ(q.pick(), 2u);
    q.remove(2);
    EXPECT_EQ(q.pick(), 3u);
    q.remove(3);
    EXPECT_EQ(q.pick(), 1u);
    EXPECT_TRUE(q.update(1, 40000));  // unchanged
    EXPECT_EQ(q.pick(), 1u);
}

TEST(pacer, add_update_remove__unknown_and_duplicate_keys) {
    PacerQueue q;
    EXPECT_FALSE(q.update(4, 100));
    EXPECT_FALSE(q.remove(4));
    EXPECT_FALSE(q.contains(4));
    EXPECT_TRUE(q.add(4, 100, t0));
    EXPECT_FALSE(q.add(4, 1, t0));  // unchanged
    EXPECT_TRUE(q.contains(4));
    EXPECT_EQ(q.size(), 1u);
    q.add(5, 50, t0);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_TRUE(q.remove(4));
    EXPECT_FALSE(q.remove(4));
    EXPECT_FALSE(q.contains(4));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_FALSE(q.empty());
    EXPECT_TRUE(q.remove(5));
    EXPECT_TRUE(q.empty());
}

TEST(pacer, pick__fifo_share_exactly_50_of_1000) {
    PacerQueue q(50);
    q.add(100, 1000000, t0);                   // oldest, longest
    q.add(200, 20000, t0 + microseconds(10));  // SRPT choice
    q.add(300, 30000, t0 + microseconds(20));
    std::vector<int> fifo_picks;
    int srpt = 0;
    for (int i = 1; i <= 1000; ++i) {
        const auto key = q.pick();
        ASSERT_TRUE(key.has_value());
        if (*key == 100) {
            fifo_picks.push_back(i);
        } else {
            EXPECT_EQ(*key, 200u);
            ++srpt;
        }
    }
    ASSERT_EQ(fifo_picks.size(), 50u);
    EXPECT_EQ(srpt, 950);
    for (std::size_t k = 0; k < fifo_picks.size(); ++k) {
        EXPECT_EQ(fifo_picks[k], static_cast<int>(20 * (k + 1)));
    }
}

TEST(pacer, pick__other_fifo_fractions) {
    for (const auto& [fraction, expected] : std::vector<std::pair<std::uint32_t, int>>{
             {0, 0}, {100, 100}, {500, 500}, {1000, 1000}, {5000, 1000}, {30, 30}}) {
        PacerQueue q(fraction);
        q.add(1, 500000, t0);
        q.add(2, 5000, t0 + microseconds(1));
        int fifo = 0;
        for (int i = 0; i < 1000; ++i) fifo += q.pick() == 1u ? 1 : 0;
        EXPECT_EQ(fifo, expected) << fraction;
    }
}

TEST(pacer, pick__fifo_pick_of_the_srpt_head_still_counts) {
    // When the oldest message is also the shortest, FIFO picks return it too.
    PacerQueue q(50);
    q.add(1, 1000, t0);
    q.add(2, 9000, t0 + microseconds(1));
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(q.pick(), 1u);
    // The count continued: the next FIFO pick is again the 20th.
    q.update(1, 10000);
    for (int i = 1; i < 20; ++i) EXPECT_EQ(q.pick(), 2u) << i;
    EXPECT_EQ(q.pick(), 1u);
}

TEST(pacer, pick__empty_queue_does_not_count) {
    PacerQueue q(500);  // SRPT, FIFO, SRPT, FIFO, ...
    for (int i = 0; i < 3; ++i) EXPECT_EQ(q.pick(), std::nullopt);
    q.add(1, 500000, t0);
    q.add(2, 5000, t0 + microseconds(1));
    EXPECT_EQ(q.pick(), 2u);
    EXPECT_EQ(q.pick(), 1u);
    EXPECT_EQ(q.pick(), 2u);
}

TEST(pacer, pacer_queue__fraction_from_config) {
    Config c;
    c.pacer_fifo_fraction = 250;
    PacerQueue q(c);
    q.add(1, 500000, t0);
    q.add(2, 5000, t0 + microseconds(1));
    int fifo = 0;
    for (int i = 0; i < 1000; ++i) fifo += q.pick() == 1u ? 1 : 0;
    EXPECT_EQ(fifo, 250);
}

TEST(pacer, pacer_queue__storage_changes_only_in_add) {
    // The entries' vector is PacerQueue's only storage: update, pick and
    // remove never grow it, so they never allocate.
    PacerQueue q;
    q.reserve(64);
    const std::size_t capacity = q.capacity();
    EXPECT_GE(capacity, 64u);
    for (PacerKey k = 0; k < 64; ++k) q.add(k, 1000 * (k % 7) + k, t0 + microseconds(k));
    EXPECT_EQ(q.capacity(), capacity);  // reserved: no growth
    for (int round = 0; round < 100; ++round) {
        for (PacerKey k = 0; k < 64; ++k) {
            q.update(k, (k * 7919 + static_cast<PacerKey>(round) * 104729) % 100000);
        }
        for (int i = 0; i < 50; ++i) (void)q.pick();
    }
    for (PacerKey k = 0; k < 64; k += 2) q.remove(k);
    EXPECT_EQ(q.capacity(), capacity);
    EXPECT_EQ(q.size(), 32u);
    for (PacerKey k = 100; k < 300; ++k) q.add(k, k, t0);  // add grows it
    EXPECT_GT(q.capacity(), capacity);
}

TEST(pacer, pacer_queue__stays_in_srpt_order_under_random_updates) {
    // Deterministic pseudo-random updates; after each, the SRPT pick (FIFO
    // share off) is the entry with the fewest bytes.
    PacerQueue q(0);
    std::vector<std::uint64_t> bytes(32);
    for (PacerKey k = 0; k < bytes.size(); ++k) {
        bytes[k] = 1000 + k;
        q.add(k, bytes[k], t0);
    }
    std::uint64_t state = 12345;
    for (int step = 0; step < 2000; ++step) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const PacerKey k = (state >> 33) % bytes.size();
        bytes[k] = (state >> 13) % 5000;
        q.update(k, bytes[k]);
        PacerKey best = 0;
        for (PacerKey j = 1; j < bytes.size(); ++j) {
            if (bytes[j] < bytes[best]) best = j;  // ties: equal birth, smaller key
        }
        ASSERT_EQ(q.pick(), best) << step;
    }
}

}  // namespace
