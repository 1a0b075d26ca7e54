#include "engine/config.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace uhoma::engine {
namespace {

TEST(Config, defaults__match_linux_homa_sysctls) {
    const Config c;
    EXPECT_EQ(c.unsched_bytes, 40000u);
    EXPECT_EQ(c.window, 0u);
    EXPECT_EQ(c.max_incoming, 400000u);
    EXPECT_EQ(c.max_overcommit, 8u);
    EXPECT_EQ(c.grant_fifo_fraction, 50u);
    EXPECT_EQ(c.fifo_grant_increment, 50000u);
    EXPECT_EQ(c.num_priorities, 8u);
    EXPECT_EQ(c.unsched_cutoffs, (std::array<std::uint32_t, 8>{0, 0, 0, 0, 1000000, 15000, 2800, 200}));
    EXPECT_EQ(c.link_mbps, 25000u);
    EXPECT_EQ(c.max_nic_est_backlog_usecs, 5u);
    EXPECT_EQ(c.defer_min_bytes, 1000u);
    EXPECT_EQ(c.pacer_fifo_fraction, 50u);
    EXPECT_EQ(c.max_gso_size, 0u);
    EXPECT_EQ(c.wmem_max, 100000000u);
    EXPECT_EQ(c.resend_ticks, 5u);
    EXPECT_EQ(c.resend_interval, 5u);
    EXPECT_EQ(c.timeout_ticks, 100u);
    EXPECT_EQ(c.request_ack_ticks, 2u);
    EXPECT_EQ(c.bpage_lease_usecs, 10000u);
    EXPECT_EQ(c.peer_gc_threshold, 5000u);
    EXPECT_EQ(c.peer_idle_secs_max, 120u);
    EXPECT_TRUE(validate(c).has_value());
}

TEST(Config, validate__names_the_bad_field) {
    struct Case {
        void (*mutate)(Config&);
        const char* field;
    };
    const Case cases[] = {
        {[](Config& c) { c.max_overcommit = 9; }, "max_overcommit"},
        {[](Config& c) { c.max_overcommit = 0; }, "max_overcommit"},
        {[](Config& c) { c.grant_fifo_fraction = 501; }, "grant_fifo_fraction"},
        {[](Config& c) { c.num_priorities = 9; }, "num_priorities"},
        {[](Config& c) { c.unsched_bytes = 0; }, "unsched_bytes"},
        {[](Config& c) { c.link_mbps = 0; }, "link_mbps"},
        {[](Config& c) { c.timeout_ticks = 2; }, "timeout_ticks"},
        {[](Config& c) { c.mtu = 100; }, "mtu"},
        {[](Config& c) { c.priority_map[3] = 8; }, "priority_map"},
        {[](Config& c) { c.unsched_cutoffs[6] = 100; }, "unsched_cutoffs"},
    };
    for (const Case& k : cases) {
        Config c;
        k.mutate(c);
        auto r = validate(c);
        ASSERT_FALSE(r.has_value()) << k.field;
        EXPECT_EQ(r.error().field, k.field);
        EXPECT_FALSE(r.error().message.empty());
    }
}

TEST(Config, set_parameter__by_sysctl_name_and_old_aliases) {
    Config c;
    EXPECT_TRUE(set_parameter(c, "unsched_bytes", "60000").has_value());
    EXPECT_EQ(c.unsched_bytes, 60000u);
    EXPECT_TRUE(set_parameter(c, "throttle_min_bytes", "2000").has_value());
    EXPECT_EQ(c.defer_min_bytes, 2000u);
    EXPECT_TRUE(set_parameter(c, "max_nic_queue_ns", "3000").has_value());
    EXPECT_EQ(c.max_nic_est_backlog_usecs, 3u);
    EXPECT_TRUE(set_parameter(c, "unsched_cutoffs", "0 0 0 0 1000000 20000 3000,300").has_value());
    EXPECT_EQ(c.unsched_cutoffs[5], 20000u);
    EXPECT_EQ(c.unsched_cutoffs[7], 300u);
    EXPECT_TRUE(set_parameter(c, "priority_map", "0,1,2,3,4,5,6,6").has_value());
    EXPECT_EQ(c.priority_map[7], 6);
}

TEST(Config, set_parameter__rejects_bad_input) {
    Config c;
    EXPECT_EQ(set_parameter(c, "no_such_knob", "1").error().field, "no_such_knob");
    EXPECT_EQ(set_parameter(c, "window", "12x").error().field, "window");
    EXPECT_EQ(set_parameter(c, "window", "").error().field, "window");
    EXPECT_EQ(set_parameter(c, "window", "-1").error().field, "window");
    EXPECT_EQ(set_parameter(c, "window", "99999999999").error().field, "window");
    EXPECT_EQ(set_parameter(c, "priority_map", "0 1 2").error().field, "priority_map");
    EXPECT_EQ(set_parameter(c, "priority_map", "0 1 2 3 4 5 6 7 8").error().field, "priority_map");
    EXPECT_EQ(set_parameter(c, "priority_map", "0 1 2 3 4 5 6 300").error().field, "priority_map");
    EXPECT_EQ(c.window, 0u);  // failed sets change nothing
    EXPECT_EQ(c.priority_map[7], 7);
}

TEST(Config, parameter_names__cover_every_settable_field) {
    const auto names = parameter_names();
    for (const char* n : {"unsched_bytes", "window", "max_incoming", "max_overcommit",
                          "grant_fifo_fraction", "fifo_grant_increment", "num_priorities",
                          "priority_map", "unsched_cutoffs", "link_mbps",
                          "max_nic_est_backlog_usecs", "defer_min_bytes", "pacer_fifo_fraction",
                          "flags", "max_gso_size", "wmem_max", "resend_ticks", "resend_interval",
                          "timeout_ticks", "request_ack_ticks", "bpage_lease_usecs",
                          "peer_gc_threshold", "peer_idle_secs_max"}) {
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    }
}

}  // namespace
}  // namespace uhoma::engine
