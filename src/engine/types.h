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
#pragma once

#include <array>
#include <chrono>
#include <cstring>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

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

// One packet the engine wants sent. `priority` is the level a switch sees
// (already mapped through priority_map): the driver writes priority << 5 into
// the IP TOS / Traffic Class byte. `bytes` is the whole Homa packet and stays
// valid only until the next call into the engine.
struct Transmit {
    Endpoint destination;
    std::uint8_t priority = 0;
    std::span<const std::byte> bytes;
};

}  // namespace uhoma::engine
