// Receiver-side grant manager: which incoming messages get GRANTs, how many
// bytes and at what priority (spec section 3).
//
// Design notes
// ------------
// Homa is receiver-driven. A sender transmits the first `unsched_bytes` of a
// message blind; everything after that it sends only once the receiver has
// granted it. The receiver hands out grants so as to approximate SRPT
// (Shortest Remaining Processing Time) across all the messages coming to it,
// while keeping the bytes it has authorized but not yet received (the
// "incoming" bytes) below a budget so the downlink's switch queue stays short.
// This class is that policy and nothing else: the engine tells it about
// messages (add / update / remove), and it answers with Grant decisions that
// the engine turns into GRANT packets (poll_grant).
//
// The structure follows Linux Homa's homa_grant.c after its 2025-26 rewrite
// (spec 3.8), simplified for a single-threaded sans-I/O engine:
//
// * Ranking (3.2). Fewest bytes_remaining (length - received) first; ties go
//   to the oldest birth. Ranking by ungranted bytes caused priority
//   inversion, so it is always *remaining* bytes. uhoma adds the message key
//   as a last tie-break so the order is total and every decision is
//   reproducible.
//
// * Active set (3.3). Only up to `max_overcommit` (<= 8) messages, the
//   "active" ones, receive normal grants. They live in an unsorted array of
//   slots; everything else waits in a rank-sorted list per peer. Admission,
//   victim choice and the refill of a freed slot are exactly the kernel's
//   (find_victim / promote_queued): a newcomer takes an empty slot, or else
//   the lowest-ranked slot among the peers with the most active messages
//   (the newcomer counting towards its own peer), and replaces it if that
//   peer has at least two more active messages than the newcomer's peer, or
//   if the newcomer outranks it. A freed slot goes to the best waiting
//   message of a peer with no active message, else of a peer with the
//   fewest. This spreads the slots over senders, so one sender that ignores
//   its grants (or is slow) cannot soak up all the overcommitment. An
//   inactive message whose rank improves (data arrived) is repositioned in
//   its peer's list and, if it became that peer's best, tried for a slot.
//   There is no global rank-sorted list of peers, as the kernel keeps: a
//   freed slot scans the peers instead. The kernel needs the sorted list to
//   keep its grant lock short; here the scan costs O(peers) once per message
//   completion, and the per-packet path never touches it.
//
// * Grant algorithm (3.4), run once per update() of a message. The rank
//   among active messages is computed by scanning the (at most 8) slots, so
//   no order has to be maintained as bytes arrive. The window is fixed
//   (`window` != 0) or dynamic, max_incoming / (N + 1) with N active
//   messages, which always leaves as much free budget as any one message
//   holds, for newcomers. `total_incoming` is the sum over managed messages
//   of max(0, granted - received), unscheduled bytes included, so a burst of
//   new messages can push it over `max_incoming` and pause all grants. A
//   message that cannot get its window because the budget is used up is
//   marked *needy* (one bit per slot); while any message is needy, others
//   do not grant to themselves but queue behind it, and whenever the budget
//   has room again the needy messages are served in rank order. Without
//   that, whichever message happened to see the next packet would grab the
//   freed budget regardless of rank. Needy messages are served at the end
//   of every entry point.
//
// * Priorities (3.5). prio = max(0, M - r - max(0, M + 1 - N)), with
//   M = max_sched_prio (derived from unsched_cutoffs as in spec 4), r the
//   rank among active messages and N their number. With few active messages
//   the lowest levels are used, so a newcomer can still preempt them.
//
// * FIFO grants (3.6). Pure SRPT starves long messages under load, so every
//   fifo_grant_interval the oldest message (active or not) that is not fully
//   granted and whose sender is responding (rec_incoming < window +
//   2 * increment) gets `fifo_grant_increment` extra bytes at priority
//   num_priorities - 2. The interval is the time to send the increment at
//   link_mbps * grant_fifo_fraction / 1000, computed exactly in nanoseconds
//   (the kernel rounds the rate down to whole Mb/s first; with the defaults
//   both give 320 us).
//
// How the FIFO clock is driven without a clock. The kernel checks
// `now >= fifo_grant_time` after every normal grant, and then sets
// fifo_grant_time = now + interval whether or not a message was eligible.
// uhoma does the same, and additionally exports the due time through
// next_deadline() so that the engine's timer calls handle_timeout() then.
// FIFO grants therefore keep flowing on schedule even when no normal grant
// is being made, e.g. when every active sender has stalled and the budget is
// full, which is exactly when a starved message most needs them. The clock
// only runs while some managed message is not fully granted: when the first
// such message appears after none, the first FIFO grant is due one interval
// later. (The kernel's fifo_grant_time starts at 0 and goes stale while
// idle, so the first normal grant after an idle period also fires a FIFO
// grant, in effect doubling the first burst of a fresh message; a message
// that has not waited needs no anti-starvation help.) One FIFO grant at most
// per check, even if a late timer missed several intervals.
//
// Other choices where the spec leaves room:
// * A message stays managed (and keeps its slot) once fully granted, until
//   it completes or ends, as in the kernel. update() with received == length
//   unmanages it at once, so the engine's later remove() is a no-op.
// * After the cap at length - granted, delta <= 0 stops the algorithm; the
//   kernel could mark a fully granted message needy and then send it a
//   duplicate GRANT.
// * A FIFO grant does not try to promote its message: its rank (remaining
//   bytes) did not change.
// * Grants wait in a queue until polled. remove() drops the queued grants of
//   the message it removes, so the engine never sends a GRANT for an RPC that
//   has ended.
// * needy_grants counts grants actually sent from the needy path;
//   grantable_rpcs_integral is, as in Linux, the time integral (in
//   nanoseconds, uhoma's "cycles") of the number of managed messages, so
//   metrics.py's average-grantable computation keeps working.
//
// Memory: a message costs one node in a hash map and a slot in its peer's
// waiting vector, both allocated by add(), which also reserves room in the
// peer's vector for every managed message of that peer, so demotions never
// allocate. update() and the FIFO path allocate nothing; the grant queue is
// a vector reused from the start whenever the engine has drained it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/config.h"
#include "engine/metrics.h"
#include "engine/types.h"

namespace uhoma::engine {

using GrantKey = std::uint64_t;  // engine-chosen unique key of an incoming message
using PeerKey = std::uint32_t;   // engine-chosen index of the sending peer

// One GRANT packet to send: the sender may transmit everything below
// `offset`, scheduled bytes at level `priority` (internal level, before
// priority_map).
struct Grant {
    GrantKey key = 0;
    std::uint32_t offset = 0;
    std::uint8_t priority = 0;
    friend bool operator==(const Grant&, const Grant&) = default;
};

class GrantManager {
  public:
    // Upper bound on max_overcommit (HOMA_MAX_GRANTS).
    static constexpr std::uint32_t max_grants = 8;

    // Copies what it needs from `config` (later changes to it are not seen);
    // out-of-range fields are clamped (max_overcommit to 1..8,
    // num_priorities to 1..8, grant_fifo_fraction to <= 500). `metrics`
    // must outlive the manager.
    GrantManager(const Config& config, Metrics& metrics);

    // An incoming message that needs grants (length > granted) and has
    // receive buffers. `granted` = bytes already authorized (its unscheduled
    // part), `received` = bytes received so far, `birth` = when its first
    // packet arrived. Runs the grant algorithm for it. Ignored if the key is
    // already managed, or if nothing is left to grant (granted >= length) or
    // to receive (received >= length).
    void add(GrantKey key, PeerKey peer, std::uint32_t length, std::uint32_t granted,
             std::uint32_t received, Instant birth, Instant now);

    // Bytes of the message received so far changed (call once per batch of
    // DATA for that message). Runs the grant algorithm. received == length
    // unmanages the message as remove() does. Unknown keys are ignored.
    void update(GrantKey key, std::uint32_t received, Instant now);

    // The message completed or ended (aborted, timed out): frees its slot and
    // incoming budget and drops its queued grants. Unknown keys are ignored.
    void remove(GrantKey key, Instant now);

    // The receiver learned that the sender may send up to `offset` without
    // our grant (e.g. a RESEND of ours reached past `granted`, which the
    // sender takes as a lost GRANT; spec 3.7). Raises granted (capped at the
    // length) without queuing a GRANT. Unknown keys are ignored.
    void raise_granted(GrantKey key, std::uint32_t offset, Instant now);

    // Grants decided so far, in decision order; nullopt when none is left.
    // The engine sends one GRANT per item.
    std::optional<Grant> poll_grant();

    // Current granted offset (>= the initial one); 0 for an unmanaged key.
    std::uint32_t granted(GrantKey key) const;
    bool is_managed(GrantKey key) const;
    bool is_active(GrantKey key) const;
    bool is_needy(GrantKey key) const;

    std::size_t active_count() const { return num_active_; }
    // Managed messages: active plus waiting.
    std::size_t grantable_count() const { return messages_.size(); }
    std::size_t needy_count() const;
    // Sum over managed messages of max(0, granted - received).
    std::int64_t total_incoming() const { return total_incoming_; }
    // The current per-message window: `window`, or max_incoming / (N + 1).
    std::uint32_t window() const;
    std::uint32_t max_sched_prio() const { return max_sched_prio_; }
    // New cutoffs moved the boundary between scheduled and unscheduled
    // levels; later grants use `m` (clamped to 7).
    void set_max_sched_prio(std::uint32_t m) { max_sched_prio_ = m < 7 ? m : 7; }
    // Zero when FIFO grants are disabled.
    Duration fifo_interval() const { return fifo_interval_; }

    // When a FIFO grant may next be due; `never` if FIFO grants are disabled
    // or no managed message is short of its full grant.
    Instant next_deadline() const;
    // Makes the FIFO grant that is due at `now`, if any.
    void handle_timeout(Instant now);

  private:
    struct PeerState;

    struct Message {
        GrantKey key = 0;
        PeerState* peer = nullptr;
        std::uint32_t length = 0;
        std::uint32_t granted = 0;
        std::uint32_t received = 0;
        std::uint32_t rec_incoming = 0;  // our share of total_incoming_
        Instant birth{};
        int slot = -1;  // index in active_, or -1 while waiting
        std::uint32_t remaining() const { return length - received; }
    };

    struct PeerState {
        PeerKey key = 0;
        std::uint32_t active = 0;       // messages of this peer in active_
        std::vector<Message*> waiting;  // inactive messages, best first
    };

    static bool outranks(const Message& a, const Message& b);
    static bool older(const Message& a, const Message& b);

    void refresh_incoming(Message& m);
    void set_granted(Message& m, std::uint32_t granted);
    void note_grantable_change(Instant now);

    int find_victim(const Message& m) const;
    void add_active(Message& m, int slot);
    void remove_active(int slot);
    void insert_waiting(Message& m);
    void erase_waiting(Message& m);
    void reposition_waiting(Message& m);
    // Puts `m` (inactive) into `slot`, demoting the slot's occupant if any.
    void activate(Message& m, int slot);
    void promote(Message& m);
    void promote_queued(int slot);
    void unmanage(Message& m, Instant now);

    std::uint32_t rank_of(const Message& m) const;
    std::uint8_t sched_priority(std::uint32_t rank) const;
    bool try_send(Message& m, bool check_needy, Instant now);
    void check_needy(Instant now);
    void check_fifo(Instant now);
    void push_grant(const Grant& grant);

    // Configuration.
    std::uint32_t window_param_;
    std::uint32_t max_incoming_;
    std::uint32_t max_overcommit_;
    std::uint32_t fifo_increment_;
    std::uint32_t max_sched_prio_;
    std::uint8_t fifo_priority_;
    Duration fifo_interval_{0};  // zero: FIFO grants disabled

    Metrics& metrics_;

    std::unordered_map<GrantKey, Message> messages_;
    std::unordered_map<PeerKey, PeerState> peers_;
    std::array<Message*, max_grants> active_{};
    std::uint32_t num_active_ = 0;
    std::uint32_t needy_ = 0;  // bit i: the message in active_[i] is needy
    std::int64_t total_incoming_ = 0;
    std::size_t ungranted_count_ = 0;  // managed messages with granted < length

    Instant fifo_due_{};
    Instant last_grantable_change_{};

    std::vector<Grant> grants_;
    std::size_t grants_head_ = 0;
};

}  // namespace uhoma::engine
