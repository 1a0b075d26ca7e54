// Engine tests: the RPC lifecycle and every retransmission path, through the
// deterministic Harness (tests/engine/harness.h).
#include <gtest/gtest.h>

#include <cerrno>

#include "engine/cutoffs.h"
#include "engine/harness.h"

namespace uhoma::testing {
namespace {

using wire::PacketType;

constexpr std::uint16_t server_port = 99;

// Client sends `request`, the test's server echoes `reply_length` bytes.
struct Rpc {
    engine::RpcId id = 0;
    std::vector<std::byte> request;
};

Rpc start(Harness& net, TestHost& client, TestHost& server, std::size_t length,
          std::uint32_t seed = 1, std::uint64_t cookie = 0) {
    Rpc rpc;
    rpc.request = pattern(length, seed);
    rpc.id = client.engine
                 ->send_request(client.socket, net.endpoint(server), rpc.request, cookie, false,
                                net.now)
                 .value();
    return rpc;
}

std::optional<engine::ReceivedMessage> take(Harness& net, TestHost& h) {
    auto r = h.engine->receive(h.socket, 0, net.now);
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : std::nullopt;
}

// Runs until the server has the request, checks it, and replies.
engine::ReceivedMessage serve(Harness& net, TestHost& server, const Rpc& rpc,
                              std::size_t reply_length, std::uint32_t seed = 2) {
    std::optional<engine::ReceivedMessage> request;
    EXPECT_TRUE(net.run_until([&] {
        if (!request) request = take(net, server);
        return request.has_value();
    }));
    EXPECT_TRUE(request.has_value());
    if (!request) return {};
    EXPECT_EQ(request->id, rpc.id | 1);
    EXPECT_EQ(message_bytes(server, *request), rpc.request);
    const auto reply = pattern(reply_length, seed);
    EXPECT_TRUE(server.engine
                    ->send_reply(server.socket, request->peer, request->id, reply, net.now)
                    .has_value());
    EXPECT_TRUE(server.engine
                    ->release_bpages(server.socket,
                                     std::span(request->bpage_offsets.data(), request->num_bpages),
                                     net.now)
                    .has_value());
    return *request;
}

engine::ReceivedMessage await_response(Harness& net, TestHost& client, Duration limit = 1s) {
    std::optional<engine::ReceivedMessage> response;
    EXPECT_TRUE(net.run_until(
        [&] {
            if (!response) response = take(net, client);
            return response.has_value();
        },
        limit));
    return response.value_or(engine::ReceivedMessage{});
}

void release(Harness& net, TestHost& h, const engine::ReceivedMessage& m) {
    EXPECT_TRUE(h.engine
                    ->release_bpages(h.socket, std::span(m.bpage_offsets.data(), m.num_bpages),
                                     net.now)
                    .has_value());
}

// After everything: no RPCs, no receive buffers held, timers stopped.
void expect_clean(Harness& net, TestHost& client, TestHost& server) {
    EXPECT_TRUE(net.run_until_idle(2s));
    EXPECT_EQ(client.engine->rpc_count(), 0u);
    EXPECT_EQ(server.engine->rpc_count(), 0u);
    EXPECT_EQ(client.engine->receive_bytes_in_use(), 0u);
    EXPECT_EQ(server.engine->receive_bytes_in_use(), 0u);
}

TEST(Engine, send_request__small_rpc_round_trip) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100, 1, 77);
    EXPECT_EQ(rpc.id, 2u);
    serve(net, server, rpc, 300);
    const auto response = await_response(net, client);
    EXPECT_EQ(response.id, rpc.id);
    EXPECT_EQ(response.error, 0);
    EXPECT_EQ(response.completion_cookie, 77u);
    EXPECT_EQ(message_bytes(client, response), pattern(300, 2));
    release(net, client, response);
    expect_clean(net, client, server);
    // The server learned of completion through NEED_ACK/ACK.
    EXPECT_EQ(net.sent_of(PacketType::need_ack).size(), 1u);
    EXPECT_EQ(net.sent_of(PacketType::ack).size(), 1u);
    EXPECT_EQ(server.engine->metrics().requests_received, 1u);
    EXPECT_EQ(client.engine->metrics().responses_received, 1u);
}

TEST(Engine, send_request__unscheduled_bytes_end_exactly_at_unsched_bytes) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100000);
    serve(net, server, rpc, 10);
    std::vector<SentPacket> unscheduled;
    for (const auto& p : net.sent) {
        if (p.source == client.address && p.type() == PacketType::data &&
            p.as<wire::DataPacket>().offset < 40000) {
            unscheduled.push_back(p);
        }
    }
    // 28 full packets of 1424 bytes and one of 128 that ends exactly at
    // unsched_bytes.
    ASSERT_EQ(unscheduled.size(), 29u);
    for (std::size_t i = 0; i < unscheduled.size(); ++i) {
        const auto d = unscheduled[i].as<wire::DataPacket>();
        EXPECT_EQ(d.offset, i * 1424);
        EXPECT_EQ(d.payload.size(), i < 28 ? 1424u : 128u);
        EXPECT_EQ(d.incoming, 40000u);
        EXPECT_EQ(d.message_length, 100000u);
        EXPECT_FALSE(d.retransmit);
        // Before any CUTOFFS, unscheduled bytes go at level 6 (spec 4).
        EXPECT_EQ(unscheduled[i].priority, 6);
    }
    EXPECT_EQ(unscheduled.front().as<wire::DataPacket>().cutoff_version, 0);
    // The first scheduled packet starts at the unscheduled limit.
    bool found = false;
    for (const auto& p : net.sent_of(PacketType::data)) {
        found |= p.source == client.address && p.as<wire::DataPacket>().offset == 40000;
    }
    EXPECT_TRUE(found);
    release(net, client, await_response(net, client));
    expect_clean(net, client, server);
}

TEST(Engine, handle_data__grants_remaining_bytes_and_uses_cutoffs) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100000);
    serve(net, server, rpc, 10);
    const auto grants = net.sent_of(PacketType::grant);
    ASSERT_FALSE(grants.empty());
    // One message (N=1): window 200,000 covers the whole rest; level 0.
    const auto g = grants.front().as<wire::GrantPacket>();
    EXPECT_EQ(g.offset, 100000u);
    EXPECT_EQ(g.priority, 0);
    EXPECT_EQ(grants.front().priority, 7);  // control packets at the top level
    // The server told the client its cutoffs once.
    const auto cutoffs = net.sent_of(PacketType::cutoffs);
    ASSERT_EQ(cutoffs.size(), 1u);
    EXPECT_EQ(cutoffs[0].as<wire::CutoffsPacket>().cutoff_version, 1);
    // Scheduled DATA carries the grant's priority and the new cutoff version.
    bool saw_scheduled = false;
    for (const auto& p : net.sent_of(PacketType::data)) {
        const auto d = p.as<wire::DataPacket>();
        if (d.offset >= 40000 && p.source == client.address) {
            saw_scheduled = true;
            EXPECT_EQ(p.priority, 0);
            EXPECT_EQ(d.cutoff_version, 1);
        }
    }
    EXPECT_TRUE(saw_scheduled);
    // The 10-byte reply goes at the highest unscheduled level (client's
    // default cutoffs: 10 <= 200 at level 7).
    release(net, client, await_response(net, client));
    const SentPacket last = net.sent_of(PacketType::data).back();
    EXPECT_EQ(last.source, server.address);
    EXPECT_EQ(last.priority, 6);  // the client never sent CUTOFFS to the server
}

// --- Retransmission paths -------------------------------------------------

// Drops the first transmission of the request packet at `offset`.
std::function<bool(const SentPacket&)> drop_request_packet(const TestHost& client,
                                                           std::uint32_t offset) {
    auto done = std::make_shared<bool>(false);
    const Address from = client.address;
    return [done, from, offset](const SentPacket& p) {
        if (*done || p.source != from || p.type() != PacketType::data) return false;
        if (p.as<wire::DataPacket>().offset != offset) return false;
        *done = true;
        return true;
    };
}

void expect_lost_packet_recovered(std::uint32_t lost_offset, std::uint32_t resend_offset,
                                  std::uint32_t resend_length) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    net.drop = drop_request_packet(client, lost_offset);
    const Rpc rpc = start(net, client, server, 3000);
    serve(net, server, rpc, 50);
    // (The waiting client also probes the server with RESEND(0,-1); only
    // the server's requests for the lost bytes matter here.)
    std::vector<SentPacket> resends;
    for (const auto& p : net.sent_of(PacketType::resend)) {
        if (p.source == server.address) resends.push_back(p);
    }
    ASSERT_EQ(resends.size(), 1u);
    const auto r = resends[0].as<wire::ResendPacket>();
    EXPECT_EQ(r.offset, resend_offset);
    EXPECT_EQ(r.length, resend_length);
    EXPECT_EQ(r.header.sender_id, rpc.id | 1);
    // The first RESEND goes out after resend_ticks of silence.
    EXPECT_GE(resends[0].time - net.sent.front().time, 5ms);
    EXPECT_LT(resends[0].time - net.sent.front().time, 7ms);
    // Exactly the lost bytes came again, marked as a retransmission.
    int retransmitted = 0;
    for (const auto& p : net.sent_of(PacketType::data)) {
        const auto d = p.as<wire::DataPacket>();
        if (d.retransmit) {
            ++retransmitted;
            EXPECT_EQ(d.offset, lost_offset);
            EXPECT_EQ(d.incoming, resend_offset + resend_length);
        }
    }
    EXPECT_EQ(retransmitted, 1);
    const auto response = await_response(net, client);
    EXPECT_EQ(response.error, 0);
    release(net, client, response);
    EXPECT_EQ(server.engine->metrics().resent_packets_used, 1u);
    EXPECT_EQ(client.engine->metrics().resent_packets, 1u);
    expect_clean(net, client, server);
}

TEST(Engine, request_retransmission__lost_first_data) { expect_lost_packet_recovered(0, 0, 1424); }
TEST(Engine, request_retransmission__lost_middle_data) {
    expect_lost_packet_recovered(1424, 1424, 1424);
}
TEST(Engine, request_retransmission__lost_last_data) {
    expect_lost_packet_recovered(2848, 2848, 152);
}

TEST(Engine, handle_resend__lost_grant_recovered_by_receiver_resend) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    bool dropped = false;
    net.drop = [&](const SentPacket& p) {
        if (dropped || p.type() != PacketType::grant) return false;
        return dropped = true;
    };
    const Rpc rpc = start(net, client, server, 100000);
    serve(net, server, rpc, 10);
    ASSERT_TRUE(dropped);
    // The server asked for the granted-but-missing range; the client took it
    // as the lost grant and sent the rest.
    std::vector<SentPacket> resends;
    for (const auto& p : net.sent_of(PacketType::resend)) {
        if (p.source == server.address) resends.push_back(p);
    }
    ASSERT_FALSE(resends.empty());
    const auto r = resends.front().as<wire::ResendPacket>();
    EXPECT_EQ(r.offset, 40000u);
    EXPECT_EQ(r.length, 60000u);
    const auto response = await_response(net, client);
    EXPECT_EQ(response.error, 0);
    release(net, client, response);
    expect_clean(net, client, server);
}

TEST(Engine, handle_resend__busy_keeps_waiting_client_alive) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100);
    // The server application takes 300 ms (3x the timeout) to answer.
    std::optional<engine::ReceivedMessage> request;
    net.run_until([&] { return (request = take(net, server)).has_value(); });
    ASSERT_TRUE(request.has_value());
    net.run_until([] { return false; }, 300ms);
    EXPECT_GE(net.sent_of(PacketType::busy).size(), 50u);
    for (const auto& p : net.sent_of(PacketType::resend)) {
        const auto r = p.as<wire::ResendPacket>();
        EXPECT_EQ(r.offset, 0u);
        EXPECT_EQ(r.length, wire::resend_everything);
    }
    EXPECT_EQ(client.engine->metrics().rpc_timeouts, 0u);
    ASSERT_TRUE(server.engine->send_reply(server.socket, request->peer, request->id,
                                          pattern(20, 3), net.now).has_value());
    release(net, server, *request);
    const auto response = await_response(net, client);
    EXPECT_EQ(response.error, 0);
    EXPECT_EQ(message_bytes(client, response), pattern(20, 3));
    release(net, client, response);
    expect_clean(net, client, server);
    (void)rpc;
}

TEST(Engine, handle_rpc_unknown__client_restarts_lost_request) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    // Every original request packet is lost; only retransmissions get through.
    net.drop = [&](const SentPacket& p) {
        return p.source == client.address && p.type() == PacketType::data &&
               !p.as<wire::DataPacket>().retransmit;
    };
    const Rpc rpc = start(net, client, server, 5000);
    serve(net, server, rpc, 100);
    EXPECT_EQ(net.sent_of(PacketType::rpc_unknown).size(), 1u);
    const auto response = await_response(net, client);
    EXPECT_EQ(response.error, 0);
    release(net, client, response);
    expect_clean(net, client, server);
}

TEST(Engine, handle_rpc_unknown__server_ends_rpc_the_client_forgot) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    // Only the first packet of a 3-packet request arrives, then the client
    // aborts silently. The server's RESENDs meet RPC_UNKNOWN.
    net.drop = [&](const SentPacket& p) {
        return p.source == client.address && p.type() == PacketType::data &&
               p.as<wire::DataPacket>().offset != 0;
    };
    const Rpc rpc = start(net, client, server, 3000);
    net.run_until([&] { return server.engine->rpc_count() == 1; });
    ASSERT_TRUE(client.engine->abort(client.socket, rpc.id, 0, net.now).has_value());
    EXPECT_TRUE(net.run_until_idle());
    EXPECT_EQ(server.engine->metrics().server_rpcs_unknown, 1u);
    EXPECT_EQ(net.sent_of(PacketType::rpc_unknown).size(), 1u);
    expect_clean(net, client, server);
}

TEST(Engine, handle_need_ack__acks_freed_responses) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100);
    serve(net, server, rpc, 100);
    const auto response = await_response(net, client);
    release(net, client, response);
    EXPECT_EQ(server.engine->rpc_count(), 1u);  // kept until acknowledged
    EXPECT_TRUE(net.run_until_idle());
    const auto need = net.sent_of(PacketType::need_ack);
    ASSERT_EQ(need.size(), 1u);
    EXPECT_EQ(need[0].as<wire::NeedAckPacket>().header.sender_id, rpc.id | 1);
    const auto acks = net.sent_of(PacketType::ack);
    ASSERT_EQ(acks.size(), 1u);
    const auto ack = acks[0].as<wire::AckPacket>();
    EXPECT_EQ(ack.header.sender_id, rpc.id);
    EXPECT_EQ(ack.num_acks, 1);  // the pending ack for this RPC
    EXPECT_EQ(ack.acks[0], (wire::Ack{rpc.id, server_port}));
    EXPECT_EQ(server.engine->rpc_count(), 0u);
}

TEST(Engine, check_rpc_timer__gives_up_need_ack_when_client_vanished) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100);
    serve(net, server, rpc, 100);
    // The client process is gone: its RPC vanishes and nothing reaches it.
    net.drop = [&](const SentPacket& p) { return p.destination.address == client.address; };
    net.run_until([&] { return server.engine->metrics().server_responses_done == 1; });
    ASSERT_TRUE(client.engine->abort(client.socket, rpc.id, 0, net.now).has_value());
    EXPECT_TRUE(net.run_until_idle(500ms));
    // NEED_ACK every tick from tick 2, then the RPC is dropped after
    // timeout_ticks more ticks instead of asking forever.
    EXPECT_EQ(server.engine->rpc_count(), 0u);
    EXPECT_EQ(server.engine->metrics().server_rpc_discards, 1u);
    EXPECT_EQ(server.engine->metrics().packets_sent_NEED_ACK, 100u);
}

TEST(Engine, receive__piggybacks_acks_on_later_data) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc first = start(net, client, server, 100, 1);
    serve(net, server, first, 100);
    release(net, client, await_response(net, client));
    const Rpc second = start(net, client, server, 100, 2);
    serve(net, server, second, 100);
    // The second request carried the first RPC's ack; no NEED_ACK for it.
    bool carried = false;
    for (const auto& p : net.sent_of(PacketType::data)) {
        const auto d = p.as<wire::DataPacket>();
        if (d.header.sender_id == second.id) carried = d.ack == wire::Ack{first.id, server_port};
    }
    EXPECT_TRUE(carried);
    release(net, client, await_response(net, client));
    expect_clean(net, client, server);
}

TEST(Engine, check_rpc_timer__times_out_after_timeout_ticks) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    net.drop = [&](const SentPacket& p) { return p.source == server.address; };
    const Rpc rpc = start(net, client, server, 100, 1, 55);
    const Instant sent_at = net.now;
    const auto response = await_response(net, client, 500ms);
    EXPECT_EQ(response.id, rpc.id);
    EXPECT_EQ(response.error, ETIMEDOUT);
    EXPECT_EQ(response.completion_cookie, 55u);
    // RESENDs at silent ticks 5, 10, ..., 95; abort at tick 100.
    std::size_t client_resends = 0;
    for (const auto& p : net.sent_of(PacketType::resend)) client_resends += p.source == client.address;
    EXPECT_EQ(client_resends, 19u);
    EXPECT_GE(net.now - sent_at, 100ms);
    EXPECT_LE(net.now - sent_at, 102ms);
    EXPECT_EQ(client.engine->metrics().rpc_timeouts, 1u);
    EXPECT_EQ(client.engine->rpc_count(), 0u);
}

TEST(Engine, check_rpc_timer__server_discards_silent_incoming_request) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 3000);
    net.drop = [&](const SentPacket& p) {
        return p.source == client.address && p.as<wire::DataPacket>().offset != 0;
    };
    net.run_until([&] { return server.engine->rpc_count() == 1; });
    net.drop = [](const SentPacket&) { return true; };  // the client is gone
    ASSERT_TRUE(client.engine->abort(client.socket, rpc.id, 0, net.now).has_value());
    net.run_until_idle(200ms);
    EXPECT_EQ(server.engine->rpc_count(), 0u);
    EXPECT_EQ(server.engine->metrics().server_rpc_discards, 1u);
    EXPECT_EQ(server.engine->receive_bytes_in_use(), 0u);
}

TEST(Engine, receive__private_rpc_only_by_id) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const auto request = pattern(100, 1);
    const engine::RpcId id =
        client.engine->send_request(client.socket, net.endpoint(server), request, 5, true, net.now)
            .value();
    serve(net, server, Rpc{id, request}, 100);
    net.run_until([] { return false; }, 1ms);
    EXPECT_FALSE(client.engine->readable(client.socket));
    EXPECT_FALSE(client.engine->receive(client.socket, 0, net.now).value().has_value());
    const auto m = client.engine->receive(client.socket, id, net.now).value();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->completion_cookie, 5u);
    EXPECT_EQ(message_bytes(client, *m), pattern(100, 2));
    release(net, client, *m);
    // Not private, or unknown: EINVAL.
    EXPECT_EQ(client.engine->receive(client.socket, id, net.now).error(), EINVAL);
    expect_clean(net, client, server);
}

TEST(Engine, send_request__send_memory_limit) {
    engine::Config config;
    config.wmem_max = 250000;
    Harness net(config);
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    start(net, client, server, 100000, 1);
    start(net, client, server, 100000, 2);
    const auto third = pattern(100000, 3);
    EXPECT_EQ(client.engine->send_request(client.socket, net.endpoint(server), third, 0, false,
                                          net.now).error(),
              EAGAIN);
}

TEST(Engine, abort__delivers_error_and_frees) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100, 1, 9);
    ASSERT_TRUE(client.engine->abort(client.socket, rpc.id, ECANCELED, net.now).has_value());
    const auto m = take(net, client);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->error, ECANCELED);
    EXPECT_EQ(m->completion_cookie, 9u);
    EXPECT_EQ(client.engine->rpc_count(), 0u);
    EXPECT_EQ(client.engine->abort(client.socket, rpc.id, 0, net.now).error(), EINVAL);
}

// --- Buffers ----------------------------------------------------------------

TEST(Engine, serve_buffer_waiters__exhaustion_then_recovery) {
    Harness net;
    // Minimum region: 64 KiB + 2,000,000 bytes = 31 bpages: room for two
    // 1,000,000-byte messages (15 whole pages each plus tails in one page).
    TestHost& server = net.add_host(1, server_port, 65536 + 2000000);
    TestHost& c1 = net.add_host(2, 0, 4u << 20, 2);
    TestHost& c2 = net.add_host(3, 0, 4u << 20, 1000002);
    TestHost& c3 = net.add_host(4, 0, 4u << 20, 2000002);
    const Rpc r1 = start(net, c1, server, 1000000, 1);
    const Rpc r2 = start(net, c2, server, 1000000, 2);
    net.run_until([] { return false; }, 50ms);
    const Rpc r3 = start(net, c3, server, 1000000, 3);
    net.run_until([] { return false; }, 50ms);
    EXPECT_EQ(server.engine->metrics().buffer_alloc_failures, 1u);
    EXPECT_GT(server.engine->metrics().dropped_data_no_bufs, 0u);
    EXPECT_EQ(server.engine->rpc_count(), 3u);
    // Serving one request frees its buffers; the waiter then gets them and
    // asks for everything with RESEND(0, -1) at level 6.
    for (int i = 0; i < 3; ++i) {
        auto m = take(net, server);
        if (!m) {
            ASSERT_TRUE(net.run_until([&] { return server.engine->readable(server.socket); }, 2s));
            m = take(net, server);
        }
        ASSERT_TRUE(m.has_value());
        const TestHost* from = m->peer.address == c1.address   ? &c1
                               : m->peer.address == c2.address ? &c2
                                                               : &c3;
        const Rpc& rpc = from == &c1 ? r1 : from == &c2 ? r2 : r3;
        EXPECT_EQ(message_bytes(server, *m), rpc.request);
        ASSERT_TRUE(server.engine->send_reply(server.socket, m->peer, m->id, pattern(10, 5),
                                              net.now).has_value());
        release(net, server, *m);
    }
    bool resend_all = false;
    for (const auto& p : net.sent_of(PacketType::resend)) {
        const auto r = p.as<wire::ResendPacket>();
        resend_all |= p.source == server.address && r.offset == 0 &&
                      r.length == wire::resend_everything && r.priority == 6;
    }
    EXPECT_TRUE(resend_all);
    for (TestHost* c : {&c1, &c2, &c3}) release(net, *c, await_response(net, *c));
    EXPECT_TRUE(net.run_until_idle(2s));
    EXPECT_EQ(server.engine->rpc_count(), 0u);
    EXPECT_EQ(server.engine->receive_bytes_in_use(), 0u);
}

// --- Cutoffs -----------------------------------------------------------------

TEST(Engine, maybe_update_cutoffs__recomputed_from_received_lengths_and_sent) {
    engine::Config config;
    config.cutoff_interval_ms = 5;
    config.cutoff_min_messages = 50;
    Harness net(config);
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    for (std::uint32_t i = 0; i < 80; ++i) {
        const Rpc rpc = start(net, client, server, 100, i);
        serve(net, server, rpc, 100);
        release(net, client, await_response(net, client));
        net.run_until([] { return false; }, 200us);
    }
    // Every message was 100 bytes: one unscheduled level holds them all and
    // the rest become scheduled levels, and the version moved past 1.
    std::optional<wire::CutoffsPacket> latest;
    for (const auto& p : net.sent_of(PacketType::cutoffs)) {
        if (p.source == server.address) latest = p.as<wire::CutoffsPacket>();
    }
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(latest->cutoff_version, 2);
    EXPECT_EQ(latest->unsched_cutoffs,
              (engine::CutoffTable{0x7FFFFFFF, 1000000, 1000000, 1000000, 1000000, 1000000,
                                   1000000, 1000000}));
    // The client now echoes the new version and sends 100 bytes at level 7.
    const Rpc after = start(net, client, server, 100, 999);
    serve(net, server, after, 100);
    SentPacket request = net.sent_of(PacketType::data).back();
    for (const auto& p : net.sent_of(PacketType::data)) {
        if (p.source == client.address) request = p;
    }
    EXPECT_EQ(request.as<wire::DataPacket>().cutoff_version, 2);
    EXPECT_EQ(request.priority, 7);
    release(net, client, await_response(net, client));
    expect_clean(net, client, server);
}

TEST(Engine, maybe_update_cutoffs__disabled_keeps_configured_table) {
    engine::Config config;
    config.cutoff_interval_ms = 0;
    config.cutoff_min_messages = 1;
    Harness net(config);
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    for (std::uint32_t i = 0; i < 20; ++i) {
        const Rpc rpc = start(net, client, server, 100, i);
        serve(net, server, rpc, 100);
        release(net, client, await_response(net, client));
        net.run_until([] { return false; }, 2ms);
    }
    for (const auto& p : net.sent_of(PacketType::cutoffs)) {
        EXPECT_EQ(p.as<wire::CutoffsPacket>().cutoff_version, 1);
    }
    expect_clean(net, client, server);
}

TEST(Engine, fail_client_rpc__stops_waiting_for_buffers) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0, 65536 + 2000000);  // room for two 1 MB responses
    std::vector<Rpc> rpcs;
    for (std::uint32_t i = 0; i < 3; ++i) rpcs.push_back(start(net, client, server, 100, i));
    for (int i = 0; i < 3; ++i) {
        std::optional<engine::ReceivedMessage> request;
        ASSERT_TRUE(net.run_until([&] { return (request = take(net, server)).has_value(); }));
        ASSERT_TRUE(server.engine->send_reply(server.socket, request->peer, request->id,
                                              pattern(1000000, 9), net.now).has_value());
        release(net, server, *request);
    }
    net.run_until([&] { return client.engine->metrics().buffer_alloc_failures == 1; });
    ASSERT_EQ(client.engine->metrics().buffer_alloc_failures, 1u);
    // Which RPC is waiting: the one whose response has no buffers.
    net.run_until([] { return false; }, 20ms);
    std::optional<engine::ReceivedMessage> done = take(net, client);
    ASSERT_TRUE(done.has_value());
    std::optional<engine::ReceivedMessage> second = take(net, client);
    ASSERT_TRUE(second.has_value());
    engine::RpcId waiting = 0;
    for (const Rpc& r : rpcs) {
        if (r.id != done->id && r.id != second->id) waiting = r.id;
    }
    ASSERT_NE(waiting, 0u);
    // Fail the waiting RPC, then free space: it must not take the buffers
    // or ask the server to resend a response nobody will read.
    ASSERT_TRUE(client.engine->abort(client.socket, waiting, ECANCELED, net.now).has_value());
    const std::size_t sent_before = net.sent.size();
    release(net, client, *done);
    release(net, client, *second);
    net.run_until([] { return false; }, 2ms);
    for (std::size_t i = sent_before; i < net.sent.size(); ++i) {
        const SentPacket& p = net.sent[i];
        if (p.source == client.address && p.type() == PacketType::resend) {
            EXPECT_NE(p.as<wire::ResendPacket>().header.sender_id, waiting);
        }
    }
    EXPECT_EQ(client.engine->receive_bytes_in_use(), 0u);
    const auto failed = take(net, client);
    ASSERT_TRUE(failed.has_value());
    EXPECT_EQ(failed->id, waiting);
    EXPECT_EQ(failed->error, ECANCELED);
}

// --- At most once -------------------------------------------------------------

TEST(Engine, handle_data__stale_duplicate_request_is_not_run_twice) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 100);
    serve(net, server, rpc, 100);
    release(net, client, await_response(net, client));
    ASSERT_TRUE(net.run_until([&] { return server.engine->rpc_count() == 0; }));
    // A delayed duplicate of the request arrives after the server freed the
    // RPC: it must not re-create it.
    const SentPacket original = net.sent_of(PacketType::data).front();
    net.run_until([] { return false; }, 50ms);
    server.engine->handle_packet(original.bytes, original.source, net.now);
    EXPECT_FALSE(server.engine->readable(server.socket));
    EXPECT_EQ(server.engine->rpc_count(), 0u);
    EXPECT_EQ(server.engine->metrics().packet_discards, 1u);
    // The memory of it lasts timeout_ticks, then the engine goes idle.
    EXPECT_TRUE(net.run_until_idle(200ms));
}

// --- Peers -------------------------------------------------------------------

TEST(Engine, collect_peers__frees_idle_peers_above_threshold) {
    engine::Config config;
    config.peer_gc_threshold = 2;
    config.peer_idle_secs_max = 1;
    Harness net(config);
    TestHost& client = net.add_host(1, 0);
    std::vector<TestHost*> servers;
    for (std::uint8_t i = 0; i < 4; ++i) servers.push_back(&net.add_host(10 + i, server_port));
    for (TestHost* s : servers) {
        const Rpc rpc = start(net, client, *s, 100);
        serve(net, *s, rpc, 100);
        release(net, client, await_response(net, client));
    }
    EXPECT_TRUE(net.run_until_idle(2s));
    EXPECT_EQ(client.engine->peer_count(), 4u);
    net.run_until([] { return false; }, 2s);  // every peer idle for > 1 s
    const Rpc again = start(net, client, *servers[0], 100);
    serve(net, *servers[0], again, 100);
    release(net, client, await_response(net, client));
    EXPECT_TRUE(net.run_until_idle(2s));
    EXPECT_EQ(client.engine->peer_count(), 1u);  // only the peer in use survived
}

// --- Input validation ---------------------------------------------------------

TEST(Engine, handle_packet__malformed_and_unknown_are_counted) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    const std::vector<std::byte> junk(10, std::byte{0x42});
    server.engine->handle_packet(junk, Address::ipv4(10, 0, 0, 9), net.now);
    std::array<std::byte, 64> buf{};
    auto n = wire::encode(wire::BusyPacket{{40000, 1234, 3}}, buf).value();
    server.engine->handle_packet(std::span(buf.data(), n), Address::ipv4(10, 0, 0, 9), net.now);
    buf[11] = std::byte{0x42};  // unknown type
    server.engine->handle_packet(std::span(buf.data(), n), Address::ipv4(10, 0, 0, 9), net.now);
    const auto& m = server.engine->metrics();
    EXPECT_EQ(m.short_packets, 1u);
    EXPECT_EQ(m.unknown_ports, 1u);
    EXPECT_EQ(m.unknown_packet_types, 1u);
    EXPECT_EQ(server.engine->rpc_count(), 0u);
}

TEST(Engine, bind__port_rules) {
    Harness net;
    TestHost& h = net.add_host(1, 0);
    EXPECT_GE(h.port, 0x8000);
    EXPECT_EQ(h.engine->bind(h.socket, 0x8000).error(), EINVAL);
    EXPECT_TRUE(h.engine->bind(h.socket, 0).has_value());
    EXPECT_TRUE(h.engine->bind(h.socket, 500).has_value());
    EXPECT_EQ(*h.engine->port(h.socket), 500);
    auto other = h.engine->open_socket().value();
    EXPECT_EQ(h.engine->bind(other, 500).error(), EADDRINUSE);
    // A runtime picks the automatic port itself (the UDP port the kernel gave).
    auto fixed = h.engine->open_socket(0x9000).value();
    EXPECT_EQ(*h.engine->port(fixed), 0x9000);
    EXPECT_EQ(h.engine->open_socket(0x9000).error(), EADDRINUSE);
    EXPECT_EQ(h.engine->open_socket(100).error(), EINVAL);
    EXPECT_EQ(h.engine->send_request(other, Endpoint{h.address, 500}, {}, 0, false, net.now).error(),
              EINVAL);
}

}  // namespace
}  // namespace uhoma::testing

namespace uhoma::testing {
namespace {

// --- Pacing -------------------------------------------------------------------

TEST(Engine, poll_transmit__paces_long_messages_but_not_short_or_control) {
    engine::Config config;
    config.unsched_bytes = 1000000;  // everything may go without grants
    config.link_mbps = 10000;
    engine::EngineOptions options;
    options.local_address = Address::ipv4(10, 0, 0, 1);
    auto e = Engine::create(config, options).value();
    const SocketId s = e->open_socket().value();
    const Instant now{};
    const Endpoint peer{Address::ipv4(10, 0, 0, 2), 99};
    ASSERT_TRUE(e->send_request(s, peer, pattern(1000000, 1), 0, false, now).has_value());
    // At a frozen instant only about max_nic_est_backlog_usecs (5 us) of
    // wire time goes out: 5 us at 9.9 Gb/s is ~4 full packets.
    int burst = 0;
    while (e->poll_transmit(now)) ++burst;
    EXPECT_GE(burst, 4);
    EXPECT_LE(burst, 6);
    // The engine asks to be woken when the estimated queue has drained.
    const Instant wake = e->next_deadline();
    EXPECT_GT(wake, now);
    EXPECT_LE(wake, now + 2us);
    // A short message still goes at once: it bypasses the pacer.
    ASSERT_TRUE(e->send_request(s, peer, pattern(500, 2), 0, false, now).has_value());
    auto short_packet = e->poll_transmit(now);
    ASSERT_TRUE(short_packet.has_value());
    const std::vector<std::byte> short_bytes = engine::packet_bytes(*short_packet);
    const auto d = std::get<wire::DataPacket>(wire::decode(short_bytes).value());
    EXPECT_EQ(d.message_length, 500u);
    EXPECT_FALSE(e->poll_transmit(now).has_value());
    // Woken at each deadline, the long message goes at the link rate:
    // 100 us at 9.9 Gb/s is ~82 packets of 1500 wire bytes.
    int paced = 0;
    for (Instant t = e->next_deadline(); t < now + 100us; t = e->next_deadline()) {
        while (e->poll_transmit(t)) ++paced;
    }
    EXPECT_GE(paced, 78);
    EXPECT_LE(paced, 86);
    EXPECT_GT(e->metrics().pacer_homa_packets, 0u);
}

TEST(Engine, socket_info__reports_each_side_of_a_granted_rpc) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    auto unknown = client.engine->socket_info(client.socket + 100, 8);
    ASSERT_FALSE(unknown.has_value());
    EXPECT_EQ(unknown.error(), EINVAL);

    const Rpc rpc = start(net, client, server, 100000, 1, 77);
    auto before = client.engine->socket_info(client.socket, 8).value();
    EXPECT_EQ(before.port, client.port);
    EXPECT_EQ(before.num_rpcs, 1u);
    ASSERT_EQ(before.rpcs.size(), 1u);
    EXPECT_EQ(before.rpcs[0].id, rpc.id);
    EXPECT_EQ(before.rpcs[0].peer, net.endpoint(server));
    EXPECT_EQ(before.rpcs[0].completion_cookie, 77u);
    EXPECT_EQ(before.rpcs[0].tx_length, 100000);
    EXPECT_EQ(before.rpcs[0].tx_granted, 40000u);  // unscheduled bytes count as granted
    EXPECT_EQ(before.rpcs[0].rx_length, -1);        // no response byte yet
    EXPECT_FALSE(before.rpcs[0].rx_ready);

    // Without grants the request stops at unsched_bytes.
    net.drop = [](const SentPacket& p) { return p.type() == PacketType::grant; };
    net.run_until([] { return false; }, 2ms);
    const auto c = client.engine->socket_info(client.socket, 8).value().rpcs.at(0);
    EXPECT_EQ(c.tx_sent, 40000u);
    EXPECT_EQ(c.tx_granted, 40000u);
    const auto info = server.engine->socket_info(server.socket, 8).value();
    EXPECT_EQ(info.num_rpcs, 1u);
    ASSERT_EQ(info.rpcs.size(), 1u);
    const auto& r = info.rpcs[0];
    EXPECT_EQ(r.id, rpc.id | 1);
    EXPECT_EQ(r.peer, net.endpoint(client));
    EXPECT_EQ(r.tx_length, -1);  // no response yet
    EXPECT_EQ(r.rx_length, 100000);
    EXPECT_EQ(r.rx_remaining, 60000u);
    EXPECT_EQ(r.rx_gaps, 0u);
    EXPECT_GT(r.rx_granted, 40000u);  // the grants it sent (and we dropped)
    EXPECT_FALSE(r.rx_ready);
    EXPECT_FALSE(r.private_rpc);
    // The pool holds the message's bpages.
    EXPECT_EQ(info.bpool_avail_bytes, server.region.size() - 2 * 65536);

    // max_rpcs bounds the records, not the count.
    const auto none = server.engine->socket_info(server.socket, 0).value();
    EXPECT_EQ(none.num_rpcs, 1u);
    EXPECT_TRUE(none.rpcs.empty());
}

TEST(Engine, take_grants__one_grant_per_rpc_per_batch_of_packets) {
    Harness net;
    TestHost& server = net.add_host(1, server_port);
    TestHost& client = net.add_host(2, 0);
    const Rpc rpc = start(net, client, server, 200000);
    // The 29 unscheduled packets leave at one instant and arrive together:
    // the server handles them as one batch and answers with one GRANT.
    ASSERT_TRUE(net.run_until([&] { return !net.sent_of(PacketType::grant).empty(); }));
    const auto first = net.sent_of(PacketType::grant);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_GT(first[0].as<wire::GrantPacket>().offset, 40000u);
    serve(net, server, rpc, 10);
    release(net, client, await_response(net, client));
    // Far fewer GRANTs than scheduled DATA packets, and the message completed.
    std::size_t scheduled = 0;
    for (const auto& p : net.sent_of(PacketType::data)) {
        scheduled += p.source == client.address && p.as<wire::DataPacket>().offset >= 40000;
    }
    EXPECT_LT(net.sent_of(PacketType::grant).size(), scheduled);
    expect_clean(net, client, server);
}

}  // namespace
}  // namespace uhoma::testing
