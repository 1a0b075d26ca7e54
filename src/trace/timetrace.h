// Timetrace: a cheap in-memory event trace, after Linux Homa's timetrace.
//
// Design notes
// ------------
// Why. Counters (engine/metrics.h) say how often something happened; a
// timetrace says when, in what order, and on which thread, at a cost low
// enough to leave the record points in the fast path. It is the tool Homa's
// authors used to find most of their latency problems (tt_record, ttsum.py,
// tthoma.py), and uhoma keeps its shape so the same habits and scripts work.
//
// What an event is. A time in nanoseconds, a pointer to a format string
// literal and up to four integer arguments (any integer, enum, bool, or a
// `const char*` with static storage duration, e.g. wire::packet_type_name()).
// Nothing is formatted when recording: formatting happens when the trace is
// dumped. Format strings and string arguments are stored as pointers, so
// they must outlive the process's use of the trace: string literals and
// static name tables only, never a std::string's c_str().
//
// Who supplies the time. The caller, always. The engine never reads a clock
// (DEVELOPERS.md), so its record points pass the engine's `now` (steady_clock
// nanoseconds in the runtime, a virtual clock in tests); the runtime passes
// steady_clock. record() accepts any std::chrono time_point or duration, or a
// plain nanosecond count. Events of one process should use one clock.
//
// Cost. Off (the default), a record point is one relaxed atomic load and a
// predictable branch, and its arguments are not evaluated (UHOMA_TT is a
// macro for that reason). Compiled out (CMake UHOMA_TIMETRACE_COMPILED=OFF),
// it is nothing at all. On, it is one call: find the calling thread's ring
// (a thread_local pointer), store 7 words and two counters. No lock and no
// allocation, except once per thread for the first event, which takes a
// global lock to create or reuse a ring.
//
// Rings. One per thread, `ring_entries` events (16384, Homa's per-core
// size; ~0.9 MB, allocated only when a thread first records). The newest
// events overwrite the oldest. A ring whose thread has exited is reused by
// the next new thread, so short-lived threads cannot grow memory without
// bound; its old events keep their place in the dump under the same [C<n>]
// label until overwritten.
//
// Dumping while threads record. Each ring has two counters written only by
// its thread: `begun` (events whose slot write has started) and `done`
// (events completely written). The writer bumps `begun`, issues a release
// fence, writes the slot (relaxed atomics), then publishes `done` with a
// release store. A reader loads `done` (acquire), copies the slots of the
// last `ring_entries` events, issues an acquire fence and loads `begun`:
// any slot the writer started overwriting during the copy is then known
// (fence-to-fence synchronization) and dropped. A dump is therefore exact:
// every event it shows was recorded whole, in order, with no torn entries,
// even while the process keeps tracing. freeze() stops recording (Homa's
// tt_freeze) so the events leading up to a problem stay in the rings until
// someone dumps them; unfreeze() resumes.
//
// Output. One line per event, merged over threads by time:
//   "%9.3f us (+%8.3f us) [C%02u] message"
// time relative to the first event shown, gap to the previous line, ring
// number, formatted message: the user-space format of Homa's timetrace, which
// its analysis scripts (tthoma.py, ttsum.py) parse. Formats understand
// printf's d i u x X o c s p and %% with flags, width, precision and length
// modifiers (the length is ignored: every argument is 64 bits wide; signed
// arguments are sign-extended, so %d prints a recorded -1 as -1). A
// conversion without an argument, or %s with an integer argument, prints
// "?"; a broken format never reads memory it should not.
//
// Switching on. set_enabled(true), or enable_from_environment() with
// UHOMA_TIMETRACE=1 (the API layer calls it when a transport is created), or
// at run time through a process's control socket (`uhoma-metrics
// --trace-on PID`, see docs/observability.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#ifndef UHOMA_TIMETRACE_COMPILED
#define UHOMA_TIMETRACE_COMPILED 1
#endif

namespace uhoma::trace {

inline constexpr bool compiled = UHOMA_TIMETRACE_COMPILED != 0;
inline constexpr std::size_t ring_entries = std::size_t{1} << 14;
inline constexpr std::size_t max_args = 4;

namespace detail {
// Bit 0: enabled; bit 1: frozen. Recording needs exactly "enabled".
inline constexpr unsigned enabled_bit = 1;
inline constexpr unsigned frozen_bit = 2;
extern std::atomic<unsigned> state;

inline std::uint64_t to_ns(std::uint64_t ns) { return ns; }
template <typename Rep, typename Period>
std::uint64_t to_ns(std::chrono::duration<Rep, Period> d) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}
template <typename Clock, typename Duration>
std::uint64_t to_ns(std::chrono::time_point<Clock, Duration> t) {
    return to_ns(t.time_since_epoch());
}

// One argument as a 64-bit word; `is_string` marks a const char*.
struct Arg {
    std::uint64_t value = 0;
    bool is_string = false;
};
template <typename T>
Arg to_arg(T v) {
    if constexpr (std::is_same_v<std::decay_t<T>, const char*> ||
                  std::is_same_v<std::decay_t<T>, char*>) {
        return Arg{static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(v)), true};
    } else if constexpr (std::is_enum_v<T>) {
        return to_arg(static_cast<std::underlying_type_t<T>>(v));
    } else if constexpr (std::is_same_v<T, bool>) {
        return Arg{v ? 1u : 0u, false};
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        return Arg{static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), false};
    } else {
        static_assert(std::is_integral_v<T>, "timetrace arguments are integers or const char*");
        return Arg{static_cast<std::uint64_t>(v), false};
    }
}

// The out-of-line part of record(): the calling thread's ring.
void record_event(std::uint64_t time_ns, const char* format, unsigned string_mask,
                  std::uint64_t a0, std::uint64_t a1, std::uint64_t a2, std::uint64_t a3);
}  // namespace detail

// Whether record() stores events now (enabled and not frozen).
inline bool recording() {
    if constexpr (!compiled) return false;
    return detail::state.load(std::memory_order_relaxed) == detail::enabled_bit;
}

// Records one event if recording(). `format` must be a string literal (see
// design notes); at most 4 arguments.
template <typename Time, std::size_t N, typename... Args>
inline void record(Time time, const char (&format)[N], Args... args) {
    static_assert(sizeof...(Args) <= max_args, "a timetrace event has at most 4 arguments");
    if (!recording()) return;
    const detail::Arg a[max_args + 1] = {detail::to_arg(args)..., detail::Arg{}};
    unsigned mask = 0;
    for (std::size_t i = 0; i < sizeof...(Args); ++i) {
        if (a[i].is_string) mask |= 1u << i;
    }
    detail::record_event(detail::to_ns(time), format, mask, a[0].value, a[1].value, a[2].value,
                         a[3].value);
}

void set_enabled(bool on);
bool enabled();
// Stops recording, keeping what the rings hold; unfreeze() resumes.
void freeze();
void unfreeze();
bool frozen();
// UHOMA_TIMETRACE=1 (or on/yes/true) enables, 0 (off/no/false) disables;
// unset or anything else leaves the state alone. Returns enabled().
bool enable_from_environment();
// Forgets every event recorded so far (rings stay allocated). Events being
// recorded concurrently may or may not survive.
void clear();

struct Event {
    std::uint64_t time_ns = 0;
    std::uint32_t thread = 0;  // ring number, the [C<n>] of the dump
    std::string message;       // formatted
};
// Every event the rings hold, formatted, sorted by time (stable: events of
// one thread keep their order).
std::vector<Event> events();
// The dump: one line per event (see design notes); empty if no events.
std::string dump();
// printf-like formatting of one event as dump() does it, exposed for tests.
// `string_mask` bit i says argument i is a const char*.
std::string format_event(const char* format, unsigned string_mask,
                         const std::uint64_t (&args)[max_args]);
// Rings in use or reusable (for tests and the control socket's info).
std::size_t ring_count();

}  // namespace uhoma::trace

// A record point whose arguments are evaluated only while recording, and
// which compiles to nothing with UHOMA_TIMETRACE_COMPILED=0:
//   UHOMA_TT(now, "rx %s id %llu", wire::packet_type_name(type), id);
#define UHOMA_TT(time, ...)                                          \
    do {                                                             \
        if constexpr (::uhoma::trace::compiled) {                    \
            if (::uhoma::trace::recording()) {                       \
                ::uhoma::trace::record((time), __VA_ARGS__);         \
            }                                                        \
        }                                                            \
    } while (0)
