// uhoma-metrics' homa_metrics parser and delta report.
#include "uhoma-metrics/snapshot.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/metrics.h"

namespace uhoma::metrics_tool {
namespace {

// A Linux-style file with two cores.
const std::string two_cores =
    "time_cycles                        5000000000 homa_clock() time when metrics were gathered\n"
    "cpu_khz                               2000000 Clock rate in khz\n"
    "core                                        0 Core id for following metrics\n"
    "msg_bytes_64                              640 Bytes in incoming messages containing 0-64 bytes\n"
    "client_requests_started                    10 Client RPCs initiated\n"
    "packets_sent_DATA                         100 DATA packets sent\n"
    "core                                        1 Core id for following metrics\n"
    "msg_bytes_64                               64 Bytes in incoming messages containing 0-64 bytes\n"
    "client_requests_started                     5 Client RPCs initiated\n"
    "packets_sent_DATA                          20 DATA packets sent\n";

TEST(Snapshot, parse_metrics__sums_cores) {
    auto s = parse_metrics(two_cores);
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(s->time_cycles, 5000000000u);
    EXPECT_EQ(s->cpu_khz, 2000000u);
    EXPECT_EQ(s->cores, 2u);
    EXPECT_EQ(s->skipped_lines, 0u);
    ASSERT_EQ(s->counters.size(), 3u);
    EXPECT_EQ(s->counters[0].name, "msg_bytes_64");
    EXPECT_EQ(s->counters[0].value, 704u);
    EXPECT_EQ(s->counters[0].description, "Bytes in incoming messages containing 0-64 bytes");
    EXPECT_EQ(s->value("client_requests_started"), 15u);
    EXPECT_EQ(s->value("packets_sent_DATA"), 120u);
    EXPECT_FALSE(s->value("core"));
    EXPECT_FALSE(s->value("nonexistent"));
}

TEST(Snapshot, parse_metrics__reads_the_engine_format) {
    engine::Metrics m;
    m.client_requests_started = 7;
    m.packets_rcvd_GRANT = 3;
    m.record_message_length(100);
    auto s = parse_metrics(engine::format_homa_metrics(m, 123456789));
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(s->skipped_lines, 0u);
    EXPECT_EQ(s->time_cycles, 123456789u);
    EXPECT_EQ(s->cpu_khz, 1000000u);
    EXPECT_EQ(s->value("client_requests_started"), 7u);
    EXPECT_EQ(s->value("packets_rcvd_GRANT"), 3u);
    EXPECT_EQ(s->value("msg_bytes_128"), 100u);
    EXPECT_EQ(s->value("large_msg_bytes"), 0u);
}

TEST(Snapshot, parse_metrics__skips_malformed_lines) {
    const std::string text =
        "good_one 5 fine\r\n"
        "\n"
        "   \t \n"
        "bad-name 5 dash\n"
        "9starts_with_digit 1 x\n"
        "negative -5 x\n"
        "hex 0x10 x\n"
        "overflow 18446744073709551616 one too many\n"
        "max 18446744073709551615 fits\n"
        "no_value\n"
        + std::string(100, 'n') + " 1 name too long\n"
        "desc_ctrl 1 tab\there\x01 end  \n";
    auto s = parse_metrics(text);
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(s->skipped_lines, 7u);
    EXPECT_EQ(s->value("good_one"), 5u);
    EXPECT_EQ(s->counters[0].description, "fine");
    EXPECT_EQ(s->value("max"), 18446744073709551615ull);
    EXPECT_EQ(s->value("desc_ctrl"), 1u);
    EXPECT_EQ(s->counters.back().description, "tab here  end");
}

TEST(Snapshot, parse_metrics__saturates_sums) {
    auto s = parse_metrics("a 18446744073709551615 x\ncore 1\na 5 x\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value("a"), 18446744073709551615ull);
}

TEST(Snapshot, parse_metrics__errors) {
    EXPECT_FALSE(parse_metrics(""));
    EXPECT_FALSE(parse_metrics("HTTP/1.1 200 OK\r\n\r\n<html>"));
    EXPECT_FALSE(parse_metrics("time_cycles 5\ncpu_khz 1000\ncore 0\n"));  // no counters
    EXPECT_FALSE(parse_metrics(std::string(max_metrics_bytes + 1, '\n')));
    std::string many;
    for (std::size_t i = 0; i <= max_metrics_counters; ++i) {
        many += 'c';
        many += std::to_string(i);
        many += " 1\n";
    }
    auto too_many = parse_metrics(many);
    ASSERT_FALSE(too_many);
    EXPECT_NE(too_many.error().find("distinct counters"), std::string::npos);
}

TEST(Snapshot, snapshot_interval__from_time_cycles) {
    auto a = parse_metrics("time_cycles 1000000\ncpu_khz 1000\nx 1\n").value();
    auto b = parse_metrics("time_cycles 3000000\ncpu_khz 1000\nx 2\n").value();
    EXPECT_DOUBLE_EQ(snapshot_interval(a, b).value(), 2.0);
    EXPECT_FALSE(snapshot_interval(b, a));  // backwards
    auto no_clock = parse_metrics("x 3\n").value();
    EXPECT_FALSE(snapshot_interval(a, no_clock));
    auto other_khz = parse_metrics("time_cycles 5000000\ncpu_khz 2000\nx 2\n").value();
    EXPECT_FALSE(snapshot_interval(a, other_khz));
}

TEST(Snapshot, human__si_suffixes) {
    EXPECT_EQ(human(0), "0");
    EXPECT_EQ(human(7), "7");
    EXPECT_EQ(human(2.5), "2.50");
    EXPECT_EQ(human(999), "999");
    EXPECT_EQ(human(1234), "1.23 K");
    EXPECT_EQ(human(45600), "45.6 K");
    EXPECT_EQ(human(7.89e6), "7.89 M");
    EXPECT_EQ(human(1.5e9), "1.50 G");
}

TEST(Snapshot, format_delta__rates_and_summary) {
    // 0.5 s apart by their own clocks (cpu_khz 1000000: cycles are ns).
    const std::string before =
        "time_cycles 1000000000\ncpu_khz 1000000\ncore 0\n"
        "client_responses_done 100 Client RPCs whose response arrived completely\n"
        "packets_sent_DATA 1000 DATA packets sent\n"
        "packets_sent_GRANT 10 GRANT packets sent\n"
        "priority0_bytes 0 Bytes sent at priority 0\n"
        "unchanged 5 stays\n"
        "went_back 50 restarted\n";
    const std::string after =
        "time_cycles 1500000000\ncpu_khz 1000000\ncore 0\n"
        "client_responses_done 600 Client RPCs whose response arrived completely\n"
        "packets_sent_DATA 3000 DATA packets sent\n"
        "packets_sent_GRANT 10 GRANT packets sent\n"
        "priority0_bytes 62500000 Bytes sent at priority 0\n"
        "unchanged 5 stays\n"
        "went_back 7 restarted\n"
        "brand_new 4 appeared\n";
    const auto a = parse_metrics(before).value();
    const auto b = parse_metrics(after).value();
    const std::string report = format_delta(a, b, 99.0, false);  // 99: unused, clocks win
    EXPECT_NE(report.find("interval 0.500 s\n"), std::string::npos) << report;
    EXPECT_NE(report.find("client_responses_done                           500       1.00 K/s  Client RPCs"),
              std::string::npos)
        << report;
    EXPECT_NE(report.find("packets_sent_DATA                              2000       4.00 K/s"),
              std::string::npos);
    EXPECT_EQ(report.find("\nunchanged"), std::string::npos);
    EXPECT_EQ(report.find("\npackets_sent_GRANT"), std::string::npos);
    EXPECT_NE(report.find("went_back                                         7           14/s  (reset) restarted"),
              std::string::npos);
    EXPECT_NE(report.find("brand_new                                         4            8/s"),
              std::string::npos);
    // Summary: 500 RPCs in 0.5 s; 2000 packets; 62.5 MB in 0.5 s = 1 Gbps.
    EXPECT_NE(report.find("  client RPCs completed              1.00 K/s"), std::string::npos)
        << report;
    EXPECT_NE(report.find("  packets sent                       4.00 K/s"), std::string::npos);
    EXPECT_NE(report.find("  sent on the wire                  1.000 Gbps"), std::string::npos);
    EXPECT_EQ(report.find("server requests received"), std::string::npos);  // no such counter

    const std::string all = format_delta(a, b, 99.0, true);
    EXPECT_NE(all.find("\nunchanged                                         0            0/s"),
              std::string::npos)
        << all;
}

TEST(Snapshot, format_delta__falls_back_to_measured_interval) {
    const auto a = parse_metrics("x 10\n").value();
    const auto b = parse_metrics("x 30\n").value();
    const std::string report = format_delta(a, b, 2.0, false);
    EXPECT_NE(report.find("interval 2.000 s\n"), std::string::npos);
    EXPECT_NE(report.find("x                                                20           10/s"),
              std::string::npos)
        << report;
}

}  // namespace
}  // namespace uhoma::metrics_tool
