// uhoma-perf over Homa (uhoma's C++ API). Design notes are in perf.h.
//
// Wake modes map to the runtime's poll_usecs: busy sets it to
// --busy-poll-usecs (a waiting receive() pumps the sockets itself instead of
// sleeping), block sets 0 (the waiting thread sleeps at once and the
// runtime's background thread delivers), default leaves the configured
// value. --param NAME=VALUE overrides come last.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "uhoma-perf/perf.h"
#include "uhoma/async.h"
#include "uhoma/transport.h"

namespace uhoma::perf {

namespace {

using namespace std::chrono_literals;

std::span<const std::byte> bytes_of(const std::vector<std::uint8_t>& v, std::size_t n) {
    return {reinterpret_cast<const std::byte*>(v.data()), n};
}

// The response length the request's header asks for (its first chunk holds
// the header: a message's first chunk is at least min(size, 64 KiB)).
std::int64_t requested_response(const Message& m) {
    if (m.chunk_count() == 0) return -1;
    const auto first = m.chunk(0);
    return response_length(reinterpret_cast<const std::uint8_t*>(first.data()), first.size());
}

int serve(const Config& c, const std::shared_ptr<Transport>& transport) {
    std::optional<Socket> socket;
    if (c.port != 0) {
        auto s = Socket::open(transport, c.port);
        if (!s)
            return fail("cannot open Homa port " + std::to_string(c.port) + ": " +
                        std::strerror(s.error()));
        socket.emplace(std::move(*s));
    } else {
        // Pick a free server port, starting somewhere that depends on the pid.
        for (unsigned i = 0; i < 200 && !socket; ++i) {
            const auto port =
                static_cast<std::uint16_t>(20000 + (unsigned(getpid()) + i * 7) % 12000);
            auto s = Socket::open(transport, port);
            if (s)
                socket.emplace(std::move(*s));
            else if (s.error() != EADDRINUSE) {
                return fail(std::string("cannot open a Homa server port: ") +
                            std::strerror(s.error()));
            }
        }
        if (!socket) return fail("no free Homa server port in 20000..31999");
    }
    print_ready(socket->port());
    std::vector<std::uint8_t> response;
    ServerWindow window;
    // Answers one request; false if the reply failed.
    auto answer = [&](const Message& m) -> bool {
        const std::int64_t want = requested_response(m);
        if (want < 0 || want > 1000000) return true;  // malformed; let it time out
        const auto n = static_cast<std::size_t>(want);
        if (response.size() < n) response.resize(n);
        window.on_message(m.size(), c.test == Test::stream);
        if (auto r = socket->reply(m, bytes_of(response, n)); !r) {
            fail(std::string("reply failed: ") + std::strerror(r.error()));
            return false;
        }
        return true;
    };
    if (c.async_server) {
        // The same answers from an EventLoop's request handler.
        auto loop = EventLoop::create();
        if (!loop) return fail(std::string("cannot create an EventLoop: ") + std::strerror(loop.error()));
        bool failed = false;
        auto added = loop->add(*socket, [&](Message m) { failed |= !answer(m); });
        if (!added) return fail(std::string("EventLoop::add failed: ") + std::strerror(added.error()));
        while (!stop_requested && !failed) {
            if (auto r = loop->run_once(100ms); !r) {
                return fail(std::string("run_once failed: ") + std::strerror(r.error()));
            }
        }
        if (failed) return 1;  // answer() printed why
        (void)loop->remove(*socket);
        window.print(c);
        return 0;
    }
    while (!stop_requested) {
        auto m = socket->receive(100ms);
        if (!m) {
            if (m.error() == EAGAIN) continue;
            if (m.error() == ESHUTDOWN) break;
            continue;  // a failed RPC: nothing to answer
        }
        if (!c.batch) {
            if (!answer(*m)) return 1;
            continue;
        }
        // Answer this request and every one already waiting in one batch.
        SendBatch batch(*transport);
        if (!answer(*m)) return 1;
        for (int k = 0; k < 64; ++k) {
            auto more = socket->receive(0ms);
            if (!more) break;
            if (!answer(*more)) return 1;
        }
    }
    window.print(c);
    return 0;
}

int pingpong(const Config& c, Socket& socket, const Endpoint& server,
             const std::vector<std::uint8_t>& request) {
    std::vector<std::int64_t> samples;
    samples.reserve(c.iterations);
    double cpu0 = 0;
    for (std::uint64_t i = 0; i < c.warmup + c.iterations; ++i) {
        if (i == c.warmup) cpu0 = cpu_seconds();
        const std::int64_t t0 = now_ns();
        auto r = socket.call(server, bytes_of(request, request.size()), 5s);
        const std::int64_t t1 = now_ns();
        if (!r) return fail("RPC failed: " + std::string(std::strerror(r.error())));
        if (r->size() != c.response_size) return fail("response of the wrong length");
        if (i >= c.warmup) samples.push_back(t1 - t0);
        if (stop_requested) return fail("interrupted");
    }
    report_pingpong(c, samples, cpu_seconds() - cpu0);
    return 0;
}

// stream and rate: --concurrency RPCs outstanding, a new one per response.
int pipelined(const Config& c, Transport& transport, Socket& socket, const Endpoint& server,
              const std::vector<std::uint8_t>& request) {
    std::size_t outstanding = 0;
    auto send_one = [&]() -> bool {
        auto id = socket.send_request(server, bytes_of(request, request.size()));
        if (!id) {
            fail(std::string("send_request failed: ") + std::strerror(id.error()));
            return false;
        }
        ++outstanding;
        return true;
    };
    for (std::size_t k = 0; k < c.concurrency; ++k) {
        if (!send_one()) return 1;
    }
    ClientWindow window(c);
    // Counts a response and starts its replacement; false on failure.
    auto complete = [&](const Message& m) -> bool {
        --outstanding;
        if (m.size() != c.response_size) {
            fail("response of the wrong length");
            return false;
        }
        if (stop_requested) {
            fail("interrupted");
            return false;
        }
        return !window.on_completion() || send_one();
    };
    while (outstanding > 0) {
        auto m = socket.receive(5s);
        if (!m) {
            if (m.error() == EAGAIN) return fail("no response within 5 s");
            return fail(std::string("RPC failed: ") + std::strerror(m.error()));
        }
        if (!c.batch) {
            if (!complete(*m)) return 1;
            continue;
        }
        // Replace this response and every one already here in one batch.
        SendBatch batch(transport);
        if (!complete(*m)) return 1;
        while (outstanding > 0) {
            auto more = socket.receive(0ms);
            if (!more) {
                if (more.error() == EAGAIN) break;
                return fail(std::string("RPC failed: ") + std::strerror(more.error()));
            }
            if (!complete(*more)) return 1;
        }
    }
    window.report(c);
    return 0;
}

}  // namespace

int run_homa(const Config& c) {
    Options options;
    if (c.wake == Wake::busy) {
        options.parameters.emplace_back("poll_usecs", std::to_string(c.busy_poll_usecs));
    } else if (c.wake == Wake::block) {
        options.parameters.emplace_back("poll_usecs", "0");
    }
    for (const auto& p : c.params) options.parameters.push_back(p);
    auto transport = Transport::create(options);
    if (!transport) return fail(transport.error());
    auto print_metrics = [&] {
        if (c.metrics) std::printf("%s", (*transport)->metrics_text().c_str());
    };
    if (c.server) {
        const int status = serve(c, *transport);
        print_metrics();
        return status;
    }

    auto server = Endpoint::from(c.address, c.port);
    if (!server) return fail(server.error());
    auto socket = Socket::open(*transport);
    if (!socket)
        return fail(std::string("cannot open a Homa socket: ") + std::strerror(socket.error()));
    std::vector<std::uint8_t> request(c.size, 0x5a);
    write_header(request.data(), static_cast<std::uint32_t>(c.size),
                 static_cast<std::uint32_t>(c.response_size));
    const int status = c.test == Test::pingpong ? pingpong(c, *socket, *server, request)
                                                : pipelined(c, **transport, *socket, *server, request);
    print_metrics();
    return status;
}

}  // namespace uhoma::perf
