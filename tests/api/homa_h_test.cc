// Tests of include/uhoma/homa.h (Linux Homa's uapi, spec 8.1/8.2) and of the
// declarations in include/uhoma/uhoma_c.h: constants, ioctl numbers, struct
// sizes, field offsets and field types, checked at run time as well as by the
// header's own static asserts (a test failure names the field that moved).
#include "uhoma/homa.h"

#include <gtest/gtest.h>
#include <linux/ioctl.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "uhoma/uhoma_c.h"

namespace {

// Declared type of a struct member, for checking the exact integer types.
#define FIELD_TYPE(S, f) decltype(S::f)

TEST(homa_h, constants__match_linux_homa) {
    EXPECT_EQ(IPPROTO_HOMA, 146);
    EXPECT_EQ(HOMA_MAX_MESSAGE_LENGTH, 1000000);
    EXPECT_EQ(HOMA_BPAGE_SHIFT, 16);
    EXPECT_EQ(HOMA_BPAGE_SIZE, 65536);
    EXPECT_EQ(HOMA_BPAGE_SIZE, 1 << HOMA_BPAGE_SHIFT);
    EXPECT_EQ(HOMA_MAX_BPAGES, 16);
    EXPECT_EQ(HOMA_MIN_DEFAULT_PORT, 0x8000);
    EXPECT_EQ(HOMA_SENDMSG_PRIVATE, 1);
    EXPECT_EQ(HOMA_SENDMSG_VALID_FLAGS, 1);
    EXPECT_EQ(SO_HOMA_RCVBUF, 10);
    EXPECT_EQ(SO_HOMA_SERVER, 11);
    EXPECT_EQ(HOMA_FLAG_DONT_THROTTLE, 2);
    EXPECT_EQ(HOMA_RPC_BUF_STALL, 1);
    EXPECT_EQ(HOMA_RPC_PRIVATE, 2);
    EXPECT_EQ(HOMA_RPC_RX_READY, 4);
    EXPECT_EQ(HOMA_RPC_RX_COPY, 8);
    EXPECT_EQ(HOMA_ERROR_MSG_SIZE, 104);
}

TEST(homa_h, max_bpages__covers_largest_message) {
    // The bpage_offsets array must be able to describe the largest message.
    EXPECT_GE(HOMA_MAX_BPAGES * HOMA_BPAGE_SIZE, HOMA_MAX_MESSAGE_LENGTH);
    EXPECT_LT((HOMA_MAX_BPAGES - 1) * HOMA_BPAGE_SIZE, HOMA_MAX_MESSAGE_LENGTH);
}

TEST(homa_h, ioctl_numbers__match_linux_homa) {
    EXPECT_EQ(HOMAIOCINFO, 0xC0886890u);
    EXPECT_EQ(HOMAIOCABORT, 0xC0206891u);
    EXPECT_EQ(HOMAIOCFREEZE, 0x6892u);
}

TEST(homa_h, ioctl_numbers__encode_type_number_direction_and_size) {
    EXPECT_EQ(_IOC_TYPE(HOMAIOCINFO), static_cast<unsigned>('h'));
    EXPECT_EQ(_IOC_NR(HOMAIOCINFO), 0x90u);
    EXPECT_EQ(_IOC_DIR(HOMAIOCINFO), static_cast<unsigned>(_IOC_READ | _IOC_WRITE));
    EXPECT_EQ(_IOC_SIZE(HOMAIOCINFO), sizeof(homa_info));

    EXPECT_EQ(_IOC_TYPE(HOMAIOCABORT), static_cast<unsigned>('h'));
    EXPECT_EQ(_IOC_NR(HOMAIOCABORT), 0x91u);
    EXPECT_EQ(_IOC_DIR(HOMAIOCABORT), static_cast<unsigned>(_IOC_READ | _IOC_WRITE));
    EXPECT_EQ(_IOC_SIZE(HOMAIOCABORT), sizeof(homa_abort_args));

    EXPECT_EQ(_IOC_TYPE(HOMAIOCFREEZE), static_cast<unsigned>('h'));
    EXPECT_EQ(_IOC_NR(HOMAIOCFREEZE), 0x92u);
    EXPECT_EQ(_IOC_DIR(HOMAIOCFREEZE), static_cast<unsigned>(_IOC_NONE));
    EXPECT_EQ(_IOC_SIZE(HOMAIOCFREEZE), 0u);
}

TEST(homa_h, homa_sendmsg_args__layout) {
    EXPECT_EQ(sizeof(homa_sendmsg_args), 24u);
    EXPECT_EQ(offsetof(homa_sendmsg_args, id), 0u);
    EXPECT_EQ(offsetof(homa_sendmsg_args, completion_cookie), 8u);
    EXPECT_EQ(offsetof(homa_sendmsg_args, flags), 16u);
    EXPECT_EQ(offsetof(homa_sendmsg_args, reserved), 20u);
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_sendmsg_args, id), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_sendmsg_args, completion_cookie), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_sendmsg_args, flags), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_sendmsg_args, reserved), __u32>));
}

TEST(homa_h, homa_recvmsg_args__layout) {
    EXPECT_EQ(sizeof(homa_recvmsg_args), 88u);
    EXPECT_EQ(offsetof(homa_recvmsg_args, id), 0u);
    EXPECT_EQ(offsetof(homa_recvmsg_args, completion_cookie), 8u);
    EXPECT_EQ(offsetof(homa_recvmsg_args, num_bpages), 16u);
    EXPECT_EQ(offsetof(homa_recvmsg_args, reserved), 20u);
    EXPECT_EQ(offsetof(homa_recvmsg_args, bpage_offsets), 24u);
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_recvmsg_args, id), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_recvmsg_args, completion_cookie), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_recvmsg_args, num_bpages), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_recvmsg_args, reserved), __u32>));
    EXPECT_TRUE(
        (std::is_same_v<FIELD_TYPE(homa_recvmsg_args, bpage_offsets), __u32[HOMA_MAX_BPAGES]>));
}

TEST(homa_h, homa_abort_args__layout) {
    EXPECT_EQ(sizeof(homa_abort_args), 32u);
    EXPECT_EQ(offsetof(homa_abort_args, id), 0u);
    EXPECT_EQ(offsetof(homa_abort_args, error), 8u);
    EXPECT_EQ(offsetof(homa_abort_args, _pad1), 12u);
    EXPECT_EQ(offsetof(homa_abort_args, _pad2), 16u);
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_abort_args, id), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_abort_args, error), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_abort_args, _pad1), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_abort_args, _pad2), __u64[2]>));
}

TEST(homa_h, homa_rcvbuf_args__layout) {
    EXPECT_EQ(sizeof(homa_rcvbuf_args), 16u);
    EXPECT_EQ(offsetof(homa_rcvbuf_args, start), 0u);
    EXPECT_EQ(offsetof(homa_rcvbuf_args, length), 8u);
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rcvbuf_args, start), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rcvbuf_args, length), __u64>));
}

TEST(homa_h, homa_rpc_info__layout) {
    EXPECT_EQ(sizeof(homa_rpc_info), 184u);
    EXPECT_EQ(offsetof(homa_rpc_info, id), 0u);
    EXPECT_EQ(offsetof(homa_rpc_info, peer), 8u);
    EXPECT_EQ(sizeof(homa_rpc_info::peer), 128u);
    EXPECT_EQ(offsetof(homa_rpc_info, completion_cookie), 136u);
    EXPECT_EQ(offsetof(homa_rpc_info, tx_length), 144u);
    EXPECT_EQ(offsetof(homa_rpc_info, tx_sent), 148u);
    EXPECT_EQ(offsetof(homa_rpc_info, tx_granted), 152u);
    EXPECT_EQ(offsetof(homa_rpc_info, tx_prio), 156u);
    EXPECT_EQ(offsetof(homa_rpc_info, rx_length), 160u);
    EXPECT_EQ(offsetof(homa_rpc_info, rx_remaining), 164u);
    EXPECT_EQ(offsetof(homa_rpc_info, rx_gaps), 168u);
    EXPECT_EQ(offsetof(homa_rpc_info, rx_gap_bytes), 172u);
    EXPECT_EQ(offsetof(homa_rpc_info, rx_granted), 176u);
    EXPECT_EQ(offsetof(homa_rpc_info, flags), 180u);
}

TEST(homa_h, homa_rpc_info__field_types) {
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, id), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, completion_cookie), __u64>));
    // tx_length and rx_length are signed: -1 means "none yet" / "unknown".
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, tx_length), __s32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, tx_sent), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, tx_granted), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, tx_prio), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, rx_length), __s32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, rx_remaining), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, rx_gaps), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, rx_gap_bytes), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, rx_granted), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_rpc_info, flags), __u16>));
}

TEST(homa_h, homa_rpc_info__peer_union_members_share_offset_8) {
    homa_rpc_info info{};
    const auto* base = reinterpret_cast<const unsigned char*>(&info);
    EXPECT_EQ(reinterpret_cast<const unsigned char*>(&info.peer.storage) - base, 8);
    EXPECT_EQ(reinterpret_cast<const unsigned char*>(&info.peer.in4) - base, 8);
    EXPECT_EQ(reinterpret_cast<const unsigned char*>(&info.peer.in6) - base, 8);
    EXPECT_EQ(sizeof(info.peer.storage), 128u);
    EXPECT_TRUE((std::is_same_v<decltype(info.peer.in4), sockaddr_in>));
    EXPECT_TRUE((std::is_same_v<decltype(info.peer.in6), sockaddr_in6>));

    // The family field of every member is the same bytes.
    info.peer.in6.sin6_family = AF_INET6;
    EXPECT_EQ(info.peer.storage.ss_family, AF_INET6);
    info.peer.in4.sin_family = AF_INET;
    EXPECT_EQ(info.peer.storage.ss_family, AF_INET);
}

TEST(homa_h, homa_info__layout) {
    EXPECT_EQ(sizeof(homa_info), 136u);
    EXPECT_EQ(offsetof(homa_info, rpc_info), 0u);
    EXPECT_EQ(offsetof(homa_info, rpc_info_length), 8u);
    EXPECT_EQ(offsetof(homa_info, bpool_avail_bytes), 16u);
    EXPECT_EQ(offsetof(homa_info, port), 24u);
    EXPECT_EQ(offsetof(homa_info, num_rpcs), 28u);
    EXPECT_EQ(offsetof(homa_info, error_msg), 32u);
    // The uapi uses __u64 for the pointer and the length (spec 12).
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_info, rpc_info), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_info, rpc_info_length), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_info, bpool_avail_bytes), __u64>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_info, port), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_info, num_rpcs), __u32>));
    EXPECT_TRUE((std::is_same_v<FIELD_TYPE(homa_info, error_msg), char[HOMA_ERROR_MSG_SIZE]>));
}

TEST(homa_h, homa_info__holds_a_user_pointer) {
    homa_rpc_info records[2]{};
    homa_info info{};
    info.rpc_info = reinterpret_cast<std::uintptr_t>(records);
    info.rpc_info_length = sizeof(records);
    EXPECT_EQ(reinterpret_cast<homa_rpc_info*>(info.rpc_info), records);
    EXPECT_EQ(info.rpc_info_length / sizeof(homa_rpc_info), 2u);
}

TEST(homa_h, structs__are_trivial_standard_layout) {
    EXPECT_TRUE(std::is_trivial_v<homa_sendmsg_args>);
    EXPECT_TRUE(std::is_trivial_v<homa_recvmsg_args>);
    EXPECT_TRUE(std::is_trivial_v<homa_abort_args>);
    EXPECT_TRUE(std::is_trivial_v<homa_rcvbuf_args>);
    EXPECT_TRUE(std::is_trivial_v<homa_rpc_info>);
    EXPECT_TRUE(std::is_trivial_v<homa_info>);
    EXPECT_TRUE(std::is_standard_layout_v<homa_sendmsg_args>);
    EXPECT_TRUE(std::is_standard_layout_v<homa_recvmsg_args>);
    EXPECT_TRUE(std::is_standard_layout_v<homa_abort_args>);
    EXPECT_TRUE(std::is_standard_layout_v<homa_rcvbuf_args>);
    EXPECT_TRUE(std::is_standard_layout_v<homa_rpc_info>);
    EXPECT_TRUE(std::is_standard_layout_v<homa_info>);
}

// decltype only: the functions are declared, not defined, until the runtime
// exists, so nothing here may odr-use them.
TEST(homa_h, uhoma_c__signatures_mirror_the_linux_calls) {
    EXPECT_TRUE((std::is_same_v<decltype(uhoma_socket), int(int, int, int)>));
    EXPECT_TRUE((std::is_same_v<decltype(uhoma_bind), int(int, const sockaddr*, socklen_t)>));
    EXPECT_TRUE(
        (std::is_same_v<decltype(uhoma_setsockopt), int(int, int, int, const void*, socklen_t)>));
    EXPECT_TRUE(
        (std::is_same_v<decltype(uhoma_getsockopt), int(int, int, int, void*, socklen_t*)>));
    EXPECT_TRUE((std::is_same_v<decltype(uhoma_sendmsg), ssize_t(int, const msghdr*, int)>));
    EXPECT_TRUE((std::is_same_v<decltype(uhoma_recvmsg), ssize_t(int, msghdr*, int)>));
    EXPECT_TRUE((std::is_same_v<decltype(uhoma_ioctl), int(int, unsigned long, void*)>));
    EXPECT_TRUE((std::is_same_v<decltype(uhoma_close), int(int)>));
    EXPECT_TRUE((std::is_same_v<decltype(uhoma_shutdown), int(int, int)>));
}

}  // namespace
