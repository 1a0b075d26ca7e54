// Engine metrics: the message-length histogram and the homa_metrics text
// format (spec 10). Design notes are in metrics.h.
//
// Layout of the text, one `"%-30s %20llu %s\n"` line per value, as Linux
// Homa's homa_metrics_print() writes it for a single core:
//
//   time_cycles   <time_ns>   homa_clock() time when metrics were gathered
//   cpu_khz       1000000     Clock rate in khz
//   core          0           Core id for following metrics
//   msg_bytes_64 ... msg_bytes_4096, msg_bytes_5120 ... msg_bytes_131072
//   every UHOMA_METRICS counter, in list order
//
// The `core N` line of spec 10 is an ordinary counter line named "core" whose
// value is the core id, which is what Linux writes and what metrics.py and
// homa_prio expect. As in Linux, the histogram comes first, right after the
// core line. uhoma's large_msg_count and large_msg_bytes are X-macro counters
// and so follow later, at the end of the list; parsers find counters by
// name, and homa_prio only needs the msg_bytes_* lines in increasing order.
#include "engine/metrics.h"

#include <cstdio>

namespace uhoma::engine {

namespace {

constexpr std::uint32_t small_step = 64;
constexpr std::uint32_t medium_step = 1024;
constexpr std::uint32_t small_limit = small_step * Metrics::small_buckets;  // 4096
// The first medium bucket is 5120: 4097..5120 (Linux's medium index 4).
constexpr std::uint32_t first_medium_index = small_limit / medium_step;  // 4
constexpr std::uint32_t medium_limit =
    medium_step * static_cast<std::uint32_t>(first_medium_index + Metrics::medium_buckets);

static_assert(medium_limit == 131072, "histogram must end at 131072 (spec 10)");

void append_line(std::string& out, const char* name, std::uint64_t value,
                 const std::string& description) {
    // Names are at most 30 characters and values at most 20 digits, so a line
    // is 52 characters plus the description.
    char head[80];
    const int n = std::snprintf(head, sizeof(head), "%-30s %20llu ", name,
                                static_cast<unsigned long long>(value));
    out.append(head, static_cast<std::size_t>(n));
    out += description;
    out += '\n';
}

}  // namespace

void Metrics::record_message_length(std::uint32_t length) {
    if (length > medium_limit) {
        large_msg_count += 1;
        large_msg_bytes += length;
        return;
    }
    std::size_t index = 0;
    if (length <= small_limit) {
        index = length == 0 ? 0 : (length - 1) / small_step;
    } else {
        index = small_buckets + (length - 1) / medium_step - first_medium_index;
    }
    msg_bytes[index] += length;
}

std::uint32_t Metrics::bucket_limit(std::size_t index) {
    if (index < small_buckets) return static_cast<std::uint32_t>(index + 1) * small_step;
    if (index < small_buckets + medium_buckets) {
        return static_cast<std::uint32_t>(index - small_buckets + first_medium_index + 1) *
               medium_step;
    }
    return 0;
}

Metrics& Metrics::operator+=(const Metrics& other) {
#define UHOMA_METRIC_ADD(name, description) name += other.name;
    UHOMA_METRICS(UHOMA_METRIC_ADD)
#undef UHOMA_METRIC_ADD
    for (std::size_t i = 0; i < msg_bytes.size(); ++i) msg_bytes[i] += other.msg_bytes[i];
    return *this;
}

namespace {

// Per packet type (wire order, from min_packet_type): its two counters.
struct PacketCounters {
    std::uint64_t Metrics::*sent;
    std::uint64_t Metrics::*received;
};
constexpr std::array<PacketCounters, wire::num_packet_types> packet_counters{{
    {&Metrics::packets_sent_DATA, &Metrics::packets_rcvd_DATA},
    {&Metrics::packets_sent_GRANT, &Metrics::packets_rcvd_GRANT},
    {&Metrics::packets_sent_RESEND, &Metrics::packets_rcvd_RESEND},
    {&Metrics::packets_sent_RPC_UNKNOWN, &Metrics::packets_rcvd_RPC_UNKNOWN},
    {&Metrics::packets_sent_BUSY, &Metrics::packets_rcvd_BUSY},
    {&Metrics::packets_sent_CUTOFFS, &Metrics::packets_rcvd_CUTOFFS},
    {&Metrics::packets_sent_FREEZE, &Metrics::packets_rcvd_FREEZE},
    {&Metrics::packets_sent_NEED_ACK, &Metrics::packets_rcvd_NEED_ACK},
    {&Metrics::packets_sent_ACK, &Metrics::packets_rcvd_ACK},
}};

const PacketCounters& counters_of(wire::PacketType type) {
    // PacketType values are only ever the nine of the enum (decode rejects
    // the rest), so the index is in range.
    return packet_counters[static_cast<std::size_t>(static_cast<std::uint8_t>(type) -
                                                    wire::min_packet_type)];
}

}  // namespace

void Metrics::count_sent(wire::PacketType type) { ++(this->*counters_of(type).sent); }

void Metrics::count_received(wire::PacketType type) { ++(this->*counters_of(type).received); }

std::string format_homa_metrics(const Metrics& metrics, std::uint64_t time_ns) {
    std::string out;
    out.reserve(64 * 1024);
    append_line(out, "time_cycles", time_ns, "homa_clock() time when metrics were gathered");
    append_line(out, "cpu_khz", 1000000, "Clock rate in khz");
    append_line(out, "core", 0, "Core id for following metrics");

    std::uint32_t lower = 0;
    for (std::size_t i = 0; i < metrics.msg_bytes.size(); ++i) {
        const std::uint32_t upper = Metrics::bucket_limit(i);
        const std::string name = "msg_bytes_" + std::to_string(upper);
        append_line(out, name.c_str(), metrics.msg_bytes[i],
                    "Bytes in incoming messages containing " + std::to_string(lower) + "-" +
                        std::to_string(upper) + " bytes");
        lower = upper + 1;
    }

#define UHOMA_METRIC_LINE(name, description) append_line(out, #name, metrics.name, description);
    UHOMA_METRICS(UHOMA_METRIC_LINE)
#undef UHOMA_METRIC_LINE
    return out;
}

}  // namespace uhoma::engine
