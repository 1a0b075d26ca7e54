// The Linux-compatible C API (src/api/c_api.cc) end to end on loopback:
// requests and responses through uhoma_sendmsg/uhoma_recvmsg with the real
// homa_*_args structures, bpage return, private RPCs, poll, aborts,
// shutdown, close and fork. The errno rules are in c_api_errno_test.cc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <thread>

#include "capi_helpers.h"

namespace uhoma::capi_test {
namespace {

using namespace std::chrono_literals;

short poll_events(int fd, int timeout_ms = 0) {
    pollfd p{fd, POLLIN | POLLOUT, 0};
    const int n = ::poll(&p, 1, timeout_ms);
    return n > 0 ? p.revents : 0;
}

// Waits until poll reports POLLIN (a shared message is ready) or 10 s pass.
bool wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 10000) == 1 && (p.revents & POLLIN) != 0;
}

TEST(CApi, uhoma_recvmsg__request_and_response_round_trip) {
    TestSocket server(test_port());
    const std::uint16_t port = server.port;
    TestSocket client;
    ASSERT_GE(server.fd, 0);
    ASSERT_GE(client.fd, 0);

    const auto request = pattern(1234, 1);
    const std::uint64_t id = send_request(client.fd, port, request, 0xC00C1E);
    ASSERT_NE(id, 0u);
    EXPECT_EQ(id % 2, 0u) << "client ids are even";

    Received in = receive(server.fd, 0);
    ASSERT_EQ(in.result, 1234) << "errno " << in.error;
    EXPECT_EQ(in.args.id % 2, 1u) << "a request's id is odd at the server";
    EXPECT_EQ(in.args.completion_cookie, 0u);
    EXPECT_EQ(in.args.num_bpages, 1u);
    EXPECT_EQ(in.controllen_after, 0u) << "the kernel reports no control bytes produced";
    ASSERT_EQ(in.from_len, sizeof(sockaddr_in));
    sockaddr_in from;
    std::memcpy(&from, &in.from, sizeof(from));
    EXPECT_EQ(from.sin_family, AF_INET);
    EXPECT_EQ(ntohl(from.sin_addr.s_addr), INADDR_LOOPBACK);
    EXPECT_EQ(contents(server.region, in), request);

    const auto response = pattern(777, 2);
    ASSERT_EQ(reply(server.fd, in, response), 0);

    Received out = receive(client.fd, 0, 0);
    ASSERT_EQ(out.result, 777) << "errno " << out.error;
    EXPECT_EQ(out.args.id, id);
    EXPECT_EQ(out.args.completion_cookie, 0xC00C1Eu);
    sockaddr_in server_addr;
    std::memcpy(&server_addr, &out.from, sizeof(server_addr));
    EXPECT_EQ(ntohs(server_addr.sin_port), port);
    EXPECT_EQ(contents(client.region, out), response);

    // Give the bpages back: nothing else is pending.
    EXPECT_EQ(receive(server.fd, 0, MSG_DONTWAIT, bpages_of(in)).error, EAGAIN);
    EXPECT_EQ(receive(client.fd, 0, MSG_DONTWAIT, bpages_of(out)).error, EAGAIN);
}

TEST(CApi, uhoma_sendmsg__gathers_iovecs_into_one_message) {
    TestSocket server(test_port(1));
    const std::uint16_t port = server.port;
    TestSocket client;
    const auto message = pattern(100000, 3);
    iovec iov[4] = {{const_cast<unsigned char*>(message.data()), 10},
                    {nullptr, 0},
                    {const_cast<unsigned char*>(message.data()) + 10, 70000},
                    {const_cast<unsigned char*>(message.data()) + 70010, 29990}};
    sockaddr_in to = loopback4(port);
    homa_sendmsg_args args{0, 5, 0, 0};
    msghdr hdr{};
    hdr.msg_name = &to;
    hdr.msg_namelen = sizeof(to);
    hdr.msg_iov = iov;
    hdr.msg_iovlen = 4;
    hdr.msg_control = &args;
    ASSERT_EQ(uhoma_sendmsg(client.fd, &hdr, 0), 0) << errno;
    Received in = receive(server.fd, 0);
    ASSERT_EQ(in.result, 100000);
    EXPECT_EQ(in.args.num_bpages, 2u);
    EXPECT_EQ(contents(server.region, in), message);
}

TEST(CApi, uhoma_recvmsg__private_response_only_by_id) {
    TestSocket server(test_port(2));
    const std::uint16_t port = server.port;
    TestSocket client;
    const std::uint64_t id = send_request(client.fd, port, pattern(50, 4), 42, HOMA_SENDMSG_PRIVATE);
    ASSERT_NE(id, 0u);
    Received in = receive(server.fd, 0);
    ASSERT_EQ(in.result, 50);
    ASSERT_EQ(reply(server.fd, in, pattern(60, 5)), 0);

    // The response never goes to a shared receive, nor wakes poll (spec 2.5).
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(poll_events(client.fd) & POLLIN, 0);
    EXPECT_EQ(receive(client.fd, 0, MSG_DONTWAIT).error, EAGAIN);

    Received out = receive(client.fd, id);
    ASSERT_EQ(out.result, 60) << "errno " << out.error;
    EXPECT_EQ(out.args.id, id);
    EXPECT_EQ(out.args.completion_cookie, 42u);
    EXPECT_EQ(contents(client.region, out), pattern(60, 5));
}

TEST(CApi, uhoma_recvmsg__bpages_given_back_are_reused) {
    // 40 messages of ~300 KB through a ~6.5 MB region only fit if every
    // received message's bpages come back through the next recvmsg.
    TestSocket server(test_port(3));
    const std::uint16_t port = server.port;
    TestSocket client;
    std::vector<std::uint32_t> server_pages, client_pages;
    for (unsigned i = 0; i < 40; ++i) {
        const auto request = pattern(300000 + i, i);
        const std::uint64_t id = send_request(client.fd, port, request, i, HOMA_SENDMSG_PRIVATE);
        ASSERT_NE(id, 0u) << "rpc " << i << ": errno " << errno;
        Received in = receive(server.fd, 0, 0, server_pages);
        ASSERT_EQ(in.result, static_cast<ssize_t>(request.size())) << "errno " << in.error;
        ASSERT_EQ(in.args.num_bpages, 5u);
        ASSERT_EQ(contents(server.region, in), request) << "rpc " << i;
        ASSERT_EQ(reply(server.fd, in, request), 0);
        server_pages = bpages_of(in);
        Received out = receive(client.fd, id, 0, client_pages);
        ASSERT_EQ(out.result, static_cast<ssize_t>(request.size())) << "errno " << out.error;
        ASSERT_EQ(out.args.id, id);
        ASSERT_EQ(contents(client.region, out), request) << "rpc " << i;
        client_pages = bpages_of(out);
    }
}

TEST(CApi, uhoma_recvmsg__ipv6_socket_round_trip) {
    const int probe = uhoma_socket(AF_INET6, SOCK_DGRAM, IPPROTO_HOMA);
    if (probe < 0 && errno == EAFNOSUPPORT) GTEST_SKIP() << "no IPv6 on this host";
    ASSERT_GE(probe, 0);
    uhoma_close(probe);
    TestSocket server(test_port(4), AF_INET6);
    TestSocket client(0, AF_INET6);
    const sockaddr_in6 to = loopback6(server.port);
    const auto request = pattern(3000, 6);
    homa_sendmsg_args args{0, 9, 0, 0};
    ASSERT_EQ(send_to(client.fd, &to, sizeof(to), request.data(), request.size(), args), 0);
    Received in = receive(server.fd, 0);
    ASSERT_EQ(in.result, 3000) << "errno " << in.error;
    ASSERT_EQ(in.from_len, sizeof(sockaddr_in6));
    sockaddr_in6 from;
    std::memcpy(&from, &in.from, sizeof(from));
    EXPECT_EQ(from.sin6_family, AF_INET6);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&from.sin6_addr));
    ASSERT_EQ(reply(server.fd, in, request), 0);
    Received out = receive(client.fd, 0);
    ASSERT_EQ(out.result, 3000);
    EXPECT_EQ(out.args.id, args.id);
    EXPECT_EQ(out.args.completion_cookie, 9u);
}

TEST(CApi, uhoma_recvmsg__ipv4_peer_on_ipv6_socket_is_ipv4_mapped) {
    const int probe = uhoma_socket(AF_INET6, SOCK_DGRAM, IPPROTO_HOMA);
    if (probe < 0 && errno == EAFNOSUPPORT) GTEST_SKIP() << "no IPv6 on this host";
    uhoma_close(probe);
    TestSocket server(test_port(5), AF_INET6);
    const std::uint16_t port = server.port;
    TestSocket client;  // AF_INET
    ASSERT_NE(send_request(client.fd, port, pattern(10, 7)), 0u);
    Received in = receive(server.fd, 0);
    ASSERT_EQ(in.result, 10);
    sockaddr_in6 from;
    std::memcpy(&from, &in.from, sizeof(from));
    EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&from.sin6_addr));
    ASSERT_EQ(reply(server.fd, in, pattern(11, 8)), 0);
    EXPECT_EQ(receive(client.fd, 0).result, 11);
}

TEST(CApi, poll__readable_exactly_while_a_shared_message_is_ready) {
    TestSocket server(test_port(6));
    const std::uint16_t port = server.port;
    TestSocket client;
    EXPECT_EQ(poll_events(server.fd), POLLOUT) << "writable, nothing to read";
    ASSERT_NE(send_request(client.fd, port, pattern(100, 9)), 0u);
    ASSERT_TRUE(wait_readable(server.fd));
    EXPECT_EQ(poll_events(server.fd), POLLIN | POLLOUT);
    Received in = receive(server.fd, 0, MSG_DONTWAIT);
    ASSERT_EQ(in.result, 100);
    EXPECT_EQ(poll_events(server.fd), POLLOUT) << "the only message was taken";
    ASSERT_EQ(reply(server.fd, in, pattern(5, 1)), 0);
    ASSERT_TRUE(wait_readable(client.fd)) << "a shared response wakes poll";
    EXPECT_EQ(receive(client.fd, 0, MSG_DONTWAIT).result, 5);
}

TEST(CApi, uhoma_ioctl__abort_with_error_completes_the_rpc_with_it) {
    TestSocket client;
    BlackHole nobody;  // the RPC stays outstanding
    const std::uint64_t id = send_request(client.fd, nobody.port, pattern(10, 1), 77);
    ASSERT_NE(id, 0u);
    homa_abort_args abort_args{};
    abort_args.id = id;
    abort_args.error = ECANCELED;
    ASSERT_EQ(uhoma_ioctl(client.fd, HOMAIOCABORT, &abort_args), 0) << errno;
    Received r = receive(client.fd, 0);
    EXPECT_EQ(r.result, -1);
    EXPECT_EQ(r.error, ECANCELED);
    EXPECT_EQ(r.args.id, id) << "a failed RPC is named";
    EXPECT_EQ(r.args.completion_cookie, 77u);
}

TEST(CApi, uhoma_recvmsg__failed_rpc_leaves_the_bpage_offsets_alone) {
    // Linux copies bpages back only for a message; a failure reports the id
    // and cookie with num_bpages 0 and the offsets array as it was.
    TestSocket client;
    BlackHole nobody;
    const std::uint64_t id = send_request(client.fd, nobody.port, pattern(10, 1), 5);
    ASSERT_NE(id, 0u);
    homa_abort_args abort_args{};
    abort_args.id = id;
    abort_args.error = EHOSTUNREACH;
    ASSERT_EQ(uhoma_ioctl(client.fd, HOMAIOCABORT, &abort_args), 0);
    homa_recvmsg_args args{};
    for (std::uint32_t i = 0; i < HOMA_MAX_BPAGES; ++i) args.bpage_offsets[i] = 0xdead0000u + i;
    msghdr hdr{};
    hdr.msg_control = &args;
    hdr.msg_controllen = sizeof(args);
    errno = 0;
    EXPECT_EQ(uhoma_recvmsg(client.fd, &hdr, 0), -1);
    EXPECT_EQ(errno, EHOSTUNREACH);
    EXPECT_EQ(args.id, id);
    EXPECT_EQ(args.completion_cookie, 5u);
    EXPECT_EQ(args.num_bpages, 0u);
    for (std::uint32_t i = 0; i < HOMA_MAX_BPAGES; ++i) EXPECT_EQ(args.bpage_offsets[i], 0xdead0000u + i);
}

TEST(CApi, uhoma_ioctl__abort_id_0_aborts_every_client_rpc) {
    TestSocket client;
    BlackHole nobody;
    const std::uint64_t a = send_request(client.fd, nobody.port, pattern(10, 1), 1);
    const std::uint64_t b = send_request(client.fd, nobody.port, pattern(10, 2), 2, HOMA_SENDMSG_PRIVATE);
    ASSERT_NE(a, 0u);
    ASSERT_NE(b, 0u);
    homa_abort_args abort_args{};
    abort_args.error = ETIMEDOUT;
    ASSERT_EQ(uhoma_ioctl(client.fd, HOMAIOCABORT, &abort_args), 0);
    Received ra = receive(client.fd, 0);
    EXPECT_EQ(ra.error, ETIMEDOUT);
    EXPECT_EQ(ra.args.id, a);
    Received rb = receive(client.fd, b);
    EXPECT_EQ(rb.error, ETIMEDOUT);
    EXPECT_EQ(rb.args.id, b);
    EXPECT_EQ(rb.args.completion_cookie, 2u);
}

TEST(CApi, uhoma_ioctl__abort_with_error_0_frees_silently) {
    TestSocket client;
    BlackHole nobody;
    const std::uint64_t id = send_request(client.fd, nobody.port, pattern(10, 1), 0, HOMA_SENDMSG_PRIVATE);
    ASSERT_NE(id, 0u);
    homa_abort_args abort_args{};
    abort_args.id = id;
    ASSERT_EQ(uhoma_ioctl(client.fd, HOMAIOCABORT, &abort_args), 0);
    Received r = receive(client.fd, id, MSG_DONTWAIT);
    EXPECT_EQ(r.error, EINVAL) << "the RPC is gone";
    EXPECT_EQ(receive(client.fd, 0, MSG_DONTWAIT).error, EAGAIN) << "and was never reported";
}

TEST(CApi, uhoma_shutdown__wakes_a_waiting_receiver_with_ESHUTDOWN) {
    TestSocket server(test_port(10));
    std::atomic<int> error{0};
    std::thread waiter([&] {
        Received r = receive(server.fd, 0);
        error = r.result < 0 ? r.error : -1;
    });
    std::this_thread::sleep_for(100ms);  // let it block
    ASSERT_EQ(uhoma_shutdown(server.fd, SHUT_RDWR), 0);
    waiter.join();
    EXPECT_EQ(error.load(), ESHUTDOWN);
}

TEST(CApi, uhoma_ioctl__info_reports_the_socket_and_its_rpcs) {
    BlackHole hole;  // a "server" that never answers: the RPCs stay live
    TestSocket client;
    const auto request = pattern(500, 3);
    sockaddr_in to = loopback4(hole.port);
    homa_sendmsg_args args{};
    args.completion_cookie = 99;
    args.flags = HOMA_SENDMSG_PRIVATE;
    ASSERT_EQ(send_to(client.fd, &to, sizeof(to), request.data(), request.size(), args), 0);
    const std::uint64_t private_id = args.id;
    const std::uint64_t shared_id = send_request(client.fd, hole.port, pattern(100000, 4), 7);
    ASSERT_NE(shared_id, 0u);

    std::vector<homa_rpc_info> records(4);
    homa_info info{};
    info.rpc_info = reinterpret_cast<std::uintptr_t>(records.data());
    info.rpc_info_length = records.size() * sizeof(homa_rpc_info);
    ASSERT_EQ(uhoma_ioctl(client.fd, HOMAIOCINFO, &info), 0) << "errno " << errno;
    EXPECT_EQ(info.num_rpcs, 2u);
    EXPECT_GE(info.port, 0x8000u);
    EXPECT_EQ(info.bpool_avail_bytes, client.region.bytes / 65536 * 65536) << "nothing received yet";
    EXPECT_EQ(info.error_msg[0], '\0');
    // Records in id order: the private RPC was started first.
    EXPECT_EQ(records[0].id, private_id);
    EXPECT_EQ(records[0].completion_cookie, 99u);
    EXPECT_EQ(records[0].tx_length, 500);
    EXPECT_EQ(records[0].rx_length, -1);
    EXPECT_EQ(records[0].flags, HOMA_RPC_PRIVATE);
    sockaddr_in peer;
    std::memcpy(&peer, &records[0].peer, sizeof(peer));
    EXPECT_EQ(peer.sin_family, AF_INET);
    EXPECT_EQ(ntohs(peer.sin_port), hole.port);
    EXPECT_EQ(records[1].id, shared_id);
    EXPECT_EQ(records[1].tx_length, 100000);
    EXPECT_EQ(records[1].tx_granted, 40000u) << "unscheduled bytes only: nobody grants";
    EXPECT_LE(records[1].tx_sent, records[1].tx_granted);
    EXPECT_EQ(records[1].flags, 0);

    // No array: counts only.
    homa_info counts{};
    ASSERT_EQ(uhoma_ioctl(client.fd, HOMAIOCINFO, &counts), 0);
    EXPECT_EQ(counts.num_rpcs, 2u);
}

// Linux Homa's recvmsg returns EINTR when a signal arrives while it waits,
// whether or not the handler asked for SA_RESTART.
std::atomic<int> signals_seen{0};
void count_signal(int) { signals_seen.fetch_add(1); }

TEST(CApi, uhoma_recvmsg__signal_while_waiting_is_EINTR) {
    struct sigaction action {};
    action.sa_handler = count_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR2, &action, &old), 0);
    TestSocket server(test_port(12));
    std::atomic<bool> started{false};
    std::atomic<bool> done{false};
    std::atomic<int> error{0};
    pthread_t thread_id{};
    std::thread waiter([&] {
        thread_id = ::pthread_self();
        started = true;
        Received r = receive(server.fd, 0);
        error = r.result < 0 ? r.error : -1;
        done = true;
    });
    while (!started) std::this_thread::yield();
    while (!done) {
        std::this_thread::sleep_for(5ms);
        if (!done) ::pthread_kill(thread_id, SIGUSR2);
    }
    waiter.join();
    ::sigaction(SIGUSR2, &old, nullptr);
    EXPECT_EQ(error.load(), EINTR);
    EXPECT_GE(signals_seen.load(), 1);
}

TEST(CApi, uhoma_shutdown__later_calls_fail_and_poll_reports_readable) {
    TestSocket client;
    ASSERT_EQ(uhoma_shutdown(client.fd, SHUT_RD), 0);
    EXPECT_EQ(poll_events(client.fd) & POLLIN, POLLIN);
    EXPECT_EQ(receive(client.fd, 0, MSG_DONTWAIT).error, ESHUTDOWN);
    errno = 0;
    BlackHole nobody;
    EXPECT_EQ(send_request(client.fd, nobody.port, pattern(10, 1)), 0u);
    EXPECT_EQ(errno, ESHUTDOWN);
    EXPECT_EQ(bind_port(client.fd, test_port(11)), -1);
    EXPECT_EQ(errno, ESHUTDOWN);
    EXPECT_EQ(uhoma_shutdown(client.fd, SHUT_RDWR), 0) << "again: still 0";
}

TEST(CApi, uhoma_close__frees_the_descriptor_and_the_port) {
    std::uint16_t port = 0;
    {
        TestSocket first(test_port(12));
        port = first.port;
        ASSERT_NE(port, 0);
    }  // closed here
    const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(uhoma_close(fd), 0);
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "the descriptor is closed";
    EXPECT_EQ(uhoma_close(fd), -1);
    EXPECT_EQ(errno, EBADF);
    TestSocket again(port);
    EXPECT_EQ(again.port, port) << "the port is free again";
}

TEST(CApi, uhoma_socket__descriptor_is_close_on_exec) {
    TestSocket s;
    EXPECT_EQ(::fcntl(s.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST(CApi, uhoma_socket__nonblock_flag_makes_recvmsg_return_EAGAIN) {
    TestSocket s(0, AF_INET, SOCK_NONBLOCK);
    EXPECT_EQ(receive(s.fd, 0).error, EAGAIN);
}

TEST(CApi, uhoma_ioctl__FIONBIO_sets_and_clears_nonblocking) {
    TestSocket server(test_port(13));
    const std::uint16_t port = server.port;
    int on = 1;
    ASSERT_EQ(uhoma_ioctl(server.fd, FIONBIO, &on), 0);
    EXPECT_EQ(receive(server.fd, 0).error, EAGAIN);
    on = 0;
    ASSERT_EQ(uhoma_ioctl(server.fd, FIONBIO, &on), 0);
    TestSocket client;
    ASSERT_NE(send_request(client.fd, port, pattern(10, 1)), 0u);
    EXPECT_EQ(receive(server.fd, 0).result, 10) << "blocks until the request arrives";
}

TEST(CApi, fork__child_gets_EBADF_on_inherited_sockets_and_can_open_new_ones) {
    TestSocket server(test_port(14));
    const std::uint16_t port = server.port;
    TestSocket inherited;
    // Fork while no test thread runs: the child of a multithreaded process
    // may only find its allocator unlocked if no thread was allocating at the
    // fork (glibc's malloc is fork-safe; GCC 12's ASan allocator is not).
    const pid_t child = ::fork();
    if (child == 0) {
        // In the child: exit codes tell the parent what went wrong.
        if (send_request(inherited.fd, port, pattern(10, 1)) != 0 || errno != EBADF) ::_exit(10);
        if (receive(inherited.fd, 0, MSG_DONTWAIT).error != EBADF) ::_exit(11);
        if (uhoma_close(inherited.fd) != 0) ::_exit(12);
        Region region;
        const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
        if (fd < 0 || set_region(fd, region) != 0) ::_exit(13);
        if (send_request(fd, port, pattern(20, 2)) == 0) ::_exit(14);
        Received r = receive(fd, 0);
        if (r.result != 20) ::_exit(15);
        ::_exit(0);  // no exit handlers: the child shares the parent's state
    }
    ASSERT_GT(child, 0);
    // The parent serves the child's request, then reaps it.
    Received in = receive(server.fd, 0);
    ASSERT_EQ(in.result, 20) << "errno " << in.error;
    ASSERT_EQ(reply(server.fd, in, pattern(20, 3)), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    // The parent's sockets still work.
    ASSERT_NE(send_request(inherited.fd, port, pattern(30, 3)), 0u);
    in = receive(server.fd, 0, 0, bpages_of(in));
    ASSERT_EQ(in.result, 30);
    ASSERT_EQ(reply(server.fd, in, pattern(31, 3)), 0);
    EXPECT_EQ(receive(inherited.fd, 0).result, 31);
}

// Several threads sending on one socket at once (the runtime serializes
// them on the socket's tx lock; this once corrupted the driver's batch).
TEST(CApi, threads__concurrent_clients_share_one_server) {
    TestSocket server(test_port(15));
    const std::uint16_t port = server.port;
    std::atomic<bool> stop{false};
    std::thread serve([&] {
        std::vector<std::uint32_t> pages;
        while (!stop) {
            Received in = receive(server.fd, 0, MSG_DONTWAIT, pages);
            pages.clear();
            if (in.result < 0) {
                std::this_thread::sleep_for(100us);
                continue;
            }
            reply(server.fd, in, contents(server.region, in));
            pages = bpages_of(in);
        }
    });
    std::atomic<int> failures{0};
    std::vector<std::thread> clients;
    for (unsigned t = 0; t < 4; ++t) {
        clients.emplace_back([&, t] {
            TestSocket client;
            std::vector<std::uint32_t> pages;
            for (unsigned i = 0; i < 25; ++i) {
                const auto request = pattern(100 + 1000 * i, t * 100 + i);
                const std::uint64_t id = send_request(client.fd, port, request, i, HOMA_SENDMSG_PRIVATE);
                Received out = receive(client.fd, id, 0, pages);
                if (id == 0 || out.result != static_cast<ssize_t>(request.size()) ||
                    contents(client.region, out) != request) {
                    failures++;
                }
                pages = bpages_of(out);
            }
        });
    }
    for (auto& c : clients) c.join();
    stop = true;
    serve.join();
    EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace uhoma::capi_test
