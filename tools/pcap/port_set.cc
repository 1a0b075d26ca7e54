// Port ranges kept merged on insertion, so ranges() is canonical and a
// filter built from it has no redundant terms.
#include "pcap/port_set.h"

#include <algorithm>
#include <charconv>

namespace uhoma::pcap {

void PortSet::add(std::uint16_t first, std::uint16_t last) {
    if (first > last) std::swap(first, last);
    ranges_.push_back(PortRange{first, last});
    std::sort(ranges_.begin(), ranges_.end(),
              [](const PortRange& a, const PortRange& b) { return a.first < b.first; });
    std::vector<PortRange> merged;
    for (const PortRange& r : ranges_) {
        if (!merged.empty() && std::uint32_t{r.first} <= std::uint32_t{merged.back().last} + 1) {
            merged.back().last = std::max(merged.back().last, r.last);
        } else {
            merged.push_back(r);
        }
    }
    ranges_ = std::move(merged);
}

bool PortSet::contains(std::uint16_t port) const {
    return std::any_of(ranges_.begin(), ranges_.end(),
                       [port](const PortRange& r) { return port >= r.first && port <= r.last; });
}

const char* port_list_error_name(PortListError error) {
    switch (error) {
        case PortListError::empty_item: return "empty port";
        case PortListError::not_a_number: return "not a port number";
        case PortListError::out_of_range: return "port out of range 1-65535";
        case PortListError::reversed_range: return "range ends below its start";
    }
    return "bad port list";
}

namespace {

// Errors: empty_item, not_a_number, out_of_range.
Expected<std::uint16_t, PortListError> parse_port(std::string_view text) {
    if (text.empty()) return Unexpected{PortListError::empty_item};
    unsigned long value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) return Unexpected{PortListError::out_of_range};
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return Unexpected{PortListError::not_a_number};
    }
    if (value == 0 || value > 65535) return Unexpected{PortListError::out_of_range};
    return static_cast<std::uint16_t>(value);
}

}  // namespace

Expected<PortSet, PortListError> parse_port_list(std::string_view text, PortSet base) {
    while (true) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        const std::size_t dash = item.find('-');
        auto first = parse_port(item.substr(0, dash));
        if (!first) return Unexpected{first.error()};
        std::uint16_t last = *first;
        if (dash != std::string_view::npos) {
            auto parsed_last = parse_port(item.substr(dash + 1));
            if (!parsed_last) return Unexpected{parsed_last.error()};
            if (*parsed_last < *first) return Unexpected{PortListError::reversed_range};
            last = *parsed_last;
        }
        base.add(*first, last);
        if (comma == std::string_view::npos) return base;
        text.remove_prefix(comma + 1);
    }
}

}  // namespace uhoma::pcap
