// End-to-end tests of the uhoma-dump binary: a capture made here, with every
// packet type in every encapsulation plus garbage, is dumped and the output
// compared line by line; then exit statuses, -c, -x, and the Dumper class.
#include <gtest/gtest.h>

#include <random>

#include "pcap/frame_builder.h"
#include "pcap/pcap_writer.h"
#include "tools_support.h"
#include "uhoma-dump/dumper.h"
#include "wire/tso.h"

namespace uhoma::dump {
namespace {

using pcap::Encapsulation;
using pcap::FrameSpec;
using pcap::IpAddress;
using tools_test::ByteVector;
using tools_test::ProcessResult;
using tools_test::TempDir;
using tools_test::encode;
using tools_test::run_process;
using tools_test::split_lines;
using wire::Header;

constexpr std::uint16_t homa_udp_port = 4000;

// The payload bytes of the DATA packets below.
const ByteVector payload = [] {
    ByteVector b(4000);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>(i);
    return b;
}();

// One of each type, client 40000 <-> server 99, RPC 1234/1235.
std::vector<std::pair<wire::Packet, std::uint8_t>> every_type() {
    wire::DataPacket data;
    data.header = Header{40000, 99, 1234};
    data.message_length = 5000;
    data.incoming = 5000;
    data.payload = wire::Bytes(payload).first(100);
    wire::DataPacket retx = data;
    retx.offset = 1424;
    retx.retransmit = true;
    retx.ack = wire::Ack{1232, 99};
    retx.cutoff_version = 3;
    wire::AckPacket ack{Header{40000, 99, 1234}};
    ack.num_acks = 2;
    ack.acks[0] = wire::Ack{1236, 99};
    ack.acks[1] = wire::Ack{1238, 99};
    return {
        {data, 6},
        {retx, 7},
        {wire::GrantPacket{Header{99, 40000, 1235}, 60000, 2}, 7},
        {wire::ResendPacket{Header{99, 40000, 1235}, 0, wire::resend_everything, 7}, 7},
        {wire::RpcUnknownPacket{Header{99, 40000, 1235}}, 7},
        {wire::BusyPacket{Header{99, 40000, 1235}}, 7},
        {wire::CutoffsPacket{Header{99, 40000, 0},
                             {1000000, 1000000, 1000000, 1000000, 1000000, 15000, 2800, 200},
                             3},
         7},
        {wire::FreezePacket{Header{40000, 99, 0}}, 7},
        {wire::NeedAckPacket{Header{99, 40000, 1235}}, 7},
        {ack, 7},
    };
}

// Builds the test capture: one record per call of add(), 10 us apart.
class CaptureBuilder {
public:
    explicit CaptureBuilder(const std::string& path) : writer_(pcap::PcapWriter::open(path).value()) {}

    void add(const ByteVector& frame, std::optional<std::size_t> original = std::nullopt) {
        writer_.write(pcap::Timestamp::from_micros(1'700'000'000'000'000 + next_++ * 10), frame,
                      original);
    }
    void add(const FrameSpec& spec, const ByteVector& homa, std::size_t captured = SIZE_MAX) {
        auto frame = pcap::build_ethernet_frame(spec, homa);
        ASSERT_TRUE(frame);
        if (captured < frame->size()) {
            add(ByteVector(frame->begin(), frame->begin() + static_cast<std::ptrdiff_t>(captured)),
                frame->size());
        } else {
            add(*frame);
        }
    }

private:
    pcap::PcapWriter writer_;
    std::int64_t next_ = 0;
};

FrameSpec spec(const wire::Packet& p, Encapsulation e, std::uint8_t priority, bool v6 = false) {
    // The client is 10.0.0.1 / fd00::1; who sends depends on the packet.
    const bool from_client = wire::packet_header(p).sport == 40000;
    const IpAddress client = v6 ? *pcap::parse_ip_address("fd00::1") : IpAddress::v4_from({10, 0, 0, 1});
    const IpAddress server = v6 ? *pcap::parse_ip_address("fd00::2") : IpAddress::v4_from({10, 0, 0, 2});
    FrameSpec s;
    s.source = from_client ? client : server;
    s.destination = from_client ? server : client;
    s.encapsulation = e;
    s.priority = priority;
    s.udp_source_port = homa_udp_port;
    s.udp_destination_port = homa_udp_port;
    return s;
}

void write_test_capture(const std::string& path) {
    CaptureBuilder out(path);
    // Every type, raw IP protocol 146 then UDP.
    for (Encapsulation e : {Encapsulation::ip, Encapsulation::udp}) {
        for (const auto& [packet, priority] : every_type()) {
            out.add(spec(packet, e, priority), encode(packet));
        }
    }
    const auto types = every_type();
    // IPv6: DATA and GRANT raw, ACK over UDP.
    out.add(spec(types[0].first, Encapsulation::ip, 6, true), encode(types[0].first));
    out.add(spec(types[2].first, Encapsulation::ip, 7, true), encode(types[2].first));
    out.add(spec(types[9].first, Encapsulation::udp, 7, true), encode(types[9].first));
    // A GRANT with one VLAN tag, a BUSY with two, a hijacked-TCP DATA.
    FrameSpec tagged = spec(types[2].first, Encapsulation::udp, 7);
    tagged.vlan_ids = {100};
    out.add(tagged, encode(types[2].first));
    FrameSpec qinq = spec(types[5].first, Encapsulation::ip, 7);
    qinq.vlan_ids = {100, 200};
    out.add(qinq, encode(types[5].first));
    out.add(spec(types[0].first, Encapsulation::tcp, 0), encode(types[0].first));
    // A 3-segment TSO DATA packet (4000 bytes at MTU 1500).
    {
        wire::DataPacket fields = std::get<wire::DataPacket>(types[0].first);
        fields.message_length = 4000;
        fields.incoming = 4000;
        const std::vector<wire::Segment> segments = {
            {0, wire::Bytes(payload).subspan(0, 1424)},
            {1424, wire::Bytes(payload).subspan(1424, 1424)},
            {2848, wire::Bytes(payload).subspan(2848, 1152)}};
        ByteVector tso(wire::multi_segment_size(segments));
        ASSERT_TRUE(wire::encode_multi_segment_data(fields, segments, 1424, tso));
        out.add(spec(fields, Encapsulation::ip, 5), tso);
    }

    // Garbage on the Homa port: 64 random bytes (fixed seed; raw engine
    // output, which the standard pins down), a valid header with type 0x42,
    // 10 bytes, a DATA with source port 0.
    std::mt19937 rng(12345);
    ByteVector random(64);
    for (std::byte& b : random) b = static_cast<std::byte>(rng() & 0xFF);
    const FrameSpec garbage = spec(types[0].first, Encapsulation::udp, 0);
    out.add(garbage, random);
    ByteVector unknown = encode(types[2].first);
    unknown[11] = std::byte{0x42};
    out.add(spec(types[2].first, Encapsulation::udp, 0), unknown);
    out.add(spec(types[0].first, Encapsulation::ip, 0), ByteVector(10, std::byte{0x10}));
    ByteVector zero_port = encode(types[0].first);
    zero_port[0] = zero_port[1] = std::byte{0};
    out.add(garbage, zero_port);
    // A DATA frame captured shorter than its IP length (snaplen 96).
    out.add(spec(types[0].first, Encapsulation::ip, 6), encode(types[0].first), 96);
    // Not Homa: UDP to port 53, and an ARP request.
    FrameSpec dns = garbage;
    dns.udp_destination_port = 53;
    dns.udp_source_port = 5353;
    out.add(dns, ByteVector(40, std::byte{0x01}));
    out.add(tools_test::bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08,
                               0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 1, 10, 0,
                               0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2}));
}

// The whole expected stdout, one line per packet (per segment for TSO).
const char* const expected_dump =
    // Raw IP protocol 146.
    "1700000000.000000 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 6 DATA id 1234 client offset 0 len 100 msg 5000 incoming 5000 cv 0\n"
    "1700000000.000010 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 7 DATA id 1234 client offset 1424 len 100 msg 5000 incoming 5000 cv 3 retx ack 1232:99\n"
    "1700000000.000020 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 GRANT id 1235 server offset 60000 grant_prio 2\n"
    "1700000000.000030 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 RESEND id 1235 server offset 0 length all resend_prio 7\n"
    "1700000000.000040 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 RPC_UNKNOWN id 1235 server\n"
    "1700000000.000050 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 BUSY id 1235 server\n"
    "1700000000.000060 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 CUTOFFS id 0 cutoffs 1000000,1000000,1000000,1000000,1000000,15000,2800,200 version 3\n"
    "1700000000.000070 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 7 FREEZE id 0\n"
    "1700000000.000080 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 NEED_ACK id 1235 server\n"
    "1700000000.000090 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 7 ACK id 1234 client acks 1236:99,1238:99\n"
    // UDP on port 4000.
    "1700000000.000100 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client offset 0 len 100 msg 5000 incoming 5000 cv 0\n"
    "1700000000.000110 10.0.0.1.40000 > 10.0.0.2.99 udp prio 7 DATA id 1234 client offset 1424 len 100 msg 5000 incoming 5000 cv 3 retx ack 1232:99\n"
    "1700000000.000120 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 GRANT id 1235 server offset 60000 grant_prio 2\n"
    "1700000000.000130 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 RESEND id 1235 server offset 0 length all resend_prio 7\n"
    "1700000000.000140 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 RPC_UNKNOWN id 1235 server\n"
    "1700000000.000150 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 BUSY id 1235 server\n"
    "1700000000.000160 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 CUTOFFS id 0 cutoffs 1000000,1000000,1000000,1000000,1000000,15000,2800,200 version 3\n"
    "1700000000.000170 10.0.0.1.40000 > 10.0.0.2.99 udp prio 7 FREEZE id 0\n"
    "1700000000.000180 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 NEED_ACK id 1235 server\n"
    "1700000000.000190 10.0.0.1.40000 > 10.0.0.2.99 udp prio 7 ACK id 1234 client acks 1236:99,1238:99\n"
    // IPv6, VLAN, hijacked TCP, TSO.
    "1700000000.000200 [fd00::1].40000 > [fd00::2].99 ip146 prio 6 DATA id 1234 client offset 0 len 100 msg 5000 incoming 5000 cv 0\n"
    "1700000000.000210 [fd00::2].99 > [fd00::1].40000 ip146 prio 7 GRANT id 1235 server offset 60000 grant_prio 2\n"
    "1700000000.000220 [fd00::1].40000 > [fd00::2].99 udp prio 7 ACK id 1234 client acks 1236:99,1238:99\n"
    "1700000000.000230 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 GRANT id 1235 server offset 60000 grant_prio 2\n"
    "1700000000.000240 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 BUSY id 1235 server\n"
    "1700000000.000250 10.0.0.1.40000 > 10.0.0.2.99 tcp prio 0 DATA id 1234 client offset 0 len 100 msg 5000 incoming 5000 cv 0\n"
    "1700000000.000260 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 5 DATA id 1234 client offset 0 len 1424 msg 4000 incoming 4000 cv 0 tso 1/3\n"
    "1700000000.000260 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 5 DATA id 1234 client offset 1424 len 1424 msg 4000 incoming 4000 cv 0 tso 2/3\n"
    "1700000000.000260 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 5 DATA id 1234 client offset 2848 len 1152 msg 4000 incoming 4000 cv 0 tso 3/3\n"
    // Garbage.
    "1700000000.000270 10.0.0.1.58085 > 10.0.0.2.7553 udp prio 0 MALFORMED unknown_type len 64 type 0x01 id 15020288757616759250\n"
    "1700000000.000280 10.0.0.2.99 > 10.0.0.1.40000 udp prio 0 MALFORMED unknown_type len 33 type 0x42 id 1235\n"
    "1700000000.000290 10.0.0.1 > 10.0.0.2 ip146 prio 0 MALFORMED truncated len 10\n"
    "1700000000.000300 10.0.0.1.0 > 10.0.0.2.99 udp prio 0 MALFORMED bad_port len 156 type 0x10 id 1234\n"
    "1700000000.000310 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 6 TRUNCATED captured 62 of 156\n";

const char* const expected_summary =
    "uhoma-dump: 32 Homa packets (DATA 7, GRANT 4, RESEND 2, RPC_UNKNOWN 2, BUSY 3, CUTOFFS 2, "
    "FREEZE 2, NEED_ACK 2, ACK 3), 4 malformed, 1 truncated; skipped 2 not Homa, 0 unreadable\n";

class UhomaDumpTest : public ::testing::Test {
protected:
    void SetUp() override { write_test_capture(capture_); }
    ProcessResult dump(std::vector<std::string> args) {
        std::vector<std::string> argv{tools_test::tool_path("uhoma-dump")};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, dir_);
    }
    TempDir dir_;
    const std::string capture_ = dir_.file("test.pcap");
};

// Compares line by line first, for readable failures.
void expect_same_lines(const std::string& actual, const std::string& expected) {
    const auto a = split_lines(actual);
    const auto e = split_lines(expected);
    for (std::size_t i = 0; i < std::min(a.size(), e.size()); ++i) {
        EXPECT_EQ(a[i], e[i]) << "line " << i + 1;
    }
    EXPECT_EQ(a.size(), e.size());
    EXPECT_EQ(actual, expected);
}

TEST_F(UhomaDumpTest, uhoma_dump__prints_every_packet_exactly) {
    const ProcessResult r = dump({"-r", capture_, "-u", "4000"});
    EXPECT_EQ(r.status, 0) << r.err;
    expect_same_lines(r.out, expected_dump);
    EXPECT_EQ(r.err, expected_summary);
}

TEST_F(UhomaDumpTest, uhoma_dump__without_udp_ports_sees_only_ip_and_tcp) {
    const ProcessResult r = dump({"-r", capture_});
    EXPECT_EQ(r.status, 0) << r.err;
    for (const std::string& line : split_lines(r.out)) {
        EXPECT_EQ(line.find(" udp "), std::string::npos) << line;
    }
    EXPECT_EQ(split_lines(r.out).size(), 10u + 2 + 1 + 1 + 3 + 1 + 1);
    EXPECT_NE(r.err.find("skipped 17 not Homa"), std::string::npos) << r.err;
}

TEST_F(UhomaDumpTest, uhoma_dump__count_stops_after_three_lines) {
    const ProcessResult r = dump({"-r", capture_, "-u", "4000", "-c", "3"});
    EXPECT_EQ(r.status, 0) << r.err;
    const auto all = split_lines(expected_dump);
    EXPECT_EQ(r.out, all[0] + "\n" + all[1] + "\n" + all[2] + "\n");
    EXPECT_TRUE(r.err.starts_with("uhoma-dump: 3 Homa packets (DATA 2, GRANT 1,")) << r.err;
}

TEST_F(UhomaDumpTest, uhoma_dump__hex_dump_under_each_line) {
    const ProcessResult r = dump({"-r", capture_, "-u", "4000", "-c", "3", "-x"});
    EXPECT_EQ(r.status, 0) << r.err;
    const auto lines = split_lines(r.out);
    ASSERT_GE(lines.size(), 4u);
    EXPECT_EQ(lines[0], split_lines(expected_dump)[0]);
    // DATA id 1234: sport 40000 (9c40), dport 99 (0063), sequence 0, type 0x10.
    EXPECT_EQ(lines[1], "\t0x0000:  9c40 0063 0000 0000 0000 0010 e006 0000");
    // The GRANT is 33 bytes: three hex lines.
    const auto grant = std::find(lines.begin(), lines.end(), split_lines(expected_dump)[2]);
    ASSERT_NE(grant, lines.end());
    ASSERT_EQ(lines.end() - grant, 4);
    EXPECT_EQ(*(grant + 3), "\t0x0020:  02");
}

TEST_F(UhomaDumpTest, uhoma_dump__mtu_sets_the_segment_size) {
    // At MTU 9000 the 4000-byte TSO packet is one (oversized) segment whose
    // layout does not match: the codec says so.
    const ProcessResult r = dump({"-r", capture_, "-u", "4000", "--mtu", "9000"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out.find("tso 1/3"), std::string::npos);
    EXPECT_NE(r.out.find("1700000000.000260 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 5 "), std::string::npos);
}

TEST_F(UhomaDumpTest, uhoma_dump__missing_file_is_a_runtime_error) {
    const ProcessResult r = dump({"-r", dir_.file("missing.pcap")});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "uhoma-dump: " + dir_.file("missing.pcap") + ": No such file or directory\n");
}

TEST_F(UhomaDumpTest, uhoma_dump__not_a_capture_file_is_a_runtime_error) {
    const std::string junk = dir_.file("junk.pcap");
    {
        std::ofstream out(junk);
        out << "this is not a capture file\n";
    }
    const ProcessResult r = dump({"-r", junk});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(split_lines(r.err).size(), 1u) << r.err;
    EXPECT_TRUE(r.err.starts_with("uhoma-dump: " + junk + ": ")) << r.err;
}

TEST_F(UhomaDumpTest, uhoma_dump__bad_option_is_a_usage_error) {
    ProcessResult r = dump({"-r", capture_, "--bogus"});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "uhoma-dump: unknown option '--bogus' (try -h)\n");
    r = dump({"-r", capture_, "-c", "many"});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(split_lines(r.err).size(), 1u);
    r = dump({});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "uhoma-dump: give -r FILE or -i INTERFACE (try -h)\n");
}

TEST_F(UhomaDumpTest, uhoma_dump__help_goes_to_stdout) {
    const ProcessResult r = dump({"-h"});
    EXPECT_EQ(r.status, 0);
    EXPECT_TRUE(r.out.starts_with("usage: uhoma-dump")) << r.out;
    EXPECT_EQ(r.err, "");
}

// A minimal pcapng file (section header, one Ethernet interface, enhanced
// packet blocks), little-endian, written by hand: libpcap reads pcapng but
// cannot write it.
void write_pcapng(const std::string& path, const std::vector<ByteVector>& frames) {
    ByteVector out;
    auto u16 = [&](std::uint16_t v) {
        for (int i = 0; i < 2; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
    };
    auto u32 = [&](std::uint32_t v) {
        for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
    };
    u32(0x0A0D0D0A);  // section header block
    u32(28);
    u32(0x1A2B3C4D);
    u16(1);
    u16(0);
    u32(0xFFFFFFFF);  // section length: unknown
    u32(0xFFFFFFFF);
    u32(28);
    u32(1);  // interface description block
    u32(20);
    u16(1);  // LINKTYPE_ETHERNET
    u16(0);
    u32(65535);
    u32(20);
    std::uint64_t micros = 1'700'000'000'000'000;
    for (const ByteVector& frame : frames) {
        const auto padded = static_cast<std::uint32_t>((frame.size() + 3) / 4 * 4);
        u32(6);  // enhanced packet block
        u32(32 + padded);
        u32(0);
        u32(static_cast<std::uint32_t>(micros >> 32));
        u32(static_cast<std::uint32_t>(micros));
        u32(static_cast<std::uint32_t>(frame.size()));
        u32(static_cast<std::uint32_t>(frame.size()));
        out.insert(out.end(), frame.begin(), frame.end());
        out.resize(out.size() + (padded - frame.size()));
        u32(32 + padded);
        micros += 5;
    }
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
}

TEST_F(UhomaDumpTest, uhoma_dump__reads_pcapng) {
    const auto types = every_type();
    std::vector<ByteVector> frames;
    for (std::size_t i : {2u, 9u}) {
        frames.push_back(*pcap::build_ethernet_frame(spec(types[i].first, Encapsulation::udp, 7),
                                                     encode(types[i].first)));
    }
    const std::string path = dir_.file("test.pcapng");
    write_pcapng(path, frames);
    const ProcessResult r = dump({"-r", path, "-u", "4000"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out,
              "1700000000.000000 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 GRANT id 1235 server "
              "offset 60000 grant_prio 2\n"
              "1700000000.000005 10.0.0.1.40000 > 10.0.0.2.99 udp prio 7 ACK id 1234 client "
              "acks 1236:99,1238:99\n");
}

// --- UDP GSO trains ----------------------------------------------------------

wire::DataPacket request(std::uint32_t length, std::uint32_t offset = 0) {
    wire::DataPacket d;
    d.header = Header{40000, 99, 1234};
    d.message_length = length;
    d.incoming = length;
    d.offset = offset;
    return d;
}

// A DATA train from the client whose second packet has offset 2000 instead
// of 1424: 3 x (56 + 1424) bytes of a 4300-byte message. Whole, it is one
// DATA packet whose payload runs past the end of the message.
ByteVector inconsistent_train() {
    ByteVector bytes = tools_test::gso_data_train(request(4300), 1424, 3);
    wire::DataPacket second = request(4300, 2000);
    second.payload = wire::Bytes(payload).first(1424);
    const ByteVector second_bytes = encode(second);
    std::copy(second_bytes.begin(), second_bytes.end(), bytes.begin() + 1480);
    return bytes;
}

const wire::GrantPacket gso_grants[] = {
    wire::GrantPacket{Header{99, 40000, 1235}, 60000, 2},
    wire::GrantPacket{Header{99, 40000, 1237}, 10000, 3},
    wire::GrantPacket{Header{99, 40001, 1239}, 20000, 0},
};

// Trains as uhoma's UDP driver sends them, and look-alikes that are not.
void write_gso_capture(const std::string& path) {
    CaptureBuilder out(path);
    const wire::DataPacket five = request(5 * 1424 + 300);
    // 1. 5 x (56 + 1424) + (56 + 300): the common case.
    out.add(spec(five, Encapsulation::udp, 6), tools_test::gso_data_train(five, 1424, 5, 300));
    // 2. Three GRANTs, the third to another port.
    out.add(spec(gso_grants[0], Encapsulation::udp, 7),
            tools_test::gso_train({gso_grants[0], gso_grants[1], gso_grants[2]}));
    // 3. One GRANT with 10 bytes of padding: not a train.
    out.add(spec(gso_grants[0], Encapsulation::udp, 7),
            tools_test::concat(encode(gso_grants[0]), ByteVector(10)));
    // 4. Segments of 56 + 1000 from offset 1000: found by the search.
    const wire::DataPacket thousand = request(5000, 1000);
    out.add(spec(thousand, Encapsulation::udp, 5),
            tools_test::gso_data_train(thousand, 1000, 3, 500));
    // 5. Inconsistent offsets: printed as before.
    out.add(spec(five, Encapsulation::udp, 4), inconsistent_train());
    // 6. Train 1 over raw IP: never split (no GSO on raw sockets), so its
    //    7700-byte payload runs past the 7420-byte message.
    out.add(spec(five, Encapsulation::ip, 6), tools_test::gso_data_train(five, 1424, 5, 300));
    // 7. IPv6: two GRANTs in 66 bytes, and DATA in 1480-byte pieces (the
    //    IPv6 default at MTU 1500 is 56 + 1404, so the search finds it).
    out.add(spec(gso_grants[0], Encapsulation::udp, 7, true),
            tools_test::gso_train({gso_grants[0], gso_grants[1]}));
    out.add(spec(five, Encapsulation::udp, 6, true),
            tools_test::gso_data_train(request(3000), 1424, 2, 152));
    // 8. A TSO packet over UDP (doff 0xD0): still split as TSO.
    {
        wire::DataPacket fields = request(4000);
        const std::vector<wire::Segment> segments = {
            {0, wire::Bytes(payload).subspan(0, 1424)},
            {1424, wire::Bytes(payload).subspan(1424, 1424)},
            {2848, wire::Bytes(payload).subspan(2848, 1152)}};
        ByteVector tso(wire::multi_segment_size(segments));
        ASSERT_TRUE(wire::encode_multi_segment_data(fields, segments, 1424, tso));
        out.add(spec(fields, Encapsulation::udp, 5), tso);
    }
}

const char* const expected_gso_dump =
    // 1.
    "1700000000.000000 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client offset 0 len 1424 msg 7420 incoming 7420 cv 0 gso 1/6\n"
    "1700000000.000000 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client offset 1424 len 1424 msg 7420 incoming 7420 cv 0 gso 2/6\n"
    "1700000000.000000 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client offset 2848 len 1424 msg 7420 incoming 7420 cv 0 gso 3/6\n"
    "1700000000.000000 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client offset 4272 len 1424 msg 7420 incoming 7420 cv 0 gso 4/6\n"
    "1700000000.000000 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client offset 5696 len 1424 msg 7420 incoming 7420 cv 0 gso 5/6\n"
    "1700000000.000000 10.0.0.1.40000 > 10.0.0.2.99 udp prio 6 DATA id 1234 client offset 7120 len 300 msg 7420 incoming 7420 cv 0 gso 6/6\n"
    // 2.
    "1700000000.000010 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 GRANT id 1235 server offset 60000 grant_prio 2 gso 1/3\n"
    "1700000000.000010 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 GRANT id 1237 server offset 10000 grant_prio 3 gso 2/3\n"
    "1700000000.000010 10.0.0.2.99 > 10.0.0.1.40001 udp prio 7 GRANT id 1239 server offset 20000 grant_prio 0 gso 3/3\n"
    // 3.
    "1700000000.000020 10.0.0.2.99 > 10.0.0.1.40000 udp prio 7 GRANT id 1235 server offset 60000 grant_prio 2\n"
    // 4.
    "1700000000.000030 10.0.0.1.40000 > 10.0.0.2.99 udp prio 5 DATA id 1234 client offset 1000 len 1000 msg 5000 incoming 5000 cv 0 gso 1/4\n"
    "1700000000.000030 10.0.0.1.40000 > 10.0.0.2.99 udp prio 5 DATA id 1234 client offset 2000 len 1000 msg 5000 incoming 5000 cv 0 gso 2/4\n"
    "1700000000.000030 10.0.0.1.40000 > 10.0.0.2.99 udp prio 5 DATA id 1234 client offset 3000 len 1000 msg 5000 incoming 5000 cv 0 gso 3/4\n"
    "1700000000.000030 10.0.0.1.40000 > 10.0.0.2.99 udp prio 5 DATA id 1234 client offset 4000 len 500 msg 5000 incoming 5000 cv 0 gso 4/4\n"
    // 5.
    "1700000000.000040 10.0.0.1.40000 > 10.0.0.2.99 udp prio 4 MALFORMED data_past_end len 4440 type 0x10 id 1234\n"
    // 6.
    "1700000000.000050 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 6 MALFORMED data_past_end len 7756 type 0x10 id 1234\n"
    // 7.
    "1700000000.000060 [fd00::2].99 > [fd00::1].40000 udp prio 7 GRANT id 1235 server offset 60000 grant_prio 2 gso 1/2\n"
    "1700000000.000060 [fd00::2].99 > [fd00::1].40000 udp prio 7 GRANT id 1237 server offset 10000 grant_prio 3 gso 2/2\n"
    "1700000000.000070 [fd00::1].40000 > [fd00::2].99 udp prio 6 DATA id 1234 client offset 0 len 1424 msg 3000 incoming 3000 cv 0 gso 1/3\n"
    "1700000000.000070 [fd00::1].40000 > [fd00::2].99 udp prio 6 DATA id 1234 client offset 1424 len 1424 msg 3000 incoming 3000 cv 0 gso 2/3\n"
    "1700000000.000070 [fd00::1].40000 > [fd00::2].99 udp prio 6 DATA id 1234 client offset 2848 len 152 msg 3000 incoming 3000 cv 0 gso 3/3\n"
    // 8.
    "1700000000.000080 10.0.0.1.40000 > 10.0.0.2.99 udp prio 5 DATA id 1234 client offset 0 len 1424 msg 4000 incoming 4000 cv 0 tso 1/3\n"
    "1700000000.000080 10.0.0.1.40000 > 10.0.0.2.99 udp prio 5 DATA id 1234 client offset 1424 len 1424 msg 4000 incoming 4000 cv 0 tso 2/3\n"
    "1700000000.000080 10.0.0.1.40000 > 10.0.0.2.99 udp prio 5 DATA id 1234 client offset 2848 len 1152 msg 4000 incoming 4000 cv 0 tso 3/3\n";

// DATA: 6 + 4 + 3 (IPv6) + 1 (TSO counts once); GRANT: 3 + 1 + 2; malformed:
// the inconsistent train and the train over raw IP.
const char* const expected_gso_summary =
    "uhoma-dump: 22 Homa packets (DATA 14, GRANT 6, RESEND 0, RPC_UNKNOWN 0, BUSY 0, CUTOFFS 0, "
    "FREEZE 0, NEED_ACK 0, ACK 0), 2 malformed, 0 truncated; skipped 0 not Homa, 0 unreadable\n";

TEST_F(UhomaDumpTest, uhoma_dump__splits_gso_trains) {
    const std::string path = dir_.file("gso.pcap");
    write_gso_capture(path);
    const ProcessResult r = dump({"-r", path, "-u", "4000"});
    EXPECT_EQ(r.status, 0) << r.err;
    expect_same_lines(r.out, expected_gso_dump);
    EXPECT_EQ(r.err, expected_gso_summary);
}

TEST_F(UhomaDumpTest, uhoma_dump__count_counts_the_packets_of_a_train) {
    const std::string path = dir_.file("gso.pcap");
    write_gso_capture(path);
    const auto all = split_lines(expected_gso_dump);
    // A train is never cut: -c 3 stops after the first frame, all 6 packets.
    ProcessResult r = dump({"-r", path, "-u", "4000", "-c", "3"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(split_lines(r.out), std::vector<std::string>(all.begin(), all.begin() + 6));
    EXPECT_TRUE(r.err.starts_with("uhoma-dump: 6 Homa packets (DATA 6, GRANT 0,")) << r.err;
    // -c 9: exactly the first two frames.
    r = dump({"-r", path, "-u", "4000", "-c", "9"});
    EXPECT_EQ(split_lines(r.out), std::vector<std::string>(all.begin(), all.begin() + 9));
    EXPECT_TRUE(r.err.starts_with("uhoma-dump: 9 Homa packets (DATA 6, GRANT 3,")) << r.err;
}

TEST_F(UhomaDumpTest, uhoma_dump__hex_dump_under_each_packet_of_a_train) {
    const std::string path = dir_.file("gso.pcap");
    write_gso_capture(path);
    const ProcessResult r = dump({"-r", path, "-u", "4000", "-x", "-c", "9"});
    EXPECT_EQ(r.status, 0) << r.err;
    // Trains 1 and 2: each packet's line, then the hex of its own bytes.
    const ByteVector data = tools_test::gso_data_train(request(5 * 1424 + 300), 1424, 5, 300);
    const ByteVector grants = tools_test::gso_train({gso_grants[0], gso_grants[1], gso_grants[2]});
    std::vector<wire::Bytes> pieces;
    for (std::size_t i = 0; i < 6; ++i) {
        pieces.push_back(wire::Bytes(data).subspan(i * 1480, i < 5 ? 1480 : 356));
    }
    for (std::size_t i = 0; i < 3; ++i) pieces.push_back(wire::Bytes(grants).subspan(i * 33, 33));
    const auto all = split_lines(expected_gso_dump);
    std::string expected;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        expected += all[i] + "\n" + format_hex(pieces[i]);
    }
    expect_same_lines(r.out, expected);
    // The GRANTs end in their priority bytes.
    const auto lines = split_lines(r.out);
    EXPECT_EQ(lines[lines.size() - 5], "\t0x0020:  03");
    EXPECT_EQ(lines[lines.size() - 1], "\t0x0020:  00");
}

// --- Dumper without the binary -------------------------------------------------

TEST(dumper, Dumper__counts_every_outcome) {
    Dumper dumper(pcap::LinkType::raw_ip, DumperConfig{*pcap::parse_port_list("4000"), 1500, false});
    const auto types = every_type();
    auto ip = pcap::build_ip_packet(spec(types[2].first, Encapsulation::ip, 7), encode(types[2].first));
    ASSERT_TRUE(ip);
    const pcap::Timestamp t{1, 2};
    const Dumper::Output grant = dumper.handle(t, *ip);
    EXPECT_TRUE(grant.homa);
    EXPECT_EQ(grant.text,
              "1.000002 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 GRANT id 1235 server offset "
              "60000 grant_prio 2\n");
    ByteVector icmp = *ip;
    icmp[9] = std::byte{1};
    EXPECT_FALSE(dumper.handle(t, icmp).homa);
    EXPECT_FALSE(dumper.handle(t, ByteVector(3)).homa);
    const Counters& c = dumper.counters();
    EXPECT_EQ(c.by_type[1], 1u);
    EXPECT_EQ(c.not_homa, 1u);
    EXPECT_EQ(c.unreadable, 1u);
    EXPECT_EQ(c.homa_packets(), 1u);
}

TEST(dumper, Dumper__splits_gso_trains_of_complete_udp_payloads_only) {
    Dumper dumper(pcap::LinkType::raw_ip, DumperConfig{*pcap::parse_port_list("4000"), 1500, false});
    const ByteVector grants = tools_test::gso_train({gso_grants[0], gso_grants[1], gso_grants[2]});
    const pcap::Timestamp t{1, 2};
    auto udp = pcap::build_ip_packet(spec(gso_grants[0], Encapsulation::udp, 7), grants);
    ASSERT_TRUE(udp);
    Dumper::Output out = dumper.handle(t, *udp);
    EXPECT_TRUE(out.homa);
    EXPECT_EQ(out.packets, 3u);
    EXPECT_EQ(split_lines(out.text).size(), 3u);
    EXPECT_TRUE(out.text.ends_with("gso 3/3\n")) << out.text;
    // Raw IP: one GRANT, the rest ignored as trailing bytes (as the codec does).
    auto ip = pcap::build_ip_packet(spec(gso_grants[0], Encapsulation::ip, 7), grants);
    ASSERT_TRUE(ip);
    out = dumper.handle(t, *ip);
    EXPECT_EQ(out.packets, 1u);
    EXPECT_EQ(out.text,
              "1.000002 10.0.0.2.99 > 10.0.0.1.40000 ip146 prio 7 GRANT id 1235 server offset "
              "60000 grant_prio 2\n");
    // Captured short: TRUNCATED, not split.
    out = dumper.handle(t, wire::Bytes(*udp).first(udp->size() - 10));
    EXPECT_EQ(out.packets, 1u);
    EXPECT_NE(out.text.find(" TRUNCATED captured 89 of 99\n"), std::string::npos) << out.text;
    const Counters& c = dumper.counters();
    EXPECT_EQ(c.by_type[1], 4u);
    EXPECT_EQ(c.truncated, 1u);
    EXPECT_EQ(c.homa_packets(), 5u);
}

TEST(dumper, Dumper__survives_mangled_frames) {
    // Random mutations of a TSO frame and a control frame; ASan watches.
    Dumper dumper(pcap::LinkType::ethernet, DumperConfig{*pcap::parse_port_list("4000"), 1500, true});
    const auto types = every_type();
    std::vector<ByteVector> seeds;
    for (const auto& [packet, priority] : types) {
        seeds.push_back(*pcap::build_ethernet_frame(spec(packet, Encapsulation::udp, priority), encode(packet)));
    }
    // GSO trains: DATA (default and searched segment sizes) and GRANTs.
    seeds.push_back(*pcap::build_ethernet_frame(
        spec(types[0].first, Encapsulation::udp, 6),
        tools_test::gso_data_train(request(3000), 1424, 2, 152)));
    seeds.push_back(*pcap::build_ethernet_frame(spec(types[0].first, Encapsulation::udp, 6),
                                                tools_test::gso_data_train(request(400), 100, 4)));
    seeds.push_back(*pcap::build_ethernet_frame(
        spec(gso_grants[0], Encapsulation::udp, 7),
        tools_test::gso_train({gso_grants[0], gso_grants[1], gso_grants[2]})));
    std::mt19937 rng(777);
    std::uint64_t lines = 0;
    for (const ByteVector& seed : seeds) {
        for (int i = 0; i < 1000; ++i) {
            ByteVector m = seed;
            for (int f = 0; f < 3; ++f) {
                m[42 + rng() % (m.size() - 42)] = static_cast<std::byte>(rng() & 0xFF);
            }
            if (rng() % 3 == 0) m.resize(42 + rng() % (m.size() - 41));
            const auto copy = std::make_unique<std::byte[]>(m.size());
            std::copy(m.begin(), m.end(), copy.get());
            const Dumper::Output out = dumper.handle(pcap::Timestamp{}, wire::Bytes(copy.get(), m.size()));
            if (out.homa) lines += out.packets;
            EXPECT_EQ(out.text.empty(), !out.homa);
            EXPECT_EQ(out.packets == 0, !out.homa);
        }
    }
    EXPECT_EQ(dumper.counters().homa_packets(), lines);
}

}  // namespace
}  // namespace uhoma::dump
