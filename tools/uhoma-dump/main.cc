// uhoma-dump: print the Homa packets of a capture file or a live interface.
//
// main() wires the pieces: options -> Capture -> pcap_loop -> Dumper ->
// stdout. Each line is flushed as soon as it is written, so live output
// appears at once and a pipe (uhoma-dump ... | grep GRANT) sees every line
// even if the dump is interrupted. SIGINT and SIGTERM call pcap_breakloop,
// which libpcap documents as safe in a signal handler; the loop then ends
// normally and the summary is printed. Exit status: 0 done, 1 runtime
// error (cannot open, read error), 2 usage error.
#include <pcap/pcap.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "uhoma-dump/capture.h"
#include "uhoma-dump/dumper.h"
#include "uhoma-dump/options.h"

namespace {

using uhoma::dump::Capture;
using uhoma::dump::Dumper;
using uhoma::dump::Options;

// The handle a signal should interrupt. A signal handler can reach nothing
// else, hence a global.
std::atomic<pcap_t*> interrupt_target{nullptr};

extern "C" void on_signal(int) {
    pcap_t* handle = interrupt_target.load();
    if (handle != nullptr) pcap_breakloop(handle);
}

void install_signal_handlers() {
    struct sigaction action{};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

struct Session {
    pcap_t* handle;
    Dumper dumper;
    std::optional<std::uint64_t> limit;
    std::uint64_t homa_seen = 0;
};

extern "C" void on_packet(u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
    auto* session = reinterpret_cast<Session*>(user);
    const uhoma::pcap::Timestamp time{static_cast<std::int64_t>(header->ts.tv_sec),
                                      static_cast<std::uint32_t>(header->ts.tv_usec)};
    const auto out = session->dumper.handle(
        time, std::as_bytes(std::span{bytes, static_cast<std::size_t>(header->caplen)}));
    if (!out.text.empty()) {
        std::fwrite(out.text.data(), 1, out.text.size(), stdout);
        std::fflush(stdout);
    }
    // -c counts packets as the summary does; a GSO train is never cut, so
    // the last frame may take the count past the limit.
    session->homa_seen += out.packets;
    if (out.homa && session->limit && session->homa_seen >= *session->limit) {
        pcap_breakloop(session->handle);
    }
}

int run(const Options& options) {
    auto capture = options.file.empty()
                       ? Capture::open_live(options.interface, options.udp_ports)
                       : Capture::open_file(options.file);
    if (!capture) {
        std::fprintf(stderr, "uhoma-dump: %s\n", capture.error().message.c_str());
        return 1;
    }
    if (!options.interface.empty()) {
        std::fprintf(stderr, "uhoma-dump: listening on %s, link-type %s, snapshot length 65535\n",
                     options.interface.c_str(), capture->link_name().c_str());
    }
    Session session{capture->handle(),
                    Dumper(capture->link(), {options.udp_ports, options.mtu, options.hex}),
                    options.count};
    interrupt_target.store(capture->handle());
    install_signal_handlers();
    const int result = pcap_loop(capture->handle(), -1, on_packet,
                                 reinterpret_cast<u_char*>(&session));
    interrupt_target.store(nullptr);
    int status = 0;
    if (result == PCAP_ERROR) {
        std::fprintf(stderr, "uhoma-dump: %s\n", pcap_geterr(capture->handle()));
        status = 1;
    }
    uhoma::dump::Counters counters = session.dumper.counters();
    if (!options.interface.empty()) counters.kernel_drops = capture->kernel_drops();
    const std::string summary = format_summary(counters);
    std::fputs(summary.c_str(), stderr);
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    auto options = uhoma::dump::parse_options(args);
    if (!options) {
        std::fprintf(stderr, "uhoma-dump: %s (try -h)\n", options.error().message.c_str());
        return 2;
    }
    if (options->help) {
        std::fputs(uhoma::dump::usage_text(), stdout);
        return 0;
    }
    return run(*options);
}
