// Deterministic randomness for property tests, and generators of random
// *valid* wire packets (values that validate() accepts).
//
// Every Rng starts from a fixed seed, so a failing iteration reproduces on
// every run; tests print the iteration number on failure.
#pragma once

#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>

#include "support/bytes.h"
#include "wire/packet.h"

namespace uhoma::test {

inline constexpr std::uint64_t default_seed = 0x5EED'0F'40'4A'11'2026;

class Rng {
  public:
    explicit Rng(std::uint64_t seed = default_seed) : engine_(seed) {}

    // Uniform in [lo, hi], both inclusive. Unsigned types only.
    template <typename T>
    T uniform(T lo, T hi) {
        static_assert(std::is_unsigned_v<T>, "Rng::uniform takes unsigned types");
        return static_cast<T>(std::uniform_int_distribution<std::uint64_t>{lo, hi}(engine_));
    }
    template <typename T>
    T any() {
        return uniform<T>(std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
    }
    // True with probability 1/n.
    bool one_in(std::uint64_t n) { return uniform<std::uint64_t>(1, n) == 1; }
    ByteVector bytes(std::size_t count);

    std::mt19937_64& engine() { return engine_; }

  private:
    std::mt19937_64 engine_;
};

// Field generators biased towards edge values (min, max, high bits) so that
// a few thousand iterations hit the boundaries.
std::uint16_t random_port(Rng& rng);                           // 1..65535
std::uint64_t random_rpc_id(Rng& rng, wire::PacketType type);  // valid for `type`
wire::Header random_header(Rng& rng, wire::PacketType type);
wire::Ack random_ack(Rng& rng);  // valid: empty, or even nonzero id and nonzero port

// A valid packet of each type. DATA needs somewhere for its payload:
// random_data() fills `payload_storage` and points the packet at it.
wire::DataPacket random_data(Rng& rng, ByteVector& payload_storage, std::size_t max_payload = 1500);
wire::GrantPacket random_grant(Rng& rng);
wire::ResendPacket random_resend(Rng& rng);
wire::RpcUnknownPacket random_rpc_unknown(Rng& rng);
wire::BusyPacket random_busy(Rng& rng);
wire::CutoffsPacket random_cutoffs(Rng& rng);
wire::FreezePacket random_freeze(Rng& rng);
wire::NeedAckPacket random_need_ack(Rng& rng);
wire::AckPacket random_ack_packet(Rng& rng);

}  // namespace uhoma::test
