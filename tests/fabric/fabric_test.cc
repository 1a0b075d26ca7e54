// Tests of tests/support/fabric.cc, the deterministic multi-host fabric.
//
// Fake hosts stand in for the engine. Expected times are worked out by hand
// from the defaults: 25 Gb/s links (320 ps per byte), 500 ns propagation,
// 42 bytes of Ethernet framing and a 20-byte IPv4 header, so a 1438-byte
// Homa packet is 1500 bytes on the wire and takes exactly 480 ns.
#include "support/fabric.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <deque>
#include <functional>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <vector>

namespace {

using namespace std::chrono_literals;
using uhoma::engine::Address;
using uhoma::engine::Duration;
using uhoma::engine::Endpoint;
using uhoma::engine::Instant;
using uhoma::engine::never;
using uhoma::engine::Transmit;
using uhoma::testing::Direction;
using uhoma::testing::Fabric;
using uhoma::testing::FabricConfig;
using uhoma::testing::FabricHost;
using uhoma::testing::FaultConfig;
using uhoma::testing::HostConfig;
using uhoma::testing::HostId;
using uhoma::testing::no_host;
using uhoma::testing::TapEvent;
using uhoma::testing::TapKind;

using Bytes = std::vector<std::byte>;

constexpr std::size_t full_packet = 1438;  // 1500 bytes on the wire over IPv4
constexpr Duration full_packet_time = 480ns;
constexpr Duration propagation = 500ns;
constexpr Duration one_way_full = 2 * full_packet_time + 2 * propagation;  // 1960 ns

Instant at(Duration d) {
    return Instant{} + d;
}

const Address addr_a = Address::ipv4(10, 0, 0, 1);
const Address addr_b = Address::ipv4(10, 0, 0, 2);
const Address addr_c = Address::ipv4(10, 0, 0, 3);

// `size` bytes (at least 8) starting with `seq` little-endian, then a filler
// derived from it.
Bytes numbered(std::uint64_t seq, std::size_t size) {
    Bytes out(std::max<std::size_t>(size, 8));
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<std::byte>(i < 8 ? (seq >> (8 * i)) & 0xFF : (seq + i) & 0xFF);
    return out;
}

std::uint64_t seq_of(std::span<const std::byte> bytes) {
    std::uint64_t seq = 0;
    for (std::size_t i = 0; i < 8 && i < bytes.size(); ++i)
        seq |= std::uint64_t{std::to_integer<std::uint8_t>(bytes[i])} << (8 * i);
    return seq;
}

struct Received {
    Bytes bytes;
    Address source;
    Instant time;
};

// A scriptable host: sends what is queued (or `generate_count` numbered
// packets), records what it receives and its timeouts, and runs optional
// hooks. poll_transmit() reuses one buffer, so a fabric that kept the span
// instead of copying would deliver garbage. Like the engine it hands each
// packet over as a header (the first `header_bytes`, cutting the 8-byte
// sequence number in two) and a payload (the rest), so a fabric that did not
// join both parts would deliver wrong bytes.
class FakeHost : public FabricHost {
  public:
    struct Outgoing {
        Address destination;
        std::uint8_t priority = 0;
        Bytes bytes;
    };

    void queue(const Address& destination, std::uint8_t priority, Bytes bytes) {
        outbox.push_back(Outgoing{destination, priority, std::move(bytes)});
    }
    // `count` numbered packets (seq next_seq, next_seq + 1, ...) made on demand.
    void generate(const Address& destination, std::size_t count, std::size_t size,
                  std::uint8_t priority = 0) {
        generate_destination = destination;
        generate_count = count;
        generate_size = size;
        generate_priority = priority;
    }

    void handle_packet(std::span<const std::byte> bytes, Address source, Instant now) override {
        received.push_back(Received{Bytes(bytes.begin(), bytes.end()), source, now});
        if (on_packet) on_packet(*this, received.back());
    }
    void handle_timeout(Instant now) override {
        timeouts.push_back(now);
        if (on_timeout)
            on_timeout(*this, now);
        else
            deadline = never;
    }
    std::optional<Transmit> poll_transmit(Instant) override {
        ++polls;
        std::fill(buffer.begin(), buffer.end(), std::byte{0xEE});  // poison the last one
        Outgoing next;
        if (!outbox.empty()) {
            next = std::move(outbox.front());
            outbox.pop_front();
        } else if (generate_count > 0) {
            --generate_count;
            next = Outgoing{generate_destination, generate_priority,
                            numbered(next_seq++, generate_size)};
        } else {
            return std::nullopt;
        }
        buffer = std::move(next.bytes);
        const std::span<const std::byte> bytes = buffer;
        const std::size_t split = std::min(header_bytes, bytes.size());
        return Transmit{Endpoint{next.destination, 1000}, next.priority, bytes.first(split),
                        bytes.subspan(split), nullptr};
    }
    Instant next_deadline() const override { return deadline; }

    std::deque<Outgoing> outbox;
    Address generate_destination;
    std::size_t generate_count = 0;
    std::size_t generate_size = 0;
    std::uint8_t generate_priority = 0;
    std::uint64_t next_seq = 0;
    std::size_t header_bytes = 5;

    Instant deadline = never;
    std::function<void(FakeHost&, const Received&)> on_packet;
    std::function<void(FakeHost&, Instant)> on_timeout;

    std::vector<Received> received;
    std::vector<Instant> timeouts;
    std::size_t polls = 0;

  private:
    Bytes buffer;
};

std::vector<std::uint64_t> seqs(const FakeHost& host) {
    std::vector<std::uint64_t> out;
    for (const Received& r : host.received) out.push_back(seq_of(r.bytes));
    return out;
}

std::vector<std::uint64_t> iota_seqs(std::size_t n) {
    std::vector<std::uint64_t> out(n);
    std::iota(out.begin(), out.end(), 0);
    return out;
}

// A recorded tap event (the bytes copied).
struct Tapped {
    Instant time;
    TapKind kind;
    std::uint64_t packet;
    HostId source;
    HostId destination;
    Direction link;
    std::uint8_t priority;
    Bytes bytes;
    bool operator==(const Tapped&) const = default;
};

std::vector<Tapped>* record_tap(Fabric& fabric, std::vector<Tapped>& into) {
    fabric.set_tap([&into](const TapEvent& e) {
        into.push_back(Tapped{e.time, e.kind, e.packet, e.source, e.destination, e.link, e.priority,
                              Bytes(e.bytes.begin(), e.bytes.end())});
    });
    return &into;
}

std::vector<Tapped> of_kind(const std::vector<Tapped>& events, TapKind kind) {
    std::vector<Tapped> out;
    for (const Tapped& e : events)
        if (e.kind == kind) out.push_back(e);
    return out;
}

// --- Timing -------------------------------------------------------------------

TEST(delivery__one_packet_takes_two_serializations_and_two_propagations, ipv4_full_packet) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hb = fabric.add_host(b, addr_b);
    const Bytes payload = numbered(7, full_packet);
    a.queue(addr_b, 0, payload);
    fabric.poke(ha);

    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 1u);
    EXPECT_EQ(b.received[0].time, at(one_way_full));
    EXPECT_EQ(b.received[0].time, at(1960ns));
    EXPECT_EQ(b.received[0].bytes, payload);
    EXPECT_EQ(b.received[0].source, addr_a);
    EXPECT_EQ(fabric.now(), at(1960ns));

    EXPECT_EQ(fabric.host_stats(ha).packets_sent, 1u);
    EXPECT_EQ(fabric.host_stats(ha).bytes_sent, full_packet);
    EXPECT_EQ(fabric.host_stats(hb).packets_delivered, 1u);
    EXPECT_EQ(fabric.host_stats(hb).bytes_delivered, full_packet);
    EXPECT_EQ(fabric.port_stats(hb).packets_forwarded, 1u);
    EXPECT_EQ(fabric.port_stats(hb).bytes_forwarded, full_packet + 20);
    EXPECT_EQ(fabric.port_stats(hb).max_queue_bytes, full_packet + 20);
    EXPECT_EQ(fabric.port_stats(hb).queue_bytes, 0u);
    EXPECT_EQ(fabric.stats().packets_sent, 1u);
    EXPECT_EQ(fabric.stats().packets_delivered, 1u);
}

TEST(delivery__one_packet_takes_two_serializations_and_two_propagations,
     fractional_nanoseconds_round_up_once) {
    // 1000 + 20 + 42 = 1062 bytes = 339.84 ns per link; 679.68 + 1000 ns
    // arrives at 1679.68 ns, which the host sees as 1680 ns.
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.queue(addr_b, 0, numbered(0, 1000));
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 1u);
    EXPECT_EQ(b.received[0].time, at(1680ns));
}

TEST(delivery__one_packet_takes_two_serializations_and_two_propagations,
     ipv6_adds_a_40_byte_header) {
    // 1418 + 40 + 42 = 1500 bytes: again 480 ns per link.
    Fabric fabric;
    FakeHost a, b;
    Address v6_a, v6_b;
    v6_a.bytes[0] = 0xfd;
    v6_a.bytes[15] = 1;
    v6_b.bytes[0] = 0xfd;
    v6_b.bytes[15] = 2;
    const HostId ha = fabric.add_host(a, v6_a);
    const HostId hb = fabric.add_host(b, v6_b);
    a.queue(v6_b, 0, numbered(0, 1418));
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 1u);
    EXPECT_EQ(b.received[0].time, at(1960ns));
    EXPECT_EQ(b.received[0].source, v6_a);
    EXPECT_EQ(fabric.port_stats(hb).bytes_forwarded, 1418u + 40);
    EXPECT_EQ(Fabric::ip_header_bytes(v6_b), 40u);
    EXPECT_EQ(Fabric::ip_header_bytes(addr_b), 20u);
}

TEST(delivery__one_packet_takes_two_serializations_and_two_propagations, per_host_link_config) {
    // Uplink 10 Gb/s (1200 ns) with 2 us propagation; downlink default.
    Fabric fabric;
    FakeHost a, b;
    HostConfig slow = FabricConfig{}.host_defaults();
    slow.uplink.rate_bps = 10'000'000'000;
    slow.uplink.propagation = 2us;
    const HostId ha = fabric.add_host(a, addr_a, slow);
    fabric.add_host(b, addr_b);
    a.queue(addr_b, 0, numbered(0, full_packet));
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 1u);
    EXPECT_EQ(b.received[0].time, at(1200ns + 2us + 480ns + 500ns));
}

TEST(nic__back_to_back_packets_pace_at_link_rate, whole_nanoseconds) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hb = fabric.add_host(b, addr_b);
    a.generate(addr_b, 10, full_packet);
    fabric.poke(ha);
    EXPECT_EQ(a.polls, 11u);  // everything handed over at once, then nullopt
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 10u);
    for (std::size_t k = 0; k < 10; ++k) {
        SCOPED_TRACE(k);
        EXPECT_EQ(b.received[k].time, at(one_way_full + static_cast<int>(k) * full_packet_time));
        EXPECT_EQ(seq_of(b.received[k].bytes), k);
    }
    EXPECT_EQ(fabric.host_stats(ha).max_nic_packets, 10u);
    EXPECT_EQ(fabric.host_stats(ha).max_nic_backlog, 10 * full_packet_time);
    // Equal rates: the switch never holds more than the packet on the wire.
    EXPECT_EQ(fabric.port_stats(hb).max_queue_bytes, full_packet + 20);
}

TEST(nic__back_to_back_packets_pace_at_link_rate, fractions_carry_without_drift) {
    // 339.84 ns per packet: packet k arrives at ceil((k + 2) * 339.84 + 1000) ns.
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    constexpr std::size_t n = 1000;
    a.generate(addr_b, n, 1000);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), n);
    for (std::size_t k = 0; k < n; ++k) {
        const std::int64_t picos = static_cast<std::int64_t>(k + 2) * 339'840 + 1'000'000;
        ASSERT_EQ(b.received[k].time, Instant{Duration{(picos + 999) / 1000}}) << k;
    }
}

TEST(nic__back_to_back_packets_pace_at_link_rate, slow_downlink_paces_delivery) {
    Fabric fabric;
    FakeHost a, b;
    HostConfig slow = FabricConfig{}.host_defaults();
    slow.downlink.rate_bps = 10'000'000'000;  // 1200 ns per full packet
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hb = fabric.add_host(b, addr_b, slow);
    a.generate(addr_b, 5, full_packet);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 5u);
    for (std::size_t k = 0; k < 5; ++k)
        EXPECT_EQ(b.received[k].time, at(480ns + 500ns + static_cast<int>(k + 1) * 1200ns + 500ns));
    // Arrivals every 480 ns, departures every 1200 ns: the port queue grows.
    EXPECT_GT(fabric.port_stats(hb).max_queue_bytes, 2 * (full_packet + 20));
}

TEST(nic_ring__full_ring_stops_polling_until_a_packet_leaves, same_timing_shorter_queue) {
    FabricConfig config;
    config.nic_ring_packets = 4;
    Fabric fabric(config);
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.generate(addr_b, 100, full_packet);
    fabric.poke(ha);
    EXPECT_EQ(a.polls, 4u);  // the ring is full: no fifth poll yet
    EXPECT_EQ(a.generate_count, 96u);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 100u);
    EXPECT_EQ(seqs(b), iota_seqs(100));
    EXPECT_EQ(fabric.host_stats(ha).max_nic_packets, 4u);
    // Refilled as each packet leaves, so the link never idles.
    EXPECT_EQ(b.received.back().time, at(one_way_full + 99 * full_packet_time));
}

TEST(poll_transmit__bytes_are_copied_before_the_next_call, distinct_payloads_survive) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    std::vector<Bytes> sent;
    for (std::uint64_t i = 0; i < 5; ++i) {
        sent.push_back(numbered(100 + i, 200 + 10 * i));
        a.queue(addr_b, 0, sent.back());
    }
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(b.received[i].bytes, sent[i]);
}

// --- Switch -------------------------------------------------------------------

TEST(switch__higher_priority_overtakes_queued_lower_priority, two_senders_one_receiver) {
    for (const std::uint8_t high : {std::uint8_t{7}, std::uint8_t{0}}) {
        SCOPED_TRACE(int{high});
        Fabric fabric;
        FakeHost a, b, r;
        const HostId ha = fabric.add_host(a, addr_a);
        const HostId hb = fabric.add_host(b, addr_b);
        fabric.add_host(r, addr_c);
        constexpr std::size_t lows = 20;
        for (std::uint64_t i = 0; i < lows; ++i) a.queue(addr_c, 0, numbered(i, full_packet));
        // Shorter, so it reaches the switch in the middle of a transmission.
        a.queue(addr_c, high, numbered(999, 1000));
        for (std::uint64_t i = 0; i < lows; ++i)
            b.queue(addr_c, 0, numbered(1000 + i, full_packet));
        std::vector<Tapped> events;
        record_tap(fabric, events);
        fabric.poke(ha);
        fabric.poke(hb);
        EXPECT_TRUE(fabric.run_until_idle(1ms));
        ASSERT_EQ(r.received.size(), 2 * lows + 1);

        // Position of the marked packet among the switch's enqueues and
        // forwards.
        const auto enqueued = of_kind(events, TapKind::enqueued);
        const auto forwarded = of_kind(events, TapKind::forwarded);
        const auto marked = [](const Tapped& e) { return seq_of(e.bytes) == 999; };
        const auto enq_at = static_cast<std::size_t>(
            std::find_if(enqueued.begin(), enqueued.end(), marked) - enqueued.begin());
        const auto fwd_at = static_cast<std::size_t>(
            std::find_if(forwarded.begin(), forwarded.end(), marked) - forwarded.begin());
        ASSERT_LT(enq_at, enqueued.size());
        ASSERT_LT(fwd_at, forwarded.size());
        EXPECT_EQ(enqueued[enq_at].priority, high);
        // Two 25 Gb/s senders into one 25 Gb/s port: A's last packet arrives
        // after all 40 low packets (20 of them still queued).
        EXPECT_EQ(enq_at, 2 * lows);
        if (high == 7) {
            // It reaches the switch at 20 * 480 + 339.84 + 500 ns, while the
            // 20th low packet is on the wire (10100..10580 ns), and goes
            // next: it overtakes the 20 low packets still queued.
            EXPECT_EQ(enqueued[enq_at].time, at(10440ns));
            EXPECT_EQ(fwd_at, lows);
            EXPECT_EQ(forwarded[fwd_at].time, at(10580ns));
            // In the tap stream, the first forward after its enqueue is it.
            auto it = std::find_if(events.begin(), events.end(), [](const Tapped& e) {
                return e.kind == TapKind::enqueued && seq_of(e.bytes) == 999;
            });
            it = std::find_if(it, events.end(),
                              [](const Tapped& e) { return e.kind == TapKind::forwarded; });
            ASSERT_NE(it, events.end());
            EXPECT_EQ(seq_of(it->bytes), 999u);
            EXPECT_EQ(seq_of(r.received[lows].bytes), 999u);
        } else {
            // Same priority: FIFO, so it leaves last.
            EXPECT_EQ(fwd_at, 2 * lows);
            EXPECT_EQ(seq_of(r.received.back().bytes), 999u);
        }
    }
}

TEST(switch__serves_priorities_strictly_from_7_down, fifo_within_a_level) {
    Fabric fabric;
    FakeHost a, r;
    HostConfig slow = FabricConfig{}.host_defaults();
    slow.downlink.rate_bps = 1'000'000'000;  // 12 us per packet: everything queues
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(r, addr_b, slow);
    for (std::uint64_t i = 0; i < 16; ++i)
        a.queue(addr_b, static_cast<std::uint8_t>(i % 8), numbered(i, full_packet));
    std::vector<Tapped> events;
    record_tap(fabric, events);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(10ms));
    // Packet 0 (level 0) is on the wire before the rest arrive; then level 7
    // first, oldest first within a level.
    const std::vector<std::uint64_t> expected = {0,  7, 15, 6, 14, 5, 13, 4,
                                                 12, 3, 11, 2, 10, 1, 9,  8};
    EXPECT_EQ(seqs(r), expected);
    std::vector<std::uint64_t> forwarded;
    for (const Tapped& e : of_kind(events, TapKind::forwarded))
        forwarded.push_back(seq_of(e.bytes));
    EXPECT_EQ(forwarded, expected);
}

TEST(switch__tail_drops_when_port_buffer_full, counted_per_port_and_priority) {
    // Downlink 2.5 Gb/s: 4800 ns per packet. Packet 1 reaches the switch at
    // 980 ns and is on the wire until 5780 ns; packets 2..10 arrive every
    // 480 ns up to 5300 ns. The buffer holds 3 packets (the one on the wire
    // counts), so packets 4..10 are dropped.
    Fabric fabric;
    FakeHost a, r;
    constexpr std::size_t ip_packet = full_packet + 20;
    HostConfig slow = FabricConfig{}.host_defaults();
    slow.downlink.rate_bps = 2'500'000'000;
    slow.port_buffer_bytes = 3 * ip_packet;
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hr = fabric.add_host(r, addr_b, slow);
    a.generate(addr_b, 10, full_packet, 3);
    std::vector<Tapped> events;
    record_tap(fabric, events);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));

    EXPECT_EQ(seqs(r), (std::vector<std::uint64_t>{0, 1, 2}));
    EXPECT_EQ(fabric.stats().buffer_drops, 7u);
    EXPECT_EQ(fabric.port_stats(hr).buffer_drops[3], 7u);
    for (std::size_t level = 0; level < 8; ++level) {
        if (level != 3) {
            EXPECT_EQ(fabric.port_stats(hr).buffer_drops[level], 0u);
        }
    }
    EXPECT_EQ(fabric.port_stats(hr).max_queue_bytes, 3 * ip_packet);
    EXPECT_EQ(fabric.port_stats(hr).queue_bytes, 0u);
    const auto drops = of_kind(events, TapKind::buffer_drop);
    ASSERT_EQ(drops.size(), 7u);
    EXPECT_EQ(seq_of(drops[0].bytes), 3u);
    EXPECT_EQ(drops[0].time, at(980ns + 3 * 480ns));
    EXPECT_EQ(fabric.packets_in_flight(), 0u);
}

TEST(switch__tail_drops_when_port_buffer_full, two_senders_conserve_packets) {
    FabricConfig config;
    config.port_buffer_bytes = 5 * (1000 + 20);
    Fabric fabric(config);
    FakeHost a, b, r;
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hb = fabric.add_host(b, addr_b);
    const HostId hr = fabric.add_host(r, addr_c);
    a.generate(addr_c, 40, 1000, 1);
    b.generate(addr_c, 40, 1000, 6);
    b.next_seq = 1000;
    fabric.poke(ha);
    fabric.poke(hb);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    const auto& port = fabric.port_stats(hr);
    EXPECT_GT(fabric.stats().buffer_drops, 0u);
    EXPECT_EQ(r.received.size() + fabric.stats().buffer_drops, 80u);
    EXPECT_EQ(port.buffer_drops[1] + port.buffer_drops[6], fabric.stats().buffer_drops);
    EXPECT_LE(port.max_queue_bytes, config.port_buffer_bytes);
    EXPECT_EQ(port.packets_forwarded, r.received.size());
}

TEST(routing__unknown_destination_is_dropped_and_counted, at_the_switch) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.queue(Address::ipv4(10, 9, 9, 9), 0, numbered(1, 100));
    a.queue(addr_b, 0, numbered(2, 100));
    std::vector<Tapped> events;
    record_tap(fabric, events);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    EXPECT_EQ(fabric.stats().unroutable, 1u);
    EXPECT_EQ(seqs(b), std::vector<std::uint64_t>{2});
    const auto dropped = of_kind(events, TapKind::unroutable);
    ASSERT_EQ(dropped.size(), 1u);
    EXPECT_EQ(dropped[0].destination, no_host);
    EXPECT_EQ(fabric.find_host(addr_b), std::optional<HostId>{1});
    EXPECT_EQ(fabric.find_host(Address::ipv4(10, 9, 9, 9)), std::nullopt);
}

TEST(priority__values_above_7_are_taken_modulo_8, and_counted) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.queue(addr_b, 9, numbered(1, 100));
    std::vector<Tapped> events;
    record_tap(fabric, events);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    EXPECT_EQ(fabric.host_stats(ha).invalid_priority, 1u);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0].priority, 1);
    EXPECT_EQ(b.received.size(), 1u);
}

TEST(tap__reports_the_life_of_a_packet, sent_enqueued_forwarded_delivered) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hb = fabric.add_host(b, addr_b);
    a.queue(addr_b, 5, numbered(42, full_packet));
    std::vector<Tapped> events;
    record_tap(fabric, events);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(events.size(), 4u);
    const std::vector<TapKind> kinds = {TapKind::sent, TapKind::enqueued, TapKind::forwarded,
                                        TapKind::delivered};
    const std::vector<Instant> times = {at(0ns), at(980ns), at(980ns), at(1960ns)};
    for (std::size_t i = 0; i < 4; ++i) {
        SCOPED_TRACE(uhoma::testing::to_string(kinds[i]));
        EXPECT_EQ(events[i].kind, kinds[i]);
        EXPECT_EQ(events[i].time, times[i]);
        EXPECT_EQ(events[i].packet, 1u);
        EXPECT_EQ(events[i].source, ha);
        EXPECT_EQ(events[i].destination, hb);
        EXPECT_EQ(events[i].priority, 5);
        EXPECT_EQ(seq_of(events[i].bytes), 42u);
    }
    EXPECT_EQ(events[0].link, Direction::uplink);
    EXPECT_EQ(events[3].link, Direction::downlink);
}

// --- Faults -------------------------------------------------------------------

TEST(fault_loss__rate_matches_configuration, over_100k_packets) {
    Fabric fabric(FabricConfig{}, 12345);
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    FaultConfig lossy;
    lossy.loss = 0.01;
    fabric.set_faults(ha, Direction::uplink, lossy);
    constexpr std::size_t n = 100'000;
    a.generate(addr_b, n, 64);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    const std::uint64_t lost = fabric.stats().lost;
    // Binomial(100000, 0.01): mean 1000, sd 31.5; allow 6 sd.
    EXPECT_GT(lost, 810u);
    EXPECT_LT(lost, 1190u);
    EXPECT_EQ(b.received.size() + lost, n);
    EXPECT_EQ(fabric.stats().packets_delivered, b.received.size());
    // Losses are spread out, not one burst: delivered seqs are increasing and
    // both halves lose some.
    const auto got = seqs(b);
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
    const auto half = std::lower_bound(got.begin(), got.end(), n / 2) - got.begin();
    EXPECT_LT(static_cast<std::size_t>(half), n / 2);
    EXPECT_LT(got.size() - static_cast<std::size_t>(half), n / 2);
}

TEST(fault_loss__rate_matches_configuration, loss_of_one_cuts_a_host_off) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hb = fabric.add_host(b, addr_b);
    FaultConfig cut;
    cut.loss = 1;
    fabric.set_faults(hb, Direction::downlink, cut);
    a.generate(addr_b, 10, 100);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    EXPECT_TRUE(b.received.empty());
    EXPECT_EQ(fabric.stats().lost, 10u);
    fabric.set_faults(hb, Direction::downlink, FaultConfig{});
    a.generate(addr_b, 10, 100);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    EXPECT_EQ(b.received.size(), 10u);
}

// Runs a busy 3-host workload with every fault enabled and returns the
// whole tap trace.
std::vector<Tapped> faulty_trace(std::uint64_t seed) {
    FabricConfig config;
    config.faults.loss = 0.05;
    config.faults.duplicate = 0.05;
    config.faults.reorder = 0.1;
    config.faults.reorder_delay_max = 3us;
    config.faults.corrupt = 0.05;
    config.port_buffer_bytes = 20'000;
    Fabric fabric(config, seed);
    FakeHost a, b, c;
    const HostId ha = fabric.add_host(a, addr_a);
    const HostId hb = fabric.add_host(b, addr_b);
    fabric.add_host(c, addr_c);
    c.on_packet = [](FakeHost& self, const Received& r) {  // echo
        self.queue(r.source, 2, r.bytes);
    };
    a.generate(addr_c, 3000, 700, 1);
    b.generate(addr_c, 3000, 300, 4);
    std::vector<Tapped> events;
    record_tap(fabric, events);
    fabric.poke(ha);
    fabric.poke(hb);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    EXPECT_GT(fabric.stats().lost, 0u);
    EXPECT_GT(fabric.stats().duplicated, 0u);
    EXPECT_GT(fabric.stats().reordered, 0u);
    EXPECT_GT(fabric.stats().corrupted, 0u);
    EXPECT_GT(fabric.stats().buffer_drops, 0u);
    return events;
}

TEST(fault_seed__runs_are_reproducible, same_seed_same_trace_other_seed_differs) {
    const auto first = faulty_trace(7);
    const auto again = faulty_trace(7);
    const auto other = faulty_trace(8);
    EXPECT_GT(first.size(), 20'000u);
    EXPECT_TRUE(first == again);
    EXPECT_FALSE(first == other);
}

TEST(fault_loss__rate_matches_configuration, same_seed_same_losses) {
    auto delivered = [](std::uint64_t seed) {
        FabricConfig config;
        config.faults.loss = 0.1;
        Fabric fabric(config, seed);
        FakeHost a, b;
        const HostId ha = fabric.add_host(a, addr_a);
        fabric.add_host(b, addr_b);
        a.generate(addr_b, 5000, 64);
        fabric.poke(ha);
        EXPECT_TRUE(fabric.run_until_idle(1s));
        return seqs(b);
    };
    EXPECT_EQ(delivered(1), delivered(1));
    EXPECT_NE(delivered(1), delivered(2));
}

TEST(fault_duplicate__delivers_twice, every_packet_when_certain) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    FaultConfig dup;
    dup.duplicate = 1;
    fabric.set_faults(ha, Direction::uplink, dup);
    a.generate(addr_b, 50, 500);
    std::vector<Tapped> events;
    record_tap(fabric, events);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    ASSERT_EQ(b.received.size(), 100u);
    for (std::size_t i = 0; i < 50; ++i) {
        EXPECT_EQ(seq_of(b.received[2 * i].bytes), i);
        EXPECT_EQ(b.received[2 * i].bytes, b.received[2 * i + 1].bytes);
    }
    EXPECT_EQ(fabric.stats().duplicated, 50u);
    EXPECT_EQ(fabric.stats().packets_sent, 50u);
    EXPECT_EQ(fabric.stats().packets_delivered, 100u);
    // Copies share the packet id.
    const auto delivered = of_kind(events, TapKind::delivered);
    EXPECT_EQ(delivered[0].packet, delivered[1].packet);
    EXPECT_EQ(fabric.packets_in_flight(), 0u);
}

TEST(fault_duplicate__delivers_twice, random_duplicates_are_accounted) {
    FabricConfig config;
    config.faults.duplicate = 0.2;
    Fabric fabric(config, 99);
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.generate(addr_b, 2000, 100);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    // Both links duplicate: 2000 * 1.2 * 1.2 = 2880 expected.
    EXPECT_EQ(b.received.size(), 2000 + fabric.stats().duplicated);
    EXPECT_GT(b.received.size(), 2700u);
    EXPECT_LT(b.received.size(), 3060u);
    const auto got = seqs(b);
    EXPECT_EQ(std::set<std::uint64_t>(got.begin(), got.end()).size(), 2000u);
}

TEST(fault_corrupt__changes_bytes, flips_exactly_corrupt_bits_bits) {
    for (const unsigned bits : {1u, 3u}) {
        SCOPED_TRACE(bits);
        Fabric fabric(FabricConfig{}, 5);
        FakeHost a, b;
        const HostId ha = fabric.add_host(a, addr_a);
        const HostId hb = fabric.add_host(b, addr_b);
        FaultConfig corrupt;
        corrupt.corrupt = 1;
        corrupt.corrupt_bits = bits;
        fabric.set_faults(hb, Direction::downlink, corrupt);
        constexpr std::size_t n = 200;
        a.generate(addr_b, n, 60);
        fabric.poke(ha);
        EXPECT_TRUE(fabric.run_until_idle(1ms));
        ASSERT_EQ(b.received.size(), n);
        EXPECT_EQ(fabric.stats().corrupted, n);
        for (std::size_t i = 0; i < n; ++i) {
            const Bytes original = numbered(i, 60);  // no reordering: order kept
            const Bytes& got = b.received[i].bytes;
            ASSERT_EQ(got.size(), original.size());
            int flipped = 0;
            for (std::size_t j = 0; j < got.size(); ++j)
                flipped += std::popcount(std::to_integer<unsigned>(got[j] ^ original[j]));
            EXPECT_EQ(flipped, static_cast<int>(bits)) << i;
        }
    }
}

TEST(fault_corrupt__changes_bytes, sometimes_at_the_configured_rate) {
    FabricConfig config;
    config.faults.corrupt = 0.1;
    Fabric fabric(config, 3);
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.generate(addr_b, 5000, 1000);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    std::size_t changed = 0;
    for (std::size_t i = 0; i < b.received.size(); ++i)
        if (b.received[i].bytes != numbered(i, 1000)) ++changed;
    // Two links at 10%: 1 - 0.9^2 = 19% of packets; a bit flipped twice
    // back is possible but rare.
    EXPECT_GT(changed, 850u);
    EXPECT_LT(changed, 1050u);
    EXPECT_GE(fabric.stats().corrupted, changed);
}

TEST(fault_reorder__changes_order, without_loss) {
    for (const double reorder : {0.0, 0.3}) {
        SCOPED_TRACE(reorder);
        Fabric fabric(FabricConfig{}, 11);
        FakeHost a, b;
        const HostId ha = fabric.add_host(a, addr_a);
        fabric.add_host(b, addr_b);
        FaultConfig faults;
        faults.reorder = reorder;
        faults.reorder_delay_max = 5us;
        fabric.set_faults(ha, Direction::uplink, faults);
        constexpr std::size_t n = 1000;
        a.generate(addr_b, n, 200);
        fabric.poke(ha);
        EXPECT_TRUE(fabric.run_until_idle(1s));
        auto got = seqs(b);
        ASSERT_EQ(got.size(), n);
        if (reorder > 0) {
            EXPECT_FALSE(std::is_sorted(got.begin(), got.end()));
            EXPECT_GT(fabric.stats().reordered, 200u);
            EXPECT_LT(fabric.stats().reordered, 400u);
        } else {
            EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
            EXPECT_EQ(fabric.stats().reordered, 0u);
        }
        std::sort(got.begin(), got.end());
        EXPECT_EQ(got, iota_seqs(n));
    }
}

TEST(fault_config__invalid_values_throw, probabilities_and_rates) {
    Fabric fabric;
    FakeHost a;
    const HostId ha = fabric.add_host(a, addr_a);
    FaultConfig bad;
    bad.loss = 1.5;
    EXPECT_THROW(fabric.set_faults(ha, Direction::uplink, bad), std::invalid_argument);
    bad = FaultConfig{};
    bad.reorder = 0.5;
    bad.reorder_delay_max = 0ns;
    EXPECT_THROW(fabric.set_faults(ha, Direction::downlink, bad), std::invalid_argument);
    FabricConfig zero_rate;
    zero_rate.link.rate_bps = 0;
    EXPECT_THROW(Fabric{zero_rate}, std::invalid_argument);
    FakeHost other;
    EXPECT_THROW(fabric.add_host(other, addr_a), std::invalid_argument);
    EXPECT_THROW((void)fabric.host_stats(5), std::out_of_range);
}

// --- Running ------------------------------------------------------------------

TEST(run_until_idle__true_for_finite_traffic, echo_round_trips) {
    Fabric fabric;
    FakeHost client, server;
    const HostId hc = fabric.add_host(client, addr_a);
    const HostId hs = fabric.add_host(server, addr_b);
    server.on_packet = [](FakeHost& self, const Received& r) { self.queue(r.source, 0, r.bytes); };
    for (std::uint64_t i = 0; i < 5; ++i) client.queue(addr_b, 0, numbered(i, full_packet));
    fabric.poke(hc);
    EXPECT_FALSE(fabric.idle());
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    EXPECT_TRUE(fabric.idle());
    ASSERT_EQ(client.received.size(), 5u);
    EXPECT_EQ(seqs(client), iota_seqs(5));
    EXPECT_EQ(client.received[0].time, at(2 * one_way_full));
    EXPECT_EQ(client.received[0].source, addr_b);
    EXPECT_EQ(client.received[4].time, at(2 * one_way_full + 4 * full_packet_time));
    EXPECT_EQ(fabric.now(), client.received[4].time);
    EXPECT_EQ(fabric.host_stats(hs).packets_sent, 5u);
    EXPECT_EQ(fabric.host_stats(hc).packets_delivered, 5u);
    // Idle with nothing to do returns at once without moving time.
    EXPECT_TRUE(fabric.run_until_idle(1ms));
    EXPECT_EQ(fabric.now(), client.received[4].time);
}

TEST(run_until_idle__false_when_a_host_never_goes_idle, limit_hit) {
    Fabric fabric;
    FakeHost busy;
    busy.deadline = at(1us);
    busy.on_timeout = [](FakeHost& self, Instant now) { self.deadline = now + 1us; };
    fabric.add_host(busy, addr_a);
    EXPECT_FALSE(fabric.run_until_idle(100us));
    EXPECT_EQ(fabric.now(), at(100us));
    EXPECT_EQ(busy.timeouts.size(), 100u);
    EXPECT_FALSE(fabric.idle());
}

TEST(run_until_idle__false_when_a_host_never_goes_idle, endless_ping_pong) {
    Fabric fabric;
    FakeHost a, b;
    auto bounce = [](FakeHost& self, const Received& r) { self.queue(r.source, 0, r.bytes); };
    a.on_packet = bounce;
    b.on_packet = bounce;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.queue(addr_b, 0, numbered(0, full_packet));
    fabric.poke(ha);
    EXPECT_FALSE(fabric.run_until_idle(100us));
    EXPECT_EQ(fabric.now(), at(100us));
    // 1960 ns per hop: 51 hops done by 100 us (a receives 25, b 26).
    EXPECT_EQ(a.received.size() + b.received.size(), 51u);
}

TEST(run_until__stops_when_the_predicate_holds, or_returns_false_at_the_limit) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.generate(addr_b, 10, full_packet);
    fabric.poke(ha);
    EXPECT_TRUE(fabric.run_until([&] { return b.received.size() == 3; }, 1ms));
    EXPECT_EQ(fabric.now(), at(one_way_full + 2 * full_packet_time));
    EXPECT_EQ(b.received.size(), 3u);
    EXPECT_FALSE(fabric.run_until([&] { return b.received.size() == 11; }, 1ms));
    EXPECT_EQ(fabric.now(), at(one_way_full + 2 * full_packet_time + 1ms));
    EXPECT_EQ(b.received.size(), 10u);
}

TEST(run_until__instant_runs_events_up_to_and_including_it, and_sets_now) {
    Fabric fabric;
    FakeHost a, b;
    const HostId ha = fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    a.queue(addr_b, 0, numbered(0, full_packet));
    fabric.poke(ha);
    fabric.run_until(at(1959ns));
    EXPECT_TRUE(b.received.empty());
    EXPECT_EQ(fabric.now(), at(1959ns));
    EXPECT_EQ(fabric.packets_in_flight(), 1u);
    fabric.run_until(at(1960ns));
    EXPECT_EQ(b.received.size(), 1u);
    fabric.run_for(1us);
    EXPECT_EQ(fabric.now(), at(2960ns));
    fabric.run_until(at(5ns));  // never backwards
    EXPECT_EQ(fabric.now(), at(2960ns));
}

TEST(timers__fire_at_next_deadline, and_follow_changes) {
    FabricConfig config;
    config.start = at(1ms);
    Fabric fabric(config);
    EXPECT_EQ(fabric.now(), at(1ms));
    FakeHost h;
    h.deadline = at(1ms + 5us);
    h.on_timeout = [](FakeHost& self, Instant now) {
        self.deadline = self.timeouts.size() == 1 ? now + 7us : never;
    };
    const HostId id = fabric.add_host(h, addr_a);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    EXPECT_EQ(h.timeouts, (std::vector<Instant>{at(1ms + 5us), at(1ms + 12us)}));
    EXPECT_EQ(fabric.host_stats(id).timeouts, 2u);
    EXPECT_EQ(fabric.now(), at(1ms + 12us));

    // Moved by a direct call plus poke(): only the new deadline fires.
    h.on_timeout = nullptr;
    h.deadline = at(1ms + 30us);
    fabric.poke(id);
    h.deadline = at(1ms + 20us);
    fabric.poke(id);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    EXPECT_EQ(h.timeouts.back(), at(1ms + 20us));
    EXPECT_EQ(h.timeouts.size(), 3u);

    // Moved later without a poke: the old event finds it not yet due.
    h.deadline = at(1ms + 40us);
    fabric.poke(id);
    h.deadline = at(1ms + 45us);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    EXPECT_EQ(h.timeouts.back(), at(1ms + 45us));
    EXPECT_EQ(h.timeouts.size(), 4u);

    // Set without poke while the fabric is idle: run_until_idle finds it.
    h.deadline = at(1ms + 60us);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    EXPECT_EQ(h.timeouts.back(), at(1ms + 60us));

    // A deadline in the past fires now.
    h.deadline = at(1ms);
    fabric.poke(id);
    fabric.run_until(fabric.now());
    EXPECT_EQ(h.timeouts.back(), at(1ms + 60us));
    EXPECT_EQ(h.timeouts.size(), 6u);
}

TEST(timers__fire_at_next_deadline, packets_and_timers_interleave) {
    // A host that sends one packet per timeout, every 10 us.
    Fabric fabric;
    FakeHost a, b;
    a.deadline = at(10us);
    a.on_timeout = [](FakeHost& self, Instant now) {
        self.queue(addr_b, 0, numbered(self.timeouts.size(), full_packet));
        self.deadline = self.timeouts.size() < 3 ? now + 10us : never;
    };
    fabric.add_host(a, addr_a);
    fabric.add_host(b, addr_b);
    EXPECT_TRUE(fabric.run_until_idle(1s));
    ASSERT_EQ(b.received.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i)
        EXPECT_EQ(b.received[i].time, at(static_cast<int>(i + 1) * 10us + one_way_full));
}

TEST(timers__fire_at_next_deadline, a_deadline_stuck_in_the_past_retries_each_ns) {
    Fabric fabric;
    FakeHost stuck;
    stuck.deadline = at(0ns);
    stuck.on_timeout = [](FakeHost&, Instant) {};  // never moves it
    fabric.add_host(stuck, addr_a);
    fabric.run_until(at(10ns));
    ASSERT_EQ(stuck.timeouts.size(), 11u);
    for (std::size_t i = 0; i < 11; ++i)
        EXPECT_EQ(stuck.timeouts[i], at(std::chrono::nanoseconds{i}));
}

}  // namespace
