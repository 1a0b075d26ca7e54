// The receive buffer pool of one socket (spec/protocol.md section 7): which
// bytes of the application's SO_HOMA_RCVBUF region hold which message.
//
// Design notes
// ------------
// The pool hands out region *offsets* only; the engine writes message bytes
// there and the application reads them and gives the offsets back later
// (recvmsg's bpage_offsets, spec 8.3). So the pool never touches the region
// and works the same for real sockets, tests and the simulator.
//
// Layout follows Linux Homa exactly, because applications depend on it: the
// region is cut into 64 KiB bpages; a message of `length` bytes gets
// `length >> 16` whole bpages plus, when `length & 0xFFFF` is nonzero, one
// unaligned tail chunk. Byte x lives at offsets[x >> 16] + (x & 0xFFFF).
//
// Whole bpages come from the lowest available indices. The kernel scans
// from a rotating per-core cursor and bounds its scan to the first
// `used + max(used / 4, 4)` pages (then the rest) so that a few low pages
// are reused over and over and the cache footprint stays small. Taking
// strictly the lowest available indices gives the same pages the bounded
// scan prefers (whenever the window holds enough, they are the lowest
// ones; when it does not, the fallback continues upwards), and a bitmap of
// free pages plus a lowest-free hint finds them with a few word scans
// instead of walking page descriptors.
//
// Tails are small and frequent, so they are carved sequentially from a
// bpage *owned* by the allocating core (the kernel's per-core cache, which
// keeps cores from sharing a page's cache lines). An owned page holds one
// reference for its owner plus one per message using it, and a lease. When
// a tail does not fit, the owner starts over at offset 0 if only its own
// reference is left (a bpage reuse), otherwise it gives the page up to its
// messages and takes a fresh one. Other cores may take an owned page only
// when its lease has expired and no message uses it, so an idle core's
// cached page is not stranded. Here, unlike the kernel, such a takeable
// page also counts as available space: the kernel checks a free counter
// before it looks for takeable pages and so can fail while pages could be
// taken.
//
// allocate() first works out everything it needs (how the tail is placed,
// how many fresh pages) and only then changes state, so a failure leaves
// the pool untouched: no half-allocated message, no leaked reference, no
// page whose ownership changed.
//
// Reference counts here count *messages* only; the owner is recorded
// separately. A page is free when no message uses it and no core owns it.
// Returning a chunk of a page no message uses is therefore an error even if
// a core still owns the page, which catches a double return that the
// kernel's combined count would silently turn into a freed owned page.
//
// bytes_in_use must drop by exactly a message's bytes once all its chunks
// come back, but release() sees only an offset. Whole chunks are 64 KiB. A
// tail page keeps a small sorted list of the tails carved from it
// (start, length), so returning a tail's exact offset subtracts its length
// (and returning it twice is caught even while other tails keep the page
// alive). The kernel accepts any offset inside the page; an inexact one is
// accepted here too, and whatever bytes remain on the page are settled
// when its last reference goes. The lists keep their capacity when a page
// empties, so steady-state traffic does not allocate.
//
// The engine is single-threaded, so there are no locks or atomics; `core`
// is only the identity the engine's runtime gives the allocating thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "engine/types.h"
#include "uhoma/expected.h"

namespace uhoma::engine {

inline constexpr std::uint32_t bpage_shift = 16;                // HOMA_BPAGE_SHIFT
inline constexpr std::uint32_t bpage_size = 1u << bpage_shift;  // 65536
inline constexpr std::uint32_t max_bpages_per_message = 16;     // HOMA_MAX_BPAGES

// Where a message's bytes live in the region.
struct BufferAllocation {
    std::uint32_t num_bpages = 0;
    // Region offsets of the chunks: whole bpages first, then the tail.
    std::array<std::uint32_t, max_bpages_per_message> offsets{};

    // Region offset of message byte `message_offset`:
    // offsets[message_offset >> 16] + (message_offset & 0xFFFF).
    // Precondition: message_offset >> 16 < num_bpages (the caller checks
    // offsets against the message length); violating it aborts.
    std::uint64_t offset_of(std::uint32_t message_offset) const;
};

// What the pool knows about one bpage (for diagnostics and tests).
struct BpageState {
    std::uint32_t references = 0;        // chunks handed out and not yet returned
    std::optional<std::uint32_t> owner;  // core caching the page for tails
    Instant lease_expiry{};              // meaningful while owned
};

class BufferPool {
public:
    // A pool for a region of `region_bytes` (the application's SO_HOMA_RCVBUF
    // area), rounded down to whole bpages, shared by cores 0..num_cores-1;
    // a core keeps its cached tail page for `bpage_lease` after its last use.
    // Errors: EINVAL if region_bytes < minimum_region_bytes(num_cores) or
    // > 4 GiB, num_cores == 0, or bpage_lease < 0.
    static Expected<BufferPool, int> create(std::uint64_t region_bytes, std::uint32_t num_cores,
                                            Duration bpage_lease);

    // num_cores * 64 KiB + 2 * 1,000,000: one cached page per core plus room
    // for two messages of the largest size.
    static std::uint64_t minimum_region_bytes(std::uint32_t num_cores);

    // Reserves space for a whole message of `length` bytes on behalf of core
    // `core`, all or nothing. nullopt when there is not enough space (the
    // engine then queues the message) and also when `length` is 0 or above
    // 1,000,000: lengths come off the wire, so a bad one must not crash.
    // Precondition: core < num_cores (a programming error otherwise; aborts).
    std::optional<BufferAllocation> allocate(std::uint32_t length, std::uint32_t core, Instant now);

    // Gives back one chunk: any offset from an allocation's offsets, in any
    // order, each exactly once. Drops one reference on bpage offset >> 16.
    // Errors: EINVAL if the offset is outside the region, no chunk on that
    // page is outstanding (the page is already free, or only its owning core
    // holds it), or the offset is exactly a tail chunk already returned.
    Expected<std::monostate, int> release(std::uint32_t offset);

    std::uint32_t total_bpages() const { return static_cast<std::uint32_t>(pages_.size()); }
    // Pages with no references and no owner.
    std::uint32_t free_bpages() const { return free_count_; }
    // True when allocate(length, core, now) succeeds for every core at every
    // time, given the current state: the free pages cover every chunk,
    // including a fresh page for the tail (the kernel's bpages_needed rule,
    // which the engine uses to wake RPCs waiting for buffers). False for an
    // invalid length. allocate() may still succeed when this is false (the
    // core's cached page has room for the tail, or a lease has expired);
    // the three-argument form is exact.
    bool can_allocate(std::uint32_t length) const;
    // Exactly whether allocate(length, core, now) would succeed now.
    // Precondition: core < num_cores (aborts otherwise).
    bool can_allocate(std::uint32_t length, std::uint32_t core, Instant now) const;
    // Bytes of messages allocated and not yet released (for leak checks).
    std::uint64_t bytes_in_use() const { return bytes_in_use_; }
    // Times a core restarted its cached page at offset 0 (Metrics::bpage_reuses).
    std::uint64_t bpage_reuses() const { return bpage_reuses_; }

    std::uint32_t num_cores() const { return static_cast<std::uint32_t>(cores_.size()); }
    // The page core `core` caches for tails, if any (nullopt also for an
    // out-of-range core).
    std::optional<std::uint32_t> owned_bpage(std::uint32_t core) const;
    // State of bpage `index`; nullopt if index >= total_bpages().
    std::optional<BpageState> bpage_state(std::uint32_t index) const;

private:
    static constexpr std::uint32_t none = ~std::uint32_t{0};

    // A tail chunk carved from a page: its start within the page and its
    // length; length 0 once it has been returned.
    struct Tail {
        std::uint16_t start = 0;
        std::uint16_t length = 0;
    };
    struct Page {
        std::uint32_t references = 0;  // outstanding chunks (owner not counted)
        std::uint32_t owner = none;
        bool whole = false;            // holds one whole-bpage chunk
        std::uint32_t carved = 0;      // tail page: bytes carved so far
        std::uint32_t live_bytes = 0;  // message bytes not yet returned
        Instant lease_expiry{};
        std::vector<Tail> tails;  // tail page: carved tails, by start
    };
    enum class TailPlan : std::uint8_t { none, fits, restart, fresh_page };
    struct Plan {
        TailPlan tail = TailPlan::none;
        std::uint32_t fresh_pages = 0;  // whole pages + 1 if the tail needs a new page
    };

    BufferPool(std::uint32_t num_pages, std::uint32_t num_cores, Duration lease);

    Plan plan(std::uint32_t length, std::uint32_t core) const;
    bool takeable(const Page& page, std::uint32_t core, Instant now) const;
    std::uint32_t takeable_count(std::uint32_t core, Instant now) const;
    std::uint32_t next_free(std::uint32_t from) const;
    void mark_free(std::uint32_t index);
    void mark_used(std::uint32_t index);
    Instant lease_end(Instant now) const;

    std::vector<Page> pages_;
    std::vector<std::uint64_t> free_bits_;  // bit i set: page i is free
    std::uint32_t free_count_ = 0;
    std::uint32_t lowest_free_ = 0;       // no free page below this index
    std::vector<std::uint32_t> cores_;    // page each core owns, or none
    std::vector<std::uint32_t> scratch_;  // takeable pages (sized in create)
    Duration lease_{};
    std::uint64_t bytes_in_use_ = 0;
    std::uint64_t bpage_reuses_ = 0;
};

}  // namespace uhoma::engine
