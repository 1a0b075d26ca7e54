#include "wire/tso.h"

#include <algorithm>
#include <cstring>

#include "wire/codec.h"
#include "wire/endian.h"

namespace uhoma::wire {

namespace {
constexpr std::size_t off_type = 11;
constexpr std::size_t off_doff = 12;
constexpr std::size_t off_sequence = 4;
}  // namespace

Expected<MultiSegmentData, Error> MultiSegmentData::decode(Bytes packet,
                                                          std::size_t max_seg_data) {
    if (max_seg_data == 0) return Unexpected{Error::bad_segment};
    if (packet.size() >= common_header_size &&
        detail::load8(packet.data() + off_type) != static_cast<std::uint8_t>(PacketType::data)) {
        // Not DATA: report what decode() says of it, or unknown_type if valid.
        auto other = wire::decode(packet);
        return Unexpected{other ? Error::unknown_type : other.error()};
    }
    const bool tso_layout =
        packet.size() > common_header_size && detail::load8(packet.data() + off_doff) == doff_tso;
    const bool hijacked = packet.size() >= data_header_size &&
                          detail::load32(packet.data() + tso_header_size) == seg_offset_in_sequence;
    const bool single = packet.size() <= data_header_size + max_seg_data ||
                        (!tso_layout && !hijacked);

    // The first segment decodes like any single-segment packet; that checks
    // the type, the header and the shared DATA fields. A packet that holds
    // one segment (including a 56-byte header with an explicit offset,
    // however long) is checked whole.
    auto first = wire::decode(single ? packet : packet.first(data_header_size + max_seg_data));
    if (!first) return Unexpected{first.error()};
    if (packet_type(*first) != PacketType::data) return Unexpected{Error::unknown_type};

    MultiSegmentData m;
    m.fields_ = std::get<DataPacket>(*first);
    m.seg_data_ = max_seg_data;
    if (single) {
        m.body_ = packet.subspan(tso_header_size);
        m.count_ = 1;
        return m;
    }
    if (tso_layout) {
        m.body_ = packet.subspan(tso_header_size);
        const std::size_t chunk = seg_header_size + max_seg_data;
        m.count_ = (m.body_.size() + chunk - 1) / chunk;
    } else {
        m.hijacked_ = true;
        m.body_ = packet.subspan(data_header_size);
        m.count_ = (m.body_.size() + max_seg_data - 1) / max_seg_data;
    }
    const std::uint32_t first_offset = m.fields_.offset;
    for (std::size_t i = 0; i < m.count_; ++i) {
        const DataPacket seg = m.segment(i);
        if (seg.payload.empty()) return Unexpected{Error::bad_segment};
        if (seg.offset != std::uint64_t{first_offset} + i * max_seg_data) {
            return Unexpected{Error::bad_segment};
        }
        auto valid = validate(Packet{seg});
        if (!valid) return Unexpected{valid.error()};
    }
    return m;
}

DataPacket MultiSegmentData::segment(std::size_t index) const {
    DataPacket d = fields_;
    if (count_ == 1) {
        d.payload = body_.size() > seg_header_size ? body_.subspan(seg_header_size) : Bytes{};
        return d;
    }
    if (hijacked_) {
        const std::size_t start = index * seg_data_;
        d.payload = body_.subspan(start, std::min(seg_data_, body_.size() - start));
        d.offset = static_cast<std::uint32_t>(fields_.offset + start);
        return d;
    }
    const std::size_t start = index * (seg_header_size + seg_data_);
    const std::size_t avail = body_.size() - start;
    if (avail < seg_header_size) {
        d.payload = Bytes{};
        return d;
    }
    d.offset = detail::load32(body_.data() + start);
    d.payload = body_.subspan(start + seg_header_size,
                              std::min(seg_data_, avail - seg_header_size));
    return d;
}

std::size_t multi_segment_size(std::span<const Segment> segments) {
    std::size_t size = tso_header_size;
    for (const Segment& s : segments) size += seg_header_size + s.payload.size();
    return size;
}

Expected<std::size_t, Error> encode_multi_segment_data(const DataPacket& fields,
                                                       std::span<const Segment> segments,
                                                       std::size_t max_seg_data,
                                                       MutableBytes out) {
    if (segments.empty() || max_seg_data == 0) return Unexpected{Error::bad_segment};
    for (std::size_t i = 0; i < segments.size(); ++i) {
        const Segment& s = segments[i];
        const bool last = i + 1 == segments.size();
        if (s.payload.size() > max_seg_data || (!last && s.payload.size() != max_seg_data)) {
            return Unexpected{Error::bad_segment};
        }
        if (s.offset != std::uint64_t{segments[0].offset} + i * max_seg_data) {
            return Unexpected{Error::bad_segment};
        }
        DataPacket one = fields;
        one.offset = s.offset;
        one.payload = s.payload;
        auto valid = validate(Packet{one});
        if (!valid) return Unexpected{valid.error()};
    }
    const std::size_t size = multi_segment_size(segments);
    if (out.size() < size) return Unexpected{Error::buffer_too_small};

    DataPacket first = fields;
    first.offset = segments[0].offset;
    auto header = encode_data_header(first, segments[0].payload.size(), out);
    if (!header) return Unexpected{header.error()};
    detail::store8(out.data() + off_doff, doff_tso);
    detail::store32(out.data() + off_sequence, segments[0].offset);
    std::byte* p = out.data() + tso_header_size;
    for (const Segment& s : segments) {
        detail::store32(p, s.offset);
        std::memcpy(p + seg_header_size, s.payload.data(), s.payload.size());
        p += seg_header_size + s.payload.size();
    }
    return size;
}

}  // namespace uhoma::wire
