// The LD_PRELOAD shim (src/api/preload.cc): the compatibility acceptance
// test (a C program written only against Linux Homa's API, run under
// LD_PRELOAD=libuhoma_preload.so, talks to the C++ echo server), and the
// shim's own rules, checked in process through dlopen.
//
// Sanitizer builds: the shim then needs libasan first in the library list.
// The client is built with the same -fsanitize flags (so it links libasan),
// and LD_PRELOAD names this process's libasan before the shim (found in
// /proc/self/maps); a release build preloads the shim alone.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "capi_helpers.h"

extern char** environ;

namespace uhoma::capi_test {
namespace {

using namespace std::chrono_literals;

std::string build_dir() {
    const char* d = std::getenv("UHOMA_BUILD_DIR");
    return d != nullptr ? d : "";
}

// The sanitizer runtime this process uses, if any (it must come first).
std::string asan_runtime() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        const auto slash = line.find('/');
        if (slash != std::string::npos && line.find("/libasan.so", slash) != std::string::npos) {
            return line.substr(slash);
        }
    }
    return "";
}

std::string preload_value() {
    const std::string shim = build_dir() + "/src/api/libuhoma_preload.so";
    const std::string asan = asan_runtime();
    return asan.empty() ? shim : asan + " " + shim;
}

// A child process with stdout and stderr on one pipe; killed (SIGKILL) and
// reaped on destruction unless it has exited.
class Child {
public:
    Child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, p[1], 1);
        posix_spawn_file_actions_adddup2(&actions, p[1], 2);
        std::vector<std::string> env_strings(extra_env);
        for (char** e = environ; *e != nullptr; ++e) {
            const std::string s(*e);
            bool overridden = false;
            for (const auto& x : extra_env) {
                if (s.compare(0, s.find('=') + 1, x.substr(0, x.find('=') + 1)) == 0) overridden = true;
            }
            if (!overridden) env_strings.push_back(s);
        }
        std::vector<char*> args, env;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        for (const auto& e : env_strings) env.push_back(const_cast<char*>(e.c_str()));
        env.push_back(nullptr);
        if (::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), env.data()) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
        ::close(p[1]);
        out_ = p[0];
    }
    ~Child() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
        if (out_ >= 0) ::close(out_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    bool started() const { return pid_ > 0; }

    // Reads output until `needle` appears; false after `timeout` or EOF.
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (output_.find(needle) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                end - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) return false;
        }
        return true;
    }

    // Waits for exit (reading output meanwhile); nullopt after `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                status_ = status;
                while (read_some(100)) {
                }
                return status;
            }
            if (!read_some(20)) std::this_thread::sleep_for(10ms);
        }
        return std::nullopt;
    }

    const std::string& output() const { return output_; }

private:
    bool read_some(int timeout_ms) {
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1) return false;
        char buffer[4096];
        const ssize_t n = ::read(out_, buffer, sizeof(buffer));
        if (n <= 0) return false;
        output_.append(buffer, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::optional<int> status_;
    std::string output_;
};

// Runs homa_echo_client (under the shim if `preload`) against a fresh
// echo_server; returns the client's exit status (-1: hung) and its output.
std::pair<int, std::string> run_client(bool preload, const std::string& count,
                                       const std::string& size, int port_offset) {
    const std::string dir = build_dir();
    // Another process may hold a port: try a few.
    std::unique_ptr<Child> server;
    std::string port;
    for (int attempt = 0; attempt < 20 && !server; ++attempt) {
        port = std::to_string(test_port(port_offset + 97 * attempt));
        server = std::make_unique<Child>(std::vector<std::string>{dir + "/examples/echo_server", port},
                                         std::vector<std::string>{});
        if (!server->started()) {
            ADD_FAILURE() << "cannot start echo_server";
            return {-1, ""};
        }
        if (!server->wait_for_output("listening", 20s)) {
            if (server->output().find("cannot open port") == std::string::npos) {
                ADD_FAILURE() << "echo_server did not start: " << server->output();
                return {-1, ""};
            }
            server.reset();
        }
    }
    if (!server) return {-1, "no free port for echo_server"};
    std::vector<std::string> env;
    if (preload) env.push_back("LD_PRELOAD=" + preload_value());
    Child client({dir + "/examples/homa_echo_client", "127.0.0.1", port, count, size}, env);
    if (!client.started()) return {-1, "cannot start homa_echo_client"};
    auto status = client.wait_exit(120s);
    if (!status) return {-1, "homa_echo_client hung: " + client.output()};
    const int code = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
    return {code, client.output()};
}  // ~Child kills the server

TEST(Preload, homa_echo_client__talks_to_the_cpp_echo_server_under_the_shim) {
    ASSERT_FALSE(build_dir().empty()) << "UHOMA_BUILD_DIR is not set";
    auto [code, output] = run_client(true, "20", "100", 40);
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("20 RPCs of 100 bytes OK"), std::string::npos) << output;
}

TEST(Preload, homa_echo_client__multi_bpage_messages_under_the_shim) {
    ASSERT_FALSE(build_dir().empty()) << "UHOMA_BUILD_DIR is not set";
    auto [code, output] = run_client(true, "6", "300000", 41);
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("6 RPCs of 300000 bytes OK"), std::string::npos) << output;
}

TEST(Preload, homa_echo_client__without_the_shim_finds_no_homa) {
    ASSERT_FALSE(build_dir().empty()) << "UHOMA_BUILD_DIR is not set";
    if (::access("/proc/net/homa_metrics", F_OK) == 0) GTEST_SKIP() << "the Homa module is loaded";
    auto [code, output] = run_client(false, "1", "100", 42);
    EXPECT_EQ(code, 1) << output;
    EXPECT_NE(output.find("cannot open a Homa socket"), std::string::npos) << output;
}

// ---------------------------------------------------------------------------
// The shim's rules, in process: its definitions called through dlsym (the
// test process itself is not preloaded).

struct Shim {
    Shim() {
        const std::string path = build_dir() + "/src/api/libuhoma_preload.so";
        handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // never closed
        if (handle == nullptr) return;
        socket = reinterpret_cast<decltype(socket)>(::dlsym(handle, "socket"));
        close = reinterpret_cast<decltype(close)>(::dlsym(handle, "close"));
        fcntl = reinterpret_cast<decltype(fcntl)>(::dlsym(handle, "fcntl"));
        ioctl = reinterpret_cast<decltype(ioctl)>(::dlsym(handle, "ioctl"));
        setsockopt = reinterpret_cast<decltype(setsockopt)>(::dlsym(handle, "setsockopt"));
        recvmsg = reinterpret_cast<decltype(recvmsg)>(::dlsym(handle, "recvmsg"));
    }
    void* handle = nullptr;
    int (*socket)(int, int, int) = nullptr;
    int (*close)(int) = nullptr;
    int (*fcntl)(int, int, ...) = nullptr;
    int (*ioctl)(int, unsigned long, ...) = nullptr;
    int (*setsockopt)(int, int, int, const void*, socklen_t) = nullptr;
    ssize_t (*recvmsg)(int, msghdr*, int) = nullptr;
};

TEST(Preload, fcntl__reads_and_sets_a_homa_sockets_nonblocking_flag) {
    Shim shim;
    ASSERT_NE(shim.handle, nullptr) << ::dlerror();
    const int fd = shim.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_HOMA);
    ASSERT_GE(fd, 0) << errno;
    EXPECT_EQ(shim.fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    ASSERT_EQ(shim.fcntl(fd, F_SETFL, 0), 0);
    EXPECT_EQ(shim.fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK)
        << "the eventfd under the socket stays non-blocking";
    ASSERT_EQ(shim.fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    EXPECT_EQ(shim.fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    // And the flag is the socket's: recvmsg does not wait.
    Region region;
    homa_rcvbuf_args args{reinterpret_cast<std::uintptr_t>(region.base), region.bytes};
    ASSERT_EQ(shim.setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, sizeof(args)), 0);
    homa_recvmsg_args recv_args{};
    msghdr hdr{};
    hdr.msg_control = &recv_args;
    hdr.msg_controllen = sizeof(recv_args);
    EXPECT_EQ(shim.recvmsg(fd, &hdr, 0), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(shim.fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC) << "other commands pass through";
    EXPECT_EQ(shim.close(fd), 0);
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "closed";
}

TEST(Preload, socket__other_sockets_pass_through_to_libc) {
    Shim shim;
    ASSERT_NE(shim.handle, nullptr) << ::dlerror();
    const int udp = shim.socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(udp, 0);
    const int one = 1;
    EXPECT_EQ(shim.setsockopt(udp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0)
        << "a real socket option on a real socket";
    int type = 0;
    socklen_t len = sizeof(type);
    ASSERT_EQ(::getsockopt(udp, SOL_SOCKET, SO_TYPE, &type, &len), 0) << "a kernel socket";
    EXPECT_EQ(type, SOCK_DGRAM);
    int pending = -1;
    EXPECT_EQ(shim.ioctl(udp, FIONREAD, &pending), 0);
    EXPECT_EQ(pending, 0);
    EXPECT_EQ(shim.close(udp), 0);
    EXPECT_EQ(::fcntl(udp, F_GETFD), -1) << "closed";
    errno = 0;
    EXPECT_EQ(shim.close(udp), -1) << "libc's answer for a closed descriptor";
    EXPECT_EQ(errno, EBADF);
}

TEST(Preload, socket__raw_protocol_146_is_not_a_homa_socket) {
    Shim shim;
    ASSERT_NE(shim.handle, nullptr) << ::dlerror();
    // uhoma's raw driver and capture tools open these; the kernel decides.
    errno = 0;
    const int fd = shim.socket(AF_INET, SOCK_RAW, IPPROTO_HOMA);
    if (fd >= 0) {
        int type = 0;
        socklen_t len = sizeof(type);
        EXPECT_EQ(::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
        EXPECT_EQ(type, SOCK_RAW);
        shim.close(fd);
    } else {
        EXPECT_EQ(errno, EPERM) << "no CAP_NET_RAW: the kernel's answer, not uhoma's";
    }
}

}  // namespace
}  // namespace uhoma::capi_test
