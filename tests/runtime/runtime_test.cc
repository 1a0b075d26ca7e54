#include "runtime/runtime.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

namespace uhoma::runtime {
namespace {

using namespace std::chrono_literals;

// A receive region for one socket, unmapped at the end of the test.
class Region {
public:
    explicit Region(std::size_t bytes) : bytes_(bytes) {
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) base_ = static_cast<std::byte*>(p);
    }
    ~Region() {
        if (base_ != nullptr) ::munmap(base_, bytes_);
    }
    std::span<std::byte> span() { return {base_, bytes_}; }
    std::byte* data() { return base_; }

private:
    std::byte* base_ = nullptr;
    std::size_t bytes_;
};

struct Node {
    std::unique_ptr<Runtime> runtime;
    SocketId server = 0;
    SocketId client = 0;
    std::uint16_t server_port = 0;
    Region server_region{4u << 20};
    Region client_region{4u << 20};
};

// A runtime with a server socket (port from `port`, trying upwards while
// taken) and a client socket, both with receive regions.
std::unique_ptr<Node> make_node(DriverKind driver, std::uint32_t poll_usecs, std::uint16_t port) {
    RuntimeOptions options;
    options.driver = driver;
    options.poll_usecs = poll_usecs;
    auto runtime = Runtime::create(options);
    if (!runtime) {
        ADD_FAILURE() << runtime.error();
        return nullptr;
    }
    auto node = std::make_unique<Node>();
    node->runtime = std::move(*runtime);
    Runtime& rt = *node->runtime;
    node->server = rt.open_socket().value();
    node->client = rt.open_socket().value();
    for (;; ++port) {
        auto bound = rt.bind(node->server, port);
        if (bound) break;
        if (bound.error() != EADDRINUSE || port > 30000) {
            ADD_FAILURE() << "bind: " << std::strerror(bound.error());
            return nullptr;
        }
    }
    node->server_port = port;
    EXPECT_TRUE(rt.set_server(node->server, true).has_value());
    EXPECT_TRUE(rt.set_receive_buffer(node->server, node->server_region.span()).has_value());
    EXPECT_TRUE(rt.set_receive_buffer(node->client, node->client_region.span()).has_value());
    return node;
}

engine::Endpoint loopback(std::uint16_t port) {
    engine::Endpoint e;
    e.address = engine::Address::ipv4(127, 0, 0, 1);
    e.port = port;
    return e;
}

std::vector<std::byte> pattern(std::size_t size, std::uint8_t seed) {
    std::vector<std::byte> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
    return bytes;
}

// The message's bytes, gathered from its bpages.
std::vector<std::byte> gather(Region& region, const engine::ReceivedMessage& m) {
    std::vector<std::byte> bytes;
    std::size_t left = m.length;
    for (std::uint32_t i = 0; i < m.num_bpages && left > 0; ++i) {
        const std::size_t n = std::min<std::size_t>(left, 65536);
        const std::byte* p = region.data() + m.bpage_offsets[i];
        bytes.insert(bytes.end(), p, p + n);
        left -= n;
    }
    return bytes;
}

// One echo RPC of `size` bytes through node's own server; returns whether
// the response matched.
void echo_rpc(Node& node, std::size_t size, std::uint8_t seed) {
    Runtime& rt = *node.runtime;
    const auto request = pattern(size, seed);
    auto id = rt.send_request(node.client, loopback(node.server_port), request, 42, false);
    ASSERT_TRUE(id.has_value()) << std::strerror(id.error());
    auto in = rt.receive(node.server, 0, 5s);
    ASSERT_TRUE(in.has_value()) << std::strerror(in.error());
    EXPECT_EQ(gather(node.server_region, *in), request);
    const auto response = gather(node.server_region, *in);
    ASSERT_TRUE(rt.send_reply(node.server, in->peer, in->id, response).has_value());
    ASSERT_TRUE(rt.release_bpages(node.server, std::span(in->bpage_offsets.data(), in->num_bpages)).has_value());
    auto out = rt.receive(node.client, 0, 5s);
    ASSERT_TRUE(out.has_value()) << std::strerror(out.error());
    EXPECT_EQ(out->id, *id);
    EXPECT_EQ(out->completion_cookie, 42u);
    EXPECT_EQ(gather(node.client_region, *out), request);
    ASSERT_TRUE(rt.release_bpages(node.client, std::span(out->bpage_offsets.data(), out->num_bpages)).has_value());
}

// Counts IP-protocol-146 packets to or from `port` seen on the host, from
// a raw socket of the test's own (what Wireshark would see).
class RawSniffer {
public:
    RawSniffer() : fd_(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 146)) {
        const int bytes = 32 << 20;  // holds the whole test's traffic
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes));
    }
    ~RawSniffer() {
        if (fd_ >= 0) ::close(fd_);
    }
    int count_for(std::uint16_t port) {
        std::byte buffer[2048];
        for (;;) {
            const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
            if (n < 0) break;
            const std::size_t ihl = (std::to_integer<std::size_t>(buffer[0]) & 0xf) * 4;
            if (static_cast<std::size_t>(n) < ihl + 4) continue;
            const auto sport = static_cast<std::uint16_t>((std::to_integer<unsigned>(buffer[ihl]) << 8) |
                                                          std::to_integer<unsigned>(buffer[ihl + 1]));
            const auto dport = static_cast<std::uint16_t>((std::to_integer<unsigned>(buffer[ihl + 2]) << 8) |
                                                          std::to_integer<unsigned>(buffer[ihl + 3]));
            if (sport == port || dport == port) ++count_;
        }
        return count_;
    }

private:
    int fd_;
    int count_ = 0;
};

TEST(Runtime, create__raw_driver_sends_ip_protocol_146) {
    if (geteuid() != 0) GTEST_SKIP() << "driver=raw needs CAP_NET_RAW (root)";
    RawSniffer sniffer;
    auto node = make_node(DriverKind::raw, 50, 21000);
    ASSERT_TRUE(node);
    echo_rpc(*node, 100, 1);
    echo_rpc(*node, 300'000, 2);  // many packets: grants, MTU-sized raw datagrams
    const auto m = node->runtime->metrics();
    // 300 KB each way in MTU-sized packets, plus grants, all seen as IP 146.
    EXPECT_GE(m.packets_rcvd_DATA, 2u * 300'000 / 1500);
    EXPECT_GE(sniffer.count_for(node->server_port),
              static_cast<int>(m.packets_rcvd_DATA / 2));
}

TEST(Runtime, create__udp_driver_sends_no_ip_protocol_146) {
    if (geteuid() != 0) GTEST_SKIP() << "the check sniffs with a raw socket (root)";
    RawSniffer sniffer;
    auto node = make_node(DriverKind::udp, 50, 21100);
    ASSERT_TRUE(node);
    echo_rpc(*node, 20'000, 3);
    EXPECT_EQ(sniffer.count_for(node->server_port), 0);
}

// Sends SIGUSR1 (handler installed with SA_RESTART, which must not matter)
// to `thread` every 5 ms until `done`.
std::atomic<int> signals_handled{0};
void on_signal(int) { signals_handled.fetch_add(1); }

void install_handler() {
    struct sigaction action {};
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    ASSERT_EQ(::sigaction(SIGUSR1, &action, nullptr), 0);
}

// A receive(server, any) on its own thread, which the test can signal.
class WaitingThread {
public:
    WaitingThread(Node& node, bool interruptible)
        : result_(std::async(std::launch::async, [this, &node, interruptible] {
              thread_ = ::pthread_self();
              started_ = true;
              auto r = node.runtime->receive(node.server, 0, std::nullopt, interruptible);
              done_ = true;
              return r;
          })) {
        while (!started_) std::this_thread::yield();  // pthread_kill needs a live thread id
    }
    void signal() { ::pthread_kill(thread_.load(), SIGUSR1); }
    bool done() const { return done_; }
    Expected<engine::ReceivedMessage, int> result() { return result_.get(); }

private:
    std::atomic<pthread_t> thread_{};
    std::atomic<bool> started_{false};
    std::atomic<bool> done_{false};
    std::future<Expected<engine::ReceivedMessage, int>> result_;
};

TEST(Runtime, receive__interruptible_wait_ends_with_eintr_on_a_signal) {
    install_handler();
    auto node = make_node(DriverKind::udp, 0, 21200);
    ASSERT_TRUE(node);
    WaitingThread waiter(*node, true);
    while (!waiter.done()) {
        std::this_thread::sleep_for(5ms);
        if (!waiter.done()) waiter.signal();
    }
    auto r = waiter.result();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), EINTR);
    // The socket still works: the interrupted waiter left no trace.
    echo_rpc(*node, 1000, 4);
}

TEST(Runtime, receive__uninterruptible_wait_survives_signals) {
    install_handler();
    auto node = make_node(DriverKind::udp, 0, 21300);
    ASSERT_TRUE(node);
    WaitingThread waiter(*node, false);
    const int before = signals_handled.load();
    while (signals_handled.load() < before + 10) {
        std::this_thread::sleep_for(2ms);
        waiter.signal();
    }
    EXPECT_FALSE(waiter.done());
    const auto request = pattern(500, 5);
    ASSERT_TRUE(node->runtime->send_request(node->client, loopback(node->server_port), request, 0, false));
    auto r = waiter.result();
    ASSERT_TRUE(r.has_value()) << std::strerror(r.error());
    EXPECT_EQ(gather(node->server_region, *r), request);
}

TEST(Runtime, receive__timeout_while_asleep_is_eagain) {
    auto node = make_node(DriverKind::udp, 0, 21400);
    ASSERT_TRUE(node);
    const auto start = std::chrono::steady_clock::now();
    auto r = node->runtime->receive(node->server, 0, 20ms, true);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), EAGAIN);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

TEST(Runtime, close_socket__wakes_a_sleeping_waiter_with_eshutdown) {
    auto node = make_node(DriverKind::udp, 0, 21500);
    ASSERT_TRUE(node);
    auto result = std::async(std::launch::async,
                             [&] { return node->runtime->receive(node->server, 0, std::nullopt); });
    std::this_thread::sleep_for(100ms);  // the waiter is asleep by then
    node->runtime->close_socket(node->server);
    auto r = result.get();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), ESHUTDOWN);
}

// Whether `fd` becomes readable within `limit`.
bool readable_within(int fd, std::chrono::milliseconds limit) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(limit.count())) == 1 && (p.revents & POLLIN) != 0;
}

TEST(Runtime, receive__busy_poll_lease_ends_and_the_background_thread_serves_the_socket_again) {
    // A busy-polling receiver keeps its socket for poll_usecs after it
    // returns (nobody else takes its packets meanwhile). If the application
    // then stops receiving, the lease must end and the background thread
    // must take the socket back: a request arriving afterwards still makes
    // the socket's readiness descriptor readable.
    auto node = make_node(DriverKind::udp, 50000, 21600);
    ASSERT_TRUE(node);
    Runtime& rt = *node->runtime;
    // The request arrives while the receiver busy-polls (50 ms window), so
    // the receiver leaves with a 50 ms lease and never comes back.
    auto waiting = std::async(std::launch::async, [&] { return rt.receive(node->server, 0, 5s); });
    std::this_thread::sleep_for(5ms);
    const auto first = pattern(100, 1);
    ASSERT_TRUE(rt.send_request(node->client, loopback(node->server_port), first, 7, false).has_value());
    auto got = waiting.get();
    ASSERT_TRUE(got.has_value()) << std::strerror(got.error());
    EXPECT_EQ(gather(node->server_region, *got), first);

    const int ready = rt.ready_fd(node->server).value();
    const auto second = pattern(3000, 2);
    ASSERT_TRUE(rt.send_request(node->client, loopback(node->server_port), second, 8, false).has_value());
    EXPECT_TRUE(readable_within(ready, 2000ms));
    auto in = rt.receive(node->server, 0, 0ms);
    ASSERT_TRUE(in.has_value()) << std::strerror(in.error());
    EXPECT_EQ(gather(node->server_region, *in), second);
}

TEST(Runtime, receive__busy_poll_lease_survives_back_to_back_rpcs) {
    // Many RPCs with busy-polling receivers on both sides (each receive
    // returns, leases, and the next one takes the socket again), with
    // messages long enough to need grants and the pacer while only the
    // application threads poll.
    auto node = make_node(DriverKind::udp, 200, 21700);
    ASSERT_TRUE(node);
    for (std::uint8_t i = 0; i < 50; ++i) echo_rpc(*node, i % 2 == 0 ? 100 : 300000, i);
}

TEST(Runtime, claim__background_thread_leaves_a_claimed_socket_to_its_poller) {
    auto node = make_node(DriverKind::udp, 0, 21800);
    ASSERT_TRUE(node);
    Runtime& rt = *node->runtime;
    ASSERT_TRUE(rt.socket_fds(node->server).has_value());
    EXPECT_GT(rt.socket_fds(node->server)->count, 0u);
    ASSERT_TRUE(rt.claim(node->server));
    EXPECT_FALSE(rt.claim(node->server));  // one poller at a time
    const int ready = rt.ready_fd(node->server).value();
    const auto request = pattern(500, 3);
    ASSERT_TRUE(rt.send_request(node->client, loopback(node->server_port), request, 1, false).has_value());
    // Nobody but the claimer may move the server's packets.
    EXPECT_FALSE(readable_within(ready, 200ms));
    bool moved = false;
    for (int i = 0; i < 100 && !moved; ++i) {
        moved = rt.poll_socket(node->server);
        if (!moved) std::this_thread::sleep_for(1ms);
    }
    EXPECT_TRUE(moved);
    EXPECT_TRUE(readable_within(ready, 0ms));
    auto in = rt.receive(node->server, 0, 0ms);
    ASSERT_TRUE(in.has_value()) << std::strerror(in.error());
    EXPECT_EQ(gather(node->server_region, *in), request);

    // Unclaimed, the background thread serves the socket again.
    rt.unclaim(node->server);
    const auto second = pattern(700, 4);
    ASSERT_TRUE(rt.send_request(node->client, loopback(node->server_port), second, 2, false).has_value());
    EXPECT_TRUE(readable_within(ready, 2000ms));
    EXPECT_TRUE(rt.claim(node->server));
    rt.unclaim(node->server);
}

TEST(Runtime, runtime_default_config__admits_a_full_gso_train_per_pacer_release) {
    const RuntimeOptions options;
    EXPECT_EQ(options.config.max_nic_est_backlog_usecs, 20u);
    // Everything else is Linux Homa's default.
    engine::Config linux_defaults;
    linux_defaults.max_nic_est_backlog_usecs = 20;
    EXPECT_EQ(options.config.unsched_bytes, linux_defaults.unsched_bytes);
    EXPECT_EQ(options.config.link_mbps, linux_defaults.link_mbps);
}

}  // namespace
}  // namespace uhoma::runtime
