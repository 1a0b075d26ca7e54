// uhoma-trace: write the scripted Homa conversation of script.h to a pcap
// file and/or send it as UDP datagrams over loopback.
//
// The pcap gets Ethernet frames built with pcap::build_ethernet_frame: raw
// IP protocol 146 by default (what Linux Homa sends), or UDP with -u. With
// --send-udp the same Homa bytes go from 127.0.0.1 to 127.0.0.1:PORT, one
// datagram per packet, paced by the script's timestamps (about 25 ms in
// all), with IP_TOS set per packet so the priority is on the wire; a live
// "uhoma-dump -i lo -u PORT" shows them. IPv6 and TSO packets are pcap-only.
// Exit status: 0 done, 1 runtime error, 2 usage error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pcap/frame_builder.h"
#include "pcap/pcap_writer.h"
#include "uhoma-trace/script.h"
#include "wire/priority.h"

namespace {

using uhoma::trace::TracePacket;

struct Options {
    std::string file;
    std::optional<std::uint16_t> send_port;
    std::optional<std::uint16_t> pcap_udp_port;
    std::size_t rpcs = 2;
};

const char* usage =
    "usage: uhoma-trace [-w FILE] [--send-udp PORT] [-u PORT] [--rpcs N]\n"
    "Generates a scripted Homa conversation (a 100 KB request with grants, a\n"
    "loss and a RESEND, short RPCs with acks, BUSY, RPC_UNKNOWN, FREEZE, and\n"
    "in the pcap an IPv6 RPC and a TSO packet).\n"
    "  -w FILE          write it to FILE as a pcap (Ethernet)\n"
    "  --send-udp PORT  send it as UDP datagrams from 127.0.0.1 to 127.0.0.1:PORT\n"
    "  -u PORT          in the pcap, carry IPv4 packets in UDP on PORT instead of\n"
    "                   IP protocol 146\n"
    "  --rpcs N         short RPCs in the second part, 1-6 (default 2)\n"
    "  -h, --help       this text\n";

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "uhoma-trace: %s (try -h)\n", message.c_str());
    std::exit(2);
}

unsigned long number(std::string_view option, std::string_view text, unsigned long min,
                     unsigned long max) {
    unsigned long value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min ||
        value > max) {
        usage_error(std::string(option) + " needs a number from " + std::to_string(min) +
                    " to " + std::to_string(max) + ", got '" + std::string(text) + "'");
    }
    return value;
}

Options parse(const std::vector<std::string_view>& args) {
    Options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(usage, stdout);
            std::exit(0);
        }
        if (i + 1 >= args.size() ||
            (arg != "-w" && arg != "--send-udp" && arg != "-u" && arg != "--rpcs")) {
            usage_error(arg == "-w" || arg == "--send-udp" || arg == "-u" || arg == "--rpcs"
                            ? "option " + std::string(arg) + " needs a value"
                            : "unknown option '" + std::string(arg) + "'");
        }
        const std::string_view value = args[++i];
        if (arg == "-w") {
            o.file = value;
        } else if (arg == "--send-udp") {
            o.send_port = static_cast<std::uint16_t>(number(arg, value, 1, 65535));
        } else if (arg == "-u") {
            o.pcap_udp_port = static_cast<std::uint16_t>(number(arg, value, 1, 65535));
        } else {
            o.rpcs = number(arg, value, 1, uhoma::trace::max_short_rpcs);
        }
    }
    if (o.file.empty() && !o.send_port) usage_error("give -w FILE and/or --send-udp PORT");
    return o;
}

uhoma::pcap::Timestamp to_timestamp(std::int64_t ns) {
    return uhoma::pcap::Timestamp::from_micros(ns / 1000);
}

int write_pcap(const Options& o, const std::vector<TracePacket>& packets) {
    auto writer = uhoma::pcap::PcapWriter::open(o.file);
    if (!writer) {
        std::fprintf(stderr, "uhoma-trace: %s\n", writer.error().message.c_str());
        return 1;
    }
    for (const TracePacket& p : packets) {
        uhoma::pcap::FrameSpec spec;
        spec.source = p.source;
        spec.destination = p.destination;
        spec.priority = p.priority;
        if (o.pcap_udp_port && !p.pcap_only) {
            spec.encapsulation = uhoma::pcap::Encapsulation::udp;
            spec.udp_source_port = *o.pcap_udp_port;
            spec.udp_destination_port = *o.pcap_udp_port;
        }
        auto frame = uhoma::pcap::build_ethernet_frame(spec, p.homa);
        if (!frame) {
            std::fprintf(stderr, "uhoma-trace: cannot build a frame: %s\n",
                         uhoma::pcap::build_error_name(frame.error()));
            return 1;
        }
        writer->write(to_timestamp(p.time_ns), *frame);
    }
    auto flushed = writer->flush();
    if (!flushed) {
        std::fprintf(stderr, "uhoma-trace: %s: %s\n", o.file.c_str(),
                     flushed.error().message.c_str());
        return 1;
    }
    return 0;
}

int send_udp(std::uint16_t port, const std::vector<TracePacket>& packets) {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        std::fprintf(stderr, "uhoma-trace: socket: %s\n", std::strerror(errno));
        return 1;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t first_ns = packets.empty() ? 0 : packets.front().time_ns;
    int status = 0;
    std::size_t sent = 0;
    for (const TracePacket& p : packets) {
        if (p.pcap_only) continue;
        std::this_thread::sleep_until(start + std::chrono::nanoseconds(p.time_ns - first_ns));
        const int tos = uhoma::wire::tos_for_priority(p.priority);
        if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) != 0 ||
            sendto(fd, p.homa.data(), p.homa.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                   sizeof to) < 0) {
            std::fprintf(stderr, "uhoma-trace: send to 127.0.0.1:%u: %s\n", port,
                         std::strerror(errno));
            status = 1;
            break;
        }
        ++sent;
    }
    close(fd);
    if (status == 0) {
        std::fprintf(stderr, "uhoma-trace: sent %zu Homa packets to 127.0.0.1:%u\n", sent, port);
    }
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse(std::vector<std::string_view>(argv + 1, argv + argc));
    auto packets = uhoma::trace::build_script(uhoma::trace::ScriptConfig{
        .start_ns = uhoma::trace::ScriptConfig{}.start_ns, .short_rpcs = options.rpcs});
    if (!packets) {
        std::fprintf(stderr, "uhoma-trace: the script built an invalid packet: %s\n",
                     uhoma::wire::error_name(packets.error()));
        return 1;
    }
    if (!options.file.empty()) {
        const int status = write_pcap(options, *packets);
        if (status != 0) return status;
    }
    if (options.send_port) return send_udp(*options.send_port, *packets);
    return 0;
}
