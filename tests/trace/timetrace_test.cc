// Timetrace: recording, formatting, wraparound, merging over threads, and
// consistent dumps while threads keep recording.
#include "trace/timetrace.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <cinttypes>
#include <cstdio>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace uhoma::trace {
namespace {

// Every test starts with an enabled, unfrozen, empty trace and leaves it off.
class Timetrace : public ::testing::Test {
protected:
    void SetUp() override {
        set_enabled(true);
        unfreeze();
        clear();
    }
    void TearDown() override {
        set_enabled(false);
        unfreeze();
        clear();
    }
};

std::vector<std::string> messages() {
    std::vector<std::string> out;
    for (const Event& e : events()) out.push_back(e.message);
    return out;
}

std::string format(const char* f, unsigned mask, std::uint64_t a0 = 0, std::uint64_t a1 = 0,
                   std::uint64_t a2 = 0, std::uint64_t a3 = 0) {
    const std::uint64_t args[max_args] = {a0, a1, a2, a3};
    return format_event(f, mask, args);
}

TEST_F(Timetrace, record__events_in_time_order) {
    record(std::uint64_t{3000}, "third %d", 3);
    record(std::uint64_t{1000}, "first %d", 1);
    record(std::uint64_t{2000}, "second %d", 2);
    const auto all = events();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].message, "first 1");
    EXPECT_EQ(all[0].time_ns, 1000u);
    EXPECT_EQ(all[1].message, "second 2");
    EXPECT_EQ(all[2].message, "third 3");
    EXPECT_EQ(all[0].thread, all[2].thread);
}

TEST_F(Timetrace, record__accepts_chrono_times) {
    record(std::chrono::microseconds(5), "duration");
    record(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(7000)), "time point");
    const auto all = events();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].time_ns, 5000u);
    EXPECT_EQ(all[1].time_ns, 7000u);
}

TEST_F(Timetrace, record__disabled_records_nothing) {
    set_enabled(false);
    record(std::uint64_t{1}, "invisible");
    EXPECT_FALSE(recording());
    EXPECT_TRUE(events().empty());
    set_enabled(true);
    record(std::uint64_t{2}, "visible");
    EXPECT_EQ(messages(), std::vector<std::string>{"visible"});
}

TEST_F(Timetrace, macro__does_not_evaluate_arguments_when_off) {
    int evaluated = 0;
    auto arg = [&] { return ++evaluated; };
    set_enabled(false);
    UHOMA_TT(std::uint64_t{1}, "value %d", arg());
    EXPECT_EQ(evaluated, 0);
    set_enabled(true);
    UHOMA_TT(std::uint64_t{2}, "value %d", arg());
    EXPECT_EQ(evaluated, 1);
    EXPECT_EQ(messages(), std::vector<std::string>{"value 1"});
}

TEST_F(Timetrace, freeze__stops_recording_and_keeps_events) {
    record(std::uint64_t{1}, "before");
    freeze();
    EXPECT_TRUE(frozen());
    EXPECT_FALSE(recording());
    record(std::uint64_t{2}, "while frozen");
    EXPECT_EQ(messages(), std::vector<std::string>{"before"});
    unfreeze();
    record(std::uint64_t{3}, "after");
    EXPECT_EQ(messages(), (std::vector<std::string>{"before", "after"}));
}

TEST_F(Timetrace, clear__forgets_events) {
    record(std::uint64_t{1}, "old");
    clear();
    EXPECT_TRUE(events().empty());
    EXPECT_EQ(dump(), "");
    record(std::uint64_t{2}, "new");
    EXPECT_EQ(messages(), std::vector<std::string>{"new"});
}

TEST_F(Timetrace, record__wraparound_keeps_the_newest) {
    const std::size_t total = ring_entries + 100;
    for (std::size_t i = 0; i < total; ++i) record(std::uint64_t{i}, "event %u", i);
    const auto all = events();
    ASSERT_EQ(all.size(), ring_entries);
    EXPECT_EQ(all.front().message, "event 100");
    EXPECT_EQ(all.front().time_ns, 100u);
    EXPECT_EQ(all.back().message, "event " + std::to_string(total - 1));
    for (std::size_t i = 1; i < all.size(); ++i) ASSERT_EQ(all[i].time_ns, all[i - 1].time_ns + 1);
}

TEST_F(Timetrace, format_event__integers) {
    EXPECT_EQ(format("%d %i %u", 0, std::uint64_t(-5), std::uint64_t(-7), 42), "-5 -7 42");
    EXPECT_EQ(format("%x %X %o", 0, 255, 255, 8), "ff FF 10");
    EXPECT_EQ(format("%llu %lu %ld", 0, 18446744073709551615ull, 7, 9),
              "18446744073709551615 7 9");
    EXPECT_EQ(format("[%5u] [%-4d] [%04x] [%+d]", 0, 42, 7, 10, 3), "[   42] [7   ] [000a] [+3]");
    EXPECT_EQ(format("%c%c", 0, 'o', 'k'), "ok");
    EXPECT_EQ(format("100%% done", 0), "100% done");
    EXPECT_EQ(format("%p", 0, 0x1234), "0x1234");
}

TEST_F(Timetrace, format_event__strings_only_from_string_arguments) {
    const char* name = "GRANT";
    const auto pointer = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(name));
    EXPECT_EQ(format("rx %s id %u", 0b01, pointer, 7), "rx GRANT id 7");
    EXPECT_EQ(format("[%-7s] [%.2s]", 0b11, pointer, pointer), "[GRANT  ] [GR]");
    // %s with an integer argument, or a null string, never dereferences.
    EXPECT_EQ(format("rx %s id %u", 0, 12345, 7), "rx ? id 7");
    EXPECT_EQ(format("rx %s", 0b1, 0), "rx ?");
}

TEST_F(Timetrace, format_event__broken_formats_are_harmless) {
    EXPECT_EQ(format("%d %d %d %d %d", 0, 1, 2, 3, 4), "1 2 3 4 ?");
    EXPECT_EQ(format("odd %q and %d", 0, 5), "odd %q and 5");
    EXPECT_EQ(format("trailing %", 0), "trailing %");
    EXPECT_EQ(format("%*d", 0, 5), "%*d");
    EXPECT_EQ(format("%99999999d|%.5000s", 0, 5), "%99999999d|%.5000s");  // > 3 digits
    EXPECT_EQ(format("%999d", 0, 5).size(), 127u);  // within the per-conversion buffer
}

TEST_F(Timetrace, record__string_arguments) {
    static const char* const names[] = {"DATA", "GRANT"};
    record(std::uint64_t{1}, "rx %s id %llu", names[1], std::uint64_t{99});
    record(std::uint64_t{2}, "%s %s", "literal", true ? "yes" : "no");
    EXPECT_EQ(messages(), (std::vector<std::string>{"rx GRANT id 99", "literal yes"}));
}

TEST_F(Timetrace, record__signed_and_enum_arguments) {
    enum class Kind : std::uint8_t { a = 3 };
    record(std::uint64_t{1}, "%d %d %u %d", -1, std::int64_t{-2}, Kind::a, false);
    EXPECT_EQ(messages(), std::vector<std::string>{"-1 -2 3 0"});
}

TEST_F(Timetrace, dump__homa_line_format) {
    record(std::uint64_t{1'000'000}, "start %u", 1);
    record(std::uint64_t{1'002'500}, "next %u", 2);
    record(std::uint64_t{1'010'000}, "last");
    const std::uint32_t c = events().front().thread;
    char ring[16];
    std::snprintf(ring, sizeof(ring), "[C%02u]", c);
    const std::string expected = std::string("    0.000 us (+   0.000 us) ") + ring + " start 1\n" +
                                 "    2.500 us (+   2.500 us) " + ring + " next 2\n" +
                                 "   10.000 us (+   7.500 us) " + ring + " last\n";
    EXPECT_EQ(dump(), expected);
}

TEST_F(Timetrace, events__merges_threads_by_time) {
    // Two threads record alternating times; each records its own number.
    // b and c stay alive until both have recorded, so they hold different rings.
    std::latch both(2);
    auto run = [](std::uint64_t first, std::latch* done) {
        for (std::uint64_t t = first; t < 200; t += 2) record(t, "thread %llu t %llu", first, t);
        if (done != nullptr) done->arrive_and_wait();
    };
    std::thread a(run, 0, nullptr);
    a.join();
    std::thread b(run, 1, &both);  // may reuse a's ring
    std::thread c(run, 0, &both);
    b.join();
    c.join();
    const auto all = events();
    ASSERT_EQ(all.size(), 300u);
    for (std::size_t i = 1; i < all.size(); ++i) ASSERT_LE(all[i - 1].time_ns, all[i].time_ns);
    // Equal times from different threads: ordered by ring, then record order.
    for (std::size_t i = 1; i < all.size(); ++i) {
        if (all[i - 1].time_ns == all[i].time_ns) {
            ASSERT_LE(all[i - 1].thread, all[i].thread);
        }
    }
    // b's events (odd times) and c's (the second "thread 0" series) come
    // from different rings.
    std::uint32_t b_ring = 0;
    std::vector<std::uint32_t> zero_rings;
    for (const Event& e : all) {
        if (e.message.rfind("thread 1 ", 0) == 0) b_ring = e.thread;
        if (e.message.rfind("thread 0 ", 0) == 0) zero_rings.push_back(e.thread);
    }
    ASSERT_EQ(zero_rings.size(), 200u);
    EXPECT_NE(b_ring, zero_rings.back());
}

TEST_F(Timetrace, rings__reused_after_thread_exit) {
    std::thread([] { record(std::uint64_t{1}, "first thread"); }).join();
    const std::size_t rings = ring_count();
    for (int i = 0; i < 5; ++i) {
        std::thread([i] { record(std::uint64_t{2} + static_cast<std::uint64_t>(i), "next %d", i); }).join();
    }
    EXPECT_EQ(ring_count(), rings);
    EXPECT_EQ(events().size(), 6u);
}

TEST_F(Timetrace, events__consistent_while_recording) {
    // A writer records n, n * 3 + 7 for increasing n while the reader takes
    // snapshots: every event seen must be whole, and in order.
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> written{0};
    std::thread writer([&] {
        for (std::uint64_t n = 0; !stop.load(std::memory_order_relaxed); ++n) {
            record(n, "n %llu check %llu", n, n * 3 + 7);
            written.store(n + 1, std::memory_order_relaxed);
        }
    });
    std::size_t checked = 0;
    // At least 30 snapshots, taken while the writer laps the ring 3 times.
    while (written.load() == 0) std::this_thread::yield();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (int round = 0; round < 30 || written.load() < 3 * ring_entries; ++round) {
        if (std::chrono::steady_clock::now() > give_up) break;
        std::uint64_t previous = 0;
        bool first = true;
        for (const Event& e : events()) {
            unsigned long long n = 0;
            unsigned long long check = 0;
            ASSERT_EQ(std::sscanf(e.message.c_str(), "n %llu check %llu", &n, &check), 2)
                << e.message;
            ASSERT_EQ(check, n * 3 + 7) << "torn event: " << e.message;
            ASSERT_EQ(e.time_ns, n);
            if (!first) {
                ASSERT_EQ(n, previous + 1) << "gap or reordering";
            }
            previous = n;
            first = false;
            ++checked;
        }
    }
    stop = true;
    writer.join();
    EXPECT_GT(checked, 0u);
}

TEST_F(Timetrace, enable_from_environment__reads_uhoma_timetrace) {
    set_enabled(false);
    ::setenv("UHOMA_TIMETRACE", "1", 1);
    EXPECT_TRUE(enable_from_environment());
    ::setenv("UHOMA_TIMETRACE", "junk", 1);
    EXPECT_TRUE(enable_from_environment());  // unchanged
    ::setenv("UHOMA_TIMETRACE", "off", 1);
    EXPECT_FALSE(enable_from_environment());
    ::unsetenv("UHOMA_TIMETRACE");
    EXPECT_FALSE(enable_from_environment());
}

}  // namespace
}  // namespace uhoma::trace
