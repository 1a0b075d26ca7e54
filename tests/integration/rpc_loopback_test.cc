// Integration over loopback (no root needed): echo servers, clients and a
// flooder in separate processes (rpc_tool), talking through the UDP driver
// over 127.0.0.1. Scenarios are in rpc_harness.h:
//
//  * call__w4_rpcs_verified_between_processes: W4-sampled request lengths,
//    payloads checked byte for byte on both sides; 100,000 RPCs in
//    optimized builds, 2,000 under sanitizers (UHOMA_INTEGRATION_RPCS).
//  * call__timeout_when_server_killed_then_recovers: SIGKILL the server,
//    ETIMEDOUT ~100 ms later, success again after a restart.
//  * receive__garbage_flood_is_dropped_and_counted: random datagrams and
//    valid-header garbage at the server's port while RPCs run (at a capped
//    rate; see expect_flood_survived).
//
// The namespace tests (rpc_netns_test.cc, root only) run these scenarios
// across a real veth/bridge path with a 1500-byte MTU, which loopback
// (MTU 65536) cannot show, with packet loss, and with raw IP.
#include <gtest/gtest.h>
#include <unistd.h>

#include "rpc_harness.h"

namespace uhoma::integration {
namespace {

// Loopback ports are shared with every other test running at the same time;
// servers try 200 ports from here.
std::uint16_t base_port(int test) {
    return static_cast<std::uint16_t>(2000 + (::getpid() * 37 + test * 1000) % 28000);
}

TEST(RpcLoopback, call__w4_rpcs_verified_between_processes) {
    expect_w4_rpcs_complete(Hosts{}, rpc_count(), base_port(0), {}, 41);
}

TEST(RpcLoopback, call__timeout_when_server_killed_then_recovers) {
    expect_timeout_then_recovery(Hosts{}, base_port(1), {});
}

TEST(RpcLoopback, receive__garbage_flood_is_dropped_and_counted) {
    expect_flood_survived(Hosts{}, base_port(2), {}, false);
}

}  // namespace
}  // namespace uhoma::integration
