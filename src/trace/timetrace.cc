// Timetrace rings, the consistent snapshot and the formatter. Design notes
// are in timetrace.h.
#include "trace/timetrace.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace uhoma::trace {

namespace detail {
std::atomic<unsigned> state{0};
}  // namespace detail

namespace {

struct Slot {
    std::atomic<std::uint64_t> time{0};
    std::atomic<const char*> format{nullptr};
    std::atomic<std::uint64_t> args[max_args] = {};
    std::atomic<unsigned> string_mask{0};
};

struct Ring {
    explicit Ring(std::uint32_t n) : number(n) {}
    const std::uint32_t number;
    std::atomic<std::uint64_t> begun{0};  // written by the owning thread only
    std::atomic<std::uint64_t> done{0};   // written by the owning thread only
    std::atomic<std::uint64_t> floor{0};  // events below it were cleared
    bool in_use = true;                   // guarded by Registry::mutex
    std::array<Slot, ring_entries> slots;
};

// Rings are never freed: a dump may read a ring whose thread just exited,
// and threads may record during static destruction.
struct Registry {
    std::mutex mutex;
    std::vector<Ring*> rings;
};

Registry& registry() {
    static Registry* r = new Registry;
    return *r;
}

thread_local Ring* my_ring = nullptr;

// Gives the thread's ring back when the thread exits. Touched only when a
// ring is taken, so the record path reads a plain thread_local pointer.
struct RingReleaser {
    RingReleaser() = default;
    RingReleaser(const RingReleaser&) = delete;
    RingReleaser& operator=(const RingReleaser&) = delete;
    ~RingReleaser() {
        if (my_ring == nullptr) return;
        std::lock_guard lock(registry().mutex);
        my_ring->in_use = false;
        my_ring = nullptr;
    }
};

Ring* take_ring() {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    Ring* ring = nullptr;
    for (Ring* candidate : r.rings) {
        if (!candidate->in_use) {
            ring = candidate;
            break;
        }
    }
    if (ring == nullptr) {
        ring = new Ring(static_cast<std::uint32_t>(r.rings.size()));
        r.rings.push_back(ring);
    }
    ring->in_use = true;
    my_ring = ring;
    thread_local RingReleaser releaser;  // constructed here: its destructor runs at thread exit
    (void)releaser;
    return ring;
}

struct RawEvent {
    std::uint64_t time = 0;
    const char* format = nullptr;
    std::uint64_t args[max_args] = {};
    unsigned string_mask = 0;
    std::uint32_t thread = 0;
    std::uint64_t index = 0;
};

// Appends the complete events of `ring` to `out` (see design notes).
void snapshot(const Ring& ring, std::vector<RawEvent>& out) {
    const std::uint64_t done = ring.done.load(std::memory_order_acquire);
    std::uint64_t first = done > ring_entries ? done - ring_entries : 0;
    first = std::max(first, ring.floor.load(std::memory_order_relaxed));
    if (first >= done) return;
    const std::size_t start = out.size();
    for (std::uint64_t i = first; i < done; ++i) {
        const Slot& s = ring.slots[i % ring_entries];
        RawEvent e;
        e.time = s.time.load(std::memory_order_relaxed);
        e.format = s.format.load(std::memory_order_relaxed);
        for (std::size_t k = 0; k < max_args; ++k) e.args[k] = s.args[k].load(std::memory_order_relaxed);
        e.string_mask = s.string_mask.load(std::memory_order_relaxed);
        e.thread = ring.number;
        e.index = i;
        out.push_back(e);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::uint64_t begun = ring.begun.load(std::memory_order_relaxed);
    // Slots of events below begun - ring_entries may have been overwritten.
    const std::uint64_t valid_from = begun > ring_entries ? begun - ring_entries : 0;
    out.erase(std::remove_if(out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
                             [&](const RawEvent& e) { return e.index < valid_from; }),
              out.end());
}

std::vector<RawEvent> snapshot_all() {
    std::vector<RawEvent> raw;
    std::vector<Ring*> rings;
    {
        std::lock_guard lock(registry().mutex);
        rings = registry().rings;
    }
    for (const Ring* ring : rings) snapshot(*ring, raw);
    std::stable_sort(raw.begin(), raw.end(), [](const RawEvent& a, const RawEvent& b) {
        if (a.time != b.time) return a.time < b.time;
        if (a.thread != b.thread) return a.thread < b.thread;
        return a.index < b.index;
    });
    return raw;
}

bool is_flag(char c) { return c == '-' || c == '+' || c == ' ' || c == '#' || c == '0'; }

bool equals_word(const char* value, std::initializer_list<const char*> words) {
    for (const char* w : words) {
        if (std::strcmp(value, w) == 0) return true;
    }
    return false;
}

}  // namespace

namespace detail {

void record_event(std::uint64_t time_ns, const char* format, unsigned string_mask,
                  std::uint64_t a0, std::uint64_t a1, std::uint64_t a2, std::uint64_t a3) {
    Ring* ring = my_ring != nullptr ? my_ring : take_ring();
    const std::uint64_t i = ring->done.load(std::memory_order_relaxed);
    ring->begun.store(i + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    Slot& s = ring->slots[i % ring_entries];
    s.time.store(time_ns, std::memory_order_relaxed);
    s.format.store(format, std::memory_order_relaxed);
    s.args[0].store(a0, std::memory_order_relaxed);
    s.args[1].store(a1, std::memory_order_relaxed);
    s.args[2].store(a2, std::memory_order_relaxed);
    s.args[3].store(a3, std::memory_order_relaxed);
    s.string_mask.store(string_mask, std::memory_order_relaxed);
    ring->done.store(i + 1, std::memory_order_release);
}

}  // namespace detail

void set_enabled(bool on) {
    if (on) {
        detail::state.fetch_or(detail::enabled_bit, std::memory_order_relaxed);
    } else {
        detail::state.fetch_and(~detail::enabled_bit, std::memory_order_relaxed);
    }
}

bool enabled() { return (detail::state.load(std::memory_order_relaxed) & detail::enabled_bit) != 0; }

void freeze() { detail::state.fetch_or(detail::frozen_bit, std::memory_order_relaxed); }

void unfreeze() { detail::state.fetch_and(~detail::frozen_bit, std::memory_order_relaxed); }

bool frozen() { return (detail::state.load(std::memory_order_relaxed) & detail::frozen_bit) != 0; }

bool enable_from_environment() {
    if (const char* value = std::getenv("UHOMA_TIMETRACE")) {
        if (equals_word(value, {"1", "on", "yes", "true"})) set_enabled(true);
        if (equals_word(value, {"0", "off", "no", "false"})) set_enabled(false);
    }
    return enabled();
}

void clear() {
    std::lock_guard lock(registry().mutex);
    for (Ring* ring : registry().rings) {
        ring->floor.store(ring->done.load(std::memory_order_acquire), std::memory_order_relaxed);
    }
}

std::size_t ring_count() {
    std::lock_guard lock(registry().mutex);
    return registry().rings.size();
}

std::string format_event(const char* format, unsigned string_mask,
                         const std::uint64_t (&args)[max_args]) {
    std::string out;
    if (format == nullptr) return out;
    std::size_t next_arg = 0;
    const char* p = format;
    constexpr std::size_t max_message = 1024;
    while (*p != '\0' && out.size() < max_message) {
        if (*p != '%') {
            out += *p++;
            continue;
        }
        const char* const start = p++;
        if (*p == '%') {
            out += '%';
            ++p;
            continue;
        }
        // %[flags][width][.precision][length]conversion; width and
        // precision are digits only (no '*'), at most 3 of each.
        std::string spec = "%";
        while (is_flag(*p)) spec += *p++;
        int digits = 0;
        for (; *p >= '0' && *p <= '9'; ++digits) spec += *p++;
        bool too_wide = digits > 3;
        if (*p == '.') {
            spec += *p++;
            for (digits = 0; *p >= '0' && *p <= '9'; ++digits) spec += *p++;
            too_wide = too_wide || digits > 3;
        }
        while (*p == 'h' || *p == 'l' || *p == 'z' || *p == 'j' || *p == 't' || *p == 'L') ++p;
        const char conversion = *p;
        const bool known = !too_wide && conversion != '\0' &&
                           std::strchr("diuxXocsp", conversion) != nullptr;
        if (!known) {  // not a conversion we print: copy it as written
            if (conversion != '\0' && too_wide) ++p;
            out.append(start, static_cast<std::size_t>(p - start));
            continue;
        }
        ++p;
        if (next_arg >= max_args) {
            out += '?';
            continue;
        }
        const std::size_t arg = next_arg++;
        const std::uint64_t value = args[arg];
        const bool is_string = (string_mask & (1u << arg)) != 0;
        char buffer[128];
        int n = 0;
        if (conversion == 's') {
            if (!is_string || value == 0) {
                out += '?';
                continue;
            }
            spec += 's';
            n = std::snprintf(buffer, sizeof(buffer), spec.c_str(),
                              reinterpret_cast<const char*>(static_cast<std::uintptr_t>(value)));
        } else if (conversion == 'd' || conversion == 'i') {
            spec += "lld";
            n = std::snprintf(buffer, sizeof(buffer), spec.c_str(),
                              static_cast<long long>(static_cast<std::int64_t>(value)));
        } else if (conversion == 'c') {
            spec += 'c';
            n = std::snprintf(buffer, sizeof(buffer), spec.c_str(), static_cast<int>(value & 0xFF));
        } else if (conversion == 'p') {
            n = std::snprintf(buffer, sizeof(buffer), "0x%llx", static_cast<unsigned long long>(value));
        } else {
            spec += "ll";
            spec += conversion;
            n = std::snprintf(buffer, sizeof(buffer), spec.c_str(),
                              static_cast<unsigned long long>(value));
        }
        if (n > 0) out.append(buffer, std::min(static_cast<std::size_t>(n), sizeof(buffer) - 1));
    }
    return out;
}

std::vector<Event> events() {
    const std::vector<RawEvent> raw = snapshot_all();
    std::vector<Event> out;
    out.reserve(raw.size());
    for (const RawEvent& e : raw) {
        out.push_back(Event{e.time, e.thread, format_event(e.format, e.string_mask, e.args)});
    }
    return out;
}

std::string dump() {
    const std::vector<Event> all = events();
    std::string out;
    if (all.empty()) return out;
    out.reserve(all.size() * 64);
    const std::uint64_t first = all.front().time_ns;
    std::uint64_t previous = first;
    for (const Event& e : all) {
        char head[64];
        const int n = std::snprintf(head, sizeof(head), "%9.3f us (+%8.3f us) [C%02u] ",
                                    static_cast<double>(e.time_ns - first) / 1000.0,
                                    static_cast<double>(e.time_ns - previous) / 1000.0, e.thread);
        if (n > 0) out.append(head, std::min(static_cast<std::size_t>(n), sizeof(head) - 1));
        out += e.message;
        out += '\n';
        previous = e.time_ns;
    }
    return out;
}

}  // namespace uhoma::trace
