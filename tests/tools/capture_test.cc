// Tests of tools/uhoma-dump/capture: the live BPF filter compiles and
// selects the right packets, and file errors are one clear line.
#include "uhoma-dump/capture.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "pcap/frame_builder.h"
#include "pcap/pcap_writer.h"
#include "tools_support.h"

namespace uhoma::dump {
namespace {

using pcap::Encapsulation;
using tools_test::ByteVector;

TEST(capture, capture_filter__text) {
    EXPECT_EQ(capture_filter(pcap::PortSet{}),
              "ip proto 146 or ip6 proto 146 or (ip and tcp[13] == 6 and tcp[18:2] == 0xb97d) "
              "or (ip6 and ip6[6] == 6 and ip6[53] == 6 and ip6[58:2] == 0xb97d)");
    const std::string with_ports = capture_filter(*pcap::parse_port_list("4000,5000-5010"));
    EXPECT_TRUE(with_ports.ends_with(" or (udp and (port 4000 or portrange 5000-5010))"))
        << with_ports;
}

// Compiles the filter for Ethernet and runs it over frames in user space.
class FilterTest : public ::testing::Test {
protected:
    void SetUp() override {
        handle_ = pcap_open_dead(DLT_EN10MB, 65535);
        ASSERT_NE(handle_, nullptr);
        const std::string filter = capture_filter(*pcap::parse_port_list("4000,5000-5010"));
        ASSERT_EQ(pcap_compile(handle_, &program_, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0)
            << pcap_geterr(handle_);
    }
    void TearDown() override {
        pcap_freecode(&program_);
        pcap_close(handle_);
    }
    bool passes(const pcap::FrameSpec& spec, const ByteVector& homa) {
        auto frame = pcap::build_ethernet_frame(spec, homa);
        EXPECT_TRUE(frame);
        pcap_pkthdr header{};
        header.caplen = header.len = static_cast<bpf_u_int32>(frame->size());
        return pcap_offline_filter(&program_, &header,
                                   reinterpret_cast<const u_char*>(frame->data())) != 0;
    }
    static pcap::FrameSpec spec(bool v6, Encapsulation e, std::uint16_t port = 0) {
        pcap::FrameSpec s;
        s.source = v6 ? *pcap::parse_ip_address("fd00::1") : pcap::IpAddress::v4_from({10, 0, 0, 1});
        s.destination = v6 ? *pcap::parse_ip_address("fd00::2") : pcap::IpAddress::v4_from({10, 0, 0, 2});
        s.encapsulation = e;
        s.udp_source_port = 33333;
        s.udp_destination_port = port;
        return s;
    }
    pcap_t* handle_ = nullptr;
    bpf_program program_{};
};

TEST_F(FilterTest, capture_filter__passes_homa_and_drops_the_rest) {
    const ByteVector homa = tools_test::encode(wire::BusyPacket{wire::Header{40000, 99, 1235}});
    ByteVector plain_tcp = homa;
    plain_tcp.at(13) = std::byte{0x10};
    for (bool v6 : {false, true}) {
        SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
        EXPECT_TRUE(passes(spec(v6, Encapsulation::ip), homa));
        EXPECT_TRUE(passes(spec(v6, Encapsulation::tcp), homa));
        EXPECT_FALSE(passes(spec(v6, Encapsulation::tcp), plain_tcp));
        EXPECT_TRUE(passes(spec(v6, Encapsulation::udp, 4000), homa));
        EXPECT_TRUE(passes(spec(v6, Encapsulation::udp, 5005), homa));
        EXPECT_FALSE(passes(spec(v6, Encapsulation::udp, 53), homa));
    }
}

TEST(capture, Capture__open_file_errors_are_one_line) {
    auto missing = Capture::open_file("/nonexistent/x.pcap");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "/nonexistent/x.pcap: No such file or directory");

    tools_test::TempDir dir;
    const std::string wifi = dir.file("wifi.pcap");
    {
        auto writer = pcap::PcapWriter::open(wifi, DLT_IEEE802_11);
        ASSERT_TRUE(writer);
    }
    auto unsupported = Capture::open_file(wifi);
    ASSERT_FALSE(unsupported);
    EXPECT_EQ(unsupported.error().message, wifi + ": unsupported link type 105 (IEEE802_11)");
}

TEST(capture, Capture__open_live_on_a_missing_interface_fails) {
    auto live = Capture::open_live("uhoma-no-such-if", pcap::PortSet{});
    ASSERT_FALSE(live);
    EXPECT_TRUE(live.error().message.starts_with("uhoma-no-such-if: ")) << live.error().message;
    EXPECT_EQ(live.error().message.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace uhoma::dump
