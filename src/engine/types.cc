#include "engine/types.h"

#include <arpa/inet.h>

namespace uhoma::engine {

// Text forms: dotted quad for IPv4-mapped addresses, RFC 5952 for IPv6.
// inet_ntop is a pure formatting function (no I/O), so the engine stays
// sans-I/O.
std::string Address::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (is_ipv4()) {
        inet_ntop(AF_INET, bytes.data() + 12, text, sizeof(text));
    } else {
        inet_ntop(AF_INET6, bytes.data(), text, sizeof(text));
    }
    return text;
}

std::string Endpoint::to_string() const {
    const std::string a = address.to_string();
    return (address.is_ipv4() ? a : "[" + a + "]") + ":" + std::to_string(port);
}

std::vector<std::byte> packet_bytes(const Transmit& transmit) {
    std::vector<std::byte> bytes;
    bytes.reserve(transmit.size());
    bytes.insert(bytes.end(), transmit.header.begin(), transmit.header.end());
    bytes.insert(bytes.end(), transmit.payload.begin(), transmit.payload.end());
    return bytes;
}

}  // namespace uhoma::engine
