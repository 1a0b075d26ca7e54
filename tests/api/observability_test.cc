// The process's control endpoint: Transports attach to it, its commands
// report real engine state, and it goes away with the last Transport.
#include "api/observability.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "api/control.h"
#include "trace/timetrace.h"
#include "uhoma/transport.h"

namespace uhoma::api {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Sets an environment variable for the scope of a test.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_.c_str(), old_->c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

class Observability : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = "/tmp/uhoma-obs-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern + "/run";  // created by the endpoint
        run_dir_.emplace("UHOMA_RUN_DIR", dir_.c_str());
    }
    void TearDown() override {
        run_dir_.reset();
        trace::set_enabled(false);
        trace::clear();
        std::error_code ignored;
        fs::remove_all(fs::path(dir_).parent_path(), ignored);
    }
    std::string socket_path() const { return control_path(dir_, ::getpid()); }

    std::string dir_;
    std::optional<ScopedEnv> run_dir_;
};

std::uint16_t test_port() { return static_cast<std::uint16_t>(1000 + (::getpid() + 7) % 30000); }

// One echo RPC from `client` to `server`, served on this thread.
void echo_once(Socket& server, Socket& client, std::size_t size) {
    const std::vector<std::byte> request(size, std::byte{7});
    auto id = client.send_request(server.endpoint("127.0.0.1"), request);
    ASSERT_TRUE(id) << id.error();
    auto in = server.receive(2s);
    ASSERT_TRUE(in) << in.error();
    ASSERT_TRUE(server.reply(*in, in->to_vector()));
    auto out = client.receive(2s);
    ASSERT_TRUE(out) << out.error();
    EXPECT_EQ(out->size(), size);
}

// The value of `name` in homa_metrics text, or -1.
long long counter(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(text.substr(at + 1 + name.size()));
}

TEST_F(Observability, attach_control__serves_metrics_of_the_transport) {
    auto transport = Transport::create().value();
    EXPECT_EQ(control_socket_path(), socket_path());
    ASSERT_TRUE(fs::exists(socket_path()));
    auto server = Socket::open(transport, test_port()).value();
    auto client = Socket::open(transport).value();
    for (int i = 0; i < 3; ++i) echo_once(server, client, 3000);

    auto text = control_request(socket_path(), "metrics");
    ASSERT_TRUE(text) << text.error().message;
    EXPECT_EQ(text->rfind("time_cycles ", 0), 0u);
    EXPECT_EQ(counter(*text, "client_requests_started"), 3);
    EXPECT_EQ(counter(*text, "server_requests_done"), 3);
    EXPECT_EQ(counter(*text, "client_responses_done"), 3);
    EXPECT_GE(counter(*text, "packets_sent_DATA"), 12);  // 3000 B: 3 packets each way
    EXPECT_EQ(counter(*text, "packets_rcvd_DATA"), counter(*text, "packets_sent_DATA"));
    EXPECT_EQ(counter(*text, "core"), 0);
}

TEST_F(Observability, attach_control__one_endpoint_sums_transports) {
    auto a = Transport::create().value();
    auto b = Transport::create().value();
    auto server = Socket::open(a, test_port()).value();
    auto client = Socket::open(b).value();
    echo_once(server, client, 100);
    auto info = control_request(socket_path(), "info");
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_NE(info->find("pid " + std::to_string(::getpid()) + "\n"), std::string::npos);
    EXPECT_NE(info->find("runtimes 2\n"), std::string::npos) << *info;
    auto text = control_request(socket_path(), "metrics");
    ASSERT_TRUE(text);
    EXPECT_EQ(counter(*text, "client_requests_started"), 1);  // from b
    EXPECT_EQ(counter(*text, "server_requests_done"), 1);     // from a
    // Destroying one keeps the endpoint; the last one removes it.
    {
        Socket gone = std::move(client);
    }
    b.reset();
    info = control_request(socket_path(), "info");
    ASSERT_TRUE(info);
    EXPECT_NE(info->find("runtimes 1\n"), std::string::npos) << *info;
    {
        Socket gone = std::move(server);
    }
    a.reset();
    EXPECT_FALSE(fs::exists(socket_path()));
    EXPECT_EQ(control_socket_path(), "");
}

TEST_F(Observability, attach_control__disabled_by_uhoma_control) {
    ScopedEnv off("UHOMA_CONTROL", "0");
    auto transport = Transport::create().value();
    EXPECT_EQ(control_socket_path(), "");
    EXPECT_FALSE(fs::exists(socket_path()));
}

TEST_F(Observability, attach_control__removes_stale_sockets) {
    ASSERT_TRUE(prepare_control_directory(dir_));
    const std::string stale = control_path(dir_, 2147483646);
    { std::ofstream(stale) << ""; }
    auto transport = Transport::create().value();
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_TRUE(fs::exists(socket_path()));
}

TEST_F(Observability, timetrace_commands__record_engine_events) {
    auto transport = Transport::create().value();
    auto server = Socket::open(transport, test_port()).value();
    auto client = Socket::open(transport).value();
    ASSERT_TRUE(control_request(socket_path(), "trace-clear"));
    ASSERT_TRUE(control_request(socket_path(), "trace-on"));
    EXPECT_TRUE(trace::recording());
    echo_once(server, client, 3000);
    ASSERT_TRUE(control_request(socket_path(), "freeze"));
    EXPECT_TRUE(trace::frozen());
    auto info = control_request(socket_path(), "info");
    ASSERT_TRUE(info);
    EXPECT_NE(info->find("timetrace on frozen\n"), std::string::npos) << *info;

    auto dump = control_request(socket_path(), "timetrace");
    ASSERT_TRUE(dump) << dump.error().message;
    EXPECT_NE(dump->find("] rx DATA id "), std::string::npos) << *dump;
    EXPECT_NE(dump->find("] tx DATA id "), std::string::npos);
    EXPECT_NE(dump->find(" request complete, 3000 bytes"), std::string::npos);
    EXPECT_NE(dump->find(" response complete, 3000 bytes"), std::string::npos);
    EXPECT_EQ(dump->rfind("    0.000 us (+   0.000 us) [C", 0), 0u);
    // Frozen: more traffic adds nothing.
    echo_once(server, client, 100);
    auto again = control_request(socket_path(), "timetrace");
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *dump);

    ASSERT_TRUE(control_request(socket_path(), "unfreeze"));
    ASSERT_TRUE(control_request(socket_path(), "trace-off"));
    EXPECT_FALSE(trace::recording());
    ASSERT_TRUE(control_request(socket_path(), "trace-clear"));
    auto empty = control_request(socket_path(), "timetrace");
    ASSERT_TRUE(empty);
    EXPECT_EQ(*empty, "");
}

TEST_F(Observability, attach_control__uhoma_timetrace_enables_the_trace) {
    ScopedEnv on("UHOMA_TIMETRACE", "1");
    trace::set_enabled(false);
    auto transport = Transport::create().value();
    EXPECT_TRUE(trace::enabled());
}

}  // namespace
}  // namespace uhoma::api
