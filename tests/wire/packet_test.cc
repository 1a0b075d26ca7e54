// Tests of src/wire/packet.h: packet geometry (spec 1.7) and the Ack helper.
#include "wire/packet.h"

#include <gtest/gtest.h>

namespace {

using namespace uhoma::wire;

TEST(packet, max_seg_data__mtu_1500) {
    // MTU - IP header - 56: 1424 over IPv4, 1404 over IPv6.
    EXPECT_EQ(max_seg_data(1500, false), 1424u);
    EXPECT_EQ(max_seg_data(1500, true), 1404u);
    EXPECT_EQ(max_seg_data(9000, false), 8924u);
    EXPECT_EQ(max_seg_data(9000, true), 8904u);
}

TEST(packet, max_seg_data__tiny_mtu_gives_zero) {
    EXPECT_EQ(max_seg_data(76, false), 0u);  // room for the headers only
    EXPECT_EQ(max_seg_data(77, false), 1u);
    EXPECT_EQ(max_seg_data(96, true), 0u);
    EXPECT_EQ(max_seg_data(97, true), 1u);
    EXPECT_EQ(max_seg_data(0, false), 0u);
    EXPECT_EQ(max_seg_data(50, true), 0u);
}

TEST(packet, ack__empty_means_client_id_zero) {
    EXPECT_TRUE(Ack{}.empty());
    EXPECT_TRUE((Ack{0, 0x7E9B}.empty()));
    EXPECT_FALSE((Ack{2, 0}.empty()));
    EXPECT_FALSE((Ack{0x8000'0000'0000'0000, 1}.empty()));
}

}  // namespace
