// A Homa echo server on uhoma's asynchronous C++ API (include/uhoma/async.h):
// an EventLoop calls a handler for each request, which replies with the
// request's bytes. The loop's descriptor sits in the program's own epoll set
// next to a signalfd, the way an existing event-driven program would
// integrate it; SIGINT/SIGTERM end it cleanly.
//
// Usage: async_echo_server [PORT] [--self-test N]   (default port 4000)
//   --self-test N: also sends N concurrent asynchronous echo calls to itself
//   from a client socket on the same loop, checks every reply, and exits
//   (status 0 if all N came back intact).
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "uhoma/async.h"

int main(int argc, char** argv) {
    long port = 4000;
    long self_test = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--self-test") == 0 && i + 1 < argc) {
            self_test = std::strtol(argv[++i], nullptr, 10);
        } else {
            port = std::strtol(argv[i], nullptr, 10);
        }
    }
    if (port <= 0 || port >= 0x8000 || self_test < 0) {
        std::fprintf(stderr, "usage: async_echo_server [PORT 1..32767] [--self-test N]\n");
        return 2;
    }
    // Blocked before uhoma starts its threads (they inherit the mask), so
    // the signals reach only the signalfd.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    auto transport = uhoma::Transport::create();
    if (!transport) {
        std::fprintf(stderr, "async_echo_server: %s\n", transport.error().c_str());
        return 1;
    }
    // Declared before the loop: callbacks still pending when the loop is
    // destroyed run (with ECANCELED) in its destructor.
    long completed = 0;
    long good = 0;
    std::vector<std::vector<std::byte>> requests;
    auto loop = uhoma::EventLoop::create();
    auto server = uhoma::Socket::open(*transport, static_cast<std::uint16_t>(port));
    if (!loop || !server) {
        std::fprintf(stderr, "async_echo_server: cannot open port %ld: errno %d\n", port,
                     server ? loop.error() : server.error());
        return 1;
    }
    // The handler runs on the loop's thread; it could equally keep the
    // request and reply later (from any thread).
    auto added = loop->add(*server, [&server](uhoma::Message request) {
        const auto bytes = request.to_vector();
        if (auto r = server->reply(request, bytes); !r) {
            std::fprintf(stderr, "async_echo_server: reply failed: errno %d\n", r.error());
        }
    });
    if (!added) {
        std::fprintf(stderr, "async_echo_server: errno %d\n", added.error());
        return 1;
    }

    // The program's own epoll loop: signals, and the uhoma loop's descriptor.
    const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
    const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    for (int fd : {signal_fd, loop->fd()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            std::perror("async_echo_server: epoll");
            return 1;
        }
    }

    // Optional self-test: a client socket on the same loop.
    std::optional<uhoma::Socket> client;
    if (self_test > 0) {
        client.emplace(uhoma::Socket::open(*transport).value());
        (void)loop->add(*client);  // a client socket: no request handler
        const auto to = server->endpoint("127.0.0.1");
        for (long i = 0; i < self_test; ++i) {
            requests.emplace_back(static_cast<std::size_t>(1 + (i * 7919) % 20000),
                                  static_cast<std::byte>(i));
        }
        for (long i = 0; i < self_test; ++i) {
            const auto& request = requests[static_cast<std::size_t>(i)];
            auto started = client->call_async(
                to, request,
                [&, i](uhoma::Expected<uhoma::Message, int> reply) {
                    ++completed;
                    if (reply && reply->to_vector() == requests[static_cast<std::size_t>(i)])
                        ++good;
                },
                std::chrono::seconds(10));
            if (!started) ++completed;
        }
    }

    std::printf("async_echo_server: listening on Homa/UDP port %ld\n", port);
    std::fflush(stdout);
    bool running = true;
    while (running) {
        epoll_event events[4];
        const int n = epoll_wait(epoll_fd, events, 4, -1);
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == signal_fd) {
                running = false;
            } else if (auto r = loop->run_once(std::chrono::nanoseconds(0)); !r) {
                std::fprintf(stderr, "async_echo_server: run_once: errno %d\n", r.error());
                running = false;
            }
        }
        if (self_test > 0 && completed == self_test) running = false;
    }
    close(epoll_fd);
    close(signal_fd);
    if (self_test > 0) {
        std::printf("async_echo_server: self-test %ld/%ld replies intact\n", good, self_test);
        return good == self_test ? 0 : 1;
    }
    std::printf("async_echo_server: stopped\n");
    return 0;
}
