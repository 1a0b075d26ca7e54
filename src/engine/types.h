// Basic engine types: time, addresses, ids, errors.
//
// Design notes
// ------------
// The engine never reads a clock. Every entry point takes `now`, an Instant on
// a clock the caller owns (CLOCK_MONOTONIC in the runtime, the virtual clock
// in tests and ns-3). Instants and durations are std::chrono types in
// nanoseconds, so units cannot be mixed up and arithmetic costs nothing.
//
// Addresses are kept as IPv6, with IPv4 peers IPv4-mapped (::ffff:a.b.c.d),
// as Linux Homa does, so one peer table serves both families.
//
// A Transmit is a packet in two parts so that DATA payloads are never copied
// in user space after send_request/send_reply took the application's bytes:
// the engine encodes only the (small) header into its own buffer and hands
// over a span of the RPC's message storage as the payload, with a
// shared-ownership handle on that storage. A runtime copies the header,
// keeps the handle and the span, releases the engine lock and lets the
// kernel gather both parts (one iovec each): the payload stays valid and
// unchanged even if the RPC ends or is aborted before the send, because the
// engine never writes into message storage after creating it and frees it
// only with its last owner. Copying the handle is one atomic increment; the
// storage is allocated once per message, never per packet.
#pragma once

#include <array>
#include <chrono>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace uhoma::engine {

// A clock that cannot be read: it only gives Instants a distinct type.
struct EngineClock {
    using rep = std::int64_t;
    using period = std::nano;
    using duration = std::chrono::nanoseconds;
    using time_point = std::chrono::time_point<EngineClock, duration>;
    static constexpr bool is_steady = true;
};
using Instant = EngineClock::time_point;
using Duration = std::chrono::nanoseconds;

inline constexpr Instant never = Instant::max();

struct Address {
    std::array<std::uint8_t, 16> bytes{};

    static Address ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
        return Address{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}};
    }
    static Address ipv4(std::uint32_t host_order) {
        return ipv4(static_cast<std::uint8_t>(host_order >> 24),
                    static_cast<std::uint8_t>(host_order >> 16),
                    static_cast<std::uint8_t>(host_order >> 8),
                    static_cast<std::uint8_t>(host_order));
    }
    bool is_ipv4() const {
        for (int i = 0; i < 10; ++i)
            if (bytes[static_cast<std::size_t>(i)] != 0) return false;
        return bytes[10] == 0xff && bytes[11] == 0xff;
    }
    std::string to_string() const;
    friend bool operator==(const Address&, const Address&) = default;
    friend auto operator<=>(const Address&, const Address&) = default;
};

struct Endpoint {
    Address address;
    std::uint16_t port = 0;
    std::string to_string() const;
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
    friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

struct AddressHash {
    std::size_t operator()(const Address& a) const {
        std::uint64_t hi = 0, lo = 0;
        std::memcpy(&hi, a.bytes.data(), 8);
        std::memcpy(&lo, a.bytes.data() + 8, 8);
        const std::uint64_t h = (hi * 0x9E3779B97F4A7C15ull) ^ (lo * 0xC2B2AE3D27D4EB4Full);
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

using RpcId = std::uint64_t;
using SocketId = std::uint32_t;

// One packet the engine wants sent: the Homa packet is `header` followed by
// `payload` (a DATA packet's bytes; empty for control packets). `priority`
// is the level a switch sees (already mapped through priority_map): the
// driver writes priority << 5 into the IP TOS / Traffic Class byte.
//
// Lifetimes differ: `header` stays valid only until the next call into the
// engine; `payload` stays valid, byte for byte, for as long as a copy of
// `keep` exists (null when the payload is empty or owned by the caller, as
// in tests and tools that build Transmits themselves).
struct Transmit {
    Endpoint destination;
    std::uint8_t priority = 0;
    std::span<const std::byte> header;
    std::span<const std::byte> payload;
    std::shared_ptr<const void> keep;

    std::size_t size() const { return header.size() + payload.size(); }
};

// The whole packet as one contiguous copy (header then payload), for tests
// and tools that inspect wire bytes. Allocates: not for the packet path.
std::vector<std::byte> packet_bytes(const Transmit& transmit);

}  // namespace uhoma::engine
