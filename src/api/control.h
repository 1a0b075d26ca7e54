// Control socket: ask a running uhoma process for its metrics or timetrace.
//
// Design notes
// ------------
// Why a socket. Linux Homa publishes /proc/net/homa_metrics and
// /proc/timetrace; a user-space transport has no /proc files of its own, so
// each uhoma process answers the same questions on a unix-domain socket,
// served by one small thread that sleeps in poll() until asked. Tools
// (uhoma-metrics) connect, send one command, read the answer.
//
// Where. A filesystem path, `$UHOMA_RUN_DIR/<pid>.sock`, default
// /tmp/uhoma/<pid>.sock, not the abstract namespace: abstract unix sockets
// belong to a network namespace, so a server started with
// `ip netns exec ns1 ...` would be invisible to a tool run outside ns1 (the
// namespace integration tests do exactly that), while a path is reachable
// from every network namespace that shares the mount namespace. The name
// carries the pid, so the tool can list processes without asking anyone, and
// a file whose pid is gone is stale: servers delete those when they start,
// and the tool skips them. The directory is created mode 1777 (sticky, like
// /tmp) so several users can share it; each socket is mode 0600, so only its
// owner (and root) can connect. Pids are those of the server's pid
// namespace; processes in other pid namespaces sharing the directory would
// be misnamed, and are not supported.
//
// Protocol. One command per connection: the client sends one line, at most
// max_command_bytes, `command [argument]\n`; the server answers
//   "ok\n" followed by the payload, or
//   "error <one-line message>\n"
// and closes the connection, so the payload ends at end of file. Commands
// are whatever the server was given (see api/observability.h for the
// process's set). The server serves one client at a time with a 2 s limit
// on each read and write, so a stuck client delays the others but cannot
// hang the thread; a command line longer than the limit, or not ending in a
// newline, is refused.
//
// Handlers run on the control thread; they must not block for long and must
// not throw (an exception is answered as an error rather than ending the
// process).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "uhoma/expected.h"

namespace uhoma::api {

inline constexpr std::size_t max_command_bytes = 256;

// A command's answer: the payload, or a one-line error message.
using ControlHandler = std::function<Expected<std::string, std::string>(std::string_view argument)>;

class ControlServer {
public:
    // Binds `path` (replacing a file already there: the caller owns the
    // name) and starts the thread. Errors, as one line: path too long for a
    // unix socket, socket/bind/listen/chmod failures, thread creation.
    static Expected<std::unique_ptr<ControlServer>, std::string> start(
        const std::string& path, std::map<std::string, ControlHandler, std::less<>> handlers);
    // Stops the thread and removes the socket file (if it is still ours).
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    const std::string& path() const { return path_; }

private:
    ControlServer() = default;
    void serve();
    void answer(int client);

    std::string path_;
    std::map<std::string, ControlHandler, std::less<>> handlers_;
    int listen_fd_ = -1;
    int stop_fd_ = -1;
    dev_t device_ = 0;  // of the bound socket file, to unlink only our own
    ino_t inode_ = 0;
    std::thread thread_;
};

// $UHOMA_RUN_DIR, or /tmp/uhoma when unset or empty.
std::string control_directory();
// `<directory>/<pid>.sock`.
std::string control_path(const std::string& directory, pid_t pid);
// Creates `directory` (and its parents) if needed; a directory it creates
// gets mode 1777. Errors: one line naming the path and the errno text.
Expected<std::monostate, std::string> prepare_control_directory(const std::string& directory);
// Deletes `<pid>.sock` files of processes that no longer exist. Files it
// cannot delete (another user's, in a sticky directory) are left alone.
void remove_stale_sockets(const std::string& directory);
// Pids with a socket file in `directory` whose process exists, ascending.
std::vector<pid_t> list_control_pids(const std::string& directory);

enum class ControlErrorKind {
    no_socket,      // no socket file (not a uhoma process, or control disabled)
    permission,     // EACCES/EPERM on the socket
    refused,        // the file exists but nobody listens (stale)
    io,             // connect/send/receive failed, or timed out
    protocol,       // the answer was not "ok"/"error" framed
    remote,         // the server answered "error ..."
};

struct ControlError {
    ControlErrorKind kind = ControlErrorKind::io;
    std::string message;  // one line
};

// Sends `command` (no newline; printable, at most max_command_bytes - 1)
// to the socket at `path` and returns the payload of an "ok" answer, at
// most `max_answer` bytes. Errors: see ControlErrorKind; an over-long or
// non-printable command is ControlErrorKind::protocol.
Expected<std::string, ControlError> control_request(
    const std::string& path, std::string_view command,
    std::chrono::milliseconds timeout = std::chrono::seconds(5),
    std::size_t max_answer = 64u << 20);

}  // namespace uhoma::api
