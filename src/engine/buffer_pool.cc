// The receive buffer pool (spec 7). Design notes are in buffer_pool.h.
#include "engine/buffer_pool.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>

#include "wire/packet.h"

namespace uhoma::engine {

namespace {

constexpr std::uint64_t max_region_bytes = std::uint64_t{1} << 32;  // offsets are u32
constexpr std::uint32_t in_page_mask = bpage_size - 1;

}  // namespace

std::uint64_t BufferAllocation::offset_of(std::uint32_t message_offset) const {
    const std::uint32_t index = message_offset >> bpage_shift;
    if (index >= num_bpages || index >= max_bpages_per_message) std::abort();
    return std::uint64_t{offsets[index]} + (message_offset & in_page_mask);
}

std::uint64_t BufferPool::minimum_region_bytes(std::uint32_t num_cores) {
    return std::uint64_t{num_cores} * bpage_size + 2 * std::uint64_t{wire::max_message_length};
}

Expected<BufferPool, int> BufferPool::create(std::uint64_t region_bytes, std::uint32_t num_cores,
                                             Duration bpage_lease) {
    if (num_cores == 0 || bpage_lease < Duration::zero()) return Unexpected{EINVAL};
    if (region_bytes < minimum_region_bytes(num_cores) || region_bytes > max_region_bytes) {
        return Unexpected{EINVAL};
    }
    const auto num_pages = static_cast<std::uint32_t>(region_bytes >> bpage_shift);
    return BufferPool(num_pages, num_cores, bpage_lease);
}

BufferPool::BufferPool(std::uint32_t num_pages, std::uint32_t num_cores, Duration lease)
    : pages_(num_pages),
      free_bits_((std::size_t{num_pages} + 63) / 64, 0),
      free_count_(num_pages),
      cores_(num_cores, none),
      scratch_(num_cores, none),
      lease_(lease) {
    for (std::uint32_t i = 0; i < num_pages; ++i)
        free_bits_[i / 64] |= std::uint64_t{1} << (i % 64);
}

std::optional<std::uint32_t> BufferPool::owned_bpage(std::uint32_t core) const {
    if (core >= cores_.size() || cores_[core] == none) return std::nullopt;
    return cores_[core];
}

std::optional<BpageState> BufferPool::bpage_state(std::uint32_t index) const {
    if (index >= pages_.size()) return std::nullopt;
    const Page& page = pages_[index];
    BpageState state;
    state.references = page.references;
    if (page.owner != none) state.owner = page.owner;
    state.lease_expiry = page.lease_expiry;
    return state;
}

// Index of the first free page at or after `from`, or total_bpages().
std::uint32_t BufferPool::next_free(std::uint32_t from) const {
    const auto total = total_bpages();
    if (from >= total) return total;
    std::size_t word = from / 64;
    std::uint64_t bits = free_bits_[word] & (~std::uint64_t{0} << (from % 64));
    while (bits == 0) {
        if (++word == free_bits_.size()) return total;
        bits = free_bits_[word];
    }
    return static_cast<std::uint32_t>(word * 64 + static_cast<std::size_t>(std::countr_zero(bits)));
}

void BufferPool::mark_free(std::uint32_t index) {
    free_bits_[index / 64] |= std::uint64_t{1} << (index % 64);
    ++free_count_;
    lowest_free_ = std::min(lowest_free_, index);
}

void BufferPool::mark_used(std::uint32_t index) {
    free_bits_[index / 64] &= ~(std::uint64_t{1} << (index % 64));
    --free_count_;
    if (index == lowest_free_) lowest_free_ = next_free(index + 1);
}

Instant BufferPool::lease_end(Instant now) const {
    if (now.time_since_epoch() > Duration::max() - lease_) return never;
    return now + lease_;
}

// Whether `core` may take `page` from the core that owns it: the lease is
// over and no message uses it. A core never takes its own page this way; it
// keeps its cached page for tails.
bool BufferPool::takeable(const Page& page, std::uint32_t core, Instant now) const {
    return page.owner != none && page.owner != core && page.references == 0 &&
           page.lease_expiry <= now;
}

std::uint32_t BufferPool::takeable_count(std::uint32_t core, Instant now) const {
    std::uint32_t count = 0;
    for (std::uint32_t c = 0; c < cores_.size(); ++c) {
        if (c != core && cores_[c] != none && takeable(pages_[cores_[c]], core, now)) ++count;
    }
    return count;
}

BufferPool::Plan BufferPool::plan(std::uint32_t length, std::uint32_t core) const {
    Plan result;
    result.fresh_pages = length >> bpage_shift;
    const std::uint32_t tail = length & in_page_mask;
    if (tail == 0) return result;
    const std::uint32_t owned = cores_[core];
    if (owned == none) {
        result.tail = TailPlan::fresh_page;
    } else if (pages_[owned].carved + tail <= bpage_size) {
        result.tail = TailPlan::fits;
    } else if (pages_[owned].references == 0) {
        result.tail = TailPlan::restart;
    } else {
        result.tail = TailPlan::fresh_page;
    }
    if (result.tail == TailPlan::fresh_page) ++result.fresh_pages;
    return result;
}

bool BufferPool::can_allocate(std::uint32_t length) const {
    if (length == 0 || length > wire::max_message_length) return false;
    const std::uint32_t needed = (length >> bpage_shift) + ((length & in_page_mask) != 0 ? 1u : 0u);
    return needed <= free_count_;
}

bool BufferPool::can_allocate(std::uint32_t length, std::uint32_t core, Instant now) const {
    if (core >= cores_.size()) std::abort();
    if (length == 0 || length > wire::max_message_length) return false;
    const Plan p = plan(length, core);
    return p.fresh_pages <= free_count_ + takeable_count(core, now);
}

std::optional<BufferAllocation> BufferPool::allocate(std::uint32_t length, std::uint32_t core,
                                                     Instant now) {
    if (core >= cores_.size()) std::abort();
    if (length == 0 || length > wire::max_message_length) return std::nullopt;
    const Plan p = plan(length, core);

    // Decide every page before changing anything, so failure changes nothing.
    std::array<std::uint32_t, max_bpages_per_message> picks{};
    if (p.fresh_pages > 0) {
        std::size_t num_takeable = 0;
        for (std::uint32_t c = 0; c < cores_.size(); ++c) {
            if (c != core && cores_[c] != none && takeable(pages_[cores_[c]], core, now)) {
                scratch_[num_takeable++] = cores_[c];
            }
        }
        if (p.fresh_pages > free_count_ + num_takeable) return std::nullopt;
        const auto takeable_end = scratch_.begin() + static_cast<std::ptrdiff_t>(num_takeable);
        std::sort(scratch_.begin(), takeable_end);
        // Lowest indices first, merging free pages with takeable ones.
        const auto total = total_bpages();
        std::uint32_t next = next_free(lowest_free_);
        auto next_taken = scratch_.begin();
        for (std::uint32_t k = 0; k < p.fresh_pages; ++k) {
            if (next_taken != takeable_end && (next >= total || *next_taken < next)) {
                picks[k] = *next_taken++;
            } else {
                picks[k] = next;
                next = next_free(next + 1);
            }
        }
        for (std::uint32_t k = 0; k < p.fresh_pages; ++k) {
            Page& page = pages_[picks[k]];
            if (page.owner != none) {  // taken from an idle core
                cores_[page.owner] = none;
                page.owner = none;
            } else {
                mark_used(picks[k]);
            }
            page.carved = 0;
        }
    }

    BufferAllocation result;
    const std::uint32_t whole = length >> bpage_shift;
    for (std::uint32_t k = 0; k < whole; ++k) {
        Page& page = pages_[picks[k]];
        page.references = 1;
        page.whole = true;
        page.live_bytes = bpage_size;
        result.offsets[k] = picks[k] << bpage_shift;
    }
    result.num_bpages = whole;

    const std::uint32_t tail = length & in_page_mask;
    if (p.tail != TailPlan::none) {
        if (p.tail == TailPlan::fresh_page) {
            // The old page (if any) still holds tails of live messages: leave
            // it to them; it becomes free when the last one comes back.
            if (cores_[core] != none) pages_[cores_[core]].owner = none;
            const std::uint32_t index = picks[whole];
            Page& page = pages_[index];
            page.owner = core;
            page.whole = false;
            page.tails.clear();
            cores_[core] = index;
        } else if (p.tail == TailPlan::restart) {
            // Only the owner's reference is left, so every earlier tail has
            // come back: start over at the beginning of the page.
            pages_[cores_[core]].carved = 0;
            ++bpage_reuses_;
        }
        const std::uint32_t index = cores_[core];
        Page& page = pages_[index];
        const std::uint32_t start = page.carved;
        page.tails.push_back(
            Tail{static_cast<std::uint16_t>(start), static_cast<std::uint16_t>(tail)});
        page.carved += tail;
        page.live_bytes += tail;
        ++page.references;
        page.lease_expiry = lease_end(now);
        result.offsets[whole] = (index << bpage_shift) + start;
        result.num_bpages = whole + 1;
    }
    bytes_in_use_ += length;
    return result;
}

Expected<std::monostate, int> BufferPool::release(std::uint32_t offset) {
    const std::uint32_t index = offset >> bpage_shift;
    if (index >= pages_.size()) return Unexpected{EINVAL};
    Page& page = pages_[index];
    if (page.references == 0) return Unexpected{EINVAL};

    if (page.whole) {
        page.whole = false;
    } else {
        const auto start = static_cast<std::uint16_t>(offset & in_page_mask);
        const auto it =
            std::lower_bound(page.tails.begin(), page.tails.end(), start,
                             [](const Tail& t, std::uint16_t s) { return t.start < s; });
        if (it != page.tails.end() && it->start == start) {
            if (it->length == 0) return Unexpected{EINVAL};  // this tail came back already
            page.live_bytes -= it->length;
            bytes_in_use_ -= it->length;
            it->length = 0;
        }
        // An inexact offset inside the page is accepted, as by the kernel;
        // its bytes are settled below when the page empties.
    }

    if (--page.references == 0) {
        bytes_in_use_ -= page.live_bytes;
        page.live_bytes = 0;
        page.tails.clear();  // keeps its capacity
        if (page.owner == none) {
            page.carved = 0;
            mark_free(index);
        }
    }
    return std::monostate{};
}

}  // namespace uhoma::engine
