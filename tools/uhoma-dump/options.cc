// Options are matched by exact name; values come from the same argument
// ("-c3", "--mtu=9000") or the next one.
#include "uhoma-dump/options.h"

#include <charconv>

#include "wire/packet.h"

namespace uhoma::dump {

namespace {

constexpr std::size_t min_mtu = 576;  // IPv4's minimum datagram; room for any header
constexpr std::size_t max_mtu = 65535;

Expected<std::uint64_t, UsageError> parse_number(std::string_view option, std::string_view text,
                                                 std::uint64_t min, std::uint64_t max) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min ||
        value > max) {
        return Unexpected{UsageError{std::string(option) + " needs a number from " +
                                     std::to_string(min) + " to " + std::to_string(max) +
                                     ", got '" + std::string(text) + "'"}};
    }
    return value;
}

}  // namespace

Expected<Options, UsageError> parse_options(std::span<const std::string_view> args) {
    Options options;
    bool have_source = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (!arg.starts_with("-") || arg == "-") {
            return Unexpected{UsageError{"unexpected argument '" + std::string(arg) + "'"}};
        }
        std::string_view name = arg;
        std::optional<std::string_view> attached;
        if (arg.starts_with("--")) {
            const std::size_t eq = arg.find('=');
            if (eq != std::string_view::npos) {
                name = arg.substr(0, eq);
                attached = arg.substr(eq + 1);
            }
        } else if (arg.size() > 2 && arg[0] == '-') {
            name = arg.substr(0, 2);
            attached = arg.substr(2);
        }
        const bool takes_value = name == "-r" || name == "-i" || name == "-u" || name == "-c" ||
                                 name == "--mtu";
        if (!takes_value && attached) {
            return Unexpected{UsageError{"unknown option '" + std::string(arg) + "'"}};
        }
        std::string_view value;
        if (takes_value) {
            if (attached) {
                value = *attached;
            } else if (i + 1 < args.size()) {
                value = args[++i];
            } else {
                return Unexpected{UsageError{"option " + std::string(name) + " needs a value"}};
            }
        }

        if (name == "-h" || name == "--help") {
            options.help = true;
        } else if (name == "-x") {
            options.hex = true;
        } else if (name == "-r" || name == "-i") {
            if (have_source) {
                return Unexpected{UsageError{"give one of -r FILE and -i INTERFACE, once"}};
            }
            if (value.empty()) {
                return Unexpected{UsageError{"option " + std::string(name) + " needs a value"}};
            }
            have_source = true;
            (name == "-r" ? options.file : options.interface) = std::string(value);
        } else if (name == "-u") {
            auto ports = pcap::parse_port_list(value, options.udp_ports);
            if (!ports) {
                return Unexpected{UsageError{"-u '" + std::string(value) +
                                             "': " + pcap::port_list_error_name(ports.error())}};
            }
            options.udp_ports = std::move(*ports);
        } else if (name == "-c") {
            auto count = parse_number("-c", value, 1, UINT64_MAX);
            if (!count) return Unexpected{count.error()};
            options.count = *count;
        } else if (name == "--mtu") {
            auto mtu = parse_number("--mtu", value, min_mtu, max_mtu);
            if (!mtu) return Unexpected{mtu.error()};
            options.mtu = static_cast<std::size_t>(*mtu);
        } else {
            return Unexpected{UsageError{"unknown option '" + std::string(arg) + "'"}};
        }
    }
    if (!options.help && !have_source) {
        return Unexpected{UsageError{"give -r FILE or -i INTERFACE"}};
    }
    return options;
}

const char* usage_text() {
    return "usage: uhoma-dump (-r FILE | -i INTERFACE) [-u PORTS]... [-c COUNT] [--mtu N] [-x]\n"
           "Prints one line per Homa packet in a capture file (pcap or pcapng) or\n"
           "captured live, and a summary on stderr at the end.\n"
           "  -r FILE       read FILE (\"-\" for standard input)\n"
           "  -i INTERFACE  capture live (promiscuous off); stop with Ctrl-C\n"
           "  -u PORTS      UDP ports that carry Homa, e.g. 4000 or 4000,5000-5010;\n"
           "                repeatable; a datagram matches by source or destination port\n"
           "  -c COUNT      stop after COUNT Homa packets\n"
           "  --mtu N       MTU of the sender, to split multi-segment (TSO) DATA\n"
           "                packets into their wire segments, and the first segment\n"
           "                size tried for UDP GSO trains of DATA (default 1500)\n"
           "  -x            hex dump of the Homa bytes of each packet\n"
           "  -h, --help    this text\n"
           "Raw IP protocol 146 and hijacked TCP (flags 0x06, urgent 0xB97D) are\n"
           "always recognised. A UDP datagram holding a GSO train prints one line\n"
           "per packet (\"gso I/N\"). Exit status: 0 done, 1 runtime error, 2 usage error.\n";
}

}  // namespace uhoma::dump
