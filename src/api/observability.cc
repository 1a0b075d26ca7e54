// The process's control endpoint. Design notes are in observability.h.
#include "api/observability.h"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "api/control.h"
#include "engine/metrics.h"
#include "runtime/runtime.h"
#include "trace/timetrace.h"

namespace uhoma::api {

namespace {

struct Entry {
    std::uint64_t token = 0;
    runtime::Runtime* runtime = nullptr;
};

// Never destroyed: runtimes may detach, and the exit handler run, while
// exit() destroys statics.
struct ProcessControl {
    std::mutex lifecycle;
    std::mutex state;  // guards `entries`
    std::vector<Entry> entries;
    std::uint64_t next_token = 1;
    std::unique_ptr<ControlServer> server;  // under lifecycle
    std::string path;                       // of `server`, under lifecycle
    char exit_path[128] = {};               // copy of `path` for the exit handler
    std::vector<ControlServer*> abandoned;  // inherited through fork(); never used
    bool reported_failure = false;
    bool hooks_registered = false;
};

ProcessControl& process_control() {
    static ProcessControl* p = new ProcessControl;
    return *p;
}

bool disabled_by_environment() {
    const char* value = std::getenv("UHOMA_CONTROL");
    if (value == nullptr) return false;
    for (const char* off : {"0", "off", "no", "false"}) {
        if (std::strcmp(value, off) == 0) return true;
    }
    return false;
}

std::uint64_t steady_ns() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

Expected<std::string, std::string> metrics_command(std::string_view) {
    ProcessControl& pc = process_control();
    engine::Metrics sum;
    {
        std::lock_guard lock(pc.state);
        for (const Entry& e : pc.entries) sum += e.runtime->metrics();
    }
    return engine::format_homa_metrics(sum, steady_ns());
}

Expected<std::string, std::string> info_command(std::string_view) {
    ProcessControl& pc = process_control();
    std::size_t runtimes = 0;
    {
        std::lock_guard lock(pc.state);
        runtimes = pc.entries.size();
    }
    return "pid " + std::to_string(::getpid()) + "\nruntimes " + std::to_string(runtimes) +
           "\ntimetrace " + (trace::enabled() ? "on" : "off") + (trace::frozen() ? " frozen" : "") +
           "\nrings " + std::to_string(trace::ring_count()) + "\n";
}

std::map<std::string, ControlHandler, std::less<>> handlers() {
    auto action = [](void (*f)()) {
        return [f](std::string_view) -> Expected<std::string, std::string> {
            f();
            return std::string();
        };
    };
    std::map<std::string, ControlHandler, std::less<>> h;
    h["metrics"] = metrics_command;
    h["info"] = info_command;
    h["timetrace"] = [](std::string_view) -> Expected<std::string, std::string> {
        return trace::dump();
    };
    h["freeze"] = action(trace::freeze);
    h["unfreeze"] = action(trace::unfreeze);
    h["trace-on"] = action([] { trace::set_enabled(true); });
    h["trace-off"] = action([] { trace::set_enabled(false); });
    h["trace-clear"] = action(trace::clear);
    return h;
}

void remove_socket_at_exit() {
    // No lock: exit() may run while another thread holds one; hence a
    // fixed buffer rather than the std::string.
    ProcessControl& pc = process_control();
    if (pc.exit_path[0] != '\0') ::unlink(pc.exit_path);
}

void forget_after_fork() {
    // The child runs one thread; whatever the parent's threads held is
    // abandoned with them.
    ProcessControl& pc = process_control();
    new (&pc.lifecycle) std::mutex;
    new (&pc.state) std::mutex;
    pc.entries.clear();
    if (pc.server) pc.abandoned.push_back(pc.server.release());
    pc.path.clear();
    pc.exit_path[0] = '\0';
}

// Under lifecycle. Starts the server if none runs.
void ensure_server(ProcessControl& pc) {
    if (pc.server) return;
    const std::string directory = control_directory();
    auto prepared = prepare_control_directory(directory);
    Expected<std::unique_ptr<ControlServer>, std::string> server =
        Unexpected{prepared ? std::string() : prepared.error()};
    if (prepared) {
        remove_stale_sockets(directory);
        server = ControlServer::start(control_path(directory, ::getpid()), handlers());
    }
    if (!server) {
        if (!pc.reported_failure) {
            std::fprintf(stderr, "uhoma: no control socket (uhoma-metrics will not see pid %d): %s\n",
                         static_cast<int>(::getpid()), server.error().c_str());
            pc.reported_failure = true;
        }
        return;
    }
    pc.server = std::move(*server);
    pc.path = pc.server->path();
    if (pc.path.size() < sizeof(pc.exit_path)) {
        std::memcpy(pc.exit_path, pc.path.c_str(), pc.path.size() + 1);
    }
}

void detach(std::uint64_t token) {
    ProcessControl& pc = process_control();
    std::lock_guard lifecycle(pc.lifecycle);
    bool last = false;
    {
        std::lock_guard lock(pc.state);
        auto& es = pc.entries;
        const auto before = es.size();
        std::erase_if(es, [&](const Entry& e) { return e.token == token; });
        last = es.empty() && es.size() != before;
    }
    if (last && pc.server) {
        pc.path.clear();
        pc.exit_path[0] = '\0';
        pc.server.reset();  // joins the thread, removes the file
    }
}

}  // namespace

std::shared_ptr<void> attach_control(runtime::Runtime& runtime) {
    trace::enable_from_environment();
    if (disabled_by_environment()) return nullptr;
    ProcessControl& pc = process_control();
    std::lock_guard lifecycle(pc.lifecycle);
    if (!pc.hooks_registered) {
        ::pthread_atfork(nullptr, nullptr, forget_after_fork);
        std::atexit(remove_socket_at_exit);
        pc.hooks_registered = true;
    }
    const std::uint64_t token = pc.next_token++;
    {
        std::lock_guard lock(pc.state);
        pc.entries.push_back(Entry{token, &runtime});
    }
    ensure_server(pc);
    // The handle detaches even if no server runs (a later attach may start one).
    return std::shared_ptr<void>(new std::uint64_t(token), [](void* p) {
        auto* t = static_cast<std::uint64_t*>(p);
        detach(*t);
        delete t;
    });
}

std::string control_socket_path() {
    ProcessControl& pc = process_control();
    std::lock_guard lifecycle(pc.lifecycle);
    return pc.path;
}

}  // namespace uhoma::api
