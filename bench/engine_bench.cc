// Microbenchmarks of the protocol engine: what one Engine costs per DATA
// packet it receives and per DATA packet it transmits, in steady state.
//
// Design notes
// ------------
// Each benchmark iteration is one packet (or, for short RPCs, one whole RPC),
// so the Time column reads directly as ns per packet. Packets are not made
// up by hand: a client and a server engine first run RPCs in lockstep
// (every packet delivered at once, no loss) and the client's DATA packets of
// the second RPC are kept as a template. The second one is used because by
// then the client has learned the server's cutoffs (cutoff_version matches)
// and carries a piggy-backed ack for the first RPC, as in steady state.
//
// Only the engine under test is timed. Between messages, with timing
// paused, the template is re-encoded for a fresh RPC id (a server remembers
// delivered requests, so ids cannot be reused), the application receives the
// completed message, releases its bpages and sends a short reply; the next
// message's piggy-backed ack ends the previous RPC, as with a real client.
// Timed steps do what a runtime does per packet: handle_packet, drain
// poll_transmit (GRANTs, replies), and handle_timeout when next_deadline()
// has come, so timer work is included, amortized. The virtual clock moves
// 480 ns per packet, about one 1500-byte packet at 25 Gb/s. Rigs are static
// and outlive a run, so repetitions continue the same steady state (RPC
// tables, tombstones, buffer pool) instead of starting cold.
//
// HOMA_FLAG_DONT_THROTTLE is set everywhere, so the NIC-queue estimate never
// holds packets back and poll_transmit always has the next DATA ready.
//
// What is in the numbers: receiving includes decoding and validating the
// packet and copying its payload into the receive region; transmitting
// includes encoding the packet header (the payload is handed out as a span
// of the message with a reference to it, not copied; the kernel copies it
// when the runtime sends). Not included: send_request's copy of the message and, for 1 MB
// messages, receive/release/reply (per message, untimed).
//
// Short RPCs (BM_server_short_rpc) are timed whole: request in, completion,
// receive, release_bpages, send_reply, reply out. The variants differ in the
// virtual time between requests, which sets how many tombstones the server
// holds (timeout_ticks * tick / interval: 100,000 at 1 us, 10,000 at 10 us).
//
// Rig::step() is noinline so that `valgrind --tool=callgrind` can report
// its inclusive instruction count and call count: instructions per packet.
// E.g. `valgrind --tool=callgrind --collect-atstart=no
// --toggle-collect='*::step()' --zero-before='benchmark::State::StartKeepRunning()'
// engine_bench --benchmark_filter=... --benchmark_min_time=0.05`, then the
// collected Ir over the step count (calls of Engine::next_deadline, once per
// step, in `callgrind_annotate --inclusive=yes --tree=calling`).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "wire/codec.h"
#include "wire/ids.h"

namespace {

using namespace std::chrono_literals;
using uhoma::engine::Address;
using uhoma::engine::Config;
using uhoma::engine::Duration;
using uhoma::engine::Endpoint;
using uhoma::engine::Engine;
using uhoma::engine::EngineOptions;
using uhoma::engine::Instant;
using uhoma::engine::Metrics;
using uhoma::engine::ReceivedMessage;
using uhoma::engine::RpcId;
using uhoma::engine::SocketId;
namespace wire = uhoma::wire;

constexpr std::uint16_t server_port = 99;
constexpr std::uint32_t large_message = 1'000'000;
constexpr std::uint32_t short_message = 100;
constexpr Duration packet_time = 480ns;  // one 1500-byte packet at 25 Gb/s

// Setup failures are bugs in the benchmark or the engine: stop loudly.
void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "engine_bench: %s\n", what);
        std::abort();
    }
}

Config base_config() {
    Config config;
    config.flags = Config::dont_throttle_flag;
    return config;
}

std::vector<std::byte> pattern(std::size_t length, std::uint32_t seed) {
    std::vector<std::byte> bytes(length);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : bytes) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::byte>(x >> 24);
    }
    return bytes;
}

struct Host {
    std::unique_ptr<Engine> engine;
    Address address;
    std::vector<std::byte> region;
    SocketId socket = 0;
    std::uint16_t port = 0;
    Endpoint endpoint() const { return Endpoint{address, port}; }
};

// A host with one socket: a server on `port`, or a client if port is 0.
Host make_host(const Config& config, std::uint8_t last_octet, std::uint16_t port,
               std::size_t region_bytes, Instant now) {
    Host h;
    h.address = Address::ipv4(10, 0, 0, last_octet);
    EngineOptions options;
    options.local_address = h.address;
    auto engine = Engine::create(config, options);
    check(engine.has_value(), "Engine::create failed");
    h.engine = std::move(engine.value());
    auto socket = h.engine->open_socket();
    check(socket.has_value(), "open_socket failed");
    h.socket = *socket;
    if (port != 0) check(h.engine->bind(h.socket, port).has_value(), "bind failed");
    h.port = h.engine->port(h.socket).value_or(0);
    if (region_bytes != 0) {
        h.region.resize(region_bytes);
        check(h.engine->set_receive_buffer(h.socket, h.region, now).has_value(),
              "set_receive_buffer failed");
    }
    return h;
}

bool is_data(std::span<const std::byte> bytes) {
    auto p = wire::decode(bytes);
    return p.has_value() && wire::packet_type(*p) == wire::PacketType::data;
}

// Moves packets between two engines, each delivered at once, until neither
// has anything to send. `record(from, bytes)` sees every packet.
template <typename F>
void exchange(Host& a, Host& b, Instant& now, F&& record) {
    bool progress = true;
    while (progress) {
        progress = false;
        for (int direction = 0; direction < 2; ++direction) {
            Host& from = direction == 0 ? a : b;
            Host& to = direction == 0 ? b : a;
            while (auto t = from.engine->poll_transmit(now)) {
                const std::vector<std::byte> bytes = uhoma::engine::packet_bytes(*t);  // untimed
                record(from, bytes);
                to.engine->handle_packet(bytes, from.address, now);
                progress = true;
            }
        }
        now += 1us;
    }
}

void release(Host& h, const ReceivedMessage& m, Instant now) {
    check(h.engine->release_bpages(h.socket, std::span(m.bpage_offsets.data(), m.num_bpages), now)
              .has_value(),
          "release_bpages failed");
}

// One RPC in lockstep; returns the client's DATA packets of the request.
std::vector<std::vector<std::byte>> run_rpc(Host& client, Host& server, std::uint32_t length,
                                            Instant& now) {
    std::vector<std::vector<std::byte>> request;
    const auto message = pattern(length, 1);
    check(client.engine->send_request(client.socket, server.endpoint(), message, 0, false, now)
              .has_value(),
          "send_request failed");
    exchange(client, server, now, [&](const Host& from, std::span<const std::byte> bytes) {
        if (&from == &client && is_data(bytes)) request.emplace_back(bytes.begin(), bytes.end());
    });
    auto got = server.engine->receive(server.socket, 0, now);
    check(got.has_value() && got->has_value() && (*got)->length == length,
          "capture: the server did not get the request");
    const ReceivedMessage m = **got;
    release(server, m, now);
    const auto reply = pattern(short_message, 2);
    check(server.engine->send_reply(server.socket, m.peer, m.id, reply, now).has_value(),
          "send_reply failed");
    exchange(client, server, now, [](const Host&, std::span<const std::byte>) {});
    auto response = client.engine->receive(client.socket, 0, now);
    check(response.has_value() && response->has_value() && (*response)->error == 0,
          "capture: the client did not get the response");
    release(client, **response, now);
    return request;
}

// The DATA packets of a client's request, decoded, to be re-encoded for
// other RPC ids.
struct RequestTemplate {
    Address client_address;
    std::vector<std::vector<std::byte>> bytes;  // owns the payloads
    std::vector<wire::DataPacket> packets;      // payloads point into `bytes`
    std::uint16_t cutoff_version = 0;
    std::size_t max_size = 0;
};

RequestTemplate capture_request(const Config& client_config, const Config& server_config,
                                std::uint32_t length) {
    Instant now{};
    Host server = make_host(server_config, 1, server_port, 4u << 20, now);
    Host client = make_host(client_config, 2, 0, 4u << 20, now);
    (void)run_rpc(client, server, length, now);  // learns cutoffs, queues an ack
    RequestTemplate t;
    t.client_address = client.address;
    t.bytes = run_rpc(client, server, length, now);
    bool acked = false;
    for (const auto& b : t.bytes) {
        auto p = wire::decode(b);
        check(p.has_value(), "capture: undecodable packet");
        t.packets.push_back(std::get<wire::DataPacket>(*p));
        acked |= !t.packets.back().ack.empty();
        t.max_size = std::max(t.max_size, b.size());
    }
    check(!t.packets.empty() && acked, "capture: no DATA, or no piggy-backed ack");
    t.cutoff_version = t.packets.front().cutoff_version;
    return t;
}

// Fixed-size slots for encoded packets, allocated once.
class PacketSlots {
  public:
    PacketSlots(std::size_t count, std::size_t slot_size)
        : storage_(count * slot_size), lengths_(count), slot_size_(slot_size) {}
    std::size_t size() const { return lengths_.size(); }
    std::span<const std::byte> operator[](std::size_t i) const {
        return std::span<const std::byte>(storage_).subspan(i * slot_size_, lengths_[i]);
    }
    void encode(std::size_t i, const wire::Packet& packet) {
        auto n = wire::encode(packet,
                              std::span<std::byte>(storage_).subspan(i * slot_size_, slot_size_));
        check(n.has_value(), "encode failed");
        lengths_[i] = *n;
    }

  private:
    std::vector<std::byte> storage_;
    std::vector<std::size_t> lengths_;
    std::size_t slot_size_;
};

// Writes the template's packets for client RPC `id` into slots [first, ...):
// packets that carried an ack now acknowledge `acked` (none if 0).
void encode_request(const RequestTemplate& t, RpcId id, RpcId acked, PacketSlots& slots,
                    std::size_t first) {
    for (std::size_t i = 0; i < t.packets.size(); ++i) {
        wire::DataPacket d = t.packets[i];
        d.header.sender_id = id;
        d.cutoff_version = t.cutoff_version;
        if (!d.ack.empty()) d.ack = acked != 0 ? wire::Ack{acked, server_port} : wire::Ack{};
        slots.encode(first + i, d);
    }
}

// Takes every packet the engine wants to send, as a runtime hands them to
// the NIC. Returns the version of a CUTOFFS packet among them, if any.
std::optional<std::uint16_t> drain(Engine& engine, Instant now) {
    std::optional<std::uint16_t> version;
    while (auto t = engine.poll_transmit(now)) {
        benchmark::DoNotOptimize(t->header.data());
        benchmark::DoNotOptimize(t->payload.data());
        // Control packets are all header.
        if (t->payload.empty() && t->header.size() == wire::cutoffs_size) {  // rare: decoding is fine
            auto p = wire::decode(t->header);
            if (p.has_value()) {
                if (const auto* c = std::get_if<wire::CutoffsPacket>(&*p)) {
                    version = c->cutoff_version;
                }
            }
        }
    }
    return version;
}

void service_timers(Engine& engine, Instant now) {
    if (now >= engine.next_deadline()) engine.handle_timeout(now);
}

// ---------------------------------------------------------------------------
// Receiving 1 MB requests at a server.

class LargeReceiveRig {
  public:
    // all_unscheduled: the sender's unsched_bytes is 1,000,000, so the
    // receiver grants nothing; otherwise defaults (40,000) and the receiver
    // runs the grant manager and sends GRANTs.
    explicit LargeReceiveRig(bool all_unscheduled)
        : template_(capture(all_unscheduled)),
          receiver_(make_host(base_config(), 1, server_port, 8u << 20, now_)),
          slots_(template_.packets.size(), template_.max_size) {
        prepare_message();
        for (int i = 0; i < 8; ++i) {  // warm up the RPC tables and the pool
            while (!message_done()) step();
            finish_message();
        }
    }

    [[gnu::noinline]] void step() {
        receiver_.engine->handle_packet(slots_[next_], template_.client_address, now_);
        if (auto v = drain(*receiver_.engine, now_)) template_.cutoff_version = *v;
        service_timers(*receiver_.engine, now_);
        now_ += packet_time;
        ++next_;
    }
    bool message_done() const { return next_ == slots_.size(); }

    // Untimed: the application takes the message and replies; the next
    // message's piggy-backed ack will end the RPC.
    void finish_message() {
        auto got = receiver_.engine->receive(receiver_.socket, 0, now_);
        check(got.has_value() && got->has_value() && (*got)->length == large_message,
              "the request did not complete");
        const ReceivedMessage m = **got;
        release(receiver_, m, now_);
        check(
            receiver_.engine->send_reply(receiver_.socket, m.peer, m.id, reply_, now_).has_value(),
            "send_reply failed");
        if (auto v = drain(*receiver_.engine, now_)) template_.cutoff_version = *v;
        check(receiver_.engine->rpc_count() <= 2, "server RPCs are not being acked");
        prepare_message();
    }

    std::size_t packets_per_message() const { return slots_.size(); }
    const Metrics& metrics() const { return receiver_.engine->metrics(); }

  private:
    static RequestTemplate capture(bool all_unscheduled) {
        Config sender = base_config();
        if (all_unscheduled) sender.unsched_bytes = large_message;
        return capture_request(sender, base_config(), large_message);
    }
    void prepare_message() {
        const RpcId acked = id_;
        id_ += 2;
        encode_request(template_, id_, acked, slots_, 0);
        next_ = 0;
    }

    Instant now_{};
    RequestTemplate template_;
    Host receiver_;
    PacketSlots slots_;
    std::size_t next_ = 0;
    RpcId id_ = 0;
    std::vector<std::byte> reply_ = pattern(short_message, 3);
};

void BM_receive_data_1MB(benchmark::State& state, bool all_unscheduled) {
    static std::map<bool, std::unique_ptr<LargeReceiveRig>> rigs;
    auto& rig = rigs[all_unscheduled];
    if (!rig) rig = std::make_unique<LargeReceiveRig>(all_unscheduled);
    const Metrics before = rig->metrics();
    for (auto _ : state) {
        rig->step();
        if (rig->message_done()) {
            state.PauseTiming();
            rig->finish_message();
            state.ResumeTiming();
        }
    }
    const Metrics& after = rig->metrics();
    const auto packets = static_cast<double>(after.packets_rcvd_DATA - before.packets_rcvd_DATA);
    state.SetItemsProcessed(state.iterations());
    state.counters["grants_per_pkt"] =
        static_cast<double>(after.packets_sent_GRANT - before.packets_sent_GRANT) / packets;
    state.counters["pkts_per_msg"] = static_cast<double>(rig->packets_per_message());
}
BENCHMARK_CAPTURE(BM_receive_data_1MB, scheduled, false);
BENCHMARK_CAPTURE(BM_receive_data_1MB, unscheduled, true);

// ---------------------------------------------------------------------------
// Short RPCs at a server: one 100-byte request packet in, one 100-byte
// response packet out, per iteration.

class ShortRpcServerRig {
  public:
    explicit ShortRpcServerRig(Duration interval)
        : interval_(interval),
          template_(capture_request(base_config(), base_config(), short_message)),
          server_(make_host(base_config(), 1, server_port, 4u << 20, now_)),
          slots_(batch, template_.max_size) {
        check(template_.packets.size() == 1, "a short request is one packet");
        prepare_batch();
        // Steady state needs timeout_ticks of tombstones (100 ms of RPCs).
        const auto warmup = static_cast<std::size_t>(120ms / interval_);
        for (std::size_t i = 0; i < warmup; ++i) {
            step();
            if (batch_done()) prepare_batch();
        }
        check(failures_ == 0, "warm-up RPCs failed");
    }

    [[gnu::noinline]] void step() {
        Engine& engine = *server_.engine;
        engine.handle_packet(slots_[next_], template_.client_address, now_);
        while (auto c = engine.poll_completion()) benchmark::DoNotOptimize(c->id);
        auto got = engine.receive(server_.socket, 0, now_);
        if (got.has_value() && got->has_value()) {
            const ReceivedMessage& m = **got;
            bool ok = engine
                          .release_bpages(server_.socket,
                                          std::span(m.bpage_offsets.data(), m.num_bpages), now_)
                          .has_value();
            ok &= engine.send_reply(server_.socket, m.peer, m.id, reply_, now_).has_value();
            if (!ok) ++failures_;
        } else {
            ++failures_;
        }
        if (auto v = drain(engine, now_)) template_.cutoff_version = *v;
        service_timers(engine, now_);
        now_ += interval_;
        ++next_;
    }
    bool batch_done() const { return next_ == slots_.size(); }

    // Untimed: the next `batch` requests, each acking the previous RPC.
    void prepare_batch() {
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            const RpcId acked = id_;
            id_ += 2;
            encode_request(template_, id_, acked, slots_, i);
        }
        next_ = 0;
    }

    std::uint64_t failures() const { return failures_; }
    const Engine& engine() const { return *server_.engine; }

  private:
    static constexpr std::size_t batch = 1024;
    Instant now_{};
    Duration interval_;
    RequestTemplate template_;
    Host server_;
    PacketSlots slots_;
    std::size_t next_ = 0;
    RpcId id_ = 0;
    std::uint64_t failures_ = 0;
    std::vector<std::byte> reply_ = pattern(short_message, 3);
};

// `interval`: virtual time between requests; it sets how many tombstones
// (delivered requests remembered for timeout_ticks) the server holds.
void BM_server_short_rpc(benchmark::State& state, Duration interval) {
    static std::map<Duration, std::unique_ptr<ShortRpcServerRig>> rigs;
    auto& rig = rigs[interval];
    if (!rig) rig = std::make_unique<ShortRpcServerRig>(interval);
    const std::uint64_t failures = rig->failures();
    for (auto _ : state) {
        rig->step();
        if (rig->batch_done()) {
            state.PauseTiming();
            rig->prepare_batch();
            state.ResumeTiming();
        }
    }
    if (rig->failures() != failures) state.SkipWithError("an RPC failed");
    state.SetItemsProcessed(state.iterations());
    state.counters["rpcs_in_table"] = static_cast<double>(rig->engine().rpc_count());
}
BENCHMARK_CAPTURE(BM_server_short_rpc, every_1us, Duration(1us));
BENCHMARK_CAPTURE(BM_server_short_rpc, every_10us, Duration(10us));

// ---------------------------------------------------------------------------
// Transmitting 1 MB requests from a client.

class LargeSendRig {
  public:
    // grant_per_packet: a GRANT (offset = end of the packet + 200,000, as a
    // lone receiver's dynamic window gives) arrives with every DATA sent, and
    // handling it is timed too. Otherwise one GRANT for the whole message
    // arrives, untimed, right after send_request.
    explicit LargeSendRig(bool grant_per_packet)
        : grant_per_packet_(grant_per_packet),
          sender_(make_host(base_config(), 2, 0, 0, now_)),
          server_address_(Address::ipv4(10, 0, 0, 1)),
          message_(pattern(large_message, 1)),
          ends_(packet_ends()),
          grants_(ends_.size(), wire::grant_size) {
        prepare_message();
        for (int i = 0; i < 8; ++i) {
            while (!message_done()) step();
            finish_message();
        }
    }

    [[gnu::noinline]] void step() {
        Engine& engine = *sender_.engine;
        auto t = engine.poll_transmit(now_);
        if (t && t->size() > wire::data_header_size) {
            benchmark::DoNotOptimize(t->header.data());
            benchmark::DoNotOptimize(t->payload.data());
        } else {
            ++failures_;
        }
        if (grant_per_packet_) engine.handle_packet(grants_[next_], server_address_, now_);
        service_timers(engine, now_);
        now_ += packet_time;
        ++next_;
    }
    bool message_done() const { return next_ == ends_.size(); }

    // Untimed: nothing more to send; end the RPC.
    void finish_message() {
        Engine& engine = *sender_.engine;
        if (engine.poll_transmit(now_).has_value()) ++failures_;
        check(engine.abort(sender_.socket, id_, 0, now_).has_value(), "abort failed");
        prepare_message();
    }

    std::uint64_t failures() const { return failures_; }
    std::size_t packets_per_message() const { return ends_.size(); }

  private:
    // The end offsets of a message's DATA packets, from the template.
    static std::vector<std::uint32_t> packet_ends() {
        RequestTemplate t = capture_request(base_config(), base_config(), large_message);
        std::vector<std::uint32_t> ends;
        for (const auto& d : t.packets) {
            ends.push_back(d.offset + static_cast<std::uint32_t>(d.payload.size()));
        }
        return ends;
    }

    wire::GrantPacket grant(std::uint32_t offset) const {
        wire::GrantPacket g;
        g.header = wire::Header{server_port, sender_.port, wire::server_id(id_)};
        g.offset = std::min(offset, large_message);
        g.priority = 0;
        return g;
    }

    void prepare_message() {
        auto id = sender_.engine->send_request(
            sender_.socket, Endpoint{server_address_, server_port}, message_, 0, false, now_);
        check(id.has_value(), "send_request failed");
        id_ = *id;
        if (grant_per_packet_) {
            for (std::size_t i = 0; i < ends_.size(); ++i)
                grants_.encode(i, grant(ends_[i] + 200'000));
        } else {
            wire::Packet g = grant(large_message);
            std::array<std::byte, wire::grant_size> bytes{};
            check(wire::encode(g, bytes).has_value(), "encode failed");
            sender_.engine->handle_packet(bytes, server_address_, now_);
        }
        next_ = 0;
    }

    bool grant_per_packet_;
    Instant now_{};
    Host sender_;
    Address server_address_;
    std::vector<std::byte> message_;
    std::vector<std::uint32_t> ends_;
    PacketSlots grants_;
    std::size_t next_ = 0;
    RpcId id_ = 0;
    std::uint64_t failures_ = 0;
};

void BM_send_data_1MB(benchmark::State& state, bool grant_per_packet) {
    static std::map<bool, std::unique_ptr<LargeSendRig>> rigs;
    auto& rig = rigs[grant_per_packet];
    if (!rig) rig = std::make_unique<LargeSendRig>(grant_per_packet);
    const std::uint64_t failures = rig->failures();
    for (auto _ : state) {
        rig->step();
        if (rig->message_done()) {
            state.PauseTiming();
            rig->finish_message();
            state.ResumeTiming();
        }
    }
    if (rig->failures() != failures) state.SkipWithError("poll_transmit gave no DATA");
    state.SetItemsProcessed(state.iterations());
    state.counters["pkts_per_msg"] = static_cast<double>(rig->packets_per_message());
}
BENCHMARK_CAPTURE(BM_send_data_1MB, pregranted, false);
BENCHMARK_CAPTURE(BM_send_data_1MB, grant_per_packet, true);

}  // namespace

BENCHMARK_MAIN();
