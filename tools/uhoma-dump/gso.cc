// The GSO train rules of gso.h. Raw byte compares are used only to skip
// positions cheaply; every accepted piece has gone through wire::decode.
#include "uhoma-dump/gso.h"

#include <algorithm>
#include <cstring>
#include <variant>

#include "wire/codec.h"

namespace uhoma::dump {

namespace {

using wire::Bytes;
using wire::DataPacket;
using wire::Packet;

// Common-header and DATA-header offsets (spec/protocol.md 1.2, 1.4).
constexpr std::size_t off_ports = 0;       // sport, dport: 4 bytes
constexpr std::size_t off_type = 11;
constexpr std::size_t off_doff = 12;
constexpr std::size_t off_sender_id = 20;  // sender_id then message_length: 12 bytes
constexpr std::size_t off_seg_offset = 52;
constexpr std::size_t min_data_packet = wire::data_header_size + 1;

std::uint8_t byte_at(Bytes b, std::size_t i) { return static_cast<std::uint8_t>(b[i]); }

// The TSO layouts of tso.h: doff 0xD0, or a hijacked seg.offset of -1.
bool tso_layout(Bytes payload) {
    if (byte_at(payload, off_doff) == wire::doff_tso) return true;
    if (payload.size() < wire::data_header_size) return false;
    for (std::size_t i = 0; i < wire::seg_header_size; ++i) {
        if (byte_at(payload, off_seg_offset + i) != 0xFF) return false;
    }
    return true;
}

// `piece` decoded as DATA of the same RPC and message as `first`, at
// `offset`; nullopt otherwise.
std::optional<DataPacket> data_piece(Bytes piece, const DataPacket& first, std::uint64_t offset) {
    auto decoded = wire::decode(piece);
    if (!decoded) return std::nullopt;
    const auto* d = std::get_if<DataPacket>(&*decoded);
    if (d == nullptr || d->header != first.header || d->message_length != first.message_length ||
        d->offset != offset) {
        return std::nullopt;
    }
    return *d;
}

// Cuts `payload` into `segment`-byte pieces and checks each against `first`.
std::optional<GsoTrain> split_data(Bytes payload, std::size_t segment, const DataPacket& first) {
    if (segment < min_data_packet || segment >= payload.size()) return std::nullopt;
    GsoTrain train;
    train.segment_size = segment;
    const std::size_t step = segment - wire::data_header_size;
    for (std::size_t start = 0, k = 0; start < payload.size(); start += segment, ++k) {
        const Bytes piece = payload.subspan(start, std::min(segment, payload.size() - start));
        auto d = data_piece(piece, first, std::uint64_t{first.offset} + k * step);
        if (!d) return std::nullopt;
        train.packets.emplace_back(*d);
        train.pieces.push_back(piece);
    }
    return train;
}

// Whether piece 1 of a train with gso_size p would start at byte p: a DATA
// header of the same RPC and message with the offset that follows.
bool next_data_header_at(Bytes payload, std::size_t p, const DataPacket& first) {
    if (byte_at(payload, p + off_type) != static_cast<std::uint8_t>(wire::PacketType::data) ||
        std::memcmp(payload.data() + p + off_ports, payload.data() + off_ports, 4) != 0 ||
        std::memcmp(payload.data() + p + off_sender_id, payload.data() + off_sender_id, 12) != 0) {
        return false;
    }
    const std::uint64_t offset = std::uint64_t{first.offset} + (p - wire::data_header_size);
    return data_piece(payload.subspan(p, min_data_packet), first, offset).has_value();
}

std::optional<GsoTrain> split_data_train(Bytes payload, std::size_t data_segment_size) {
    if (payload.size() < 2 * min_data_packet || tso_layout(payload)) return std::nullopt;
    // The first piece's header, checked with a one-byte payload.
    auto head = wire::decode(payload.first(min_data_packet));
    if (!head) return std::nullopt;
    const auto* first = std::get_if<DataPacket>(&*head);
    if (first == nullptr) return std::nullopt;

    if (auto train = split_data(payload, data_segment_size, *first)) return train;
    for (std::size_t p = min_data_packet; p + min_data_packet <= payload.size(); ++p) {
        if (p == data_segment_size || !next_data_header_at(payload, p, *first)) continue;
        if (auto train = split_data(payload, p, *first)) return train;
    }
    return std::nullopt;
}

std::optional<GsoTrain> split_control_train(Bytes payload, const Packet& first) {
    const std::size_t size = wire::encoded_size(first);
    if (size == 0 || payload.size() < 2 * size || payload.size() % size != 0) return std::nullopt;
    GsoTrain train;
    train.segment_size = size;
    for (std::size_t start = 0; start < payload.size(); start += size) {
        const Bytes piece = payload.subspan(start, size);
        auto decoded = wire::decode(piece);
        if (!decoded || wire::packet_type(*decoded) != wire::packet_type(first)) {
            return std::nullopt;
        }
        train.packets.push_back(*decoded);
        train.pieces.push_back(piece);
    }
    return train;
}

}  // namespace

std::optional<GsoTrain> split_gso_train(Bytes payload, std::size_t data_segment_size) {
    auto common = wire::peek_common_header(payload);
    if (!common) return std::nullopt;
    if (common->type == static_cast<std::uint8_t>(wire::PacketType::data)) {
        return split_data_train(payload, data_segment_size);
    }
    auto first = wire::decode(payload);
    if (!first) return std::nullopt;
    return split_control_train(payload, *first);
}

}  // namespace uhoma::dump
