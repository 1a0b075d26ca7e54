// Transmission (src/engine/engine_tx.cc): the zero-copy shape of the packets
// poll_transmit hands out. A DATA packet is its encoded header plus a span of
// the RPC's message storage with a reference that keeps the storage alive;
// these tests pin down that the bytes on the wire are exactly what encoding
// the whole packet gives, that the payload is the message itself (not a
// copy), and that it survives the RPC being aborted before the runtime sends
// it (which runs outside the engine lock). Under AddressSanitizer a payload
// read after the storage was freed fails the test outright.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <span>
#include <vector>

#include "engine/harness.h"

namespace uhoma::testing {
namespace {

// A DATA packet held past later engine calls, as the runtime holds one
// between collect_transmits and send_collected: the header copied at once
// (it is only valid until the next call), the payload by reference.
struct Held {
    std::vector<std::byte> header;
    std::span<const std::byte> payload;
    std::shared_ptr<const void> keep;
};

engine::Config all_unscheduled() {
    engine::Config config;
    config.unsched_bytes = 1000000;  // every byte may go without grants
    config.flags |= engine::Config::dont_throttle_flag;  // and at once
    return config;
}

std::unique_ptr<Engine> make_engine(const engine::Config& config, std::uint8_t last_octet) {
    engine::EngineOptions options;
    options.local_address = Address::ipv4(10, 0, 0, last_octet);
    return Engine::create(config, options).value();
}

const Endpoint server{Address::ipv4(10, 0, 0, 2), 99};

TEST(EngineTx, poll_transmit__data_is_encoded_header_plus_a_span_of_the_message) {
    auto e = make_engine(all_unscheduled(), 1);
    const SocketId s = e->open_socket().value();
    const Instant now{};
    const std::vector<std::byte> message = pattern(10000, 3);
    ASSERT_TRUE(e->send_request(s, server, message, 0, false, now).has_value());

    std::size_t offset = 0;
    const std::byte* previous_end = nullptr;
    const void* storage = nullptr;
    while (auto t = e->poll_transmit(now)) {
        ASSERT_EQ(t->header.size(), wire::data_header_size);
        ASSERT_NE(t->keep, nullptr);
        // Every packet of the message shares one storage, held by the RPC.
        if (storage == nullptr) storage = t->keep.get();
        EXPECT_EQ(t->keep.get(), storage);
        // The payload is the message's bytes at the packet's offset, and
        // consecutive payloads are adjacent: one buffer, not per-packet copies.
        ASSERT_LE(offset + t->payload.size(), message.size());
        EXPECT_TRUE(std::equal(t->payload.begin(), t->payload.end(),
                               message.begin() + static_cast<std::ptrdiff_t>(offset)));
        if (previous_end != nullptr) {
            EXPECT_EQ(t->payload.data(), previous_end);
        }
        previous_end = t->payload.data() + t->payload.size();

        // The joined bytes are exactly what encoding the whole packet gives.
        const std::vector<std::byte> bytes = engine::packet_bytes(*t);
        auto decoded = wire::decode(bytes);
        ASSERT_TRUE(decoded.has_value());
        const auto& data = std::get<wire::DataPacket>(*decoded);
        EXPECT_EQ(data.offset, offset);
        std::vector<std::byte> encoded(bytes.size() + 16);
        auto size = wire::encode(*decoded, encoded);
        ASSERT_TRUE(size.has_value());
        encoded.resize(*size);
        EXPECT_EQ(bytes, encoded);
        offset += t->payload.size();
    }
    EXPECT_EQ(offset, message.size());
    EXPECT_EQ(e->metrics().data_xmit_errors, 0u);
}

TEST(EngineTx, poll_transmit__payload_outlives_an_rpc_aborted_before_the_send) {
    auto e = make_engine(all_unscheduled(), 1);
    const SocketId s = e->open_socket().value();
    const Instant now{};
    const std::vector<std::byte> message = pattern(20000, 5);
    const engine::RpcId id = e->send_request(s, server, message, 0, false, now).value();

    std::vector<Held> held;
    for (int i = 0; i < 5; ++i) {
        auto t = e->poll_transmit(now);
        ASSERT_TRUE(t.has_value());
        held.push_back(Held{{t->header.begin(), t->header.end()}, t->payload, t->keep});
    }
    // The application aborts the RPC while the packets are on their way to
    // the kernel; the engine frees the RPC at once.
    ASSERT_TRUE(e->abort(s, id, 0, now).has_value());
    EXPECT_EQ(e->rpc_count(), 0u);
    EXPECT_FALSE(e->poll_transmit(now).has_value());
    // The engine dropped its reference: only the held packets own the bytes.
    EXPECT_EQ(held.front().keep.use_count(), static_cast<long>(held.size()));
    // New messages must not land in the old storage.
    const std::vector<std::byte> other = pattern(20000, 6);
    ASSERT_TRUE(e->send_request(s, server, other, 0, false, now).has_value());
    while (e->poll_transmit(now)) {
    }

    std::size_t offset = 0;
    for (const Held& h : held) {
        ASSERT_LE(offset + h.payload.size(), message.size());
        EXPECT_TRUE(std::equal(h.payload.begin(), h.payload.end(),
                               message.begin() + static_cast<std::ptrdiff_t>(offset)))
            << "payload at offset " << offset;
        std::vector<std::byte> bytes = h.header;
        bytes.insert(bytes.end(), h.payload.begin(), h.payload.end());
        auto decoded = wire::decode(bytes);
        ASSERT_TRUE(decoded.has_value());
        EXPECT_EQ(std::get<wire::DataPacket>(*decoded).offset, offset);
        offset += h.payload.size();
    }
    EXPECT_GT(offset, 0u);
}

TEST(EngineTx, poll_transmit__payload_outlives_a_closed_socket) {
    auto e = make_engine(all_unscheduled(), 1);
    const SocketId s = e->open_socket().value();
    const Instant now{};
    const std::vector<std::byte> message = pattern(5000, 7);
    ASSERT_TRUE(e->send_request(s, server, message, 0, false, now).has_value());
    auto t = e->poll_transmit(now);
    ASSERT_TRUE(t.has_value());
    const std::span<const std::byte> payload = t->payload;
    const std::shared_ptr<const void> keep = t->keep;
    e->close_socket(s, now);
    EXPECT_EQ(e->rpc_count(), 0u);
    EXPECT_EQ(keep.use_count(), 2);  // `keep` and the Transmit still in `t`
    t.reset();
    EXPECT_EQ(keep.use_count(), 1);
    ASSERT_FALSE(payload.empty());
    EXPECT_TRUE(std::equal(payload.begin(), payload.end(), message.begin()));
}

TEST(EngineTx, poll_transmit__control_packets_are_header_only) {
    // A message longer than the unscheduled bytes makes the receiver GRANT.
    engine::Config config;
    config.flags |= engine::Config::dont_throttle_flag;
    auto client = make_engine(config, 1);
    auto receiver = make_engine(config, 2);
    const SocketId c = client->open_socket().value();
    const SocketId r = receiver->open_socket().value();
    ASSERT_TRUE(receiver->bind(r, server.port).has_value());
    std::vector<std::byte> region(4u << 20);
    const Instant now{};
    ASSERT_TRUE(receiver->set_receive_buffer(r, region, now).has_value());
    ASSERT_TRUE(client->send_request(c, server, pattern(200000, 9), 0, false, now).has_value());
    while (auto t = client->poll_transmit(now)) {
        receiver->handle_packet(engine::packet_bytes(*t), Address::ipv4(10, 0, 0, 1), now);
    }
    std::size_t grants = 0;
    while (auto t = receiver->poll_transmit(now)) {
        EXPECT_TRUE(t->payload.empty());
        EXPECT_EQ(t->keep, nullptr);
        const auto decoded = wire::decode(t->header);
        ASSERT_TRUE(decoded.has_value());
        if (wire::packet_type(*decoded) == wire::PacketType::grant) {
            ++grants;
            EXPECT_EQ(t->header.size(), wire::grant_size);
        }
    }
    EXPECT_GE(grants, 1u);
}

}  // namespace
}  // namespace uhoma::testing
