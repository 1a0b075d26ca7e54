#include "support/packets.h"

#include <ios>
#include <sstream>
#include <type_traits>
#include <variant>

namespace uhoma::wire {

namespace {

struct Hex {
    std::uint64_t value;
};
std::ostream& operator<<(std::ostream& os, Hex h) {
    const auto flags = os.flags();
    os << "0x" << std::hex << std::uppercase << h.value;
    os.flags(flags);
    return os;
}

}  // namespace

void PrintTo(Error error, std::ostream* os) {
    *os << error_name(error);
}

void PrintTo(PacketType type, std::ostream* os) {
    *os << packet_type_name(type);
}

void PrintTo(const Header& h, std::ostream* os) {
    *os << "sport=" << h.sport << " dport=" << h.dport << " sender_id=" << Hex{h.sender_id};
}

void PrintTo(const Ack& ack, std::ostream* os) {
    *os << "{client_id=" << Hex{ack.client_id} << " server_port=" << ack.server_port << "}";
}

void PrintTo(const DataPacket& p, std::ostream* os) {
    *os << "DATA ";
    PrintTo(p.header, os);
    *os << " message_length=" << p.message_length << " incoming=" << p.incoming << " ack=";
    PrintTo(p.ack, os);
    *os << " cutoff_version=" << p.cutoff_version << " retransmit=" << p.retransmit
        << " offset=" << p.offset << " payload[" << p.payload.size() << "]=["
        << uhoma::test::hex_from_bytes(p.payload) << "]";
}

void PrintTo(const GrantPacket& p, std::ostream* os) {
    *os << "GRANT ";
    PrintTo(p.header, os);
    *os << " offset=" << p.offset << " priority=" << unsigned{p.priority};
}

void PrintTo(const ResendPacket& p, std::ostream* os) {
    *os << "RESEND ";
    PrintTo(p.header, os);
    *os << " offset=" << p.offset << " length=" << p.length << " priority=" << unsigned{p.priority};
}

void PrintTo(const RpcUnknownPacket& p, std::ostream* os) {
    *os << "RPC_UNKNOWN ";
    PrintTo(p.header, os);
}

void PrintTo(const BusyPacket& p, std::ostream* os) {
    *os << "BUSY ";
    PrintTo(p.header, os);
}

void PrintTo(const CutoffsPacket& p, std::ostream* os) {
    *os << "CUTOFFS ";
    PrintTo(p.header, os);
    *os << " unsched_cutoffs=[";
    for (std::size_t i = 0; i < p.unsched_cutoffs.size(); ++i) {
        *os << (i ? " " : "") << Hex{p.unsched_cutoffs[i]};
    }
    *os << "] cutoff_version=" << p.cutoff_version;
}

void PrintTo(const FreezePacket& p, std::ostream* os) {
    *os << "FREEZE ";
    PrintTo(p.header, os);
}

void PrintTo(const NeedAckPacket& p, std::ostream* os) {
    *os << "NEED_ACK ";
    PrintTo(p.header, os);
}

void PrintTo(const AckPacket& p, std::ostream* os) {
    *os << "ACK ";
    PrintTo(p.header, os);
    *os << " num_acks=" << p.num_acks << " acks=[";
    for (std::size_t i = 0; i < p.acks.size(); ++i) {
        if (i) *os << " ";
        PrintTo(p.acks[i], os);
    }
    *os << "]";
}

void PrintTo(const Packet& packet, std::ostream* os) {
    std::visit([os](const auto& p) { PrintTo(p, os); }, packet);
}

}  // namespace uhoma::wire

namespace uhoma::test {

std::string describe(const wire::Packet& packet) {
    std::ostringstream os;
    wire::PrintTo(packet, &os);
    return os.str();
}

bool same_data(const wire::DataPacket& a, const wire::DataPacket& b) {
    return a.header == b.header && a.message_length == b.message_length &&
           a.incoming == b.incoming && a.ack == b.ack && a.cutoff_version == b.cutoff_version &&
           a.retransmit == b.retransmit && a.offset == b.offset && same_bytes(a.payload, b.payload);
}

bool same_packet(const wire::Packet& a, const wire::Packet& b) {
    if (a.index() != b.index()) return false;
    return std::visit(
        [&b](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, wire::DataPacket>) {
                return same_data(x, std::get<T>(b));
            } else {
                return x == std::get<T>(b);
            }
        },
        a);
}

::testing::AssertionResult packets_equal(const wire::Packet& actual, const wire::Packet& expected) {
    if (same_packet(actual, expected)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "packets differ\n  actual:   " << describe(actual)
                                         << "\n  expected: " << describe(expected);
}

Expected<ByteVector, wire::Error> encode_to_vector(const wire::Packet& packet) {
    ByteVector out(wire::encoded_size(packet));
    auto written = wire::encode(packet, out);
    if (!written) return Unexpected{written.error()};
    out.resize(*written);
    return out;
}

ByteVector exact_copy(std::span<const std::byte> bytes) {
    return ByteVector(bytes.begin(), bytes.end());
}

}  // namespace uhoma::test
