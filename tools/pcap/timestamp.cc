// Floor division so times before the epoch keep 0 <= micros < 10^6.
#include "pcap/timestamp.h"

#include <cinttypes>
#include <cstdio>

namespace uhoma::pcap {

Timestamp Timestamp::from_micros(std::int64_t total_micros) {
    std::int64_t seconds = total_micros / 1'000'000;
    std::int64_t micros = total_micros % 1'000'000;
    if (micros < 0) {
        micros += 1'000'000;
        --seconds;
    }
    return Timestamp{seconds, static_cast<std::uint32_t>(micros)};
}

std::string Timestamp::to_string() const {
    char text[40];
    std::snprintf(text, sizeof text, "%" PRId64 ".%06" PRIu32, seconds, micros);
    return text;
}

}  // namespace uhoma::pcap
