// Big-endian loads and stores for link, IP and UDP headers.
//
// The wire layer keeps its own helpers private (src/wire/endian.h); these are
// the tools' copy for the headers around Homa, not for Homa itself, whose
// fields only wire::decode reads. Byte-wise access works at any alignment and
// on any host byte order. Callers check bounds first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace uhoma::pcap::net {

inline std::uint8_t load8(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::uint8_t>(b[at]);
}
inline std::uint16_t load16(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::uint16_t>((load8(b, at) << 8) | load8(b, at + 1));
}
inline std::uint32_t load32(std::span<const std::byte> b, std::size_t at) {
    return (std::uint32_t{load16(b, at)} << 16) | load16(b, at + 2);
}

inline void store8(std::span<std::byte> b, std::size_t at, std::uint8_t v) {
    b[at] = static_cast<std::byte>(v);
}
inline void store16(std::span<std::byte> b, std::size_t at, std::uint16_t v) {
    store8(b, at, static_cast<std::uint8_t>(v >> 8));
    store8(b, at + 1, static_cast<std::uint8_t>(v));
}
inline void store32(std::span<std::byte> b, std::size_t at, std::uint32_t v) {
    store16(b, at, static_cast<std::uint16_t>(v >> 16));
    store16(b, at + 2, static_cast<std::uint16_t>(v));
}

}  // namespace uhoma::pcap::net
