// Big-endian loads and stores at arbitrary (unaligned) positions.
// Private to the wire layer. Callers check bounds first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uhoma::wire::detail {

inline std::uint8_t load8(const std::byte* p) { return static_cast<std::uint8_t>(*p); }
inline std::uint16_t load16(const std::byte* p) {
    return static_cast<std::uint16_t>((load8(p) << 8) | load8(p + 1));
}
inline std::uint32_t load32(const std::byte* p) {
    return (std::uint32_t{load16(p)} << 16) | load16(p + 2);
}
inline std::uint64_t load64(const std::byte* p) {
    return (std::uint64_t{load32(p)} << 32) | load32(p + 4);
}

inline void store8(std::byte* p, std::uint8_t v) { *p = static_cast<std::byte>(v); }
inline void store16(std::byte* p, std::uint16_t v) {
    store8(p, static_cast<std::uint8_t>(v >> 8));
    store8(p + 1, static_cast<std::uint8_t>(v));
}
inline void store32(std::byte* p, std::uint32_t v) {
    store16(p, static_cast<std::uint16_t>(v >> 16));
    store16(p + 2, static_cast<std::uint16_t>(v));
}
inline void store64(std::byte* p, std::uint64_t v) {
    store32(p, static_cast<std::uint32_t>(v >> 32));
    store32(p + 4, static_cast<std::uint32_t>(v));
}

}  // namespace uhoma::wire::detail
