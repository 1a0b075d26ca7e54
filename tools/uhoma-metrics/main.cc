// uhoma-metrics: metrics and timetrace of a running uhoma process.
//
//   uhoma-metrics [PID]                      the homa_metrics text
//   uhoma-metrics --delta [--interval S] [PID]   rates between two snapshots
//   uhoma-metrics --timetrace [PID]          the timetrace dump
//   uhoma-metrics --list                     uhoma processes on this host
//
// Design notes
// ------------
// The tool is a client of the control socket every uhoma process serves
// (src/api/control.h, docs/observability.md): it finds `<pid>.sock` in the
// run directory ($UHOMA_RUN_DIR, default /tmp/uhoma, or --run-dir), sends one
// command and prints the answer. Without a PID it picks the only running
// uhoma process, or refuses and names the candidates. Every failure is one
// line on stderr and a non-zero exit: 1 for "could not get an answer" (no
// such process, not a uhoma process, permission, stale socket, bad answer),
// 2 for a usage error. --file reads a metrics file instead of a process, so
// `--delta --file /proc/net/homa_metrics` measures Linux Homa the same way.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/control.h"
#include "uhoma-metrics/snapshot.h"

namespace {

using uhoma::Expected;
using uhoma::Unexpected;
namespace api = uhoma::api;
namespace mt = uhoma::metrics_tool;

constexpr const char* usage_text =
    "usage: uhoma-metrics [OPTIONS] [PID]\n"
    "Shows the metrics (homa_metrics format) or timetrace of a running uhoma process.\n"
    "PID may be omitted when exactly one uhoma process runs.\n"
    "  --delta          print changes and rates per second between two snapshots\n"
    "  --interval S     seconds between the snapshots of --delta (default 1)\n"
    "  --all            with --delta, also counters that did not change\n"
    "  --timetrace      dump the process's timetrace\n"
    "  --trace-on, --trace-off, --freeze, --unfreeze, --trace-clear\n"
    "                   control the process's timetrace\n"
    "  --list           list uhoma processes (pid, command, runtimes, timetrace)\n"
    "  --file PATH      read metrics from PATH (e.g. /proc/net/homa_metrics)\n"
    "                   instead of a process\n"
    "  --run-dir DIR    control socket directory (default $UHOMA_RUN_DIR or /tmp/uhoma)\n"
    "  -h, --help       this text\n";

enum class Mode { metrics, delta, timetrace, action, list };

struct Options {
    Mode mode = Mode::metrics;
    std::string action;  // control command for Mode::action
    double interval = 1.0;
    bool all = false;
    std::optional<pid_t> pid;
    std::optional<std::string> file;
    std::string run_dir;
};

int usage_error(const std::string& message) {
    std::fprintf(stderr, "uhoma-metrics: %s (see --help)\n", message.c_str());
    return 2;
}

int fail(const std::string& message) {
    std::fprintf(stderr, "uhoma-metrics: %s\n", message.c_str());
    return 1;
}

std::optional<pid_t> parse_pid(const std::string& text) {
    if (text.empty() || text.size() > 10) return std::nullopt;
    long long v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (v <= 0 || v > 0x7FFFFFFF) return std::nullopt;
    return static_cast<pid_t>(v);
}

// Errors: a usage message.
Expected<Options, std::string> parse_options(int argc, char** argv) {
    Options o;
    o.run_dir = api::control_directory();
    bool mode_set = false;
    auto set_mode = [&](Mode m, const std::string& action = {}) -> bool {
        if (mode_set) return false;
        mode_set = true;
        o.mode = m;
        o.action = action;
        return true;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= argc) return std::nullopt;
            return std::string(argv[++i]);
        };
        bool ok = true;
        if (arg == "-h" || arg == "--help") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        } else if (arg == "--delta") {
            ok = set_mode(Mode::delta);
        } else if (arg == "--timetrace") {
            ok = set_mode(Mode::timetrace);
        } else if (arg == "--list") {
            ok = set_mode(Mode::list);
        } else if (arg == "--trace-on" || arg == "--trace-off" || arg == "--freeze" ||
                   arg == "--unfreeze" || arg == "--trace-clear") {
            ok = set_mode(Mode::action, arg.substr(2));
        } else if (arg == "--all") {
            o.all = true;
        } else if (arg == "--interval") {
            const auto v = value();
            if (!v) return Unexpected{std::string("--interval needs a number of seconds")};
            char* end = nullptr;
            o.interval = std::strtod(v->c_str(), &end);
            if (v->empty() || *end != '\0' || !(o.interval > 0) || o.interval > 86400) {
                return Unexpected{"bad --interval '" + *v + "' (seconds, > 0)"};
            }
        } else if (arg == "--file") {
            const auto v = value();
            if (!v) return Unexpected{std::string("--file needs a path")};
            o.file = *v;
        } else if (arg == "--run-dir") {
            const auto v = value();
            if (!v || v->empty()) return Unexpected{std::string("--run-dir needs a directory")};
            o.run_dir = *v;
        } else if (!arg.empty() && arg[0] == '-') {
            return Unexpected{"unknown option " + arg};
        } else {
            if (o.pid) return Unexpected{std::string("more than one PID")};
            o.pid = parse_pid(arg);
            if (!o.pid) return Unexpected{"not a process id: '" + arg + "'"};
        }
        if (!ok) return Unexpected{std::string("choose one of --delta, --timetrace, --list and the timetrace controls")};
    }
    if (o.file && (o.mode != Mode::metrics && o.mode != Mode::delta)) {
        return Unexpected{std::string("--file works with the metrics and --delta only")};
    }
    if (o.file && o.pid) return Unexpected{std::string("give a PID or --file, not both")};
    if (o.mode == Mode::list && o.pid) return Unexpected{std::string("--list takes no PID")};
    return o;
}

std::string describe(const api::ControlError& e, pid_t pid, const std::string& run_dir) {
    const std::string who = "pid " + std::to_string(pid);
    switch (e.kind) {
        case api::ControlErrorKind::no_socket:
            return who + " is not a uhoma process (no control socket in " + run_dir +
                   "; started with UHOMA_CONTROL=0 or another UHOMA_RUN_DIR?)";
        case api::ControlErrorKind::permission:
            return "permission denied: " + who +
                   "'s control socket belongs to another user (try as that user or root)";
        case api::ControlErrorKind::refused:
            return who + " is not a uhoma process (its control socket is stale: nobody listens)";
        case api::ControlErrorKind::remote:
            return who + " refused: " + e.message;
        case api::ControlErrorKind::io:
        case api::ControlErrorKind::protocol:
            break;
    }
    return who + ": " + e.message;
}

// Errors: a message for fail().
Expected<std::string, std::string> ask(pid_t pid, const std::string& run_dir,
                                       const std::string& command) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
        return Unexpected{"no process with pid " + std::to_string(pid)};
    }
    auto answer = api::control_request(api::control_path(run_dir, pid), command);
    if (!answer) return Unexpected{describe(answer.error(), pid, run_dir)};
    return *answer;
}

// The process to ask. Errors: a message for fail().
Expected<pid_t, std::string> choose_pid(const Options& o) {
    if (o.pid) return *o.pid;
    const auto pids = api::list_control_pids(o.run_dir);
    if (pids.empty()) return Unexpected{"no uhoma process is running (no control socket in " + o.run_dir + ")"};
    if (pids.size() > 1) {
        std::string list;
        for (pid_t p : pids) list += (list.empty() ? "" : ", ") + std::to_string(p);
        return Unexpected{std::to_string(pids.size()) + " uhoma processes are running (" + list +
                          "); name one"};
    }
    return pids.front();
}

std::string command_name(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(in, name);
    return name.empty() ? "?" : name;
}

// Errors: a message for fail().
Expected<std::string, std::string> read_metrics(const Options& o, pid_t pid) {
    if (!o.file) return ask(pid, o.run_dir, "metrics");
    std::ifstream in(*o.file, std::ios::binary);
    if (!in) return Unexpected{"cannot read " + *o.file + ": " + std::strerror(errno)};
    std::string text;
    char buffer[65536];
    while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
        text.append(buffer, static_cast<std::size_t>(in.gcount()));
        if (text.size() > mt::max_metrics_bytes) return Unexpected{*o.file + " is too large"};
    }
    return text;
}

Expected<mt::Snapshot, std::string> snapshot(const Options& o, pid_t pid) {
    auto text = read_metrics(o, pid);
    if (!text) return Unexpected{text.error()};
    auto s = mt::parse_metrics(*text);
    if (!s) return Unexpected{(o.file ? *o.file : "pid " + std::to_string(pid)) + ": " + s.error()};
    return s;
}

int run(const Options& o) {
    if (o.mode == Mode::list) {
        const auto pids = api::list_control_pids(o.run_dir);
        for (pid_t p : pids) {
            auto info = api::control_request(api::control_path(o.run_dir, p), "info");
            std::string summary;
            if (info) {
                std::istringstream lines(*info);
                std::string line;
                while (std::getline(lines, line)) {
                    if (line.rfind("pid ", 0) == 0) continue;
                    summary += (summary.empty() ? "" : ", ") + line;
                }
            } else {
                summary = describe(info.error(), p, o.run_dir);
            }
            std::printf("%-8d %-16s %s\n", static_cast<int>(p), command_name(p).c_str(),
                        summary.c_str());
        }
        if (pids.empty()) return fail("no uhoma process is running (no control socket in " + o.run_dir + ")");
        return 0;
    }
    pid_t pid = 0;
    if (!o.file) {
        auto chosen = choose_pid(o);
        if (!chosen) return fail(chosen.error());
        pid = *chosen;
    }
    switch (o.mode) {
        case Mode::metrics: {
            auto text = read_metrics(o, pid);
            if (!text) return fail(text.error());
            // Validate before printing: a file or a socket could hold anything.
            if (auto s = mt::parse_metrics(*text); !s) {
                return fail((o.file ? *o.file : "pid " + std::to_string(pid)) + ": " + s.error());
            }
            std::fwrite(text->data(), 1, text->size(), stdout);
            return 0;
        }
        case Mode::delta: {
            auto before = snapshot(o, pid);
            if (!before) return fail(before.error());
            const auto start = std::chrono::steady_clock::now();
            std::this_thread::sleep_for(std::chrono::duration<double>(o.interval));
            auto after = snapshot(o, pid);
            if (!after) return fail(after.error());
            const double measured =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const std::string report = mt::format_delta(*before, *after, measured, o.all);
            std::fwrite(report.data(), 1, report.size(), stdout);
            return 0;
        }
        case Mode::timetrace: {
            auto text = ask(pid, o.run_dir, "timetrace");
            if (!text) return fail(text.error());
            if (text->empty()) {
                std::fprintf(stderr,
                             "uhoma-metrics: the timetrace of pid %d is empty (start the process "
                             "with UHOMA_TIMETRACE=1, or use --trace-on)\n",
                             static_cast<int>(pid));
            }
            std::fwrite(text->data(), 1, text->size(), stdout);
            return 0;
        }
        case Mode::action: {
            auto text = ask(pid, o.run_dir, o.action);
            if (!text) return fail(text.error());
            std::printf("pid %d: %s done\n", static_cast<int>(pid), o.action.c_str());
            return 0;
        }
        case Mode::list:
            break;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto options = parse_options(argc, argv);
    if (!options) return usage_error(options.error());
    return run(*options);
}
