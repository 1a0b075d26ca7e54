// uhoma's C++ API: Homa RPCs over UDP (or raw IP), in user space.
//
//   auto transport = uhoma::Transport::create().value();
//   auto server = uhoma::Socket::open(transport, 4000).value();     // a server port
//   auto client = uhoma::Socket::open(transport).value();           // a client
//   auto reply = client.call(server.endpoint("127.0.0.1"), request).value();
//
// Sockets, received messages and the transport are RAII objects. A received
// Message is a view into the socket's receive region; its buffers go back to
// the region when the Message is destroyed, so keep it only as long as
// needed. Errors are errno values, as Linux Homa returns them.
//
// Event-driven programs: include/uhoma/async.h adds an EventLoop (request
// handlers, completion callbacks, an epoll fd that nests in other loops)
// and Socket::call_async / call_future.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uhoma/expected.h"

namespace uhoma {

namespace runtime {
class Runtime;
}

using RpcId = std::uint64_t;
using Timeout = std::optional<std::chrono::nanoseconds>;  // nullopt: wait forever

// An IPv4 or IPv6 address and a port. IPv4 is kept IPv4-mapped.
struct Endpoint {
    std::array<std::uint8_t, 16> address{};
    std::uint16_t port = 0;

    // "10.0.0.1:4000", "[fd00::1]:4000". Errors: a one-line message.
    static Expected<Endpoint, std::string> parse(std::string_view text);
    // A numeric address ("127.0.0.1", "::1") and a port.
    static Expected<Endpoint, std::string> from(std::string_view address, std::uint16_t port);
    std::string to_string() const;
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct Options {
    // Protocol parameters by their Linux sysctl names ("unsched_bytes",
    // "poll_usecs", ...). Environment variables UHOMA_<NAME> (e.g.
    // UHOMA_UNSCHED_BYTES=60000) and a file named by UHOMA_CONFIG with
    // `name = value` lines are applied first; these override them.
    std::vector<std::pair<std::string, std::string>> parameters;
    bool ipv6 = false;  // dual-stack sockets ([::]) instead of IPv4 only
};

class Transport {
public:
    // Errors: a one-line message naming a bad parameter or resource.
    static Expected<std::shared_ptr<Transport>, std::string> create(const Options& options = {});
    ~Transport();
    // Every counter in Linux Homa's /proc/net/homa_metrics text format.
    std::string metrics_text() const;
    runtime::Runtime& runtime() { return *runtime_; }

private:
    explicit Transport(std::unique_ptr<runtime::Runtime> runtime);
    std::unique_ptr<runtime::Runtime> runtime_;
    std::shared_ptr<void> control_;  // observability: control socket registration (api/observability.h)
};

class Socket;
class EventLoop;

// Batches this thread's sends on one transport, as MSG_MORE batches bytes:
// the packets of send_request() and reply() calls (and of releasing
// Messages) made while a SendBatch lives leave together when it ends or at
// flush(), in one sendmmsg, and packets of one size to one peer as one UDP
// GSO train, which the peer's kernel also delivers as one datagram. For a
// thread issuing several messages back to back: a server answering every
// request that a blocking receive() and then zero-timeout receive()s
// returned, a client starting several RPCs. A receive() that may wait sends
// the batch first, so a batch never holds packets while its thread sleeps.
// Batches nest; one opened while the thread has a batch on another
// transport has no effect (its sends go at once). Keep batches short (no
// blocking work inside): held packets look lost to the peers, and after
// resend_ticks (a few ms) the protocol starts recovering them. The
// transport must outlive the batch.
class SendBatch {
public:
    explicit SendBatch(Transport& transport);
    ~SendBatch();
    SendBatch(const SendBatch&) = delete;
    SendBatch& operator=(const SendBatch&) = delete;
    // Sends what the batch holds now; the batch goes on.
    void flush();

private:
    Transport& transport_;
    bool active_;
};

class Message {
public:
    Message(Message&&) noexcept;
    Message& operator=(Message&&) noexcept;
    ~Message();

    RpcId id() const { return id_; }
    bool is_request() const { return (id_ & 1) == 1; }
    const Endpoint& peer() const { return peer_; }
    std::uint64_t cookie() const { return cookie_; }
    std::size_t size() const { return length_; }
    // The bytes, in up to 16 chunks of at most 64 KiB (not contiguous).
    std::size_t chunk_count() const { return num_chunks_; }
    std::span<const std::byte> chunk(std::size_t index) const;
    std::vector<std::byte> to_vector() const;

private:
    friend struct MessageBuilder;
    Message() = default;
    void release();
    std::shared_ptr<struct SocketShared> socket_;
    RpcId id_ = 0;
    Endpoint peer_;
    std::uint64_t cookie_ = 0;
    std::uint32_t length_ = 0;
    std::uint32_t num_chunks_ = 0;
    std::array<std::uint32_t, 16> offsets_{};
};

class Socket {
public:
    // A client socket (automatic port), or with port 1..32767 a server
    // socket on that port, with a receive region of `region_bytes`.
    // Errors: EADDRINUSE, EINVAL, ENOMEM, errno from the UDP socket.
    static Expected<Socket, int> open(std::shared_ptr<Transport> transport,
                                      std::uint16_t server_port = 0,
                                      std::size_t region_bytes = 64u << 20);
    Socket(Socket&&) noexcept;
    // Closes (and detaches from its EventLoop) the socket assigned over.
    Socket& operator=(Socket&&) noexcept;
    // Detaches from its EventLoop (pending async calls complete with
    // ECANCELED); the socket closes when its last Message is gone.
    ~Socket();

    std::uint16_t port() const;
    // This socket's endpoint as reached at `address` (e.g. "127.0.0.1").
    Endpoint endpoint(std::string_view address) const;

    // Starts an RPC; the response arrives through receive().
    // Errors: EINVAL (length 0 or > 1,000,000), EAGAIN (send memory full).
    Expected<RpcId, int> send_request(const Endpoint& server, std::span<const std::byte> request,
                                      std::uint64_t cookie = 0);
    // A request or a response. A failed RPC's response comes back as the
    // error it failed with (ETIMEDOUT, ...), with its id in `failed_id()`.
    // Errors: EAGAIN (timeout), ESHUTDOWN, or the RPC's error.
    Expected<Message, int> receive(Timeout timeout = std::nullopt);
    // A complete synchronous RPC (private: its response never goes to
    // receive()). Errors: as send_request, the RPC's error (ETIMEDOUT, ...),
    // EAGAIN if `timeout` passes first (the RPC is then aborted).
    Expected<Message, int> call(const Endpoint& server, std::span<const std::byte> request,
                                Timeout timeout = std::nullopt);
    // Sends the response to `request`. Errors: EINVAL, ESHUTDOWN.
    Expected<std::monostate, int> reply(const Message& request, std::span<const std::byte> response);
    // A file descriptor that is readable while receive() would not block,
    // for epoll loops.
    int ready_fd() const;
    // The id of the RPC whose failure the last receive() reported.
    RpcId failed_id() const { return failed_id_; }

    // Asynchronous calls (include/uhoma/async.h), on a socket attached to an
    // EventLoop. `done` runs exactly once, on the loop's thread, with the
    // response or the RPC's error: ETIMEDOUT etc. (spec 2.6), EAGAIN if
    // `timeout` passed first (the RPC is then aborted), ECANCELED if the
    // socket left the loop or the loop was destroyed first. Any thread.
    // Errors (and then `done` never runs): EINVAL (not attached to a live
    // loop, empty `done`, length 0 or > 1,000,000), EAGAIN (send memory
    // full), ESHUTDOWN.
    using Completion = std::function<void(Expected<Message, int>)>;
    Expected<RpcId, int> call_async(const Endpoint& server, std::span<const std::byte> request,
                                    Completion done, Timeout timeout = std::nullopt);
    // As call_async, with the outcome (including call_async's own errors)
    // in a future. Never wait on it from the loop's own thread.
    std::future<Expected<Message, int>> call_future(const Endpoint& server,
                                                    std::span<const std::byte> request,
                                                    Timeout timeout = std::nullopt);

private:
    friend class EventLoop;
    Socket() = default;
    void detach();
    std::shared_ptr<struct SocketShared> shared_;
    RpcId failed_id_ = 0;
};

}  // namespace uhoma
