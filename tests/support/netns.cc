// NetnsCluster and its helpers; design notes in netns.h.
#include "support/netns.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <sstream>
#include <thread>
#include <utility>

extern char** environ;

namespace uhoma::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kLossChain = "UHOMA_LOSS";

std::string errno_text(int err) {
    return std::string(std::strerror(err));
}

// Owns a file descriptor.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_ = -1;
};

std::string join(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) {
        if (!s.empty()) s += ' ';
        s += a;
    }
    return s;
}

// Folds text onto one line: newlines become "; ", trailing space goes.
std::string one_line(const std::string& text) {
    std::string s;
    for (char c : text) {
        if (c == '\n') {
            if (!s.empty()) s += "; ";
        } else if (c != '\r') {
            s += c;
        }
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == ';')) s.pop_back();
    constexpr std::size_t kMax = 400;
    if (s.size() > kMax) s = s.substr(0, kMax) + "...";
    return s;
}

// A pipe whose ends are close-on-exec; the read end is non-blocking.
Expected<std::pair<Fd, Fd>, std::string> make_pipe() {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) return Unexpected{"pipe2: " + errno_text(errno)};
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);
    int flags = ::fcntl(read_end.get(), F_GETFL);
    if (flags < 0 || ::fcntl(read_end.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
        return Unexpected{"fcntl: " + errno_text(errno)};
    }
    return std::pair<Fd, Fd>{std::move(read_end), std::move(write_end)};
}

// Reads what is available on a non-blocking fd; resets it at end of file.
void drain(Fd& fd, std::string& sink) {
    std::array<char, 4096> buf{};
    while (fd.get() >= 0) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n > 0) {
            sink.append(buf.data(), static_cast<std::size_t>(n));
        } else if (n == 0) {
            fd.reset();
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK) fd.reset();
            return;
        }
    }
}

struct ChildResult {
    bool timed_out = false;
    int status = 0;  // from waitpid, when !timed_out
    std::string out;
    std::string err;
};

// Collects a child's output until it exits (and its pipes are drained), or
// until the deadline, when its process group and it are killed. Uses a pidfd
// to wake at exit; without one it checks every 10 ms.
ChildResult collect(pid_t pid, Fd out, Fd err, Clock::time_point deadline) {
    ChildResult result;
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    bool exited = false;
    for (;;) {
        if (!exited) {
            pid_t r = ::waitpid(pid, &result.status, WNOHANG);
            if (r == pid || (r < 0 && errno == ECHILD)) exited = true;
        }
        std::array<pollfd, 3> fds{};
        nfds_t n = 0;
        if (out.get() >= 0) fds[n++] = pollfd{out.get(), POLLIN, 0};
        if (err.get() >= 0) fds[n++] = pollfd{err.get(), POLLIN, 0};
        if (!exited && pidfd.get() >= 0) fds[n++] = pollfd{pidfd.get(), POLLIN, 0};

        int wait_ms = 0;
        if (!exited) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) {
                ::kill(-pid, SIGKILL);
                ::kill(pid, SIGKILL);
                while (::waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
                }
                drain(out, result.out);
                drain(err, result.err);
                result.timed_out = true;
                return result;
            }
            wait_ms = static_cast<int>(left.count());
            if (pidfd.get() < 0) wait_ms = std::min(wait_ms, 10);
        }
        int ready = n == 0 ? 0 : ::poll(fds.data(), n, wait_ms);
        if (n == 0 && !exited) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
        if (ready < 0 && errno != EINTR) ready = 0;
        drain(out, result.out);
        drain(err, result.err);
        // After the exit, stop once the pipes are closed or hold nothing more
        // (a background grandchild may keep them open forever).
        if (exited && (ready <= 0 || (out.get() < 0 && err.get() < 0))) return result;
    }
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

// FNV-1a, for choosing a subnet from the prefix.
std::uint32_t fnv1a(const std::string& s) {
    std::uint32_t h = 2166136261u;
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 16777619u;
    }
    return h;
}

Expected<std::monostate, std::string> check_prefix(const std::string& prefix) {
    if (prefix.empty() || prefix.size() > 32) {
        return Unexpected{std::string("netns: prefix must have 1 to 32 characters, got \"") +
                          prefix + "\""};
    }
    if (prefix.front() == '-') {
        return Unexpected{"netns: prefix must not start with '-': \"" + prefix + "\""};
    }
    for (char c : prefix) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) return Unexpected{"netns: prefix may hold only [A-Za-z0-9_-]: \"" + prefix + "\""};
    }
    return std::monostate{};
}

// True for "<prefix>-sw" and "<prefix>-h<digits>".
bool belongs_to(const std::string& name, const std::string& prefix) {
    if (name.size() <= prefix.size() + 1 || name.compare(0, prefix.size(), prefix) != 0 ||
        name[prefix.size()] != '-') {
        return false;
    }
    std::string rest = name.substr(prefix.size() + 1);
    if (rest == "sw") return true;
    if (rest.size() < 2 || rest[0] != 'h') return false;
    for (std::size_t k = 1; k < rest.size(); ++k) {
        if (rest[k] < '0' || rest[k] > '9') return false;
    }
    return true;
}

// SIGKILLs the processes inside namespace `name` (never this one), then
// deletes it.
Expected<std::monostate, std::string> delete_namespace(const std::string& name) {
    auto pids = run_command({"ip", "netns", "pids", name});
    if (pids) {
        std::istringstream in(*pids);
        long pid = 0;
        while (in >> pid) {
            if (pid > 0 && pid != static_cast<long>(::getpid())) {
                ::kill(static_cast<pid_t>(pid), SIGKILL);
            }
        }
    }
    auto del = run_command({"ip", "netns", "del", name});
    if (!del) return Unexpected{del.error()};
    return std::monostate{};
}

// Runs argv with the calling thread (and so the new process) in namespace
// `ns`: cheaper than `ip netns exec` for tools that need no /sys (iptables).
Expected<std::string, std::string> run_in(const std::string& ns,
                                          const std::vector<std::string>& argv) {
    auto scope = NetnsScope::enter(ns);
    if (!scope) return Unexpected{scope.error()};
    auto r = run_command(argv);
    if (!r) return Unexpected{ns + ": " + r.error()};
    return r;
}

}  // namespace

Expected<std::string, std::string> run_command(const std::vector<std::string>& argv,
                                               std::chrono::milliseconds timeout) {
    if (argv.empty()) return Unexpected{std::string("run_command: empty argv")};
    auto deadline = Clock::now() + timeout;
    auto out = make_pipe();
    if (!out) return Unexpected{join(argv) + ": " + out.error()};
    auto err = make_pipe();
    if (!err) return Unexpected{join(argv) + ": " + err.error()};

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out->second.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err->second.get(), 2);
    sigset_t mask;
    sigemptyset(&mask);
    posix_spawnattr_setsigmask(&attr, &mask);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2}) {
        sigaddset(&defaults, sig);
    }
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);  // own group: a timeout kills it whole
    posix_spawnattr_setflags(
        &attr,
        static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    out->second.reset();
    err->second.reset();
    if (rc != 0) return Unexpected{join(argv) + ": cannot start: " + errno_text(rc)};

    ChildResult r = collect(pid, std::move(out->first), std::move(err->first), deadline);
    if (r.timed_out) {
        return Unexpected{join(argv) + ": timed out after " + std::to_string(timeout.count()) +
                          " ms" + (r.err.empty() ? "" : ": " + one_line(r.err))};
    }
    if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) return std::move(r.out);
    std::string msg = join(argv) + ": " + describe_status(r.status);
    std::string detail = one_line(r.err.empty() ? r.out : r.err);
    if (!detail.empty()) msg += ": " + detail;
    return Unexpected{msg};
}

bool netns_available() {
    static const bool available = [] {
        if (::geteuid() != 0) return false;
        return run_command({"ip", "netns", "list"}, std::chrono::seconds(10)).has_value();
    }();
    return available;
}

// --- NetnsScope ---------------------------------------------------------------

Expected<NetnsScope, std::string> NetnsScope::enter(const std::string& ns) {
    Fd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (home.get() < 0) return Unexpected{"netns: open own namespace: " + errno_text(errno)};
    std::string path = "/run/netns/" + ns;
    Fd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (target.get() < 0) return Unexpected{"netns: open " + path + ": " + errno_text(errno)};
    if (::setns(target.get(), CLONE_NEWNET) != 0) {
        return Unexpected{"netns: setns " + ns + ": " + errno_text(errno)};
    }
    return NetnsScope(home.release());
}

NetnsScope::NetnsScope(NetnsScope&& other) noexcept : home_fd_(std::exchange(other.home_fd_, -1)) {}

NetnsScope::~NetnsScope() {
    if (home_fd_ < 0) return;
    if (::setns(home_fd_, CLONE_NEWNET) != 0) {
        std::fprintf(stderr, "netns: cannot return to the original namespace: %s\n",
                     std::strerror(errno));
        std::abort();
    }
    ::close(home_fd_);
}

Expected<int, std::string> socket_in_netns(const std::string& ns, int domain, int type,
                                           int protocol) {
    auto scope = NetnsScope::enter(ns);
    if (!scope) return Unexpected{scope.error()};
    int fd = ::socket(domain, type, protocol);
    if (fd < 0) return Unexpected{"socket in " + ns + ": " + errno_text(errno)};
    return fd;
}

Expected<int, std::string> run_in_netns(const std::string& ns, const std::function<int()>& fn,
                                        std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::string path = "/run/netns/" + ns;
    auto report = make_pipe();  // the child's error text, if any
    if (!report) return Unexpected{"run_in_netns: " + report.error()};
    pid_t pid = ::fork();
    if (pid < 0) return Unexpected{"run_in_netns: fork: " + errno_text(errno)};
    if (pid == 0) {
        int wfd = report->second.get();
        auto fail = [wfd](const std::string& text, int code) {
            ssize_t ignored = ::write(wfd, text.data(), text.size());
            static_cast<void>(ignored);
            ::_exit(code);
        };
        int nsfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) fail("open " + path + ": " + errno_text(errno), 127);
        if (::setns(nsfd, CLONE_NEWNET) != 0) fail("setns " + ns + ": " + errno_text(errno), 127);
        ::close(nsfd);
        int code = 0;
        try {
            code = fn();
        } catch (const std::exception& e) {
            fail(std::string("function threw: ") + e.what(), 126);
        } catch (...) {
            fail("function threw", 126);
        }
        ::_exit(code & 0xff);
    }
    report->second.reset();
    ChildResult r = collect(pid, Fd(), std::move(report->first), deadline);
    std::string where = "run_in_netns " + ns + ": ";
    if (r.timed_out) {
        return Unexpected{where + "timed out after " + std::to_string(timeout.count()) + " ms"};
    }
    if (!r.err.empty()) return Unexpected{where + one_line(r.err)};
    if (!WIFEXITED(r.status)) return Unexpected{where + describe_status(r.status)};
    return WEXITSTATUS(r.status);
}

// --- NetnsCluster -------------------------------------------------------------

NetnsCluster::NetnsCluster(std::string prefix, int hosts)
    : prefix_(std::move(prefix)),
      hosts_(hosts),
      loss_chain_(static_cast<std::size_t>(hosts), false) {
    std::uint32_t h = fnv1a(prefix_);
    subnet_x_ = static_cast<std::uint8_t>(128 + h % 120);
    subnet_y_ = static_cast<std::uint8_t>((h >> 8) & 0xff);
}

NetnsCluster::NetnsCluster(NetnsCluster&& other) noexcept
    : prefix_(std::move(other.prefix_)),
      hosts_(other.hosts_),
      subnet_x_(other.subnet_x_),
      subnet_y_(other.subnet_y_),
      namespaces_(std::move(other.namespaces_)),
      loss_chain_(std::move(other.loss_chain_)) {
    other.namespaces_.clear();
    other.hosts_ = 0;
}

NetnsCluster& NetnsCluster::operator=(NetnsCluster&& other) noexcept {
    if (this != &other) {
        destroy();
        prefix_ = std::move(other.prefix_);
        hosts_ = other.hosts_;
        subnet_x_ = other.subnet_x_;
        subnet_y_ = other.subnet_y_;
        namespaces_ = std::move(other.namespaces_);
        loss_chain_ = std::move(other.loss_chain_);
        other.namespaces_.clear();
        other.hosts_ = 0;
    }
    return *this;
}

NetnsCluster::~NetnsCluster() {
    destroy();
}

void NetnsCluster::destroy() noexcept {
    try {
        // Hosts first, switch last: the reverse of creation.
        for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
            auto r = delete_namespace(*it);
            if (!r) std::fprintf(stderr, "NetnsCluster: %s\n", r.error().c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "NetnsCluster: cleanup failed: %s\n", e.what());
    }
    namespaces_.clear();
}

Expected<NetnsCluster, std::string> NetnsCluster::create(int hosts, const std::string& prefix) {
    if (hosts < 1 || hosts > kMaxHosts) {
        return Unexpected{"netns: hosts must be 1.." + std::to_string(kMaxHosts) + ", got " +
                          std::to_string(hosts)};
    }
    if (auto ok = check_prefix(prefix); !ok) return Unexpected{ok.error()};
    if (!netns_available()) {
        return Unexpected{std::string("netns: needs root and a working `ip netns`")};
    }
    if (auto ok = remove_leftovers(prefix); !ok) {
        return Unexpected{"netns: removing leftovers: " + ok.error()};
    }
    NetnsCluster cluster(prefix, hosts);
    if (auto ok = cluster.build(); !ok) return Unexpected{ok.error()};  // ~cluster cleans up
    return cluster;
}

Expected<std::monostate, std::string> NetnsCluster::add_namespace(const std::string& name) {
    auto r = run_command({"ip", "netns", "add", name});
    if (!r) return Unexpected{r.error()};
    namespaces_.push_back(name);
    return std::monostate{};
}

Expected<std::monostate, std::string> NetnsCluster::build() {
    const std::string sw = switch_ns();
    std::vector<std::vector<std::string>> steps;
    if (auto ok = add_namespace(sw); !ok) return ok;
    steps.push_back({"ip", "-n", sw, "link", "add", kBridge, "type", "bridge", "stp_state", "0"});
    steps.push_back({"ip", "-n", sw, "link", "set", kBridge, "up"});
    for (const auto& step : steps) {
        if (auto r = run_command(step); !r) return Unexpected{r.error()};
    }
    for (int i = 0; i < hosts_; ++i) {
        const std::string host = ns(i);
        const std::string port = switch_port(i);
        if (auto ok = add_namespace(host); !ok) return ok;
        steps = {
            {"ip", "link", "add", kHostInterface, "netns", host, "mtu", "1500", "type", "veth",
             "peer", "name", port, "netns", sw, "mtu", "1500"},
            {"ip", "-n", sw, "link", "set", port, "master", kBridge, "up"},
            {"ip", "-n", host, "link", "set", "lo", "up"},
            {"ip", "-n", host, "addr", "add", address(i) + "/24", "dev", kHostInterface},
            {"ip", "-n", host, "link", "set", kHostInterface, "up"},
        };
        for (const auto& step : steps) {
            if (auto r = run_command(step); !r) return Unexpected{r.error()};
        }
    }
    return wait_until_forwarding();
}

// Carrier changes reach the bridge through the kernel's link-watch work,
// which can lag under load; until then a port drops what it is given.
Expected<std::monostate, std::string> NetnsCluster::wait_until_forwarding() const {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    std::string last;
    for (;;) {
        auto r =
            run_command({"ip", "-n", switch_ns(), "-d", "-o", "link", "show", "master", kBridge});
        if (!r) return Unexpected{r.error()};
        int ready = 0;
        std::istringstream lines(*r);
        for (std::string line; std::getline(lines, line);) {
            if (line.find("LOWER_UP") != std::string::npos &&
                line.find("bridge_slave state forwarding") != std::string::npos) {
                ++ready;
            }
        }
        if (ready == hosts_) return std::monostate{};
        if (Clock::now() >= deadline) {
            return Unexpected{"netns: only " + std::to_string(ready) + " of " +
                              std::to_string(hosts_) + " switch ports forwarding after 10 s"};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

Expected<std::monostate, std::string> NetnsCluster::remove_leftovers(const std::string& prefix) {
    if (auto ok = check_prefix(prefix); !ok) return ok;
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/run/netns", ec), end; !ec && it != end;
         it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (belongs_to(name, prefix)) names.push_back(name);
    }
    Expected<std::monostate, std::string> result = std::monostate{};
    for (const auto& name : names) {
        auto r = delete_namespace(name);
        if (!r && result) result = Unexpected{r.error()};
    }
    return result;
}

void NetnsCluster::check_host(int i) const {
    if (i < 0 || i >= hosts_) {
        std::fprintf(stderr, "NetnsCluster: host %d out of range (%d hosts)\n", i, hosts_);
        std::abort();
    }
}

std::string NetnsCluster::ns(int i) const {
    check_host(i);
    return prefix_ + "-h" + std::to_string(i);
}

std::string NetnsCluster::address(int i) const {
    check_host(i);
    return "10." + std::to_string(subnet_x_) + "." + std::to_string(subnet_y_) + "." +
           std::to_string(i + 1);
}

std::string NetnsCluster::switch_ns() const {
    return prefix_ + "-sw";
}

std::string NetnsCluster::switch_port(int i) const {
    check_host(i);
    return "p" + std::to_string(i);
}

Expected<std::string, std::string> NetnsCluster::exec(int i, const std::string& cmd,
                                                      std::chrono::milliseconds timeout) const {
    return exec(i, std::vector<std::string>{"sh", "-c", cmd}, timeout);
}

Expected<std::string, std::string> NetnsCluster::exec(int i, const std::vector<std::string>& argv,
                                                      std::chrono::milliseconds timeout) const {
    std::vector<std::string> full = {"ip", "netns", "exec", ns(i)};
    full.insert(full.end(), argv.begin(), argv.end());
    return run_command(full, timeout);
}

Expected<std::monostate, std::string> NetnsCluster::set_loss(int i, double probability) {
    check_host(i);
    if (!(probability >= 0.0 && probability <= 1.0)) {
        return Unexpected{"set_loss: probability must be in [0, 1], got " +
                          std::to_string(probability)};
    }
    const std::string host = ns(i);
    const auto idx = static_cast<std::size_t>(i);
    if (!loss_chain_[idx]) {
        if (auto r = run_in(host, {"iptables", "-w", "5", "-N", kLossChain}); !r) {
            return Unexpected{r.error()};
        }
        if (auto r = run_in(host, {"iptables", "-w", "5", "-I", "INPUT", "1", "-j", kLossChain});
            !r) {
            return Unexpected{r.error()};
        }
        loss_chain_[idx] = true;
    }
    if (auto r = run_in(host, {"iptables", "-w", "5", "-F", kLossChain}); !r) {
        return Unexpected{r.error()};
    }
    if (probability == 0.0) return std::monostate{};
    std::array<char, 32> buf{};
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), probability,
                                   std::chars_format::fixed, 9);
    if (ec != std::errc{}) return Unexpected{std::string("set_loss: cannot format probability")};
    const std::string p(buf.data(), end);
    for (const char* proto : {"udp", "146"}) {
        auto r = run_in(host, {"iptables", "-w", "5", "-A", kLossChain, "-p", proto, "-m",
                               "statistic", "--mode", "random", "--probability", p, "-j", "DROP"});
        if (!r) return Unexpected{r.error()};
    }
    return std::monostate{};
}

void NetnsCluster::clear_loss(int i) {
    check_host(i);
    if (!loss_chain_[static_cast<std::size_t>(i)]) return;
    auto r = run_in(ns(i), {"iptables", "-w", "5", "-F", kLossChain});
    if (!r) std::fprintf(stderr, "NetnsCluster::clear_loss: %s\n", r.error().c_str());
}

}  // namespace uhoma::testing
