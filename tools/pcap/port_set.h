// The set of UDP ports that carry Homa, as given on a command line.
//
// Homa over UDP has no protocol number of its own, so a capture tells Homa
// from other UDP traffic only by port: a datagram is Homa when its source OR
// destination port is in this set (a reply comes from the well-known port
// and goes to whatever port the peer used). The set is kept as sorted,
// merged ranges: small, easy to turn into a BPF filter, and a lookup is a
// short scan.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "uhoma/expected.h"

namespace uhoma::pcap {

struct PortRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;  // inclusive
    friend bool operator==(const PortRange&, const PortRange&) = default;
};

class PortSet {
public:
    // Adds first..last (inclusive; swapped if given backwards).
    void add(std::uint16_t first, std::uint16_t last);
    void add(std::uint16_t port) { add(port, port); }
    bool contains(std::uint16_t port) const;
    bool empty() const { return ranges_.empty(); }
    // Sorted, non-overlapping, non-adjacent.
    const std::vector<PortRange>& ranges() const { return ranges_; }

private:
    std::vector<PortRange> ranges_;
};

enum class PortListError : std::uint8_t {
    empty_item,      // "" or a stray comma
    not_a_number,    // "http", "40x"
    out_of_range,    // 0 or above 65535
    reversed_range,  // "5010-5000"
};

const char* port_list_error_name(PortListError error);

// Adds the ports of "4000", "4000,4001" or "5000-5010,6000" to `base`.
// Errors: empty_item, not_a_number, out_of_range, reversed_range.
Expected<PortSet, PortListError> parse_port_list(std::string_view text, PortSet base = {});

}  // namespace uhoma::pcap
