// EngineImpl: the state and internal operations behind Engine (engine.h).
// Split over engine.cc (commands, sockets, RPC lifetime), engine_rx.cc
// (packet dispatch), engine_tx.cc (transmission and pacing) and
// engine_timer.cc (ticks, retransmission, timeouts).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/cutoffs.h"
#include "engine/engine.h"
#include "engine/grant.h"
#include "engine/pacer.h"
#include "engine/ring.h"
#include "engine/rpc.h"
#include "trace/timetrace.h"
#include "wire/codec.h"

namespace uhoma::engine {

class EngineImpl {
public:
    EngineImpl(const Config& config, const EngineOptions& options);

    // Commands (engine.cc).
    Expected<SocketId, int> open_socket();
    Expected<SocketId, int> open_socket(std::uint16_t port);
    Expected<std::monostate, int> bind(SocketId socket, std::uint16_t port);
    Expected<std::monostate, int> set_server(SocketId socket, bool is_server);
    Expected<std::monostate, int> set_receive_buffer(SocketId socket, std::span<std::byte> region,
                                                     Instant now);
    void close_socket(SocketId socket, Instant now);
    std::optional<std::uint16_t> port(SocketId socket) const;
    Expected<RpcId, int> send_request(SocketId socket, const Endpoint& destination,
                                      std::span<const std::byte> message, std::uint64_t cookie,
                                      bool private_rpc, Instant now);
    Expected<std::monostate, int> send_reply(SocketId socket, const Endpoint& client, RpcId id,
                                             std::span<const std::byte> message, Instant now);
    Expected<std::optional<ReceivedMessage>, int> receive(SocketId socket, RpcId id, Instant now);
    Expected<std::monostate, int> release_bpages(SocketId socket,
                                                 std::span<const std::uint32_t> offsets,
                                                 Instant now);
    Expected<std::monostate, int> abort(SocketId socket, RpcId id, int error, Instant now);
    bool readable(SocketId socket) const;

    // I/O.
    void handle_packet(std::span<const std::byte> bytes, const Address& source, Instant now);
    void handle_timeout(Instant now);
    std::optional<Transmit> poll_transmit(Instant now);
    std::optional<Completion> poll_completion();
    Instant next_deadline() const;

    const Metrics& metrics() const { return metrics_; }
    const Config& config() const { return config_; }
    std::size_t rpc_count() const { return rpcs_.size(); }
    Expected<SocketInfo, int> socket_info(SocketId socket, std::size_t max_rpcs) const;
    std::size_t peer_count() const { return peers_.size(); }
    std::uint64_t receive_bytes_in_use() const;

private:
    // --- engine.cc
    Socket* find_socket(SocketId id);
    const Socket* find_socket(SocketId id) const;
    Socket* socket_for_port(std::uint16_t port);
    Peer& peer_for(const Address& address);
    Rpc* find_rpc(RpcKey key);
    Rpc* find_client_rpc(Socket& socket, RpcId id);
    Rpc* find_server_rpc(Socket& socket, const Address& client, RpcId id);
    Rpc& create_rpc(Socket& socket, Peer& peer, std::uint16_t peer_port, RpcId id,
                    RpcState state, Instant now);
    void init_message_out(Rpc& rpc, std::span<const std::byte> message, Instant now);
    // Marks the RPC ready for receive() and queues a Completion.
    void make_ready(Rpc& rpc);
    // Client RPC failed: complete it with `error` (ETIMEDOUT, ...).
    void fail_client_rpc(Rpc& rpc, int error, Instant now);
    void end_rpc(Rpc& rpc, Instant now);
    void queue_ack(Rpc& rpc, Instant now);
    void ensure_ticking(Instant now);

    // --- engine_rx.cc
    void dispatch(const wire::Packet& packet, const Address& source, Instant now);
    void handle_data(Socket& socket, const wire::DataPacket& data, const Address& source,
                     Instant now);
    void handle_grant(Socket& socket, const wire::GrantPacket& grant, const Address& source);
    void handle_resend(Socket& socket, const wire::ResendPacket& resend, const Address& source);
    void handle_rpc_unknown(Socket& socket, const wire::Header& header, const Address& source,
                            Instant now);
    void handle_busy(Socket& socket, const wire::Header& header, const Address& source);
    void handle_cutoffs(const wire::CutoffsPacket& cutoffs, const Address& source);
    void handle_need_ack(Socket& socket, const wire::Header& header, const Address& source);
    void handle_ack(Socket& socket, const wire::AckPacket& ack, const Address& source,
                    Instant now);
    void handle_ack_entry(const wire::Ack& ack, const Address& source, Instant now);
    // The RPC a packet names, on our side: client table for our client ids,
    // server table (by source address) otherwise.
    Rpc* rpc_for_packet(Socket& socket, const wire::Header& header, const Address& source);
    // First DATA of a message: set up msgin and reserve buffers.
    // Returns false if the message must wait for buffers.
    bool start_message_in(Rpc& rpc, Socket& socket, const wire::DataPacket& data, Instant now);
    void add_data(Rpc& rpc, Socket& socket, const wire::DataPacket& data, Instant now);
    void message_complete(Rpc& rpc, Instant now);
    void maybe_send_cutoffs(Peer& peer, std::uint16_t our_port, std::uint16_t their_port,
                            RpcId id, Instant now);
    // After buffers were freed: give them to waiting RPCs, shortest first.
    void serve_buffer_waiters(Socket& socket, Instant now);
    void take_grants();

    // --- engine_tx.cc
    void queue_control(const wire::Packet& packet, const Endpoint& destination);
    void queue_control_for(const Rpc& rpc, const wire::Packet& packet);
    wire::Header header_for(const Rpc& rpc) const;
    // Enqueue/update the RPC in the pacer's SRPT queue if it has bytes it may send.
    void update_sendable(Rpc& rpc);
    std::uint32_t next_packet_end(const Rpc& rpc, std::uint32_t start) const;
    std::optional<Transmit> transmit_data(Rpc& rpc, std::uint32_t start, std::uint32_t end,
                                          std::uint8_t level, bool retransmit,
                                          std::uint32_t incoming, Instant now);
    // The packet whose header_size header bytes are in tx_buffer_, followed
    // by `payload`, which `keep` keeps alive (types.h, Transmit).
    std::optional<Transmit> emit(const Endpoint& destination, std::uint8_t level,
                                 std::size_t header_size, std::span<const std::byte> payload,
                                 std::shared_ptr<const void> keep, wire::PacketType type,
                                 bool ipv6, Instant now);
    std::uint8_t control_level() const {
        return static_cast<std::uint8_t>(config_.num_priorities - 1);
    }

    // --- engine_timer.cc
    void tick(Instant now);
    void check_rpc_timer(Rpc& rpc, Instant now);
    void request_retransmission(Rpc& rpc);
    // Frees idle peers once there are more than peer_gc_threshold of them.
    void collect_peers(Instant now);
    // Recomputes our unscheduled cutoffs from received message lengths
    // (homa_prio's algorithm); a change bumps cutoff_version_.
    void maybe_update_cutoffs(Instant now);

    Config config_;
    EngineOptions options_;
    Metrics metrics_;
    CutoffTable cutoffs_{};  // our table, normalized, sent in CUTOFFS
    std::uint16_t cutoff_version_ = 1;
    std::optional<Instant> next_cutoff_check_;
    Metrics cutoff_baseline_;  // histogram at the last cutoff computation
    Deciles cutoff_deciles_{};  // length deciles behind the current cutoffs
    Duration tick_;

    std::map<SocketId, std::unique_ptr<Socket>> sockets_;
    std::unordered_map<std::uint16_t, SocketId> ports_;
    SocketId next_socket_id_ = 1;
    std::uint16_t next_auto_port_ = 0x8000;

    std::unordered_map<Address, std::unique_ptr<Peer>, AddressHash> peers_;
    std::uint32_t next_peer_key_ = 0;

    std::map<RpcKey, std::unique_ptr<Rpc>> rpcs_;  // ordered: deterministic timer walks
    RpcKey next_rpc_key_ = 1;
    std::uint64_t next_client_id_;

    GrantManager grants_;
    NicQueue nic_;
    PacerQueue pacer_;

    struct ControlPacket {
        std::array<std::byte, wire::max_header_size> bytes{};
        std::uint8_t size = 0;
        wire::PacketType type = wire::PacketType::busy;
        Endpoint destination;
    };
    RingQueue<ControlPacket> control_;
    struct Retransmission {
        RpcKey rpc = 0;
        std::uint32_t start = 0;
        std::uint32_t end = 0;
        std::uint8_t level = 0;
    };
    RingQueue<Retransmission> retransmits_;
    RingQueue<Completion> completions_;
    std::vector<RpcKey> tick_keys_;  // reused by tick()
    std::vector<Grant> grant_batch_;  // reused by take_grants()
    std::vector<std::byte> tx_buffer_;  // the header of the packet poll_transmit returned
    std::optional<Instant> next_tick_;
};

}  // namespace uhoma::engine
