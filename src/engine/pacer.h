// Output pacing: the NIC queue estimate and the choice of which throttled
// message sends next (spec 5, legacy pacer; lessons 9-12 of spec 11).
//
// Design notes
// ------------
// A packet already in the NIC queue cannot be preempted, so a long queue
// breaks sender-side SRPT and short-message tail latency (5-10x worse P99
// without a limit, perf #30). The engine cannot see the NIC, so it keeps
// Linux's estimate: `link_idle` is when the NIC will have drained everything
// handed to it, advanced per packet by the packet's wire time at a bandwidth
// 1% below link_mbps (assuming 5% below cost up to 2x in large-message
// latency, perf #25). A packet may go out only while the estimated backlog
// is under max_nic_est_backlog_usecs (5 us). The qdisc's second limit (bytes
// the NIC has not completed, via DQL) needs the kernel and is not modelled.
//
// Arithmetic: the wire time of b bytes is b * 800000 / (99 * link_mbps) ns,
// exact to the bandwidth 0.99*link_mbps. link_idle is kept in whole
// nanoseconds plus the remainder as a fraction of a nanosecond, so a stream
// of packets never drifts however many are sent: after one 1500-byte wire
// packet at 25 Gbps link_idle is 484 ns ahead (484.85 exactly), after 33 it
// is exactly 16,000 ns ahead. (Linux multiplies the time by 1.01 instead of
// dividing the rate by 0.99, and truncates each packet to a clock tick; the
// difference is 0.01%.) When the link has gone idle (link_idle < now) the
// estimate restarts from `now` and the fraction is dropped.
//
// Boundaries: can_send is `backlog < max` (spec 5), so exactly 5 us of
// backlog blocks. An idle link (backlog 0) may always send, so a limit of 0
// means "one packet at a time" rather than "never". The
// HOMA_FLAG_DONT_THROTTLE bit of `flags` (2) turns the limit off, as in
// Linux's homa_pacer_check_nic_q: can_send is then always true, but on_send
// still tracks the estimate. Forced sends (retransmissions, the pacer's
// first packet) simply call on_send without asking can_send.
//
// What skips the pacer (bypasses_pacer) follows the legacy rule: DATA whose
// message has at most defer_min_bytes (1000) left to send; control packets
// never ask. Those packets still go through on_send, so they count in the
// estimate. Small packets cannot fill the NIC from one CPU and a pacer
// thread would become the bottleneck (perf #8, #30).
//
// PacerQueue picks which throttled message sends next: SRPT (fewest bytes
// remaining; ties to the older birth, then the smaller key) with
// pacer_fifo_fraction per mille of picks going to the oldest message, counted
// as legacy Linux counts (a credit starts at 1000, each pick subtracts the
// fraction, and a pick that takes it to <= 0 goes FIFO and adds 1000): with
// 50, picks 20, 40, 60, ... are FIFO, exactly 50 of every 1000. Entries live
// in a vector kept in SRPT order, so the SRPT pick is O(1); add, update and
// remove are O(n) moves within the vector, and only add can allocate (when
// the vector grows). The number of throttled messages is small (they are the
// long messages of one host with granted bytes), so linear work is cheaper
// than a tree and keeps the steady state allocation-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/config.h"
#include "engine/types.h"

namespace uhoma::engine {

// Bytes a packet of `homa_bytes` (Homa header and payload) occupies on the
// wire: + IP header (20, or 40 for IPv6) + 42 bytes of Ethernet overhead.
constexpr std::size_t wire_bytes(std::size_t homa_bytes, bool ipv6) {
    return homa_bytes + (ipv6 ? 40u : 20u) + 42u;
}

class NicQueue {
  public:
    explicit NicQueue(const Config& config);

    // True if a packet may be handed to the NIC now: the estimated backlog
    // is 0 or below max_nic_est_backlog_usecs, or throttling is disabled.
    bool can_send(Instant now) const;

    // Accounts for one packet (one wire segment) of `homa_bytes` handed to
    // the NIC at `now`: link_idle = max(now, link_idle) + wire time.
    void on_send(std::size_t homa_bytes, bool ipv6, Instant now);

    // The earliest time at which can_send is true; Instant::min() if it is
    // true at any time (nothing sent yet, or throttling disabled). May be in
    // the past.
    Instant ready_at() const;

    // Estimated time until the NIC drains what it was given; 0 if idle.
    Duration backlog(Instant now) const;

    // When the NIC will be idle, to the nanosecond below; Instant::min()
    // before the first packet.
    Instant link_idle() const { return link_idle_; }

    bool throttling_disabled() const { return dont_throttle_; }

  private:
    Duration max_backlog_;
    std::uint64_t units_per_ns_;  // 99 * link_mbps: wire time is in 1/units_per_ns_ ns
    bool dont_throttle_;
    Instant link_idle_ = Instant::min();
    std::uint64_t fraction_ = 0;  // beyond link_idle_, in 1/units_per_ns_ ns
};

// True if DATA of a message with `bytes_left_to_send` bytes still to send
// skips the pacer: at most defer_min_bytes (legacy rule).
bool bypasses_pacer(std::uint32_t bytes_left_to_send, const Config& config);

using PacerKey = std::uint64_t;

class PacerQueue {
  public:
    // `fifo_fraction`: per mille of picks that go to the oldest message
    // (pacer_fifo_fraction); values above 1000 act as 1000.
    explicit PacerQueue(std::uint32_t fifo_fraction = 50);
    explicit PacerQueue(const Config& config) : PacerQueue(config.pacer_fifo_fraction) {}

    // Adds a message. Returns false (and changes nothing) if `key` is
    // already present. May allocate.
    bool add(PacerKey key, std::uint64_t bytes_remaining, Instant birth);

    // Sets a message's bytes remaining. Returns false if `key` is unknown.
    bool update(PacerKey key, std::uint64_t bytes_remaining);

    // Removes a message. Returns false if `key` is unknown.
    bool remove(PacerKey key);

    // The message to send from next, counting one pick towards the FIFO
    // share; nullopt (not counted) if the queue is empty.
    std::optional<PacerKey> pick();

    // The SRPT head (fewest bytes remaining) without counting a pick: used to
    // let short messages bypass a busy NIC queue.
    struct Head {
        PacerKey key;
        std::uint64_t bytes_remaining;
    };
    std::optional<Head> shortest() const {
        if (entries_.empty()) return std::nullopt;
        return Head{entries_.front().key, entries_.front().bytes_remaining};
    }

    // Makes room for `count` messages, so that adding up to that many does
    // not allocate. May allocate.
    void reserve(std::size_t count) { entries_.reserve(count); }
    // Messages the queue holds room for; only add and reserve change it.
    std::size_t capacity() const { return entries_.capacity(); }

    bool contains(PacerKey key) const;
    std::size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }

  private:
    struct Entry {
        PacerKey key;
        std::uint64_t bytes_remaining;
        Instant birth;
    };
    static bool before(const Entry& a, const Entry& b);
    std::size_t find(PacerKey key) const;  // entries_.size() if absent

    std::vector<Entry> entries_;  // SRPT order
    std::int32_t fifo_fraction_;
    std::int32_t fifo_credit_ = 1000;
};

}  // namespace uhoma::engine
