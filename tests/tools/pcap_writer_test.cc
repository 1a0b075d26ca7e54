// Tests of tools/pcap/pcap_writer (read back with libpcap) and timestamp.
#include "pcap/pcap_writer.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "pcap/ip_address.h"
#include "tools_support.h"

namespace uhoma::pcap {
namespace {

using tools_test::ByteVector;
using tools_test::TempDir;

TEST(pcap_writer, PcapWriter__records_read_back_with_libpcap) {
    TempDir dir;
    const std::string path = dir.file("out.pcap");
    const ByteVector first(100, std::byte{0xAB});
    const ByteVector second(1514, std::byte{0x11});
    {
        auto writer = PcapWriter::open(path);
        ASSERT_TRUE(writer) << writer.error().message;
        writer->write(Timestamp{1700000000, 123}, first);
        writer->write(Timestamp{1700000001, 999999}, wire::Bytes(second).first(60), second.size());
        PcapWriter moved = std::move(*writer);  // the moved-from writer closes nothing
        ASSERT_TRUE(moved.flush());
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t* in = pcap_open_offline(path.c_str(), errbuf);
    ASSERT_NE(in, nullptr) << errbuf;
    EXPECT_EQ(pcap_datalink(in), DLT_EN10MB);
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    ASSERT_EQ(pcap_next_ex(in, &header, &data), 1);
    EXPECT_EQ(header->ts.tv_sec, 1700000000);
    EXPECT_EQ(header->ts.tv_usec, 123);
    EXPECT_EQ(header->caplen, 100u);
    EXPECT_EQ(header->len, 100u);
    EXPECT_EQ(data[0], 0xAB);
    ASSERT_EQ(pcap_next_ex(in, &header, &data), 1);
    EXPECT_EQ(header->ts.tv_usec, 999999);
    EXPECT_EQ(header->caplen, 60u);
    EXPECT_EQ(header->len, 1514u);
    EXPECT_EQ(pcap_next_ex(in, &header, &data), PCAP_ERROR_BREAK);  // end of file
    pcap_close(in);
}

TEST(pcap_writer, PcapWriter__cannot_create_in_a_missing_directory) {
    auto writer = PcapWriter::open("/nonexistent-dir/x.pcap");
    ASSERT_FALSE(writer);
    EXPECT_NE(writer.error().message.find("/nonexistent-dir/x.pcap"), std::string::npos)
        << writer.error().message;
}

TEST(pcap_writer, Timestamp__from_micros_and_text) {
    EXPECT_EQ(Timestamp::from_micros(1'700'000'000'000'123), (Timestamp{1700000000, 123}));
    EXPECT_EQ(Timestamp::from_micros(-1), (Timestamp{-1, 999999}));
    EXPECT_EQ((Timestamp{1700000000, 123}).to_string(), "1700000000.000123");
    EXPECT_EQ((Timestamp{5, 999999}).total_micros(), 5'999'999);
}

TEST(pcap_writer, IpAddress__text_forms) {
    EXPECT_EQ(IpAddress::v4_from({10, 0, 0, 1}).to_string(), "10.0.0.1");
    auto v6 = parse_ip_address("fd00:0:0::1");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->v6);
    EXPECT_EQ(v6->to_string(), "fd00::1");
    EXPECT_EQ(parse_ip_address("10.0.0.300").error(), AddressError::not_an_address);
}

}  // namespace
}  // namespace uhoma::pcap
