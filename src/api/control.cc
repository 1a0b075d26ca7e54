// The control socket's server thread, client call and run-directory
// housekeeping. Design notes are in control.h.
#include "api/control.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace uhoma::api {

namespace {

constexpr auto server_io_timeout = std::chrono::seconds(2);

std::string errno_text(int error) { return std::strerror(error); }

void set_io_timeouts(int fd, std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Errors: errno of the failing send (EAGAIN on timeout).
Expected<std::monostate, int> send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Unexpected{errno};
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return std::monostate{};
}

// Reads until end of file or `limit` bytes. Errors: errno of the failing
// recv (EAGAIN on timeout), EMSGSIZE past the limit.
Expected<std::string, int> receive_all(int fd, std::size_t limit) {
    std::string out;
    char buffer[65536];
    for (;;) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Unexpected{errno};
        }
        if (n == 0) return out;
        if (out.size() + static_cast<std::size_t>(n) > limit) return Unexpected{EMSGSIZE};
        out.append(buffer, static_cast<std::size_t>(n));
    }
}

// One line: newlines and other control characters become spaces.
std::string one_line(std::string text) {
    for (char& c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    }
    return text;
}

bool printable(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F;
    });
}

// The pid of a "<pid>.sock" name, or 0.
pid_t pid_of_name(const char* name) {
    const std::string_view n(name);
    constexpr std::string_view suffix = ".sock";
    if (n.size() <= suffix.size() || n.size() > suffix.size() + 10 ||
        n.substr(n.size() - suffix.size()) != suffix) {
        return 0;
    }
    long long pid = 0;
    for (char c : n.substr(0, n.size() - suffix.size())) {
        if (c < '0' || c > '9') return 0;
        pid = pid * 10 + (c - '0');
    }
    return pid > 0 && pid <= 0x7FFFFFFF ? static_cast<pid_t>(pid) : 0;
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// Calls `visit(pid, path)` for every "<pid>.sock" entry of `directory`.
template <typename Visit>
void for_each_socket_file(const std::string& directory, Visit visit) {
    DIR* dir = ::opendir(directory.c_str());
    if (dir == nullptr) return;
    while (const dirent* entry = ::readdir(dir)) {
        if (const pid_t pid = pid_of_name(entry->d_name)) {
            visit(pid, directory + "/" + entry->d_name);
        }
    }
    ::closedir(dir);
}

}  // namespace

// ---------------------------------------------------------------------------
// Paths

std::string control_directory() {
    const char* dir = std::getenv("UHOMA_RUN_DIR");
    return dir != nullptr && *dir != '\0' ? std::string(dir) : std::string("/tmp/uhoma");
}

std::string control_path(const std::string& directory, pid_t pid) {
    return directory + "/" + std::to_string(pid) + ".sock";
}

Expected<std::monostate, std::string> prepare_control_directory(const std::string& directory) {
    if (directory.empty()) return Unexpected{std::string("empty run directory")};
    struct stat st {};
    if (::stat(directory.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return Unexpected{directory + " is not a directory"};
        return std::monostate{};
    }
    const auto slash = directory.find_last_of('/');
    if (slash != std::string::npos && slash > 0) {
        auto parent = prepare_control_directory(directory.substr(0, slash));
        if (!parent) return parent;
    }
    if (::mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) {
        return Unexpected{"cannot create " + directory + ": " + errno_text(errno)};
    }
    // mkdir's mode is filtered by the umask; chmod is not.
    if (::stat(directory.c_str(), &st) == 0 && st.st_uid == ::geteuid()) {
        ::chmod(directory.c_str(), 01777);
    }
    return std::monostate{};
}

void remove_stale_sockets(const std::string& directory) {
    for_each_socket_file(directory, [](pid_t pid, const std::string& path) {
        if (!process_exists(pid)) ::unlink(path.c_str());
    });
}

std::vector<pid_t> list_control_pids(const std::string& directory) {
    std::vector<pid_t> pids;
    for_each_socket_file(directory, [&](pid_t pid, const std::string&) {
        if (process_exists(pid)) pids.push_back(pid);
    });
    std::sort(pids.begin(), pids.end());
    return pids;
}

// ---------------------------------------------------------------------------
// Server

Expected<std::unique_ptr<ControlServer>, std::string> ControlServer::start(
    const std::string& path, std::map<std::string, ControlHandler, std::less<>> handlers) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(address.sun_path)) {
        return Unexpected{"control socket path too long for a unix socket: " + path};
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);

    std::unique_ptr<ControlServer> server(new ControlServer);
    server->path_ = path;
    server->handlers_ = std::move(handlers);
    server->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (server->listen_fd_ < 0) return Unexpected{"control socket: " + errno_text(errno)};
    ::unlink(path.c_str());
    if (::bind(server->listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) !=
        0) {
        const int error = errno;
        server->path_.clear();  // nothing of ours to unlink
        return Unexpected{"cannot bind control socket " + path + ": " + errno_text(error)};
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int error = errno;
        ::unlink(path.c_str());
        server->path_.clear();
        return Unexpected{"cannot stat control socket " + path + ": " + errno_text(error)};
    }
    // From here on the destructor removes the file.
    server->device_ = st.st_dev;
    server->inode_ = st.st_ino;
    if (::chmod(path.c_str(), 0600) != 0) {
        return Unexpected{"cannot chmod control socket " + path + ": " + errno_text(errno)};
    }
    if (::listen(server->listen_fd_, 16) != 0) {
        return Unexpected{"cannot listen on control socket " + path + ": " + errno_text(errno)};
    }
    server->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (server->stop_fd_ < 0) return Unexpected{"control socket eventfd: " + errno_text(errno)};
    try {
        server->thread_ = std::thread([s = server.get()] { s->serve(); });
    } catch (const std::exception& e) {
        return Unexpected{std::string("cannot start the control thread: ") + e.what()};
    }
    return server;
}

ControlServer::~ControlServer() {
    if (thread_.joinable()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof(one));
        thread_.join();
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    // Unlink only the file we bound: a later server of this process may have
    // replaced it.
    struct stat st {};
    if (!path_.empty() && ::stat(path_.c_str(), &st) == 0 && st.st_dev == device_ &&
        st.st_ino == inode_) {
        ::unlink(path_.c_str());
    }
}

void ControlServer::serve() {
    ::pthread_setname_np(::pthread_self(), "uhoma-control");
    // Signals belong to the application's threads.
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        const int n = ::poll(fds, 2, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        if ((fds[0].revents & POLLIN) == 0) continue;
        const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;  // EAGAIN (raced), ECONNABORTED, EMFILE...
        answer(client);
        ::close(client);
    }
}

void ControlServer::answer(int client) {
    set_io_timeouts(client, server_io_timeout);
    std::string line;
    char buffer[max_command_bytes];
    while (line.find('\n') == std::string::npos && line.size() < max_command_bytes) {
        const ssize_t n = ::recv(client, buffer, max_command_bytes - line.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        line.append(buffer, static_cast<std::size_t>(n));
    }
    const auto newline = line.find('\n');
    if (newline == std::string::npos) {
        (void)send_all(client, "error command too long or not ended by a newline\n");
        return;
    }
    line.resize(newline);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto space = line.find(' ');
    const std::string_view command = std::string_view(line).substr(0, space);
    const std::string_view argument =
        space == std::string::npos ? std::string_view() : std::string_view(line).substr(space + 1);
    const auto handler = handlers_.find(command);
    if (handler == handlers_.end()) {
        std::string names;
        for (const auto& [name, h] : handlers_) names += (names.empty() ? "" : ", ") + name;
        (void)send_all(client, "error unknown command '" + one_line(std::string(command)) +
                                   "' (commands: " + names + ")\n");
        return;
    }
    Expected<std::string, std::string> result = Unexpected{std::string("no answer")};
    try {
        result = handler->second(argument);
    } catch (const std::exception& e) {
        result = Unexpected{std::string("internal error: ") + e.what()};
    } catch (...) {
        result = Unexpected{std::string("internal error")};
    }
    if (!result) {
        (void)send_all(client, "error " + one_line(result.error()) + "\n");
        return;
    }
    if (send_all(client, "ok\n")) (void)send_all(client, *result);
}

// ---------------------------------------------------------------------------
// Client

Expected<std::string, ControlError> control_request(const std::string& path,
                                                    std::string_view command,
                                                    std::chrono::milliseconds timeout,
                                                    std::size_t max_answer) {
    auto fail = [&](ControlErrorKind kind, std::string message) {
        return Unexpected{ControlError{kind, std::move(message)}};
    };
    if (command.empty() || command.size() >= max_command_bytes || !printable(command)) {
        return fail(ControlErrorKind::protocol, "invalid command");
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) {
        return fail(ControlErrorKind::no_socket, "path too long for a unix socket: " + path);
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(ControlErrorKind::io, "socket: " + errno_text(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    set_io_timeouts(fd, timeout);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        const int error = errno;
        switch (error) {
            case ENOENT:
            case ENOTDIR:
                return fail(ControlErrorKind::no_socket, "no control socket at " + path);
            case EACCES:
            case EPERM:
                return fail(ControlErrorKind::permission,
                            "permission denied connecting to " + path);
            case ECONNREFUSED:
                return fail(ControlErrorKind::refused,
                            "nobody listens on " + path + " (stale socket)");
            default:
                return fail(ControlErrorKind::io, "cannot connect to " + path + ": " +
                                                      errno_text(error));
        }
    }
    if (auto sent = send_all(fd, std::string(command) + "\n"); !sent) {
        return fail(ControlErrorKind::io, "cannot send to " + path + ": " + errno_text(sent.error()));
    }
    auto answer = receive_all(fd, max_answer + max_command_bytes);
    if (!answer) {
        const int error = answer.error();
        if (error == EAGAIN || error == EWOULDBLOCK) {
            return fail(ControlErrorKind::io, "no answer from " + path + " (timed out)");
        }
        if (error == EMSGSIZE) return fail(ControlErrorKind::protocol, "answer too long");
        return fail(ControlErrorKind::io, "cannot read from " + path + ": " + errno_text(error));
    }
    const std::string& text = *answer;
    if (text.rfind("ok\n", 0) == 0) {
        if (text.size() - 3 > max_answer) return fail(ControlErrorKind::protocol, "answer too long");
        return text.substr(3);
    }
    if (text.rfind("error ", 0) == 0) {
        const auto end = text.find('\n');
        return fail(ControlErrorKind::remote,
                    one_line(text.substr(6, end == std::string::npos ? std::string::npos : end - 6)));
    }
    return fail(ControlErrorKind::protocol, "not a uhoma control answer from " + path);
}

}  // namespace uhoma::api
