// Text forms of IP addresses via the C library, which knows RFC 5952.
#include "pcap/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace uhoma::pcap {

IpAddress IpAddress::v4_from(std::array<std::uint8_t, 4> octets) {
    IpAddress a;
    std::memcpy(a.bytes.data(), octets.data(), octets.size());
    return a;
}

IpAddress IpAddress::v6_from(const std::array<std::uint8_t, 16>& octets) {
    IpAddress a;
    a.v6 = true;
    a.bytes = octets;
    return a;
}

std::string IpAddress::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof text) == nullptr) {
        return "?";
    }
    return text;
}

Expected<IpAddress, AddressError> parse_ip_address(std::string_view text) {
    const std::string s(text);
    IpAddress a;
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.v6 = true;
        return a;
    }
    return Unexpected{AddressError::not_an_address};
}

}  // namespace uhoma::pcap
