// The C++ API end to end over real UDP sockets on loopback.
#include "uhoma/transport.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <map>
#include <cerrno>
#include <random>
#include <thread>

#include "workload/workload.h"

namespace uhoma {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> pattern(std::size_t n, std::uint64_t seed) {
    std::vector<std::byte> v(n);
    std::mt19937_64 rng(seed);
    for (auto& b : v) b = static_cast<std::byte>(rng());
    return v;
}

// An echo server on its own thread: replies with the request's bytes.
class EchoServer {
public:
    EchoServer(std::shared_ptr<Transport> t, std::uint16_t port)
        : socket_(Socket::open(t, port).value()) {
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
