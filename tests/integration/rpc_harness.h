// Helpers for the integration tests: child processes (rpc_tool, possibly
// inside a network namespace) with their output in files, and parsing of
// rpc_tool's summary lines and metrics.
//
// Design notes
// ------------
// Children are started with posix_spawn (never a shell), in their own
// process group, with stdout and stderr redirected to files in a per-test
// temporary directory: no pipe can fill up and block a child, and the test
// can read the output while the child runs (to wait for "listening") and
// after it ended. `ip netns exec NS prog ...` execs prog in place, so the
// pid we hold is the program's own and signals reach it directly.
//
// Cleanup: ~Child sends SIGKILL to the child's process group and reaps it,
// so a failing assertion (which returns from the test body) never leaves a
// process behind; ~TempDir removes the directory. NetnsCluster's destructor
// additionally kills anything still inside its namespaces.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/netns.h"
#include "support/temp_dir.h"
#include "uhoma/expected.h"

extern char** environ;

namespace uhoma::integration {

using Clock = std::chrono::steady_clock;

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

using TempDir = uhoma::testing::TempDir;

// One child process; killed (SIGKILL to its process group) and reaped on
// destruction unless it was already waited for.
class Child {
  public:
    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    Child(Child&& o) noexcept { *this = std::move(o); }
    Child& operator=(Child&& o) noexcept {
        if (this != &o) {
            reap();
            pid_ = std::exchange(o.pid_, -1);
            status_ = o.status_;
            out_ = std::move(o.out_);
            err_ = std::move(o.err_);
            argv_ = std::move(o.argv_);
        }
        return *this;
    }
    ~Child() { reap(); }

    // Starts argv[0] (searched in PATH) with stdout to `out` and stderr to
    // `err`. Returns a Child whose running() is false on failure.
    static Child spawn(const std::vector<std::string>& argv, const std::string& out,
                       const std::string& err) {
        Child c;
        c.out_ = out;
        c.err_ = err;
        c.argv_ = argv;
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attr, 0);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        pid_t pid = -1;
        if (::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ) == 0) c.pid_ = pid;
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        return c;
    }

    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    std::string out() const { return read_file(out_); }
    std::string err() const { return read_file(err_); }
    std::string command() const {
        std::string s;
        for (const auto& a : argv_) s += (s.empty() ? "" : " ") + a;
        return s;
    }

    void signal(int sig) const {
        if (pid_ > 0) ::kill(pid_, sig);
    }

    // Waits up to `timeout` for the child to exit; returns its wait status,
    // or nullopt if it is still running (it is left running).
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        if (pid_ <= 0) return status_;
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            int status = 0;
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_ || (r < 0 && errno != EINTR)) {
                pid_ = -1;
                status_ = r > 0 ? status : -1;  // -1: lost (not ok for exited_ok)
                return status_;
            }
            if (Clock::now() >= deadline) return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    // Waits until `text` appears in the child's stdout. False if the child
    // exits first or `timeout` passes.
    bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            if (out().find(text) != std::string::npos) return true;
            int status = 0;
            if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                status_ = status;
                return out().find(text) != std::string::npos;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return false;
    }

    // Everything the child wrote, for failure messages.
    std::string describe() const {
        return "`" + command() + "`\n--- stdout:\n" + out() + "--- stderr:\n" + err();
    }

  private:
    void reap() {
        if (pid_ <= 0) return;
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

    pid_t pid_ = -1;
    std::optional<int> status_;
    std::string out_, err_;
    std::vector<std::string> argv_;
};

inline bool exited_ok(const std::optional<int>& status) {
    return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

// key=value fields of the first line of `text` that starts with `prefix`
// ("rpc_tool client:") and has such fields. Empty if there is no such line.
inline std::map<std::string, std::string> summary(const std::string& text,
                                                  const std::string& prefix) {
    std::map<std::string, std::string> fields;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind(prefix, 0) != 0 || line.find('=') == std::string::npos) continue;
        std::istringstream words(line.substr(prefix.size()));
        std::string word;
        while (words >> word) {
            const auto eq = word.find('=');
            if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
        }
        break;
    }
    return fields;
}

inline std::int64_t field(const std::map<std::string, std::string>& fields,
                          const std::string& name) {
    auto it = fields.find(name);
    if (it == fields.end()) return -1;
    return std::strtoll(it->second.c_str(), nullptr, 10);
}

// The value of counter `name` in homa_metrics text ("name   value  description").
inline std::int64_t metric(const std::string& text, const std::string& name) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string first;
        std::int64_t value = -1;
        if (words >> first && first == name && words >> value) return value;
    }
    return -1;
}

// Path of the rpc_tool binary (compiled in by CMake).
inline std::string rpc_tool() {
    return UHOMA_RPC_TOOL;
}

// RPC count of the RPC-count tests: $UHOMA_INTEGRATION_RPCS if set, else
// the CMake setting of the same name (100,000 in optimized builds, 2,000
// under sanitizers).
inline std::uint64_t rpc_count() {
    const char* v = std::getenv("UHOMA_INTEGRATION_RPCS");
    const std::uint64_t n = v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : 0;
    return n > 0 ? n : UHOMA_INTEGRATION_RPCS_DEFAULT;
}

// Where a test's processes run: on this host over loopback (no cluster), or
// on the hosts of a NetnsCluster.
struct Hosts {
    const testing::NetnsCluster* cluster = nullptr;

    // argv, run inside host i.
    std::vector<std::string> command(int host, std::vector<std::string> argv) const {
        if (cluster == nullptr) return argv;
        std::vector<std::string> full{"ip", "netns", "exec", cluster->ns(host)};
        full.insert(full.end(), argv.begin(), argv.end());
        return full;
    }
    std::string address(int host) const {
        return cluster == nullptr ? std::string("127.0.0.1") : cluster->address(host);
    }
};

struct Server {
    Child child;
    std::uint16_t port = 0;
};

// Starts `rpc_tool server` in `host` on the first free port from `port`
// (up to 200 tries) and waits until it listens. `name` names its output
// files in `dir`. Errors: one line with the server's output.
inline Expected<Server, std::string> start_server(const Hosts& hosts, int host, const TempDir& dir,
                                                  const std::string& name, std::uint16_t port,
                                                  const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{rpc_tool(),           "server",       "--port",
                                  std::to_string(port), "--port-tries", "200"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Server s;
    s.child =
        Child::spawn(hosts.command(host, argv), dir.file(name + ".out"), dir.file(name + ".err"));
    if (!s.child.running()) return Unexpected{"cannot start " + s.child.command()};
    const std::string marker = "listening on port ";
    if (!s.child.wait_for_output(marker, std::chrono::seconds(20))) {
        return Unexpected{"server did not start: " + s.child.describe()};
    }
    const std::string out = s.child.out();
    s.port = static_cast<std::uint16_t>(
        std::strtoul(out.c_str() + out.find(marker) + marker.size(), nullptr, 10));
    return s;
}

// Stops a server with SIGTERM and returns everything it printed (summary
// line and metrics). Errors: it did not exit cleanly within 20 s (it had
// crashed, or hangs), with its output.
inline Expected<std::string, std::string> stop_server(Server& server) {
    server.child.signal(SIGTERM);
    const auto status = server.child.wait(std::chrono::seconds(20));
    if (!exited_ok(status)) {
        return Unexpected{"server did not exit cleanly (status " +
                          (status ? std::to_string(*status) : std::string("still running")) +
                          "): " + server.child.describe()};
    }
    return server.child.out();
}

// Runs `rpc_tool client` in `host` with `args` and waits for it (at most
// `timeout`; then it is killed). Returns its summary fields; the test checks
// them. Errors: it could not start, timed out, or printed no summary.
struct ClientRun {
    std::map<std::string, std::string> fields;
    std::string output;  // stdout and stderr, for failure messages
};
inline Expected<ClientRun, std::string> run_client(const Hosts& hosts, int host, const TempDir& dir,
                                                   const std::string& name,
                                                   const std::vector<std::string>& args,
                                                   std::chrono::milliseconds timeout) {
    std::vector<std::string> argv{rpc_tool(), "client"};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c =
        Child::spawn(hosts.command(host, argv), dir.file(name + ".out"), dir.file(name + ".err"));
    if (!c.running()) return Unexpected{"cannot start " + c.command()};
    const auto status = c.wait(timeout);
    if (!status) {
        return Unexpected{"client still running after " + std::to_string(timeout.count()) +
                          " ms: " + c.describe()};
    }
    ClientRun run;
    run.output = c.describe();
    run.fields = summary(c.out(), "rpc_tool client:");
    if (run.fields.empty()) return Unexpected{"client printed no summary: " + run.output};
    return run;
}

// The whole check of a clean run: `count` RPCs issued, all completed and
// verified, none failed.
inline void expect_all_completed(const ClientRun& run, std::uint64_t count) {
    const auto& f = run.fields;
    EXPECT_EQ(field(f, "issued"), static_cast<std::int64_t>(count)) << run.output;
    EXPECT_EQ(field(f, "completed"), static_cast<std::int64_t>(count)) << run.output;
    EXPECT_EQ(field(f, "failed"), 0) << run.output;
    EXPECT_EQ(f.count("failed_by_errno") ? f.at("failed_by_errno") : "", "none") << run.output;
    EXPECT_EQ(field(f, "verify_failures"), 0) << run.output;
    EXPECT_EQ(field(f, "stalled"), 0) << run.output;
    EXPECT_EQ(field(f, "unexpected"), 0) << run.output;
}

// Client wait limit for `count` W4 RPCs: generous (sanitizer builds on two
// busy cores), so only a hang trips it.
inline std::chrono::milliseconds client_timeout(std::uint64_t count, double ms_per_rpc = 30) {
    return std::chrono::milliseconds(
        60'000 + static_cast<std::int64_t>(static_cast<double>(count) * ms_per_rpc));
}

// ---------------------------------------------------------------------------
// Scenarios, shared by the loopback and the namespace tests. Host 0 runs the
// echo server, host 1 the client, host 2 the flooder (on loopback they are
// all this machine). `params` ("--param", "NAME=VALUE", ...) go to every
// transport, e.g. the driver choice.

// `count` W4 RPCs, payloads verified at both ends; the server must have
// served each exactly once. The server's output (summary and metrics) goes
// to *server_output if given.
inline void expect_w4_rpcs_complete(const Hosts& hosts, std::uint64_t count, std::uint16_t port,
                                    const std::vector<std::string>& params, std::uint64_t seed,
                                    std::string* server_output = nullptr, int concurrency = 4) {
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    auto server = start_server(hosts, 0, dir, "server", port, params);
    ASSERT_TRUE(server.has_value()) << server.error();
    std::vector<std::string> args{
        "--server",      hosts.address(0) + ":" + std::to_string(server->port),
        "--count",       std::to_string(count),
        "--workload",    "w4",
        "--seed",        std::to_string(seed),
        "--concurrency", std::to_string(concurrency)};
    args.insert(args.end(), params.begin(), params.end());
    const auto t0 = Clock::now();
    auto run = run_client(hosts, 1, dir, "client", args, client_timeout(count));
    ASSERT_TRUE(run.has_value()) << run.error();
    const auto seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    expect_all_completed(*run, count);
    auto out = stop_server(*server);
    ASSERT_TRUE(out.has_value()) << out.error();
    if (server_output != nullptr) *server_output = *out;
    const auto s = summary(*out, "rpc_tool server:");
    EXPECT_EQ(field(s, "requests"), static_cast<std::int64_t>(count)) << *out;
    EXPECT_EQ(field(s, "verify_failures"), 0) << *out;
    EXPECT_EQ(field(s, "reply_errors"), 0) << *out;
    EXPECT_EQ(s.count("receive_errors") ? s.at("receive_errors") : "", "none") << *out;
    std::printf("[ info ] %llu W4 RPCs in %.1f s (client: p50 %s us, p99 %s us, max %s us)\n",
                static_cast<unsigned long long>(count), seconds, run->fields["p50_us"].c_str(),
                run->fields["p99_us"].c_str(), run->fields["max_us"].c_str());
}

// RPCs of each fixed length in `lengths` (3 each, one at a time): every one
// completes and verifies.
inline void expect_lengths_complete(const Hosts& hosts, const std::vector<std::uint32_t>& lengths,
                                    std::uint16_t port, const std::vector<std::string>& params) {
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    auto server = start_server(hosts, 0, dir, "server", port, params);
    ASSERT_TRUE(server.has_value()) << server.error();
    for (const std::uint32_t length : lengths) {
        std::vector<std::string> args{
            "--server",   hosts.address(0) + ":" + std::to_string(server->port),
            "--count",    "3",
            "--workload", std::to_string(length),
            "--stall-ms", "5000"};
        args.insert(args.end(), params.begin(), params.end());
        auto run = run_client(hosts, 1, dir, "client" + std::to_string(length), args,
                              std::chrono::seconds(60));
        ASSERT_TRUE(run.has_value()) << run.error();
        SCOPED_TRACE("RPCs of " + std::to_string(length) + " bytes");
        expect_all_completed(*run, 3);
    }
    auto out = stop_server(*server);
    ASSERT_TRUE(out.has_value()) << out.error();
    EXPECT_EQ(field(summary(*out, "rpc_tool server:"), "verify_failures"), 0) << *out;
}

// The server dies (SIGKILL) while RPCs run: the client's RPCs fail with
// ETIMEDOUT about timeout_ticks after the kill, and succeed again once a new
// server listens on the same port.
inline void expect_timeout_then_recovery(const Hosts& hosts, std::uint16_t port,
                                         std::vector<std::string> params) {
    using namespace std::chrono_literals;
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    // The spec's defaults, spelled out: the bounds below depend on them.
    for (const char* p : {"timeout_ticks=100", "tick_usecs=1000", "resend_ticks=5"}) {
        params.insert(params.end(), {"--param", p});
    }
    auto first = start_server(hosts, 0, dir, "server1", port, params);
    ASSERT_TRUE(first.has_value()) << first.error();

    // The client runs RPCs for 4 s: the server dies at ~1 s and a new one
    // listens on the same port at ~2 s.
    std::vector<std::string> argv{
        rpc_tool(),      "client",
        "--server",      hosts.address(0) + ":" + std::to_string(first->port),
        "--seconds",     "4",
        "--concurrency", "4",
        "--workload",    "w4",
        "--seed",        "44",
        "--stall-ms",    "10000"};
    argv.insert(argv.end(), params.begin(), params.end());
    Child client =
        Child::spawn(hosts.command(1, argv), dir.file("client.out"), dir.file("client.err"));
    ASSERT_TRUE(client.running());
    std::this_thread::sleep_for(1s);
    ASSERT_FALSE(client.wait(0ms).has_value()) << "client ended early: " << client.describe();

    const std::int64_t kill_ns = now_ns();
    first->child.signal(SIGKILL);
    const auto killed = first->child.wait(5s);
    ASSERT_TRUE(killed.has_value() && WIFSIGNALED(*killed)) << first->child.describe();

    std::this_thread::sleep_for(1s);
    auto second = start_server(hosts, 0, dir, "server2", first->port, params);
    ASSERT_TRUE(second.has_value()) << second.error();
    ASSERT_EQ(second->port, first->port) << "port taken while the server was down";
    const std::int64_t restart_ns = now_ns();

    const auto status = client.wait(60s);
    ASSERT_TRUE(status.has_value()) << "client hangs: " << client.describe();
    const auto f = summary(client.out(), "rpc_tool client:");
    ASSERT_FALSE(f.empty()) << client.describe();
    const std::string report = client.describe();

    // Failures: only ETIMEDOUT, the first one about timeout_ticks (100 ms)
    // after the kill: silence counts from the server's last packet, which
    // may come a little before the kill (measured: 95-115 ms), so >= 75 ms;
    // <= 300 ms leaves room for a busy machine.
    ASSERT_GT(field(f, "failed"), 0) << report;
    EXPECT_EQ(f.at("failed_by_errno"), "ETIMEDOUT:" + f.at("failed")) << report;
    const double first_ms = static_cast<double>(field(f, "first_failure_ns") - kill_ns) / 1e6;
    EXPECT_GE(first_ms, 75.0) << report;
    EXPECT_LE(first_ms, 300.0) << report;
    // None later than a timeout after the new server came up.
    const double last_ms = static_cast<double>(field(f, "last_failure_ns") - restart_ns) / 1e6;
    EXPECT_LE(last_ms, 300.0) << report;
    // Then RPCs succeed again, all of them verified.
    EXPECT_GE(field(f, "completed_after_last_failure"), 10) << report;
    EXPECT_EQ(field(f, "verify_failures"), 0) << report;
    EXPECT_EQ(field(f, "stalled"), 0) << report;
    EXPECT_EQ(field(f, "unexpected"), 0) << report;
    EXPECT_EQ(field(f, "issued"), field(f, "completed") + field(f, "failed")) << report;

    auto out = stop_server(*second);
    ASSERT_TRUE(out.has_value()) << out.error();
    const auto s = summary(*out, "rpc_tool server:");
    EXPECT_GE(field(s, "requests"), field(f, "completed_after_last_failure")) << *out;
    EXPECT_EQ(field(s, "verify_failures"), 0) << *out;
    std::printf(
        "[ info ] first ETIMEDOUT %.1f ms after the kill, last %.1f ms after the "
        "restart; %s RPCs failed, %s completed (%s after the last failure)\n",
        first_ms, last_ms, f.at("failed").c_str(), f.at("completed").c_str(),
        f.at("completed_after_last_failure").c_str());
}

// "InDatagrams=.. InErrors=.. RcvbufErrors=.." from the Udp: lines of
// /proc/net/snmp.
inline std::string udp_snmp(const std::string& snmp) {
    std::istringstream lines(snmp);
    std::string names, values, line;
    while (std::getline(lines, line)) {
        if (line.rfind("Udp: ", 0) != 0) continue;
        if (names.empty()) {
            names = line;
        } else {
            values = line;
            break;
        }
    }
    std::istringstream n(names), v(values);
    std::string name, value, out;
    while (n >> name && v >> value) {
        if (name == "InDatagrams" || name == "InErrors" || name == "RcvbufErrors") {
            out += (out.empty() ? "" : " ") + name + "=" + value;
        }
    }
    return out;
}

// Host 2 floods the server's port with garbage for 3 s while host 1 runs
// RPCs for the same 3 s: the server survives (and exits cleanly), every RPC
// completes and verifies, and the server's metrics count the drops.
//
// The flood rate is capped at flood_rate() datagrams/s (20,000 unless
// $UHOMA_FLOOD_RATE says otherwise; 0 = as fast as it can), which a
// sanitizer build's server absorbs without socket drops even while other
// tests run. On a real network the attacker has its own CPU; here it shares
// two cores with the hosts under test, and an unlimited flood (200-500 k
// datagrams/s) outruns a sanitizer build's server: its socket drops 50-80 %
// of everything in bursts longer than the 100 ms timeout, so some RPCs fail
// with ETIMEDOUT and others stall for seconds. That measures CPU exhaustion
// of the victim, not the handling of garbage this test is about. The seed is
// fixed, so the same garbage is sent every run.
inline std::uint64_t flood_rate() {
    const char* v = std::getenv("UHOMA_FLOOD_RATE");
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : 20000;
}

inline void expect_flood_survived(const Hosts& hosts, std::uint16_t port,
                                  const std::vector<std::string>& params, bool raw) {
    using namespace std::chrono_literals;
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    auto server = start_server(hosts, 0, dir, "server", port, params);
    ASSERT_TRUE(server.has_value()) << server.error();
    const std::string target = hosts.address(0) + ":" + std::to_string(server->port);

    std::vector<std::string> flood_argv{
        rpc_tool(), "flood",  "--target", target,   "--seconds",
        "3",        "--seed", "45",       "--rate", std::to_string(flood_rate())};
    if (raw) flood_argv.push_back("--raw");
    Child flood =
        Child::spawn(hosts.command(2, flood_argv), dir.file("flood.out"), dir.file("flood.err"));
    ASSERT_TRUE(flood.running());
    std::vector<std::string> args{"--server", target,       "--seconds", "3",      "--concurrency",
                                  "4",        "--workload", "w4",        "--seed", "46"};
    args.insert(args.end(), params.begin(), params.end());
    auto run = run_client(hosts, 1, dir, "client", args, 120s);
    ASSERT_TRUE(run.has_value()) << run.error();
    const auto flood_status = flood.wait(30s);
    ASSERT_TRUE(exited_ok(flood_status)) << flood.describe();
    const auto fl = summary(flood.out(), "rpc_tool flood:");

    const auto& f = run->fields;
    EXPECT_GT(field(f, "completed"), 0) << run->output;
    EXPECT_EQ(field(f, "completed"), field(f, "issued")) << run->output;
    EXPECT_EQ(field(f, "failed"), 0) << run->output;
    EXPECT_EQ(field(f, "verify_failures"), 0) << run->output;
    EXPECT_EQ(field(f, "stalled"), 0) << run->output;
    EXPECT_EQ(field(f, "unexpected"), 0) << run->output;
    EXPECT_GT(field(fl, "datagrams"), 10000) << flood.describe();

    // The server is still alive (SIGTERM ends it cleanly) and counted the
    // garbage it dropped.
    auto out = stop_server(*server);
    ASSERT_TRUE(out.has_value()) << out.error();
    std::string snmp = "n/a (loopback)";
    if (hosts.cluster != nullptr) {
        auto r = hosts.cluster->exec(0, std::vector<std::string>{"cat", "/proc/net/snmp"});
        snmp = r ? udp_snmp(*r) : r.error();
    }
    const auto s = summary(*out, "rpc_tool server:");
    EXPECT_EQ(field(s, "requests"), field(f, "completed")) << *out;
    EXPECT_EQ(field(s, "verify_failures"), 0) << *out;
    EXPECT_GT(metric(*out, "short_packets"), 0) << *out;
    EXPECT_GT(metric(*out, "unknown_packet_types"), 0) << *out;
    EXPECT_GT(metric(*out, "malformed_packets"), 0) << *out;
    std::printf(
        "[ info ] flood: %s datagrams; server dropped %lld short, %lld unknown type, "
        "%lld malformed; client: %s RPCs, p99 %s us, max %s us; server UDP: %s\n",
        fl.count("datagrams") ? fl.at("datagrams").c_str() : "?",
        static_cast<long long>(metric(*out, "short_packets")),
        static_cast<long long>(metric(*out, "unknown_packet_types")),
        static_cast<long long>(metric(*out, "malformed_packets")), f.at("completed").c_str(),
        f.at("p99_us").c_str(), f.at("max_us").c_str(), snmp.c_str());
}

}  // namespace uhoma::integration
