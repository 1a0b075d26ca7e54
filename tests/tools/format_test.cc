// Tests of tools/uhoma-dump/format: the exact text of every kind of line.
#include "uhoma-dump/format.h"

#include <gtest/gtest.h>

#include "tools_support.h"

namespace uhoma::dump {
namespace {

using pcap::Encapsulation;
using pcap::HomaFrame;
using pcap::IpAddress;
using tools_test::ByteVector;
using wire::Header;

const pcap::Timestamp when{1700000000, 123};

HomaFrame frame_v4(Encapsulation e = Encapsulation::udp, std::uint8_t tos = 0xC0) {
    HomaFrame f;
    f.source = IpAddress::v4_from({10, 0, 0, 1});
    f.destination = IpAddress::v4_from({10, 0, 0, 2});
    f.encapsulation = e;
    f.tos = tos;
    f.homa_ports = pcap::HomaPorts{40000, 99};
    return f;
}

std::string line(const wire::Packet& p, HomaFrame f = frame_v4()) {
    return format_packet_line(when, f, p);
}

TEST(format, format_prefix__ipv4_ipv6_and_no_ports) {
    EXPECT_EQ(format_prefix(when, frame_v4()), "1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6");
    HomaFrame v6 = frame_v4(Encapsulation::ip, 0xE0);
    v6.source = *pcap::parse_ip_address("fd00::1");
    v6.destination = *pcap::parse_ip_address("fd00::2");
    EXPECT_EQ(format_prefix(when, v6), "1700000000.000123 [fd00::1].40000 > [fd00::2].99 ip146 prio 7");
    HomaFrame bare = frame_v4(Encapsulation::tcp, 0x20);
    bare.homa_ports.reset();
    EXPECT_EQ(format_prefix(when, bare), "1700000000.000123 10.0.0.1 > 10.0.0.2 tcp prio 1");
}

TEST(format, format_packet_line__data) {
    const ByteVector payload(1424);
    wire::DataPacket d;
    d.header = Header{40000, 99, 1234};
    d.message_length = 5000;
    d.incoming = 5000;
    d.offset = 0;
    d.payload = payload;
    EXPECT_EQ(line(d),
              "1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client "
              "offset 0 len 1424 msg 5000 incoming 5000 cv 0\n");
    d.retransmit = true;
    d.ack = wire::Ack{1232, 99};
    d.cutoff_version = 3;
    d.offset = 2848;
    d.header.sender_id = 1235;
    EXPECT_EQ(describe_packet(d),
              "DATA id 1235 server offset 2848 len 1424 msg 5000 incoming 5000 cv 3 retx "
              "ack 1232:99");
}

TEST(format, format_packet_line__grant_and_resend) {
    EXPECT_EQ(describe_packet(wire::GrantPacket{Header{99, 40000, 1235}, 60000, 2}),
              "GRANT id 1235 server offset 60000 grant_prio 2");
    EXPECT_EQ(describe_packet(wire::ResendPacket{Header{99, 40000, 1235}, 0,
                                                 wire::resend_everything, 7}),
              "RESEND id 1235 server offset 0 length all resend_prio 7");
    EXPECT_EQ(describe_packet(wire::ResendPacket{Header{99, 40000, 1235}, 1424, 2848, 6}),
              "RESEND id 1235 server offset 1424 length 2848 resend_prio 6");
}

TEST(format, format_packet_line__cutoffs) {
    const wire::CutoffsPacket c{Header{99, 40000, 0},
                                {1000000, 1000000, 1000000, 1000000, 1000000, 15000, 2800, 200},
                                3};
    EXPECT_EQ(line(c, frame_v4(Encapsulation::ip, 0xE0)),
              "1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 7 CUTOFFS id 0 "
              "cutoffs 1000000,1000000,1000000,1000000,1000000,15000,2800,200 version 3\n");
}

TEST(format, format_packet_line__ack) {
    wire::AckPacket a{Header{40000, 99, 1234}};
    EXPECT_EQ(describe_packet(a), "ACK id 1234 client acks none");
    a.num_acks = 2;
    a.acks[0] = wire::Ack{1236, 99};
    a.acks[1] = wire::Ack{1238, 99};
    EXPECT_EQ(describe_packet(a), "ACK id 1234 client acks 1236:99,1238:99");
}

TEST(format, format_packet_line__header_only_types) {
    EXPECT_EQ(describe_packet(wire::RpcUnknownPacket{Header{1, 2, 1235}}), "RPC_UNKNOWN id 1235 server");
    EXPECT_EQ(describe_packet(wire::BusyPacket{Header{1, 2, 1234}}), "BUSY id 1234 client");
    EXPECT_EQ(describe_packet(wire::FreezePacket{Header{1, 2, 0}}), "FREEZE id 0");
    EXPECT_EQ(describe_packet(wire::FreezePacket{Header{1, 2, 1}}), "FREEZE id 1");
    EXPECT_EQ(describe_packet(wire::NeedAckPacket{Header{1, 2, 1235}}), "NEED_ACK id 1235 server");
}

TEST(format, format_segment_line__numbers_segments_from_one) {
    const ByteVector payload(100);
    wire::DataPacket d;
    d.header = Header{40000, 99, 12};
    d.message_length = 4000;
    d.incoming = 4000;
    d.offset = 2848;
    d.payload = payload;
    EXPECT_EQ(format_segment_line(when, frame_v4(), d, 2, 3),
              "1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 12 client "
              "offset 2848 len 100 msg 4000 incoming 4000 cv 0 tso 3/3\n");
}

TEST(format, format_gso_line__numbers_packets_from_one) {
    const wire::GrantPacket g{Header{99, 40000, 13}, 60000, 2};
    HomaFrame f = frame_v4(Encapsulation::udp, 0xE0);
    f.homa_ports = pcap::HomaPorts{99, 40000};
    EXPECT_EQ(format_gso_line(when, f, g, 0, 2),
              "1700000000.000123 10.0.0.1.99 > 10.0.0.2.40000 udp prio 7 GRANT id 13 server "
              "offset 60000 grant_prio 2 gso 1/2\n");
    const ByteVector payload(1424);
    wire::DataPacket d;
    d.header = Header{40000, 99, 12};
    d.message_length = 4000;
    d.incoming = 4000;
    d.offset = 1424;
    d.payload = payload;
    EXPECT_EQ(format_gso_line(when, frame_v4(), d, 1, 3),
              "1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 12 client "
              "offset 1424 len 1424 msg 4000 incoming 4000 cv 0 gso 2/3\n");
}

TEST(format, format_malformed_line__with_and_without_common_header) {
    ByteVector bytes = tools_test::encode(wire::GrantPacket{Header{40000, 99, 1235}, 60000, 2});
    bytes[11] = std::byte{0x42};
    HomaFrame f = frame_v4();
    f.homa = bytes;
    f.homa_length = bytes.size();
    EXPECT_EQ(format_malformed_line(when, f, wire::Error::unknown_type),
              "1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 MALFORMED unknown_type "
              "len 33 type 0x42 id 1235\n");
    f.homa = wire::Bytes(bytes).first(20);
    f.homa_length = 20;
    f.homa_ports.reset();
    EXPECT_EQ(format_malformed_line(when, f, wire::Error::truncated),
              "1700000000.000123 10.0.0.1 > 10.0.0.2 udp prio 6 MALFORMED truncated len 20\n");
}

TEST(format, format_truncated_line__shows_captured_and_announced_lengths) {
    const ByteVector bytes(30);
    HomaFrame f = frame_v4(Encapsulation::ip, 0);
    f.homa = bytes;
    f.homa_length = 1480;
    EXPECT_EQ(format_truncated_line(when, f),
              "1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 0 TRUNCATED "
              "captured 30 of 1480\n");
}

TEST(format, format_hex__tcpdump_layout) {
    ByteVector bytes;
    for (unsigned i = 0; i < 19; ++i) bytes.push_back(static_cast<std::byte>(i * 17));
    EXPECT_EQ(format_hex(bytes),
              "\t0x0000:  0011 2233 4455 6677 8899 aabb ccdd eeff\n"
              "\t0x0010:  1021 32\n");
    EXPECT_EQ(format_hex({}), "");
}

TEST(format, format_summary__lists_every_type) {
    Counters c;
    c.by_type[0] = 5;  // DATA
    c.by_type[8] = 1;  // ACK
    c.malformed = 2;
    c.truncated = 1;
    c.not_homa = 3;
    c.unreadable = 4;
    EXPECT_EQ(c.homa_packets(), 9u);
    EXPECT_EQ(format_summary(c),
              "uhoma-dump: 9 Homa packets (DATA 5, GRANT 0, RESEND 0, RPC_UNKNOWN 0, BUSY 0, "
              "CUTOFFS 0, FREEZE 0, NEED_ACK 0, ACK 1), 2 malformed, 1 truncated; skipped 3 not "
              "Homa, 4 unreadable\n");
    c.kernel_drops = 7;
    EXPECT_NE(format_summary(c).find("4 unreadable; kernel dropped 7\n"), std::string::npos);
}

}  // namespace
}  // namespace uhoma::dump
