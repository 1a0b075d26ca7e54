// Writing frames to a pcap file through libpcap.
//
// libpcap's own writer (pcap_open_dead + pcap_dump_open) guarantees files
// that tcpdump, Wireshark and pcap_open_offline read back; the class only
// adds RAII (the file is flushed and closed by the destructor) and
// uhoma::Expected errors. It is move-only: one owner per open file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "pcap/timestamp.h"
#include "uhoma/expected.h"
#include "wire/packet.h"

// libpcap's types, declared here so users need not include pcap.h.
struct pcap;
struct pcap_dumper;

namespace uhoma::pcap {

// What went wrong, as libpcap or the OS said it: one line, no newline.
struct WriteError {
    std::string message;
};

class PcapWriter {
public:
    static constexpr int dlt_ethernet = 1;
    static constexpr int default_snaplen = 65535;

    // Creates (or truncates) `path` as a pcap file of link type `dlt`.
    // Errors: WriteError with libpcap's message (cannot create, bad link type).
    static Expected<PcapWriter, WriteError> open(const std::string& path,
                                                 int dlt = dlt_ethernet,
                                                 int snaplen = default_snaplen);

    PcapWriter(PcapWriter&& other) noexcept;
    PcapWriter& operator=(PcapWriter&& other) noexcept;
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;
    ~PcapWriter();

    // Appends one record. `original_length` is the length on the wire when
    // it exceeds the captured bytes (a frame cut by the snaplen); by default
    // the frame is whole. Bytes beyond the snaplen are cut, as a capture would.
    void write(Timestamp time, wire::Bytes frame,
               std::optional<std::size_t> original_length = std::nullopt);

    // Flushes buffered records to the file.
    // Errors: WriteError if the OS refused the write.
    Expected<std::monostate, WriteError> flush();

private:
    PcapWriter(struct ::pcap* handle, struct ::pcap_dumper* dumper, int snaplen)
        : handle_(handle), dumper_(dumper), snaplen_(snaplen) {}
    void close();

    struct ::pcap* handle_ = nullptr;
    struct ::pcap_dumper* dumper_ = nullptr;
    int snaplen_ = default_snaplen;
};

}  // namespace uhoma::pcap
