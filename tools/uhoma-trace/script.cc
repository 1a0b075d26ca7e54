// The conversation of script.h, played out on a tiny timing model.
//
// Each host has an outgoing link that serialises its packets at 10 Gbit/s;
// a packet reaches the peer 4 us after its last bit leaves. Reactions (a
// GRANT after a batch, a retransmission after a RESEND) are scheduled from
// arrival times, so the timestamps and the interleaving of both directions
// come out of the model rather than being typed in. Timers tick every 1 ms
// at a per-host phase, and the timeout rules of spec section 6 (RESEND at
// the 5th silent tick, NEED_ACK two ticks after the response is out) are
// counted in those ticks.
#include "uhoma-trace/script.h"

#include <algorithm>
#include <array>
#include <climits>
#include <deque>
#include <optional>

#include "wire/codec.h"
#include "wire/ids.h"
#include "wire/priority.h"
#include "wire/tso.h"

namespace uhoma::trace {

namespace {

using wire::Ack;
using wire::Header;

constexpr std::int64_t us = 1'000;
constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t one_way_ns = 4 * us;
constexpr std::int64_t tick_ns = 1 * ms;
constexpr std::size_t link_framing = 14 + 4 + 8 + 12;  // Ethernet header, FCS, preamble, gap
constexpr std::uint8_t control_priority = wire::num_priorities - 1;

constexpr std::uint32_t unsched_bytes = 40'000;
constexpr std::uint32_t grant_window = 40'000;  // a fixed `window` sysctl
constexpr std::size_t grant_batch = 8;          // DATA packets per GRO batch
constexpr std::size_t mtu = 1500;

// Serialisation time of an IP packet of `ip_bytes` at 10 Gbit/s.
std::int64_t wire_time_ns(std::size_t ip_bytes) {
    return static_cast<std::int64_t>((ip_bytes + link_framing) * 8 / 10);
}

// A receiver's unscheduled cutoffs as the sender sees them (spec 4).
struct PeerCutoffs {
    // Before any CUTOFFS: everything unscheduled at level 6, version 0.
    std::array<std::uint32_t, wire::num_priorities> table = {0, 0, 0, 0, 0, 0, INT_MAX, 0};
    std::uint16_t version = 0;

    std::uint8_t level(std::uint32_t message_length) const {
        for (std::size_t i = wire::num_priorities; i-- > 0;) {
            if (table[i] >= message_length) return static_cast<std::uint8_t>(i);
        }
        return 0;
    }
    void learn(const wire::CutoffsPacket& c) {
        table = c.unsched_cutoffs;
        table[0] = INT_MAX;
        version = c.cutoff_version;
    }
};

// Every host's own cutoffs: the defaults of spec 4, entry 0 forced to INT_MAX.
constexpr std::array<std::uint32_t, wire::num_priorities> default_cutoffs = {
    INT_MAX, 0, 0, 0, 1'000'000, 15'000, 2'800, 200};
constexpr std::uint16_t default_cutoff_version = 1;

struct Host {
    pcap::IpAddress address;
    std::uint16_t port = 0;
    std::int64_t tick_phase_ns = 0;   // timer ticks at phase + k ms
    bool captured_on_send = false;    // the capture runs on this host
    std::int64_t link_free_ns = 0;    // when its link can start the next packet
    PeerCutoffs peer_cutoffs;         // what it knows of the other side's cutoffs
};

Host make_host(pcap::IpAddress address, std::uint16_t port, std::int64_t tick_phase_ns,
               bool captured_on_send) {
    Host h;
    h.address = address;
    h.port = port;
    h.tick_phase_ns = tick_phase_ns;
    h.captured_on_send = captured_on_send;
    return h;
}

class Conversation {
public:
    explicit Conversation(const ScriptConfig& config)
        : t0_(config.start_ns),
          short_rpcs_(std::clamp<std::size_t>(config.short_rpcs, 1, max_short_rpcs)) {
        client_ = make_host(pcap::IpAddress::v4_from({10, 0, 0, 1}), 40000, 210 * us, true);
        server_ = make_host(pcap::IpAddress::v4_from({10, 0, 0, 2}), 99, 630 * us, false);
        std::array<std::uint8_t, 16> v6{0xfd};
        v6[15] = 1;
        client6_ = make_host(pcap::IpAddress::v6_from(v6), 40001, 210 * us, true);
        v6[15] = 2;
        server6_ = make_host(pcap::IpAddress::v6_from(v6), 99, 470 * us, false);
        body_.resize(wire::max_message_length);
        for (std::size_t i = 0; i < body_.size(); ++i) {
            body_[i] = static_cast<std::byte>("Homa request and response bytes. "[i % 33]);
        }
    }

    Expected<std::vector<TracePacket>, wire::Error> run() {
        std::int64_t t = t0_;
        t = long_request(t + 2 * us);
        t = short_batch(t + 30 * us);
        t = slow_server(t + 200 * us);
        t = lost_request(t + 100 * us);
        t = tso_request(t + 50 * us);
        t = ipv6_rpc(t + 80 * us);
        send(client_, server_, t + 100 * us, control_priority,
             wire::FreezePacket{Header{client_.port, server_.port, 0}});
        if (error_) return Unexpected{*error_};
        std::stable_sort(packets_.begin(), packets_.end(),
                         [](const TracePacket& a, const TracePacket& b) {
                             return a.time_ns < b.time_ns;
                         });
        return std::move(packets_);
    }

private:
    // --- Plumbing --------------------------------------------------------

    static std::size_t ip_header(const Host& h) { return h.address.v6 ? 40 : 20; }

    // Records `homa` leaving `from` at `t` (or later, when the link is busy)
    // and returns its arrival time at `to`. `wire_bytes` is the Homa byte
    // count the link carries (more than homa.size() for a TSO packet, whose
    // segments each get their own headers).
    std::int64_t transmit(Host& from, const Host& to, std::int64_t t, std::uint8_t priority,
                          std::vector<std::byte> homa, std::size_t wire_packets,
                          bool pcap_only) {
        const std::size_t bytes = homa.size() + wire_packets * ip_header(from);
        const std::int64_t start = std::max(t, from.link_free_ns);
        from.link_free_ns = start + wire_time_ns(bytes);
        const std::int64_t arrival = from.link_free_ns + one_way_ns;
        packets_.push_back(TracePacket{from.captured_on_send ? start : arrival, from.address,
                                       to.address, priority, std::move(homa), pcap_only});
        return arrival;
    }

    std::int64_t send(Host& from, const Host& to, std::int64_t t, std::uint8_t priority,
                      const wire::Packet& packet) {
        std::vector<std::byte> homa(wire::encoded_size(packet));
        auto written = wire::encode(packet, homa);
        if (!written && !error_) error_ = written.error();
        return transmit(from, to, t, priority, std::move(homa), 1,
                        from.address.v6 || to.address.v6);
    }

    // The n-th timer tick of `h` strictly after `t`.
    static std::int64_t tick_after(const Host& h, std::int64_t t, std::int64_t n) {
        const std::int64_t since = t - h.tick_phase_ns;
        const std::int64_t next = (since >= 0 ? since / tick_ns + 1 : 0) * tick_ns + h.tick_phase_ns;
        return next + (n - 1) * tick_ns;
    }

    std::uint64_t new_client_id() {
        next_id_ += 2;
        return next_id_;
    }

    wire::Bytes body(std::size_t offset, std::size_t length) const {
        return wire::Bytes{body_}.subspan(offset, length);
    }

    wire::DataPacket data(const Host& from, const Host& to, std::uint64_t id,
                          std::uint32_t length, std::uint32_t offset, std::size_t count) const {
        wire::DataPacket d;
        d.header = Header{from.port, to.port, id};
        d.message_length = length;
        d.incoming = std::min(length, unsched_bytes);
        d.cutoff_version = from.peer_cutoffs.version;
        d.offset = offset;
        d.payload = body(offset, count);
        return d;
    }

    wire::CutoffsPacket cutoffs(const Host& from, const Host& to, std::uint64_t id) const {
        return wire::CutoffsPacket{Header{from.port, to.port, id}, default_cutoffs,
                                   default_cutoff_version};
    }

    // `to` received DATA with a stale cutoff_version: it sends its cutoffs,
    // which `from` learns on arrival.
    std::int64_t exchange_cutoffs(Host& receiver, Host& sender, std::int64_t t, std::uint64_t id) {
        const wire::CutoffsPacket c = cutoffs(receiver, sender, id);
        const std::int64_t arrival = send(receiver, sender, t, control_priority, c);
        sender.peer_cutoffs.learn(c);
        return arrival;
    }

    // A single-packet message (anything up to one segment), unscheduled.
    std::int64_t send_short(Host& from, Host& to, std::int64_t t, std::uint64_t id,
                            std::uint32_t length, Ack ack = {}) {
        wire::DataPacket d = data(from, to, id, length, 0, length);
        d.ack = ack;
        return send(from, to, t, from.peer_cutoffs.level(length), d);
    }

    Ack pop_ack() {
        if (pending_acks_.empty()) return Ack{};
        const Ack a = pending_acks_.front();
        pending_acks_.pop_front();
        return a;
    }

    // --- The script ------------------------------------------------------

    // Step 1: 100,000 bytes with unscheduled bytes, CUTOFFS, GRANTs, a lost
    // packet, RESEND and a retransmission, then a 500-byte response.
    std::int64_t long_request(std::int64_t t) {
        const std::uint64_t id = new_client_id();
        const std::uint32_t length = 100'000;
        const std::size_t seg = wire::max_seg_data(mtu, false);
        const std::size_t lost_index = 40;  // a scheduled packet

        struct Control {
            std::int64_t arrival;
            std::optional<wire::GrantPacket> grant;      // one of the two
            std::optional<wire::CutoffsPacket> cutoffs;
        };
        std::deque<Control> inbox;  // at the client, in arrival order
        std::uint32_t next = 0;
        std::uint32_t granted = std::min(length, unsched_bytes);
        std::uint8_t sched_priority = 0;
        const auto deliver = [&](const Control& c) {
            if (c.grant) {
                granted = std::max(granted, std::min(length, c.grant->offset));
                sched_priority = c.grant->priority;
            }
            if (c.cutoffs) client_.peer_cutoffs.learn(*c.cutoffs);
        };
        // The server's view.
        std::uint32_t received = 0;
        std::uint32_t server_granted = granted;
        std::size_t batch = 0;
        bool cutoffs_sent = false;
        std::int64_t last_arrival = t;
        std::uint32_t lost_offset = 0;

        std::size_t index = 0;
        while (next < length) {
            while (!inbox.empty() && inbox.front().arrival <= t) {
                deliver(inbox.front());
                inbox.pop_front();
            }
            if (next >= granted) {  // wait for the next GRANT
                t = std::max(t, inbox.front().arrival);
                continue;
            }
            std::uint32_t count =
                std::min(static_cast<std::uint32_t>(seg), length - next);
            if (next < unsched_bytes) count = std::min(count, unsched_bytes - next);
            const std::uint8_t priority =
                next < unsched_bytes ? client_.peer_cutoffs.level(length) : sched_priority;
            const std::int64_t arrival =
                send(client_, server_, t, priority, data(client_, server_, id, length, next, count));
            t = client_.link_free_ns;
            if (index++ == lost_index) {
                lost_offset = next;
            } else {
                received += count;
                last_arrival = arrival;
                const Header reply{server_.port, client_.port, wire::server_id(id)};
                if (!cutoffs_sent) {  // the first DATA had cutoff_version 0
                    cutoffs_sent = true;
                    const wire::CutoffsPacket c = cutoffs(server_, client_, reply.sender_id);
                    inbox.push_back(Control{
                        send(server_, client_, arrival + us / 2, control_priority, c), {}, c});
                }
                if (++batch == grant_batch && server_granted < length) {
                    batch = 0;
                    server_granted = std::min(length, received + grant_window);
                    const wire::GrantPacket g{reply, server_granted, 0};
                    inbox.push_back(Control{
                        send(server_, client_, arrival + us / 2, control_priority, g), g, {}});
                }
            }
            next += count;
        }
        for (const Control& c : inbox) deliver(c);

        // The server's RPC falls silent with one gap; RESEND at the 5th tick.
        const std::uint32_t lost_length =
            static_cast<std::uint32_t>(std::min<std::size_t>(seg, length - lost_offset));
        const std::int64_t resend_at = tick_after(server_, last_arrival, 5);
        const std::int64_t resend_arrival = send(
            server_, client_, resend_at, control_priority,
            wire::ResendPacket{Header{server_.port, client_.port, wire::server_id(id)},
                               lost_offset, lost_length, control_priority});
        wire::DataPacket retx = data(client_, server_, id, length, lost_offset, lost_length);
        retx.retransmit = true;
        retx.incoming = lost_offset + lost_length;
        const std::int64_t complete =
            send(client_, server_, resend_arrival + us, control_priority, retx);

        // The response; the client then sends its own cutoffs.
        const std::int64_t response =
            send_short(server_, client_, complete + 15 * us, wire::server_id(id), 500);
        pending_acks_.push_back(Ack{id, server_.port});
        exchange_cutoffs(client_, server_, response + us / 2, id);
        return response + us;
    }

    // Step 2: a batch of short RPCs, then NEED_ACK and ACK.
    std::int64_t short_batch(std::int64_t t) {
        static constexpr std::array<std::uint32_t, max_short_rpcs> requests = {150, 300, 1200,
                                                                               80, 2500, 600};
        static constexpr std::array<std::uint32_t, max_short_rpcs> responses = {1000, 150, 90,
                                                                                1400, 700, 64};
        struct Done {
            std::uint64_t id;
            std::int64_t response_sent;
        };
        std::vector<Done> done;
        for (std::size_t k = 0; k < short_rpcs_; ++k) {
            const std::uint64_t id = new_client_id();
            const Ack ack = k == 0 ? pop_ack() : Ack{};
            const std::int64_t arrival =
                send_short(client_, server_, t + static_cast<std::int64_t>(k) * us, id,
                           requests[k], ack);
            const std::int64_t start = std::max(arrival + 3 * us, server_.link_free_ns);
            send_short(server_, client_, start, wire::server_id(id), responses[k]);
            pending_acks_.push_back(Ack{id, server_.port});
            done.push_back(Done{id, start});
        }
        std::int64_t last = t;
        for (std::size_t k = 0; k < done.size(); ++k) {
            // Note the tick after the response is out; NEED_ACK two ticks later.
            const std::int64_t need_at =
                tick_after(server_, done[k].response_sent, 3) + static_cast<std::int64_t>(k) * 200;
            const std::int64_t need_arrival =
                send(server_, client_, need_at, control_priority,
                     wire::NeedAckPacket{Header{server_.port, client_.port,
                                                wire::server_id(done[k].id)}});
            wire::AckPacket a{Header{client_.port, server_.port, done[k].id}};
            std::erase(pending_acks_, Ack{done[k].id, server_.port});
            while (!pending_acks_.empty() && a.num_acks < wire::max_acks_per_packet) {
                a.acks[a.num_acks++] = pop_ack();
            }
            last = send(client_, server_, need_arrival + us, control_priority, a);
        }
        return last;
    }

    // Step 3: the server takes 7.4 ms; the client's RESEND gets BUSY.
    std::int64_t slow_server(std::int64_t t) {
        const std::uint64_t id = new_client_id();
        const std::int64_t sent = t;
        const std::int64_t arrival = send_short(client_, server_, t, id, 1000, pop_ack());
        const std::int64_t resend_at = tick_after(client_, sent, 5);
        const std::int64_t resend_arrival =
            send(client_, server_, resend_at, control_priority,
                 wire::ResendPacket{Header{client_.port, server_.port, id}, 0,
                                    wire::resend_everything, control_priority});
        send(server_, client_, resend_arrival + us, control_priority,
             wire::BusyPacket{Header{server_.port, client_.port, wire::server_id(id)}});
        const std::int64_t response =
            send_short(server_, client_, arrival + 7'400 * us, wire::server_id(id), 1200);
        pending_acks_.push_back(Ack{id, server_.port});
        return response;
    }

    // Step 4: the request is lost; RESEND, RPC_UNKNOWN, the request again.
    std::int64_t lost_request(std::int64_t t) {
        const std::uint64_t id = new_client_id();
        const std::uint32_t length = 200;
        const Ack ack = pop_ack();
        send_short(client_, server_, t, id, length, ack);  // never arrives
        const std::int64_t resend_arrival =
            send(client_, server_, tick_after(client_, t, 5), control_priority,
                 wire::ResendPacket{Header{client_.port, server_.port, id}, 0,
                                    wire::resend_everything, control_priority});
        const std::int64_t unknown_arrival =
            send(server_, client_, resend_arrival + us, control_priority,
                 wire::RpcUnknownPacket{Header{server_.port, client_.port, wire::server_id(id)}});
        wire::DataPacket again = data(client_, server_, id, length, 0, length);
        again.ack = ack;  // the retransmission copies the original header
        again.retransmit = true;
        const std::int64_t arrival = send(client_, server_, unknown_arrival + us,
                                          client_.peer_cutoffs.level(length), again);
        const std::int64_t response =
            send_short(server_, client_, arrival + 4 * us, wire::server_id(id), 100);
        pending_acks_.push_back(Ack{id, server_.port});
        return response;
    }

    // Step 5a: one 4,000-byte request handed to the NIC as a 3-segment TSO packet.
    std::int64_t tso_request(std::int64_t t) {
        const std::uint64_t id = new_client_id();
        const std::uint32_t length = 4000;
        const std::size_t seg = wire::max_seg_data(mtu, false);
        wire::DataPacket fields = data(client_, server_, id, length, 0, 0);
        fields.ack = pop_ack();
        std::vector<wire::Segment> segments;
        for (std::size_t offset = 0; offset < length; offset += seg) {
            segments.push_back(wire::Segment{static_cast<std::uint32_t>(offset),
                                             body(offset, std::min<std::size_t>(seg, length - offset))});
        }
        std::vector<std::byte> homa(wire::multi_segment_size(segments));
        auto written = wire::encode_multi_segment_data(fields, segments, seg, homa);
        if (!written && !error_) error_ = written.error();
        const std::int64_t arrival = transmit(client_, server_, t, client_.peer_cutoffs.level(length),
                                              std::move(homa), segments.size(), true);
        const std::int64_t response =
            send_short(server_, client_, arrival + 5 * us, wire::server_id(id), 100);
        pending_acks_.push_back(Ack{id, server_.port});
        return response;
    }

    // Step 5b: a 3,000-byte RPC over IPv6 with a peer that has no cutoffs yet.
    std::int64_t ipv6_rpc(std::int64_t t) {
        const std::uint64_t id = new_client_id();
        const std::uint32_t length = 3000;
        const std::size_t seg = wire::max_seg_data(mtu, true);
        const std::uint8_t priority = client6_.peer_cutoffs.level(length);
        const std::uint16_t version = client6_.peer_cutoffs.version;
        std::int64_t last = t;
        for (std::uint32_t offset = 0; offset < length; offset += static_cast<std::uint32_t>(seg)) {
            const std::uint32_t count =
                static_cast<std::uint32_t>(std::min<std::size_t>(seg, length - offset));
            wire::DataPacket d = data(client6_, server6_, id, length, offset, count);
            d.cutoff_version = version;
            last = send(client6_, server6_, t, priority, d);
            if (offset == 0) exchange_cutoffs(server6_, client6_, last + us / 2, wire::server_id(id));
        }
        const std::int64_t response =
            send_short(server6_, client6_, last + 6 * us, wire::server_id(id), 200);
        exchange_cutoffs(client6_, server6_, response + us / 2, id);
        return response;
    }

    std::int64_t t0_;
    std::size_t short_rpcs_;
    Host client_;
    Host server_;
    Host client6_;
    Host server6_;
    std::vector<std::byte> body_;
    std::uint64_t next_id_ = 0;
    std::deque<Ack> pending_acks_;  // the client's finished RPCs not yet acked
    std::vector<TracePacket> packets_;
    std::optional<wire::Error> error_;
};

}  // namespace

Expected<std::vector<TracePacket>, wire::Error> build_script(const ScriptConfig& config) {
    return Conversation(config).run();
}

}  // namespace uhoma::trace
