// libpcap calls and their error strings, turned into CaptureError lines.
#include "uhoma-dump/capture.h"

#include <pcap/pcap.h>

#include <utility>

namespace uhoma::dump {

namespace {

constexpr int snaplen = 65535;
// With immediate mode libpcap uses a TPACKET_V2 ring of snaplen-sized slots
// (capped by the MTU: 64 KiB on loopback), so the default 2 MiB ring holds
// about 30 packets on lo, fewer than one Homa burst. 64 MiB holds ~1000.
constexpr int ring_bytes = 64 << 20;

Expected<Capture, CaptureError> fail(std::string message) {
    return Unexpected{CaptureError{std::move(message)}};
}

std::string unsupported_link(const std::string& source, int dlt) {
    const char* name = pcap_datalink_val_to_name(dlt);
    return source + ": unsupported link type " + std::to_string(dlt) +
           (name != nullptr ? std::string(" (") + name + ")" : std::string());
}

}  // namespace

std::string capture_filter(const pcap::PortSet& udp_ports) {
    std::string filter =
        "ip proto 146 or ip6 proto 146"
        " or (ip and tcp[13] == 6 and tcp[18:2] == 0xb97d)"
        " or (ip6 and ip6[6] == 6 and ip6[53] == 6 and ip6[58:2] == 0xb97d)";
    if (udp_ports.empty()) return filter;
    filter += " or (udp and (";
    bool first = true;
    for (const pcap::PortRange& r : udp_ports.ranges()) {
        if (!first) filter += " or ";
        first = false;
        filter += r.first == r.last
                      ? "port " + std::to_string(r.first)
                      : "portrange " + std::to_string(r.first) + "-" + std::to_string(r.last);
    }
    return filter + "))";
}

Expected<Capture, CaptureError> Capture::open_file(const std::string& path) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    pcap_t* handle = pcap_open_offline(path.c_str(), errbuf);
    if (handle == nullptr) {
        // libpcap names the file in some messages ("x: No such file or
        // directory") but not in others ("unknown file format").
        const std::string message = errbuf;
        return fail(message.starts_with(path + ": ") ? message : path + ": " + message);
    }
    const int dlt = pcap_datalink(handle);
    const auto link = pcap::link_type_from_dlt(dlt);
    if (!link) {
        pcap_close(handle);
        return fail(unsupported_link(path, dlt));
    }
    return Capture(handle, *link);
}

Expected<Capture, CaptureError> Capture::open_live(const std::string& interface,
                                                   const pcap::PortSet& udp_ports) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    pcap_t* handle = pcap_create(interface.c_str(), errbuf);
    if (handle == nullptr) return fail(interface + ": " + errbuf);
    Capture capture(handle, pcap::LinkType::ethernet);  // closes on every return below

    pcap_set_snaplen(handle, snaplen);
    pcap_set_promisc(handle, 0);
    pcap_set_immediate_mode(handle, 1);
    pcap_set_buffer_size(handle, ring_bytes);
    const int status = pcap_activate(handle);
    if (status < 0) {
        std::string message = interface + ": " + pcap_statustostr(status);
        const std::string detail = pcap_geterr(handle);
        if (!detail.empty()) message += " (" + detail + ")";
        return fail(std::move(message));
    }
    const int dlt = pcap_datalink(handle);
    const auto link = pcap::link_type_from_dlt(dlt);
    if (!link) return fail(unsupported_link(interface, dlt));
    capture.link_ = *link;

    bpf_program program{};
    const std::string filter = capture_filter(udp_ports);
    if (pcap_compile(handle, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
        return fail(interface + ": cannot compile filter: " + pcap_geterr(handle));
    }
    const int set = pcap_setfilter(handle, &program);
    pcap_freecode(&program);
    if (set != 0) return fail(interface + ": cannot set filter: " + pcap_geterr(handle));
    return capture;
}

Capture::Capture(Capture&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), link_(other.link_) {}

Capture::~Capture() {
    if (handle_ != nullptr) pcap_close(handle_);
}

std::optional<std::uint64_t> Capture::kernel_drops() const {
    pcap_stat stats{};
    if (pcap_stats(handle_, &stats) != 0) return std::nullopt;
    return std::uint64_t{stats.ps_drop} + stats.ps_ifdrop;
}

std::string Capture::link_name() const {
    const char* name = pcap_datalink_val_to_name(pcap_datalink(handle_));
    return name != nullptr ? name : std::to_string(pcap_datalink(handle_));
}

}  // namespace uhoma::dump
