// Packet dispatch (spec 2.3) and the receive side of messages.
#include <algorithm>
#include <cstring>

#include "engine/engine_impl.h"
#include "wire/ids.h"

namespace uhoma::engine {

void EngineImpl::handle_packet(std::span<const std::byte> bytes, const Address& source,
                               Instant now) {
    auto decoded = wire::decode(bytes);
    if (!decoded) {
        switch (decoded.error()) {
            case wire::Error::truncated: ++metrics_.short_packets; break;
            case wire::Error::unknown_type: ++metrics_.unknown_packet_types; break;
            default: ++metrics_.malformed_packets; break;
        }
        return;
    }
    metrics_.count_received(wire::packet_type(*decoded));
    UHOMA_TT(now, "rx %s id %llu sport %u", wire::packet_type_name(wire::packet_type(*decoded)), wire::packet_header(*decoded).sender_id, wire::packet_header(*decoded).sport);
    dispatch(*decoded, source, now);
    // Grants are taken in poll_transmit, once per batch of packets.
}

void EngineImpl::dispatch(const wire::Packet& packet, const Address& source, Instant now) {
    if (const auto* cutoffs = std::get_if<wire::CutoffsPacket>(&packet)) {
        handle_cutoffs(*cutoffs, source);
        return;
    }
    if (std::holds_alternative<wire::FreezePacket>(packet)) return;  // no timetrace to freeze

    const wire::Header& header = wire::packet_header(packet);
    Socket* socket = socket_for_port(header.dport);
    if (socket == nullptr) {
        ++metrics_.unknown_ports;
        return;
    }
    std::visit(
        [&](const auto& p) {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, wire::DataPacket>) {
                handle_data(*socket, p, source, now);
            } else if constexpr (std::is_same_v<T, wire::GrantPacket>) {
                handle_grant(*socket, p, source);
            } else if constexpr (std::is_same_v<T, wire::ResendPacket>) {
                handle_resend(*socket, p, source);
            } else if constexpr (std::is_same_v<T, wire::RpcUnknownPacket>) {
                handle_rpc_unknown(*socket, p.header, source, now);
            } else if constexpr (std::is_same_v<T, wire::BusyPacket>) {
                handle_busy(*socket, p.header, source);
            } else if constexpr (std::is_same_v<T, wire::NeedAckPacket>) {
                handle_need_ack(*socket, p.header, source);
            } else if constexpr (std::is_same_v<T, wire::AckPacket>) {
                handle_ack(*socket, p, source, now);
            }
        },
        packet);
}

Rpc* EngineImpl::rpc_for_packet(Socket& socket, const wire::Header& header,
                                const Address& source) {
    const RpcId local = wire::local_id(header.sender_id);
    return wire::is_client_id(local) ? find_client_rpc(socket, local)
                                     : find_server_rpc(socket, source, local);
}

// ---------------------------------------------------------------------------
// DATA

void EngineImpl::handle_data(Socket& socket, const wire::DataPacket& data, const Address& source,
                             Instant now) {
    Peer& peer = peer_for(source);
    peer.last_active = now;
    UHOMA_TT(now, "rx DATA id %llu offset %u length %u retransmit %u", data.header.sender_id, data.offset, data.payload.size(), data.retransmit);
    // Piggy-backed acks are honoured whatever happens to the data (TSO
    // copies them into every segment, so this must be idempotent).
    if (!data.ack.empty()) handle_ack_entry(data.ack, source, now);

    const RpcId local = wire::local_id(data.header.sender_id);
    Rpc* rpc = nullptr;
    if (wire::is_client_id(local)) {
        // A response to one of our requests.
        rpc = find_client_rpc(socket, local);
        if (rpc == nullptr || rpc->error != 0) {
            ++metrics_.unknown_rpcs;
            return;
        }
        if (rpc->state == RpcState::outgoing) {
            // The first response packet: the server has the whole request.
            rpc->state = RpcState::incoming;
            if (rpc->out.in_pacer) {
                pacer_.remove(rpc->key);
                rpc->out.in_pacer = false;
            }
            ++metrics_.client_responses_started;
            metrics_.client_response_bytes_started += data.message_length;
            if (!start_message_in(*rpc, socket, data, now)) return;
        } else if (rpc->state != RpcState::incoming) {
            return;
        }
    } else {
        // A request.
        rpc = find_server_rpc(socket, source, local);
        if (rpc == nullptr) {
            const ServerKey key{source, local};
            auto tomb = socket.tombstones.find(key);
            if (tomb != socket.tombstones.end()) {
                // Already delivered and ended: a stale or duplicated packet.
                ++(data.retransmit ? metrics_.resent_discards : metrics_.packet_discards);
                return;
            }
            if (!socket.is_server || !socket.pool) {
                ++metrics_.server_cant_create_rpcs;
                return;
            }
            rpc = &create_rpc(socket, peer, data.header.sport, local, RpcState::incoming, now);
            ++metrics_.server_requests_started;
            metrics_.server_request_bytes_started += data.message_length;
            if (!start_message_in(*rpc, socket, data, now)) return;
        } else if (rpc->peer_port != data.header.sport) {
            // Same client address and id from another port: ids collided.
            ++metrics_.unknown_rpcs;
            return;
        } else if (rpc->state != RpcState::incoming) {
            return;  // the request is complete; only its ack mattered
        }
    }

    rpc->silent_ticks = 0;
    if (data.cutoff_version != cutoff_version_) {
        maybe_send_cutoffs(peer, socket.port, data.header.sport, rpc->id, now);
    }
    if (rpc->in.waiting_for_buffers) {
        ++metrics_.dropped_data_no_bufs;
        return;
    }
    add_data(*rpc, socket, data, now);
}

bool EngineImpl::start_message_in(Rpc& rpc, Socket& socket, const wire::DataPacket& data,
                                  Instant now) {
    MessageIn& in = rpc.in;
    in.started = true;
    in.length = data.message_length;
    in.granted = std::min(data.incoming, data.message_length);
    in.birth = now;
    if (!socket.pool) {
        // A client without a receive region cannot take its response.
        fail_client_rpc(rpc, ENOMEM, now);
        return false;
    }
    auto buffers = socket.pool->allocate(in.length, 0, now);
    if (!buffers) {
        in.waiting_for_buffers = true;
        socket.waiting_for_buffers.emplace(in.length, rpc.key);
        ++metrics_.buffer_alloc_failures;
        ++metrics_.dropped_data_no_bufs;
        return false;
    }
    in.buffers = *buffers;
    if (in.length > in.granted) {
        grants_.add(rpc.key, rpc.peer->key, in.length, in.granted, 0, in.birth, now);
        in.in_grant_manager = true;
    }
    return true;
}

void EngineImpl::add_data(Rpc& rpc, Socket& socket, const wire::DataPacket& data, Instant now) {
    MessageIn& in = rpc.in;
    if (data.message_length != in.length) {
        ++metrics_.malformed_packets;
        return;
    }
    const std::uint32_t start = data.offset;
    const auto end = static_cast<std::uint32_t>(start + data.payload.size());
    if (start >= in.recv_end) {
        if (start > in.recv_end) {
            in.gaps.push_back(Gap{in.recv_end, start});
            ++metrics_.gaps_created;
        }
        in.recv_end = end;
    } else {
        // Must fall entirely inside one gap; anything else overlaps bytes
        // we already have and is dropped, as Linux Homa does.
        auto gap = std::find_if(in.gaps.begin(), in.gaps.end(), [&](const Gap& g) {
            return g.start <= start && end <= g.end;
        });
        if (gap == in.gaps.end()) {
            ++(data.retransmit ? metrics_.resent_discards : metrics_.packet_discards);
            return;
        }
        if (gap->start == start && gap->end == end) {
            in.gaps.erase(gap);
        } else if (gap->start == start) {
            gap->start = end;
        } else if (gap->end == end) {
            gap->end = start;
        } else {
            const Gap tail{end, gap->end};
            gap->end = start;
            in.gaps.insert(gap + 1, tail);
        }
    }
    if (data.retransmit) ++metrics_.resent_packets_used;

    // Copy into the receive region, chunk by chunk (chunks are 64 KiB apart
    // in message offsets).
    std::uint32_t done = 0;
    while (done < data.payload.size()) {
        const std::uint32_t offset = start + done;
        const std::uint32_t in_chunk = bpage_size - (offset & (bpage_size - 1));
        const std::uint32_t n =
            std::min<std::uint32_t>(in_chunk, static_cast<std::uint32_t>(data.payload.size()) - done);
        const std::uint64_t at = in.buffers->offset_of(offset);
        std::memcpy(socket.region.data() + at, data.payload.data() + done, n);
        done += n;
    }
    in.received += static_cast<std::uint32_t>(data.payload.size());
    if (in.in_grant_manager) grants_.update(rpc.key, in.received, now);
    if (in.received == in.length) message_complete(rpc, now);
}

void EngineImpl::message_complete(Rpc& rpc, Instant now) {
    UHOMA_TT(now, "id %llu %s complete, %u bytes", rpc.id, rpc.is_client() ? "response" : "request", rpc.in.length);
    if (rpc.in.in_grant_manager) {
        grants_.remove(rpc.key, now);
        rpc.in.in_grant_manager = false;
    }
    metrics_.record_message_length(rpc.in.length);
    if (rpc.is_client()) {
        ++metrics_.client_responses_done;
        metrics_.client_response_bytes_done += rpc.in.length;
        ++metrics_.responses_received;
    } else {
        rpc.state = RpcState::in_service;
        ++metrics_.server_requests_done;
        metrics_.server_request_bytes_done += rpc.in.length;
        ++metrics_.requests_received;
    }
    make_ready(rpc);
}

void EngineImpl::maybe_send_cutoffs(Peer& peer, std::uint16_t our_port, std::uint16_t their_port,
                                    RpcId id, Instant now) {
    if (peer.last_cutoffs_sent && now - *peer.last_cutoffs_sent < tick_) return;
    peer.last_cutoffs_sent = now;
    wire::CutoffsPacket packet;
    packet.header = wire::Header{our_port, their_port, id};
    packet.unsched_cutoffs = cutoffs_;
    packet.cutoff_version = cutoff_version_;
    queue_control(packet, Endpoint{peer.address, their_port});
}

void EngineImpl::serve_buffer_waiters(Socket& socket, Instant now) {
    while (!socket.waiting_for_buffers.empty() && socket.pool) {
        auto first = socket.waiting_for_buffers.begin();
        Rpc* rpc = find_rpc(first->second);
        if (rpc == nullptr) {
            socket.waiting_for_buffers.erase(first);
            continue;
        }
        auto buffers = socket.pool->allocate(rpc->in.length, 0, now);
        if (!buffers) return;
        socket.waiting_for_buffers.erase(first);
        MessageIn& in = rpc->in;
        in.waiting_for_buffers = false;
        in.buffers = *buffers;
        // Everything it sent was dropped: keep its unscheduled allowance and
        // ask for it all again, at a high priority (spec 3.8, perf #61).
        if (in.length > in.granted) {
            grants_.add(rpc->key, rpc->peer->key, in.length, in.granted, 0, in.birth, now);
            in.in_grant_manager = true;
        }
        wire::ResendPacket resend;
        resend.header = header_for(*rpc);
        resend.offset = 0;
        resend.length = wire::resend_everything;
        resend.priority = static_cast<std::uint8_t>(config_.num_priorities > 1
                                                        ? config_.num_priorities - 2
                                                        : 0);
        queue_control_for(*rpc, resend);
    }
    take_grants();
}

void EngineImpl::take_grants() {
    // The grant manager queues a grant whenever an RPC's offset moves, that
    // is for nearly every DATA packet. Packets handled back to back (one
    // recvmmsg batch; the caller polls transmits after the batch) need only
    // the last of each RPC's grants: one GRANT per RPC per batch, as Linux
    // Homa grants once per GRO batch, instead of one per DATA packet.
    grant_batch_.clear();
    while (auto grant = grants_.poll_grant()) {
        auto same = std::find_if(grant_batch_.begin(), grant_batch_.end(),
                                 [&](const Grant& g) { return g.key == grant->key; });
        if (same == grant_batch_.end()) {
            grant_batch_.push_back(*grant);
        } else if (grant->offset >= same->offset) {
            *same = *grant;
        }
    }
    for (const Grant* grant = grant_batch_.data(); grant != grant_batch_.data() + grant_batch_.size();
         ++grant) {
        Rpc* rpc = find_rpc(grant->key);
        if (rpc == nullptr || rpc->state == RpcState::dead) continue;
        rpc->in.granted = std::max(rpc->in.granted, grant->offset);
        wire::GrantPacket packet;
        packet.header = header_for(*rpc);
        packet.offset = grant->offset;
        packet.priority = grant->priority;
        queue_control_for(*rpc, packet);
    }
}

// ---------------------------------------------------------------------------
// Control packets

void EngineImpl::handle_grant(Socket& socket, const wire::GrantPacket& grant,
                              const Address& source) {
    Rpc* rpc = rpc_for_packet(socket, grant.header, source);
    if (rpc == nullptr || rpc->state != RpcState::outgoing || rpc->error != 0) return;
    MessageOut& out = rpc->out;
    out.granted = std::min(out.length, std::max(out.granted, grant.offset));
    out.sched_priority = grant.priority;
    rpc->silent_ticks = 0;
    update_sendable(*rpc);
}

void EngineImpl::handle_resend(Socket& socket, const wire::ResendPacket& resend,
                               const Address& source) {
    Rpc* rpc = rpc_for_packet(socket, resend.header, source);
    const Endpoint reply_to{source, resend.header.sport};
    const wire::Header reply_header{socket.port, resend.header.sport,
                                    wire::local_id(resend.header.sender_id)};
    if (rpc == nullptr) {
        queue_control(wire::RpcUnknownPacket{reply_header}, reply_to);
        return;
    }
    if (rpc->error != 0) return;
    if (!rpc->is_client() && rpc->state != RpcState::outgoing) {
        queue_control(wire::BusyPacket{reply_header}, reply_to);
        return;
    }
    MessageOut& out = rpc->out;
    if (out.length == 0) {  // a client that has not sent anything: cannot happen
        return;
    }
    const std::uint32_t tx_end = out.next_xmit;
    const std::uint64_t end = resend.length == wire::resend_everything
                                  ? tx_end
                                  : std::uint64_t{resend.offset} + resend.length;
    if (resend.offset >= tx_end) {
        queue_control(wire::BusyPacket{reply_header}, reply_to);
    } else {
        const auto stop = static_cast<std::uint32_t>(std::min<std::uint64_t>(end, tx_end));
        retransmits_.push_back(Retransmission{rpc->key, resend.offset, stop,
                                              std::min<std::uint8_t>(resend.priority, 7)});
    }
    if (resend.length != wire::resend_everything && end > out.granted) {
        // A RESEND beyond what we were granted means a GRANT was lost.
        out.granted = static_cast<std::uint32_t>(std::min<std::uint64_t>(end, out.length));
        update_sendable(*rpc);
    }
}

void EngineImpl::handle_rpc_unknown(Socket& socket, const wire::Header& header,
                                    const Address& source, Instant now) {
    Rpc* rpc = rpc_for_packet(socket, header, source);
    if (rpc == nullptr) return;
    if (!rpc->is_client()) {
        ++metrics_.server_rpcs_unknown;
        end_rpc(*rpc, now);
        return;
    }
    if (rpc->state == RpcState::outgoing && rpc->error == 0 && rpc->out.next_xmit > 0) {
        // The server lost the whole request: send again what we had sent.
        // This does not reset the timer, so a server that keeps refusing
        // ends in ETIMEDOUT.
        const std::uint8_t level =
            unsched_priority(rpc->peer->cutoffs, rpc->out.length, config_.num_priorities);
        retransmits_.push_back(Retransmission{rpc->key, 0, rpc->out.next_xmit, level});
    }
}

void EngineImpl::handle_busy(Socket& socket, const wire::Header& header, const Address& source) {
    if (Rpc* rpc = rpc_for_packet(socket, header, source)) rpc->silent_ticks = 0;
}

void EngineImpl::handle_cutoffs(const wire::CutoffsPacket& cutoffs, const Address& source) {
    Peer& peer = peer_for(source);
    peer.cutoffs = cutoffs.unsched_cutoffs;
    peer.cutoffs[0] = 0x7FFFFFFF;
    peer.cutoff_version = cutoffs.cutoff_version;
}

void EngineImpl::handle_need_ack(Socket& socket, const wire::Header& header,
                                 const Address& source) {
    const RpcId local = wire::local_id(header.sender_id);
    if (!wire::is_client_id(local)) return;  // NEED_ACK goes to clients only
    Rpc* rpc = find_client_rpc(socket, local);
    if (rpc != nullptr && rpc->error == 0 && !rpc->in.complete()) {
        // We do not have the whole response yet: ask for it instead.
        ++metrics_.ignored_need_acks;
        request_retransmission(*rpc);
        return;
    }
    Peer& peer = peer_for(source);
    wire::AckPacket ack;
    ack.header = wire::Header{socket.port, header.sport, local};
    ack.num_acks = static_cast<std::uint16_t>(peer.pending_acks.size());
    std::copy(peer.pending_acks.begin(), peer.pending_acks.end(), ack.acks.begin());
    peer.pending_acks.clear();
    queue_control(ack, Endpoint{source, header.sport});
}

void EngineImpl::handle_ack(Socket& socket, const wire::AckPacket& ack, const Address& source,
                            Instant now) {
    if (Rpc* rpc = find_server_rpc(socket, source, wire::local_id(ack.header.sender_id))) {
        end_rpc(*rpc, now);
    }
    for (std::size_t i = 0; i < ack.num_acks; ++i) {
        if (!ack.acks[i].empty()) handle_ack_entry(ack.acks[i], source, now);
    }
}

void EngineImpl::handle_ack_entry(const wire::Ack& ack, const Address& source, Instant now) {
    Socket* socket = socket_for_port(ack.server_port);
    if (socket == nullptr) return;
    if (Rpc* rpc = find_server_rpc(*socket, source, wire::server_id(ack.client_id))) {
        end_rpc(*rpc, now);
    }
}

}  // namespace uhoma::engine
