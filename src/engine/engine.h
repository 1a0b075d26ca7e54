// The Homa protocol engine for one host: sans-I/O.
//
// Design notes
// ------------
// Engine is the counterpart of Linux Homa's `struct homa` plus its sockets:
// ports, RPC tables, peers, the grant manager, pacer decisions, timers,
// unscheduled-priority cutoffs and the receive buffer pools. It never calls
// the OS, reads a clock or starts a thread. Everything happens in response to
// one of three kinds of input, each of which takes the current time:
//
//   * handle_packet(bytes, source, now): a packet arrived;
//   * handle_timeout(now): the time returned by next_deadline() has come;
//   * application commands: open/bind/close sockets, send_request,
//     send_reply, receive, release_bpages, abort, set_receive_buffer.
//
// Outputs are pulled: poll_transmit(now) yields packets (with the priority a
// switch should see; DATA as a header plus a span of the message, never
// copied, see types.h) until it returns nullopt, poll_completion() yields
// messages that became ready to receive (so a runtime can wake a waiter), and
// next_deadline() says when to call handle_timeout(). For given inputs the
// outputs are always the same, so tests, real sockets and the simulator run
// identical code.
//
// Choices made for user space (see docs/engine.md):
//   * One engine serves one host address; the caller serializes calls.
//   * Messages become receivable when complete (no early handoff): bytes are
//     already placed in the receive region as they arrive, so nothing is
//     gained by handing over partial messages.
//   * Ending an RPC frees it at once; there is no separate reaper.
//   * ICMP is not available to a UDP user-space transport: packets for an
//     unknown port are dropped and counted, and peers recover by timeout.
//   * A server remembers, for timeout_ticks, the requests it has delivered
//     and ended, and drops stale DATA for them. This closes the hole in
//     notes.txt where a duplicated request packet re-creates a freed RPC and
//     the request runs twice.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/config.h"
#include "engine/metrics.h"
#include "engine/types.h"
#include "uhoma/expected.h"

namespace uhoma::engine {


inline constexpr std::uint32_t max_bpages_in_message = 16;

// A complete incoming message (or a failed client RPC) handed to the
// application. Bytes of the message live in the socket's receive region:
// byte x at region offset bpage_offsets[x >> 16] + (x & 0xFFFF). The
// application gives each offset back with release_bpages() when done.
struct ReceivedMessage {
    RpcId id = 0;  // odd: a request (reply with send_reply); even: a response
    std::uint64_t completion_cookie = 0;
    Endpoint peer;
    int error = 0;  // 0, or the errno with which a client RPC failed
    std::uint32_t length = 0;
    std::uint32_t num_bpages = 0;
    std::array<std::uint32_t, max_bpages_in_message> bpage_offsets{};
};

// Notice that a message became receivable on a socket.
struct Completion {
    SocketId socket = 0;
    RpcId id = 0;
    bool private_rpc = false;
};

// One RPC as HOMAIOCINFO reports it (spec 8.2, homa_rpc_info).
struct RpcInfo {
    RpcId id = 0;
    Endpoint peer;
    std::uint64_t completion_cookie = 0;
    std::int32_t tx_length = -1;  // -1: no outgoing message yet
    std::uint32_t tx_sent = 0;    // bytes sent at least once
    std::uint32_t tx_granted = 0;  // includes the unscheduled bytes
    std::uint32_t tx_prio = 0;    // priority of scheduled packets
    std::int32_t rx_length = -1;  // -1: no incoming byte yet
    std::uint32_t rx_remaining = 0;
    std::uint32_t rx_gaps = 0;
    std::uint32_t rx_gap_bytes = 0;
    std::uint32_t rx_granted = 0;  // includes the unscheduled bytes
    bool buf_stall = false;  // waiting for receive buffers
    bool private_rpc = false;
    bool rx_ready = false;  // complete (or failed) and waiting for receive()
};

// A socket as HOMAIOCINFO reports it (spec 8.2, homa_info).
struct SocketInfo {
    std::uint16_t port = 0;
    std::uint64_t bpool_avail_bytes = 0;  // free receive-region bytes (whole bpages)
    std::uint32_t num_rpcs = 0;            // live RPCs, even beyond `rpcs`
    std::vector<RpcInfo> rpcs;             // client RPCs first, then server RPCs
};

struct EngineOptions {
    Address local_address;
    // Client ids are first_client_id, +2, +4, ... Must be even and nonzero.
    // The runtime gives each process a disjoint range so ids stay unique per
    // host address (spec 1.6).
    std::uint64_t first_client_id = 2;
    std::uint64_t seed = 1;
};

class EngineImpl;

class Engine {
public:
    // Errors: the first invalid configuration field.
    static Expected<std::unique_ptr<Engine>, ConfigError> create(const Config& config,
                                                                 const EngineOptions& options);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // --- Sockets ------------------------------------------------------------
    // A client socket with an automatic port >= 0x8000.
    // Errors: EADDRNOTAVAIL if every automatic port is taken.
    Expected<SocketId, int> open_socket();
    // A client socket on a given automatic port (>= 0x8000), for runtimes
    // whose port must match an OS resource (a UDP socket the kernel bound).
    // Errors: EINVAL (port < 0x8000), EADDRINUSE.
    Expected<SocketId, int> open_socket(std::uint16_t port);
    // Port 0 does nothing; 1..32767 moves the socket to that port and makes
    // it a server. Errors: EINVAL (port >= 0x8000, unknown socket),
    // EADDRINUSE.
    Expected<std::monostate, int> bind(SocketId socket, std::uint16_t port);
    // Errors: EINVAL (unknown socket).
    Expected<std::monostate, int> set_server(SocketId socket, bool is_server);
    // Gives the socket its receive region (once). The engine writes incoming
    // messages into it. Errors: EINVAL (already set, too small, over 4 GiB,
    // unknown socket).
    Expected<std::monostate, int> set_receive_buffer(SocketId socket,
                                                     std::span<std::byte> region, Instant now);
    // Ends every RPC of the socket; later commands on it fail with EINVAL.
    void close_socket(SocketId socket, Instant now);
    std::optional<std::uint16_t> port(SocketId socket) const;

    // --- RPCs ---------------------------------------------------------------
    // Starts a client RPC; returns its id. The message is copied.
    // Errors: EINVAL (length 0 or > 1,000,000, destination port 0, unknown
    // socket), ESHUTDOWN (socket closed), EAGAIN (send memory above wmem_max).
    Expected<RpcId, int> send_request(SocketId socket, const Endpoint& destination,
                                      std::span<const std::byte> message,
                                      std::uint64_t completion_cookie, bool private_rpc,
                                      Instant now);
    // Sends the response to server RPC `id` from `client` (both as given by
    // receive(); servers key RPCs by client address and id). An unknown RPC
    // is a silent no-op (it may have been discarded). Errors: EINVAL (length,
    // not IN_SERVICE, unknown socket), ESHUTDOWN, or the RPC's own error.
    Expected<std::monostate, int> send_reply(SocketId socket, const Endpoint& client, RpcId id,
                                             std::span<const std::byte> message, Instant now);
    // Returns a ready message: with id 0 the oldest shared one, otherwise the
    // private client RPC `id`; nullopt when none is ready yet (would block).
    // Errors: EINVAL (no receive region, id unknown or not private, unknown
    // socket), ESHUTDOWN.
    Expected<std::optional<ReceivedMessage>, int> receive(SocketId socket, RpcId id, Instant now);
    // Returns bpages of received messages. Errors: EINVAL (an offset that is
    // out of range or already free; earlier offsets are released).
    Expected<std::monostate, int> release_bpages(SocketId socket,
                                                 std::span<const std::uint32_t> offsets,
                                                 Instant now);
    // Aborts client RPC `id`, or every client RPC with id 0. error 0 frees
    // silently; otherwise the RPC completes with that errno.
    // Errors: EINVAL (unknown id or socket).
    Expected<std::monostate, int> abort(SocketId socket, RpcId id, int error, Instant now);
    // Whether receive(socket, 0) would return a message now.
    bool readable(SocketId socket) const;

    // --- I/O ----------------------------------------------------------------
    void handle_packet(std::span<const std::byte> bytes, const Address& source, Instant now);
    void handle_timeout(Instant now);
    // The next packet to send, or nullopt. Transmit::header stays valid
    // until the next call into the engine; Transmit::payload (DATA bytes in
    // the RPC's message storage, not copied) as long as a copy of
    // Transmit::keep lives, even if the RPC ends in the meantime.
    std::optional<Transmit> poll_transmit(Instant now);
    std::optional<Completion> poll_completion();
    // When handle_timeout() must next run; `never` when nothing is pending.
    Instant next_deadline() const;

    // --- Introspection --------------------------------------------------------
    const Metrics& metrics() const;
    const Config& config() const;
    std::size_t rpc_count() const;
    // The socket and up to `max_rpcs` of its live RPCs. Allocates: not for
    // the packet path. Errors: EINVAL (unknown socket).
    Expected<SocketInfo, int> socket_info(SocketId socket, std::size_t max_rpcs) const;
    std::size_t peer_count() const;
    std::uint64_t receive_bytes_in_use() const;  // receive-region bytes held

private:
    explicit Engine(std::unique_ptr<EngineImpl> impl);
    std::unique_ptr<EngineImpl> impl_;
};

}  // namespace uhoma::engine
