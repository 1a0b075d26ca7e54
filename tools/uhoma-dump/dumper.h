// The per-frame work of uhoma-dump, free of libpcap: frame bytes in, text out.
//
// main.cc owns the capture handle and the output stream; Dumper turns each
// captured frame into the text to print (zero or more lines) and keeps the
// counters for the summary. Keeping it apart from I/O is what lets the tests
// feed it frames directly.
//
// A DATA packet longer than one segment of the sender's MTU is a TSO packet
// captured before segmentation; it is decoded with wire::MultiSegmentData and
// printed one line per segment. Other packets go through wire::decode.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "pcap/frame.h"
#include "pcap/port_set.h"
#include "pcap/timestamp.h"
#include "uhoma-dump/format.h"
#include "wire/packet.h"

namespace uhoma::dump {

struct DumperConfig {
    pcap::PortSet udp_ports;
    std::size_t mtu = 1500;
    bool hex = false;
};

class Dumper {
public:
    Dumper(pcap::LinkType link, DumperConfig config)
        : link_(link), config_(std::move(config)) {}

    struct Output {
        std::string text;   // the lines to print, each ending in '\n'
        bool homa = false;  // the frame was a Homa packet (counts towards -c)
    };

    // Classifies, decodes and formats one captured frame; updates counters().
    Output handle(pcap::Timestamp time, wire::Bytes frame);

    const Counters& counters() const { return counters_; }

private:
    std::string describe(pcap::Timestamp time, const pcap::HomaFrame& frame);

    pcap::LinkType link_;
    DumperConfig config_;
    Counters counters_;
};

}  // namespace uhoma::dump
