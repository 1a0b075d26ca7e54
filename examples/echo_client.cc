// A Homa echo client on uhoma's C++ API: sends COUNT requests of SIZE bytes
// and checks every reply. Usage: echo_client ADDRESS:PORT [COUNT] [SIZE]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "uhoma/transport.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: echo_client ADDRESS:PORT [COUNT] [SIZE]\n");
        return 2;
    }
    auto server = uhoma::Endpoint::parse(argv[1]);
    if (!server) {
        std::fprintf(stderr, "echo_client: %s\n", server.error().c_str());
        return 2;
    }
    const long count = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 10;
    const long size = argc > 3 ? std::strtol(argv[3], nullptr, 10) : 100;
    if (count <= 0 || size <= 0 || size > 1000000) {
        std::fprintf(stderr, "echo_client: COUNT > 0 and SIZE in 1..1000000\n");
        return 2;
    }
    auto transport = uhoma::Transport::create();
    if (!transport) {
        std::fprintf(stderr, "echo_client: %s\n", transport.error().c_str());
        return 1;
    }
    auto socket = uhoma::Socket::open(*transport);
    if (!socket) {
        std::fprintf(stderr, "echo_client: cannot open a socket: errno %d\n", socket.error());
        return 1;
    }
    std::vector<std::byte> request(static_cast<std::size_t>(size));
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < count; ++i) {
        for (std::size_t k = 0; k < request.size(); ++k) {
            request[k] = static_cast<std::byte>((k * 7 + static_cast<std::size_t>(i)) & 0xFF);
        }
        auto reply = socket->call(*server, request, std::chrono::seconds(5));
        if (!reply) {
            std::fprintf(stderr, "echo_client: rpc %ld failed: errno %d\n", i, reply.error());
            return 1;
        }
        if (reply->to_vector() != request) {
            std::fprintf(stderr, "echo_client: rpc %ld: reply differs from request\n", i);
            return 1;
        }
    }
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    std::printf("echo_client: %ld RPCs of %ld bytes, %.1f us per RPC\n", count, size, us / double(count));
    return 0;
}
