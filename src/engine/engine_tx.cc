// Transmission: control packets, retransmissions, and new DATA through the
// pacer (spec 1.7, 3.7, 5).
//
// Order of output in poll_transmit: control packets first (they are small and
// bypass pacing), then retransmissions (forced out, as Linux's legacy pacer
// does), then new DATA. New DATA goes in SRPT order (fewest bytes left to
// send), with the pacer's FIFO share for the oldest message, while the NIC
// queue estimate is under max_nic_est_backlog_usecs; a message with at most
// defer_min_bytes left goes even when the estimate is over the limit.
//
// No payload is copied here: a DATA packet is its 56-byte header, encoded
// into tx_buffer_, plus a span of the RPC's message storage and a reference
// that keeps that storage alive (types.h, Transmit). Encoding the header
// alone with encode_data_header gives exactly the bytes encode() would write
// in front of the payload, so the wire is unchanged. Control packets are
// header only.
#include <algorithm>
#include <cstring>

#include "engine/engine_impl.h"

namespace uhoma::engine {

namespace {

void count_priority(Metrics& m, std::uint8_t level, std::size_t bytes) {
    std::uint64_t* const bytes_by_level[] = {
        &m.priority0_bytes, &m.priority1_bytes, &m.priority2_bytes, &m.priority3_bytes,
        &m.priority4_bytes, &m.priority5_bytes, &m.priority6_bytes, &m.priority7_bytes};
    std::uint64_t* const packets_by_level[] = {
        &m.priority0_packets, &m.priority1_packets, &m.priority2_packets, &m.priority3_packets,
        &m.priority4_packets, &m.priority5_packets, &m.priority6_packets, &m.priority7_packets};
    const std::size_t i = std::min<std::size_t>(level, 7);
    *bytes_by_level[i] += bytes;
    ++*packets_by_level[i];
}

}  // namespace

wire::Header EngineImpl::header_for(const Rpc& rpc) const {
    const Socket* socket = find_socket(rpc.socket);
    return wire::Header{socket != nullptr ? socket->port : std::uint16_t{0}, rpc.peer_port,
                        rpc.id};
}

void EngineImpl::queue_control(const wire::Packet& packet, const Endpoint& destination) {
    ControlPacket control;
    auto size = wire::encode(packet, control.bytes);
    if (!size) {
        ++metrics_.control_xmit_errors;
        return;
    }
    control.size = static_cast<std::uint8_t>(*size);
    control.type = wire::packet_type(packet);
    control.destination = destination;
    control_.push_back(control);
}

void EngineImpl::queue_control_for(const Rpc& rpc, const wire::Packet& packet) {
    queue_control(packet, rpc.peer_endpoint());
}

void EngineImpl::update_sendable(Rpc& rpc) {
    MessageOut& out = rpc.out;
    const bool sendable = rpc.error == 0 && rpc.state == RpcState::outgoing &&
                          out.next_xmit < std::min(out.granted, out.length);
    if (sendable) {
        const std::uint32_t remaining = out.length - out.next_xmit;
        if (out.in_pacer) {
            pacer_.update(rpc.key, remaining);
        } else {
            pacer_.add(rpc.key, remaining, out.birth);
            out.in_pacer = true;
        }
    } else if (out.in_pacer) {
        pacer_.remove(rpc.key);
        out.in_pacer = false;
    }
}

std::uint32_t EngineImpl::next_packet_end(const Rpc& rpc, std::uint32_t start) const {
    const MessageOut& out = rpc.out;
    const auto seg = static_cast<std::uint32_t>(rpc.peer->max_seg_data);
    // The last unscheduled packet ends exactly at the unscheduled limit.
    const std::uint32_t limit = start < out.unscheduled ? out.unscheduled : out.length;
    return std::min(start + seg, limit);
}

std::optional<Transmit> EngineImpl::emit(const Endpoint& destination, std::uint8_t level,
                                         std::size_t header_size,
                                         std::span<const std::byte> payload,
                                         std::shared_ptr<const void> keep, wire::PacketType type,
                                         bool ipv6, Instant now) {
    const std::uint8_t mapped = config_.priority_map[std::min<std::size_t>(level, 7)];
    const std::size_t size = header_size + payload.size();
    metrics_.count_sent(type);
    count_priority(metrics_, mapped, size);
    nic_.on_send(size, ipv6, now);
    return Transmit{destination, mapped,
                    std::span<const std::byte>(tx_buffer_.data(), header_size), payload,
                    std::move(keep)};
}

std::optional<Transmit> EngineImpl::transmit_data(Rpc& rpc, std::uint32_t start,
                                                  std::uint32_t end, std::uint8_t level,
                                                  bool retransmit, std::uint32_t incoming,
                                                  Instant now) {
    Peer& peer = *rpc.peer;
    wire::DataPacket data;
    data.header = header_for(rpc);
    data.message_length = rpc.out.length;
    data.incoming = incoming;
    if (!peer.pending_acks.empty()) {
        data.ack = peer.pending_acks.back();  // the newest queued ack rides along
        peer.pending_acks.pop_back();
    }
    data.cutoff_version = peer.cutoff_version;
    data.retransmit = retransmit;
    data.offset = start;
    const std::size_t length = end - start;
    auto size = wire::encode_data_header(data, length, tx_buffer_);
    if (!size) {
        ++metrics_.data_xmit_errors;
        return std::nullopt;
    }
    UHOMA_TT(now, "tx DATA id %llu offset %u length %u retransmit %u", data.header.sender_id, start, end - start, retransmit);
    const std::span<const std::byte> payload(rpc.out.data.get() + start, length);
    return emit(rpc.peer_endpoint(), level, *size, payload, rpc.out.data, wire::PacketType::data,
                peer.ipv6, now);
}

std::optional<Transmit> EngineImpl::poll_transmit(Instant now) {
    take_grants();  // those the packets handled since the last poll earned
    if (!control_.empty()) {
        const ControlPacket control = control_.front();
        control_.pop_front();
        UHOMA_TT(now, "tx %s to port %u", wire::packet_type_name(control.type), control.destination.port);
        std::memcpy(tx_buffer_.data(), control.bytes.data(), control.size);
        return emit(control.destination, control_level(), control.size, {}, nullptr,
                    control.type, !control.destination.address.is_ipv4(), now);
    }

    while (!retransmits_.empty()) {
        Retransmission& r = retransmits_.front();
        Rpc* rpc = find_rpc(r.rpc);
        if (rpc == nullptr || rpc->error != 0 || r.start >= r.end ||
            r.end > rpc->out.length) {
            retransmits_.pop_front();
            continue;
        }
        const std::uint32_t start = r.start;
        const std::uint32_t end =
            std::min(start + static_cast<std::uint32_t>(rpc->peer->max_seg_data), r.end);
        const std::uint32_t range_end = r.end;
        const std::uint8_t level = r.level;
        r.start = end;
        if (r.start >= r.end) retransmits_.pop_front();
        ++metrics_.resent_packets;
        // `incoming` of a retransmission is the end of the resent range.
        return transmit_data(*rpc, start, end, level, true, range_end, now);
    }

    const bool pacing = (config_.flags & Config::dont_throttle_flag) == 0;
    while (!pacer_.empty()) {
        std::optional<std::uint64_t> key;
        bool paced = false;
        if (!pacing || nic_.can_send(now)) {
            key = pacer_.pick();
            paced = pacing;
        } else {
            // The NIC queue is long: only short messages may go now.
            auto shortest = pacer_.shortest();
            if (!shortest || shortest->bytes_remaining > config_.defer_min_bytes) {
                return std::nullopt;
            }
            key = shortest->key;
        }
        if (!key) return std::nullopt;
        Rpc* rpc = find_rpc(*key);
        if (rpc == nullptr) {
            pacer_.remove(*key);
            continue;
        }
        MessageOut& out = rpc->out;
        if (rpc->error != 0 || rpc->state != RpcState::outgoing ||
            out.next_xmit >= std::min(out.granted, out.length)) {
            update_sendable(*rpc);
            continue;
        }
        const std::uint32_t start = out.next_xmit;
        const std::uint32_t end = next_packet_end(*rpc, start);
        const std::uint8_t level =
            start < out.unscheduled
                ? unsched_priority(rpc->peer->cutoffs, out.length, config_.num_priorities)
                : out.sched_priority;
        out.next_xmit = end;
        update_sendable(*rpc);
        if (end == out.length) {
            if (rpc->is_client()) {
                ++metrics_.client_requests_done;
                metrics_.client_request_bytes_done += out.length;
            } else {
                ++metrics_.server_responses_done;
                metrics_.server_response_bytes_done += out.length;
            }
        }
        if (paced) {
            ++metrics_.pacer_homa_packets;
            metrics_.pacer_homa_bytes += end - start;
        }
        return transmit_data(*rpc, start, end, level, false, out.unscheduled, now);
    }
    return std::nullopt;
}

Instant EngineImpl::next_deadline() const {
    Instant deadline = never;
    if (next_tick_) deadline = std::min(deadline, *next_tick_);
    deadline = std::min(deadline, grants_.next_deadline());
    if (!pacer_.empty() && (config_.flags & Config::dont_throttle_flag) == 0) {
        deadline = std::min(deadline, nic_.ready_at());
    }
    return deadline;
}

}  // namespace uhoma::engine
