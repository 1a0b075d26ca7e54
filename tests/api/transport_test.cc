// The C++ API end to end over real UDP sockets on loopback.
#include "uhoma/transport.h"

#include <gtest/gtest.h>

#include "support/bytes.h"
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <cerrno>
#include <random>
#include <thread>

#include "workload/workload.h"

namespace uhoma {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> pattern(std::size_t n, std::uint64_t seed) {
    return test::random_bytes(n, seed);
}

// A server socket on the first free port from `first` up: ctest runs test
// processes in parallel, and pid-derived ports of two of them can meet.
Socket open_server(const std::shared_ptr<Transport>& t, std::uint16_t first) {
    for (std::uint16_t port = first;; ++port) {
        auto s = Socket::open(t, port);
        if (s || s.error() != EADDRINUSE || port >= 32000) return std::move(s).value();
    }
}

// An echo server on its own thread: replies with the request's bytes.
class EchoServer {
public:
    EchoServer(std::shared_ptr<Transport> t, std::uint16_t port)
        : socket_(open_server(t, port)) {
        thread_ = std::thread([this] {
            while (!stop_) {
                auto m = socket_.receive(20ms);
                if (!m) continue;
                const auto bytes = m->to_vector();
                if (!socket_.reply(*m, bytes)) errors_++;
                served_++;
            }
        });
    }
    ~EchoServer() {
        stop_ = true;
        thread_.join();
    }
    Socket& socket() { return socket_; }
    std::uint64_t served() const { return served_; }
    std::uint64_t errors() const { return errors_; }

private:
    Socket socket_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> served_{0}, errors_{0};
    std::thread thread_;
};

std::uint16_t test_port() { return static_cast<std::uint16_t>(1000 + ::getpid() % 30000); }

TEST(Transport, call__echo_round_trip_on_loopback) {
    auto transport = Transport::create().value();
    EchoServer server(transport, test_port());
    auto client = Socket::open(transport).value();
    EXPECT_GE(client.port(), 0x8000);
    const auto request = pattern(100, 1);
    auto reply = client.call(server.socket().endpoint("127.0.0.1"), request, 2s);
    ASSERT_TRUE(reply.has_value()) << reply.error();
    EXPECT_EQ(reply->to_vector(), request);
    EXPECT_FALSE(reply->is_request());
}

TEST(Transport, call__two_processes_worth_of_transports) {
    // Client and server in separate transports (as separate processes
    // would be): everything crosses real UDP sockets.
    auto server_side = Transport::create().value();
    auto client_side = Transport::create().value();
    EchoServer server(server_side, static_cast<std::uint16_t>(test_port() + 1));
    auto client = Socket::open(client_side).value();
    const auto w4 = workload::Distribution::load("w4", workload::default_data_dir()).value();
    std::mt19937 rng(4);
    for (int i = 0; i < 300; ++i) {
        const auto request = pattern(w4.sample(rng), static_cast<std::uint64_t>(i));
        auto reply = client.call(server.socket().endpoint("127.0.0.1"), request, 5s);
        ASSERT_TRUE(reply.has_value()) << "rpc " << i << ": " << reply.error();
        ASSERT_EQ(reply->to_vector(), request) << "rpc " << i;
    }
    EXPECT_EQ(server.errors(), 0u);
}

TEST(Transport, receive__asynchronous_requests_and_ready_fd) {
    auto transport = Transport::create().value();
    EchoServer server(transport, static_cast<std::uint16_t>(test_port() + 2));
    auto client = Socket::open(transport).value();
    std::map<RpcId, std::pair<std::vector<std::byte>, std::uint64_t>> sent;
    for (int i = 0; i < 20; ++i) {
        auto request = pattern(1000 + static_cast<std::size_t>(i) * 5000, static_cast<std::uint64_t>(i));
        const std::uint64_t cookie = 1000 + static_cast<std::uint64_t>(i);
        const RpcId id =
            client.send_request(server.socket().endpoint("127.0.0.1"), request, cookie).value();
        sent[id] = {std::move(request), cookie};
    }
    // An epoll/poll user sees the socket become readable.
    pollfd p{client.ready_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    while (!sent.empty()) {
        auto m = client.receive(5s);
        ASSERT_TRUE(m.has_value()) << m.error();
        auto it = sent.find(m->id());
        ASSERT_NE(it, sent.end());
        EXPECT_EQ(m->cookie(), it->second.second);
        EXPECT_EQ(m->to_vector(), it->second.first);
        sent.erase(it);
    }
    EXPECT_EQ(client.receive(0ns).error(), EAGAIN);
}

TEST(Transport, call__times_out_when_nobody_answers) {
    auto transport = Transport::create({{{"timeout_ticks", "20"}}}).value();
    auto client = Socket::open(transport).value();
    // A port with no Homa socket behind it: packets vanish.
    auto r = client.call(Endpoint::from("127.0.0.1", 9).value(), pattern(10, 1));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), ETIMEDOUT);
}

TEST(Transport, open__server_port_in_use) {
    auto transport = Transport::create().value();
    auto a = Socket::open(transport, static_cast<std::uint16_t>(test_port() + 3)).value();
    auto b = Socket::open(transport, static_cast<std::uint16_t>(test_port() + 3));
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error(), EADDRINUSE);
}

TEST(Transport, create__bad_parameter_is_named) {
    auto t = Transport::create({{{"max_overcommit", "99"}}});
    ASSERT_FALSE(t.has_value());
    EXPECT_NE(t.error().find("max_overcommit"), std::string::npos) << t.error();
    auto u = Transport::create({{{"no_such_parameter", "1"}}});
    ASSERT_FALSE(u.has_value());
    EXPECT_NE(u.error().find("no_such_parameter"), std::string::npos);
}

TEST(Transport, metrics_text__homa_metrics_format) {
    auto transport = Transport::create().value();
    EchoServer server(transport, static_cast<std::uint16_t>(test_port() + 4));
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(client.call(server.socket().endpoint("127.0.0.1"), pattern(100, 1), 2s).has_value());
    const std::string text = transport->metrics_text();
    EXPECT_EQ(text.rfind("time_cycles", 0), 0u);
    EXPECT_NE(text.find("\nclient_requests_started "), std::string::npos);
    EXPECT_NE(text.find("\nmsg_bytes_128 "), std::string::npos);
}

TEST(SendBatch, send_request__packets_wait_until_the_batch_ends) {
    // Held packets look lost to the protocol: after resend_ticks of silence
    // the client would ask for the response and resend the request. Hold
    // them far shorter than that here, as a batch should.
    Options options;
    options.parameters.emplace_back("timeout_ticks", "20000");
    options.parameters.emplace_back("resend_ticks", "10000");
    auto transport = Transport::create(options).value();
    auto server = open_server(transport, static_cast<std::uint16_t>(test_port() + 4));
    auto client = Socket::open(transport).value();
    const auto destination = server.endpoint("127.0.0.1");
    std::vector<std::vector<std::byte>> sent;
    {
        SendBatch batch(*transport);
        for (std::uint64_t i = 0; i < 3; ++i) {
            sent.push_back(pattern(100, i));
            ASSERT_TRUE(client.send_request(destination, sent.back()).has_value());
        }
        // Nothing has left this thread: a server thread waits in vain.
        auto early = std::async(std::launch::async, [&] { return server.receive(200ms); });
        auto r = early.get();
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error(), EAGAIN);
    }
    std::vector<std::vector<std::byte>> received;
    for (int i = 0; i < 3; ++i) {
        auto m = server.receive(5s);
        ASSERT_TRUE(m.has_value()) << m.error();
        received.push_back(m->to_vector());
    }
    std::sort(sent.begin(), sent.end());
    std::sort(received.begin(), received.end());
    EXPECT_EQ(received, sent);
}

TEST(SendBatch, receive__a_wait_sends_the_batch_first) {
    auto transport = Transport::create().value();
    EchoServer server(transport, static_cast<std::uint16_t>(test_port() + 5));
    auto client = Socket::open(transport).value();
    SendBatch batch(*transport);
    const auto request = pattern(3000, 9);
    ASSERT_TRUE(client.send_request(server.socket().endpoint("127.0.0.1"), request).has_value());
    // With the request still held, this would wait forever.
    auto response = client.receive(5s);
    ASSERT_TRUE(response.has_value()) << response.error();
    EXPECT_EQ(response->to_vector(), request);
}

TEST(SendBatch, send_request__another_transport_sends_this_batch_before_its_own) {
    // The per-thread batch must never leave through the wrong transport's
    // sockets (they would be dropped): a send on another transport first
    // sends what the open batch holds.
    Options no_recovery;  // a dropped packet stays lost for the test's length
    no_recovery.parameters.emplace_back("timeout_ticks", "20000");
    no_recovery.parameters.emplace_back("resend_ticks", "10000");
    auto batched = Transport::create(no_recovery).value();
    auto other = Transport::create().value();
    auto server = open_server(other, static_cast<std::uint16_t>(test_port() + 6));
    auto client_batched = Socket::open(batched).value();
    auto client_other = Socket::open(other).value();
    const auto destination = server.endpoint("127.0.0.1");
    SendBatch batch(*batched);
    const auto first = pattern(200, 1);
    const auto second = pattern(300, 2);
    ASSERT_TRUE(client_batched.send_request(destination, first).has_value());
    {
        SendBatch ignored(*other);  // another transport's batch: no effect
        ASSERT_TRUE(client_other.send_request(destination, second).has_value());
    }
    std::vector<std::vector<std::byte>> received;
    auto serve = std::async(std::launch::async, [&] {
        for (int i = 0; i < 2; ++i) {
            auto m = server.receive(5s);
            if (!m) return;
            received.push_back(m->to_vector());
        }
    });
    serve.get();
    ASSERT_EQ(received.size(), 2u);
    EXPECT_TRUE((received[0] == first && received[1] == second) ||
                (received[0] == second && received[1] == first));
}

TEST(Endpoint, parse__forms_and_errors) {
    auto a = Endpoint::parse("10.1.2.3:99").value();
    EXPECT_EQ(a.port, 99);
    EXPECT_EQ(a.to_string(), "10.1.2.3:99");
    auto b = Endpoint::parse("[fd00::1]:4000").value();
    EXPECT_EQ(b.to_string(), "[fd00::1]:4000");
    EXPECT_FALSE(Endpoint::parse("nohost").has_value());
    EXPECT_FALSE(Endpoint::parse("1.2.3.4:0").has_value());
    EXPECT_FALSE(Endpoint::parse("1.2.3.4:70000").has_value());
    EXPECT_FALSE(Endpoint::parse("example.com:80").has_value());
}

}  // namespace
}  // namespace uhoma
