// uhoma-perf over kernel UDP and TCP: the baselines. Design notes are in
// perf.h.
//
// Wake modes: busy spins on recv(MSG_DONTWAIT) (or epoll_wait with a zero
// timeout where a thread serves several connections); block and default
// sleep in recv (or epoll_wait). TCP sockets set TCP_NODELAY. The pingpong
// and stream servers serve one connection at a time with plain recv; the
// rate server serves all connections from one epoll loop, as the Homa
// server serves all clients from one receive() loop.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "uhoma-perf/perf.h"

namespace uhoma::perf {

namespace {

std::string error_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

void set_timeout(int fd, int option, int ms) {
    timeval tv{};
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

void set_nodelay(int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void set_nonblocking(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// recv with the wake mode's flags; busy spins through EAGAIN. Returns the
// byte count, 0 at EOF, or -1 (errno set; EAGAIN means the receive
// timeout passed, EINTR a stop request).
ssize_t receive_some(int fd, void* buffer, std::size_t n, Wake wake) {
    for (;;) {
        const ssize_t r = ::recv(fd, buffer, n, wake == Wake::busy ? MSG_DONTWAIT : 0);
        if (r >= 0) return r;
        if (errno == EAGAIN && wake == Wake::busy && !stop_requested) continue;
        if (errno == EINTR && !stop_requested) continue;
        return -1;
    }
}

bool send_all(int fd, const std::uint8_t* data, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR && !stop_requested) continue;
            if (errno == EAGAIN) continue;  // non-blocking socket: spin
            return false;
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

bool receive_exact(int fd, std::uint8_t* buffer, std::size_t n, Wake wake) {
    while (n > 0) {
        const ssize_t r = receive_some(fd, buffer, n, wake);
        if (r <= 0) return false;
        buffer += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

// Parses the request stream of one TCP connection (see Framing in perf.h).
struct RequestParser {
    std::uint8_t header[header_bytes] = {};
    std::size_t header_got = 0;
    std::size_t body_left = 0;
    // Feeds bytes; calls on_request(response_length, request_length) per
    // complete request. False on a malformed header.
    template <typename F>
    bool feed(const std::uint8_t* data, std::size_t n, F&& on_request) {
        while (n > 0) {
            if (header_got < header_bytes) {
                const std::size_t take = std::min(n, header_bytes - header_got);
                std::memcpy(header + header_got, data, take);
                header_got += take;
                data += take;
                n -= take;
                if (header_got < header_bytes) return true;
                const std::uint32_t length = request_length(header);
                if (length < header_bytes || length > 1000000) return false;
                body_left = length - header_bytes;
            }
            const std::size_t take = std::min(n, body_left);
            body_left -= take;
            data += take;
            n -= take;
            if (body_left == 0) {
                const auto response =
                    static_cast<std::size_t>(response_length(header, header_bytes));
                if (response > 1000000) return false;
                header_got = 0;
                if (!on_request(response, request_length(header))) return false;
            }
        }
        return true;
    }
};

int listen_socket(const Config& c, int type) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(c.port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
    if (type == SOCK_STREAM && ::listen(fd, 128) != 0) return -1;
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    print_ready(ntohs(a.sin_port));
    return fd;
}

int serve_udp(const Config& c) {
    const int fd = listen_socket(c, SOCK_DGRAM);
    if (fd < 0) return fail(error_text("cannot open the UDP server socket"));
    set_timeout(fd, SO_RCVTIMEO, 200);
    std::vector<std::uint8_t> buffer(65536), response(65536);
    ServerWindow window;
    while (!stop_requested) {
        sockaddr_in from{};
        socklen_t len = sizeof(from);
        const ssize_t r =
            ::recvfrom(fd, buffer.data(), buffer.size(), c.wake == Wake::busy ? MSG_DONTWAIT : 0,
                       reinterpret_cast<sockaddr*>(&from), &len);
        if (r < 0) continue;  // EAGAIN (spinning or timeout), EINTR
        const std::int64_t want = response_length(buffer.data(), static_cast<std::size_t>(r));
        if (want < 0 || want > 65000) continue;
        ::sendto(fd, response.data(), static_cast<std::size_t>(want), 0,
                 reinterpret_cast<sockaddr*>(&from), len);
        window.on_message(static_cast<std::size_t>(r), false);
    }
    ::close(fd);
    window.print(c);
    return 0;
}

// pingpong and stream: one connection at a time, plain recv.
int serve_tcp_direct(const Config& c, int listener) {
    std::vector<std::uint8_t> buffer(1 << 20), response(1000000);
    ServerWindow window;
    while (!stop_requested) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;  // timeout or EINTR
        set_nodelay(fd);
        set_timeout(fd, SO_RCVTIMEO, 200);
        RequestParser parser;
        bool ok = true;
        while (ok && !stop_requested) {
            const ssize_t r = receive_some(fd, buffer.data(), buffer.size(), c.wake);
            if (r < 0 && errno == EAGAIN) continue;  // idle connection: check stop
            if (r <= 0) break;
            ok = parser.feed(buffer.data(), static_cast<std::size_t>(r),
                             [&](std::size_t want, std::size_t length) {
                                 window.on_message(length, c.test == Test::stream);
                                 return send_all(fd, response.data(), want);
                             });
        }
        ::close(fd);
    }
    window.print(c);
    return 0;
}

// rate: every connection from one epoll loop.
int serve_tcp_epoll(const Config& c, int listener) {
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    set_nonblocking(listener);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    std::vector<RequestParser> parsers(1024);
    std::vector<std::uint8_t> buffer(1 << 16), response(1000000);
    ServerWindow window;
    epoll_event events[64];
    while (!stop_requested) {
        const int n = epoll_wait(ep, events, 64, c.wake == Wake::busy ? 0 : 200);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == listener) {
                for (;;) {
                    const int conn =
                        ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                    if (conn < 0) break;
                    if (static_cast<std::size_t>(conn) >= parsers.size()) {
                        parsers.resize(static_cast<std::size_t>(conn) * 2);
                    }
                    parsers[static_cast<std::size_t>(conn)] = RequestParser{};
                    set_nodelay(conn);
                    ev.data.fd = conn;
                    epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev);
                }
                continue;
            }
            const ssize_t r = ::recv(fd, buffer.data(), buffer.size(), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            bool ok = r > 0 && parsers[static_cast<std::size_t>(fd)].feed(
                                   buffer.data(), static_cast<std::size_t>(r),
                                   [&](std::size_t want, std::size_t length) {
                                       window.on_message(length, false);
                                       return send_all(fd, response.data(), want);
                                   });
            if (!ok) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
                ::close(fd);
            }
        }
    }
    ::close(ep);
    window.print(c);
    return 0;
}

int connect_to(const Config& c, int type) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(c.port);
    if (inet_pton(AF_INET, c.address.c_str(), &a.sin_addr) != 1) {
        errno = EINVAL;
        ::close(fd);
        return -1;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return -1;
    }
    if (type == SOCK_STREAM) set_nodelay(fd);
    set_timeout(fd, SO_RCVTIMEO, 5000);
    return fd;
}

std::vector<std::uint8_t> make_request(const Config& c) {
    std::vector<std::uint8_t> request(c.size, 0x5a);
    write_header(request.data(), static_cast<std::uint32_t>(c.size),
                 static_cast<std::uint32_t>(c.response_size));
    return request;
}

int client_pingpong(const Config& c, int type) {
    const int fd = connect_to(c, type);
    if (fd < 0) return fail(error_text("cannot connect to the server"));
    const auto request = make_request(c);
    std::vector<std::uint8_t> response(c.response_size + 1);
    std::vector<std::int64_t> samples;
    samples.reserve(c.iterations);
    double cpu0 = 0;
    for (std::uint64_t i = 0; i < c.warmup + c.iterations; ++i) {
        if (i == c.warmup) cpu0 = cpu_seconds();
        const std::int64_t t0 = now_ns();
        bool ok;
        if (type == SOCK_DGRAM) {
            ok = ::send(fd, request.data(), request.size(), 0) == ssize_t(request.size()) &&
                 receive_some(fd, response.data(), response.size(), c.wake) ==
                     ssize_t(c.response_size);
        } else {
            ok = send_all(fd, request.data(), request.size()) &&
                 receive_exact(fd, response.data(), c.response_size, c.wake);
        }
        const std::int64_t t1 = now_ns();
        if (!ok) {
            ::close(fd);
            return fail(errno == EAGAIN ? std::string("no response within 5 s")
                                        : error_text("round trip failed"));
        }
        if (i >= c.warmup) samples.push_back(t1 - t0);
    }
    ::close(fd);
    report_pingpong(c, samples, cpu_seconds() - cpu0);
    return 0;
}

// stream over one connection, --concurrency requests in flight.
int client_stream(const Config& c) {
    const int fd = connect_to(c, SOCK_STREAM);
    if (fd < 0) return fail(error_text("cannot connect to the server"));
    const auto request = make_request(c);
    std::vector<std::uint8_t> response(c.response_size);
    for (std::size_t k = 0; k < c.concurrency; ++k) {
        if (!send_all(fd, request.data(), request.size())) return fail(error_text("send failed"));
    }
    std::size_t outstanding = c.concurrency;
    ClientWindow window(c);
    while (outstanding > 0) {
        if (!receive_exact(fd, response.data(), c.response_size, c.wake)) {
            return fail(errno == EAGAIN ? std::string("no response within 5 s")
                                        : error_text("receive failed"));
        }
        --outstanding;
        if (window.on_completion()) {
            if (!send_all(fd, request.data(), request.size()))
                return fail(error_text("send failed"));
            ++outstanding;
        }
    }
    ::close(fd);
    window.report(c);
    return 0;
}

// rate: --concurrency connections, one request outstanding on each.
int client_rate(const Config& c) {
    const auto request = make_request(c);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<int> fds;
    std::vector<std::size_t> got(65536, 0);
    for (std::size_t k = 0; k < c.concurrency; ++k) {
        const int fd = connect_to(c, SOCK_STREAM);
        if (fd < 0) return fail(error_text("cannot connect to the server"));
        set_nonblocking(fd);
        if (static_cast<std::size_t>(fd) >= got.size()) return fail("too many descriptors");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds.push_back(fd);
    }
    for (int fd : fds) {
        if (!send_all(fd, request.data(), request.size())) return fail(error_text("send failed"));
    }
    std::size_t outstanding = fds.size();
    std::vector<std::uint8_t> buffer(1 << 16);
    ClientWindow window(c);
    epoll_event events[64];
    std::int64_t last_progress = now_ns();
    while (outstanding > 0) {
        const int n = epoll_wait(ep, events, 64, c.wake == Wake::busy ? 0 : 200);
        if (n <= 0) {
            if (now_ns() - last_progress > 5000000000) return fail("no response within 5 s");
            continue;
        }
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            const ssize_t r = ::recv(fd, buffer.data(), buffer.size(), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) return fail("the server closed a connection");
            auto& g = got[static_cast<std::size_t>(fd)];
            g += static_cast<std::size_t>(r);
            if (g < c.response_size) continue;
            if (g > c.response_size) return fail("response of the wrong length");
            g = 0;
            --outstanding;
            last_progress = now_ns();
            if (window.on_completion()) {
                if (!send_all(fd, request.data(), request.size())) {
                    return fail(error_text("send failed"));
                }
                ++outstanding;
            }
        }
    }
    for (int fd : fds) ::close(fd);
    ::close(ep);
    window.report(c);
    return 0;
}

}  // namespace

int run_socket(const Config& c) {
    if (c.server) {
        if (c.proto == Proto::udp) return serve_udp(c);
        const int listener = listen_socket(c, SOCK_STREAM);
        if (listener < 0) return fail(error_text("cannot open the TCP server socket"));
        set_timeout(listener, SO_RCVTIMEO, 200);
        const int status =
            c.test == Test::rate ? serve_tcp_epoll(c, listener) : serve_tcp_direct(c, listener);
        ::close(listener);
        return status;
    }
    if (c.proto == Proto::udp) return client_pingpong(c, SOCK_DGRAM);
    switch (c.test) {
        case Test::pingpong:
            return client_pingpong(c, SOCK_STREAM);
        case Test::stream:
            return client_stream(c);
        case Test::rate:
            return client_rate(c);
    }
    return 1;
}

}  // namespace uhoma::perf
