// Sums into 64 bits and folds once at the end: no overflow below 2^48 bytes.
#include "pcap/checksum.h"

namespace uhoma::pcap {

void InternetChecksum::add(std::span<const std::byte> bytes) {
    for (const std::byte b : bytes) {
        const auto v = static_cast<std::uint64_t>(b);
        sum_ += odd_ ? v : v << 8;
        odd_ = !odd_;
    }
}

std::uint16_t InternetChecksum::value() const {
    std::uint64_t folded = sum_;
    while (folded > 0xFFFF) folded = (folded & 0xFFFF) + (folded >> 16);
    return static_cast<std::uint16_t>(~folded & 0xFFFF);
}

}  // namespace uhoma::pcap
