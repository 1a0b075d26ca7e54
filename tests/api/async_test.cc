// The asynchronous C++ API (EventLoop, Socket::call_async / call_future) end
// to end over real UDP sockets on loopback.
#include "uhoma/async.h"

#include <gtest/gtest.h>

#include "support/bytes.h"
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <random>
#include <thread>

#include "runtime/runtime.h"

namespace uhoma {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> pattern(std::size_t n, std::uint64_t seed) {
    return test::random_bytes(n, seed);
}

// A server socket on the first free port from a pid-derived one (other test
// processes run concurrently).
Socket open_server(const std::shared_ptr<Transport>& t, int offset) {
    for (int attempt = 0; attempt < 200; ++attempt) {
        const auto port =
            static_cast<std::uint16_t>(1 + (::getpid() * 13 + offset * 211 + attempt) % 32767);
        auto s = Socket::open(t, port);
        if (s) return std::move(*s);
    }
    ADD_FAILURE() << "no free server port";
    std::abort();
}

// Runs rounds until `done()` or a generous limit (only a hang fails it).
bool run_until(EventLoop& loop, const std::function<bool()>& done,
               std::chrono::seconds limit = 30s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > end) return false;
        auto r = loop.run_once(20ms);
        if (!r) {
            ADD_FAILURE() << "run_once: " << r.error();
            return false;
        }
    }
    return true;
}

// An echo server attached to `loop`.
void attach_echo(EventLoop& loop, Socket& server, std::atomic<int>* served = nullptr) {
    ASSERT_TRUE(loop.add(server,
                         [&server, served](Message request) {
                             const auto bytes = request.to_vector();
                             ASSERT_TRUE(server.reply(request, bytes).has_value());
                             if (served != nullptr) ++*served;
                         })
                    .has_value());
}

TEST(EventLoop, call_async__many_concurrent_calls_each_get_their_own_response) {
    auto transport = Transport::create().value();
    auto loop = EventLoop::create().value();
    auto server = open_server(transport, 0);
    std::atomic<int> served{0};
    attach_echo(loop, server, &served);
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(loop.add(client).has_value());

    constexpr int calls = 300;
    std::mt19937 rng(7);
    std::vector<std::vector<std::byte>> requests;
    std::vector<int> completions(calls, 0);
    std::map<RpcId, int> by_id;
    int done = 0;
    for (int i = 0; i < calls; ++i) {
        // Sizes from one byte to several packets and a multi-chunk message.
        const std::size_t size = i % 50 == 0 ? 150000 : 1 + rng() % 9000;
        requests.push_back(pattern(size, static_cast<std::uint64_t>(i)));
        auto id = client.call_async(
            server.endpoint("127.0.0.1"), requests.back(), [&, i](Expected<Message, int> r) {
                ++completions[static_cast<std::size_t>(i)];
                ++done;
                ASSERT_TRUE(r.has_value()) << "call " << i << ": " << r.error();
                EXPECT_FALSE(r->is_request());
                EXPECT_EQ(by_id.at(r->id()), i);
                EXPECT_EQ(r->to_vector(), requests[static_cast<std::size_t>(i)]) << "call " << i;
            });
        ASSERT_TRUE(id.has_value()) << id.error();
        by_id[*id] = i;
    }
    EXPECT_EQ(by_id.size(), static_cast<std::size_t>(calls));
    ASSERT_TRUE(run_until(loop, [&] { return done == calls; }));
    for (int i = 0; i < calls; ++i) EXPECT_EQ(completions[static_cast<std::size_t>(i)], 1) << i;
    EXPECT_EQ(served.load(), calls);
    EXPECT_EQ(loop.pending_calls(), 0u);
}

TEST(EventLoop, call_future__from_other_threads_while_run_runs) {
    auto transport = Transport::create().value();
    auto loop = EventLoop::create().value();
    auto server = open_server(transport, 1);
    attach_echo(loop, server);
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(loop.add(client).has_value());
    std::thread runner([&] { EXPECT_TRUE(loop.run().has_value()); });

    std::vector<std::thread> threads;
    std::atomic<int> good{0};
    for (int t = 0; t < 3; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 40; ++i) {
                const auto request = pattern(100 + static_cast<std::size_t>(i) * 37,
                                             static_cast<std::uint64_t>(t * 1000 + i));
                auto f = client.call_future(server.endpoint("127.0.0.1"), request, 20s);
                ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
                auto r = f.get();
                ASSERT_TRUE(r.has_value()) << r.error();
                EXPECT_EQ(r->to_vector(), request);
                ++good;
            }
        });
    }
    for (auto& t : threads) t.join();
    loop.stop();
    runner.join();
    EXPECT_EQ(good.load(), 120);
}

TEST(EventLoop, call_async__deadline_gives_EAGAIN_when_the_server_never_answers) {
    auto transport = Transport::create().value();
    auto loop = EventLoop::create().value();
    auto server = open_server(transport, 2);
    // Receives requests, never replies (keeps them).
    std::vector<Message> held;
    ASSERT_TRUE(loop.add(server, [&](Message m) { held.push_back(std::move(m)); }).has_value());
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(loop.add(client).has_value());

    std::optional<int> error;
    auto future = client.call_future(server.endpoint("127.0.0.1"), pattern(500, 2), 100ms);
    ASSERT_TRUE(client
                    .call_async(
                        server.endpoint("127.0.0.1"), pattern(500, 1),
                        [&](Expected<Message, int> r) {
                            ASSERT_FALSE(r.has_value());
                            error = r.error();
                        },
                        50ms)
                    .has_value());
    ASSERT_TRUE(run_until(loop, [&] {
        return error.has_value() && future.wait_for(0s) == std::future_status::ready &&
               held.size() == 2;
    }));
    EXPECT_EQ(*error, EAGAIN);
    auto r = future.get();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), EAGAIN);
    EXPECT_EQ(loop.pending_calls(), 0u);
    EXPECT_EQ(held.size(), 2u);  // the requests did arrive
    // The aborted RPCs are gone from the client side: only the server's
    // two (unanswered) RPCs remain.
    EXPECT_EQ(transport->runtime().rpc_count(), 2u);
}

TEST(EventLoop, call_async__transport_failure_reaches_its_callback) {
    auto transport = Transport::create({{{"timeout_ticks", "20"}}}).value();
    auto loop = EventLoop::create().value();
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(loop.add(client).has_value());
    std::optional<int> error;
    // A port with no Homa socket behind it: Homa gives up (ETIMEDOUT)
    // before the (generous) deadline.
    const RpcId id = client
                         .call_async(
                             Endpoint::from("127.0.0.1", 9).value(), pattern(10, 1),
                             [&](Expected<Message, int> r) {
                                 ASSERT_FALSE(r.has_value());
                                 error = r.error();
                             },
                             60s)
                         .value();
    EXPECT_NE(id, 0u);
    ASSERT_TRUE(run_until(loop, [&] { return error.has_value(); }));
    EXPECT_EQ(*error, ETIMEDOUT);
    EXPECT_EQ(loop.pending_calls(), 0u);
}

TEST(EventLoop, stop__from_another_thread_ends_run) {
    auto loop = EventLoop::create().value();
    std::atomic<bool> returned{false};
    std::thread runner([&] {
        EXPECT_TRUE(loop.run().has_value());
        returned = true;
    });
    std::this_thread::sleep_for(20ms);  // usually inside epoll by now; either way works
    loop.stop();
    runner.join();
    EXPECT_TRUE(returned);
    // A stop with no run in progress makes the next run return at once.
    loop.stop();
    EXPECT_TRUE(loop.run().has_value());
}

TEST(EventLoop, destructor__completes_pending_calls_with_ECANCELED) {
    auto transport = Transport::create().value();
    auto server = open_server(transport, 3);
    std::vector<Message> held;
    auto client = Socket::open(transport).value();
    std::vector<int> errors;
    std::future<Expected<Message, int>> future;
    {
        auto loop = EventLoop::create().value();
        ASSERT_TRUE(loop.add(server, [&](Message m) { held.push_back(std::move(m)); }).has_value());
        ASSERT_TRUE(loop.add(client).has_value());
        for (int i = 0; i < 4; ++i) {
            ASSERT_TRUE(client
                            .call_async(server.endpoint("127.0.0.1"), pattern(100, 1),
                                        [&](Expected<Message, int> r) {
                                            errors.push_back(r.has_value() ? 0 : r.error());
                                        })
                            .has_value());
        }
        future = client.call_future(server.endpoint("127.0.0.1"), pattern(100, 2));
        ASSERT_TRUE(run_until(loop, [&] { return held.size() == 5; }));
        EXPECT_EQ(loop.pending_calls(), 5u);
        EXPECT_TRUE(errors.empty());
    }
    EXPECT_EQ(errors, std::vector<int>(4, ECANCELED));
    ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(future.get().error(), ECANCELED);
    // The socket is detached: it can join another loop; calls need one.
    EXPECT_EQ(
        client
            .call_async(server.endpoint("127.0.0.1"), pattern(1, 1), [](Expected<Message, int>) {})
            .error(),
        EINVAL);
    auto other = EventLoop::create().value();
    EXPECT_TRUE(other.add(client).has_value());
}

TEST(EventLoop, destructor__waits_for_run_in_another_thread) {
    auto transport = Transport::create().value();
    auto server = open_server(transport, 8);
    std::atomic<int> held{0};
    std::vector<Message> kept;  // touched only by the loop thread
    auto client = Socket::open(transport).value();
    std::optional<EventLoop> loop = EventLoop::create().value();
    ASSERT_TRUE(loop->add(server,
                          [&](Message m) {
                              kept.push_back(std::move(m));
                              ++held;
                          })
                    .has_value());
    ASSERT_TRUE(loop->add(client).has_value());
    auto future = client.call_future(server.endpoint("127.0.0.1"), pattern(100, 1));
    std::atomic<bool> returned{false};
    std::thread runner([&, l = &*loop] {
        EXPECT_TRUE(l->run().has_value());
        returned = true;
    });
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (held == 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
    ASSERT_EQ(held.load(), 1);
    loop.reset();  // stops run() in the other thread, then cancels
    ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(future.get().error(), ECANCELED);
    runner.join();
    EXPECT_TRUE(returned);
}

TEST(EventLoop, remove__cancels_the_sockets_calls_on_the_next_round) {
    auto transport = Transport::create().value();
    auto loop = EventLoop::create().value();
    auto server = open_server(transport, 4);
    std::vector<Message> held;
    ASSERT_TRUE(loop.add(server, [&](Message m) { held.push_back(std::move(m)); }).has_value());
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(loop.add(client).has_value());
    std::optional<int> error;
    ASSERT_TRUE(
        client
            .call_async(server.endpoint("127.0.0.1"), pattern(10, 1),
                        [&](Expected<Message, int> r) { error = r.has_value() ? 0 : r.error(); })
            .has_value());
    ASSERT_TRUE(run_until(loop, [&] { return held.size() == 1; }));
    ASSERT_TRUE(loop.remove(client).has_value());
    EXPECT_FALSE(error.has_value());  // delivered by the loop thread, not by remove
    EXPECT_EQ(loop.pending_calls(), 0u);
    ASSERT_TRUE(loop.run_once(0ns).has_value());
    EXPECT_EQ(error, ECANCELED);
    EXPECT_EQ(loop.remove(client).error(), EINVAL);  // no longer attached
}

TEST(EventLoop, socket_destruction__cancels_its_calls) {
    auto transport = Transport::create().value();
    auto loop = EventLoop::create().value();
    auto server = open_server(transport, 5);
    std::vector<Message> held;
    ASSERT_TRUE(loop.add(server, [&](Message m) { held.push_back(std::move(m)); }).has_value());
    std::optional<int> error;
    {
        auto client = Socket::open(transport).value();
        ASSERT_TRUE(loop.add(client).has_value());
        ASSERT_TRUE(client
                        .call_async(server.endpoint("127.0.0.1"), pattern(10, 1),
                                    [&](Expected<Message, int> r) {
                                        error = r.has_value() ? 0 : r.error();
                                    })
                        .has_value());
        ASSERT_TRUE(run_until(loop, [&] { return held.size() == 1; }));
    }
    ASSERT_TRUE(run_until(loop, [&] { return error.has_value(); }));
    EXPECT_EQ(*error, ECANCELED);
}

TEST(EventLoop, fd__readable_for_an_outer_poll_loop) {
    auto transport = Transport::create().value();
    auto loop = EventLoop::create().value();
    auto server = open_server(transport, 6);
    attach_echo(loop, server);
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(loop.add(client).has_value());
    // Idle: not readable, and run_once(0) returns at once with nothing.
    pollfd p{loop.fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0);
    EXPECT_EQ(loop.run_once(0ns).value(), 0u);

    const auto request = pattern(2000, 3);
    std::optional<std::vector<std::byte>> reply;
    ASSERT_TRUE(client
                    .call_async(server.endpoint("127.0.0.1"), request,
                                [&](Expected<Message, int> r) { reply = r.value().to_vector(); })
                    .has_value());
    // An outer loop: poll the loop's fd, then run_once(0) without blocking.
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (!reply && std::chrono::steady_clock::now() < end) {
        p.revents = 0;
        if (::poll(&p, 1, 1000) == 1) {
            ASSERT_TRUE(loop.run_once(0ns).has_value());
        }
    }
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(*reply, request);
}

TEST(EventLoop, run_once__errors) {
    auto transport = Transport::create().value();
    auto loop = EventLoop::create().value();
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(loop.add(client).has_value());
    EXPECT_EQ(loop.add(client).error(), EINVAL);  // already attached
    auto other = EventLoop::create().value();
    EXPECT_EQ(other.add(client).error(), EINVAL);
    EXPECT_EQ(other.remove(client).error(), EINVAL);

    // From a callback: the loop is busy.
    auto server = open_server(transport, 7);
    std::optional<int> inner;
    ASSERT_TRUE(loop.add(server,
                         [&](Message m) {
                             auto r = loop.run_once(0ns);
                             inner = r.has_value() ? 0 : r.error();
                             (void)server.reply(m, m.to_vector());
                         })
                    .has_value());
    bool answered = false;
    ASSERT_TRUE(client
                    .call_async(server.endpoint("127.0.0.1"), pattern(5, 5),
                                [&](Expected<Message, int> r) { answered = r.has_value(); })
                    .has_value());
    ASSERT_TRUE(run_until(loop, [&] { return answered; }));
    EXPECT_EQ(inner, EBUSY);

    // A moved-from loop.
    EventLoop moved = std::move(other);
    EXPECT_EQ(other.run_once(0ns).error(), EINVAL);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(other.fd(), -1);                       // NOLINT(bugprone-use-after-move)
    EXPECT_GE(moved.fd(), 0);
}

TEST(EventLoop, call_async__errors_are_returned_without_a_callback) {
    auto transport = Transport::create().value();
    auto client = Socket::open(transport).value();
    const auto to = Endpoint::from("127.0.0.1", 9).value();
    int callbacks = 0;
    auto count = [&](Expected<Message, int>) { ++callbacks; };
    // Not attached to a loop.
    EXPECT_EQ(client.call_async(to, pattern(10, 1), count).error(), EINVAL);
    auto f = client.call_future(to, pattern(10, 1));
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(f.get().error(), EINVAL);

    auto loop = EventLoop::create().value();
    ASSERT_TRUE(loop.add(client).has_value());
    EXPECT_EQ(client.call_async(to, {}, count).error(), EINVAL);                   // empty
    EXPECT_EQ(client.call_async(to, pattern(1000001, 1), count).error(), EINVAL);  // too long
    EXPECT_EQ(client.call_async(to, pattern(10, 1), Socket::Completion{}).error(), EINVAL);
    EXPECT_EQ(loop.pending_calls(), 0u);
    EXPECT_EQ(loop.run_once(0ns).value(), 0u);
    EXPECT_EQ(callbacks, 0);
}

}  // namespace
}  // namespace uhoma
