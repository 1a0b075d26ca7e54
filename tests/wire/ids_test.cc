// Tests of src/wire/ids.h: RPC-id and port conventions (spec 1.6).
#include "wire/ids.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace {

using namespace uhoma::wire;

constexpr std::uint64_t client = 0x0123'4567'89AB'CDEE;
constexpr std::uint64_t server = 0x0123'4567'89AB'CDEF;

TEST(ids, is_client_id__low_bit_zero) {
    EXPECT_TRUE(is_client_id(client));
    EXPECT_TRUE(is_client_id(2));
    EXPECT_TRUE(is_client_id(0x8000'0000'0000'0000));
    EXPECT_TRUE(is_client_id(0xFFFF'FFFF'FFFF'FFFE));
    EXPECT_FALSE(is_client_id(server));
    EXPECT_FALSE(is_client_id(3));
    EXPECT_FALSE(is_client_id(0xFFFF'FFFF'FFFF'FFFF));
}

TEST(ids, is_server_id__low_bit_one) {
    EXPECT_TRUE(is_server_id(server));
    EXPECT_TRUE(is_server_id(1));
    EXPECT_TRUE(is_server_id(0xFFFF'FFFF'FFFF'FFFF));
    EXPECT_FALSE(is_server_id(client));
    EXPECT_FALSE(is_server_id(0));
    for (std::uint64_t id = 0; id < 16; ++id) EXPECT_NE(is_client_id(id), is_server_id(id)) << id;
}

TEST(ids, local_id__flips_the_low_bit) {
    // The receiver's id is the sender's id with the low bit flipped.
    EXPECT_EQ(local_id(client), server);
    EXPECT_EQ(local_id(server), client);
    EXPECT_EQ(local_id(2), 3u);
    EXPECT_EQ(local_id(3), 2u);
    EXPECT_EQ(local_id(0xFFFF'FFFF'FFFF'FFFF), 0xFFFF'FFFF'FFFF'FFFEu);
    EXPECT_EQ(local_id(local_id(0x8000'0000'0000'1234)), 0x8000'0000'0000'1234u);
}

TEST(ids, server_id__sets_the_low_bit) {
    EXPECT_EQ(server_id(client), server);
    EXPECT_EQ(server_id(server), server);  // idempotent
    EXPECT_EQ(server_id(2), 3u);
    EXPECT_EQ(server_id(0xFFFF'FFFF'FFFF'FFFE), 0xFFFF'FFFF'FFFF'FFFFu);
}

TEST(ids, client_id__clears_the_low_bit) {
    EXPECT_EQ(client_id(server), client);
    EXPECT_EQ(client_id(client), client);  // idempotent
    EXPECT_EQ(client_id(3), 2u);
    EXPECT_EQ(client_id(0xFFFF'FFFF'FFFF'FFFF), 0xFFFF'FFFF'FFFF'FFFEu);
    // client_id and server_id name the same RPC from its two ends.
    EXPECT_EQ(client_id(server_id(client)), client);
    EXPECT_EQ(server_id(client_id(server)), server);
}

TEST(ids, is_valid_rpc_id__zero_and_one_name_no_rpc) {
    EXPECT_FALSE(is_valid_rpc_id(0));
    EXPECT_FALSE(is_valid_rpc_id(1));
    EXPECT_TRUE(is_valid_rpc_id(2));
    EXPECT_TRUE(is_valid_rpc_id(3));
    EXPECT_TRUE(is_valid_rpc_id(0xFFFF'FFFF'FFFF'FFFF));
}

TEST(ids, is_server_port__1_to_32767) {
    EXPECT_FALSE(is_server_port(0));
    EXPECT_TRUE(is_server_port(1));
    EXPECT_TRUE(is_server_port(0x7FFF));
    EXPECT_FALSE(is_server_port(0x8000));
    EXPECT_FALSE(is_server_port(0xFFFF));
    EXPECT_EQ(min_client_port, 32768u);  // HOMA_MIN_DEFAULT_PORT
}

}  // namespace
