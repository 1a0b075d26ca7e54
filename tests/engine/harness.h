// A small deterministic network for engine unit tests: engines exchange
// packets through a FIFO with a fixed one-way delay, on a virtual clock.
// Tests inspect every packet and can drop chosen ones, which makes each
// retransmission path reachable exactly. (Timing-accurate links, switch
// queues and random faults live in tests/support/fabric.h.)
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <vector>

#include "engine/engine.h"
#include "wire/codec.h"

namespace uhoma::testing {

using namespace std::chrono_literals;
using engine::Address;
using engine::Config;
using engine::Duration;
using engine::Endpoint;
using engine::Engine;
using engine::Instant;
using engine::SocketId;

struct SentPacket {
    Instant time;
    Address source;
    Endpoint destination;
    std::uint8_t priority = 0;
    std::vector<std::byte> bytes;
    wire::Packet packet() const { return wire::decode(bytes).value(); }
    wire::PacketType type() const { return wire::packet_type(packet()); }
    template <typename T>
    T as() const {
        return std::get<T>(packet());
    }
};

struct TestHost {
    std::unique_ptr<Engine> engine;
    Address address;
    std::vector<std::byte> region;
    SocketId socket = 0;
    std::uint16_t port = 0;
};

inline std::vector<std::byte> pattern(std::size_t length, std::uint32_t seed) {
    std::vector<std::byte> bytes(length);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : bytes) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::byte>(x >> 24);
    }
    return bytes;
}

class Harness {
public:
    explicit Harness(Config config = {}, Duration delay = 5us) : config_(config), delay_(delay) {}

    // A host with one socket: a server bound to `port` if port != 0, else a
    // client with an automatic port. Each host gets a receive region.
    TestHost& add_host(std::uint8_t last_octet, std::uint16_t port,
                       std::size_t region_bytes = 4u << 20, std::uint64_t first_id = 2) {
        auto host = std::make_unique<TestHost>();
        host->address = Address::ipv4(10, 0, 0, last_octet);
        engine::EngineOptions options;
        options.local_address = host->address;
        options.first_client_id = first_id;
        host->engine = Engine::create(config_, options).value();
        host->socket = host->engine->open_socket().value();
        if (port != 0) {
            EXPECT_TRUE(host->engine->bind(host->socket, port).has_value());
        }
        host->port = *host->engine->port(host->socket);
        host->region.resize(region_bytes);
        if (region_bytes != 0) {
            EXPECT_TRUE(
                host->engine->set_receive_buffer(host->socket, host->region, now).has_value());
        }
        hosts_.push_back(std::move(host));
        return *hosts_.back();
    }

    Endpoint endpoint(const TestHost& h) const { return Endpoint{h.address, h.port}; }

    // Moves packets and fires timers until `done()` or `limit` of virtual time.
    bool run_until(const std::function<bool()>& done, Duration limit = 1s) {
        const Instant stop = now + limit;
        while (true) {
            drain_outputs();
            if (done()) return true;
            Instant next = engine::never;
            if (!in_flight_.empty()) next = in_flight_.top().at;
            for (auto& h : hosts_) next = std::min(next, h->engine->next_deadline());
            if (next == engine::never || next > stop) {
                now = std::max(now, std::min(next, stop));
                return done();
            }
            now = std::max(now, next);
            while (!in_flight_.empty() && in_flight_.top().at <= now) {
                Flight f = in_flight_.top();
                in_flight_.pop();
                if (TestHost* dst = host_at(f.packet.destination.address)) {
                    dst->engine->handle_packet(f.packet.bytes, f.packet.source, now);
                }
            }
            for (auto& h : hosts_) {
                if (h->engine->next_deadline() <= now) h->engine->handle_timeout(now);
            }
        }
    }
    // Runs until no packets are in flight and no engine has a deadline.
    bool run_until_idle(Duration limit = 1s) {
        return run_until([this] { return idle(); }, limit);
    }
    bool idle() const {
        if (!in_flight_.empty()) return false;
        for (auto& h : hosts_) {
            if (h->engine->next_deadline() != engine::never) return false;
        }
        return true;
    }

    // Drops the packets for which `drop` returns true (checked once per packet).
    std::function<bool(const SentPacket&)> drop;
    std::vector<SentPacket> sent;     // every packet put on the wire, in order
    std::vector<SentPacket> dropped;  // those the filter dropped
    Instant now{};

    std::vector<SentPacket> sent_of(wire::PacketType type) const {
        std::vector<SentPacket> out;
        for (const auto& p : sent) {
            if (p.type() == type) out.push_back(p);
        }
        return out;
    }

private:
    struct Flight {
        Instant at;
        std::uint64_t seq;
        SentPacket packet;
        bool operator>(const Flight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
    };

    TestHost* host_at(const Address& a) {
        for (auto& h : hosts_) {
            if (h->address == a) return h.get();
        }
        return nullptr;
    }

    void drain_outputs() {
        for (auto& h : hosts_) {
            while (auto t = h->engine->poll_transmit(now)) {
                SentPacket p{now, h->address, t->destination, t->priority,
                             engine::packet_bytes(*t)};
                sent.push_back(p);
                if (drop && drop(p)) {
                    dropped.push_back(p);
                    continue;
                }
                in_flight_.push(Flight{now + delay_, seq_++, std::move(p)});
            }
        }
    }

    Config config_;
    Duration delay_;
    std::vector<std::unique_ptr<TestHost>> hosts_;
    std::priority_queue<Flight, std::vector<Flight>, std::greater<>> in_flight_;
    std::uint64_t seq_ = 0;
};

// Copies a received message out of the host's region.
inline std::vector<std::byte> message_bytes(const TestHost& h,
                                            const engine::ReceivedMessage& m) {
    std::vector<std::byte> out(m.length);
    for (std::uint32_t x = 0; x < m.length;) {
        const std::uint32_t chunk = x >> 16;
        const std::uint32_t n = std::min<std::uint32_t>(65536 - (x & 0xFFFF), m.length - x);
        std::memcpy(out.data() + x, h.region.data() + m.bpage_offsets[chunk] + (x & 0xFFFF), n);
        x += n;
    }
    return out;
}

}  // namespace uhoma::testing
