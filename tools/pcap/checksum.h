// The Internet checksum (RFC 1071), for the headers frame_builder writes.
//
// An accumulator rather than one function over one buffer, because the UDP
// checksum covers a pseudo-header that is not contiguous with the datagram.
// Bytes are summed as one big-endian stream, so a part may end on an odd
// byte and the next part continues the same 16-bit word.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace uhoma::pcap {

class InternetChecksum {
public:
    void add(std::span<const std::byte> bytes);
    // The one's complement of the folded sum, as written into a header.
    std::uint16_t value() const;

private:
    std::uint64_t sum_ = 0;
    bool odd_ = false;  // the next byte is the low byte of a word
};

}  // namespace uhoma::pcap
