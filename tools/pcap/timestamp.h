// A capture timestamp: seconds and microseconds since the Unix epoch.
//
// Microseconds because that is what classic pcap files and tcpdump use; a
// struct rather than std::chrono so it maps one to one onto pcap's timeval
// and prints without time-zone or rounding questions.
#pragma once

#include <cstdint>
#include <string>

namespace uhoma::pcap {

struct Timestamp {
    std::int64_t seconds = 0;
    std::uint32_t micros = 0;  // 0..999,999

    // From microseconds since the epoch.
    static Timestamp from_micros(std::int64_t total_micros);
    std::int64_t total_micros() const { return seconds * 1'000'000 + micros; }
    // "1700000000.000123".
    std::string to_string() const;

    friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

}  // namespace uhoma::pcap
