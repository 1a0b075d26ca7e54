#include "support/random.h"

#include <algorithm>
#include <limits>

namespace uhoma::test {

using namespace uhoma::wire;

ByteVector Rng::bytes(std::size_t count) {
    ByteVector out(count);
    for (auto& b : out) b = static_cast<std::byte>(uniform<unsigned>(0, 255));
    return out;
}

namespace {

// Uniform most of the time; otherwise one of the bounds or a value with the
// top bit set.
template <typename T>
T edgy(Rng& rng, T lo, T hi) {
    switch (rng.uniform<unsigned>(0, 7)) {
        case 0:
            return lo;
        case 1:
            return hi;
        case 2: {
            constexpr T top = static_cast<T>(T{1} << (std::numeric_limits<T>::digits - 1));
            if (hi >= top) return rng.uniform<T>(std::max<T>(lo, top), hi);
            return rng.uniform(lo, hi);
        }
        default:
            return rng.uniform(lo, hi);
    }
}

}  // namespace

std::uint16_t random_port(Rng& rng) {
    return edgy<std::uint16_t>(rng, 1, std::numeric_limits<std::uint16_t>::max());
}

std::uint64_t random_rpc_id(Rng& rng, PacketType type) {
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    switch (type) {
        case PacketType::cutoffs:
        case PacketType::freeze:
            return edgy<std::uint64_t>(rng, 0, max);  // any id, 0 included
        case PacketType::ack:
            return edgy<std::uint64_t>(rng, 2, max) & ~std::uint64_t{1};  // client: even
        case PacketType::need_ack:
            return edgy<std::uint64_t>(rng, 2, max) | 1;  // server: odd
        default:
            return edgy<std::uint64_t>(rng, 2, max);
    }
}

Header random_header(Rng& rng, PacketType type) {
    return Header{random_port(rng), random_port(rng), random_rpc_id(rng, type)};
}

Ack random_ack(Rng& rng) {
    if (rng.one_in(4)) return Ack{};
    const std::uint64_t id =
        edgy<std::uint64_t>(rng, 2, std::numeric_limits<std::uint64_t>::max()) & ~std::uint64_t{1};
    return Ack{id, random_port(rng)};
}

DataPacket random_data(Rng& rng, ByteVector& payload_storage, std::size_t max_payload) {
    DataPacket d;
    d.header = random_header(rng, PacketType::data);
    d.message_length = edgy<std::uint32_t>(rng, 1, max_message_length);
    const std::size_t length =
        edgy<std::size_t>(rng, 1, std::min<std::size_t>(d.message_length, max_payload));
    d.offset = edgy<std::uint32_t>(rng, 0, d.message_length - static_cast<std::uint32_t>(length));
    d.incoming = rng.any<std::uint32_t>();
    d.ack = random_ack(rng);
    d.cutoff_version = rng.any<std::uint16_t>();
    d.retransmit = rng.one_in(2);
    payload_storage = rng.bytes(length);
    d.payload = payload_storage;
    return d;
}

GrantPacket random_grant(Rng& rng) {
    return GrantPacket{random_header(rng, PacketType::grant),
                       edgy<std::uint32_t>(rng, 0, std::numeric_limits<std::uint32_t>::max()),
                       rng.uniform<std::uint8_t>(0, num_priorities - 1)};
}

ResendPacket random_resend(Rng& rng) {
    ResendPacket r;
    r.header = random_header(rng, PacketType::resend);
    r.offset = edgy<std::uint32_t>(rng, 0, max_message_length);
    r.length = rng.one_in(4) ? resend_everything
                             : edgy<std::uint32_t>(rng, 0, max_message_length - r.offset);
    r.priority = rng.uniform<std::uint8_t>(0, num_priorities - 1);
    return r;
}

RpcUnknownPacket random_rpc_unknown(Rng& rng) {
    return RpcUnknownPacket{random_header(rng, PacketType::rpc_unknown)};
}

BusyPacket random_busy(Rng& rng) {
    return BusyPacket{random_header(rng, PacketType::busy)};
}

CutoffsPacket random_cutoffs(Rng& rng) {
    CutoffsPacket c;
    c.header = random_header(rng, PacketType::cutoffs);
    for (auto& cutoff : c.unsched_cutoffs) {
        cutoff = edgy<std::uint32_t>(rng, 0, std::numeric_limits<std::uint32_t>::max());
    }
    c.cutoff_version = rng.any<std::uint16_t>();
    return c;
}

FreezePacket random_freeze(Rng& rng) {
    return FreezePacket{random_header(rng, PacketType::freeze)};
}

NeedAckPacket random_need_ack(Rng& rng) {
    return NeedAckPacket{random_header(rng, PacketType::need_ack)};
}

AckPacket random_ack_packet(Rng& rng) {
    AckPacket a;
    a.header = random_header(rng, PacketType::ack);
    a.num_acks = rng.uniform<std::uint16_t>(0, max_acks_per_packet);
    // Slots past num_acks stay empty: they are not on the wire's meaning, and
    // the decoder leaves them default-constructed.
    for (std::size_t i = 0; i < a.num_acks; ++i) a.acks[i] = random_ack(rng);
    return a;
}

}  // namespace uhoma::test
