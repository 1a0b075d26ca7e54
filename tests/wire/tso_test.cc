// Tests of src/wire/tso.cc: the multi-segment DATA layouts of spec 1.4.1
// ("TSO without hijack": 52-byte header, then per segment a 4-byte
// seg.offset and the data; "with hijack": 56-byte header with seg.offset -1
// and contiguous data). Golden bytes are hand-assembled; a max_seg_data of 8
// keeps them short.
#include "wire/tso.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/bytes.h"
#include "support/packets.h"
#include "support/random.h"
#include "wire/codec.h"

namespace {

using namespace uhoma::wire;
using uhoma::test::bytes_equal;
using uhoma::test::bytes_from_hex;
using uhoma::test::ByteVector;
using uhoma::test::concat;
using uhoma::test::error_of;
using uhoma::test::exact_copy;
using uhoma::test::put_be;
using uhoma::test::Rng;
using uhoma::test::same_data;

constexpr std::size_t seg_data = 8;                  // max_seg_data of the goldens
constexpr std::uint32_t first_offset = 0x000A'BC00;  // 703488

// The shared header fields of the goldens.
DataPacket shared_fields() {
    DataPacket d;
    d.header = {0xC3A5, 0x7E9B, 0x0123'4567'89AB'CDEE};
    d.message_length = 703'710;
    d.incoming = 651'746;
    d.ack = {0xFEDC'BA98'7654'3210, 0x4C8D};
    d.cutoff_version = 0xA5B6;
    d.retransmit = false;
    return d;
}

const ByteVector& seg0_data() {
    static const ByteVector b = bytes_from_hex("A0A1A2A3A4A5A6A7");
    return b;
}
const ByteVector& seg1_data() {
    static const ByteVector b = bytes_from_hex("B0B1B2B3B4B5B6B7");
    return b;
}
const ByteVector& seg2_data() {
    static const ByteVector b = bytes_from_hex("C0C1C2");
    return b;
}

std::array<Segment, 3> golden_segments() {
    return {Segment{first_offset, seg0_data()}, Segment{first_offset + 8, seg1_data()},
            Segment{first_offset + 16, seg2_data()}};
}

// TSO without hijack: 3 segments of 8, 8 and 3 bytes.
ByteVector tso_golden() {
    return bytes_from_hex(
        // Common header (1.2)
        "C3A5"              // @0  sport
        "7E9B"              // @2  dport
        "000ABC00"          // @4  sequence: the first segment's offset
        "000000"            // @8  ack[3]
        "10"                // @11 type DATA
        "D0"                // @12 doff 0xD0: 52-byte header (TSO, no hijack)
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEE"  // @20 sender_id
        // DATA (1.4.1) up to, not including, seg.offset
        "000ABCDE"          // @28 message_length = 703710
        "0009F1E2"          // @32 incoming = 651746
        "FEDCBA9876543210"  // @36 ack.client_id
        "4C8D"              // @44 ack.server_port
        "A5B6"              // @46 cutoff_version
        "00"                // @48 retransmit
        "000000"            // @49 pad
        // Segment 0
        "000ABC00"          // @52 seg.offset = 703488
        "A0A1A2A3A4A5A6A7"  // @56 data, max_seg_data bytes
        // Segment 1
        "000ABC08"          // @64 seg.offset = 703496
        "B0B1B2B3B4B5B6B7"  // @68 data
        // Segment 2 (last, short)
        "000ABC10"  // @76 seg.offset = 703504
        "C0C1C2");  // @80 data, 3 bytes
}

// The same data with TCP hijacking: one 56-byte header, data contiguous.
ByteVector hijacked_golden() {
    return bytes_from_hex(
        "C3A5"              // @0  sport
        "7E9B"              // @2  dport
        "000ABC00"          // @4  sequence: the offset (TSO advances it)
        "000000"            // @8  ack[3]
        "10"                // @11 type DATA
        "E0"                // @12 doff 0xE0: 56-byte header
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEE"  // @20 sender_id
        "000ABCDE"          // @28 message_length
        "0009F1E2"          // @32 incoming
        "FEDCBA9876543210"  // @36 ack.client_id
        "4C8D"              // @44 ack.server_port
        "A5B6"              // @46 cutoff_version
        "00"                // @48 retransmit
        "000000"            // @49 pad
        "FFFFFFFF"          // @52 seg.offset = -1: offset in sequence
        "A0A1A2A3A4A5A6A7"  // @56 segment 0 data
        "B0B1B2B3B4B5B6B7"  // @64 segment 1 data
        "C0C1C2");          // @72 segment 2 data
}

// Checks everything a segment carries: the shared fields, its offset and
// its payload.
void expect_segment(const DataPacket& seg, std::uint32_t offset, const ByteVector& payload) {
    DataPacket expected = shared_fields();
    expected.offset = offset;
    expected.payload = payload;
    EXPECT_TRUE(uhoma::test::packets_equal(seg, expected));
}

std::optional<Error> multi_error(const ByteVector& bytes, std::size_t max_seg = seg_data) {
    return error_of(MultiSegmentData::decode(bytes, max_seg));
}

// ===========================================================================
// Golden tests
// ===========================================================================

TEST(tso, encode_multi_segment_data__golden) {
    DataPacket fields = shared_fields();
    fields.offset = 12345;         // ignored
    fields.payload = seg2_data();  // ignored
    const auto segments = golden_segments();
    EXPECT_EQ(multi_segment_size(segments), 83u);
    ByteVector out(83 + 8, std::byte{0xAA});
    auto written = encode_multi_segment_data(fields, segments, seg_data, out);
    ASSERT_TRUE(written.has_value()) << error_name(written.error());
    ASSERT_EQ(*written, 83u);
    EXPECT_TRUE(bytes_equal(std::span(out).first(83), tso_golden()));
    for (std::size_t i = 83; i < out.size(); ++i) EXPECT_EQ(out[i], std::byte{0xAA}) << i;
}

TEST(tso, decode__tso_golden) {
    const ByteVector bytes = tso_golden();
    auto m = MultiSegmentData::decode(bytes, seg_data);
    ASSERT_TRUE(m.has_value()) << error_name(m.error());
    EXPECT_FALSE(m->hijacked());
    ASSERT_EQ(m->segment_count(), 3u);
    expect_segment(m->segment(0), 703'488, seg0_data());
    expect_segment(m->segment(1), 703'496, seg1_data());
    expect_segment(m->segment(2), 703'504, seg2_data());
    // Payloads are views into the packet.
    EXPECT_EQ(m->segment(1).payload.data(), bytes.data() + 68);
}

TEST(tso, decode__hijacked_golden) {
    const ByteVector bytes = hijacked_golden();
    auto m = MultiSegmentData::decode(bytes, seg_data);
    ASSERT_TRUE(m.has_value()) << error_name(m.error());
    EXPECT_TRUE(m->hijacked());
    ASSERT_EQ(m->segment_count(), 3u);
    expect_segment(m->segment(0), 703'488, seg0_data());
    expect_segment(m->segment(1), 703'496, seg1_data());
    expect_segment(m->segment(2), 703'504, seg2_data());
    EXPECT_EQ(m->segment(2).payload.data(), bytes.data() + 72);
}

TEST(tso, decode__tso_golden_cut_as_the_nic_does) {
    // The NIC copies the 52-byte header in front of every (4 + 8)-byte chunk;
    // each result is an ordinary single-segment DATA packet.
    const ByteVector bytes = tso_golden();
    const std::span<const std::byte> all(bytes);
    const std::array<std::pair<std::uint32_t, const ByteVector*>, 3> expected = {
        std::pair{703'488u, &seg0_data()}, std::pair{703'496u, &seg1_data()},
        std::pair{703'504u, &seg2_data()}};
    for (std::size_t i = 0; i < 3; ++i) {
        const std::size_t start = 52 + 12 * i;
        const std::size_t len = std::min<std::size_t>(12, bytes.size() - start);
        const ByteVector wire_packet = concat({all.first(52), all.subspan(start, len)});
        auto decoded = decode(wire_packet);
        ASSERT_TRUE(decoded.has_value()) << i << ": " << error_name(decoded.error());
        expect_segment(std::get<DataPacket>(*decoded), expected[i].first, *expected[i].second);
    }
}

TEST(tso, decode__single_segment_packet) {
    // A normal 56-byte-header DATA packet that fits in one segment.
    ByteVector bytes = tso_golden();
    bytes.resize(64);  // header + segment 0
    for (const std::uint8_t doff : std::array<std::uint8_t, 2>{0xE0, 0xD0}) {
        put_be(bytes, 12, doff, 1);  // whatever its doff
        auto m = MultiSegmentData::decode(bytes, seg_data);
        ASSERT_TRUE(m.has_value()) << error_name(m.error());
        EXPECT_FALSE(m->hijacked());
        ASSERT_EQ(m->segment_count(), 1u);
        expect_segment(m->segment(0), 703'488, seg0_data());
    }
}

TEST(tso, decode__single_segment_matches_wire_decode) {
    // With max_seg_data at least the payload, a packet is one segment equal
    // to what wire::decode returns (including seg.offset = -1).
    const ByteVector bytes = bytes_from_hex(
        "7E9B"                // @0  sport
        "C3A5"                // @2  dport
        "0001E240"            // @4  sequence: offset 123456
        "000000"              // @8  ack[3]
        "10"                  // @11 type DATA
        "E0"                  // @12 doff
        "06"                  // @13 flags
        "0000"                // @14 window
        "0000"                // @16 checksum
        "B97D"                // @18 urgent
        "0123456789ABCDEF"    // @20 sender_id
        "0001E248"            // @28 message_length = 123464
        "0001E248"            // @32 incoming
        "0000000000000000"    // @36 ack.client_id
        "0000"                // @44 ack.server_port
        "0000"                // @46 cutoff_version
        "00"                  // @48 retransmit
        "000000"              // @49 pad
        "FFFFFFFF"            // @52 seg.offset = -1: look in sequence
        "0102030405060708");  // @56 data, 8 bytes
    auto single = decode(bytes);
    ASSERT_TRUE(single.has_value());
    for (const std::size_t max_seg : {std::size_t{8}, std::size_t{9}, std::size_t{1424}}) {
        auto m = MultiSegmentData::decode(bytes, max_seg);
        ASSERT_TRUE(m.has_value()) << max_seg;
        ASSERT_EQ(m->segment_count(), 1u);
        EXPECT_TRUE(same_data(m->segment(0), std::get<DataPacket>(*single))) << max_seg;
        EXPECT_EQ(m->segment(0).offset, 123'456u);
    }
}

TEST(tso, decode__long_single_segment_with_explicit_offset) {
    // A 56-byte header with an explicit seg.offset holds one segment, however
    // long: here 19 bytes with max_seg_data 8.
    ByteVector bytes = hijacked_golden();
    put_be(bytes, 52, first_offset, 4);
    auto m = MultiSegmentData::decode(bytes, seg_data);
    ASSERT_TRUE(m.has_value()) << error_name(m.error());
    EXPECT_FALSE(m->hijacked());
    ASSERT_EQ(m->segment_count(), 1u);
    expect_segment(m->segment(0), first_offset, concat({seg0_data(), seg1_data(), seg2_data()}));
}

// ===========================================================================
// Rejections
// ===========================================================================

TEST(tso, decode__bad_segment_non_consecutive_offsets) {
    ByteVector bytes = tso_golden();
    put_be(bytes, 64, first_offset + 9, 4);  // segment 1 should be at +8
    EXPECT_EQ(multi_error(bytes), Error::bad_segment);
    bytes = tso_golden();
    put_be(bytes, 76, first_offset + 8, 4);  // segment 2 repeats segment 1's offset
    EXPECT_EQ(multi_error(bytes), Error::bad_segment);
    bytes = tso_golden();
    put_be(bytes, 76, first_offset + 24, 4);  // a gap
    EXPECT_EQ(multi_error(bytes), Error::bad_segment);
}

TEST(tso, decode__bad_segment_wrong_max_seg_data) {
    EXPECT_EQ(multi_error(tso_golden(), 7), Error::bad_segment);
    EXPECT_EQ(multi_error(tso_golden(), 9), Error::bad_segment);
}

TEST(tso, decode__bad_segment_max_seg_data_zero) {
    EXPECT_EQ(multi_error(tso_golden(), 0), Error::bad_segment);
    EXPECT_EQ(multi_error(hijacked_golden(), 0), Error::bad_segment);
}

TEST(tso, decode__bad_segment_trailing_segment_header_only) {
    ByteVector bytes = tso_golden();
    bytes.resize(80);  // segment 2's seg.offset, then nothing
    EXPECT_EQ(multi_error(exact_copy(bytes)), Error::bad_segment);
}

TEST(tso, decode__bad_segment_trailing_partial_segment_header) {
    for (const std::size_t size : {std::size_t{77}, std::size_t{78}, std::size_t{79}}) {
        ByteVector bytes = tso_golden();
        bytes.resize(size);
        EXPECT_EQ(multi_error(exact_copy(bytes)), Error::bad_segment) << size;
    }
}

TEST(tso, decode__later_segment_past_message_end) {
    // Segment 0 is fine; segment 2 ends at 703507, one past the message.
    for (ByteVector bytes : {tso_golden(), hijacked_golden()}) {
        put_be(bytes, 28, 703'506, 4);
        EXPECT_EQ(multi_error(bytes), Error::data_past_end);
        put_be(bytes, 28, 703'507, 4);  // exactly the end: fine
        EXPECT_TRUE(MultiSegmentData::decode(bytes, seg_data).has_value());
    }
}

TEST(tso, decode__long_single_segment_past_message_end) {
    // The one long segment is checked as a whole, not just its first
    // max_seg_data bytes: 19 bytes at 703488 pass a 703500-byte message.
    ByteVector bytes = hijacked_golden();
    put_be(bytes, 52, first_offset, 4);
    put_be(bytes, 28, 703'500, 4);
    EXPECT_EQ(multi_error(bytes), Error::data_past_end);
    EXPECT_EQ(error_of(decode(bytes)), Error::data_past_end);
}

TEST(tso, decode__first_segment_errors) {
    ByteVector bytes = tso_golden();
    put_be(bytes, 0, 0, 2);
    EXPECT_EQ(multi_error(bytes), Error::bad_port);
    bytes = tso_golden();
    put_be(bytes, 20, 1, 8);
    EXPECT_EQ(multi_error(bytes), Error::bad_rpc_id);
    bytes = tso_golden();
    put_be(bytes, 28, 0, 4);
    EXPECT_EQ(multi_error(bytes), Error::zero_length_message);
    bytes = tso_golden();
    put_be(bytes, 36, 0x0123'4567'89AB'CDEF, 8);
    EXPECT_EQ(multi_error(bytes), Error::bad_ack);
    bytes = tso_golden();
    bytes.resize(56);
    EXPECT_EQ(multi_error(exact_copy(bytes)), Error::empty_segment);
    bytes.resize(27);
    EXPECT_EQ(multi_error(exact_copy(bytes)), Error::truncated);
    bytes = tso_golden();
    put_be(bytes, 11, 0x19, 1);
    EXPECT_EQ(multi_error(bytes), Error::unknown_type);
}

TEST(tso, decode__control_packet_is_unknown_type) {
    // Not DATA: unknown_type, also for types longer than 56 + max_seg_data.
    const ByteVector grant = bytes_from_hex(
        "7E9B"              // @0  sport
        "C3A5"              // @2  dport
        "00000000"          // @4  sequence
        "000000"            // @8  ack[3]
        "11"                // @11 type GRANT
        "50"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEF"  // @20 sender_id
        "000E8A9B"          // @28 offset
        "05");              // @32 priority
    EXPECT_EQ(multi_error(grant), Error::unknown_type);
    const ByteVector ack = bytes_from_hex(
        "C3A5"              // @0  sport
        "7E9B"              // @2  dport
        "00000000"          // @4  sequence
        "000000"            // @8  ack[3]
        "18"                // @11 type ACK
        "50"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEE"  // @20 sender_id
        "0001"              // @28 num_acks
        "0123456789ABCDEC"  // @30 acks[0].client_id
        "7E9B"              // @38 acks[0].server_port
        "0000000000000000"  // @40 acks[1..4], unused
        "0000"
        "0000000000000000"
        "0000"
        "0000000000000000"
        "0000"
        "0000000000000000"
        "0000");
    ASSERT_EQ(ack.size(), 80u);
    ASSERT_TRUE(decode(ack).has_value());
    EXPECT_EQ(multi_error(ack, 8), Error::unknown_type);
    EXPECT_EQ(multi_error(ack, 1424), Error::unknown_type);
}

TEST(tso, decode__every_prefix) {
    for (const ByteVector& golden : {tso_golden(), hijacked_golden()}) {
        for (std::size_t n = 0; n <= golden.size(); ++n) {
            SCOPED_TRACE("prefix " + std::to_string(n));
            const ByteVector prefix = exact_copy(std::span(golden).first(n));
            auto m = MultiSegmentData::decode(prefix, seg_data);
            if (n < 56) {
                EXPECT_EQ(error_of(m), Error::truncated);
            } else if (n == 56) {
                EXPECT_EQ(error_of(m), Error::empty_segment);
            } else if (m) {
                std::size_t total = 0;
                for (std::size_t i = 0; i < m->segment_count(); ++i) {
                    const DataPacket s = m->segment(i);
                    EXPECT_FALSE(s.payload.empty());
                    EXPECT_GE(s.payload.data(), prefix.data());
                    EXPECT_LE(s.payload.data() + s.payload.size(), prefix.data() + n);
                    total += s.payload.size();
                }
                EXPECT_LE(total, n - 56);
            }
            // A full segment is always accepted.
            if (n == 64) {
                EXPECT_TRUE(m.has_value());
            }
        }
    }
}

TEST(tso, encode_multi_segment_data__bad_segment) {
    const DataPacket fields = shared_fields();
    ByteVector out(200);
    auto segments = golden_segments();

    EXPECT_EQ(error_of(encode_multi_segment_data(fields, {}, seg_data, out)), Error::bad_segment);
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, segments, 0, out)), Error::bad_segment);

    auto gap = segments;
    gap[2].offset += 1;
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, gap, seg_data, out)), Error::bad_segment);

    auto short_middle = segments;
    short_middle[1].payload = short_middle[1].payload.first(7);
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, short_middle, seg_data, out)),
              Error::bad_segment);

    // Segments longer than max_seg_data.
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, segments, 7, out)), Error::bad_segment);
    const std::array<Segment, 1> one_long = {Segment{first_offset, seg0_data()}};
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, one_long, 7, out)), Error::bad_segment);
}

TEST(tso, encode_multi_segment_data__field_errors) {
    ByteVector out(200);
    const auto segments = golden_segments();
    DataPacket fields = shared_fields();
    fields.header.sport = 0;
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, segments, seg_data, out)),
              Error::bad_port);
    fields = shared_fields();
    fields.message_length = 703'506;  // the last segment passes it
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, segments, seg_data, out)),
              Error::data_past_end);
    fields = shared_fields();
    fields.ack.server_port = 0;
    EXPECT_EQ(error_of(encode_multi_segment_data(fields, segments, seg_data, out)), Error::bad_ack);
    auto empty_last = segments;
    empty_last[2].payload = {};
    EXPECT_EQ(error_of(encode_multi_segment_data(shared_fields(), empty_last, seg_data, out)),
              Error::empty_segment);
}

TEST(tso, encode_multi_segment_data__buffer_too_small) {
    ByteVector out(82, std::byte{0xAA});
    EXPECT_EQ(
        error_of(encode_multi_segment_data(shared_fields(), golden_segments(), seg_data, out)),
        Error::buffer_too_small);
    for (const std::byte b : out) ASSERT_EQ(b, std::byte{0xAA});
}

TEST(tso, multi_segment_size__formula) {
    EXPECT_EQ(multi_segment_size({}), 52u);
    const std::array<Segment, 1> one = {Segment{0, seg2_data()}};
    EXPECT_EQ(multi_segment_size(one), 52u + 4u + 3u);
    EXPECT_EQ(multi_segment_size(golden_segments()), 52u + 3u * 4u + 19u);
}

// ===========================================================================
// Property test: random multi-segment round trips
// ===========================================================================

TEST(tso, round_trip__random_multi_segment) {
    Rng rng(42);
    ByteVector scratch;
    for (int iteration = 0; iteration < 2000; ++iteration) {
        SCOPED_TRACE("iteration " + std::to_string(iteration));
        const std::size_t max_seg =
            rng.one_in(8) ? (rng.one_in(2) ? 1424u : 1404u) : rng.uniform<std::size_t>(1, 64);
        const std::size_t count = rng.uniform<std::size_t>(1, 8);
        const std::size_t last = rng.uniform<std::size_t>(1, max_seg);
        const std::size_t total = (count - 1) * max_seg + last;

        DataPacket fields = uhoma::test::random_data(rng, scratch, 1);
        fields.message_length =
            rng.uniform<std::uint32_t>(static_cast<std::uint32_t>(total), max_message_length);
        const std::uint32_t start =
            rng.one_in(4) ? fields.message_length - static_cast<std::uint32_t>(total)
                          : rng.uniform<std::uint32_t>(
                                0, fields.message_length - static_cast<std::uint32_t>(total));
        const ByteVector data = rng.bytes(total);
        std::vector<Segment> segments;
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t len = i + 1 < count ? max_seg : last;
            segments.push_back(Segment{static_cast<std::uint32_t>(start + i * max_seg),
                                       std::span(data).subspan(i * max_seg, len)});
        }

        // Encode, decode, compare.
        ByteVector packet(multi_segment_size(segments));
        auto written = encode_multi_segment_data(fields, segments, max_seg, packet);
        ASSERT_TRUE(written.has_value()) << error_name(written.error());
        ASSERT_EQ(*written, packet.size());
        ASSERT_EQ(packet.size(), 52 + 4 * count + total);
        auto m = MultiSegmentData::decode(packet, max_seg);
        ASSERT_TRUE(m.has_value()) << error_name(m.error());
        ASSERT_EQ(m->segment_count(), count);
        EXPECT_FALSE(m->hijacked());
        std::vector<Segment> decoded_segments;
        for (std::size_t i = 0; i < count; ++i) {
            const DataPacket s = m->segment(i);
            DataPacket expected = fields;
            expected.offset = segments[i].offset;
            expected.payload = segments[i].payload;
            ASSERT_TRUE(uhoma::test::packets_equal(s, expected)) << "segment " << i;
            decoded_segments.push_back(Segment{s.offset, s.payload});

            // As the NIC cuts it: the 52-byte header plus this chunk.
            const std::size_t chunk_start = 52 + i * (4 + max_seg);
            const std::size_t chunk_len = 4 + segments[i].payload.size();
            const ByteVector wire_packet = concat(
                {std::span(packet).first(52), std::span(packet).subspan(chunk_start, chunk_len)});
            auto single = decode(wire_packet);
            ASSERT_TRUE(single.has_value()) << error_name(single.error());
            ASSERT_TRUE(uhoma::test::packets_equal(*single, expected)) << "cut " << i;
        }

        // Re-encoding the decoded segments gives the same bytes.
        ByteVector again(packet.size());
        auto rewritten = encode_multi_segment_data(m->segment(0), decoded_segments, max_seg, again);
        ASSERT_TRUE(rewritten.has_value());
        ASSERT_TRUE(bytes_equal(again, packet));

        // The hijacked layout of the same data decodes to the same segments.
        DataPacket whole = fields;
        whole.offset = start;
        whole.payload = data;
        auto hijacked = uhoma::test::encode_to_vector(whole);
        ASSERT_TRUE(hijacked.has_value());
        put_be(*hijacked, 52, seg_offset_in_sequence, 4);
        auto h = MultiSegmentData::decode(*hijacked, max_seg);
        ASSERT_TRUE(h.has_value()) << error_name(h.error());
        ASSERT_EQ(h->segment_count(), count);
        EXPECT_EQ(h->hijacked(), count > 1);
        for (std::size_t i = 0; i < count; ++i) {
            ASSERT_TRUE(same_data(h->segment(i), m->segment(i))) << "hijacked segment " << i;
        }
        if (HasFailure()) return;
    }
}

}  // namespace
