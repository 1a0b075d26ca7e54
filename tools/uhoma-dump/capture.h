// Opening a capture (file or live interface) with libpcap, RAII.
//
// Live captures get the settings a protocol monitor needs: promiscuous mode
// off (we watch this host's Homa traffic), immediate mode (each packet is
// delivered at once, so lines appear as packets pass, not when a buffer
// fills), snaplen 65535, and a kernel BPF filter so that only Homa
// candidates are copied to user space: IP protocol 146, TCP carrying the
// hijack markers, and UDP on the configured ports. The filter is a
// prefilter; pcap::decapsulate still decides. (libpcap cannot read TCP
// fields past IPv6 extension headers in a filter, so IPv6 hijacked TCP is
// matched on a fixed 40-byte header, the only layout Linux Homa sends.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "pcap/frame.h"
#include "pcap/port_set.h"
#include "uhoma/expected.h"

struct pcap;

namespace uhoma::dump {

// One line, e.g. "eth9: No such device exists".
struct CaptureError {
    std::string message;
};

class Capture {
public:
    // Errors: CaptureError (cannot open or read the file, unsupported link type).
    static Expected<Capture, CaptureError> open_file(const std::string& path);
    // Errors: CaptureError (no such interface, no permission, filter rejected,
    // unsupported link type).
    static Expected<Capture, CaptureError> open_live(const std::string& interface,
                                                     const pcap::PortSet& udp_ports);

    Capture(Capture&& other) noexcept;
    Capture& operator=(Capture&&) = delete;
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    ~Capture();

    struct ::pcap* handle() const { return handle_; }
    pcap::LinkType link() const { return link_; }
    // Packets the kernel dropped (ring full) so far; nullopt for files.
    std::optional<std::uint64_t> kernel_drops() const;
    // libpcap's name of the link type, e.g. "EN10MB".
    std::string link_name() const;

private:
    Capture(struct ::pcap* handle, pcap::LinkType link) : handle_(handle), link_(link) {}
    struct ::pcap* handle_ = nullptr;
    pcap::LinkType link_ = pcap::LinkType::ethernet;
};

// The BPF expression for live captures, e.g. "ip proto 146 or ip6 proto 146
// or (ip and tcp[13] == 6 and tcp[18:2] == 0xb97d) or (ip6 and ip6[6] == 6
// and ip6[53] == 6 and ip6[58:2] == 0xb97d) or (udp and (port 4000 or
// portrange 5000-5010))". The UDP term is left out for an empty set.
std::string capture_filter(const pcap::PortSet& udp_ports);

}  // namespace uhoma::dump
