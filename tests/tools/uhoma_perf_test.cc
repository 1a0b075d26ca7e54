// Smoke tests of uhoma-perf (tools/uhoma-perf): each test and protocol runs
// briefly on loopback, server and client as separate processes, and the
// RESULT lines must parse and hold sane (positive, consistent) numbers.
// Nothing here asserts on speed.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tools_support.h"

namespace uhoma::tools_test {
namespace {

using Fields = std::map<std::string, std::string>;

// The key=value pairs of the last "RESULT " line of `text` (empty if none).
Fields result_line(const std::string& text) {
    Fields fields;
    for (const std::string& line : split_lines(text)) {
        if (line.rfind("RESULT ", 0) != 0) continue;
        fields.clear();
        std::istringstream in(line.substr(7));
        for (std::string pair; in >> pair;) {
            const auto eq = pair.find('=');
            if (eq != std::string::npos) fields[pair.substr(0, eq)] = pair.substr(eq + 1);
        }
    }
    return fields;
}

double number(const Fields& f, const std::string& key) {
    auto it = f.find(key);
    if (it == f.end()) {
        ADD_FAILURE() << "no " << key << " in the RESULT line";
        return -1;
    }
    return std::stod(it->second);
}

// A uhoma-perf server running in the background; stopped with SIGTERM.
class Server {
  public:
    Server(const TempDir& dir, std::vector<std::string> args) : out_(dir.file("server.out")) {
        args.insert(args.begin(), tool_path("uhoma-perf"));
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        posix_spawn_file_actions_addopen(&actions, 2, dir.file("server.err").c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<char*> argv;
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
    }
    ~Server() {
        if (pid_ > 0) stop();
    }
    // The port from "READY port=P", waiting up to 10 s; 0 if it never came.
    int port() const {
        for (int i = 0; i < 1000 && pid_ > 0; ++i) {
            for (const std::string& line : split_lines(read_text(out_))) {
                if (line.rfind("READY port=", 0) == 0) return std::stoi(line.substr(11));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return 0;
    }
    // Stops the server; returns its exit status and its output.
    ProcessResult stop() {
        ProcessResult r;
        kill(pid_, SIGTERM);
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
        r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r.out = read_text(out_);
        return r;
    }

  private:
    std::string out_;
    pid_t pid_ = -1;
};

struct PerfRun {
    Fields client;
    Fields server;
};

PerfRun run_perf(const std::string& test, const std::string& proto, const std::string& wake,
                 const std::vector<std::string>& client_options,
                 const std::vector<std::string>& server_options = {}) {
    TempDir dir;
    std::vector<std::string> server_args = {test,   "server", "--proto", proto, "--wake",
                                            wake,   "--port", "0",       "--seconds", "60"};
    server_args.insert(server_args.end(), server_options.begin(), server_options.end());
    Server server(dir, server_args);
    const int port = server.port();
    EXPECT_GT(port, 0) << "the server never printed READY";
    std::vector<std::string> args = {tool_path("uhoma-perf"),
                                     test,
                                     "client",
                                     "--proto",
                                     proto,
                                     "--wake",
                                     wake,
                                     "--server",
                                     "127.0.0.1:" + std::to_string(port)};
    args.insert(args.end(), client_options.begin(), client_options.end());
    const ProcessResult client = run_process(args, dir);
    EXPECT_EQ(client.status, 0) << client.err;
    const ProcessResult stopped = server.stop();
    EXPECT_EQ(stopped.status, 0);
    PerfRun r{result_line(client.out), result_line(stopped.out)};
    EXPECT_EQ(r.client["test"], test);
    EXPECT_EQ(r.client["role"], "client");
    EXPECT_EQ(r.client["proto"], proto);
    EXPECT_EQ(r.server["role"], "server");
    return r;
}

void check_pingpong(const PerfRun& r, double iterations) {
    EXPECT_EQ(number(r.client, "iterations"), iterations);
    const double p50 = number(r.client, "p50_us"), p99 = number(r.client, "p99_us");
    EXPECT_GT(number(r.client, "min_us"), 0);
    EXPECT_LE(number(r.client, "min_us"), p50);
    EXPECT_LE(p50, p99);
    EXPECT_GT(number(r.client, "mean_us"), 0);
    // Warm-up plus measured round trips all reached the server.
    EXPECT_GE(number(r.server, "messages"), iterations);
}

TEST(UhomaPerf, pingpong__homa_udp_tcp_both_wake_modes) {
    for (const std::string proto : {"homa", "udp", "tcp"}) {
        for (const std::string wake : {"busy", "block"}) {
            SCOPED_TRACE(proto + " " + wake);
            std::vector<std::string> options = {"--iterations", "300", "--warmup", "30"};
            if (proto == "homa" && wake == "busy") {
                options.insert(options.end(), {"--busy-poll-usecs", "2000"});
            }
            check_pingpong(run_perf("pingpong", proto, wake, options), 300);
        }
    }
}

TEST(UhomaPerf, stream__homa_and_tcp_report_goodput_and_cpu) {
    for (const std::string proto : {"homa", "tcp"}) {
        SCOPED_TRACE(proto);
        const PerfRun r =
            run_perf("stream", proto, "default",
                     {"--size", "200000", "--seconds", "0.3", "--warmup-seconds", "0.1"});
        EXPECT_GT(number(r.client, "rpcs"), 0);
        EXPECT_GT(number(r.client, "gbps"), 0);
        EXPECT_GT(number(r.client, "cpu_s"), 0);
        EXPECT_GT(number(r.client, "cpu_s_per_gb"), 0);
        EXPECT_EQ(number(r.client, "size"), 200000);
        EXPECT_GT(number(r.server, "bytes"), 0);
        EXPECT_GE(number(r.server, "cpu_s"), 0);
        EXPECT_GT(number(r.server, "messages"), number(r.client, "rpcs"));
    }
}

TEST(UhomaPerf, rate__homa_and_tcp_report_rpcs_per_second) {
    for (const std::string proto : {"homa", "tcp"}) {
        SCOPED_TRACE(proto);
        const PerfRun r =
            run_perf("rate", proto, "default",
                     {"--concurrency", "4", "--seconds", "0.3", "--warmup-seconds", "0.1"});
        EXPECT_EQ(number(r.client, "concurrency"), 4);
        EXPECT_GT(number(r.client, "rpcs"), 0);
        EXPECT_GT(number(r.client, "rpcs_per_s"), 0);
        EXPECT_GT(number(r.server, "messages"), number(r.client, "rpcs"));
    }
}

TEST(UhomaPerf, pingpong__homa_async_server_both_wake_modes) {
    // The server answers from an EventLoop request handler (--async).
    for (const std::string wake : {"busy", "block"}) {
        SCOPED_TRACE(wake);
        check_pingpong(run_perf("pingpong", "homa", wake, {"--iterations", "300", "--warmup", "30"},
                                {"--async"}),
                       300);
    }
}

TEST(UhomaPerf, rate__homa_without_send_batches) {
    // Homa's stream and rate batch by default (SendBatch); --no-batch on
    // both sides sends every message at once, as bench-transport's
    // rate_homa_nobatch does.
    const PerfRun r = run_perf(
        "rate", "homa", "default",
        {"--concurrency", "4", "--seconds", "0.3", "--warmup-seconds", "0.1", "--no-batch"},
        {"--no-batch"});
    EXPECT_GT(number(r.client, "rpcs"), 0);
    EXPECT_GT(number(r.server, "messages"), number(r.client, "rpcs"));
}

TEST(UhomaPerf, bad_usage__one_error_line_and_nonzero_exit) {
    TempDir dir;
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"pingpong", "client"},  // no --server
             {"stream", "client", "--proto", "udp", "--server", "127.0.0.1:1"},
             {"pingpong", "client", "--server", "127.0.0.1:1", "--wake", "sometimes"},
             {"nosuchtest", "server"}}) {
        std::vector<std::string> argv = {tool_path("uhoma-perf")};
        argv.insert(argv.end(), args.begin(), args.end());
        const ProcessResult r = run_process(argv, dir);
        EXPECT_NE(r.status, 0) << args[0];
        EXPECT_EQ(split_lines(r.err).size(), 1u) << r.err;
        EXPECT_EQ(r.err.rfind("uhoma-perf: ", 0), 0u) << r.err;
    }
}

TEST(UhomaPerf, client__no_server_fails_with_one_line) {
    TempDir dir;
    // Nothing listens on TCP port 1 of loopback: connection refused.
    const ProcessResult r = run_process({tool_path("uhoma-perf"), "pingpong", "client", "--proto",
                                         "tcp", "--server", "127.0.0.1:1"},
                                        dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(split_lines(r.err).size(), 1u) << r.err;
}

}  // namespace
}  // namespace uhoma::tools_test
