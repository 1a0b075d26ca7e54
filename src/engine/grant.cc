#include "engine/grant.h"

#include "engine/cutoffs.h"

#include <algorithm>
#include <bit>

#include "wire/packet.h"

namespace uhoma::engine {

namespace {

std::uint32_t clamp_u32(std::uint32_t value, std::uint32_t lo, std::uint32_t hi) {
    return std::min(std::max(value, lo), hi);
}

// Time to send `increment` bytes at link_mbps * fraction / 1000 Mb/s:
// increment * 8 bits / (link_mbps * fraction / 1000) us
// = increment * 8e6 / (link_mbps * fraction) ns.
Duration compute_fifo_interval(std::uint32_t link_mbps, std::uint32_t fraction,
                               std::uint32_t increment) {
    if (fraction == 0 || increment == 0 || link_mbps == 0) return Duration{0};
    const std::uint64_t ns = std::uint64_t{increment} * 8'000'000u /
                             (std::uint64_t{link_mbps} * std::uint64_t{fraction});
    return Duration{static_cast<Duration::rep>(std::max<std::uint64_t>(ns, 1))};
}

}  // namespace

GrantManager::GrantManager(const Config& config, Metrics& metrics)
    : window_param_(config.window),
      max_incoming_(config.max_incoming),
      max_overcommit_(clamp_u32(config.max_overcommit, 1, max_grants)),
      fifo_increment_(config.fifo_grant_increment),
      max_sched_prio_(0),
      fifo_priority_(0),
      metrics_(metrics) {
    const std::uint32_t num_priorities =
        clamp_u32(config.num_priorities, 1, static_cast<std::uint32_t>(wire::num_priorities));
    max_sched_prio_ = engine::max_sched_prio(config.unsched_cutoffs, num_priorities);
    fifo_priority_ = static_cast<std::uint8_t>(num_priorities >= 2 ? num_priorities - 2 : 0);
    fifo_interval_ = compute_fifo_interval(
        config.link_mbps, std::min(config.grant_fifo_fraction, 500u), config.fifo_grant_increment);
    grants_.reserve(4 * max_grants);
}

// --- Ranking -----------------------------------------------------------------

bool GrantManager::outranks(const Message& a, const Message& b) {
    if (a.remaining() != b.remaining()) return a.remaining() < b.remaining();
    if (a.birth != b.birth) return a.birth < b.birth;
    return a.key < b.key;
}

bool GrantManager::older(const Message& a, const Message& b) {
    if (a.birth != b.birth) return a.birth < b.birth;
    return a.key < b.key;
}

std::uint32_t GrantManager::rank_of(const Message& m) const {
    std::uint32_t rank = 0;
    for (std::uint32_t i = 0; i < max_overcommit_; ++i) {
        const Message* other = active_[i];
        if (other != nullptr && other != &m && outranks(*other, m)) ++rank;
    }
    return rank;
}

std::uint8_t GrantManager::sched_priority(std::uint32_t rank) const {
    const std::int64_t m = max_sched_prio_;
    const std::int64_t n = num_active_;
    const std::int64_t prio = m - std::int64_t{rank} - std::max<std::int64_t>(0, m + 1 - n);
    return static_cast<std::uint8_t>(std::max<std::int64_t>(0, prio));
}

std::uint32_t GrantManager::window() const {
    if (window_param_ != 0) return window_param_;
    return max_incoming_ / (num_active_ + 1);
}

// --- Bookkeeping ---------------------------------------------------------------

void GrantManager::refresh_incoming(Message& m) {
    const std::uint32_t incoming = m.granted > m.received ? m.granted - m.received : 0;
    total_incoming_ += std::int64_t{incoming} - std::int64_t{m.rec_incoming};
    m.rec_incoming = incoming;
}

void GrantManager::set_granted(Message& m, std::uint32_t granted) {
    granted = std::min(granted, m.length);
    if (granted <= m.granted) return;
    m.granted = granted;
    if (granted == m.length) --ungranted_count_;
    refresh_incoming(m);
}

void GrantManager::note_grantable_change(Instant now) {
    if (now > last_grantable_change_) {
        const auto elapsed = static_cast<std::uint64_t>((now - last_grantable_change_).count());
        metrics_.grantable_rpcs_integral += messages_.size() * elapsed;
        last_grantable_change_ = now;
    }
}

void GrantManager::push_grant(const Grant& grant) {
    if (grants_head_ == grants_.size()) {
        grants_.clear();
        grants_head_ = 0;
    } else if (grants_.size() == grants_.capacity() && grants_head_ > 0) {
        grants_.erase(grants_.begin(), grants_.begin() + static_cast<std::ptrdiff_t>(grants_head_));
        grants_head_ = 0;
    }
    grants_.push_back(grant);
}

// --- Active set and waiting lists -------------------------------------------

int GrantManager::find_victim(const Message& m) const {
    int lowest = -1;
    std::uint32_t lowest_peer_active = 0;
    for (std::uint32_t i = 0; i < max_overcommit_; ++i) {
        const Message* cand = active_[i];
        if (cand == nullptr) return static_cast<int>(i);
        // Counted as if both the candidate and `m` were active.
        const std::uint32_t cand_peer_active =
            cand->peer->active + (cand->peer == m.peer ? 1u : 0u);
        if (cand_peer_active != lowest_peer_active) {
            if (cand_peer_active > lowest_peer_active) {
                lowest = static_cast<int>(i);
                lowest_peer_active = cand_peer_active;
            }
            continue;
        }
        if (outranks(*active_[static_cast<std::size_t>(lowest)], *cand)) {
            lowest = static_cast<int>(i);
        }
    }
    const Message& victim = *active_[static_cast<std::size_t>(lowest)];
    if (lowest_peer_active > m.peer->active + 1) return lowest;
    if (outranks(m, victim)) return lowest;
    return -1;
}

void GrantManager::add_active(Message& m, int slot) {
    active_[static_cast<std::size_t>(slot)] = &m;
    m.slot = slot;
    ++m.peer->active;
    ++num_active_;
}

void GrantManager::remove_active(int slot) {
    Message& m = *active_[static_cast<std::size_t>(slot)];
    active_[static_cast<std::size_t>(slot)] = nullptr;
    m.slot = -1;
    --m.peer->active;
    --num_active_;
    needy_ &= ~(1u << static_cast<unsigned>(slot));
}

void GrantManager::insert_waiting(Message& m) {
    std::vector<Message*>& list = m.peer->waiting;
    auto pos = std::find_if(list.begin(), list.end(),
                            [&](const Message* other) { return outranks(m, *other); });
    list.insert(pos, &m);
}

void GrantManager::erase_waiting(Message& m) {
    std::vector<Message*>& list = m.peer->waiting;
    list.erase(std::find(list.begin(), list.end(), &m));
}

void GrantManager::reposition_waiting(Message& m) {
    std::vector<Message*>& list = m.peer->waiting;
    auto it = std::find(list.begin(), list.end(), &m);
    while (it != list.begin() && outranks(m, **(it - 1))) {
        std::iter_swap(it, it - 1);
        --it;
    }
    while (it + 1 != list.end() && outranks(**(it + 1), m)) {
        std::iter_swap(it, it + 1);
        ++it;
    }
}

void GrantManager::activate(Message& m, int slot) {
    if (Message* victim = active_[static_cast<std::size_t>(slot)]) {
        remove_active(slot);
        insert_waiting(*victim);
    }
    add_active(m, slot);
}

// `m` is waiting and its rank changed: keep its peer's list sorted and, if it
// is now its peer's best, see whether it earns a slot.
void GrantManager::promote(Message& m) {
    reposition_waiting(m);
    if (m.peer->waiting.front() != &m) return;
    const int slot = find_victim(m);
    if (slot < 0) return;
    erase_waiting(m);
    activate(m, slot);
}

// `slot` is empty: fill it with the best waiting message of a peer with no
// active message, else of a peer with the fewest. The newcomer is marked
// needy so that it gets its first grant through the needy path, in rank
// order and only when the budget has room.
void GrantManager::promote_queued(int slot) {
    PeerState* best = nullptr;
    for (auto& [key, peer] : peers_) {
        if (peer.waiting.empty()) continue;
        if (best == nullptr || peer.active < best->active ||
            (peer.active == best->active &&
             outranks(*peer.waiting.front(), *best->waiting.front()))) {
            best = &peer;
        }
    }
    if (best == nullptr) return;
    Message& m = *best->waiting.front();
    best->waiting.erase(best->waiting.begin());
    add_active(m, slot);
    needy_ |= 1u << static_cast<unsigned>(slot);
}

void GrantManager::unmanage(Message& m, Instant now) {
    note_grantable_change(now);
    const GrantKey key = m.key;
    const auto pending = grants_.begin() + static_cast<std::ptrdiff_t>(grants_head_);
    grants_.erase(
        std::remove_if(pending, grants_.end(), [key](const Grant& g) { return g.key == key; }),
        grants_.end());
    PeerState* peer = m.peer;
    if (m.slot >= 0) {
        const int slot = m.slot;
        remove_active(slot);
        promote_queued(slot);
    } else {
        erase_waiting(m);
    }
    total_incoming_ -= m.rec_incoming;
    if (m.granted < m.length) --ungranted_count_;
    const PeerKey peer_key = peer->key;
    messages_.erase(key);
    if (peer->active == 0 && peer->waiting.empty()) peers_.erase(peer_key);
}

// --- The grant algorithm ------------------------------------------------------

// Spec 3.4 step 2 for an active message. Returns whether a GRANT was queued.
bool GrantManager::try_send(Message& m, bool check_needy, Instant now) {
    std::int64_t delta = std::int64_t{m.received} + window() - m.granted;
    delta = std::min<std::int64_t>(delta, m.length - m.granted);
    if (delta <= 0) return false;
    const std::uint32_t bit = 1u << static_cast<unsigned>(m.slot);
    const std::int64_t avail = std::int64_t{max_incoming_} - total_incoming_;
    if (avail <= 0 || (check_needy && needy_ != 0)) {
        needy_ |= bit;
        return false;
    }
    const bool cut_short = delta > avail;
    if (cut_short) delta = avail;
    set_granted(m, m.granted + static_cast<std::uint32_t>(delta));
    push_grant(Grant{m.key, m.granted, sched_priority(rank_of(m))});
    check_fifo(now);
    if (cut_short) needy_ |= bit;
    return true;
}

// Spec 3.4 step 3: while the budget has room, serve needy messages in rank
// order.
void GrantManager::check_needy(Instant now) {
    while (needy_ != 0 && total_incoming_ < std::int64_t{max_incoming_}) {
        Message* best = nullptr;
        for (std::uint32_t bits = needy_; bits != 0; bits &= bits - 1) {
            Message* cand = active_[static_cast<std::size_t>(std::countr_zero(bits))];
            if (best == nullptr || outranks(*cand, *best)) best = cand;
        }
        needy_ &= ~(1u << static_cast<unsigned>(best->slot));
        if (try_send(*best, false, now)) ++metrics_.needy_grants;
    }
}

// Spec 3.6.
void GrantManager::check_fifo(Instant now) {
    if (fifo_interval_ == Duration{0} || ungranted_count_ == 0 || now < fifo_due_) return;
    fifo_due_ = now + fifo_interval_;
    const std::int64_t limit = std::int64_t{window()} + 2 * std::int64_t{fifo_increment_};
    Message* oldest = nullptr;
    for (auto& [key, m] : messages_) {
        if (m.granted >= m.length || std::int64_t{m.rec_incoming} >= limit) continue;
        if (oldest == nullptr || older(m, *oldest)) oldest = &m;
    }
    if (oldest == nullptr) return;
    const std::uint32_t before = oldest->granted;
    const std::uint64_t target = std::uint64_t{before} + fifo_increment_;
    set_granted(*oldest,
                static_cast<std::uint32_t>(std::min<std::uint64_t>(target, oldest->length)));
    metrics_.fifo_grant_bytes += oldest->granted - before;
    push_grant(Grant{oldest->key, oldest->granted, fifo_priority_});
}

// --- Entry points -------------------------------------------------------------

void GrantManager::add(GrantKey key, PeerKey peer_key, std::uint32_t length, std::uint32_t granted,
                       std::uint32_t received, Instant birth, Instant now) {
    if (granted >= length || received >= length || messages_.contains(key)) return;
    ++metrics_.grant_check_calls;
    note_grantable_change(now);
    PeerState& peer = peers_[peer_key];
    peer.key = peer_key;
    // Room for every managed message of this peer: demotions never allocate.
    peer.waiting.reserve(peer.active + peer.waiting.size() + 1);
    Message& m = messages_[key];
    m.key = key;
    m.peer = &peer;
    m.length = length;
    m.granted = granted;
    m.received = received;
    m.birth = birth;
    if (ungranted_count_ == 0) fifo_due_ = now + fifo_interval_;
    ++ungranted_count_;
    refresh_incoming(m);

    const int slot = find_victim(m);
    if (slot >= 0) {
        activate(m, slot);
        try_send(m, true, now);
    } else {
        insert_waiting(m);
    }
    check_needy(now);
}

void GrantManager::update(GrantKey key, std::uint32_t received, Instant now) {
    auto it = messages_.find(key);
    if (it == messages_.end()) return;
    Message& m = it->second;
    ++metrics_.grant_check_calls;
    received = std::min(received, m.length);
    if (received == m.length) {
        unmanage(m, now);
        check_needy(now);
        return;
    }
    const bool changed = received != m.received;
    m.received = received;
    refresh_incoming(m);
    if (m.slot < 0 && changed) promote(m);
    if (m.slot >= 0) try_send(m, true, now);
    check_needy(now);
}

void GrantManager::remove(GrantKey key, Instant now) {
    auto it = messages_.find(key);
    if (it == messages_.end()) return;
    unmanage(it->second, now);
    check_needy(now);
}

void GrantManager::raise_granted(GrantKey key, std::uint32_t offset, Instant now) {
    auto it = messages_.find(key);
    if (it == messages_.end()) return;
    set_granted(it->second, offset);
    check_needy(now);
}

std::optional<Grant> GrantManager::poll_grant() {
    if (grants_head_ == grants_.size()) {
        grants_.clear();
        grants_head_ = 0;
        return std::nullopt;
    }
    return grants_[grants_head_++];
}

Instant GrantManager::next_deadline() const {
    if (fifo_interval_ == Duration{0} || ungranted_count_ == 0) return never;
    return fifo_due_;
}

void GrantManager::handle_timeout(Instant now) {
    check_fifo(now);
    check_needy(now);
}

// --- Introspection ------------------------------------------------------------

std::uint32_t GrantManager::granted(GrantKey key) const {
    auto it = messages_.find(key);
    return it == messages_.end() ? 0 : it->second.granted;
}

bool GrantManager::is_managed(GrantKey key) const {
    return messages_.contains(key);
}

bool GrantManager::is_active(GrantKey key) const {
    auto it = messages_.find(key);
    return it != messages_.end() && it->second.slot >= 0;
}

bool GrantManager::is_needy(GrantKey key) const {
    auto it = messages_.find(key);
    return it != messages_.end() && it->second.slot >= 0 &&
           (needy_ & (1u << static_cast<unsigned>(it->second.slot))) != 0;
}

std::size_t GrantManager::needy_count() const {
    return static_cast<std::size_t>(std::popcount(needy_));
}

}  // namespace uhoma::engine
