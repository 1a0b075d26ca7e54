// String building by appending "name value" pieces; one visitor overload per
// packet type keeps each type's field list in one place.
#include "uhoma-dump/format.h"

#include <cstdio>
#include <numeric>
#include <variant>

#include "wire/codec.h"
#include "wire/ids.h"

namespace uhoma::dump {

namespace {

void field(std::string& out, const char* name, std::uint64_t value) {
    out += ' ';
    out += name;
    out += ' ';
    out += std::to_string(value);
}

std::string endpoint(const pcap::IpAddress& address, std::optional<std::uint16_t> port) {
    // Appends rather than operator+ on literals: GCC 12 at -O3 warns falsely
    // (-Wrestrict) about "x" + std::string.
    std::string out;
    if (address.v6) out += '[';
    out += address.to_string();
    if (address.v6) out += ']';
    if (port) {
        out += '.';
        out += std::to_string(*port);
    }
    return out;
}

std::string ack_text(const wire::Ack& ack) {
    return std::to_string(ack.client_id) + ":" + std::to_string(ack.server_port);
}

// "TYPE id N [client|server]".
std::string head(wire::PacketType type, std::uint64_t id) {
    std::string out = wire::packet_type_name(type);
    field(out, "id", id);
    if (wire::is_valid_rpc_id(id)) out += wire::is_client_id(id) ? " client" : " server";
    return out;
}

struct Describer {
    std::string operator()(const wire::DataPacket& p) const {
        std::string out = head(p.type, p.header.sender_id);
        field(out, "offset", p.offset);
        field(out, "len", p.payload.size());
        field(out, "msg", p.message_length);
        field(out, "incoming", p.incoming);
        field(out, "cv", p.cutoff_version);
        if (p.retransmit) out += " retx";
        if (!p.ack.empty()) out += " ack " + ack_text(p.ack);
        return out;
    }
    std::string operator()(const wire::GrantPacket& p) const {
        std::string out = head(p.type, p.header.sender_id);
        field(out, "offset", p.offset);
        field(out, "grant_prio", p.priority);
        return out;
    }
    std::string operator()(const wire::ResendPacket& p) const {
        std::string out = head(p.type, p.header.sender_id);
        field(out, "offset", p.offset);
        if (p.length == wire::resend_everything) {
            out += " length all";
        } else {
            field(out, "length", p.length);
        }
        field(out, "resend_prio", p.priority);
        return out;
    }
    std::string operator()(const wire::CutoffsPacket& p) const {
        std::string out = head(p.type, p.header.sender_id);
        out += " cutoffs ";
        for (std::size_t i = 0; i < p.unsched_cutoffs.size(); ++i) {
            if (i > 0) out += ',';
            out += std::to_string(p.unsched_cutoffs[i]);
        }
        field(out, "version", p.cutoff_version);
        return out;
    }
    std::string operator()(const wire::AckPacket& p) const {
        std::string out = head(p.type, p.header.sender_id);
        out += " acks ";
        if (p.num_acks == 0) out += "none";
        for (std::size_t i = 0; i < p.num_acks; ++i) {
            if (i > 0) out += ',';
            out += ack_text(p.acks[i]);
        }
        return out;
    }
    // RPC_UNKNOWN, BUSY, FREEZE, NEED_ACK: the common header only.
    template <typename T>
    std::string operator()(const T& p) const {
        return head(p.type, p.header.sender_id);
    }
};

}  // namespace

std::string format_prefix(pcap::Timestamp time, const pcap::HomaFrame& frame) {
    std::optional<std::uint16_t> sport;
    std::optional<std::uint16_t> dport;
    if (frame.homa_ports) {
        sport = frame.homa_ports->source;
        dport = frame.homa_ports->destination;
    }
    std::string out = time.to_string();
    out += ' ' + endpoint(frame.source, sport) + " > " + endpoint(frame.destination, dport);
    out += ' ';
    out += pcap::encapsulation_name(frame.encapsulation);
    field(out, "prio", frame.priority());
    return out;
}

std::string describe_packet(const wire::Packet& packet) {
    return std::visit(Describer{}, packet);
}

std::string format_packet_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                               const wire::Packet& packet) {
    return format_prefix(time, frame) + ' ' + describe_packet(packet) + '\n';
}

std::string format_segment_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                                const wire::DataPacket& segment, std::size_t index,
                                std::size_t count) {
    return format_prefix(time, frame) + ' ' + describe_packet(segment) + " tso " +
           std::to_string(index + 1) + '/' + std::to_string(count) + '\n';
}

std::string format_gso_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                            const wire::Packet& packet, std::size_t index, std::size_t count) {
    return format_prefix(time, frame) + ' ' + describe_packet(packet) + " gso " +
           std::to_string(index + 1) + '/' + std::to_string(count) + '\n';
}

std::string format_malformed_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                                  wire::Error error) {
    std::string out = format_prefix(time, frame) + " MALFORMED " + wire::error_name(error);
    field(out, "len", frame.homa.size());
    auto common = wire::peek_common_header(frame.homa);
    if (common) {
        char type[8];
        std::snprintf(type, sizeof type, "0x%02x", common->type);
        out += " type ";
        out += type;
        field(out, "id", common->sender_id);
    }
    return out + '\n';
}

std::string format_truncated_line(pcap::Timestamp time, const pcap::HomaFrame& frame) {
    std::string out = format_prefix(time, frame) + " TRUNCATED";
    field(out, "captured", frame.homa.size());
    field(out, "of", frame.homa_length);
    return out + '\n';
}

std::string format_hex(wire::Bytes bytes) {
    std::string out;
    char piece[32];
    for (std::size_t line = 0; line < bytes.size(); line += 16) {
        std::snprintf(piece, sizeof piece, "\t0x%04zx: ", line);
        out += piece;
        for (std::size_t i = line; i < line + 16 && i < bytes.size(); ++i) {
            if ((i - line) % 2 == 0) out += ' ';
            std::snprintf(piece, sizeof piece, "%02x", static_cast<unsigned>(bytes[i]));
            out += piece;
        }
        out += '\n';
    }
    return out;
}

std::uint64_t Counters::decoded() const {
    return std::accumulate(by_type.begin(), by_type.end(), std::uint64_t{0});
}

std::string format_summary(const Counters& counters) {
    std::string out = "uhoma-dump: " + std::to_string(counters.homa_packets()) + " Homa packets (";
    for (std::size_t i = 0; i < counters.by_type.size(); ++i) {
        if (i > 0) out += ", ";
        out += wire::packet_type_name(static_cast<wire::PacketType>(wire::min_packet_type + i));
        out += ' ' + std::to_string(counters.by_type[i]);
    }
    out += "), " + std::to_string(counters.malformed) + " malformed, " +
           std::to_string(counters.truncated) + " truncated; skipped " +
           std::to_string(counters.not_homa) + " not Homa, " +
           std::to_string(counters.unreadable) + " unreadable";
    if (counters.kernel_drops) out += "; kernel dropped " + std::to_string(*counters.kernel_drops);
    return out + '\n';
}

}  // namespace uhoma::dump
