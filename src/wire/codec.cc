// Homa packet codec. Offsets follow spec/protocol.md tables 1.2 and 1.4.
#include "wire/codec.h"

#include <cstring>

#include "wire/endian.h"
#include "wire/ids.h"

namespace uhoma::wire {

using detail::load16;
using detail::load32;
using detail::load64;
using detail::load8;
using detail::store16;
using detail::store32;
using detail::store64;
using detail::store8;

namespace {

// Common header (28 bytes).
constexpr std::size_t off_sport = 0;
constexpr std::size_t off_dport = 2;
constexpr std::size_t off_sequence = 4;
constexpr std::size_t off_type = 11;
constexpr std::size_t off_doff = 12;
constexpr std::size_t off_flags = 13;
constexpr std::size_t off_window = 14;
constexpr std::size_t off_checksum = 16;
constexpr std::size_t off_urgent = 18;
constexpr std::size_t off_sender_id = 20;
// DATA.
constexpr std::size_t off_message_length = 28;
constexpr std::size_t off_incoming = 32;
constexpr std::size_t off_data_ack = 36;
constexpr std::size_t off_cutoff_version = 46;
constexpr std::size_t off_retransmit = 48;
constexpr std::size_t off_seg_offset = 52;
// GRANT / RESEND.
constexpr std::size_t off_grant_offset = 28;
constexpr std::size_t off_grant_priority = 32;
constexpr std::size_t off_resend_offset = 28;
constexpr std::size_t off_resend_length = 32;
constexpr std::size_t off_resend_priority = 36;
// CUTOFFS.
constexpr std::size_t off_cutoffs = 28;
constexpr std::size_t off_cutoffs_version = 60;
// ACK.
constexpr std::size_t off_num_acks = 28;
constexpr std::size_t off_acks = 30;

constexpr std::size_t header_size(PacketType type) {
    switch (type) {
        case PacketType::data: return data_header_size;
        case PacketType::grant: return grant_size;
        case PacketType::resend: return resend_size;
        case PacketType::rpc_unknown: return rpc_unknown_size;
        case PacketType::busy: return busy_size;
        case PacketType::cutoffs: return cutoffs_size;
        case PacketType::freeze: return freeze_size;
        case PacketType::need_ack: return need_ack_size;
        case PacketType::ack: return ack_packet_size;
    }
    return common_header_size;
}

Ack load_ack(const std::byte* p) { return Ack{load64(p), load16(p + 8)}; }
void store_ack(std::byte* p, const Ack& ack) {
    store64(p, ack.client_id);
    store16(p + 8, ack.server_port);
}

Header load_header(const std::byte* p) {
    return Header{load16(p + off_sport), load16(p + off_dport), load64(p + off_sender_id)};
}

// Writes the common header with the kernel's values for the TCP-mimicking
// fields. `doff` differs between DATA and the rest.
void store_common(std::byte* p, const Header& h, PacketType type, std::uint32_t sequence,
                  std::uint8_t doff) {
    std::memset(p, 0, common_header_size);
    store16(p + off_sport, h.sport);
    store16(p + off_dport, h.dport);
    store32(p + off_sequence, sequence);
    store8(p + off_type, static_cast<std::uint8_t>(type));
    store8(p + off_doff, doff);
    store8(p + off_flags, hijack_flags);
    store16(p + off_urgent, hijack_urgent);
    store64(p + off_sender_id, h.sender_id);
}

Expected<std::monostate, Error> fail(Error e) { return Unexpected{e}; }
constexpr std::monostate ok{};

Expected<std::monostate, Error> check_ack(const Ack& ack) {
    if (ack.empty()) return ok;
    if (!is_client_id(ack.client_id) || ack.server_port == 0) return fail(Error::bad_ack);
    return ok;
}

Expected<std::monostate, Error> check_header(const Header& h, PacketType type) {
    if (h.sport == 0 || h.dport == 0) return fail(Error::bad_port);
    switch (type) {
        case PacketType::cutoffs:
        case PacketType::freeze:
            return ok;  // need no RPC; Linux sends some with id 0
        case PacketType::ack:  // only clients send ACK
            if (!is_valid_rpc_id(h.sender_id) || !is_client_id(h.sender_id)) break;
            return ok;
        case PacketType::need_ack:  // only servers send NEED_ACK
            if (!is_valid_rpc_id(h.sender_id) || !is_server_id(h.sender_id)) break;
            return ok;
        default:
            if (!is_valid_rpc_id(h.sender_id)) break;
            return ok;
    }
    return fail(Error::bad_rpc_id);
}

Expected<std::monostate, Error> check_data(const DataPacket& d, std::size_t payload_length) {
    if (d.message_length == 0) return fail(Error::zero_length_message);
    if (d.message_length > max_message_length) return fail(Error::message_too_long);
    if (payload_length == 0) return fail(Error::empty_segment);
    if (std::uint64_t{d.offset} + payload_length > d.message_length) {
        return fail(Error::data_past_end);
    }
    return check_ack(d.ack);
}

struct Validator {
    Expected<std::monostate, Error> operator()(const DataPacket& p) const {
        return check_data(p, p.payload.size());
    }
    Expected<std::monostate, Error> operator()(const GrantPacket& p) const {
        if (p.priority >= num_priorities) return fail(Error::bad_priority);
        return ok;
    }
    Expected<std::monostate, Error> operator()(const ResendPacket& p) const {
        if (p.priority >= num_priorities) return fail(Error::bad_priority);
        const std::uint64_t end = p.length == resend_everything
                                      ? std::uint64_t{p.offset}
                                      : std::uint64_t{p.offset} + p.length;
        if (end > max_message_length) return fail(Error::bad_resend_range);
        return ok;
    }
    Expected<std::monostate, Error> operator()(const AckPacket& p) const {
        if (p.num_acks > max_acks_per_packet) return fail(Error::bad_ack);
        for (std::size_t i = 0; i < p.num_acks; ++i) {
            auto r = check_ack(p.acks[i]);
            if (!r) return r;
        }
        return ok;
    }
    template <typename T>
    Expected<std::monostate, Error> operator()(const T&) const {
        return ok;
    }
};

struct Sizer {
    std::size_t operator()(const DataPacket& p) const {
        return data_header_size + p.payload.size();
    }
    template <typename T>
    std::size_t operator()(const T&) const {
        return header_size(T::type);
    }
};

void store_data_header(std::byte* p, const DataPacket& d) {
    store_common(p, d.header, PacketType::data, d.offset, doff_data);
    store32(p + off_message_length, d.message_length);
    store32(p + off_incoming, d.incoming);
    store_ack(p + off_data_ack, d.ack);
    store16(p + off_cutoff_version, d.cutoff_version);
    store8(p + off_retransmit, d.retransmit ? 1 : 0);
    store8(p + off_retransmit + 1, 0);
    store16(p + off_retransmit + 2, 0);
    store32(p + off_seg_offset, d.offset);
}

struct Writer {
    std::byte* p;
    std::size_t operator()(const DataPacket& d) const {
        store_data_header(p, d);
        if (!d.payload.empty()) {
            std::memcpy(p + data_header_size, d.payload.data(), d.payload.size());
        }
        return data_header_size + d.payload.size();
    }
    std::size_t operator()(const GrantPacket& g) const {
        store_common(p, g.header, PacketType::grant, 0, doff_control);
        store32(p + off_grant_offset, g.offset);
        store8(p + off_grant_priority, g.priority);
        return grant_size;
    }
    std::size_t operator()(const ResendPacket& r) const {
        store_common(p, r.header, PacketType::resend, 0, doff_control);
        store32(p + off_resend_offset, r.offset);
        store32(p + off_resend_length, r.length);
        store8(p + off_resend_priority, r.priority);
        return resend_size;
    }
    std::size_t operator()(const CutoffsPacket& c) const {
        store_common(p, c.header, PacketType::cutoffs, 0, doff_control);
        for (std::size_t i = 0; i < num_priorities; ++i) {
            store32(p + off_cutoffs + 4 * i, c.unsched_cutoffs[i]);
        }
        store16(p + off_cutoffs_version, c.cutoff_version);
        return cutoffs_size;
    }
    std::size_t operator()(const AckPacket& a) const {
        store_common(p, a.header, PacketType::ack, 0, doff_control);
        store16(p + off_num_acks, a.num_acks);
        for (std::size_t i = 0; i < max_acks_per_packet; ++i) {
            // Unused slots go out as zeros, as the kernel's memset leaves them.
            store_ack(p + off_acks + ack_entry_size * i, i < a.num_acks ? a.acks[i] : Ack{});
        }
        return ack_packet_size;
    }
    template <typename T>
    std::size_t operator()(const T& c) const {
        store_common(p, c.header, T::type, 0, doff_control);
        return header_size(T::type);
    }
};

}  // namespace

const char* packet_type_name(PacketType type) {
    switch (type) {
        case PacketType::data: return "DATA";
        case PacketType::grant: return "GRANT";
        case PacketType::resend: return "RESEND";
        case PacketType::rpc_unknown: return "RPC_UNKNOWN";
        case PacketType::busy: return "BUSY";
        case PacketType::cutoffs: return "CUTOFFS";
        case PacketType::freeze: return "FREEZE";
        case PacketType::need_ack: return "NEED_ACK";
        case PacketType::ack: return "ACK";
    }
    return "UNKNOWN";
}

PacketType packet_type(const Packet& packet) {
    return std::visit([](const auto& p) { return std::decay_t<decltype(p)>::type; }, packet);
}

const Header& packet_header(const Packet& packet) {
    return std::visit([](const auto& p) -> const Header& { return p.header; }, packet);
}

Expected<RawCommonHeader, Error> peek_common_header(Bytes packet) {
    if (packet.size() < common_header_size) return Unexpected{Error::truncated};
    const std::byte* p = packet.data();
    RawCommonHeader h;
    h.sport = load16(p + off_sport);
    h.dport = load16(p + off_dport);
    h.sequence = load32(p + off_sequence);
    h.type = load8(p + off_type);
    h.doff = load8(p + off_doff);
    h.flags = load8(p + off_flags);
    h.window = load16(p + off_window);
    h.checksum = load16(p + off_checksum);
    h.urgent = load16(p + off_urgent);
    h.sender_id = load64(p + off_sender_id);
    return h;
}

Expected<std::monostate, Error> validate(const Packet& packet) {
    auto header_ok = check_header(packet_header(packet), packet_type(packet));
    if (!header_ok) return header_ok;
    return std::visit(Validator{}, packet);
}

std::size_t encoded_size(const Packet& packet) { return std::visit(Sizer{}, packet); }

Expected<std::size_t, Error> encode(const Packet& packet, MutableBytes out) {
    auto valid = validate(packet);
    if (!valid) return Unexpected{valid.error()};
    if (out.size() < encoded_size(packet)) return Unexpected{Error::buffer_too_small};
    return std::visit(Writer{out.data()}, packet);
}

Expected<std::size_t, Error> encode_data_header(const DataPacket& data,
                                                std::size_t payload_length, MutableBytes out) {
    auto header_ok = check_header(data.header, PacketType::data);
    if (!header_ok) return Unexpected{header_ok.error()};
    auto data_ok = check_data(data, payload_length);
    if (!data_ok) return Unexpected{data_ok.error()};
    if (out.size() < data_header_size) return Unexpected{Error::buffer_too_small};
    store_data_header(out.data(), data);
    return data_header_size;
}

Expected<Packet, Error> decode(Bytes packet) {
    if (packet.size() < common_header_size) return Unexpected{Error::truncated};
    const std::byte* p = packet.data();
    const std::uint8_t type_code = load8(p + off_type);
    if (type_code < min_packet_type || type_code > max_packet_type) {
        return Unexpected{Error::unknown_type};
    }
    const auto type = static_cast<PacketType>(type_code);
    if (packet.size() < header_size(type)) return Unexpected{Error::truncated};
    const Header h = load_header(p);

    Packet result;
    switch (type) {
        case PacketType::data: {
            DataPacket d;
            d.header = h;
            d.message_length = load32(p + off_message_length);
            d.incoming = load32(p + off_incoming);
            d.ack = load_ack(p + off_data_ack);
            d.cutoff_version = load16(p + off_cutoff_version);
            d.retransmit = load8(p + off_retransmit) != 0;
            const std::uint32_t seg_offset = load32(p + off_seg_offset);
            d.offset = seg_offset != seg_offset_in_sequence ? seg_offset
                                                            : load32(p + off_sequence);
            d.payload = packet.subspan(data_header_size);
            result = d;
            break;
        }
        case PacketType::grant:
            result = GrantPacket{h, load32(p + off_grant_offset), load8(p + off_grant_priority)};
            break;
        case PacketType::resend:
            result = ResendPacket{h, load32(p + off_resend_offset), load32(p + off_resend_length),
                                  load8(p + off_resend_priority)};
            break;
        case PacketType::rpc_unknown: result = RpcUnknownPacket{h}; break;
        case PacketType::busy: result = BusyPacket{h}; break;
        case PacketType::cutoffs: {
            CutoffsPacket c;
            c.header = h;
            for (std::size_t i = 0; i < num_priorities; ++i) {
                c.unsched_cutoffs[i] = load32(p + off_cutoffs + 4 * i);
            }
            c.cutoff_version = load16(p + off_cutoffs_version);
            result = c;
            break;
        }
        case PacketType::freeze: result = FreezePacket{h}; break;
        case PacketType::need_ack: result = NeedAckPacket{h}; break;
        case PacketType::ack: {
            AckPacket a;
            a.header = h;
            const std::uint16_t n = load16(p + off_num_acks);
            // The receiver clamps num_acks to 5 (spec 1.4.6).
            a.num_acks = n < max_acks_per_packet ? n : std::uint16_t{max_acks_per_packet};
            for (std::size_t i = 0; i < a.num_acks; ++i) {
                a.acks[i] = load_ack(p + off_acks + ack_entry_size * i);
            }
            result = a;
            break;
        }
    }
    auto valid = validate(result);
    if (!valid) return Unexpected{valid.error()};
    return result;
}

}  // namespace uhoma::wire
