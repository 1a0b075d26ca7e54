// Engine facade, commands, sockets and RPC lifetime.
#include "engine/engine.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/engine_impl.h"
#include "wire/ids.h"

namespace uhoma::engine {

// ---------------------------------------------------------------------------
// Engine (thin facade; keeps the header free of internals)

Expected<std::unique_ptr<Engine>, ConfigError> Engine::create(const Config& config,
                                                             const EngineOptions& options) {
    auto valid = validate(config);
    if (!valid) return Unexpected{valid.error()};
    if (options.first_client_id == 0 || !wire::is_client_id(options.first_client_id)) {
        return Unexpected{ConfigError{"first_client_id", "must be even and nonzero"}};
    }
    return std::unique_ptr<Engine>(new Engine(std::make_unique<EngineImpl>(config, options)));
}

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Expected<SocketId, int> Engine::open_socket() { return impl_->open_socket(); }
Expected<SocketId, int> Engine::open_socket(std::uint16_t port) { return impl_->open_socket(port); }
Expected<std::monostate, int> Engine::bind(SocketId s, std::uint16_t port) {
    return impl_->bind(s, port);
}
Expected<std::monostate, int> Engine::set_server(SocketId s, bool on) {
    return impl_->set_server(s, on);
}
Expected<std::monostate, int> Engine::set_receive_buffer(SocketId s, std::span<std::byte> region,
                                                         Instant now) {
    return impl_->set_receive_buffer(s, region, now);
}
void Engine::close_socket(SocketId s, Instant now) { impl_->close_socket(s, now); }
std::optional<std::uint16_t> Engine::port(SocketId s) const { return impl_->port(s); }
Expected<RpcId, int> Engine::send_request(SocketId s, const Endpoint& destination,
                                          std::span<const std::byte> message,
                                          std::uint64_t cookie, bool private_rpc, Instant now) {
    return impl_->send_request(s, destination, message, cookie, private_rpc, now);
}
Expected<std::monostate, int> Engine::send_reply(SocketId s, const Endpoint& client, RpcId id,
                                                 std::span<const std::byte> message,
                                                 Instant now) {
    return impl_->send_reply(s, client, id, message, now);
}
Expected<std::optional<ReceivedMessage>, int> Engine::receive(SocketId s, RpcId id, Instant now) {
    return impl_->receive(s, id, now);
}
Expected<std::monostate, int> Engine::release_bpages(SocketId s,
                                                     std::span<const std::uint32_t> offsets,
                                                     Instant now) {
    return impl_->release_bpages(s, offsets, now);
}
Expected<std::monostate, int> Engine::abort(SocketId s, RpcId id, int error, Instant now) {
    return impl_->abort(s, id, error, now);
}
bool Engine::readable(SocketId s) const { return impl_->readable(s); }
void Engine::handle_packet(std::span<const std::byte> bytes, const Address& source,
                           Instant now) {
    impl_->handle_packet(bytes, source, now);
}
void Engine::handle_timeout(Instant now) { impl_->handle_timeout(now); }
std::optional<Transmit> Engine::poll_transmit(Instant now) { return impl_->poll_transmit(now); }
std::optional<Completion> Engine::poll_completion() { return impl_->poll_completion(); }
Instant Engine::next_deadline() const { return impl_->next_deadline(); }
const Metrics& Engine::metrics() const { return impl_->metrics(); }
const Config& Engine::config() const { return impl_->config(); }
std::size_t Engine::rpc_count() const { return impl_->rpc_count(); }
Expected<SocketInfo, int> Engine::socket_info(SocketId s, std::size_t max_rpcs) const {
    return impl_->socket_info(s, max_rpcs);
}
std::size_t Engine::peer_count() const { return impl_->peer_count(); }
std::uint64_t Engine::receive_bytes_in_use() const { return impl_->receive_bytes_in_use(); }

// ---------------------------------------------------------------------------
// EngineImpl: construction, sockets

EngineImpl::EngineImpl(const Config& config, const EngineOptions& options)
    : config_(config),
      options_(options),
      cutoffs_(normalize_cutoffs(config.unsched_cutoffs, config.num_priorities)),
      tick_(std::chrono::microseconds(config.tick_usecs)),
      next_client_id_(options.first_client_id),
      grants_(config_, metrics_),
      nic_(config_),
      pacer_(config_) {
    // Headers only: DATA payloads stay in the message storage (engine_tx.cc).
    tx_buffer_.resize(wire::max_header_size);
}

Socket* EngineImpl::find_socket(SocketId id) {
    auto it = sockets_.find(id);
    return it == sockets_.end() ? nullptr : it->second.get();
}
const Socket* EngineImpl::find_socket(SocketId id) const {
    auto it = sockets_.find(id);
    return it == sockets_.end() ? nullptr : it->second.get();
}
Socket* EngineImpl::socket_for_port(std::uint16_t port) {
    auto it = ports_.find(port);
    return it == ports_.end() ? nullptr : find_socket(it->second);
}

Expected<SocketId, int> EngineImpl::open_socket() {
    // The next free automatic port after the last one issued, wrapping.
    for (std::uint32_t tries = 0; tries < 0x8000; ++tries) {
        const std::uint16_t port = next_auto_port_;
        next_auto_port_ = port == 0xFFFF ? std::uint16_t{0x8000} : std::uint16_t(port + 1);
        if (ports_.count(port) == 0) return open_socket(port);
    }
    return Unexpected{EADDRNOTAVAIL};
}

Expected<SocketId, int> EngineImpl::open_socket(std::uint16_t port) {
    if (port < wire::min_client_port) return Unexpected{EINVAL};
    if (ports_.count(port) != 0) return Unexpected{EADDRINUSE};
    auto socket = std::make_unique<Socket>();
    socket->id = next_socket_id_++;
    socket->port = port;
    ports_[port] = socket->id;
    const SocketId id = socket->id;
    sockets_[id] = std::move(socket);
    return id;
}

Expected<std::monostate, int> EngineImpl::bind(SocketId id, std::uint16_t port) {
    Socket* socket = find_socket(id);
    if (socket == nullptr) return Unexpected{EINVAL};
    if (port == 0) return std::monostate{};
    if (port >= wire::min_client_port) return Unexpected{EINVAL};
    if (port == socket->port) {
        socket->is_server = true;
        return std::monostate{};
    }
    if (ports_.count(port) != 0) return Unexpected{EADDRINUSE};
    ports_.erase(socket->port);
    socket->port = port;
    socket->is_server = true;
    ports_[port] = id;
    return std::monostate{};
}

Expected<std::monostate, int> EngineImpl::set_server(SocketId id, bool is_server) {
    Socket* socket = find_socket(id);
    if (socket == nullptr) return Unexpected{EINVAL};
    socket->is_server = is_server;
    return std::monostate{};
}

Expected<std::monostate, int> EngineImpl::set_receive_buffer(SocketId id,
                                                             std::span<std::byte> region,
                                                             Instant) {
    Socket* socket = find_socket(id);
    if (socket == nullptr || socket->pool) return Unexpected{EINVAL};
    auto pool = BufferPool::create(region.size(), 1,
                                   std::chrono::microseconds(config_.bpage_lease_usecs));
    if (!pool) return Unexpected{pool.error()};
    socket->pool.emplace(std::move(*pool));
    socket->region = region;
    return std::monostate{};
}

void EngineImpl::close_socket(SocketId id, Instant now) {
    Socket* socket = find_socket(id);
    if (socket == nullptr) return;
    std::vector<RpcKey> keys;
    for (const auto& [rid, key] : socket->client_rpcs) keys.push_back(key);
    for (const auto& [skey, key] : socket->server_rpcs) keys.push_back(key);
    for (RpcKey key : keys) {
        if (Rpc* rpc = find_rpc(key)) end_rpc(*rpc, now);
    }
    ports_.erase(socket->port);
    sockets_.erase(id);
}

std::optional<std::uint16_t> EngineImpl::port(SocketId id) const {
    const Socket* socket = find_socket(id);
    if (socket == nullptr) return std::nullopt;
    return socket->port;
}

Peer& EngineImpl::peer_for(const Address& address) {
    auto it = peers_.find(address);
    if (it != peers_.end()) return *it->second;
    auto peer = std::make_unique<Peer>();
    peer->address = address;
    peer->key = next_peer_key_++;
    peer->ipv6 = !address.is_ipv4();
    peer->max_seg_data = wire::max_seg_data(config_.mtu - config_.encapsulation_bytes, peer->ipv6);
    Peer& ref = *peer;
    peers_.emplace(address, std::move(peer));
    ++metrics_.peer_allocs;
    return ref;
}

// ---------------------------------------------------------------------------
// RPC lifetime

Rpc* EngineImpl::find_rpc(RpcKey key) {
    auto it = rpcs_.find(key);
    return it == rpcs_.end() ? nullptr : it->second.get();
}

Rpc* EngineImpl::find_client_rpc(Socket& socket, RpcId id) {
    auto it = socket.client_rpcs.find(id);
    return it == socket.client_rpcs.end() ? nullptr : find_rpc(it->second);
}

Rpc* EngineImpl::find_server_rpc(Socket& socket, const Address& client, RpcId id) {
    auto it = socket.server_rpcs.find(ServerKey{client, id});
    return it == socket.server_rpcs.end() ? nullptr : find_rpc(it->second);
}

Rpc& EngineImpl::create_rpc(Socket& socket, Peer& peer, std::uint16_t peer_port, RpcId id,
                            RpcState state, Instant now) {
    auto rpc = std::make_unique<Rpc>();
    rpc->key = next_rpc_key_++;
    rpc->id = id;
    rpc->socket = socket.id;
    rpc->peer = &peer;
    rpc->peer_port = peer_port;
    rpc->state = state;
    ++peer.rpcs;
    peer.last_active = now;
    Rpc& ref = *rpc;
    if (ref.is_client()) {
        socket.client_rpcs[id] = ref.key;
    } else {
        socket.server_rpcs[ServerKey{peer.address, id}] = ref.key;
    }
    rpcs_.emplace(ref.key, std::move(rpc));
    ensure_ticking(now);
    return ref;
}

void EngineImpl::init_message_out(Rpc& rpc, std::span<const std::byte> message, Instant now) {
    MessageOut& out = rpc.out;
    // Fresh storage for every message, never reused: packets of an earlier
    // message may still be on their way to the kernel (rpc.h).
    auto data = std::make_shared_for_overwrite<std::byte[]>(message.size());
    std::memcpy(data.get(), message.data(), message.size());
    out.data = std::move(data);
    out.length = static_cast<std::uint32_t>(message.size());
    out.unscheduled = std::min(config_.unsched_bytes, out.length);
    out.granted = out.unscheduled;
    out.next_xmit = 0;
    out.sched_priority = 0;
    out.birth = now;
    metrics_.sent_msg_bytes += out.length;
    if (Socket* socket = find_socket(rpc.socket)) socket->send_bytes += out.length;
    update_sendable(rpc);
}

Expected<RpcId, int> EngineImpl::send_request(SocketId id, const Endpoint& destination,
                                              std::span<const std::byte> message,
                                              std::uint64_t cookie, bool private_rpc,
                                              Instant now) {
    Socket* socket = find_socket(id);
    if (socket == nullptr) return Unexpected{EINVAL};
    if (socket->shutdown) return Unexpected{ESHUTDOWN};
    if (message.empty() || message.size() > wire::max_message_length || destination.port == 0) {
        return Unexpected{EINVAL};
    }
    if (socket->send_bytes + message.size() > config_.wmem_max) return Unexpected{EAGAIN};

    Peer& peer = peer_for(destination.address);
    const RpcId rpc_id = next_client_id_;
    next_client_id_ += 2;
    Rpc& rpc = create_rpc(*socket, peer, destination.port, rpc_id, RpcState::outgoing, now);
    rpc.cookie = cookie;
    rpc.private_rpc = private_rpc;
    ++metrics_.client_requests_started;
    metrics_.client_request_bytes_started += message.size();
    init_message_out(rpc, message, now);
    return rpc_id;
}

Expected<std::monostate, int> EngineImpl::send_reply(SocketId id, const Endpoint& client,
                                                     RpcId rpc_id,
                                                     std::span<const std::byte> message,
                                                     Instant now) {
    Socket* socket = find_socket(id);
    if (socket == nullptr) return Unexpected{EINVAL};
    if (socket->shutdown) return Unexpected{ESHUTDOWN};
    if (message.empty() || message.size() > wire::max_message_length) return Unexpected{EINVAL};
    Rpc* rpc = find_server_rpc(*socket, client.address, rpc_id);
    if (rpc == nullptr) return std::monostate{};  // discarded: a silent no-op
    if (rpc->error != 0) return Unexpected{rpc->error};
    if (rpc->state != RpcState::in_service) return Unexpected{EINVAL};
    rpc->state = RpcState::outgoing;
    rpc->silent_ticks = 0;
    ++metrics_.server_responses_started;
    metrics_.server_response_bytes_started += message.size();
    init_message_out(*rpc, message, now);
    return std::monostate{};
}

void EngineImpl::make_ready(Rpc& rpc) {
    if (rpc.ready) return;
    rpc.ready = true;
    Socket* socket = find_socket(rpc.socket);
    if (socket == nullptr) return;
    if (!rpc.private_rpc) socket->ready.push_back(rpc.key);
    completions_.push_back(Completion{rpc.socket, rpc.id, rpc.private_rpc});
}

namespace {

// Takes `rpc` off its socket's list of RPCs waiting for receive buffers.
void stop_waiting_for_buffers(Socket& socket, Rpc& rpc) {
    if (!rpc.in.waiting_for_buffers) return;
    auto range = socket.waiting_for_buffers.equal_range(rpc.in.length);
    for (auto it = range.first; it != range.second; ++it) {
        if (it->second == rpc.key) {
            socket.waiting_for_buffers.erase(it);
            break;
        }
    }
    rpc.in.waiting_for_buffers = false;
}

}  // namespace

void EngineImpl::fail_client_rpc(Rpc& rpc, int error, Instant now) {
    rpc.error = error;
    // A failed RPC drops its response (handle_data), so it must not wait for
    // buffers: once space freed up it would take them, a grant slot and a
    // RESEND for the whole response, all for nothing.
    if (Socket* socket = find_socket(rpc.socket)) stop_waiting_for_buffers(*socket, rpc);
    if (rpc.out.in_pacer) {
        pacer_.remove(rpc.key);
        rpc.out.in_pacer = false;
    }
    if (rpc.in.in_grant_manager) {
        grants_.remove(rpc.key, now);
        rpc.in.in_grant_manager = false;
    }
    make_ready(rpc);
}

Expected<std::optional<ReceivedMessage>, int> EngineImpl::receive(SocketId id, RpcId rpc_id,
                                                                  Instant now) {
    Socket* socket = find_socket(id);
    if (socket == nullptr || !socket->pool) return Unexpected{EINVAL};
    if (socket->shutdown) return Unexpected{ESHUTDOWN};
    Rpc* rpc = nullptr;
    if (rpc_id == 0) {
        while (!socket->ready.empty() && rpc == nullptr) {
            Rpc* candidate = find_rpc(socket->ready.front());
            socket->ready.pop_front();
            if (candidate != nullptr && candidate->ready) rpc = candidate;
        }
        if (rpc == nullptr) return std::optional<ReceivedMessage>{};
    } else {
        rpc = find_client_rpc(*socket, rpc_id);
        if (rpc == nullptr || !rpc->private_rpc) return Unexpected{EINVAL};
        if (!rpc->ready) return std::optional<ReceivedMessage>{};
    }

    ReceivedMessage message;
    message.id = rpc->id;
    message.completion_cookie = rpc->is_client() ? rpc->cookie : 0;
    message.peer = rpc->peer_endpoint();
    message.error = rpc->error;
    rpc->ready = false;
    if (rpc->error == 0) {
        message.length = rpc->in.length;
        if (rpc->in.buffers) {
            message.num_bpages = rpc->in.buffers->num_bpages;
            std::copy_n(rpc->in.buffers->offsets.begin(), message.num_bpages,
                        message.bpage_offsets.begin());
            rpc->in.buffers.reset();  // the application owns the chunks now
        }
    }
    if (rpc->is_client()) {
        if (rpc->error == 0) queue_ack(*rpc, now);
        end_rpc(*rpc, now);
    } else {
        rpc->handed_to_app = true;
    }
    return std::optional<ReceivedMessage>{message};
}

Expected<std::monostate, int> EngineImpl::release_bpages(SocketId id,
                                                         std::span<const std::uint32_t> offsets,
                                                         Instant now) {
    Socket* socket = find_socket(id);
    if (socket == nullptr || !socket->pool) return Unexpected{EINVAL};
    for (std::uint32_t offset : offsets) {
        auto released = socket->pool->release(offset);
        if (!released) {
            serve_buffer_waiters(*socket, now);
            return Unexpected{released.error()};
        }
    }
    serve_buffer_waiters(*socket, now);
    return std::monostate{};
}

Expected<std::monostate, int> EngineImpl::abort(SocketId id, RpcId rpc_id, int error,
                                                Instant now) {
    Socket* socket = find_socket(id);
    if (socket == nullptr) return Unexpected{EINVAL};
    std::vector<RpcKey> targets;
    if (rpc_id == 0) {
        for (const auto& [rid, key] : socket->client_rpcs) targets.push_back(key);
    } else {
        Rpc* rpc = find_client_rpc(*socket, rpc_id);
        if (rpc == nullptr) return Unexpected{EINVAL};
        targets.push_back(rpc->key);
    }
    for (RpcKey key : targets) {
        Rpc* rpc = find_rpc(key);
        if (rpc == nullptr) continue;
        if (error == 0) {
            end_rpc(*rpc, now);
        } else if (rpc->error == 0) {
            fail_client_rpc(*rpc, error, now);
        }
    }
    return std::monostate{};
}

Expected<SocketInfo, int> EngineImpl::socket_info(SocketId id, std::size_t max_rpcs) const {
    const Socket* socket = find_socket(id);
    if (socket == nullptr) return Unexpected{EINVAL};
    SocketInfo info;
    info.port = socket->port;
    if (socket->pool) info.bpool_avail_bytes = std::uint64_t{socket->pool->free_bpages()} << 16;
    auto describe = [&](RpcKey key) {
        auto it = rpcs_.find(key);
        if (it == rpcs_.end() || it->second->state == RpcState::dead) return;
        const Rpc& rpc = *it->second;
        ++info.num_rpcs;
        if (info.rpcs.size() >= max_rpcs) return;
        RpcInfo r;
        r.id = rpc.id;
        r.peer = rpc.peer_endpoint();
        r.completion_cookie = rpc.cookie;
        // A server RPC has no outgoing message until the reply is sent.
        if (rpc.is_client() || rpc.state == RpcState::outgoing) {
            r.tx_length = static_cast<std::int32_t>(rpc.out.length);
            r.tx_sent = rpc.out.next_xmit;
            r.tx_granted = std::min(rpc.out.length, std::max(rpc.out.granted, rpc.out.unscheduled));
            r.tx_prio = rpc.out.sched_priority;
        }
        if (rpc.in.started) {
            r.rx_length = static_cast<std::int32_t>(rpc.in.length);
            r.rx_remaining = rpc.in.length - rpc.in.received;
            r.rx_gaps = static_cast<std::uint32_t>(rpc.in.gaps.size());
            for (const Gap& g : rpc.in.gaps) r.rx_gap_bytes += g.end - g.start;
            r.rx_granted = rpc.in.granted;
        }
        r.buf_stall = rpc.in.waiting_for_buffers;
        r.private_rpc = rpc.private_rpc;
        r.rx_ready = rpc.ready;
        info.rpcs.push_back(r);
    };
    // Ordered by id so the report is deterministic.
    std::vector<std::pair<RpcId, RpcKey>> clients(socket->client_rpcs.begin(),
                                                  socket->client_rpcs.end());
    std::sort(clients.begin(), clients.end());
    for (const auto& [rpc_id, key] : clients) describe(key);
    for (const auto& [server_key, key] : socket->server_rpcs) describe(key);
    return info;
}

bool EngineImpl::readable(SocketId id) const {
    const Socket* socket = find_socket(id);
    if (socket == nullptr) return false;
    for (std::size_t i = 0; i < socket->ready.size(); ++i) {
        auto it = rpcs_.find(socket->ready[i]);
        if (it != rpcs_.end() && it->second->ready) return true;
    }
    return false;
}

std::optional<Completion> EngineImpl::poll_completion() {
    if (completions_.empty()) return std::nullopt;
    Completion c = completions_.front();
    completions_.pop_front();
    return c;
}

void EngineImpl::queue_ack(Rpc& rpc, Instant) {
    Peer& peer = *rpc.peer;
    const wire::Ack ack{rpc.id, rpc.peer_port};
    if (peer.pending_acks.size() < wire::max_acks_per_packet) {
        peer.pending_acks.push_back(ack);
        return;
    }
    // Full: an explicit ACK carries the queued five and names this RPC.
    wire::AckPacket packet;
    packet.header = header_for(rpc);
    packet.num_acks = static_cast<std::uint16_t>(peer.pending_acks.size());
    std::copy(peer.pending_acks.begin(), peer.pending_acks.end(), packet.acks.begin());
    peer.pending_acks.clear();
    ++metrics_.ack_overflows;
    queue_control_for(rpc, packet);
}

void EngineImpl::end_rpc(Rpc& rpc, Instant now) {
    Socket* socket = find_socket(rpc.socket);
    if (socket != nullptr) {
        socket->send_bytes -= rpc.out.length;
        if (rpc.is_client()) {
            socket->client_rpcs.erase(rpc.id);
        } else {
            const ServerKey key{rpc.peer->address, rpc.id};
            socket->server_rpcs.erase(key);
            if (rpc.handed_to_app) {
                const Instant expiry = now + tick_ * config_.timeout_ticks;
                socket->tombstones[key] = expiry;
                socket->tombstone_expiry.push_back({expiry, key});
            }
        }
        stop_waiting_for_buffers(*socket, rpc);
        if (rpc.in.buffers && socket->pool) {
            for (std::uint32_t i = 0; i < rpc.in.buffers->num_bpages; ++i) {
                (void)socket->pool->release(rpc.in.buffers->offsets[i]);
            }
        }
    }
    if (rpc.in.in_grant_manager) grants_.remove(rpc.key, now);
    if (rpc.out.in_pacer) pacer_.remove(rpc.key);
    --rpc.peer->rpcs;
    rpc.peer->last_active = now;
    rpc.state = RpcState::dead;
    const bool had_buffers = rpc.in.buffers.has_value();
    const RpcKey key = rpc.key;
    rpcs_.erase(key);  // `rpc` is gone from here on
    take_grants();
    if (socket != nullptr && had_buffers) serve_buffer_waiters(*socket, now);
}

void EngineImpl::ensure_ticking(Instant now) {
    if (!next_tick_) next_tick_ = now + tick_;
}

std::uint64_t EngineImpl::receive_bytes_in_use() const {
    std::uint64_t total = 0;
    for (const auto& [id, socket] : sockets_) {
        if (socket->pool) total += socket->pool->bytes_in_use();
    }
    return total;
}

}  // namespace uhoma::engine
