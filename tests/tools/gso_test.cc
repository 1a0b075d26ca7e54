// Tests of tools/uhoma-dump/gso: which UDP payloads are GSO trains, and how
// they split.
#include "uhoma-dump/gso.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <variant>

#include "tools_support.h"
#include "wire/codec.h"

namespace uhoma::dump {
namespace {

using tools_test::ByteVector;
using tools_test::concat;
using tools_test::encode;
using tools_test::gso_data_train;
using tools_test::gso_train;
using wire::Header;

// 56 + max_seg_data(1500, IPv4): what uhoma's engine sends at MTU 1500.
constexpr std::size_t default_segment = 56 + 1424;

wire::DataPacket message(std::uint32_t length, std::uint32_t offset = 0) {
    wire::DataPacket d;
    d.header = Header{40000, 99, 1234};
    d.message_length = length;
    d.incoming = length;
    d.offset = offset;
    return d;
}

// Checks that `train` holds DATA of `fields`' message at consecutive offsets
// with the given payload lengths.
void expect_data(const GsoTrain& train, const wire::DataPacket& fields,
                 const std::vector<std::size_t>& lengths) {
    ASSERT_EQ(train.packets.size(), lengths.size());
    ASSERT_EQ(train.pieces.size(), lengths.size());
    std::uint32_t offset = fields.offset;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        const auto* d = std::get_if<wire::DataPacket>(&train.packets[i]);
        ASSERT_NE(d, nullptr) << i;
        EXPECT_EQ(d->header, fields.header) << i;
        EXPECT_EQ(d->message_length, fields.message_length) << i;
        EXPECT_EQ(d->offset, offset) << i;
        EXPECT_EQ(d->payload.size(), lengths[i]) << i;
        EXPECT_EQ(train.pieces[i].size(), 56 + lengths[i]) << i;
        // The payload is the end of the piece it was decoded from.
        EXPECT_EQ(d->payload.data(), train.pieces[i].data() + 56) << i;
        offset += static_cast<std::uint32_t>(lengths[i]);
    }
}

TEST(gso, split_gso_train__five_full_data_packets_and_a_short_tail) {
    const wire::DataPacket fields = message(5 * 1424 + 300);
    const ByteVector bytes = gso_data_train(fields, 1424, 5, 300);
    ASSERT_EQ(bytes.size(), 5 * 1480 + 356u);
    auto train = split_gso_train(bytes, default_segment);
    ASSERT_TRUE(train);
    EXPECT_EQ(train->segment_size, 1480u);
    expect_data(*train, fields, {1424, 1424, 1424, 1424, 1424, 300});
}

TEST(gso, split_gso_train__data_mid_message_without_a_tail) {
    // Scheduled data from offset 40000, every piece full, the message going on.
    const wire::DataPacket fields = message(200000, 40000);
    auto train = split_gso_train(gso_data_train(fields, 1424, 11), default_segment);
    ASSERT_TRUE(train);
    expect_data(*train, fields, std::vector<std::size_t>(11, 1424));
}

TEST(gso, split_gso_train__non_default_segment_size_is_found_by_search) {
    // 56 + 1000 bytes a piece: 1480 does not fit, the scan finds 1056.
    const wire::DataPacket fields = message(10000, 2000);
    const ByteVector bytes = gso_data_train(fields, 1000, 4, 123);
    auto train = split_gso_train(bytes, default_segment);
    ASSERT_TRUE(train);
    EXPECT_EQ(train->segment_size, 1056u);
    expect_data(*train, fields, {1000, 1000, 1000, 1000, 123});
    // Larger than the default too: 56 + 8948 (MTU 9000 sender, dump at 1500).
    const wire::DataPacket jumbo = message(100000);
    train = split_gso_train(gso_data_train(jumbo, 8948, 3, 1), default_segment);
    ASSERT_TRUE(train);
    EXPECT_EQ(train->segment_size, 56 + 8948u);
    expect_data(*train, jumbo, {8948, 8948, 8948, 1});
}

TEST(gso, split_gso_train__smallest_train_two_one_byte_packets) {
    const wire::DataPacket fields = message(2);
    auto train = split_gso_train(gso_data_train(fields, 1, 2), default_segment);
    ASSERT_TRUE(train);
    EXPECT_EQ(train->segment_size, 57u);
    expect_data(*train, fields, {1, 1});
}

TEST(gso, split_gso_train__skips_a_decoy_header_inside_the_first_payload) {
    // The first packet's payload holds, at byte 500, a DATA header of the same
    // RPC with exactly the offset a 500-byte segment would give, but the rest
    // does not split at 500: the scan goes on and finds 1056.
    const wire::DataPacket fields = message(10000);
    ByteVector bytes = gso_data_train(fields, 1000, 3, 50);
    wire::DataPacket decoy = fields;
    decoy.offset = 500 - 56;
    decoy.payload = wire::Bytes(bytes).first(10);
    const ByteVector decoy_bytes = encode(decoy);
    std::copy(decoy_bytes.begin(), decoy_bytes.end(), bytes.begin() + 500);
    auto at_500 = wire::decode(wire::Bytes(bytes).subspan(500, 57));
    ASSERT_TRUE(at_500);
    ASSERT_EQ(std::get<wire::DataPacket>(*at_500).offset, 444u);        // a candidate, then
    ASSERT_FALSE(wire::decode(wire::Bytes(bytes).subspan(1000, 500)));  // a dead end
    auto train = split_gso_train(bytes, default_segment);
    ASSERT_TRUE(train);
    EXPECT_EQ(train->segment_size, 1056u);
    ASSERT_EQ(train->packets.size(), 4u);
}

TEST(gso, split_gso_train__single_data_packets_are_not_trains) {
    const wire::DataPacket fields = message(5000);
    // One packet, short and long (a 4000-byte payload on a jumbo link).
    EXPECT_FALSE(split_gso_train(gso_data_train(fields, 100, 1), default_segment));
    EXPECT_FALSE(split_gso_train(gso_data_train(fields, 1424, 1), default_segment));
    EXPECT_FALSE(split_gso_train(gso_data_train(fields, 4000, 1), default_segment));
    // Header only (empty payload), or too short for a header.
    ByteVector header_only = gso_data_train(fields, 1, 1);
    header_only.pop_back();
    EXPECT_FALSE(split_gso_train(header_only, default_segment));
    EXPECT_FALSE(split_gso_train(ByteVector(20), default_segment));
}

TEST(gso, split_gso_train__inconsistent_data_trains_do_not_split) {
    const wire::DataPacket fields = message(10000);
    const ByteVector good = gso_data_train(fields, 1424, 3, 100);
    ASSERT_TRUE(split_gso_train(good, default_segment));

    // The second packet's offset is wrong (in seg.offset and sequence).
    wire::DataPacket second = fields;
    second.offset = 5000;
    second.payload = wire::Bytes(good).subspan(1480 + 56, 1424);
    ByteVector wrong_offset = good;
    const ByteVector second_bytes = encode(second);
    std::copy(second_bytes.begin(), second_bytes.end(), wrong_offset.begin() + 1480);
    EXPECT_FALSE(split_gso_train(wrong_offset, default_segment));

    // Another RPC, another message length, another port in the second packet.
    for (int change = 0; change < 3; ++change) {
        wire::DataPacket other = fields;
        if (change == 0) other.header.sender_id = 1236;
        if (change == 1) other.message_length = 20000;
        if (change == 2) other.header.dport = 100;
        other.offset = 1424;
        const ByteVector mixed =
            concat(gso_data_train(fields, 1424, 1), gso_data_train(other, 1424, 1, 100));
        EXPECT_FALSE(split_gso_train(mixed, default_segment)) << change;
    }

    // The tail is header only: no split, whatever the segment size.
    ByteVector empty_tail = gso_data_train(fields, 1424, 3);
    wire::DataPacket tail = fields;
    tail.offset = 3 * 1424;
    tail.payload = wire::Bytes(good).first(1);
    ByteVector tail_bytes = encode(tail);
    tail_bytes.pop_back();
    EXPECT_FALSE(split_gso_train(concat(empty_tail, tail_bytes), default_segment));

    // The last packet runs past the end of the message: a train of a
    // 3048-byte message relabelled as 3000 bytes (0x0BB8) in every header.
    ByteVector past_end = gso_data_train(message(3048), 1424, 2, 200);
    for (std::size_t piece : {0u, 1480u, 2960u}) {
        past_end[piece + 30] = std::byte{0x0B};
        past_end[piece + 31] = std::byte{0xB8};
    }
    EXPECT_FALSE(split_gso_train(past_end, default_segment));
    EXPECT_EQ(wire::decode(past_end).error(), wire::Error::data_past_end);
}

TEST(gso, split_gso_train__tso_layout_is_left_alone) {
    // doff 0xD0 or a hijacked seg.offset: tso.h's business, even if the
    // bytes would split.
    ByteVector bytes = gso_data_train(message(10000), 1424, 3);
    ASSERT_TRUE(split_gso_train(bytes, default_segment));
    ByteVector tso = bytes;
    tso[12] = std::byte{wire::doff_tso};
    EXPECT_FALSE(split_gso_train(tso, default_segment));
    ByteVector hijacked = bytes;
    for (std::size_t i = 52; i < 56; ++i) hijacked[i] = std::byte{0xFF};
    EXPECT_FALSE(split_gso_train(hijacked, default_segment));
}

TEST(gso, split_gso_train__three_grants) {
    const ByteVector bytes = gso_train({wire::GrantPacket{Header{99, 40000, 1235}, 60000, 2},
                                        wire::GrantPacket{Header{99, 40000, 1237}, 10000, 3},
                                        wire::GrantPacket{Header{99, 40001, 1239}, 20000, 0}});
    ASSERT_EQ(bytes.size(), 99u);
    auto train = split_gso_train(bytes, default_segment);
    ASSERT_TRUE(train);
    EXPECT_EQ(train->segment_size, 33u);
    ASSERT_EQ(train->packets.size(), 3u);
    EXPECT_EQ(std::get<wire::GrantPacket>(train->packets[0]),
              (wire::GrantPacket{Header{99, 40000, 1235}, 60000, 2}));
    EXPECT_EQ(std::get<wire::GrantPacket>(train->packets[1]),
              (wire::GrantPacket{Header{99, 40000, 1237}, 10000, 3}));
    EXPECT_EQ(std::get<wire::GrantPacket>(train->packets[2]),
              (wire::GrantPacket{Header{99, 40001, 1239}, 20000, 0}));
    EXPECT_EQ(train->pieces[2].data(), bytes.data() + 66);
}

TEST(gso, split_gso_train__every_control_type_trains) {
    wire::AckPacket ack{Header{40000, 99, 1234}};
    ack.num_acks = 1;
    ack.acks[0] = wire::Ack{1236, 99};
    const std::vector<wire::Packet> packets = {
        wire::GrantPacket{Header{99, 40000, 1235}, 60000, 2},
        wire::ResendPacket{Header{99, 40000, 1235}, 0, wire::resend_everything, 7},
        wire::RpcUnknownPacket{Header{99, 40000, 1235}},
        wire::BusyPacket{Header{99, 40000, 1235}},
        wire::CutoffsPacket{Header{99, 40000, 0}, {1, 2, 3, 4, 5, 6, 7, 8}, 3},
        wire::FreezePacket{Header{40000, 99, 0}},
        wire::NeedAckPacket{Header{99, 40000, 1235}},
        ack,
    };
    for (const wire::Packet& p : packets) {
        const ByteVector one = encode(p);
        auto train = split_gso_train(concat(one, one), default_segment);
        ASSERT_TRUE(train) << wire::packet_type_name(wire::packet_type(p));
        EXPECT_EQ(train->segment_size, one.size());
        EXPECT_EQ(train->packets.size(), 2u);
        EXPECT_FALSE(split_gso_train(one, default_segment));
    }
}

TEST(gso, split_gso_train__control_packet_with_trailing_bytes_is_one_packet) {
    const wire::GrantPacket grant{Header{99, 40000, 1235}, 60000, 2};
    const ByteVector one = encode(grant);
    // Padding that is not a multiple of 33, a multiple of zeros, a GRANT
    // plus a shorter packet, two 28-byte packets of different types.
    for (const ByteVector& bytes :
         {concat(one, ByteVector(10)), concat(one, ByteVector(33)), concat(one, ByteVector(66)),
          gso_train({grant, wire::RpcUnknownPacket{Header{99, 40000, 1235}}}),
          gso_train({wire::NeedAckPacket{Header{99, 40000, 1235}},
                     wire::BusyPacket{Header{99, 40000, 1235}}})}) {
        EXPECT_FALSE(split_gso_train(bytes, default_segment)) << bytes.size();
        // And the codec takes it as the first packet alone, as before.
        EXPECT_TRUE(wire::decode(bytes)) << bytes.size();
    }
    // A second GRANT that does not decode (port 0).
    ByteVector bad = concat(one, one);
    bad[33] = bad[34] = std::byte{0};
    EXPECT_FALSE(split_gso_train(bad, default_segment));
    // A malformed first packet is no train either.
    ByteVector bad_first = concat(one, one);
    bad_first[0] = bad_first[1] = std::byte{0};
    EXPECT_FALSE(split_gso_train(bad_first, default_segment));
}

TEST(gso, split_gso_train__mangled_trains_split_consistently_or_not_at_all) {
    // Random byte changes (mostly in the headers) and cuts of real trains.
    // Whatever comes back must be two or more pieces that tile the payload,
    // all but the last segment_size bytes, each decoding to its packet.
    const std::vector<ByteVector> seeds = {
        gso_data_train(message(5 * 1424 + 300), 1424, 5, 300),
        gso_data_train(message(5000, 1000), 1000, 3, 500),
        gso_data_train(message(400), 100, 4),
        gso_train({wire::GrantPacket{Header{99, 40000, 1235}, 60000, 2},
                   wire::GrantPacket{Header{99, 40000, 1237}, 10000, 3},
                   wire::GrantPacket{Header{99, 40001, 1239}, 20000, 0}}),
        gso_train({wire::NeedAckPacket{Header{99, 40000, 1235}},
                   wire::NeedAckPacket{Header{99, 40000, 1237}}}),
    };
    std::mt19937 rng(4242);
    std::size_t trains = 0;
    for (const ByteVector& seed : seeds) {
        for (int i = 0; i < 2000; ++i) {
            ByteVector m = seed;
            const int changes = static_cast<int>(rng() % 4);
            for (int c = 0; c < changes; ++c) {
                const std::size_t piece_start = (rng() % 6) * (rng() % 2 ? 1480 : 33);
                const std::size_t at = (piece_start + rng() % 60) % m.size();
                m[at] = static_cast<std::byte>(rng() & 0xFF);
            }
            if (rng() % 4 == 0) m.resize(1 + rng() % m.size());
            // Exactly sized, so ASan sees any read past the end.
            const auto copy = std::make_unique<std::byte[]>(m.size());
            std::copy(m.begin(), m.end(), copy.get());
            const wire::Bytes bytes(copy.get(), m.size());
            auto train = split_gso_train(bytes, default_segment);
            if (!train) continue;
            ++trains;
            ASSERT_GE(train->packets.size(), 2u);
            ASSERT_EQ(train->pieces.size(), train->packets.size());
            std::size_t next = 0;
            for (std::size_t k = 0; k < train->pieces.size(); ++k) {
                const wire::Bytes piece = train->pieces[k];
                EXPECT_EQ(piece.data(), bytes.data() + next);
                if (k + 1 < train->pieces.size()) {
                    EXPECT_EQ(piece.size(), train->segment_size);
                } else {
                    EXPECT_LE(piece.size(), train->segment_size);
                }
                next += piece.size();
                auto decoded = wire::decode(piece);
                ASSERT_TRUE(decoded);
                EXPECT_EQ(wire::packet_type(*decoded), wire::packet_type(train->packets[k]));
                EXPECT_EQ(wire::packet_header(*decoded), wire::packet_header(train->packets[k]));
                EXPECT_EQ(wire::encoded_size(*decoded), piece.size());
            }
            EXPECT_EQ(next, bytes.size());
        }
    }
    // Most mutations leave the train intact (or only change a data byte).
    EXPECT_GT(trains, 2000u);
}

}  // namespace
}  // namespace uhoma::dump
