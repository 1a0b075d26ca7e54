// The per-frame work of uhoma-dump, free of libpcap: frame bytes in, text out.
//
// main.cc owns the capture handle and the output stream; Dumper turns each
// captured frame into the text to print (zero or more lines) and keeps the
// counters for the summary. Keeping it apart from I/O is what lets the tests
// feed it frames directly.
//
// A complete UDP payload is first offered to split_gso_train() (gso.h): when
// it holds a GSO train, each packet prints on its own line ("gso I/N"), with
// its own Homa ports and, with -x, its own hex dump under it, and counts as
// one packet in the summary and towards -c. Otherwise, a DATA packet longer
// than one segment of the sender's MTU is a TSO packet captured before
// segmentation; it is decoded with wire::MultiSegmentData and printed one
// line per segment, counting once. Other packets go through wire::decode.
// Truncated captures are never split: they print as TRUNCATED.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "pcap/frame.h"
#include "pcap/port_set.h"
#include "pcap/timestamp.h"
#include "uhoma-dump/format.h"
#include "uhoma-dump/gso.h"
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
        std::string text;         // the lines to print, each ending in '\n'
        bool homa = false;        // the frame held Homa (its packets count towards -c)
        std::size_t packets = 0;  // Homa packets it held: 1, or a GSO train's length
    };

    // Classifies, decodes and formats one captured frame; updates counters().
    Output handle(pcap::Timestamp time, wire::Bytes frame);

    const Counters& counters() const { return counters_; }

private:
    std::string describe(pcap::Timestamp time, const pcap::HomaFrame& frame);
    std::string describe_train(pcap::Timestamp time, const pcap::HomaFrame& frame,
                               const GsoTrain& train);

    pcap::LinkType link_;
    DumperConfig config_;
    Counters counters_;
};

}  // namespace uhoma::dump
