// Tests of tools/pcap/port_set: parsing -u lists and matching ports.
#include "pcap/port_set.h"

#include <gtest/gtest.h>

namespace uhoma::pcap {
namespace {

TEST(port_set, parse_port_list__single_port) {
    auto set = parse_port_list("4000");
    ASSERT_TRUE(set);
    EXPECT_TRUE(set->contains(4000));
    EXPECT_FALSE(set->contains(3999));
    EXPECT_FALSE(set->contains(4001));
}

TEST(port_set, parse_port_list__lists_and_ranges_merge) {
    auto set = parse_port_list("5000-5010,4000,5011,1-2");
    ASSERT_TRUE(set);
    const std::vector<PortRange> expected = {{1, 2}, {4000, 4000}, {5000, 5011}};
    EXPECT_EQ(set->ranges(), expected);
    EXPECT_TRUE(set->contains(5005));
    EXPECT_TRUE(set->contains(5011));
    EXPECT_FALSE(set->contains(5012));
}

TEST(port_set, parse_port_list__adds_to_a_base_set) {
    auto first = parse_port_list("4000");
    ASSERT_TRUE(first);
    auto both = parse_port_list("65535", *first);
    ASSERT_TRUE(both);
    EXPECT_TRUE(both->contains(4000));
    EXPECT_TRUE(both->contains(65535));
}

TEST(port_set, parse_port_list__rejects_bad_items) {
    EXPECT_EQ(parse_port_list("").error(), PortListError::empty_item);
    EXPECT_EQ(parse_port_list("4000,").error(), PortListError::empty_item);
    EXPECT_EQ(parse_port_list("http").error(), PortListError::not_a_number);
    EXPECT_EQ(parse_port_list("40x").error(), PortListError::not_a_number);
    EXPECT_EQ(parse_port_list("-5").error(), PortListError::empty_item);
    EXPECT_EQ(parse_port_list("0").error(), PortListError::out_of_range);
    EXPECT_EQ(parse_port_list("65536").error(), PortListError::out_of_range);
    EXPECT_EQ(parse_port_list("99999999999999999999").error(), PortListError::out_of_range);
    EXPECT_EQ(parse_port_list("5010-5000").error(), PortListError::reversed_range);
    EXPECT_EQ(parse_port_list("1-2-3").error(), PortListError::not_a_number);
}

TEST(port_set, PortSet__empty_contains_nothing) {
    const PortSet set;
    EXPECT_TRUE(set.empty());
    EXPECT_FALSE(set.contains(4000));
}

}  // namespace
}  // namespace uhoma::pcap
