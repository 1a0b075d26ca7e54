// A Homa echo server on uhoma's C++ API: replies to every request with its
// own bytes. Usage: echo_server [PORT]   (default 4000)
#include <cstdio>
#include <cstdlib>

#include "uhoma/transport.h"

int main(int argc, char** argv) {
    const long port = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 4000;
    if (port <= 0 || port >= 0x8000) {
        std::fprintf(stderr, "echo_server: port must be 1..32767\n");
        return 2;
    }
    auto transport = uhoma::Transport::create();
    if (!transport) {
        std::fprintf(stderr, "echo_server: %s\n", transport.error().c_str());
        return 1;
    }
    auto socket = uhoma::Socket::open(*transport, static_cast<std::uint16_t>(port));
    if (!socket) {
        std::fprintf(stderr, "echo_server: cannot open port %ld: errno %d\n", port, socket.error());
        return 1;
    }
    std::printf("echo_server: listening on Homa/UDP port %ld\n", port);
    std::fflush(stdout);
    for (;;) {
        auto request = socket->receive();
        if (!request) continue;  // a failed RPC; nothing to answer
        const auto bytes = request->to_vector();
        if (auto r = socket->reply(*request, bytes); !r) {
            std::fprintf(stderr, "echo_server: reply failed: errno %d\n", r.error());
        }
    }
}
