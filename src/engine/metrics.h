// Engine metrics: Homa's counters (spec 10), kept per engine.
//
// Design notes
// ------------
// The counters are plain uint64 fields, incremented by the engine's single
// thread; no atomics, no locks. The list is an X-macro so names, order and
// descriptions exist once: the struct, the homa_metrics text formatter and
// the tests all expand the same list. Names are exactly Linux Homa's where the
// counter exists there (metrics.py and homa_prio parse them); uhoma-specific
// counters are marked "(uhoma)" in their description. Kernel-only counters
// (GRO, softirq, skb, qdisc, lock misses) are left out.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "wire/packet.h"

namespace uhoma::engine {

// X(name, description)
#define UHOMA_METRICS(X)                                                                     \
    X(client_requests_started, "Client RPCs initiated")                                    \
    X(client_request_bytes_started, "Request bytes in client RPCs initiated")              \
    X(client_requests_done, "Client requests fully transmitted")                           \
    X(client_request_bytes_done, "Request bytes fully transmitted")                        \
    X(client_responses_started, "Client RPCs for which at least one response byte arrived") \
    X(client_response_bytes_started, "Response bytes in those RPCs")                       \
    X(client_responses_done, "Client RPCs whose response arrived completely")              \
    X(client_response_bytes_done, "Response bytes received completely")                    \
    X(server_requests_started, "Server RPCs created")                                      \
    X(server_request_bytes_started, "Request bytes in server RPCs created")                \
    X(server_requests_done, "Server RPCs whose request arrived completely")                \
    X(server_request_bytes_done, "Request bytes received completely")                      \
    X(server_responses_started, "Server RPCs for which a response was sent")               \
    X(server_response_bytes_started, "Response bytes in those RPCs")                       \
    X(server_responses_done, "Server responses fully transmitted")                         \
    X(server_response_bytes_done, "Response bytes fully transmitted")                      \
    X(requests_received, "Complete request messages received")                             \
    X(responses_received, "Complete response messages received")                           \
    X(sent_msg_bytes, "Total bytes in all outgoing messages")                              \
    X(packets_sent_DATA, "DATA packets sent")                                              \
    X(packets_sent_GRANT, "GRANT packets sent")                                            \
    X(packets_sent_RESEND, "RESEND packets sent")                                          \
    X(packets_sent_RPC_UNKNOWN, "RPC_UNKNOWN packets sent")                                \
    X(packets_sent_BUSY, "BUSY packets sent")                                              \
    X(packets_sent_CUTOFFS, "CUTOFFS packets sent")                                        \
    X(packets_sent_FREEZE, "FREEZE packets sent")                                          \
    X(packets_sent_NEED_ACK, "NEED_ACK packets sent")                                      \
    X(packets_sent_ACK, "ACK packets sent")                                                \
    X(packets_rcvd_DATA, "DATA packets received")                                          \
    X(packets_rcvd_GRANT, "GRANT packets received")                                        \
    X(packets_rcvd_RESEND, "RESEND packets received")                                      \
    X(packets_rcvd_RPC_UNKNOWN, "RPC_UNKNOWN packets received")                            \
    X(packets_rcvd_BUSY, "BUSY packets received")                                          \
    X(packets_rcvd_CUTOFFS, "CUTOFFS packets received")                                    \
    X(packets_rcvd_FREEZE, "FREEZE packets received")                                      \
    X(packets_rcvd_NEED_ACK, "NEED_ACK packets received")                                  \
    X(packets_rcvd_ACK, "ACK packets received")                                            \
    X(priority0_bytes, "Bytes sent at priority 0")                                         \
    X(priority1_bytes, "Bytes sent at priority 1")                                         \
    X(priority2_bytes, "Bytes sent at priority 2")                                         \
    X(priority3_bytes, "Bytes sent at priority 3")                                         \
    X(priority4_bytes, "Bytes sent at priority 4")                                         \
    X(priority5_bytes, "Bytes sent at priority 5")                                         \
    X(priority6_bytes, "Bytes sent at priority 6")                                         \
    X(priority7_bytes, "Bytes sent at priority 7")                                         \
    X(priority0_packets, "Packets sent at priority 0")                                     \
    X(priority1_packets, "Packets sent at priority 1")                                     \
    X(priority2_packets, "Packets sent at priority 2")                                     \
    X(priority3_packets, "Packets sent at priority 3")                                     \
    X(priority4_packets, "Packets sent at priority 4")                                     \
    X(priority5_packets, "Packets sent at priority 5")                                     \
    X(priority6_packets, "Packets sent at priority 6")                                     \
    X(priority7_packets, "Packets sent at priority 7")                                     \
    X(pacer_homa_packets, "DATA packets released by the pacer")                            \
    X(pacer_homa_bytes, "DATA bytes released by the pacer")                                \
    X(pacer_fifo_bytes, "Pacer bytes given to the oldest message (FIFO share)")            \
    X(throttle_list_adds, "Messages that had to wait for the pacer")                       \
    X(resent_packets, "DATA packets retransmitted because of RESEND")                      \
    X(resent_packets_used, "Retransmitted packets that filled a gap")                      \
    X(packet_discards, "DATA packets dropped: bytes already received")                     \
    X(resent_discards, "Retransmitted DATA packets dropped: bytes already received")       \
    X(gaps_created, "Gaps created in incoming messages")                                   \
    X(rpc_timeouts, "RPCs aborted because the peer went silent")                           \
    X(server_rpc_discards, "Server RPCs discarded after an error")                         \
    X(server_rpcs_unknown, "Server RPCs ended by RPC_UNKNOWN")                             \
    X(unknown_rpcs, "Packets dropped because their RPC was unknown")                       \
    X(server_cant_create_rpcs, "Requests dropped: socket not a server or no buffers")      \
    X(unknown_packet_types, "Packets dropped: unknown type")                               \
    X(short_packets, "Packets dropped: shorter than their header")                         \
    X(malformed_packets, "(uhoma) Packets dropped: other validation failures")             \
    X(unknown_ports, "(uhoma) Packets dropped: no socket on the destination port")         \
    X(control_xmit_errors, "Control packets that could not be built")                     \
    X(data_xmit_errors, "DATA packets that could not be built")                           \
    X(ack_overflows, "Explicit ACK packets sent because pending acks filled up")           \
    X(ignored_need_acks, "NEED_ACKs ignored because the response was incomplete")          \
    X(peer_allocs, "Peers created")                                                        \
    X(grant_check_calls, "Runs of the grant algorithm")                                    \
    X(needy_grants, "Grants sent to RPCs marked needy")                                    \
    X(fifo_grant_bytes, "Bytes granted by FIFO grants")                                    \
    X(grantable_rpcs_integral, "Integral over time (ns) of the number of grantable RPCs")      \
    X(reaper_calls, "Reaper passes")                                                       \
    X(bpage_reuses, "bpages reused for a new tail without going through the free list")    \
    X(buffer_alloc_failures, "Messages that had to wait for receive buffers")              \
    X(dropped_data_no_bufs, "DATA packets dropped while their message waited for buffers") \
    X(large_msg_count, "Messages received longer than the histogram's range")              \
    X(large_msg_bytes, "Bytes in those messages")

struct Metrics {
#define UHOMA_METRIC_FIELD(name, description) std::uint64_t name = 0;
    UHOMA_METRICS(UHOMA_METRIC_FIELD)
#undef UHOMA_METRIC_FIELD

    // msg_bytes_N histogram: bytes received in messages of length <= N, for
    // N = 64..4096 step 64, then 5120..131072 step 1024 (spec 10).
    static constexpr std::size_t small_buckets = 64;    // 64..4096
    static constexpr std::size_t medium_buckets = 124;  // 5120..131072
    std::array<std::uint64_t, small_buckets + medium_buckets> msg_bytes{};

    // Records one received message of `length` bytes in the histogram.
    void record_message_length(std::uint32_t length);
    // Upper bound N of histogram bucket `index`.
    static std::uint32_t bucket_limit(std::size_t index);

    Metrics& operator+=(const Metrics& other);

    // packets_sent_<TYPE> / packets_rcvd_<TYPE> of the packet's type.
    void count_sent(wire::PacketType type);
    void count_received(wire::PacketType type);
};

// The homa_metrics text format: `"%-30s %20llu %s\n"` per counter, starting
// with time_cycles and cpu_khz, then a "core 0" line and the counters.
// `time_ns` is the snapshot time; uhoma reports cpu_khz as 1000000 so that
// "cycles" are nanoseconds.
std::string format_homa_metrics(const Metrics& metrics, std::uint64_t time_ns);

}  // namespace uhoma::engine
