// An IPv4 or IPv6 address as a small value, for frames and their printing.
//
// Frames carry addresses by value (16 bytes, no allocation) so a HomaFrame
// stays valid after the capture buffer is reused, and so tests can compare
// them with ==. Text conversion goes through inet_ntop/inet_pton: the
// standard forms ("10.0.0.1", "fd00::1") are what people grep for.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "uhoma/expected.h"

namespace uhoma::pcap {

struct IpAddress {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};  // IPv4: the first 4 bytes, the rest 0

    static IpAddress v4_from(std::array<std::uint8_t, 4> octets);
    static IpAddress v6_from(const std::array<std::uint8_t, 16>& octets);

    // "10.0.0.1" or "fd00::1" (RFC 5952 form, as inet_ntop writes it).
    std::string to_string() const;

    friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

enum class AddressError : std::uint8_t {
    not_an_address,  // neither dotted IPv4 nor IPv6 text
};

// Parses "10.0.0.1" or "fd00::1".
// Errors: not_an_address.
Expected<IpAddress, AddressError> parse_ip_address(std::string_view text);

}  // namespace uhoma::pcap
