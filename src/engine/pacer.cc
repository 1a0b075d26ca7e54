// Output pacing: NIC queue estimate and throttled-message choice. Design
// notes are in pacer.h.
#include "engine/pacer.h"

#include <algorithm>

namespace uhoma::engine {

namespace {

// Wire time of one byte is 8000 / (0.99 * link_mbps) ns
// = per_byte_units / (99 * link_mbps) ns.
constexpr std::uint64_t per_byte_units = 800000;

}  // namespace

NicQueue::NicQueue(const Config& config)
    : max_backlog_(std::chrono::microseconds(config.max_nic_est_backlog_usecs)),
      units_per_ns_(99 * std::uint64_t{std::max<std::uint32_t>(config.link_mbps, 1)}),
      dont_throttle_((config.flags & Config::dont_throttle_flag) != 0) {}

Duration NicQueue::backlog(Instant now) const {
    return link_idle_ > now ? link_idle_ - now : Duration::zero();
}

bool NicQueue::can_send(Instant now) const {
    if (dont_throttle_) return true;
    const Duration queued = backlog(now);
    return queued == Duration::zero() || queued < max_backlog_;
}

void NicQueue::on_send(std::size_t homa_bytes, bool ipv6, Instant now) {
    if (link_idle_ < now) {
        link_idle_ = now;
        fraction_ = 0;
    }
    const std::uint64_t units = fraction_ + wire_bytes(homa_bytes, ipv6) * per_byte_units;
    link_idle_ += Duration(static_cast<Duration::rep>(units / units_per_ns_));
    fraction_ = units % units_per_ns_;
}

Instant NicQueue::ready_at() const {
    if (dont_throttle_ || link_idle_ == Instant::min()) return Instant::min();
    // can_send(t) holds once link_idle - t < max, i.e. from
    // link_idle - max + 1 ns; with max 0, once the link is idle.
    if (max_backlog_ <= Duration::zero()) return link_idle_;
    if (link_idle_ < Instant::min() + max_backlog_) return Instant::min();
    return link_idle_ - max_backlog_ + Duration(1);
}

bool bypasses_pacer(std::uint32_t bytes_left_to_send, const Config& config) {
    return bytes_left_to_send <= config.defer_min_bytes;
}

PacerQueue::PacerQueue(std::uint32_t fifo_fraction)
    : fifo_fraction_(static_cast<std::int32_t>(std::min<std::uint32_t>(fifo_fraction, 1000))) {}

bool PacerQueue::before(const Entry& a, const Entry& b) {
    if (a.bytes_remaining != b.bytes_remaining) return a.bytes_remaining < b.bytes_remaining;
    if (a.birth != b.birth) return a.birth < b.birth;
    return a.key < b.key;
}

std::size_t PacerQueue::find(PacerKey key) const {
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].key == key) return i;
    }
    return entries_.size();
}

bool PacerQueue::contains(PacerKey key) const {
    return find(key) != entries_.size();
}

bool PacerQueue::add(PacerKey key, std::uint64_t bytes_remaining, Instant birth) {
    if (contains(key)) return false;
    const Entry entry{key, bytes_remaining, birth};
    entries_.insert(std::upper_bound(entries_.begin(), entries_.end(), entry, before), entry);
    return true;
}

bool PacerQueue::update(PacerKey key, std::uint64_t bytes_remaining) {
    const std::size_t index = find(key);
    if (index == entries_.size()) return false;
    const auto it = entries_.begin() + static_cast<std::ptrdiff_t>(index);
    it->bytes_remaining = bytes_remaining;
    // Move the entry to its new place, shifting the others by one.
    const auto lower = std::upper_bound(entries_.begin(), it, *it, before);
    if (lower != it) {
        std::rotate(lower, it, it + 1);
        return true;
    }
    const auto upper = std::lower_bound(it + 1, entries_.end(), *it, before);
    std::rotate(it, it + 1, upper);
    return true;
}

bool PacerQueue::remove(PacerKey key) {
    const std::size_t index = find(key);
    if (index == entries_.size()) return false;
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
    return true;
}

std::optional<PacerKey> PacerQueue::pick() {
    if (entries_.empty()) return std::nullopt;
    fifo_credit_ -= fifo_fraction_;
    if (fifo_credit_ > 0) return entries_.front().key;
    fifo_credit_ += 1000;
    const auto oldest =
        std::min_element(entries_.begin(), entries_.end(),
                         [](const Entry& a, const Entry& b) { return a.birth < b.birth; });
    return oldest->key;
}

}  // namespace uhoma::engine
