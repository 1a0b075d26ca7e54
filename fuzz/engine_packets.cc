// Fuzz target: the protocol engine driven by arbitrary packet sequences,
// timer expiries and application commands.
//
// Setup. One engine at 10.0.0.1 with a server socket bound to port 99 and a
// client socket (automatic port 0x8000), each with a receive region of the
// minimum size, so buffer exhaustion is reachable. The client starts four
// RPCs to 10.0.0.2:99 (100, 1500, 20000 and 150000 bytes; the last one is
// above unsched_bytes), ids 2, 4, 6 and 8, so client-side state exists from
// the first operation on.
//
// Input format (fuzz/make_engine_seeds.py writes seeds in it):
//   byte 0: configuration variant (config_variant(); 0-3 are Config{}).
//   then operations, each a 1-byte opcode (opcode % 16) and its arguments;
//   missing argument bytes read as 0, so every input is valid:
//    0 raw packet: src(1) len(2, BE) bytes(len, clamped to what remains),
//      handed to handle_packet as they are;
//    1, 2, 15 structured packet: a VALID packet built with wire::encode from
//      fuzz-chosen fields (build_packet), ids and ports near the ones in use;
//    3 DATA burst: like 1 but DATA only, count(1) consecutive segments;
//    4 advance the clock: unit(1) amount(2), at most 200 ms, then run due
//      timers;
//    5 step: count(1) times jump to next_deadline() (at most 200 ms ahead)
//      and run the timer (until kMaxTimerRuns timer runs in the input);
//    6 loopback: count(1) drop(1): re-inject the oldest packets the engine
//      sent, each with its destination address as the source, dropping
//      some. The engine then talks to itself (our client's requests reach our
//      server, whose responses reach our client), so whole RPCs with loss
//      and retransmission happen with a few input bytes;
//    7 run the loopback network: rounds(1): deliver everything queued, or
//      jump to the next deadline when nothing is queued;
//    8 receive (id 0) on socket(1);
//    9 send_reply: pick(1) length(1);
//   10 release_bpages of a received message: pick(1);
//   11 abort: id(1) error(1);
//   12 send_request: length(1) destination(1) flags(1);
//   13 receive a private client RPC: id(1);
//   14 mode(1) % 8: loopback queue tricks (0-1 duplicate the head, 2-3
//      reverse, 4-5 clear the queue), or close a socket with all its state
//      and open a new one in its place (6 server, 7 client, without a
//      receive region if mode >= 128; restart_socket).
//
// Properties checked after every operation (a violation traps, which
// libFuzzer reports as a crash):
//   * every packet from poll_transmit decodes with wire::decode, has a
//     priority 0..7, fits the MTU (minus the IP header), has destination
//     port == its dport and sport == one of our ports, and DATA carries the
//     bytes of the message it belongs to (every message the harness sends is
//     a prefix of one pseudo-random pattern, so payload == pattern[offset..]);
//   * a DATA payload is handed out by reference (Transmit::keep), not
//     copied: the payloads of the last drain, held as a runtime holds them
//     while it sends outside the engine lock, still equal the pattern after
//     the next operation (which may abort the RPC or close its socket);
//   * the engine never fails to build a packet (control_xmit_errors and
//     data_xmit_errors stay 0: the encoder rejects what the decoder would);
//   * one poll_transmit drain ends within 100,000 packets; a deadline that
//     has passed is cleared by handle_timeout within 64 calls, and
//     next_deadline() >= now once handle_timeout ran and poll_transmit was
//     drained (before the drain, the pacer's deadline may lie in the past);
//   * rpc_count() < 10000; receive_bytes_in_use() never exceeds the regions
//     (no underflow) and is at least the bytes the application holds;
//   * a received message has the bpages its length needs, each inside the
//     region, whole ones bpage-aligned, none overlapping another message
//     the application holds; while no arbitrary DATA bytes were delivered
//     (raw packets can carry any payload), its bytes equal the pattern; the
//     engine does not change a held message's bytes before release, and
//     release_bpages of a received message's offsets succeeds; readable()
//     agrees with what receive(socket, 0) returns;
//   * no GRANT or RESEND for a client RPC the application aborted with an
//     error (the RPC only waits for receive() to report the error).
// At the end every message is received and released, every client RPC
// aborted and every server RPC acknowledged (an ACK for each request the
// harness delivered), after which the engine must hold no RPC and no
// receive-buffer bytes.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "engine/buffer_pool.h"
#include "engine/engine.h"
#include "wire/codec.h"
#include "wire/ids.h"

namespace {

using namespace uhoma;
using engine::Address;
using engine::Endpoint;
using engine::Instant;
using engine::SocketId;

void require(bool condition) {
    if (!condition) __builtin_trap();
}

constexpr std::uint16_t kServerPort = 99;
constexpr std::size_t kMaxDrain = 100000;
constexpr std::size_t kMaxRpcs = 10000;
constexpr std::size_t kLoopbackCap = 4096;
// Steps (op 5, and op 7 when nothing is queued) stop after this many
// handle_timeout calls in one input: enough for any timeout (timeout_ticks
// is 100), and it keeps a run of step ops from making one input slow.
constexpr std::size_t kMaxTimerRuns = 2000;
constexpr engine::Duration kMaxAdvance = std::chrono::milliseconds(200);

// --- Input reader ------------------------------------------------------------

class Reader {
  public:
    Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool empty() const { return pos_ >= size_; }
    std::size_t remaining() const { return size_ - pos_; }
    std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint16_t u16() {
        const auto hi = static_cast<std::uint16_t>(u8() << 8);
        return static_cast<std::uint16_t>(hi | u8());
    }
    std::uint32_t u24() {
        const std::uint32_t hi = std::uint32_t{u16()} << 8;
        return hi | u8();
    }
    std::uint32_t u32() {
        const std::uint32_t hi = std::uint32_t{u16()} << 16;
        return hi | u16();
    }
    std::span<const std::uint8_t> bytes(std::size_t n) {
        n = std::min(n, remaining());
        std::span<const std::uint8_t> out(data_ + pos_, n);
        pos_ += n;
        return out;
    }

  private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// --- Fixed data ----------------------------------------------------------------

// Every outgoing message is a prefix of this pattern (no short period, so a
// byte from the wrong offset is caught).
const std::vector<std::byte>& pattern() {
    static const std::vector<std::byte> bytes = [] {
        std::vector<std::byte> b(wire::max_message_length);
        for (std::size_t i = 0; i < b.size(); ++i) {
            std::uint32_t x = static_cast<std::uint32_t>(i) * 0x9E3779B1u;
            x ^= x >> 15;
            x *= 0x85EBCA6Bu;
            x ^= x >> 13;
            b[i] = static_cast<std::byte>(x);
        }
        return b;
    }();
    return bytes;
}

bool matches_pattern(std::uint32_t offset, std::span<const std::byte> bytes) {
    const auto& p = pattern();
    if (std::uint64_t{offset} + bytes.size() > p.size()) return false;
    return bytes.empty() || std::memcmp(bytes.data(), p.data() + offset, bytes.size()) == 0;
}

// Peers: four IPv4 hosts and one IPv6 host.
Address peer_address(std::uint8_t selector) {
    const std::uint8_t i = selector % 5;
    if (i < 4) return Address::ipv4(10, 0, 0, static_cast<std::uint8_t>(2 + i));
    Address a;
    a.bytes = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    return a;
}

constexpr std::array<std::uint32_t, 16> kLengths = {1,      100,    1000,   1424,   1425,  2848,
                                                    5000,   39999,  40000,  40001,  65536, 65537,
                                                    100000, 200000, 999999, 1000000};

std::uint32_t pick_length(Reader& in) {
    const std::uint8_t sel = in.u8();
    if ((sel & 0x10) != 0) return 1 + in.u24() % wire::max_message_length;
    return kLengths[sel % kLengths.size()];
}

std::uint64_t client_id_for(std::uint8_t selector) {
    return 2 + 2 * static_cast<std::uint64_t>(selector % 32);
}

// The region every socket gets: minimum size, allocated once per process.
std::span<std::byte> region(std::size_t which) {
    static std::vector<std::byte> regions[2] = {
        std::vector<std::byte>(engine::BufferPool::minimum_region_bytes(1)),
        std::vector<std::byte>(engine::BufferPool::minimum_region_bytes(1))};
    return regions[which];
}

engine::Config config_variant(std::uint8_t selector) {
    engine::Config c;
    switch (selector % 8) {
        case 4:  // no throttling
            c.flags = engine::Config::dont_throttle_flag;
            break;
        case 5:  // tight grants: small windows, two active messages; idle
                 // peers are freed at every tick
            c.unsched_bytes = 5000;
            c.max_overcommit = 2;
            c.window = 10000;
            c.max_incoming = 30000;
            c.fifo_grant_increment = 10000;
            c.peer_gc_threshold = 1;
            c.peer_idle_secs_max = 0;
            break;
        case 6:  // four levels, a non-identity map, no FIFO grants; cutoffs
                 // recomputed from received lengths every millisecond
            c.num_priorities = 4;
            c.unsched_cutoffs = {0, 1000000, 2800, 200, 0, 0, 0, 0};
            c.priority_map = {0, 2, 4, 7, 7, 7, 7, 7};
            c.grant_fifo_fraction = 0;
            c.cutoff_interval_ms = 1;
            c.cutoff_min_messages = 2;
            c.cutoff_min_drift_percent = 0;
            break;
        case 7:  // one level, small MTU, slow link, fast timers
            c.num_priorities = 1;
            c.mtu = 576;
            c.link_mbps = 1000;
            c.defer_min_bytes = 0;
            c.tick_usecs = 100;
            c.resend_ticks = 2;
            c.resend_interval = 1;
            c.timeout_ticks = 8;
            c.request_ack_ticks = 1;
            c.bpage_lease_usecs = 0;
            break;
        default:
            break;
    }
    return c;
}

// --- The harness ----------------------------------------------------------------

struct SentCopy {
    Endpoint destination;
    std::vector<std::byte> bytes;
};

struct Held {
    std::size_t socket = 0;  // 0 server, 1 client
    std::uint32_t length = 0;
    std::vector<std::uint32_t> offsets;
    std::vector<std::byte> snapshot;
};

struct PendingReply {
    Endpoint client;
    engine::RpcId id = 0;
};

class Harness {
  public:
    explicit Harness(std::uint8_t variant) : config_(config_variant(variant)) {
        engine::EngineOptions options;
        options.local_address = Address::ipv4(10, 0, 0, 1);
        options.first_client_id = 2;
        auto created = engine::Engine::create(config_, options);
        require(created.has_value());
        engine_ = std::move(*created);
        // The client first, so it gets the first automatic port (0x8000).
        auto cli = engine_->open_socket();
        require(cli.has_value());
        sockets_[1] = *cli;
        auto srv = engine_->open_socket();
        require(srv.has_value());
        sockets_[0] = *srv;
        require(engine_->bind(sockets_[0], kServerPort).has_value());
        client_port_ = engine_->port(sockets_[1]).value_or(0);
        require(client_port_ == wire::min_client_port);
        our_ports_ = {kServerPort, client_port_};
        for (std::size_t s = 0; s < 2; ++s) {
            require(engine_->set_receive_buffer(sockets_[s], region(s), now_).has_value());
        }
        for (std::uint32_t length : {100u, 1500u, 20000u, 150000u}) {
            send_request(length, Endpoint{Address::ipv4(10, 0, 0, 2), kServerPort}, false);
        }
        settle();
    }

    void run(Reader& in) {
        while (!in.empty()) {
            const std::uint8_t op = in.u8();
            switch (op % 16) {
                case 0:
                    op_raw(in);
                    break;
                case 1:
                case 2:
                case 15:
                    op_structured(in, false);
                    break;
                case 3:
                    op_structured(in, true);
                    break;
                case 4:
                    op_advance(in);
                    break;
                case 5:
                    op_step(in);
                    break;
                case 6:
                    op_loopback(in);
                    break;
                case 7:
                    op_network(in);
                    break;
                case 8:
                    op_receive(in.u8(), 0);
                    break;
                case 9:
                    op_reply(in);
                    break;
                case 10:
                    op_release(in);
                    break;
                case 11:
                    op_abort(in);
                    break;
                case 12:
                    op_send(in);
                    break;
                case 13:
                    op_receive(1, client_id_for(in.u8()));
                    break;
                case 14:
                    op_queue(in);
                    break;
            }
            settle();
        }
        finish();
    }

  private:
    // --- Checks ---------------------------------------------------------------

    // `bytes` is packet_bytes(t).
    void check_transmit(const engine::Transmit& t, std::span<const std::byte> bytes) {
        const bool ipv6 = !t.destination.address.is_ipv4();
        require(t.priority < 8);
        require(t.size() <= config_.mtu - (ipv6 ? 40u : 20u));
        // Only DATA carries a payload apart from its header, and only DATA
        // needs its message kept alive.
        require(t.payload.empty() == (t.keep == nullptr));
        auto decoded = wire::decode(bytes);
        require(decoded.has_value());
        const wire::Header& h = wire::packet_header(*decoded);
        require(h.dport == t.destination.port);
        // Control packets queued before a socket closed still go out, with
        // the port the socket had.
        require(std::find(our_ports_.begin(), our_ports_.end(), h.sport) != our_ports_.end());
        require(wire::packet_type(*decoded) != wire::PacketType::freeze);
        if (const auto* d = std::get_if<wire::DataPacket>(&*decoded)) {
            require(matches_pattern(d->offset, d->payload));
        }
        // A client RPC the application aborted with an error is over for the
        // engine too: it must not ask its server for more (GRANT, RESEND).
        const auto type = wire::packet_type(*decoded);
        if (type == wire::PacketType::grant || type == wire::PacketType::resend) {
            require(!wire::is_client_id(h.sender_id) || failed_.count(h.sender_id) == 0);
        }
    }

    void drain() {
        // The payloads held since the last drain outlived whatever the
        // operation did to their RPCs.
        for (const HeldPayload& h : held_payloads_) require(matches_pattern(h.offset, h.payload));
        held_payloads_.clear();
        for (std::size_t n = 0;; ++n) {
            require(n <= kMaxDrain);  // poll_transmit must run dry
            auto t = engine_->poll_transmit(now_);
            if (!t) break;
            std::vector<std::byte> bytes = engine::packet_bytes(*t);
            check_transmit(*t, bytes);
            if (t->keep != nullptr && held_payloads_.size() < kMaxHeldPayloads) {
                const auto decoded = wire::decode(bytes);
                const auto& d = std::get<wire::DataPacket>(*decoded);
                held_payloads_.push_back(HeldPayload{d.offset, t->payload, t->keep});
            }
            if (loopback_.size() < kLoopbackCap) {
                loopback_.push_back(SentCopy{t->destination, std::move(bytes)});
            }
        }
        while (auto c = engine_->poll_completion()) {
            require(c->socket == sockets_[0] || c->socket == sockets_[1]);
        }
        const engine::Metrics& m = engine_->metrics();
        require(m.control_xmit_errors == 0);
        require(m.data_xmit_errors == 0);
        require(engine_->rpc_count() < kMaxRpcs);
        const std::uint64_t in_use = engine_->receive_bytes_in_use();
        require(in_use <= region(0).size() + region(1).size());
        std::uint64_t held = 0;
        for (const Held& h : held_) held += h.length;
        require(held <= in_use);
    }

    // Runs handle_timeout while a deadline has passed. The deadline is
    // checked after the drain: while the pacer holds sendable DATA and the
    // NIC estimate allows it, next_deadline() is the NIC's ready time, which
    // may lie in the past until poll_transmit has sent (pacer.h, ready_at).
    void run_timers() {
        for (int i = 0; engine_->next_deadline() <= now_; ++i) {
            require(i < 64);  // a deadline that handle_timeout never clears: a spin
            engine_->handle_timeout(now_);
            ++timer_runs_;
            drain();
            require(engine_->next_deadline() >= now_);
        }
    }

    void settle() {
        drain();
        run_timers();
    }

    // --- Packets in ---------------------------------------------------------------

    // Notes what the harness delivers: requests to the server socket (so the
    // end can acknowledge them) and DATA with payload other than the pattern.
    void deliver(std::span<const std::byte> bytes, const Address& source) {
        auto decoded = wire::decode(bytes);
        if (decoded) {
            if (const auto* d = std::get_if<wire::DataPacket>(&*decoded)) {
                if (!matches_pattern(d->offset, d->payload)) tainted_ = true;
                if (d->header.dport == kServerPort && wire::is_client_id(d->header.sender_id) &&
                    requests_.size() < kMaxRpcs) {
                    requests_.insert({source, d->header.sender_id});
                }
            }
        }
        engine_->handle_packet(bytes, source, now_);
        drain();
    }

    void op_raw(Reader& in) {
        const Address source = peer_address(in.u8());
        const std::uint16_t length = in.u16();
        auto bytes = in.bytes(length);
        // Copy: the engine must not depend on the input staying put.
        std::vector<std::byte> packet(bytes.size());
        if (!bytes.empty()) std::memcpy(packet.data(), bytes.data(), bytes.size());
        deliver(packet, source);
    }

    std::size_t seg_size(const Address& source) const {
        return wire::max_seg_data(config_.mtu, !source.is_ipv4());
    }

    // Header fields for a packet from a peer to one of our sockets. Toward the
    // client socket the peer is a server answering our client RPC `cid` (it
    // sends id cid|1); toward the server socket the peer is a client whose
    // RPC is `cid`.
    wire::Header make_header(std::uint8_t flags, std::uint64_t cid) const {
        wire::Header h;
        const bool to_client = (flags & 1) != 0;
        if (to_client) {
            h.sport = kServerPort;
            h.dport = client_port_;
            h.sender_id = wire::server_id(cid);
        } else {
            h.sport = static_cast<std::uint16_t>(wire::min_client_port + ((flags >> 1) & 1));
            h.dport = kServerPort;
            h.sender_id = cid;
        }
        switch ((flags >> 2) & 7) {
            case 6:
                h.sender_id ^= 1;
                break;  // the wrong direction
            case 7:
                h.dport = static_cast<std::uint16_t>(h.dport == kServerPort ? 98 : 0x8001);
                break;
            default:
                break;
        }
        return h;
    }

    std::uint32_t pick_offset(Reader& in, std::uint32_t length, std::size_t seg) {
        const std::uint8_t sel = in.u8();
        std::uint64_t offset = 0;
        if (sel >= 192) {
            offset = in.u24() % length;
        } else {
            offset = static_cast<std::uint64_t>(sel % 64) * seg;
            if (sel >= 128) offset += 40000 / seg * seg;  // past the default unscheduled part
        }
        if (offset >= length) offset = (length - 1) / seg * seg;
        return static_cast<std::uint32_t>(offset);
    }

    std::uint32_t pick_grant_offset(Reader& in) {
        static constexpr std::array<std::uint32_t, 8> kOffsets = {0,     1424,   40000,  41424,
                                                                  50000, 100000, 150000, 1000000};
        const std::uint8_t sel = in.u8();
        if (sel >= 128) return in.u24() % (wire::max_message_length + 1);
        return kOffsets[sel % kOffsets.size()];
    }

    std::uint32_t pick_cutoff(Reader& in) {
        static constexpr std::array<std::uint32_t, 7> kCutoffs = {0,       200,        2800, 15000,
                                                                  1000000, 0x7FFFFFFF, 1};
        const std::uint8_t sel = in.u8();
        if (sel >= 224) return in.u32();
        return kCutoffs[sel % kCutoffs.size()];
    }

    void send_encoded(const wire::Packet& packet, const Address& source) {
        std::array<std::byte, 2048> buffer{};
        auto size = wire::encode(packet, buffer);
        if (!size) return;  // the fields did not make a valid packet
        deliver(std::span<const std::byte>(buffer.data(), *size), source);
    }

    void op_structured(Reader& in, bool burst) {
        const std::uint8_t type_sel = in.u8();
        const std::uint8_t flags = in.u8();
        const std::uint8_t who = in.u8();
        const Address source = peer_address(who);
        const std::uint64_t cid = client_id_for(static_cast<std::uint8_t>(who >> 3));
        const wire::Header header = make_header(flags, cid);
        const auto type = burst ? 0 : type_sel % 9;
        switch (type) {
            case 0: {  // DATA
                wire::DataPacket d;
                d.header = header;
                d.message_length = pick_length(in);
                const std::size_t seg = seg_size(source);
                std::uint32_t offset = pick_offset(in, d.message_length, seg);
                const std::uint8_t len_sel = in.u8();
                const std::uint8_t incoming_sel = in.u8();
                const std::uint8_t ack_sel = in.u8();
                const std::uint8_t misc = in.u8();
                switch (incoming_sel % 4) {
                    case 0:
                        d.incoming = d.message_length;
                        break;
                    case 1:
                        d.incoming = std::min(d.message_length, config_.unsched_bytes);
                        break;
                    case 2:
                        d.incoming = std::min<std::uint32_t>(d.message_length, offset + 1);
                        break;
                    default:
                        d.incoming = in.u24();
                        break;
                }
                if ((ack_sel & 1) != 0) {
                    d.ack = wire::Ack{client_id_for(static_cast<std::uint8_t>(ack_sel >> 1)),
                                      (ack_sel & 0x80) != 0 ? client_port_ : kServerPort};
                }
                d.cutoff_version = static_cast<std::uint16_t>(misc % 4 == 3 ? in.u16() : misc % 4);
                d.retransmit = (misc & 4) != 0;
                const std::size_t count = burst ? 1 + type_sel % 64 : 1;
                for (std::size_t i = 0; i < count && offset < d.message_length; ++i) {
                    std::size_t len = std::min<std::size_t>(seg, d.message_length - offset);
                    if (!burst && len_sel >= 200) {
                        len = std::min<std::size_t>(len, std::size_t{len_sel} - 199);
                    }
                    d.offset = offset;
                    d.payload = std::span<const std::byte>(pattern()).subspan(offset, len);
                    send_encoded(d, source);
                    offset += static_cast<std::uint32_t>(len);
                }
                break;
            }
            case 1: {
                wire::GrantPacket g;
                g.header = header;
                g.offset = pick_grant_offset(in);
                g.priority = static_cast<std::uint8_t>(in.u8() % 8);
                send_encoded(g, source);
                break;
            }
            case 2: {
                wire::ResendPacket r;
                r.header = header;
                r.offset = pick_grant_offset(in);
                const std::uint8_t sel = in.u8();
                switch (sel % 5) {
                    case 0:
                        r.length = wire::resend_everything;
                        break;
                    case 1:
                        r.length = 1424;
                        break;
                    case 2:
                        r.length = 0;
                        break;
                    case 3:
                        r.length = 40000;
                        break;
                    default:
                        r.length = in.u24();
                        break;
                }
                r.priority = static_cast<std::uint8_t>((sel >> 3) % 8);
                send_encoded(r, source);
                break;
            }
            case 3:
                send_encoded(wire::RpcUnknownPacket{header}, source);
                break;
            case 4:
                send_encoded(wire::BusyPacket{header}, source);
                break;
            case 5: {
                wire::CutoffsPacket c;
                c.header = header;
                for (auto& cutoff : c.unsched_cutoffs) cutoff = pick_cutoff(in);
                c.cutoff_version = in.u16();
                send_encoded(c, source);
                break;
            }
            case 6:
                send_encoded(wire::FreezePacket{header}, source);
                break;
            case 7:
                send_encoded(wire::NeedAckPacket{header}, source);
                break;
            default: {
                wire::AckPacket a;
                a.header = header;
                // Only clients send ACK: name a client RPC of the peer.
                a.header.sender_id = wire::client_id(header.sender_id);
                a.num_acks = static_cast<std::uint16_t>(in.u8() % 6);
                for (std::size_t i = 0; i < a.num_acks; ++i) {
                    const std::uint8_t sel = in.u8();
                    a.acks[i] = wire::Ack{client_id_for(sel),
                                          (sel & 0x80) != 0 ? client_port_ : kServerPort};
                }
                send_encoded(a, source);
                break;
            }
        }
    }

    // --- Time -------------------------------------------------------------------

    void advance(engine::Duration by) {
        now_ += std::min(by, kMaxAdvance);
        run_timers();
    }

    void op_advance(Reader& in) {
        const std::uint8_t unit = in.u8();
        const std::uint16_t amount = in.u16();
        static constexpr std::array<std::int64_t, 4> kUnitNs = {1, 1000, 100000, 1000000};
        advance(engine::Duration(std::int64_t{amount} * kUnitNs[unit % 4]));
    }

    // Jumps to the next deadline (at most kMaxAdvance ahead); false if none.
    bool step() {
        if (timer_runs_ >= kMaxTimerRuns) return false;  // keeps one input fast
        const Instant deadline = engine_->next_deadline();
        if (deadline == engine::never) return false;
        if (deadline > now_)
            advance(std::min(deadline - now_, kMaxAdvance));
        else
            run_timers();
        return true;
    }

    void op_step(Reader& in) {
        const int count = 1 + in.u8();
        for (int i = 0; i < count && step(); ++i) {
        }
    }

    // --- The loopback network --------------------------------------------------------

    void reflect(const SentCopy& packet) { deliver(packet.bytes, packet.destination.address); }

    void op_loopback(Reader& in) {
        const std::size_t count = 1 + in.u8() % 64;
        const std::uint8_t drop = in.u8();
        for (std::size_t i = 0; i < count && !loopback_.empty(); ++i) {
            SentCopy packet = std::move(loopback_.front());
            loopback_.pop_front();
            // drop == 0 delivers everything; otherwise every (drop % 8 + 2)th
            // packet, counting from drop / 8 % 8, is lost.
            const std::size_t every = drop % 8 + 2;
            if (drop != 0 && i % every == (std::size_t{drop} / 8) % every) continue;
            reflect(packet);
        }
    }

    void op_network(Reader& in) {
        const int rounds = 1 + in.u8() % 64;
        for (int r = 0; r < rounds; ++r) {
            if (loopback_.empty()) {
                if (!step()) break;
                continue;
            }
            std::deque<SentCopy> batch;
            batch.swap(loopback_);
            advance(std::chrono::microseconds(5));  // one-way delay
            for (const SentCopy& packet : batch) reflect(packet);
        }
    }

    void op_queue(Reader& in) {
        const std::uint8_t mode = in.u8();
        switch (mode % 8) {
            case 0:
            case 1:
                if (!loopback_.empty() && loopback_.size() < kLoopbackCap) {
                    loopback_.push_back(loopback_.front());
                }
                break;
            case 2:
            case 3:
                std::reverse(loopback_.begin(), loopback_.end());
                break;
            case 4:
            case 5:
                loopback_.clear();
                break;
            case 6:
                restart_socket(0, true);
                break;
            default:
                restart_socket(1, (mode & 0x80) == 0);
                break;
        }
    }

    // Closes a socket with whatever RPCs, queued packets and waiters it has,
    // and opens a new one in its place (the server bound to 99 again, the
    // client on the next automatic port) over the same region, or for the
    // client optionally with none (its RPCs then fail with ENOMEM when the
    // response starts). Messages the
    // application held from the old socket are simply forgotten: their
    // buffers went away with the old pool.
    void restart_socket(std::size_t s, bool with_region) {
        engine_->close_socket(sockets_[s], now_);
        require(!engine_->port(sockets_[s]).has_value());
        std::erase_if(held_, [s](const Held& h) { return h.socket == s; });
        if (s == 0) pending_.clear();
        drain();
        auto id = engine_->open_socket();
        require(id.has_value());
        sockets_[s] = *id;
        if (s == 0) {
            require(engine_->bind(sockets_[s], kServerPort).has_value());
        } else {
            client_port_ = engine_->port(sockets_[s]).value_or(0);
            require(client_port_ >= wire::min_client_port);
            our_ports_.push_back(client_port_);
        }
        has_region_[s] = with_region;
        if (with_region) {
            require(engine_->set_receive_buffer(sockets_[s], region(s), now_).has_value());
        }
    }

    // --- Application ------------------------------------------------------------------

    // Copies message bytes out of the region (and checks where they lie).
    std::vector<std::byte> message_bytes(std::size_t socket, std::uint32_t length,
                                         const std::vector<std::uint32_t>& offsets) {
        const std::span<std::byte> r = region(socket);
        std::vector<std::byte> out(length);
        for (std::uint32_t x = 0; x < length;) {
            const std::uint32_t chunk = x >> engine::bpage_shift;
            const std::uint32_t n = std::min<std::uint32_t>(engine::bpage_size, length - x);
            require(chunk < offsets.size());
            require(std::uint64_t{offsets[chunk]} + n <= r.size());
            std::memcpy(out.data() + x, r.data() + offsets[chunk], n);
            x += n;
        }
        return out;
    }

    void take(std::size_t socket, const engine::ReceivedMessage& m) {
        require(m.num_bpages <= engine::max_bpages_in_message);
        if (m.error != 0) {
            require(m.length == 0 && m.num_bpages == 0);
            require(m.id != 0 && wire::is_client_id(m.id));
            return;
        }
        require(m.length >= 1 && m.length <= wire::max_message_length);
        const std::uint32_t needed = (m.length >> engine::bpage_shift) +
                                     ((m.length & (engine::bpage_size - 1)) != 0 ? 1u : 0u);
        require(m.num_bpages == needed);
        Held h;
        h.socket = socket;
        h.length = m.length;
        h.offsets.assign(m.bpage_offsets.begin(), m.bpage_offsets.begin() + m.num_bpages);
        // Chunks: whole bpages aligned, none overlapping a held message's.
        for (std::uint32_t k = 0; k < m.num_bpages; ++k) {
            const std::uint32_t start = h.offsets[k];
            const std::uint32_t len =
                std::min<std::uint32_t>(engine::bpage_size, m.length - k * engine::bpage_size);
            if (len == engine::bpage_size) require(start % engine::bpage_size == 0);
            for (const Held& other : held_) {
                if (other.socket != socket) continue;
                for (std::size_t j = 0; j < other.offsets.size(); ++j) {
                    const std::uint32_t ostart = other.offsets[j];
                    const std::uint32_t olen = std::min<std::uint32_t>(
                        engine::bpage_size,
                        other.length - static_cast<std::uint32_t>(j) * engine::bpage_size);
                    require(start + len <= ostart || ostart + olen <= start);
                }
            }
        }
        h.snapshot = message_bytes(socket, m.length, h.offsets);
        if (!tainted_) require(matches_pattern(0, h.snapshot));
        if (socket == 0) {
            require(wire::is_server_id(m.id));
            if (pending_.size() < 1024) pending_.push_back(PendingReply{m.peer, m.id});
        } else {
            require(wire::is_client_id(m.id));
        }
        held_.push_back(std::move(h));
    }

    void op_receive(std::uint8_t socket_sel, engine::RpcId id) {
        const std::size_t s = socket_sel % 2u;
        const bool readable = engine_->readable(sockets_[s]);
        auto r = engine_->receive(sockets_[s], id, now_);
        if (!r) {
            // id 0 fails only on a socket without a region.
            require(id != 0 || !has_region_[s]);
            return;
        }
        // readable() says whether receive(socket, 0) returns a message.
        if (id == 0) require(readable == r->has_value());
        if (*r) take(s, **r);
    }

    void release(std::size_t index) {
        Held h = std::move(held_[index]);
        held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(index));
        // Nothing wrote into the bytes the application owns.
        const std::span<std::byte> r = region(h.socket);
        for (std::uint32_t k = 0; k < h.offsets.size(); ++k) {
            const std::uint32_t x = k * engine::bpage_size;
            const std::uint32_t n = std::min<std::uint32_t>(engine::bpage_size, h.length - x);
            require(std::memcmp(r.data() + h.offsets[k], h.snapshot.data() + x, n) == 0);
        }
        require(engine_->release_bpages(sockets_[h.socket], h.offsets, now_).has_value());
    }

    void op_release(Reader& in) {
        const std::uint8_t sel = in.u8();
        if (held_.empty()) return;
        release(sel % held_.size());
    }

    void op_reply(Reader& in) {
        const std::uint8_t sel = in.u8();
        const std::uint32_t length = pick_length(in);
        if (pending_.empty()) return;
        const std::size_t i = sel % pending_.size();
        const PendingReply p = pending_[i];
        // Mostly reply once; sometimes keep the entry to reply twice.
        if ((sel & 0x80) == 0) pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        (void)engine_->send_reply(sockets_[0], p.client, p.id,
                                  std::span<const std::byte>(pattern()).first(length), now_);
    }

    void op_abort(Reader& in) {
        const std::uint8_t id_sel = in.u8();
        const std::uint8_t error_sel = in.u8();
        static constexpr std::array<int, 4> kErrors = {0, ETIMEDOUT, ECANCELED, ENOMEM};
        const engine::RpcId id = id_sel >= 224 ? 0 : client_id_for(id_sel);
        const int error = kErrors[error_sel % 4];
        if (!engine_->abort(sockets_[1], id, error, now_) || error == 0) return;
        if (id != 0) {
            failed_.insert(id);
        } else {
            failed_.insert(started_.begin(), started_.end());
        }
    }

    void send_request(std::uint32_t length, const Endpoint& destination, bool private_rpc) {
        auto id = engine_->send_request(sockets_[1], destination,
                                        std::span<const std::byte>(pattern()).first(length),
                                        cookie_++, private_rpc, now_);
        if (id) started_.insert(*id);
    }

    void op_send(Reader& in) {
        const std::uint32_t length = pick_length(in);
        const std::uint8_t dest = in.u8();
        const std::uint8_t flags = in.u8();
        std::uint16_t port = kServerPort;
        if ((flags & 6) == 6) port = 98;  // nobody there
        send_request(length, Endpoint{peer_address(dest), port}, (flags & 1) != 0);
    }

    // --- The end ------------------------------------------------------------------------

    // With ENGINE_PACKETS_TRACE set, one line of what an input achieved (to
    // check that seeds reach what they are meant to).
    void trace() const {
        static const bool enabled = std::getenv("ENGINE_PACKETS_TRACE") != nullptr;
        if (!enabled) return;
        const engine::Metrics& m = engine_->metrics();
        std::fprintf(stderr,
                     "t=%lldus rpcs=%zu req_rcvd=%llu resp_rcvd=%llu timeouts=%llu "
                     "no_bufs=%llu sent: DATA=%llu GRANT=%llu RESEND=%llu UNKNOWN=%llu "
                     "BUSY=%llu CUTOFFS=%llu NEED_ACK=%llu ACK=%llu resent=%llu tainted=%d\n",
                     static_cast<long long>(now_.time_since_epoch().count() / 1000),
                     engine_->rpc_count(), static_cast<unsigned long long>(m.requests_received),
                     static_cast<unsigned long long>(m.responses_received),
                     static_cast<unsigned long long>(m.rpc_timeouts),
                     static_cast<unsigned long long>(m.buffer_alloc_failures),
                     static_cast<unsigned long long>(m.packets_sent_DATA),
                     static_cast<unsigned long long>(m.packets_sent_GRANT),
                     static_cast<unsigned long long>(m.packets_sent_RESEND),
                     static_cast<unsigned long long>(m.packets_sent_RPC_UNKNOWN),
                     static_cast<unsigned long long>(m.packets_sent_BUSY),
                     static_cast<unsigned long long>(m.packets_sent_CUTOFFS),
                     static_cast<unsigned long long>(m.packets_sent_NEED_ACK),
                     static_cast<unsigned long long>(m.packets_sent_ACK),
                     static_cast<unsigned long long>(m.resent_packets), tainted_ ? 1 : 0);
    }

    void finish() {
        settle();
        trace();
        // Take and return everything.
        for (std::size_t s = 0; s < 2; ++s) {
            for (int guard = 0; guard < 100000; ++guard) {
                auto r = engine_->receive(sockets_[s], 0, now_);
                require(r.has_value() || !has_region_[s]);
                if (!r || !*r) break;
                take(s, **r);
            }
        }
        while (!held_.empty()) release(held_.size() - 1);
        settle();
        require(engine_->abort(sockets_[1], 0, 0, now_).has_value());
        settle();
        // Acknowledge every request the server may hold.
        for (const auto& [source, id] : requests_) {
            wire::AckPacket a;
            a.header = wire::Header{client_port_, kServerPort, id};
            send_encoded(a, source);
        }
        settle();
        // Requests completed after the first pass (buffers freed above) were
        // ended by the ACKs along with their buffers; only stragglers remain.
        for (std::size_t s = 0; s < 2; ++s) {
            for (int guard = 0; guard < 100000; ++guard) {
                auto r = engine_->receive(sockets_[s], 0, now_);
                require(r.has_value() || !has_region_[s]);
                if (!r || !*r) break;
                take(s, **r);
            }
        }
        while (!held_.empty()) release(held_.size() - 1);
        settle();
        require(engine_->abort(sockets_[1], 0, 0, now_).has_value());
        settle();
        if (engine_->rpc_count() == 0) require(engine_->receive_bytes_in_use() == 0);
        require(engine_->rpc_count() == 0);
    }

    engine::Config config_;
    std::unique_ptr<engine::Engine> engine_;
    std::array<SocketId, 2> sockets_{};  // 0: server (port 99), 1: client
    std::uint16_t client_port_ = 0;
    std::vector<std::uint16_t> our_ports_;
    std::array<bool, 2> has_region_ = {true, true};
    Instant now_{};
    std::uint64_t cookie_ = 1;
    std::deque<SentCopy> loopback_;
    struct HeldPayload {
        std::uint32_t offset;
        std::span<const std::byte> payload;
        std::shared_ptr<const void> keep;
    };
    static constexpr std::size_t kMaxHeldPayloads = 64;
    std::vector<HeldPayload> held_payloads_;  // DATA payloads of the last drain
    std::vector<Held> held_;
    std::vector<PendingReply> pending_;
    std::set<std::pair<Address, std::uint64_t>> requests_;  // (client address, client id)
    bool tainted_ = false;
    std::size_t timer_runs_ = 0;       // handle_timeout calls so far
    std::set<engine::RpcId> started_;  // client RPCs sent
    std::set<engine::RpcId> failed_;   // client RPCs aborted with an error
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Reader in(data, size);
    Harness harness(in.u8());
    harness.run(in);
    return 0;
}
