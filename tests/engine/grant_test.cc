// Tests of src/engine/grant.cc: the receiver's grant manager (spec 3).
#include "engine/grant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace {

using uhoma::engine::Config;
using uhoma::engine::Duration;
using uhoma::engine::Grant;
using uhoma::engine::GrantKey;
using uhoma::engine::GrantManager;
using uhoma::engine::Instant;
using uhoma::engine::Metrics;
using uhoma::engine::never;
using uhoma::engine::PeerKey;

constexpr std::uint32_t unsched = 40000;

Instant at_us(std::int64_t us) {
    return Instant{} + Duration{us * 1000};
}

// A manager with its own config and metrics.
struct Grants {
    explicit Grants(const Config& c = Config{}) : config(c), mgr(config, metrics) {}

    // Adds a message whose unscheduled bytes are announced but none received.
    // `length` is 64-bit only so that tests can write 100000 * key.
    void add(GrantKey key, PeerKey peer, std::uint64_t length, Instant now = at_us(0),
             std::uint32_t granted = unsched) {
        const auto len = static_cast<std::uint32_t>(length);
        mgr.add(key, peer, len, std::min(granted, len), 0, now, now);
    }
    std::vector<Grant> drain() {
        std::vector<Grant> out;
        while (auto g = mgr.poll_grant()) out.push_back(*g);
        return out;
    }

    Config config;
    Metrics metrics;
    GrantManager mgr;
};

// A config where the budget never binds: for tests of the active set.
Config roomy(std::uint32_t window = 50000) {
    Config c;
    c.window = window;
    c.max_incoming = 100'000'000;
    return c;
}

std::vector<Grant> grants_for(const std::vector<Grant>& grants, GrantKey key) {
    std::vector<Grant> out;
    for (const Grant& g : grants) {
        if (g.key == key) out.push_back(g);
    }
    return out;
}

// --- Configuration -------------------------------------------------------------

TEST(GrantManager, constructor__derives_defaults) {
    Grants g;
    EXPECT_EQ(g.mgr.max_sched_prio(), 3u);
    EXPECT_EQ(g.mgr.fifo_interval(), Duration{320'000});
    EXPECT_EQ(g.mgr.window(), 400000u);  // N = 0
    EXPECT_EQ(g.mgr.next_deadline(), never);
    EXPECT_EQ(g.mgr.active_count(), 0u);
    EXPECT_EQ(g.mgr.grantable_count(), 0u);
    EXPECT_EQ(g.mgr.total_incoming(), 0);
    EXPECT_EQ(g.mgr.poll_grant(), std::nullopt);
}

TEST(GrantManager, max_sched_prio__from_unsched_cutoffs) {
    Metrics m;
    Config c;
    c.unsched_cutoffs = {0, 0, 0, 0, 0, 0, 0, 1000000};  // one unscheduled level
    EXPECT_EQ(GrantManager(c, m).max_sched_prio(), 6u);
    c.unsched_cutoffs = {0, 0, 1000000, 2000, 1000, 500, 300, 200};
    EXPECT_EQ(GrantManager(c, m).max_sched_prio(), 1u);
    c.unsched_cutoffs = {0, 0, 0, 0, 0, 0, 0, 200};  // nothing reaches the max length
    EXPECT_EQ(GrantManager(c, m).max_sched_prio(), 0u);
    // Entries at or above num_priorities do not count.
    c = Config{};
    c.num_priorities = 4;
    EXPECT_EQ(GrantManager(c, m).max_sched_prio(), 0u);
    c.unsched_cutoffs = {0, 0, 0, 1000000, 0, 0, 0, 0};
    EXPECT_EQ(GrantManager(c, m).max_sched_prio(), 2u);
}

TEST(GrantManager, fifo_interval__from_rate_and_increment) {
    Metrics m;
    Config c;
    c.grant_fifo_fraction = 100;  // 10% of 25 Gb/s: 50 kB take 160 us
    EXPECT_EQ(GrantManager(c, m).fifo_interval(), Duration{160'000});
    c.grant_fifo_fraction = 900;  // capped at 500
    EXPECT_EQ(GrantManager(c, m).fifo_interval(), Duration{32'000});
    c = Config{};
    c.link_mbps = 100000;
    c.fifo_grant_increment = 10000;  // 10 kB at 5 Gb/s: 16 us
    EXPECT_EQ(GrantManager(c, m).fifo_interval(), Duration{16'000});
    c.grant_fifo_fraction = 0;
    EXPECT_EQ(GrantManager(c, m).fifo_interval(), Duration{0});
    c = Config{};
    c.fifo_grant_increment = 0;
    EXPECT_EQ(GrantManager(c, m).fifo_interval(), Duration{0});
}

// --- One message -----------------------------------------------------------------

TEST(GrantManager, add__single_message_gets_dynamic_window) {
    Grants g;
    g.add(1, 1, 1'000'000);
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 200000, 0}}));
    EXPECT_EQ(g.mgr.window(), 200000u);  // N = 1
    EXPECT_TRUE(g.mgr.is_active(1));
    EXPECT_EQ(g.mgr.granted(1), 200000u);
    EXPECT_EQ(g.mgr.total_incoming(), 200000);
    EXPECT_EQ(g.metrics.grant_check_calls, 1u);
}

TEST(GrantManager, update__grants_window_past_received) {
    Grants g;
    g.add(1, 1, 1'000'000);
    g.drain();
    const std::vector<std::pair<std::uint32_t, std::uint32_t>> steps = {
        {40000, 240000},  {100000, 300000}, {250000, 450000}, {450000, 650000},
        {650000, 850000}, {790000, 990000}, {800000, 1000000}};
    for (auto [received, offset] : steps) {
        g.mgr.update(1, received, at_us(1));
        EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, offset, 0}})) << received;
        EXPECT_EQ(g.mgr.total_incoming(), std::int64_t{offset} - received);
    }
    // Fully granted: no more grants, but the message keeps its slot.
    g.mgr.update(1, 900000, at_us(2));
    EXPECT_TRUE(g.drain().empty());
    EXPECT_TRUE(g.mgr.is_active(1));
    EXPECT_EQ(g.mgr.total_incoming(), 100000);
    // Complete: unmanaged.
    g.mgr.update(1, 1'000'000, at_us(3));
    EXPECT_FALSE(g.mgr.is_managed(1));
    EXPECT_EQ(g.mgr.total_incoming(), 0);
    EXPECT_EQ(g.mgr.grantable_count(), 0u);
    EXPECT_EQ(g.metrics.grant_check_calls, 10u);
}

TEST(GrantManager, update__no_grant_while_window_is_full) {
    Grants g;
    g.add(1, 1, 1'000'000);
    g.drain();
    g.mgr.update(1, 0, at_us(1));
    g.mgr.update(1, 0, at_us(2));
    EXPECT_TRUE(g.drain().empty());
    EXPECT_EQ(g.mgr.granted(1), 200000u);
}

TEST(GrantManager, add__grant_never_exceeds_length) {
    Grants g;
    g.add(1, 1, 45000);  // 5 kB scheduled
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 45000, 0}}));
    g.mgr.update(1, 44000, at_us(1));
    EXPECT_TRUE(g.drain().empty());
    EXPECT_EQ(g.mgr.granted(1), 45000u);
    EXPECT_EQ(g.mgr.total_incoming(), 1000);
}

TEST(GrantManager, add__ignores_messages_needing_no_grants) {
    Grants g;
    g.mgr.add(1, 1, 30000, 30000, 0, at_us(0), at_us(0));        // all unscheduled
    g.mgr.add(2, 1, 100000, 40000, 100000, at_us(0), at_us(0));  // complete
    EXPECT_EQ(g.mgr.grantable_count(), 0u);
    EXPECT_TRUE(g.drain().empty());
    g.add(3, 1, 100000);
    g.mgr.add(3, 2, 500000, 40000, 0, at_us(1), at_us(1));  // duplicate key
    EXPECT_EQ(g.mgr.grantable_count(), 1u);
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{3, 100000, 0}}));
}

TEST(GrantManager, add__counts_already_received_bytes) {
    Grants g;
    // Unscheduled bytes already in: incoming is what is granted beyond them.
    g.mgr.add(1, 1, 1'000'000, 40000, 30000, at_us(0), at_us(0));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 230000, 0}}));
    EXPECT_EQ(g.mgr.total_incoming(), 200000);
}

TEST(GrantManager, update__unknown_key_is_ignored) {
    Grants g;
    g.mgr.update(7, 1000, at_us(0));
    g.mgr.remove(7, at_us(0));
    g.mgr.raise_granted(7, 1000, at_us(0));
    EXPECT_EQ(g.mgr.granted(7), 0u);
    EXPECT_FALSE(g.mgr.is_active(7));
    EXPECT_TRUE(g.drain().empty());
    EXPECT_EQ(g.metrics.grant_check_calls, 0u);
}

// --- Ranking and priorities -----------------------------------------------------

TEST(GrantManager, add__two_peers_srpt_priorities_1_and_0) {
    Grants g;
    g.add(1, 1, 1'000'000);
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 200000, 0}}));
    g.add(2, 2, 500'000);  // shorter: rank 0 of N = 2 -> level 1
    EXPECT_EQ(g.mgr.window(), 133333u);
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 133333, 1}}));
    g.mgr.update(1, 100000, at_us(1));  // rank 1 -> level 0
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 233333, 0}}));
    g.mgr.update(2, 40000, at_us(1));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 173333, 1}}));
}

TEST(GrantManager, update__four_or_more_messages_use_levels_3_to_0) {
    Grants g(roomy());
    for (GrantKey k = 1; k <= 6; ++k) g.add(k, static_cast<PeerKey>(k), 100000 * k);
    g.drain();
    std::vector<std::uint8_t> priorities;
    for (GrantKey k = 6; k >= 1; --k) {  // worst first: ranks do not depend on order
        g.mgr.update(k, unsched, at_us(1));
        for (const Grant& grant : g.drain()) {
            EXPECT_EQ(grant.key, k);
            EXPECT_EQ(grant.offset, unsched + 50000);
            priorities.push_back(grant.priority);
        }
    }
    EXPECT_EQ(priorities, (std::vector<std::uint8_t>{0, 0, 0, 1, 2, 3}));
}

TEST(GrantManager, update__priorities_follow_remaining_bytes_not_length) {
    Grants g(roomy());
    g.add(1, 1, 300000);
    g.add(2, 2, 200000);
    g.drain();
    // Key 1 has received more: it has fewer bytes left (100 kB vs 160 kB).
    g.mgr.update(1, 200000, at_us(1));
    g.mgr.update(2, 40000, at_us(1));
    const auto grants = g.drain();
    ASSERT_EQ(grants.size(), 2u);
    EXPECT_EQ(grants[0], (Grant{1, 250000, 1}));
    EXPECT_EQ(grants[1], (Grant{2, 90000, 0}));
}

TEST(GrantManager, add__equal_remaining_ranks_oldest_first) {
    Grants g(roomy());
    g.mgr.add(1, 1, 300000, unsched, 0, at_us(5), at_us(5));
    g.mgr.add(2, 2, 300000, unsched, 0, at_us(3), at_us(5));  // older: rank 0 of 2
    g.mgr.add(3, 3, 300000, unsched, 0, at_us(7), at_us(7));  // younger: rank 2 of 3
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 50000, 0}, {2, 50000, 1}, {3, 50000, 0}}));
    // Same remaining and birth: the smaller key counts as older.
    g.mgr.add(0, 4, 300000, unsched, 0, at_us(3), at_us(8));  // rank 0 of 4
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{0, 50000, 3}}));
}

// --- Active set -----------------------------------------------------------------

TEST(GrantManager, add__ten_messages_only_eight_active) {
    Grants g(roomy());
    for (GrantKey k = 1; k <= 10; ++k) g.add(k, static_cast<PeerKey>(k), 100000 * k);
    EXPECT_EQ(g.mgr.active_count(), 8u);
    EXPECT_EQ(g.mgr.grantable_count(), 10u);
    for (GrantKey k = 1; k <= 8; ++k) EXPECT_TRUE(g.mgr.is_active(k)) << k;
    EXPECT_FALSE(g.mgr.is_active(9));
    EXPECT_FALSE(g.mgr.is_active(10));
    const auto grants = g.drain();
    EXPECT_EQ(grants.size(), 8u);
    EXPECT_TRUE(grants_for(grants, 9).empty());
    EXPECT_TRUE(grants_for(grants, 10).empty());
    // Waiting messages get nothing as their data arrives...
    g.mgr.update(9, unsched, at_us(1));
    EXPECT_TRUE(g.drain().empty());
    EXPECT_EQ(g.mgr.granted(9), unsched);
    // ...but their unscheduled bytes count in total_incoming.
    EXPECT_EQ(g.mgr.total_incoming(), 8 * 50000 + 40000);
    // A shorter newcomer displaces the lowest-ranked active message.
    g.add(11, 11, 50000);
    EXPECT_TRUE(g.mgr.is_active(11));
    EXPECT_FALSE(g.mgr.is_active(8));
    EXPECT_EQ(g.mgr.active_count(), 8u);
}

TEST(GrantManager, add__newcomer_from_other_peer_displaces_busiest_peers_lowest) {
    Grants g(roomy());
    for (GrantKey k = 1; k <= 8; ++k) g.add(k, 1, 100000 * k);
    g.drain();
    // Longer than all of them, but peer 1 holds every slot: it displaces
    // peer 1's lowest-ranked message.
    g.add(9, 2, 900000);
    EXPECT_TRUE(g.mgr.is_active(9));
    EXPECT_FALSE(g.mgr.is_active(8));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{9, 50000, 0}}));
    // Another peer-1 message that ranks below peer 1's active ones waits
    // (peer 1: 7 active + it = 8, not 2 more than its own count + 1).
    g.add(10, 1, 750000);
    EXPECT_FALSE(g.mgr.is_active(10));
    // A third peer displaces peer 1's lowest again (7 > 0 + 1).
    g.add(11, 3, 990000);
    EXPECT_TRUE(g.mgr.is_active(11));
    EXPECT_FALSE(g.mgr.is_active(7));
    // Peers 1, 2, 3 now hold 6, 1, 1 slots. A newcomer of peer 2 that ranks
    // below everything: peer 1 has 6, peer 2 would have 2; 6 > 1 + 1.
    g.add(12, 2, 995000);
    EXPECT_TRUE(g.mgr.is_active(12));
    EXPECT_FALSE(g.mgr.is_active(6));
    // Peer 1: 5 active, peer 2: 2. A peer-2 newcomer ranking last: 5 > 2 + 1
    // still holds.
    g.add(13, 2, 996000);
    EXPECT_TRUE(g.mgr.is_active(13));
    EXPECT_FALSE(g.mgr.is_active(5));
    // Peer 1: 4, peer 2: 3 (+1 = 4). The victim is the lowest-ranked of the
    // peers with 4, i.e. key 13 (peer 2), and 4 > 3 + 1 does not hold, and
    // key 14 does not outrank it: it waits.
    g.add(14, 2, 999000);
    EXPECT_FALSE(g.mgr.is_active(14));
    EXPECT_EQ(g.mgr.active_count(), 8u);
}

TEST(GrantManager, add__same_peer_newcomer_needs_better_rank) {
    Grants g(roomy());
    for (GrantKey k = 1; k <= 8; ++k) g.add(k, 1, 100000 * k + 100000);
    g.add(9, 1, 950000);
    EXPECT_FALSE(g.mgr.is_active(9));
    g.add(10, 1, 150000);
    EXPECT_TRUE(g.mgr.is_active(10));
    EXPECT_FALSE(g.mgr.is_active(8));  // 900 kB, the lowest-ranked
}

TEST(GrantManager, remove__freed_slot_prefers_peer_without_active) {
    Grants g(roomy());
    for (GrantKey k = 1; k <= 8; ++k) g.add(k, static_cast<PeerKey>(k), 100000 * k);
    g.add(21, 1, 150000);  // peer 1 already active: waits though it ranks well
    g.add(29, 9, 900000);  // peer 9 has nothing active
    EXPECT_FALSE(g.mgr.is_active(21));
    EXPECT_FALSE(g.mgr.is_active(29));
    g.drain();
    g.mgr.remove(3, at_us(1));
    EXPECT_TRUE(g.mgr.is_active(29));
    EXPECT_FALSE(g.mgr.is_active(21));
    // The promoted message gets its first grant at once (through the needy path).
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{29, 50000, 0}}));
    EXPECT_EQ(g.metrics.needy_grants, 1u);
    // Next freed slot: only peer 1 waits.
    g.mgr.remove(4, at_us(2));
    EXPECT_TRUE(g.mgr.is_active(21));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{21, 50000, 2}}));  // rank 1 of 8
}

TEST(GrantManager, remove__freed_slot_goes_to_peer_with_fewest_active) {
    Config c = roomy();
    c.max_overcommit = 4;
    Grants g(c);
    g.add(1, 1, 100000);
    g.add(2, 1, 110000);
    g.add(3, 2, 120000);
    g.add(4, 3, 130000);
    // Peer 1 would have 3 active, not 2 more than its own 2: needs rank.
    g.add(5, 1, 140000);
    // Peers 1 and 2 would both have 2: the victim is key 3; needs rank.
    g.add(6, 2, 900000);
    EXPECT_FALSE(g.mgr.is_active(5));
    EXPECT_FALSE(g.mgr.is_active(6));
    // Peer 3's slot frees; peer 3 has nothing waiting. Peer 2 (1 active)
    // has fewer than peer 1 (2 active), so its best (key 6) gets the slot
    // although key 5 ranks far better.
    g.mgr.remove(4, at_us(1));
    EXPECT_TRUE(g.mgr.is_active(6));
    EXPECT_FALSE(g.mgr.is_active(5));
    // Peer 1 now holds 2 slots and peer 2 holds 2; both get a waiting
    // message. Peer 1's key 1 ends: peer 1 has the fewest (1).
    g.add(7, 2, 950000);
    g.add(8, 1, 960000);
    EXPECT_FALSE(g.mgr.is_active(7));
    EXPECT_FALSE(g.mgr.is_active(8));
    g.mgr.remove(1, at_us(2));
    EXPECT_TRUE(g.mgr.is_active(5));
    EXPECT_FALSE(g.mgr.is_active(7));
}

TEST(GrantManager, remove__freed_slot_tie_on_fewest_goes_to_better_head) {
    Config c = roomy();
    c.max_overcommit = 3;
    Grants g(c);
    g.add(1, 1, 100000);
    g.add(2, 2, 110000);
    g.add(3, 3, 120000);
    g.add(4, 1, 500000);
    g.add(5, 2, 400000);
    EXPECT_FALSE(g.mgr.is_active(4));
    EXPECT_FALSE(g.mgr.is_active(5));
    g.mgr.remove(3, at_us(1));  // peers 1 and 2 both have 1 active
    EXPECT_TRUE(g.mgr.is_active(5));
    EXPECT_FALSE(g.mgr.is_active(4));
}

TEST(GrantManager, remove__waiting_message_leaves_quietly) {
    Grants g(roomy());
    for (GrantKey k = 1; k <= 9; ++k) g.add(k, 1, 100000 * k);
    g.drain();
    EXPECT_FALSE(g.mgr.is_active(9));
    g.mgr.remove(9, at_us(1));
    EXPECT_EQ(g.mgr.grantable_count(), 8u);
    EXPECT_EQ(g.mgr.active_count(), 8u);
    EXPECT_EQ(g.mgr.total_incoming(), 8 * 50000);
    EXPECT_TRUE(g.drain().empty());
}

TEST(GrantManager, update__inactive_message_promoted_when_rank_improves) {
    Grants g(roomy());
    for (GrantKey k = 1; k <= 8; ++k) g.add(k, static_cast<PeerKey>(k), 100000 * k + 100000);
    g.add(9, 9, 950000);
    EXPECT_FALSE(g.mgr.is_active(9));
    g.drain();
    // Key 9 made progress (e.g. FIFO grants): 50 kB left, the best of all.
    g.mgr.raise_granted(9, 900000, at_us(1));
    g.mgr.update(9, 900000, at_us(1));
    EXPECT_TRUE(g.mgr.is_active(9));
    EXPECT_FALSE(g.mgr.is_active(8));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{9, 950000, 3}}));
}

// --- Window and budget ----------------------------------------------------------

TEST(GrantManager, window__dynamic_and_fixed) {
    Grants g;
    g.add(1, 1, 1'000'000);
    EXPECT_EQ(g.mgr.window(), 200000u);
    for (GrantKey k = 2; k <= 8; ++k) g.add(k, static_cast<PeerKey>(k), 1'000'000);
    EXPECT_EQ(g.mgr.window(), 44444u);
    g.add(9, 9, 1'000'000);  // N stays at 8
    EXPECT_EQ(g.mgr.window(), 44444u);
    Grants f(roomy(60000));
    f.add(1, 1, 1'000'000);
    EXPECT_EQ(f.mgr.window(), 60000u);
    f.add(2, 2, 1'000'000);
    EXPECT_EQ(f.mgr.window(), 60000u);
}

TEST(GrantManager, update__eight_active_each_hold_44444) {
    Grants g;
    for (GrantKey k = 1; k <= 8; ++k) g.add(k, static_cast<PeerKey>(k), 1'000'000);
    // Each sender sends whatever is granted; after a few rounds every
    // message has exactly one window outstanding (8 x 44,444 fits in 400,000).
    std::map<GrantKey, std::uint32_t> received;
    for (int round = 0; round < 10; ++round) {
        for (GrantKey k = 1; k <= 8; ++k) {
            received[k] = g.mgr.granted(k);
            g.mgr.update(k, received[k], at_us(round));
        }
    }
    for (const Grant& grant : g.drain()) EXPECT_LE(grant.priority, 3);
    for (GrantKey k = 1; k <= 8; ++k) EXPECT_EQ(g.mgr.granted(k) - received[k], 44444u) << k;
    EXPECT_EQ(g.mgr.total_incoming(), 8 * 44444);
    EXPECT_EQ(g.mgr.needy_count(), 0u);
}

TEST(GrantManager, add__unscheduled_bytes_pause_all_grants) {
    Grants g;
    for (GrantKey k = 1; k <= 8; ++k) g.add(k, static_cast<PeerKey>(k), 1'000'000);
    g.drain();
    // A burst of new (waiting) messages announces 10 x 40 kB.
    for (GrantKey k = 11; k <= 20; ++k) g.add(k, static_cast<PeerKey>(k), 1'000'000);
    EXPECT_GE(g.mgr.total_incoming(), 400000);
    EXPECT_TRUE(g.drain().empty());
    // Active senders deliver their unscheduled bytes: still over budget, so
    // no grants, and the messages that want more are needy.
    g.mgr.update(4, unsched, at_us(1));
    g.mgr.update(5, unsched, at_us(1));
    EXPECT_TRUE(g.drain().empty());
    EXPECT_TRUE(g.mgr.is_needy(4));
    EXPECT_TRUE(g.mgr.is_needy(5));
    // Keys 3..8 were needy from the start (3 was cut short, 4..8 found no
    // room); keys 1 and 2 have their full window.
    EXPECT_FALSE(g.mgr.is_needy(1));
    EXPECT_FALSE(g.mgr.is_needy(2));
    EXPECT_EQ(g.mgr.needy_count(), 6u);
}

TEST(GrantManager, update__needy_served_in_rank_order_when_budget_frees) {
    Config c;
    c.max_incoming = 100000;
    c.window = 50000;
    Grants g(c);
    g.add(3, 3, 700000, at_us(0), 10000);
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{3, 50000, 0}}));
    g.add(1, 1, 500000, at_us(0), 10000);  // exactly fills the budget
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 50000, 1}}));
    EXPECT_EQ(g.mgr.total_incoming(), 100000);
    g.add(2, 2, 600000, at_us(0), 10000);  // over budget: needy
    EXPECT_TRUE(g.drain().empty());
    EXPECT_TRUE(g.mgr.is_needy(2));
    g.mgr.update(1, 10000, at_us(1));  // wants 10 kB more, no room
    EXPECT_TRUE(g.drain().empty());
    EXPECT_TRUE(g.mgr.is_needy(1));
    EXPECT_EQ(g.mgr.needy_count(), 2u);
    // Key 3 ends and frees 50 kB: key 1 (fewest bytes left) first, then 2.
    g.mgr.remove(3, at_us(2));
    const auto grants = g.drain();
    ASSERT_EQ(grants.size(), 2u);
    EXPECT_EQ(grants[0], (Grant{1, 60000, 1}));
    EXPECT_EQ(grants[1], (Grant{2, 50000, 0}));
    EXPECT_EQ(g.mgr.total_incoming(), 100000);
    EXPECT_EQ(g.mgr.needy_count(), 0u);
    EXPECT_EQ(g.metrics.needy_grants, 2u);
}

TEST(GrantManager, update__avail_cuts_grant_short_and_marks_needy) {
    Config c;
    c.max_incoming = 100000;
    c.window = 80000;
    Grants g(c);
    g.add(1, 1, 500000, at_us(0), 10000);
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 80000, 0}}));
    g.add(2, 2, 600000, at_us(0), 10000);  // 90 kB in use: only 10 kB left
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 20000, 0}}));
    EXPECT_TRUE(g.mgr.is_needy(2));
    EXPECT_EQ(g.mgr.total_incoming(), 100000);
    // Key 1's data frees 50 kB. Key 2 is needy, so key 1 may not help
    // itself; the needy ones are served in rank order, key 1 first, and it
    // takes all the room.
    g.mgr.update(1, 50000, at_us(1));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 130000, 1}}));
    EXPECT_FALSE(g.mgr.is_needy(1));
    EXPECT_TRUE(g.mgr.is_needy(2));
    // Key 2's data frees 20 kB: it wants 80 kB, gets 20 kB, stays needy.
    g.mgr.update(2, 20000, at_us(2));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 40000, 0}}));
    EXPECT_TRUE(g.mgr.is_needy(2));
    EXPECT_EQ(g.mgr.total_incoming(), 100000);
}

TEST(GrantManager, update__budget_freed_by_lower_rank_goes_to_needy_better_rank) {
    Config c;
    c.max_incoming = 100000;
    c.window = 80000;
    Grants g(c);
    g.add(2, 2, 600000, at_us(0), 10000);
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 80000, 0}}));
    g.add(1, 1, 500000, at_us(0), 10000);  // cut short to the 10 kB left
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 20000, 1}}));
    EXPECT_TRUE(g.mgr.is_needy(1));
    // Key 2's data frees 30 kB. Key 2 would like it, but key 1 is needy and
    // ranks better: key 1 gets all of it.
    g.mgr.update(2, 30000, at_us(1));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 50000, 1}}));
    EXPECT_TRUE(g.mgr.is_needy(1));
    EXPECT_TRUE(g.mgr.is_needy(2));
    EXPECT_EQ(g.mgr.granted(2), 80000u);
}

// --- FIFO grants ----------------------------------------------------------------

// A 1 MB message (key 1) from peer 1, then a steady stream of 100 kB
// messages from the same peer that keeps it out of the active set. Senders
// send 10 kB per message per 10 us step, up to what is granted. Returns
// every grant with the time it was decided.
struct Decided {
    Instant time;
    Grant grant;
};
std::vector<Decided> starve_big_message(Grants& g, std::int64_t end_us, int* completions) {
    std::vector<Decided> decided;
    std::map<GrantKey, std::uint32_t> received;  // ordered: deterministic
    GrantKey next_key = 100;
    auto collect = [&](Instant now) {
        for (const Grant& grant : g.drain()) decided.push_back({now, grant});
    };
    g.add(1, 1, 1'000'000, at_us(0));
    received[1] = 0;
    collect(at_us(0));
    *completions = 0;
    for (std::int64_t t = 0; t <= end_us; t += 10) {
        const Instant now = at_us(t);
        while (received.size() < 13) {
            g.add(next_key, 1, 100000, now);
            received[next_key++] = 0;
            collect(now);
        }
        if (g.mgr.next_deadline() <= now) g.mgr.handle_timeout(now);
        collect(now);
        for (auto it = received.begin(); it != received.end();) {
            const GrantKey key = it->first;
            const std::uint32_t next = std::min(g.mgr.granted(key), it->second + 10000);
            if (next != it->second) {
                it->second = next;
                g.mgr.update(key, next, now);
                collect(now);
            }
            if (!g.mgr.is_managed(key)) {
                // Completed: a new one takes its place at once, so that
                // smaller messages are always waiting ahead of key 1.
                ++*completions;
                it = received.erase(it);
                g.add(next_key, 1, 100000, now);
                received[next_key++] = 0;
                collect(now);
            } else {
                ++it;
            }
        }
    }
    return decided;
}

TEST(GrantManager, handle_timeout__fifo_grants_reach_starved_oldest_every_320us) {
    Grants g;
    int completions = 0;
    constexpr std::int64_t end_us = 4000;
    const auto decided = starve_big_message(g, end_us, &completions);
    EXPECT_GT(completions, 30);
    std::vector<Decided> big;
    for (const Decided& d : decided) {
        if (d.grant.key == 1) big.push_back(d);
    }
    // Key 1 had its normal grant when it was alone; after that only FIFO
    // grants, 50 kB at level 6, exactly every 320 us.
    ASSERT_FALSE(big.empty());
    EXPECT_EQ(big[0].time, at_us(0));
    EXPECT_EQ(big[0].grant, (Grant{1, 200000, 0}));
    ASSERT_EQ(big.size(), 1u + end_us / 320);
    for (std::size_t i = 1; i < big.size(); ++i) {
        EXPECT_EQ(big[i].time, at_us(320 * static_cast<std::int64_t>(i))) << i;
        EXPECT_EQ(big[i].grant, (Grant{1, 200000 + 50000 * static_cast<std::uint32_t>(i), 6})) << i;
    }
    EXPECT_FALSE(g.mgr.is_active(1));
    EXPECT_EQ(g.metrics.fifo_grant_bytes, 50000u * (end_us / 320));
    // Every other grant is a normal one, at a scheduled level.
    for (const Decided& d : decided) {
        if (d.grant.key != 1) {
            EXPECT_LE(d.grant.priority, 3) << d.grant.key;
        }
    }
}

TEST(GrantManager, handle_timeout__no_fifo_grants_when_fraction_is_0) {
    Config c;
    c.grant_fifo_fraction = 0;
    Grants g(c);
    int completions = 0;
    const auto decided = starve_big_message(g, 3000, &completions);
    EXPECT_GT(completions, 20);
    std::size_t big = 0;
    for (const Decided& d : decided) {
        if (d.grant.key == 1) ++big;
        EXPECT_LE(d.grant.priority, 3);
    }
    EXPECT_EQ(big, 1u);  // the grant it had while alone
    EXPECT_EQ(g.mgr.granted(1), 200000u);
    EXPECT_EQ(g.mgr.next_deadline(), never);
    EXPECT_EQ(g.metrics.fifo_grant_bytes, 0u);
}

TEST(GrantManager, handle_timeout__no_fifo_grants_when_increment_is_0) {
    Config c;
    c.fifo_grant_increment = 0;
    Grants g(c);
    g.add(1, 1, 1'000'000);
    EXPECT_EQ(g.mgr.next_deadline(), never);
    g.mgr.handle_timeout(at_us(10000));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 200000, 0}}));
}

TEST(GrantManager, next_deadline__fifo_clock_starts_with_first_message) {
    Grants g;
    g.add(1, 1, 1'000'000, at_us(100));
    g.drain();
    EXPECT_EQ(g.mgr.next_deadline(), at_us(420));
    g.mgr.handle_timeout(at_us(419));  // early: nothing
    EXPECT_TRUE(g.drain().empty());
    g.mgr.handle_timeout(at_us(420));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 250000, 6}}));
    EXPECT_EQ(g.mgr.next_deadline(), at_us(740));
    EXPECT_EQ(g.metrics.fifo_grant_bytes, 50000u);
}

TEST(GrantManager, update__fifo_check_follows_normal_grant) {
    Grants g;
    g.add(1, 1, 1'000'000, at_us(0));
    g.drain();
    // No timer call: the normal grant at 330 us finds the FIFO grant due.
    g.mgr.update(1, 100000, at_us(330));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 300000, 0}, {1, 350000, 6}}));
    EXPECT_EQ(g.mgr.next_deadline(), at_us(650));
    // An update without a normal grant does not check.
    g.mgr.update(1, 100000, at_us(700));
    EXPECT_TRUE(g.drain().empty());
    g.mgr.update(1, 160000, at_us(700));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 360000, 0}, {1, 410000, 6}}));
}

TEST(GrantManager, next_deadline__never_when_all_fully_granted_and_restarts) {
    Grants g;
    g.add(1, 1, 100000, at_us(0));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 100000, 0}}));
    EXPECT_EQ(g.mgr.next_deadline(), never);  // managed, but nothing to grant
    // Idle for a long time, then a new message: its first FIFO grant comes a
    // full interval later, not at once.
    g.add(2, 2, 1'000'000, at_us(5000));
    EXPECT_EQ(g.mgr.next_deadline(), at_us(5320));
    g.mgr.update(2, 60000, at_us(5001));
    for (const Grant& grant : g.drain()) EXPECT_NE(grant.priority, 6);
}

TEST(GrantManager, handle_timeout__fifo_goes_to_oldest_even_if_active_and_long) {
    Grants g(roomy());
    g.mgr.add(1, 1, 1'000'000, unsched, 0, at_us(0), at_us(0));
    g.mgr.add(2, 2, 100000, unsched, 0, at_us(10), at_us(10));
    g.drain();
    g.mgr.handle_timeout(at_us(320));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 100000, 6}}));
}

TEST(GrantManager, handle_timeout__fifo_skips_unresponsive_sender) {
    Config c = roomy(50000);  // FIFO limit: window + 2 x 50 kB = 150 kB incoming
    Grants g(c);
    g.mgr.add(1, 1, 1'000'000, unsched, 0, at_us(0), at_us(0));
    g.mgr.add(2, 2, 900000, unsched, 0, at_us(10), at_us(10));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 50000, 0}, {2, 50000, 1}}));
    g.mgr.handle_timeout(at_us(320));
    g.mgr.handle_timeout(at_us(640));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 100000, 6}, {1, 150000, 6}}));
    // Key 1's sender sent nothing: 150 kB incoming, so key 2 gets the next.
    g.mgr.handle_timeout(at_us(960));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 100000, 6}}));
    // Once key 1's data arrives it is eligible again.
    g.mgr.update(1, 100000, at_us(1000));
    g.drain();
    g.mgr.handle_timeout(at_us(1280));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 200000, 6}}));
}

TEST(GrantManager, handle_timeout__fifo_caps_at_length_then_skips) {
    Grants g(roomy(50000));
    g.mgr.add(1, 1, 120000, unsched, 0, at_us(0), at_us(0));
    g.mgr.add(2, 2, 900000, unsched, 0, at_us(10), at_us(10));
    g.drain();
    g.mgr.handle_timeout(at_us(320));
    g.mgr.handle_timeout(at_us(640));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 100000, 6}, {1, 120000, 6}}));
    EXPECT_EQ(g.metrics.fifo_grant_bytes, 70000u);
    g.mgr.handle_timeout(at_us(960));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 100000, 6}}));
}

TEST(GrantManager, handle_timeout__one_fifo_grant_per_check_when_late) {
    Grants g;
    g.add(1, 1, 1'000'000, at_us(0));
    g.drain();
    g.mgr.handle_timeout(at_us(2000));  // several intervals late
    EXPECT_EQ(g.drain().size(), 1u);
    EXPECT_EQ(g.mgr.next_deadline(), at_us(2320));
}

TEST(GrantManager, handle_timeout__fifo_priority_is_num_priorities_minus_2) {
    Config c;
    c.num_priorities = 4;
    c.unsched_cutoffs = {0, 0, 1000000, 200, 0, 0, 0, 0};
    Grants g(c);
    g.add(1, 1, 1'000'000, at_us(0));
    g.drain();
    g.mgr.handle_timeout(at_us(320));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 250000, 2}}));
}

// --- Other entry points ---------------------------------------------------------

TEST(GrantManager, remove__drops_queued_grants_and_budget) {
    Grants g;
    g.add(1, 1, 1'000'000);
    g.add(2, 2, 500000);
    g.mgr.remove(1, at_us(1));
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{2, 133333, 1}}));
    EXPECT_EQ(g.mgr.total_incoming(), 133333);
    EXPECT_EQ(g.mgr.granted(1), 0u);
    EXPECT_FALSE(g.mgr.is_managed(1));
    g.mgr.remove(1, at_us(1));  // twice: no-op
    EXPECT_EQ(g.mgr.grantable_count(), 1u);
}

TEST(GrantManager, raise_granted__raises_without_a_grant) {
    Grants g;
    g.add(1, 1, 1'000'000);
    g.drain();
    g.mgr.raise_granted(1, 300000, at_us(1));
    EXPECT_TRUE(g.drain().empty());
    EXPECT_EQ(g.mgr.granted(1), 300000u);
    EXPECT_EQ(g.mgr.total_incoming(), 300000);
    g.mgr.raise_granted(1, 100000, at_us(1));  // never lowers
    EXPECT_EQ(g.mgr.granted(1), 300000u);
    g.mgr.raise_granted(1, 5'000'000, at_us(1));  // capped at the length
    EXPECT_EQ(g.mgr.granted(1), 1'000'000u);
    EXPECT_EQ(g.mgr.next_deadline(), never);
}

TEST(GrantManager, update__sender_oversend_counts_no_negative_incoming) {
    Grants g;
    g.add(1, 1, 1'000'000);
    g.drain();
    g.mgr.update(1, 250000, at_us(1));  // 50 kB beyond what was granted
    EXPECT_EQ(g.drain(), (std::vector<Grant>{{1, 450000, 0}}));
    EXPECT_EQ(g.mgr.total_incoming(), 200000);
}

TEST(GrantManager, metrics__grantable_rpcs_integral_is_time_weighted) {
    Grants g(roomy());
    g.add(1, 1, 1'000'000, at_us(10));
    g.add(2, 2, 1'000'000, at_us(20));  // 1 message for 10 us
    g.mgr.remove(1, at_us(50));         // 2 messages for 30 us
    g.mgr.remove(2, at_us(60));         // 1 message for 10 us
    EXPECT_EQ(g.metrics.grantable_rpcs_integral, 10'000u + 60'000u + 10'000u);
    EXPECT_EQ(g.metrics.grant_check_calls, 2u);
}

// --- Randomized -----------------------------------------------------------------

// splitmix64: identical on every platform.
struct SplitMix {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
};

struct Model {
    std::uint32_t length = 0;
    std::uint32_t received = 0;
    std::uint32_t granted = 0;  // as last seen
};

void run_random(std::uint64_t seed) {
    SplitMix rng{seed};
    Config c;
    c.max_overcommit = 1 + rng.below(8);
    c.window = rng.below(3) == 0 ? 10000 + rng.below(200000) : 0;
    c.max_incoming = 50000 + rng.below(800000);
    c.grant_fifo_fraction = std::vector<std::uint32_t>{0, 50, 200, 500}[rng.below(4)];
    c.fifo_grant_increment = rng.below(4) == 0 ? 0 : 1000 + rng.below(100000);
    c.unsched_bytes = 1000 + rng.below(60000);
    Grants g(c);
    const std::uint32_t max_prio = g.mgr.max_sched_prio();
    std::map<GrantKey, Model> live;
    std::int64_t t_ns = 0;
    GrantKey next_key = 1;
    for (int step = 0; step < 4000; ++step) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " step " << step);
        t_ns += rng.below(30'000);
        const Instant now = Instant{} + Duration{t_ns};
        const std::uint32_t op = rng.below(100);
        if (op < 15 || live.empty()) {
            const std::uint32_t length = 1 + rng.below(1'000'000);
            const std::uint32_t granted = std::min(length, c.unsched_bytes);
            const std::uint32_t received = rng.below(3) == 0 ? rng.below(granted + 1) : 0;
            const PeerKey peer = rng.below(6);
            g.mgr.add(next_key, peer, length, granted, received, now, now);
            if (granted < length && received < length) live[next_key] = {length, received, granted};
            ++next_key;
        } else {
            auto it = live.begin();
            std::advance(it, rng.below(static_cast<std::uint32_t>(live.size())));
            const GrantKey key = it->first;
            Model& m = it->second;
            if (op < 80) {
                // Data up to what is granted, sometimes a little beyond.
                std::uint32_t limit =
                    std::min(m.length, m.granted + (rng.below(10) == 0 ? 5000u : 0u));
                limit = std::max(limit, m.received);
                std::uint32_t received = m.received + rng.below(limit - m.received + 1);
                if (rng.below(4) == 0) received = limit;
                m.received = received;
                g.mgr.update(key, received, now);
                if (received == m.length) live.erase(it);
            } else if (op < 88) {
                g.mgr.remove(key, now);
                live.erase(it);
            } else if (op < 92) {
                g.mgr.raise_granted(key, m.granted + rng.below(100000), now);
            } else {
                const Instant deadline = g.mgr.next_deadline();
                if (deadline != never) {
                    t_ns = std::max(t_ns, (deadline - Instant{}).count());
                    g.mgr.handle_timeout(Instant{} + Duration{t_ns});
                } else {
                    g.mgr.handle_timeout(now);
                }
            }
        }
        // Grants: only for live messages, increasing, within the length.
        for (const Grant& grant : g.drain()) {
            auto it = live.find(grant.key);
            ASSERT_NE(it, live.end()) << grant.key;
            ASSERT_GT(grant.offset, it->second.granted);
            ASSERT_LE(grant.offset, it->second.length);
            ASSERT_TRUE(grant.priority <= max_prio || grant.priority == 6) << int{grant.priority};
            it->second.granted = grant.offset;
        }
        // Invariants.
        std::int64_t incoming = 0;
        std::size_t ungranted = 0;
        for (auto& [key, m] : live) {
            ASSERT_TRUE(g.mgr.is_managed(key)) << key;
            const std::uint32_t granted = g.mgr.granted(key);
            ASSERT_GE(granted, m.granted) << key;  // monotonic (raise_granted is silent)
            ASSERT_LE(granted, m.length) << key;
            m.granted = granted;
            if (granted > m.received) incoming += granted - m.received;
            if (granted < m.length) ++ungranted;
        }
        ASSERT_EQ(g.mgr.grantable_count(), live.size());
        ASSERT_EQ(g.mgr.total_incoming(), incoming);
        ASSERT_LE(g.mgr.active_count(), c.max_overcommit);
        ASSERT_EQ(g.mgr.active_count(), std::min<std::size_t>(c.max_overcommit, live.size()));
        ASSERT_TRUE(g.mgr.needy_count() == 0 || incoming >= c.max_incoming);
        const bool fifo = c.grant_fifo_fraction != 0 && c.fifo_grant_increment != 0;
        ASSERT_EQ(g.mgr.next_deadline() == never, !fifo || ungranted == 0);
    }
}

TEST(GrantManager, random__invariants_hold) {
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        run_random(seed);
        if (testing::Test::HasFatalFailure()) return;
    }
}

}  // namespace
