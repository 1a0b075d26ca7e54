// Thin RAII over pcap_open_dead/pcap_dump_open/pcap_dump/pcap_dump_close.
#include "pcap/pcap_writer.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <utility>

namespace uhoma::pcap {

Expected<PcapWriter, WriteError> PcapWriter::open(const std::string& path, int dlt,
                                                  int snaplen) {
    pcap_t* handle = pcap_open_dead(dlt, snaplen);
    if (handle == nullptr) return Unexpected{WriteError{"pcap_open_dead failed"}};
    pcap_dumper_t* dumper = pcap_dump_open(handle, path.c_str());
    if (dumper == nullptr) {
        WriteError error{pcap_geterr(handle)};
        pcap_close(handle);
        return Unexpected{std::move(error)};
    }
    return PcapWriter(handle, dumper, snaplen);
}

PcapWriter::PcapWriter(PcapWriter&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      dumper_(std::exchange(other.dumper_, nullptr)),
      snaplen_(other.snaplen_) {}

PcapWriter& PcapWriter::operator=(PcapWriter&& other) noexcept {
    if (this != &other) {
        close();
        handle_ = std::exchange(other.handle_, nullptr);
        dumper_ = std::exchange(other.dumper_, nullptr);
        snaplen_ = other.snaplen_;
    }
    return *this;
}

PcapWriter::~PcapWriter() { close(); }

void PcapWriter::close() {
    if (dumper_ != nullptr) pcap_dump_close(dumper_);
    if (handle_ != nullptr) pcap_close(handle_);
    dumper_ = nullptr;
    handle_ = nullptr;
}

void PcapWriter::write(Timestamp time, wire::Bytes frame,
                       std::optional<std::size_t> original_length) {
    if (dumper_ == nullptr) return;
    const std::size_t captured = std::min(frame.size(), static_cast<std::size_t>(snaplen_));
    pcap_pkthdr header{};
    header.ts.tv_sec = static_cast<time_t>(time.seconds);
    header.ts.tv_usec = static_cast<suseconds_t>(time.micros);
    header.caplen = static_cast<bpf_u_int32>(captured);
    header.len = static_cast<bpf_u_int32>(std::max(original_length.value_or(0), frame.size()));
    // pcap_dump's signature predates const; it only reads the bytes.
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &header,
              reinterpret_cast<const u_char*>(frame.data()));
}

Expected<std::monostate, WriteError> PcapWriter::flush() {
    if (dumper_ != nullptr && pcap_dump_flush(dumper_) != 0) {
        return Unexpected{WriteError{"cannot write the capture file"}};
    }
    return std::monostate{};
}

}  // namespace uhoma::pcap
