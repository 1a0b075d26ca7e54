// uhoma-dump's command line.
//
// A hand-written parser over the arguments rather than getopt_long: getopt
// keeps global state and prints its own messages, while this returns one
// error line the caller prints (exit status 2), and the tests can call it
// directly. Both "-c 3" and "-c3", "--mtu 9000" and "--mtu=9000" work, and
// -u may be given several times; the port lists add up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pcap/port_set.h"
#include "uhoma/expected.h"

namespace uhoma::dump {

struct Options {
    std::string file;       // -r: a pcap or pcapng file ("-" is stdin)
    std::string interface;  // -i: capture live on this interface
    pcap::PortSet udp_ports;              // -u: UDP ports carrying Homa
    std::optional<std::uint64_t> count;   // -c: stop after this many Homa packets
    std::size_t mtu = 1500;               // --mtu: TSO segment size, first GSO guess
    bool hex = false;                     // -x: hex dump of each Homa packet
    bool help = false;                    // -h / --help
};

// One line, without "uhoma-dump: " and without a newline.
struct UsageError {
    std::string message;
};

// Parses the arguments after the program name. Exactly one of -r and -i is
// required unless -h is given.
// Errors: UsageError for an unknown option, a missing or bad value, or a
// missing or doubled source.
Expected<Options, UsageError> parse_options(std::span<const std::string_view> args);

// The -h text, ending in a newline.
const char* usage_text();

}  // namespace uhoma::dump
