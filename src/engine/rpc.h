// RPCs, messages, peers and sockets: the engine's state (private to engine).
//
// Design notes
// ------------
// An RPC owns its outgoing message (a copy of the application's bytes, made
// once at send time: the only per-message allocation) and the bookkeeping of
// its incoming message, whose bytes go straight into the socket's receive
// region. Everything is owned by the Engine and referred to by a 64-bit key
// that is never reused, so queues (pacer, retransmissions, ready lists) can
// hold keys and skip entries whose RPC has ended, instead of being searched
// and edited when an RPC dies. That keeps ending an RPC O(1) apart from the
// grant manager and makes stale references impossible.
//
// The outgoing message is held by a shared_ptr rather than a vector because
// DATA payloads leave the engine without a copy (types.h, Transmit): a
// runtime keeps a reference to the storage while it sends outside the
// engine lock, so an RPC that ends meanwhile frees only its bookkeeping and
// the bytes go when the last packet referring to them has been sent. The
// storage is written once, when it is created, and never reused for another
// message.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/buffer_pool.h"
#include "engine/cutoffs.h"
#include "engine/ring.h"
#include "engine/types.h"
#include "wire/packet.h"

namespace uhoma::engine {

using RpcKey = std::uint64_t;

enum class RpcState : std::uint8_t { outgoing = 5, incoming = 6, in_service = 8, dead = 9 };

struct Peer {
    Address address;
    std::uint32_t key = 0;  // PeerKey for the grant manager
    // What this peer told us to use when sending unscheduled bytes to it.
    CutoffTable cutoffs = initial_peer_cutoffs();
    std::uint16_t cutoff_version = 0;
    // When we last sent it our CUTOFFS (at most once per tick).
    std::optional<Instant> last_cutoffs_sent;
    // Acks for responses we delivered, not yet sent to the server (<= 5).
    std::vector<wire::Ack> pending_acks;
    std::size_t max_seg_data = 0;
    bool ipv6 = false;
    std::uint32_t rpcs = 0;  // live RPCs with this peer; a peer in use is never freed
    Instant last_active{};
};

struct MessageOut {
    // `length` bytes, immutable once created; shared with packets in flight
    // to the kernel (never written again, so readers need no lock).
    std::shared_ptr<const std::byte[]> data;
    std::uint32_t length = 0;
    std::uint32_t unscheduled = 0;  // min(unsched_bytes, length)
    std::uint32_t granted = 0;      // may send everything below this
    std::uint32_t next_xmit = 0;    // first byte never handed to the NIC (tx_end)
    std::uint8_t unsched_priority = 0;
    std::uint8_t sched_priority = 0;
    Instant birth{};
    bool in_pacer = false;
    bool fully_sent_noted = false;
};

struct Gap {
    std::uint32_t start = 0;
    std::uint32_t end = 0;
};

struct MessageIn {
    bool started = false;
    std::uint32_t length = 0;
    std::uint32_t received = 0;  // bytes received (not counting duplicates)
    std::uint32_t recv_end = 0;  // one past the highest byte received
    std::uint32_t granted = 0;
    std::vector<Gap> gaps;       // missing ranges below recv_end, sorted
    std::optional<BufferAllocation> buffers;
    bool waiting_for_buffers = false;
    bool in_grant_manager = false;
    Instant birth{};
    bool complete() const { return started && received == length; }
};

struct Rpc {
    RpcKey key = 0;
    RpcId id = 0;  // local id: even on the client, odd on the server
    SocketId socket = 0;
    Peer* peer = nullptr;
    std::uint16_t peer_port = 0;
    RpcState state = RpcState::outgoing;
    MessageOut out;
    MessageIn in;
    int error = 0;
    std::uint64_t cookie = 0;
    bool private_rpc = false;
    bool ready = false;           // complete (or failed) and waiting for receive()
    bool handed_to_app = false;   // server: request delivered
    std::uint32_t silent_ticks = 0;
    std::uint32_t done_ticks = 0;  // server: ticks since the response was fully sent
    bool is_client() const { return (id & 1) == 0; }
    Endpoint peer_endpoint() const { return Endpoint{peer->address, peer_port}; }
};

struct ServerKey {
    Address client;
    RpcId id;
    friend auto operator<=>(const ServerKey&, const ServerKey&) = default;
};

struct ServerKeyHash {
    std::size_t operator()(const ServerKey& k) const {
        return AddressHash{}(k.client) ^ static_cast<std::size_t>(k.id * 0x9E3779B97F4A7C15ull);
    }
};

struct Socket {
    SocketId id = 0;
    std::uint16_t port = 0;
    bool is_server = false;
    bool shutdown = false;
    std::uint64_t send_bytes = 0;  // bytes in outgoing messages of live RPCs (wmem_max)
    std::optional<BufferPool> pool;
    std::span<std::byte> region;
    std::unordered_map<RpcId, RpcKey> client_rpcs;
    std::map<ServerKey, RpcKey> server_rpcs;
    RingQueue<RpcKey> ready;  // shared messages, FIFO; stale keys skipped
    // RPCs waiting for receive buffers, served shortest message first.
    std::multimap<std::uint32_t, RpcKey> waiting_for_buffers;
    // Server RPCs whose request reached the application and that have since
    // ended, so stale request packets cannot run them twice. Every tombstone
    // lives the same time, so expiry order is insertion order: a FIFO.
    // Hashed: a busy server holds one per request of the last timeout
    // (~28,000 at 280 k RPC/s), and a tree of them made key comparisons a
    // tenth of its CPU.
    std::unordered_map<ServerKey, Instant, ServerKeyHash> tombstones;
    RingQueue<std::pair<Instant, ServerKey>> tombstone_expiry;
};

}  // namespace uhoma::engine
