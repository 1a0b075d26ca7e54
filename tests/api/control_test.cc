// The control socket: server and client over a real unix socket, error
// kinds, shutdown, and run-directory housekeeping.
#include "api/control.h"

#include <gtest/gtest.h>
#include "support/temp_dir.h"
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace uhoma::api {
namespace {

namespace fs = std::filesystem;

using TempDir = uhoma::testing::TempDir;

std::map<std::string, ControlHandler, std::less<>> test_handlers() {
    std::map<std::string, ControlHandler, std::less<>> h;
    h["echo"] = [](std::string_view argument) -> Expected<std::string, std::string> {
        return "echo:" + std::string(argument);
    };
    h["fail"] = [](std::string_view) -> Expected<std::string, std::string> {
        return Unexpected{std::string("it failed\non two lines")};
    };
    h["big"] = [](std::string_view) -> Expected<std::string, std::string> {
        std::string s(3 << 20, 'x');
        for (std::size_t i = 0; i < s.size(); i += 1000) s[i] = static_cast<char>('a' + i % 26);
        return s;
    };
    h["throw"] = [](std::string_view) -> Expected<std::string, std::string> {
        throw std::runtime_error("boom");
    };
    return h;
}

// A unix socket bound at `path` but not listening (a dead server's file).
void make_stale_socket(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    ::close(fd);
}

// Sends raw bytes and returns everything the server answers.
std::string raw_exchange(const std::string& path, const std::string& bytes) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    ::shutdown(fd, SHUT_WR);
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
        out.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

TEST(ControlServer, control_request__answers_commands) {
    TempDir dir;
    auto server = ControlServer::start(dir.file("1.sock"), test_handlers());
    ASSERT_TRUE(server) << server.error();
    EXPECT_EQ((*server)->path(), dir.file("1.sock"));
    auto a = control_request(dir.file("1.sock"), "echo hello world");
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(*a, "echo:hello world");
    auto b = control_request(dir.file("1.sock"), "echo");
    ASSERT_TRUE(b);
    EXPECT_EQ(*b, "echo:");
}

TEST(ControlServer, control_request__large_answer) {
    TempDir dir;
    auto server = ControlServer::start(dir.file("1.sock"), test_handlers());
    ASSERT_TRUE(server);
    auto a = control_request(dir.file("1.sock"), "big");
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_EQ(a->size(), 3u << 20);
    EXPECT_EQ((*a)[26000], 'a');
    auto limited = control_request(dir.file("1.sock"), "big", std::chrono::seconds(5), 1000);
    ASSERT_FALSE(limited);
    EXPECT_EQ(limited.error().kind, ControlErrorKind::protocol);
}

TEST(ControlServer, control_request__unknown_command_is_an_error) {
    TempDir dir;
    auto server = ControlServer::start(dir.file("1.sock"), test_handlers());
    ASSERT_TRUE(server);
    auto a = control_request(dir.file("1.sock"), "nonsense arg");
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().kind, ControlErrorKind::remote);
    EXPECT_NE(a.error().message.find("unknown command 'nonsense'"), std::string::npos)
        << a.error().message;
    EXPECT_NE(a.error().message.find("echo"), std::string::npos);  // lists the commands
}

TEST(ControlServer, control_request__handler_errors_are_one_line) {
    TempDir dir;
    auto server = ControlServer::start(dir.file("1.sock"), test_handlers());
    ASSERT_TRUE(server);
    auto a = control_request(dir.file("1.sock"), "fail");
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().kind, ControlErrorKind::remote);
    EXPECT_EQ(a.error().message, "it failed on two lines");
    auto b = control_request(dir.file("1.sock"), "throw");
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().message, "internal error: boom");
    // The server still answers afterwards.
    EXPECT_TRUE(control_request(dir.file("1.sock"), "echo x"));
}

TEST(ControlServer, control_request__rejects_bad_commands_locally) {
    TempDir dir;
    auto server = ControlServer::start(dir.file("1.sock"), test_handlers());
    ASSERT_TRUE(server);
    for (const std::string& bad : {std::string(), std::string("echo\nfail"),
                                  std::string(max_command_bytes, 'e')}) {
        auto a = control_request(dir.file("1.sock"), bad);
        ASSERT_FALSE(a);
        EXPECT_EQ(a.error().kind, ControlErrorKind::protocol);
    }
}

TEST(ControlServer, serve__refuses_long_or_unterminated_lines) {
    TempDir dir;
    auto server = ControlServer::start(dir.file("1.sock"), test_handlers());
    ASSERT_TRUE(server);
    EXPECT_EQ(raw_exchange(dir.file("1.sock"), std::string(1000, 'x')),
              "error command too long or not ended by a newline\n");
    EXPECT_EQ(raw_exchange(dir.file("1.sock"), "echo unterminated"),
              "error command too long or not ended by a newline\n");
    EXPECT_EQ(raw_exchange(dir.file("1.sock"), "echo crlf\r\n"), "ok\necho:crlf");
}

TEST(ControlServer, destructor__removes_socket_file) {
    TempDir dir;
    const std::string path = dir.file("1.sock");
    {
        auto server = ControlServer::start(path, test_handlers());
        ASSERT_TRUE(server);
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 0777, 0600u);
    }
    EXPECT_FALSE(fs::exists(path));
    auto a = control_request(path, "echo");
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().kind, ControlErrorKind::no_socket);
}

TEST(ControlServer, destructor__keeps_a_file_that_replaced_its_own) {
    TempDir dir;
    const std::string path = dir.file("1.sock");
    auto first = ControlServer::start(path, test_handlers());
    ASSERT_TRUE(first);
    auto second = ControlServer::start(path, test_handlers());  // replaces the file
    ASSERT_TRUE(second);
    first->reset();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_TRUE(control_request(path, "echo still here"));
    second->reset();
    EXPECT_FALSE(fs::exists(path));
}

TEST(ControlServer, start__errors) {
    auto long_path = ControlServer::start("/tmp/" + std::string(200, 'x') + ".sock", test_handlers());
    ASSERT_FALSE(long_path);
    EXPECT_NE(long_path.error().find("too long"), std::string::npos);
    auto missing = ControlServer::start("/nonexistent-dir/x/1.sock", test_handlers());
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().find("cannot bind"), std::string::npos) << missing.error();
}

TEST(ControlServer, control_request__stale_socket_is_refused) {
    TempDir dir;
    make_stale_socket(dir.file("1.sock"));
    auto a = control_request(dir.file("1.sock"), "echo");
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().kind, ControlErrorKind::refused);
}

TEST(ControlServer, control_request__not_a_control_server) {
    TempDir dir;
    // A listener that answers something else and closes.
    const std::string path = dir.file("1.sock");
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    std::thread peer([fd] {
        const int c = ::accept(fd, nullptr, nullptr);
        char buffer[256];
        (void)::recv(c, buffer, sizeof(buffer), 0);
        (void)::send(c, "HTTP/1.1 200 OK\r\n", 17, MSG_NOSIGNAL);
        ::close(c);
    });
    auto a = control_request(path, "metrics");
    peer.join();
    ::close(fd);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().kind, ControlErrorKind::protocol);
}

TEST(ControlDirectory, prepare_control_directory__creates_sticky_directories) {
    TempDir dir;
    const std::string nested = dir.file("a/b/run");
    ASSERT_TRUE(prepare_control_directory(nested));
    struct stat st {};
    ASSERT_EQ(::stat(nested.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 01777u);
    EXPECT_TRUE(prepare_control_directory(nested));  // exists: fine
    std::ofstream(dir.file("file")) << "x";
    auto not_dir = prepare_control_directory(dir.file("file"));
    ASSERT_FALSE(not_dir);
    EXPECT_NE(not_dir.error().find("not a directory"), std::string::npos);
}

TEST(ControlDirectory, remove_stale_sockets__only_dead_pids) {
    TempDir dir;
    const std::string mine = control_path(dir.path(), ::getpid());
    const std::string dead = control_path(dir.path(), 2147483646);  // above any pid_max
    std::ofstream(mine) << "";
    std::ofstream(dead) << "";
    std::ofstream(dir.file("notes.txt")) << "";
    std::ofstream(dir.file("12x.sock")) << "";
    EXPECT_EQ(list_control_pids(dir.path()), std::vector<pid_t>{::getpid()});
    remove_stale_sockets(dir.path());
    EXPECT_TRUE(fs::exists(mine));
    EXPECT_FALSE(fs::exists(dead));
    EXPECT_TRUE(fs::exists(dir.file("notes.txt")));
    EXPECT_TRUE(fs::exists(dir.file("12x.sock")));
    EXPECT_TRUE(list_control_pids(dir.file("missing")).empty());
}

TEST(ControlDirectory, control_directory__from_environment) {
    const char* old = std::getenv("UHOMA_RUN_DIR");
    const std::string saved = old != nullptr ? old : "";
    ::setenv("UHOMA_RUN_DIR", "/var/run/x", 1);
    EXPECT_EQ(control_directory(), "/var/run/x");
    ::setenv("UHOMA_RUN_DIR", "", 1);
    EXPECT_EQ(control_directory(), "/tmp/uhoma");
    ::unsetenv("UHOMA_RUN_DIR");
    EXPECT_EQ(control_directory(), "/tmp/uhoma");
    EXPECT_EQ(control_path("/tmp/uhoma", 42), "/tmp/uhoma/42.sock");
    if (old != nullptr) ::setenv("UHOMA_RUN_DIR", saved.c_str(), 1);
}

}  // namespace
}  // namespace uhoma::api
