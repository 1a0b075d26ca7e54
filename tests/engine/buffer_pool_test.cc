// Tests of src/engine/buffer_pool.cc: region limits, chunk layout (whole
// bpages from the lowest indices, tails carved from a core's cached page),
// the cached page's restart, hand-over and lease rules, release errors,
// all-or-nothing failure, and a seeded randomized model check.
//
// Expected offsets are worked out by hand from spec/protocol.md section 7,
// never read back from the pool. Pools use the smallest legal region, so
// exhaustion is a few allocations away: 1 core gives 31 bpages
// (65,536 + 2,000,000 bytes), 2 cores give 32.
#include "engine/buffer_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace uhoma::engine;
using namespace std::chrono_literals;

constexpr Duration lease = 10ms;
constexpr std::uint32_t kib64 = bpage_size;

Instant at_us(std::int64_t us) {
    return Instant{} + std::chrono::microseconds(us);
}

BufferPool make_pool(std::uint32_t cores, std::uint64_t extra_bytes = 0,
                     Duration bpage_lease = lease) {
    auto pool = BufferPool::create(BufferPool::minimum_region_bytes(cores) + extra_bytes, cores,
                                   bpage_lease);
    if (!pool.has_value()) ADD_FAILURE() << "create failed: " << pool.error();
    return std::move(pool).value();
}

std::uint32_t page_of(std::uint32_t offset) {
    return offset >> bpage_shift;
}

// Everything observable about a pool, to check that a failed call changed
// nothing.
struct Snapshot {
    std::uint32_t free = 0;
    std::uint64_t bytes = 0;
    std::uint64_t reuses = 0;
    std::vector<std::tuple<std::uint32_t, std::optional<std::uint32_t>, Instant>> pages;
    std::vector<std::optional<std::uint32_t>> owned;
    friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

Snapshot snapshot(const BufferPool& pool) {
    Snapshot s;
    s.free = pool.free_bpages();
    s.bytes = pool.bytes_in_use();
    s.reuses = pool.bpage_reuses();
    for (std::uint32_t i = 0; i < pool.total_bpages(); ++i) {
        const BpageState b = pool.bpage_state(i).value();
        s.pages.emplace_back(b.references, b.owner, b.lease_expiry);
    }
    for (std::uint32_t c = 0; c < pool.num_cores(); ++c) s.owned.push_back(pool.owned_bpage(c));
    return s;
}

BufferAllocation must_allocate(BufferPool& pool, std::uint32_t length, std::uint32_t core,
                               Instant now) {
    auto a = pool.allocate(length, core, now);
    if (!a.has_value()) {
        ADD_FAILURE() << "allocate(" << length << ", core " << core << ") failed";
        return {};
    }
    return *a;
}

void release_all(BufferPool& pool, const BufferAllocation& a) {
    for (std::uint32_t i = 0; i < a.num_bpages; ++i) {
        EXPECT_TRUE(pool.release(a.offsets[i]).has_value()) << "chunk " << i;
    }
}

// --- create ------------------------------------------------------------------

TEST(BufferPool, minimum_region_bytes__one_page_per_core_plus_two_messages) {
    EXPECT_EQ(BufferPool::minimum_region_bytes(1), 65'536u + 2'000'000u);
    EXPECT_EQ(BufferPool::minimum_region_bytes(8), 8u * 65'536u + 2'000'000u);
}

TEST(BufferPool, create__minimum_region_accepted) {
    auto pool = BufferPool::create(2'065'536, 1, lease);
    ASSERT_TRUE(pool.has_value());
    EXPECT_EQ(pool->total_bpages(), 31u);  // 2,065,536 / 65,536 = 31.5, rounded down
    EXPECT_EQ(pool->free_bpages(), 31u);
    EXPECT_EQ(pool->bytes_in_use(), 0u);
    EXPECT_EQ(pool->num_cores(), 1u);
}

TEST(BufferPool, create__one_byte_below_minimum_rejected) {
    auto pool = BufferPool::create(2'065'535, 1, lease);
    ASSERT_FALSE(pool.has_value());
    EXPECT_EQ(pool.error(), EINVAL);
    auto four = BufferPool::create(4 * 65'536 + 2'000'000 - 1, 4, lease);
    ASSERT_FALSE(four.has_value());
    EXPECT_EQ(four.error(), EINVAL);
}

TEST(BufferPool, create__more_than_4_gib_rejected) {
    auto too_big = BufferPool::create((std::uint64_t{1} << 32) + 1, 2, lease);
    ASSERT_FALSE(too_big.has_value());
    EXPECT_EQ(too_big.error(), EINVAL);

    auto exactly = BufferPool::create(std::uint64_t{1} << 32, 2, lease);
    ASSERT_TRUE(exactly.has_value());
    EXPECT_EQ(exactly->total_bpages(), 65'536u);
    // The last byte of the region is still addressable with a u32 offset.
    const std::uint32_t last_page = 65'535;
    EXPECT_TRUE(exactly->bpage_state(last_page).has_value());
    EXPECT_FALSE(exactly->bpage_state(last_page + 1).has_value());
}

TEST(BufferPool, create__zero_cores_or_negative_lease_rejected) {
    auto no_cores = BufferPool::create(4'000'000, 0, lease);
    ASSERT_FALSE(no_cores.has_value());
    EXPECT_EQ(no_cores.error(), EINVAL);
    auto negative = BufferPool::create(4'000'000, 1, -1ns);
    ASSERT_FALSE(negative.has_value());
    EXPECT_EQ(negative.error(), EINVAL);
}

TEST(BufferPool, create__region_rounded_down_to_whole_pages) {
    auto pool = BufferPool::create(40 * std::uint64_t{kib64} + 65'535, 1, lease);
    ASSERT_TRUE(pool.has_value());
    EXPECT_EQ(pool->total_bpages(), 40u);
    // The partial page past the end is not part of the pool.
    auto r = pool->release(40 * kib64);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), EINVAL);
}

// --- allocate: whole pages ---------------------------------------------------

TEST(BufferPool, allocate__whole_pages_from_lowest_indices) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 3 * kib64, 0, at_us(0));
    ASSERT_EQ(a.num_bpages, 3u);
    EXPECT_EQ(a.offsets[0], 0u * kib64);
    EXPECT_EQ(a.offsets[1], 1u * kib64);
    EXPECT_EQ(a.offsets[2], 2u * kib64);
    EXPECT_EQ(pool.free_bpages(), 28u);

    // A hole at page 1 is filled before anything above page 2.
    ASSERT_TRUE(pool.release(1 * kib64).has_value());
    const BufferAllocation b = must_allocate(pool, 2 * kib64, 0, at_us(1));
    ASSERT_EQ(b.num_bpages, 2u);
    EXPECT_EQ(b.offsets[0], 1u * kib64);
    EXPECT_EQ(b.offsets[1], 3u * kib64);
    for (std::uint32_t i = 0; i < 4; ++i) {
        EXPECT_EQ(pool.bpage_state(i)->references, 1u) << i;
        EXPECT_FALSE(pool.bpage_state(i)->owner.has_value()) << i;
    }
}

TEST(BufferPool, allocate__whole_pages_stay_in_a_compact_footprint) {
    BufferPool pool = make_pool(1);
    // Two messages of 4 pages alternate for many rounds: the same 8 low
    // pages serve them all, however often they are recycled.
    std::set<std::uint32_t> pages_seen;
    BufferAllocation held = must_allocate(pool, 4 * kib64, 0, at_us(0));
    for (int round = 0; round < 100; ++round) {
        const BufferAllocation next = must_allocate(pool, 4 * kib64, 0, at_us(round));
        for (std::uint32_t i = 0; i < next.num_bpages; ++i)
            pages_seen.insert(page_of(next.offsets[i]));
        release_all(pool, held);
        held = next;
    }
    EXPECT_EQ(pages_seen, (std::set<std::uint32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
    release_all(pool, held);
    EXPECT_EQ(pool.free_bpages(), 31u);
}

TEST(BufferPool, allocate__exact_multiple_of_64k_has_no_tail) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 2 * kib64, 0, at_us(0));
    EXPECT_EQ(a.num_bpages, 2u);
    EXPECT_FALSE(pool.owned_bpage(0).has_value());  // no tail, so no cached page
    EXPECT_EQ(pool.free_bpages(), 29u);
    EXPECT_EQ(pool.bytes_in_use(), 2u * kib64);
    EXPECT_EQ(a.offset_of(2 * kib64 - 1), 1u * kib64 + 65'535u);
}

TEST(BufferPool, allocate__largest_message_uses_sixteen_chunks) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 1'000'000, 0, at_us(0));
    ASSERT_EQ(a.num_bpages, 16u);  // 15 whole pages + a 16,960-byte tail
    for (std::uint32_t i = 0; i < 15; ++i) EXPECT_EQ(a.offsets[i], i * kib64);
    EXPECT_EQ(a.offsets[15], 15u * kib64);  // tail at the start of a fresh owned page
    EXPECT_EQ(pool.owned_bpage(0), 15u);
    EXPECT_EQ(a.offset_of(999'999), 15u * kib64 + 16'959u);
    EXPECT_EQ(pool.bytes_in_use(), 1'000'000u);
}

TEST(BufferPool, allocate__invalid_length_returns_nullopt) {
    BufferPool pool = make_pool(1);
    const Snapshot before = snapshot(pool);
    EXPECT_FALSE(pool.allocate(0, 0, at_us(0)).has_value());
    EXPECT_FALSE(pool.allocate(1'000'001, 0, at_us(0)).has_value());
    EXPECT_EQ(snapshot(pool), before);
}

TEST(BufferPool, allocate__core_out_of_range_aborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    BufferPool pool = make_pool(2);
    EXPECT_DEATH((void)pool.allocate(100, 2, at_us(0)), "");
}

// --- allocate: tails ---------------------------------------------------------

TEST(BufferPool, allocate__tails_pack_into_the_core_page) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 1'000, 0, at_us(0));
    const BufferAllocation b = must_allocate(pool, 2'000, 0, at_us(1));
    const BufferAllocation c = must_allocate(pool, 3'000, 0, at_us(2));
    ASSERT_EQ(a.num_bpages, 1u);
    ASSERT_EQ(b.num_bpages, 1u);
    ASSERT_EQ(c.num_bpages, 1u);
    EXPECT_EQ(a.offsets[0], 0u);  // page 0, carved in order
    EXPECT_EQ(b.offsets[0], 1'000u);
    EXPECT_EQ(c.offsets[0], 3'000u);
    EXPECT_EQ(pool.owned_bpage(0), 0u);
    EXPECT_EQ(pool.bpage_state(0)->references, 3u);
    EXPECT_EQ(pool.bpage_state(0)->owner, 0u);
    EXPECT_EQ(pool.free_bpages(), 30u);
    EXPECT_EQ(pool.bytes_in_use(), 6'000u);
    EXPECT_EQ(c.offset_of(2'999), 5'999u);
}

TEST(BufferPool, allocate__whole_pages_then_tail_in_core_page) {
    BufferPool pool = make_pool(1);
    const BufferAllocation small = must_allocate(pool, 5'000, 0, at_us(0));  // page 0 owned
    const BufferAllocation m = must_allocate(pool, 70'000, 0, at_us(1));
    ASSERT_EQ(m.num_bpages, 2u);
    EXPECT_EQ(m.offsets[0], 1u * kib64);  // lowest free page
    EXPECT_EQ(m.offsets[1], 5'000u);      // 4,464-byte tail after the first one, page 0
    EXPECT_EQ(m.offset_of(0), 1u * kib64);
    EXPECT_EQ(m.offset_of(65'535), 1u * kib64 + 65'535u);
    EXPECT_EQ(m.offset_of(65'536), 5'000u);
    EXPECT_EQ(m.offset_of(69'999), 5'000u + 4'463u);
    EXPECT_EQ(pool.bpage_state(0)->references, 2u);
    EXPECT_EQ(pool.bytes_in_use(), 75'000u);
    release_all(pool, small);
    release_all(pool, m);
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    EXPECT_EQ(pool.free_bpages(), 30u);  // page 0 stays cached by core 0
}

TEST(BufferPool, allocate__tail_restarts_page_when_only_owner_holds_it) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 40'000, 0, at_us(0));
    EXPECT_EQ(a.offsets[0], 0u);
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    EXPECT_EQ(pool.bpage_state(0)->references, 0u);
    EXPECT_EQ(pool.bpage_state(0)->owner, 0u);  // still cached
    EXPECT_EQ(pool.free_bpages(), 30u);

    // 40,000 + 40,000 > 65,536, but nothing else uses page 0: start over.
    const BufferAllocation b = must_allocate(pool, 40'000, 0, at_us(1));
    EXPECT_EQ(b.offsets[0], 0u);
    EXPECT_EQ(pool.bpage_reuses(), 1u);
    EXPECT_EQ(pool.owned_bpage(0), 0u);
    EXPECT_EQ(pool.free_bpages(), 30u);

    // A tail that still fits after the restart does not count as a reuse.
    const BufferAllocation c = must_allocate(pool, 25'536, 0, at_us(2));
    EXPECT_EQ(c.offsets[0], 40'000u);
    EXPECT_EQ(pool.bpage_reuses(), 1u);
    EXPECT_EQ(pool.bpage_state(0)->references, 2u);
}

TEST(BufferPool, allocate__tail_takes_new_page_when_messages_still_use_the_old_one) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 40'000, 0, at_us(0));
    const BufferAllocation b = must_allocate(pool, 40'000, 0, at_us(1));
    EXPECT_EQ(a.offsets[0], 0u);
    EXPECT_EQ(b.offsets[0], 1u * kib64);  // fresh page 1
    EXPECT_EQ(pool.bpage_reuses(), 0u);
    EXPECT_EQ(pool.owned_bpage(0), 1u);
    // Page 0 now belongs only to message a.
    EXPECT_FALSE(pool.bpage_state(0)->owner.has_value());
    EXPECT_EQ(pool.bpage_state(0)->references, 1u);
    EXPECT_EQ(pool.free_bpages(), 29u);

    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    EXPECT_EQ(pool.free_bpages(), 30u);  // page 0 is free again
    EXPECT_EQ(pool.bpage_state(0)->references, 0u);
    // Whole pages reuse it first.
    const BufferAllocation c = must_allocate(pool, kib64, 0, at_us(2));
    EXPECT_EQ(c.offsets[0], 0u);
}

TEST(BufferPool, allocate__each_core_carves_its_own_page) {
    BufferPool pool = make_pool(2);
    const BufferAllocation a = must_allocate(pool, 100, 0, at_us(0));
    const BufferAllocation b = must_allocate(pool, 100, 1, at_us(0));
    const BufferAllocation c = must_allocate(pool, 100, 0, at_us(1));
    EXPECT_EQ(a.offsets[0], 0u);
    EXPECT_EQ(b.offsets[0], 1u * kib64);
    EXPECT_EQ(c.offsets[0], 100u);
    EXPECT_EQ(pool.owned_bpage(0), 0u);
    EXPECT_EQ(pool.owned_bpage(1), 1u);
}

// --- allocate: leases --------------------------------------------------------

TEST(BufferPool, allocate__other_core_cannot_take_page_within_lease) {
    BufferPool pool = make_pool(2);
    const BufferAllocation a = must_allocate(pool, 1'000, 0, at_us(0));
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    EXPECT_EQ(pool.bpage_state(0)->lease_expiry, at_us(0) + lease);

    // One nanosecond before expiry page 0 is still core 0's.
    const Instant just_before = at_us(0) + lease - 1ns;
    const BufferAllocation b = must_allocate(pool, kib64, 1, just_before);
    EXPECT_EQ(b.offsets[0], 1u * kib64);
    const BufferAllocation c = must_allocate(pool, 500, 1, just_before);
    EXPECT_EQ(c.offsets[0], 2u * kib64);
    EXPECT_EQ(pool.owned_bpage(0), 0u);
    EXPECT_EQ(pool.bpage_state(0)->owner, 0u);
}

TEST(BufferPool, allocate__other_core_takes_page_after_lease_expires) {
    BufferPool pool = make_pool(2);
    const BufferAllocation a = must_allocate(pool, 1'000, 0, at_us(0));
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());

    const BufferAllocation b = must_allocate(pool, 500, 1, at_us(0) + lease);
    EXPECT_EQ(b.offsets[0], 0u);  // core 1 now carves page 0 from its start
    EXPECT_EQ(pool.owned_bpage(1), 0u);
    EXPECT_FALSE(pool.owned_bpage(0).has_value());
    EXPECT_EQ(pool.bpage_state(0)->owner, 1u);
    EXPECT_EQ(pool.bpage_state(0)->references, 1u);
    EXPECT_EQ(pool.free_bpages(), 32u - 1u);

    // Core 0 lost its page: its next tail goes to a fresh one.
    const BufferAllocation c = must_allocate(pool, 700, 0, at_us(0) + lease);
    EXPECT_EQ(c.offsets[0], 1u * kib64);
    EXPECT_EQ(pool.owned_bpage(0), 1u);
}

TEST(BufferPool, allocate__expired_page_taken_for_whole_chunks_too) {
    BufferPool pool = make_pool(2);
    const BufferAllocation a = must_allocate(pool, 1'000, 0, at_us(0));
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    const BufferAllocation b = must_allocate(pool, 2 * kib64, 1, at_us(20'000));
    EXPECT_EQ(b.offsets[0], 0u);  // lowest index wins, taken from idle core 0
    EXPECT_EQ(b.offsets[1], 1u * kib64);
    EXPECT_FALSE(pool.owned_bpage(0).has_value());
    EXPECT_FALSE(pool.bpage_state(0)->owner.has_value());
    EXPECT_EQ(pool.bpage_state(0)->references, 1u);
}

TEST(BufferPool, allocate__page_in_use_never_taken_even_after_lease) {
    BufferPool pool = make_pool(2);
    const BufferAllocation a = must_allocate(pool, 1'000, 0, at_us(0));  // not released
    const BufferAllocation b = must_allocate(pool, 500, 1, at_us(1'000'000));
    EXPECT_EQ(b.offsets[0], 1u * kib64);
    EXPECT_EQ(pool.owned_bpage(0), 0u);
    EXPECT_EQ(pool.bpage_state(0)->references, 1u);
    release_all(pool, a);
}

TEST(BufferPool, allocate__each_tail_renews_the_lease) {
    BufferPool pool = make_pool(2);
    const BufferAllocation a = must_allocate(pool, 1'000, 0, at_us(0));
    const BufferAllocation b = must_allocate(pool, 1'000, 0, at_us(9'000));
    release_all(pool, a);
    release_all(pool, b);
    EXPECT_EQ(pool.bpage_state(0)->lease_expiry, at_us(9'000) + lease);
    // 10 ms after the first tail but not after the second: still core 0's.
    const BufferAllocation c = must_allocate(pool, 1'000, 1, at_us(10'000));
    EXPECT_EQ(c.offsets[0], 1u * kib64);
    EXPECT_EQ(pool.owned_bpage(0), 0u);
}

TEST(BufferPool, allocate__expired_cached_page_counts_as_space) {
    BufferPool pool = make_pool(2);  // 32 pages
    // Core 0 caches page 0, then goes idle.
    const BufferAllocation cached = must_allocate(pool, 1'000, 0, at_us(0));
    ASSERT_TRUE(pool.release(cached.offsets[0]).has_value());
    const BufferAllocation fill = must_allocate(pool, 15 * kib64, 1, at_us(0));
    const BufferAllocation fill2 = must_allocate(pool, 15 * kib64, 1, at_us(0));
    const BufferAllocation fill3 = must_allocate(pool, 1 * kib64, 1, at_us(0));
    EXPECT_EQ(pool.free_bpages(), 0u);
    EXPECT_FALSE(pool.can_allocate(kib64));

    // Within the lease there is no room...
    EXPECT_FALSE(pool.can_allocate(kib64, 1, at_us(1)));
    const Snapshot before = snapshot(pool);
    EXPECT_FALSE(pool.allocate(kib64, 1, at_us(1)).has_value());
    EXPECT_EQ(snapshot(pool), before);
    // Core 0 keeps its own cached page for tails, never for whole chunks.
    EXPECT_FALSE(pool.can_allocate(kib64, 0, at_us(0) + lease));
    // After the lease, core 1 takes core 0's idle page.
    EXPECT_TRUE(pool.can_allocate(kib64, 1, at_us(0) + lease));
    const BufferAllocation d = must_allocate(pool, kib64, 1, at_us(0) + lease);
    EXPECT_EQ(d.offsets[0], 0u);
    EXPECT_FALSE(pool.owned_bpage(0).has_value());
    release_all(pool, fill);
    release_all(pool, fill2);
    release_all(pool, fill3);
    release_all(pool, d);
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    EXPECT_EQ(pool.free_bpages(), 32u);
}

// --- allocate: exhaustion ----------------------------------------------------

TEST(BufferPool, allocate__exhaustion_returns_nullopt_and_changes_nothing) {
    BufferPool pool = make_pool(1);  // 31 pages
    // Whole pages 0..14, tail in page 15.
    const BufferAllocation big1 = must_allocate(pool, 1'000'000, 0, at_us(0));
    // 16,960 + 60,000 bytes do not fit page 15, which big1's tail still uses:
    // a fresh page 16.
    const BufferAllocation tail = must_allocate(pool, 60'000, 0, at_us(1));
    EXPECT_EQ(tail.offsets[0], 16u * kib64);
    EXPECT_EQ(pool.owned_bpage(0), 16u);
    EXPECT_FALSE(pool.bpage_state(15)->owner.has_value());
    const BufferAllocation big2 = must_allocate(pool, 14 * kib64, 0, at_us(2));  // 17..30
    ASSERT_EQ(pool.free_bpages(), 0u);

    const Snapshot before = snapshot(pool);
    // Needs one whole page.
    EXPECT_FALSE(pool.can_allocate(kib64));
    EXPECT_FALSE(pool.allocate(kib64, 0, at_us(3)).has_value());
    EXPECT_EQ(snapshot(pool), before);
    // A tail that does not fit page 16 while a message still uses it: the
    // core must keep its page (no hand-over before the failure is known).
    EXPECT_FALSE(pool.allocate(10'000, 0, at_us(3)).has_value());
    EXPECT_EQ(snapshot(pool), before);
    EXPECT_EQ(pool.owned_bpage(0), 16u);
    // Whole page + a tail that would fit: the whole page is missing, so the
    // tail is not carved either.
    EXPECT_FALSE(pool.allocate(kib64 + 100, 0, at_us(3)).has_value());
    EXPECT_EQ(snapshot(pool), before);
    // A tail that fits the cached page needs no free page at all.
    EXPECT_FALSE(pool.can_allocate(1'000));
    EXPECT_TRUE(pool.can_allocate(1'000, 0, at_us(3)));
    const BufferAllocation small = must_allocate(pool, 1'000, 0, at_us(3));
    EXPECT_EQ(small.offsets[0], 16u * kib64 + 60'000u);

    // Space comes back as messages are returned.
    release_all(pool, big2);
    EXPECT_EQ(pool.free_bpages(), 14u);
    EXPECT_TRUE(pool.can_allocate(14 * kib64));
    EXPECT_FALSE(pool.can_allocate(14 * kib64 + 1));
    // 61,000 + 5,000 bytes do not fit page 16 either.
    const BufferAllocation again = must_allocate(pool, 13 * kib64 + 5'000, 0, at_us(4));
    EXPECT_EQ(again.num_bpages, 14u);
    EXPECT_EQ(again.offsets[0], 17u * kib64);
    EXPECT_EQ(again.offsets[13], 30u * kib64);  // tail in a fresh page
    EXPECT_EQ(pool.owned_bpage(0), 30u);
    EXPECT_FALSE(pool.bpage_state(16)->owner.has_value());  // left to its messages
    release_all(pool, big1);
    release_all(pool, tail);
    release_all(pool, small);
    release_all(pool, again);
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    EXPECT_EQ(pool.free_bpages(), 30u);  // all but core 0's page 30
}

// --- release -----------------------------------------------------------------

TEST(BufferPool, release__offset_outside_region_rejected) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 100, 0, at_us(0));
    const Snapshot before = snapshot(pool);
    for (std::uint32_t offset : {31u * kib64, 31u * kib64 + 5u, 0xFFFF'FFFFu}) {
        auto r = pool.release(offset);
        ASSERT_FALSE(r.has_value()) << offset;
        EXPECT_EQ(r.error(), EINVAL);
    }
    EXPECT_EQ(snapshot(pool), before);
    release_all(pool, a);
}

TEST(BufferPool, release__free_page_rejected) {
    BufferPool pool = make_pool(1);
    auto never_used = pool.release(5 * kib64);
    ASSERT_FALSE(never_used.has_value());
    EXPECT_EQ(never_used.error(), EINVAL);

    const BufferAllocation a = must_allocate(pool, kib64, 0, at_us(0));
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    const Snapshot before = snapshot(pool);
    auto twice = pool.release(a.offsets[0]);
    ASSERT_FALSE(twice.has_value());
    EXPECT_EQ(twice.error(), EINVAL);
    EXPECT_EQ(snapshot(pool), before);
    EXPECT_EQ(pool.free_bpages(), 31u);
}

TEST(BufferPool, release__page_only_its_owner_holds_rejected) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 300, 0, at_us(0));
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    const Snapshot before = snapshot(pool);
    auto twice = pool.release(a.offsets[0]);
    ASSERT_FALSE(twice.has_value());
    EXPECT_EQ(twice.error(), EINVAL);
    EXPECT_EQ(snapshot(pool), before);
    EXPECT_EQ(pool.owned_bpage(0), 0u);  // the owner's hold survives
}

TEST(BufferPool, release__same_tail_twice_rejected_while_page_in_use) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 300, 0, at_us(0));
    const BufferAllocation b = must_allocate(pool, 400, 0, at_us(0));
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    const Snapshot before = snapshot(pool);
    auto twice = pool.release(a.offsets[0]);
    ASSERT_FALSE(twice.has_value());
    EXPECT_EQ(twice.error(), EINVAL);
    EXPECT_EQ(snapshot(pool), before);
    EXPECT_EQ(pool.bpage_state(0)->references, 1u);  // b's reference is intact
    release_all(pool, b);
    EXPECT_EQ(pool.bytes_in_use(), 0u);
}

TEST(BufferPool, release__any_order_across_messages) {
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 2 * kib64 + 10, 0, at_us(0));  // 0, 1, tail 2
    const BufferAllocation b = must_allocate(pool, kib64 + 20, 0, at_us(0));      // 3, tail 2
    EXPECT_EQ(pool.bytes_in_use(), 3u * kib64 + 30u);
    ASSERT_TRUE(pool.release(b.offsets[1]).has_value());
    EXPECT_EQ(pool.bytes_in_use(), 3u * kib64 + 10u);
    ASSERT_TRUE(pool.release(a.offsets[0]).has_value());
    ASSERT_TRUE(pool.release(b.offsets[0]).has_value());
    EXPECT_EQ(pool.bytes_in_use(), kib64 + 10u);
    ASSERT_TRUE(pool.release(a.offsets[2]).has_value());
    ASSERT_TRUE(pool.release(a.offsets[1]).has_value());
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    EXPECT_EQ(pool.free_bpages(), 30u);
}

TEST(BufferPool, release__inexact_offset_in_page_accepted) {
    // Linux Homa only looks at offset >> 16; so does the pool.
    BufferPool pool = make_pool(1);
    const BufferAllocation a = must_allocate(pool, 300, 0, at_us(0));
    const BufferAllocation b = must_allocate(pool, 400, 0, at_us(0));
    ASSERT_TRUE(pool.release(a.offsets[0] + 7).has_value());
    EXPECT_EQ(pool.bpage_state(0)->references, 1u);
    EXPECT_EQ(pool.bytes_in_use(), 700u);  // a's bytes are settled when the page empties
    ASSERT_TRUE(pool.release(b.offsets[0]).has_value());
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    const BufferAllocation w = must_allocate(pool, kib64, 0, at_us(0));
    ASSERT_TRUE(pool.release(w.offsets[0] + 12'345).has_value());
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    EXPECT_EQ(pool.free_bpages(), 30u);
}

// --- randomized model check --------------------------------------------------

// Thousands of allocations and returns of random lengths on two cores, in
// phases that fill the pool, drain it and leave one core idle so its lease
// runs out. A model owns every byte of the region: each live message's
// bytes must be unowned when it is allocated and still its own when it is
// returned. Reference counts, ownership, free pages and bytes_in_use are
// checked against the model after every step.
TEST(BufferPool, allocate__random_operations_match_model) {
    constexpr std::uint32_t cores = 2;
    constexpr Duration stress_lease = 20us;
    BufferPool pool = make_pool(cores, 1'000, stress_lease);  // 32 pages
    const std::uint32_t total = pool.total_bpages();
    ASSERT_EQ(total, 32u);

    std::mt19937_64 rng(0x5EED'B0FF'E55A'2026);
    auto uniform = [&](std::uint64_t lo, std::uint64_t hi) {
        return std::uniform_int_distribution<std::uint64_t>{lo, hi}(rng);
    };
    auto random_length = [&]() -> std::uint32_t {
        const auto kind = uniform(0, 99);
        if (kind < 45) return static_cast<std::uint32_t>(uniform(1, 20'000));
        if (kind < 70) return static_cast<std::uint32_t>(uniform(20'001, 200'000));
        if (kind < 85) return static_cast<std::uint32_t>(uniform(1, 4)) * kib64;
        if (kind < 88) return static_cast<std::uint32_t>(uniform(1, 3)) * kib64 - 1;
        return static_cast<std::uint32_t>(uniform(200'001, 1'000'000));
    };

    struct Live {
        std::uint32_t id = 0;
        std::uint32_t length = 0;
        BufferAllocation buffers;
        std::vector<std::uint32_t> unreturned;  // chunk indices
    };
    std::vector<std::uint32_t> region(std::size_t{total} * kib64, 0);  // owner id per byte
    std::vector<std::uint32_t> model_refs(total, 0);
    std::vector<Live> live;
    std::uint64_t model_bytes = 0;
    std::uint32_t next_id = 1;
    Instant now = at_us(1);

    std::uint64_t allocations = 0, failures = 0, chunk_returns = 0, takeovers = 0;
    std::uint64_t bad_returns = 0;

    auto chunk_bytes = [](const Live& m, std::uint32_t chunk) {
        const std::uint32_t start = chunk * kib64;
        return std::min(m.length - start, kib64);
    };
    auto check_invariants = [&](int step) {
        ASSERT_EQ(pool.bytes_in_use(), model_bytes) << "step " << step;
        std::uint32_t free = 0, used = 0, owned = 0;
        for (std::uint32_t p = 0; p < total; ++p) {
            const BpageState s = pool.bpage_state(p).value();
            ASSERT_EQ(s.references, model_refs[p]) << "step " << step << " page " << p;
            if (s.owner.has_value()) {
                ++owned;
                ASSERT_LT(*s.owner, cores);
                ASSERT_EQ(pool.owned_bpage(*s.owner), p) << "step " << step;
            }
            if (s.references == 0 && !s.owner.has_value()) {
                ++free;
            } else {
                ++used;
            }
        }
        ASSERT_EQ(pool.free_bpages(), free) << "step " << step;
        ASSERT_EQ(pool.free_bpages() + used, total) << "step " << step;
        for (std::uint32_t c = 0; c < cores; ++c) {
            if (auto p = pool.owned_bpage(c)) {
                ASSERT_EQ(pool.bpage_state(*p)->owner, c);
            }
        }
        ASSERT_LE(owned, cores);
    };

    constexpr int steps = 12'000;
    for (int step = 0; step < steps; ++step) {
        now += std::chrono::nanoseconds(uniform(0, 3'000));
        const int phase = (step / 500) % 4;
        // Phase 0 fills, 1 drains, 2 fills from core 0 only (core 1 idles
        // past its lease), 3 mixes.
        const std::uint64_t alloc_percent = phase == 1 ? 15 : phase == 3 ? 35 : 55;
        const bool do_alloc = live.empty() || uniform(1, 100) <= alloc_percent;

        if (do_alloc) {
            const std::uint32_t length = random_length();
            const auto core = phase == 2 ? 0u : static_cast<std::uint32_t>(uniform(0, cores - 1));
            const bool exact = pool.can_allocate(length, core, now);
            const bool conservative = pool.can_allocate(length);
            std::vector<std::optional<std::uint32_t>> owned_before;
            for (std::uint32_t c = 0; c < cores; ++c) owned_before.push_back(pool.owned_bpage(c));
            const Snapshot before = snapshot(pool);
            auto got = pool.allocate(length, core, now);
            ASSERT_EQ(got.has_value(), exact) << "step " << step;
            if (conservative) {
                ASSERT_TRUE(got.has_value()) << "step " << step;
            }
            if (!got.has_value()) {
                ++failures;
                ASSERT_EQ(snapshot(pool), before) << "step " << step;
                continue;
            }
            ++allocations;
            Live m{next_id++, length, *got, {}};
            const std::uint32_t whole = length >> bpage_shift;
            const std::uint32_t tail = length & (kib64 - 1);
            ASSERT_EQ(m.buffers.num_bpages, whole + (tail != 0 ? 1u : 0u));
            std::set<std::uint32_t> pages;
            for (std::uint32_t i = 0; i < m.buffers.num_bpages; ++i) {
                const std::uint32_t off = m.buffers.offsets[i];
                const std::uint32_t size = chunk_bytes(m, i);
                if (i < whole) {
                    ASSERT_EQ(off % kib64, 0u) << "step " << step;
                }
                ASSERT_LE((off % kib64) + size, kib64) << "chunk crosses a page, step " << step;
                ASSERT_LT(page_of(off), total);
                ASSERT_TRUE(pages.insert(page_of(off)).second) << "page used twice, step " << step;
                for (std::uint32_t c = 0; c < cores; ++c) {
                    if (c != core && owned_before[c] == page_of(off)) ++takeovers;
                }
                ++model_refs[page_of(off)];
                m.unreturned.push_back(i);
            }
            // Byte-for-byte: every message byte lands on an unowned region byte.
            for (std::uint32_t x = 0; x < length;) {
                const std::uint32_t run = std::min(length - x, kib64 - (x % kib64));
                const std::uint64_t base = m.buffers.offset_of(x);
                ASSERT_EQ(m.buffers.offset_of(x + run - 1), base + run - 1);
                const auto first = region.begin() + static_cast<std::ptrdiff_t>(base);
                const auto last = first + run;
                ASSERT_TRUE(std::all_of(first, last, [](std::uint32_t o) { return o == 0; }))
                    << "overlap at region offset " << base << ", step " << step;
                std::fill(first, last, m.id);
                x += run;
            }
            model_bytes += length;
            live.push_back(std::move(m));
        } else {
            if (uniform(1, 40) == 1) {
                // A return the application must not make: a page nobody
                // references, or past the end.
                const auto offset =
                    static_cast<std::uint32_t>(uniform(0, std::uint64_t{total + 2} * kib64));
                const std::uint32_t p = page_of(offset);
                if (p >= total || model_refs[p] == 0) {
                    const Snapshot before = snapshot(pool);
                    auto r = pool.release(offset);
                    ASSERT_FALSE(r.has_value()) << "step " << step;
                    ASSERT_EQ(r.error(), EINVAL);
                    ASSERT_EQ(snapshot(pool), before);
                    ++bad_returns;
                }
            }
            const std::size_t which = uniform(0, live.size() - 1);
            Live& m = live[which];
            const std::size_t pick = uniform(0, m.unreturned.size() - 1);
            const std::uint32_t chunk = m.unreturned[pick];
            m.unreturned.erase(m.unreturned.begin() + static_cast<std::ptrdiff_t>(pick));
            const std::uint32_t off = m.buffers.offsets[chunk];
            const std::uint32_t size = chunk_bytes(m, chunk);
            const auto first = region.begin() + off;
            ASSERT_TRUE(
                std::all_of(first, first + size, [&](std::uint32_t o) { return o == m.id; }))
                << "message " << m.id << " overwritten, step " << step;
            std::fill(first, first + size, 0u);
            ASSERT_TRUE(pool.release(off).has_value()) << "step " << step;
            --model_refs[page_of(off)];
            model_bytes -= size;
            ++chunk_returns;
            if (m.unreturned.empty()) {
                live[which] = std::move(live.back());
                live.pop_back();
            }
        }
        check_invariants(step);
        if (::testing::Test::HasFatalFailure()) return;
    }

    // Return everything that is left.
    for (Live& m : live) {
        for (std::uint32_t chunk : m.unreturned) {
            ASSERT_TRUE(pool.release(m.buffers.offsets[chunk]).has_value());
            --model_refs[page_of(m.buffers.offsets[chunk])];
        }
    }
    live.clear();
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    std::uint32_t cached = 0;
    for (std::uint32_t c = 0; c < cores; ++c) cached += pool.owned_bpage(c).has_value() ? 1u : 0u;
    EXPECT_EQ(pool.free_bpages() + cached, total);
    for (std::uint32_t p = 0; p < total; ++p) EXPECT_EQ(pool.bpage_state(p)->references, 0u);

    // The run exercised every path it is meant to.
    EXPECT_GT(allocations, 2'000u);
    EXPECT_GT(failures, 100u);
    EXPECT_GT(chunk_returns, 4'000u);
    EXPECT_GT(pool.bpage_reuses(), 10u);
    EXPECT_GT(takeovers, 0u);
    EXPECT_GT(bad_returns, 0u);
}

}  // namespace
