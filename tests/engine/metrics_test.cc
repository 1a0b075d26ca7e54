// Tests of src/engine/metrics.cc: the message-length histogram and the
// homa_metrics text format (spec 10).
#include "engine/metrics.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using uhoma::engine::format_homa_metrics;
using uhoma::engine::Metrics;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

std::string name_of(const std::string& line) {
    return line.substr(0, line.find(' '));
}

// The bucket index holding `length`, found through the public interface.
std::size_t bucket_of(std::uint32_t length) {
    Metrics m;
    m.record_message_length(length);
    for (std::size_t i = 0; i < m.msg_bytes.size(); ++i) {
        if (m.msg_bytes[i] != 0) return i;
    }
    return m.msg_bytes.size();  // not in the histogram
}

TEST(metrics, bucket_limit__both_ranges) {
    EXPECT_EQ(Metrics::bucket_limit(0), 64u);
    EXPECT_EQ(Metrics::bucket_limit(1), 128u);
    EXPECT_EQ(Metrics::bucket_limit(63), 4096u);
    EXPECT_EQ(Metrics::bucket_limit(64), 5120u);
    EXPECT_EQ(Metrics::bucket_limit(65), 6144u);
    EXPECT_EQ(Metrics::bucket_limit(187), 131072u);
    EXPECT_EQ(Metrics::small_buckets + Metrics::medium_buckets, 188u);
}

TEST(metrics, bucket_limit__out_of_range_is_zero) {
    EXPECT_EQ(Metrics::bucket_limit(188), 0u);
    EXPECT_EQ(Metrics::bucket_limit(1000000), 0u);
}

TEST(metrics, bucket_limit__strictly_increasing) {
    for (std::size_t i = 1; i < Metrics::small_buckets + Metrics::medium_buckets; ++i) {
        EXPECT_GT(Metrics::bucket_limit(i), Metrics::bucket_limit(i - 1)) << i;
    }
}

TEST(metrics, record_message_length__edges) {
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(1)), 64u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(64)), 64u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(65)), 128u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(4096)), 4096u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(4097)), 5120u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(5120)), 5120u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(5121)), 6144u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(131071)), 131072u);
    EXPECT_EQ(Metrics::bucket_limit(bucket_of(131072)), 131072u);
}

TEST(metrics, record_message_length__every_length_in_smallest_fitting_bucket) {
    for (std::uint32_t length = 1; length <= 131072; ++length) {
        const std::size_t b = bucket_of(length);
        ASSERT_LT(b, Metrics::small_buckets + Metrics::medium_buckets) << length;
        ASSERT_GE(Metrics::bucket_limit(b), length) << length;
        if (b > 0) {
            ASSERT_LT(Metrics::bucket_limit(b - 1), length) << length;
        }
    }
}

TEST(metrics, record_message_length__adds_length_as_bytes) {
    Metrics m;
    m.record_message_length(64);
    m.record_message_length(10);
    m.record_message_length(65);
    m.record_message_length(5120);
    EXPECT_EQ(m.msg_bytes[0], 74u);
    EXPECT_EQ(m.msg_bytes[1], 65u);
    EXPECT_EQ(m.msg_bytes[64], 5120u);
    EXPECT_EQ(m.large_msg_count, 0u);
    EXPECT_EQ(m.large_msg_bytes, 0u);
}

TEST(metrics, record_message_length__zero_length_adds_no_bytes) {
    Metrics m;
    m.record_message_length(0);
    for (std::uint64_t b : m.msg_bytes) EXPECT_EQ(b, 0u);
    EXPECT_EQ(m.large_msg_count, 0u);
    EXPECT_EQ(m.large_msg_bytes, 0u);
}

TEST(metrics, record_message_length__beyond_131072_is_large) {
    Metrics m;
    m.record_message_length(131073);
    m.record_message_length(1000000);
    EXPECT_EQ(m.large_msg_count, 2u);
    EXPECT_EQ(m.large_msg_bytes, 1131073u);
    for (std::uint64_t b : m.msg_bytes) EXPECT_EQ(b, 0u);
}

TEST(metrics, operator_plus_equals__sums_every_counter_and_bucket) {
    Metrics a;
    Metrics b;
    std::uint64_t v = 1;
#define SET(name, description) \
    a.name = v;                \
    b.name = 1000 * v;         \
    ++v;
    UHOMA_METRICS(SET)
#undef SET
    for (std::size_t i = 0; i < a.msg_bytes.size(); ++i) {
        a.msg_bytes[i] = i;
        b.msg_bytes[i] = 7 * i + 3;
    }
    a += b;
    v = 1;
#define CHECK(name, description)          \
    EXPECT_EQ(a.name, 1001 * v) << #name; \
    EXPECT_EQ(b.name, 1000 * v) << #name; \
    ++v;
    UHOMA_METRICS(CHECK)
#undef CHECK
    for (std::size_t i = 0; i < a.msg_bytes.size(); ++i) EXPECT_EQ(a.msg_bytes[i], 8 * i + 3) << i;
}

TEST(metrics, operator_plus_equals__returns_self_for_chaining) {
    Metrics a;
    Metrics b;
    b.rpc_timeouts = 2;
    (a += b) += b;
    EXPECT_EQ(a.rpc_timeouts, 4u);
}

TEST(metrics, format_homa_metrics__line_format_byte_for_byte) {
    Metrics m;
    m.packets_sent_GRANT = 42;
    const std::string text = format_homa_metrics(m, 123456789);
    const auto lines = lines_of(text);
    ASSERT_GE(lines.size(), 3u);
    // "%-30s %20llu %s\n": 30-column name, space, 20-column value, space.
    EXPECT_EQ(lines[0],
              "time_cycles                               123456789 "
              "homa_clock() time when metrics were gathered");
    EXPECT_EQ(lines[1], "cpu_khz                                     1000000 Clock rate in khz");
    EXPECT_EQ(lines[2],
              "core                                              0 "
              "Core id for following metrics");
    EXPECT_NE(text.find("\npackets_sent_GRANT                               42 "
                        "GRANT packets sent\n"),
              std::string::npos);
    EXPECT_EQ(text.back(), '\n');
}

TEST(metrics, format_homa_metrics__every_line_has_fixed_columns) {
    Metrics m;
    m.sent_msg_bytes = 18446744073709551615ull;  // 20 digits: fills the column
    const auto lines = lines_of(format_homa_metrics(m, 0));
    for (const std::string& line : lines) {
        ASSERT_GE(line.size(), 53u) << line;
        EXPECT_LE(name_of(line).size(), 30u) << line;
        EXPECT_EQ(line[30], ' ') << line;
        EXPECT_EQ(line[51], ' ') << line;
        EXPECT_NE(line[50], ' ') << line;  // the value is right-aligned
    }
    EXPECT_NE(
        format_homa_metrics(m, 0).find("sent_msg_bytes                 18446744073709551615 "),
        std::string::npos);
}

TEST(metrics, format_homa_metrics__histogram_lines) {
    Metrics m;
    m.record_message_length(100);
    m.record_message_length(4097);
    m.record_message_length(131072);
    const auto lines = lines_of(format_homa_metrics(m, 0));
    ASSERT_GT(lines.size(), 3u + 188u);
    // The histogram follows the core line, as in Linux.
    EXPECT_EQ(lines[3],
              "msg_bytes_64                                      0 "
              "Bytes in incoming messages containing 0-64 bytes");
    EXPECT_EQ(lines[4],
              "msg_bytes_128                                   100 "
              "Bytes in incoming messages containing 65-128 bytes");
    EXPECT_EQ(lines[3 + 63],
              "msg_bytes_4096                                    0 "
              "Bytes in incoming messages containing 4033-4096 bytes");
    EXPECT_EQ(lines[3 + 64],
              "msg_bytes_5120                                 4097 "
              "Bytes in incoming messages containing 4097-5120 bytes");
    EXPECT_EQ(lines[3 + 187],
              "msg_bytes_131072                             131072 "
              "Bytes in incoming messages containing 130049-131072 bytes");
    for (std::size_t i = 0; i < 188; ++i) {
        EXPECT_EQ(name_of(lines[3 + i]), "msg_bytes_" + std::to_string(Metrics::bucket_limit(i)));
    }
}

TEST(metrics, format_homa_metrics__counters_in_list_order_after_histogram) {
    Metrics m;
    std::uint64_t v = 1;
#define SET(name, description) m.name = v++;
    UHOMA_METRICS(SET)
#undef SET
    const auto lines = lines_of(format_homa_metrics(m, 7));
    std::vector<std::string> expected_names;
    std::vector<std::string> expected_descriptions;
#define NAME(name, description)      \
    expected_names.push_back(#name); \
    expected_descriptions.push_back(description);
    UHOMA_METRICS(NAME)
#undef NAME
    ASSERT_EQ(lines.size(), 3u + 188u + expected_names.size());
    for (std::size_t i = 0; i < expected_names.size(); ++i) {
        const std::string& line = lines[3 + 188 + i];
        EXPECT_EQ(name_of(line), expected_names[i]);
        EXPECT_EQ(std::stoull(line.substr(31, 20)), i + 1) << line;
        EXPECT_EQ(line.substr(52), expected_descriptions[i]);
    }
}

TEST(metrics, format_homa_metrics__every_name_exactly_once) {
    const auto lines = lines_of(format_homa_metrics(Metrics{}, 0));
    std::map<std::string, int> seen;
    for (const std::string& line : lines) ++seen[name_of(line)];
#define ONCE(name, description) EXPECT_EQ(seen[#name], 1) << #name;
    UHOMA_METRICS(ONCE)
#undef ONCE
    for (std::size_t i = 0; i < 188; ++i) {
        EXPECT_EQ(seen["msg_bytes_" + std::to_string(Metrics::bucket_limit(i))], 1) << i;
    }
    EXPECT_EQ(seen["time_cycles"], 1);
    EXPECT_EQ(seen["cpu_khz"], 1);
    EXPECT_EQ(seen["core"], 1);
    for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << name;
}

}  // namespace

namespace {

// Counter name -> value, from the homa_metrics text.
std::map<std::string, std::uint64_t> counters_of(const Metrics& m) {
    std::map<std::string, std::uint64_t> values;
    for (const auto& line : lines_of(format_homa_metrics(m, 0))) {
        std::istringstream in(line);
        std::string name;
        std::uint64_t value = 0;
        if (in >> name >> value) values[name] = value;
    }
    return values;
}

TEST(Metrics, count_sent__each_packet_type_its_own_counter) {
    for (std::uint8_t t = uhoma::wire::min_packet_type; t <= uhoma::wire::max_packet_type; ++t) {
        const auto type = static_cast<uhoma::wire::PacketType>(t);
        const std::string name = uhoma::wire::packet_type_name(type);
        SCOPED_TRACE(name);
        Metrics m;
        m.count_sent(type);
        m.count_sent(type);
        m.count_received(type);
        const auto values = counters_of(m);
        for (const auto& [counter, value] : values) {
            if (counter.rfind("packets_sent_", 0) == 0) {
                EXPECT_EQ(value, counter == "packets_sent_" + name ? 2u : 0u) << counter;
            } else if (counter.rfind("packets_rcvd_", 0) == 0) {
                EXPECT_EQ(value, counter == "packets_rcvd_" + name ? 1u : 0u) << counter;
            }
        }
        EXPECT_EQ(values.at("packets_sent_" + name), 2u);
        EXPECT_EQ(values.at("packets_rcvd_" + name), 1u);
    }
}

}  // namespace
