// uhoma-metrics end to end: a real echo_server process (C++ API) serves
// echo_client RPCs; the tool reads its metrics, rates and timetrace through
// the control socket, and fails cleanly when it cannot.
#include <gtest/gtest.h>
#include "support/temp_dir.h"
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/control.h"
#include "uhoma-metrics/snapshot.h"

extern char** environ;

namespace uhoma::metrics_tool {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Paths of the built programs, from tests/CMakeLists.txt.
const std::string metrics_bin = UHOMA_METRICS_BIN;
const std::string server_bin = ECHO_SERVER_BIN;
const std::string client_bin = ECHO_CLIENT_BIN;

using TempDir = uhoma::testing::TempDir;

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Starts argv with `env` added to this process's environment, stdout and
// stderr to files. Returns the pid (or -1, having failed the test).
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const std::string& out_path, const std::string& err_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry = *e;
        bool overridden = false;
        for (const std::string& mine : env) {
            if (entry.substr(0, entry.find('=') + 1) == mine.substr(0, mine.find('=') + 1)) overridden = true;
        }
        if (!overridden) env_strings.push_back(entry);
    }
    env_strings.insert(env_strings.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        ADD_FAILURE() << "cannot run " << argv[0];
        return -1;
    }
    return pid;
}

int wait_status(pid_t pid) {
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

struct Result {
    int status = -1;
    std::string out;
    std::string err;
};

// A test's world: a run directory, and the processes started in it.
class Fixture {
public:
    explicit Fixture(const TempDir& dir) : dir_(dir) {}
    ~Fixture() {
        for (pid_t pid : children_) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    std::vector<std::string> env(std::vector<std::string> extra = {}) const {
        extra.push_back("UHOMA_RUN_DIR=" + dir_.file("run"));
        return extra;
    }

    Result run(const std::vector<std::string>& argv, const std::vector<std::string>& extra = {}) {
        const std::string out = dir_.file("out" + std::to_string(runs_));
        const std::string err = dir_.file("err" + std::to_string(runs_++));
        const pid_t pid = spawn(argv, env(extra), out, err);
        Result r;
        if (pid < 0) return r;
        r.status = wait_status(pid);
        r.out = read_text(out);
        r.err = read_text(err);
        return r;
    }

    pid_t start(const std::vector<std::string>& argv, const std::vector<std::string>& extra,
                const std::string& name) {
        const pid_t pid = spawn(argv, env(extra), dir_.file(name + ".out"), dir_.file(name + ".err"));
        if (pid > 0) children_.push_back(pid);
        return pid;
    }

    // An echo_server with the timetrace on; waits until it listens.
    // Returns its pid and port, or pid -1.
    std::pair<pid_t, std::uint16_t> start_server() {
        for (int attempt = 0; attempt < 20; ++attempt) {
            const auto port =
                static_cast<std::uint16_t>(2000 + (::getpid() * 7 + attempt * 997) % 28000);
            const std::string name = "server" + std::to_string(attempt);
            const pid_t pid = start({server_bin, std::to_string(port)}, {"UHOMA_TIMETRACE=1"}, name);
            if (pid < 0) return {-1, 0};
            for (int i = 0; i < 500; ++i) {
                if (read_text(dir_.file(name + ".out")).find("listening") != std::string::npos) {
                    return {pid, port};
                }
                int wstatus = 0;
                if (::waitpid(pid, &wstatus, WNOHANG) == pid) {
                    std::erase(children_, pid);
                    break;  // port taken: try another
                }
                std::this_thread::sleep_for(10ms);
            }
        }
        ADD_FAILURE() << "echo_server did not start";
        return {-1, 0};
    }

    std::string run_dir() const { return dir_.file("run"); }

private:
    const TempDir& dir_;
    std::vector<pid_t> children_;
    int runs_ = 0;
};

std::uint64_t value_of(const Snapshot& s, const std::string& name) {
    return s.value(name).value_or(0);
}

TEST(UhomaMetrics, metrics__counters_of_a_running_server) {
    TempDir dir;
    Fixture f(dir);
    const auto [server, port] = f.start_server();
    ASSERT_GT(server, 0);
    const std::string address = "127.0.0.1:" + std::to_string(port);
    // The client does not publish a control socket, so the server is the
    // only uhoma process and the PID may be omitted.
    const Result client = f.run({client_bin, address, "50", "3000"}, {"UHOMA_CONTROL=0"});
    ASSERT_EQ(client.status, 0) << client.err;

    const Result r = f.run({metrics_bin});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    auto s = parse_metrics(r.out);
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(s->skipped_lines, 0u);
    EXPECT_EQ(value_of(*s, "server_requests_started"), 50u);
    EXPECT_EQ(value_of(*s, "server_requests_done"), 50u);
    EXPECT_EQ(value_of(*s, "requests_received"), 50u);
    EXPECT_EQ(value_of(*s, "server_responses_done"), 50u);
    EXPECT_EQ(value_of(*s, "server_request_bytes_done"), 50u * 3000);
    EXPECT_GE(value_of(*s, "packets_rcvd_DATA"), 150u);  // 3 packets per request
    EXPECT_GE(value_of(*s, "packets_sent_DATA"), 150u);
    EXPECT_EQ(value_of(*s, "client_requests_started"), 0u);

    // With the PID, the same.
    const Result by_pid = f.run({metrics_bin, std::to_string(server)});
    ASSERT_EQ(by_pid.status, 0) << by_pid.err;
    EXPECT_EQ(value_of(parse_metrics(by_pid.out).value(), "server_requests_done"), 50u);

    // --list names it.
    const Result list = f.run({metrics_bin, "--list"});
    ASSERT_EQ(list.status, 0) << list.err;
    EXPECT_NE(list.out.find(std::to_string(server) + " "), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("echo_server"), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("runtimes 1, timetrace on"), std::string::npos) << list.out;
}

TEST(UhomaMetrics, delta__rates_while_traffic_runs) {
    TempDir dir;
    Fixture f(dir);
    const auto [server, port] = f.start_server();
    ASSERT_GT(server, 0);
    const std::string address = "127.0.0.1:" + std::to_string(port);
    const pid_t client = f.start({client_bin, address, "100000000", "1000"}, {"UHOMA_CONTROL=0"}, "client");
    ASSERT_GT(client, 0);
    // Wait until the traffic is flowing.
    bool flowing = false;
    for (int i = 0; i < 500 && !flowing; ++i) {
        const Result r = f.run({metrics_bin, std::to_string(server)});
        if (r.status == 0) {
            if (auto s = parse_metrics(r.out); s && value_of(*s, "server_requests_done") > 10) flowing = true;
        }
        if (!flowing) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(flowing);

    const Result r = f.run({metrics_bin, "--delta", "--interval", "0.3", std::to_string(server)});
    ASSERT_EQ(r.status, 0) << r.err;
    std::istringstream lines(r.out);
    std::string line;
    std::getline(lines, line);
    double interval = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "interval %lf s", &interval), 1) << r.out;
    EXPECT_GE(interval, 0.29);
    EXPECT_LT(interval, 5.0);
    bool saw_requests = false;
    bool saw_summary_rpcs = false;
    bool saw_packets = false;
    while (std::getline(lines, line)) {
        char name[64] = {};
        unsigned long long delta = 0;
        double rate = 0;
        if (std::sscanf(line.c_str(), "%63s %llu %lf", name, &delta, &rate) == 3 &&
            std::string(name) == "server_requests_done") {
            saw_requests = delta > 0 && rate > 0;
        }
        if (line.find("  server requests received") == 0) saw_summary_rpcs = true;
        if (line.find("  packets received") == 0) saw_packets = true;
    }
    EXPECT_TRUE(saw_requests) << r.out;
    EXPECT_TRUE(saw_summary_rpcs) << r.out;
    EXPECT_TRUE(saw_packets) << r.out;
    EXPECT_NE(r.out.find(" Gbps  (priority*_bytes)"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("\ncore "), std::string::npos);
}

TEST(UhomaMetrics, timetrace__dump_and_controls) {
    TempDir dir;
    Fixture f(dir);
    const auto [server, port] = f.start_server();
    ASSERT_GT(server, 0);
    const std::string pid = std::to_string(server);
    const Result client = f.run({client_bin, "127.0.0.1:" + std::to_string(port), "5", "2000"},
                                {"UHOMA_CONTROL=0"});
    ASSERT_EQ(client.status, 0) << client.err;

    const Result r = f.run({metrics_bin, "--timetrace", pid});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("    0.000 us (+   0.000 us) [C", 0), 0u) << r.out.substr(0, 500);
    EXPECT_NE(r.out.find("] rx DATA id "), std::string::npos);
    EXPECT_NE(r.out.find(" request complete, 2000 bytes"), std::string::npos);
    EXPECT_NE(r.out.find("] tx DATA id "), std::string::npos);

    const Result off = f.run({metrics_bin, "--trace-off", pid});
    ASSERT_EQ(off.status, 0) << off.err;
    EXPECT_EQ(off.out, "pid " + pid + ": trace-off done\n");
    ASSERT_EQ(f.run({metrics_bin, "--trace-clear", pid}).status, 0);
    const Result empty = f.run({metrics_bin, "--timetrace", pid});
    ASSERT_EQ(empty.status, 0);
    EXPECT_EQ(empty.out, "");
    EXPECT_NE(empty.err.find("is empty"), std::string::npos) << empty.err;
    EXPECT_EQ(f.run({metrics_bin, "--freeze", pid}).status, 0);
    EXPECT_EQ(f.run({metrics_bin, "--unfreeze", pid}).status, 0);
    EXPECT_EQ(f.run({metrics_bin, "--trace-on", pid}).status, 0);
}

TEST(UhomaMetrics, errors__one_line_and_nonzero_exit) {
    TempDir dir;
    Fixture f(dir);
    auto one_line = [](const Result& r) {
        return !r.err.empty() && r.err.find('\n') == r.err.size() - 1 &&
               r.err.rfind("uhoma-metrics: ", 0) == 0;
    };
    // Nobody running.
    const Result none = f.run({metrics_bin});
    EXPECT_EQ(none.status, 1);
    EXPECT_TRUE(one_line(none)) << none.err;
    EXPECT_NE(none.err.find("no uhoma process is running"), std::string::npos) << none.err;
    EXPECT_EQ(f.run({metrics_bin, "--list"}).status, 1);
    // No such process.
    const Result missing = f.run({metrics_bin, "2147483646"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_TRUE(one_line(missing));
    EXPECT_NE(missing.err.find("no process with pid 2147483646"), std::string::npos) << missing.err;
    // A process that is not uhoma (this test).
    const std::string me = std::to_string(::getpid());
    const Result not_uhoma = f.run({metrics_bin, me});
    EXPECT_EQ(not_uhoma.status, 1);
    EXPECT_TRUE(one_line(not_uhoma));
    EXPECT_NE(not_uhoma.err.find("pid " + me + " is not a uhoma process"), std::string::npos)
        << not_uhoma.err;
    // A control socket that does not know the command.
    ASSERT_TRUE(api::prepare_control_directory(f.run_dir()));
    {
        auto server = api::ControlServer::start(api::control_path(f.run_dir(), ::getpid()), {});
        ASSERT_TRUE(server) << server.error();
        // A server without commands answers every command with an error.
        const Result refused = f.run({metrics_bin, me});
        EXPECT_EQ(refused.status, 1);
        EXPECT_TRUE(one_line(refused)) << refused.err;
        EXPECT_NE(refused.err.find("refused: unknown command 'metrics'"), std::string::npos)
            << refused.err;
        // Two processes with sockets (this one and a second fake): name one.
        auto other = api::ControlServer::start(api::control_path(f.run_dir(), ::getppid()), {});
        ASSERT_TRUE(other);
        const Result two = f.run({metrics_bin});
        EXPECT_EQ(two.status, 1);
        EXPECT_TRUE(one_line(two)) << two.err;
        EXPECT_NE(two.err.find("2 uhoma processes are running"), std::string::npos) << two.err;
    }
    // Usage errors exit 2.
    for (const std::vector<std::string>& argv :
         {std::vector<std::string>{metrics_bin, "--bogus"},
          std::vector<std::string>{metrics_bin, "12x"},
          std::vector<std::string>{metrics_bin, "--delta", "--timetrace"},
          std::vector<std::string>{metrics_bin, "--interval", "-1"},
          std::vector<std::string>{metrics_bin, "1", "2"}}) {
        const Result r = f.run(argv);
        EXPECT_EQ(r.status, 2) << argv[1];
        EXPECT_TRUE(one_line(r)) << r.err;
    }
    const Result help = f.run({metrics_bin, "--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("usage: uhoma-metrics"), std::string::npos);
}

TEST(UhomaMetrics, file__delta_of_a_metrics_file) {
    TempDir dir;
    Fixture f(dir);
    const std::string path = dir.file("homa_metrics");
    std::ofstream(path) << "time_cycles 1000\ncpu_khz 1000000\ncore 0\npackets_sent_DATA 5 DATA\n";
    const Result r = f.run({metrics_bin, "--file", path});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("packets_sent_DATA 5"), std::string::npos);
    const Result d = f.run({metrics_bin, "--delta", "--interval", "0.05", "--all", "--file", path});
    ASSERT_EQ(d.status, 0) << d.err;
    EXPECT_NE(d.out.find("packets_sent_DATA"), std::string::npos) << d.out;
    std::ofstream(path) << "<html>not metrics</html>\n";
    const Result bad = f.run({metrics_bin, "--file", path});
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.err.find("not homa_metrics text"), std::string::npos) << bad.err;
    const Result missing = f.run({metrics_bin, "--file", dir.file("none")});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("cannot read"), std::string::npos);
}

}  // namespace
}  // namespace uhoma::metrics_tool
