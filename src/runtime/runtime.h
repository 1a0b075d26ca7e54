// Runtime: real threads, sockets and clocks around one sans-I/O engine.
//
// Design notes
// ------------
// One Runtime per process (per host address) owns an Engine, one Channel
// per Homa socket (channel.h: a UDP socket, Homa port P being UDP port P so
// a Homa address is an ordinary (IP, port); or with driver=raw a raw IP-146
// socket filtered to the port), and one background thread.
//
// Who moves packets. Any thread may "pump": receive whatever the sockets
// hold, feed it to the engine, fire due timers, collect the engine's output,
// hand completed messages to waiting threads, and send. Application threads
// pump themselves: a send transmits from the calling thread, and a thread
// waiting in receive() busy-polls (pumping) for poll_usecs before it sleeps,
// so a short RPC needs no thread hop. The background thread sleeps in
// epoll_pwait2 on every socket no application thread owns, with the
// engine's next deadline as timeout, so timers, the pacer and packets for
// sleeping receivers still make progress.
//
// Who owns a socket. The first thread waiting in receive() "watches" the
// socket: it busy-polls that socket alone (and the timers), then sleeps on
// it, and the background thread leaves it alone meanwhile. A busy-polling
// watcher keeps the socket for poll_usecs after it returns (a lease, see
// runtime.cc), since busy-polling applications call receive() back to back.
// While a waiter busy-polls, the background thread does not spin for the
// pacer's near deadlines either (the waiter runs them); on a 2-core VM, two
// spinning threads on one CPU would each get half of it.
//
// Locks. `mutex_` guards the engine and the waiter lists and is never held
// across a packet syscall: packets are received into the socket's
// buffers first (under that socket's rx lock, taken only with try_lock so
// pumps never wait on each other), then the engine runs under mutex_, its
// output goes to a per-thread arena (packet headers copied, DATA payloads
// referenced in the engine's message storage and kept alive, not copied),
// and the sends and wake-ups happen after unlocking. The driver's send arrays belong to the socket, so threads
// sending on the same socket take turns on its tx lock (held only for the
// sendmmsg); they never wait for the engine.
//
// Waiters. Threads waiting for shared messages on a socket form a LIFO
// stack; a message goes to the most recent waiter, which keeps a few warm
// threads busy (spec 2.5, perf #5). A private RPC's waiter waits for its id.
// When no thread waits, a ready message makes the socket's eventfd readable,
// so the socket fits an epoll loop.
//
// RPC ids. Servers key RPCs by (client address, id), so ids must be unique
// per host address across processes (spec 1.6): each process starts its ids
// at (pid << 40) plus a time-derived offset, leaving 2^39 RPCs per process.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "runtime/channel.h"
#include "engine/engine.h"
#include "uhoma/expected.h"

namespace uhoma::runtime {

using engine::Duration;
using engine::Endpoint;
using engine::ReceivedMessage;
using engine::RpcId;
using engine::SocketId;

// The engine defaults (Linux Homa's), except where a user-space sender
// differs from a NIC: max_nic_est_backlog_usecs is 20, not 5. The pacer
// lets a message's packets out only while the estimated NIC queue is under
// that budget, and each release becomes one sendmmsg. With 5 us (16 KB at
// 25 Gb/s) a 1 MB message leaves in 16 KB syscalls; 20 us admits one full
// 64 KB GSO train (21 us at 25 Gb/s) per syscall. Measured on loopback
// (uhoma-perf stream, 1 MB): 9.6 Gbit/s at 0.78 CPU-s/GB with 5 us,
// 13.0 Gbit/s at 0.56 with 20 us. The cost is up to 20 us of queueing
// ahead of a short message's first packet under load, against 5 us.
inline engine::Config runtime_default_config() {
    engine::Config config;
    config.max_nic_est_backlog_usecs = 20;
    return config;
}

struct RuntimeOptions {
    engine::Config config = runtime_default_config();
    std::uint32_t poll_usecs = 50;   // busy-poll before sleeping (Linux Homa's poll_usecs)
    bool ipv6 = false;               // bind [::] (dual stack) instead of 0.0.0.0
    DriverKind driver = DriverKind::udp;  // parameter `driver`: udp or raw (see channel.h)
    std::uint64_t first_client_id = 0;  // 0: derived from the pid (see design notes)
    // Kernel socket buffers per UDP socket (capped by net.core.rmem_max /
    // wmem_max). Homa's receiver admits max_incoming (400 KB) of scheduled
    // data plus unscheduled bursts from every sender, so the kernel's
    // ~200 KB default drops packets under load and costs retransmission
    // timeouts.
    int socket_buffer_bytes = 4 << 20;
};

class Runtime {
public:
    // Errors: the configuration's first bad field, or why a system resource
    // (epoll, eventfd, thread) could not be created, as one line.
    static Expected<std::unique_ptr<Runtime>, std::string> create(const RuntimeOptions& options);
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // A client socket; its port is the (UDP) port the kernel picked.
    // Errors: errno from socket/bind, EADDRINUSE.
    Expected<SocketId, int> open_socket();
    // Moves the socket to server port `port` (1..32767). Errors: EINVAL,
    // EADDRINUSE (UDP port taken), errno from the UDP socket.
    Expected<std::monostate, int> bind(SocketId socket, std::uint16_t port);
    Expected<std::monostate, int> set_server(SocketId socket, bool is_server);
    Expected<std::monostate, int> set_receive_buffer(SocketId socket, std::span<std::byte> region);
    // Ends the socket's RPCs and wakes its waiters with ESHUTDOWN.
    void close_socket(SocketId socket);
    std::optional<std::uint16_t> port(SocketId socket) const;
    // An eventfd that is readable while receive(socket, 0) would not block.
    // Errors: EINVAL (unknown socket).
    Expected<int, int> ready_fd(SocketId socket) const;

    // As engine::Engine, plus transmission from the calling thread.
    Expected<RpcId, int> send_request(SocketId socket, const Endpoint& destination,
                                      std::span<const std::byte> message, std::uint64_t cookie,
                                      bool private_rpc);
    Expected<std::monostate, int> send_reply(SocketId socket, const Endpoint& client, RpcId id,
                                             std::span<const std::byte> message);
    // Waits for a message: id 0 for any shared one, else private RPC `id`.
    // timeout: nullopt waits forever; zero does not wait. With
    // `interruptible`, a signal delivered to the waiting thread ends the
    // wait with EINTR (Linux Homa's recvmsg); otherwise the wait goes on.
    // Errors: EAGAIN (nothing within the timeout), ESHUTDOWN (socket closed
    // while waiting), EINVAL (no receive region, unknown id or socket),
    // EINTR (interruptible only), ENOMEM/EMFILE (no eventfd for the thread).
    Expected<ReceivedMessage, int> receive(SocketId socket, RpcId id,
                                           std::optional<Duration> timeout,
                                           bool interruptible = false);
    Expected<std::monostate, int> release_bpages(SocketId socket,
                                                 std::span<const std::uint32_t> offsets);
    Expected<std::monostate, int> abort(SocketId socket, RpcId id, int error);

    // Send batches (uhoma::SendBatch): between cork() and the matching
    // uncork(), the calling thread's send_request/send_reply/release_bpages
    // leave their packets in the thread's arena; uncork() sends them all at
    // once (one sendmmsg; equal-size packets to one peer as one GSO train).
    // A receive() that has to wait, and any pump, sends them first. Nests;
    // cork() returns false (and the thread's sends on this runtime are not
    // batched) while the thread has a batch open on another runtime.
    bool cork();
    void uncork();
    // Sends what this thread's batch on this runtime holds; the batch goes on.
    void flush_batch();

    // External pollers (the async EventLoop). A thread that waits for a
    // socket in its own epoll set claims it: the background thread then
    // leaves the socket alone, so a packet wakes that thread only (one
    // thread hop instead of two), and the claimer must call poll_socket()
    // whenever the socket's descriptors may be readable, until it returns
    // false. claim() fails (false) while a receive() watches the socket.
    // Every claim must be undone by unclaim() before the claimer stops
    // polling. Errors of socket_fds: EINVAL (unknown or closed socket).
    struct SocketFds {
        std::array<int, 2> fds{-1, -1};
        std::size_t count = 0;
    };
    Expected<SocketFds, int> socket_fds(SocketId socket) const;
    bool claim(SocketId socket);
    void unclaim(SocketId socket);
    // One receive -> engine -> send round for `socket` and the due timers;
    // whether packets moved.
    bool poll_socket(SocketId socket);
    std::uint32_t poll_usecs() const { return options_.poll_usecs; }

    // For HOMAIOCINFO. Errors: EINVAL (unknown socket).
    Expected<engine::SocketInfo, int> socket_info(SocketId socket, std::size_t max_rpcs) const;
    engine::Metrics metrics() const;
    std::size_t rpc_count() const;
    const engine::Config& config() const { return options_.config; }

private:
    // A thread's wake-up channel: an eventfd it sleeps on in ppoll, which a
    // signal interrupts (EINTR) as Linux Homa's recvmsg is. Shared, so a
    // wake-up written after the waiter already left finds the fd still open.
    struct Waker {
        int fd = -1;
        ~Waker();
    };
    struct Waiter {
        RpcId id = 0;
        std::optional<Expected<ReceivedMessage, int>> result;
        std::shared_ptr<Waker> waker;
        // In (or about to enter) sleep_on; a waiter that is still
        // busy-polling finds its result without a wake-up (mutex_).
        bool asleep = false;
        // Set (under mutex_) once `result` is; a busy-polling waiter reads
        // it without the lock.
        std::atomic<bool> ready{false};
    };
    struct SocketState {
        SocketId id = 0;
        std::unique_ptr<Channel> channel;
        std::mutex rx;  // guards the channel's receive buffers; only try_lock'ed
        std::mutex tx;  // guards the channel's send arrays; held across the send only
        int event_fd = -1;  // closed by the destructor, when no Deferred holds the state
        ~SocketState();
        bool event_signaled = false;
        std::vector<Waiter*> waiters;  // LIFO: back is the most recent
        // The waiter watching the socket's descriptors itself (at most one);
        // while there is one, the background thread does not watch them.
        const Waiter* watcher = nullptr;
        // Busy-polling mode: after its watcher leaves, the socket stays out
        // of the background thread's epoll set until this time (see
        // "Leases" in runtime.cc), so back-to-back receives cost no epoll_ctl
        // and packets between them wake nobody.
        engine::Instant lease_until{};
        // The watcher while an external poller has claimed the socket.
        Waiter external;
        std::mutex watch_mutex;  // orders epoll_ctl on the socket's fds
        bool watched = false;    // in the background thread's epoll set (watch_mutex)
        bool closed = false;
    };
    // Work to do after mutex_ is released.
    struct Deferred {
        std::vector<std::shared_ptr<Waker>> wake;
        // Sockets whose eventfd to signal (true) or drain (false). Holding the
        // state keeps its eventfd open even if the socket closes meanwhile.
        std::vector<std::pair<std::shared_ptr<SocketState>, bool>> eventfds;
    };

    explicit Runtime(const RuntimeOptions& options);
    static engine::Instant now();
    // One round of receive -> engine -> send. Returns whether anything moved.
    // `skip_owned`: leave out sockets an application thread watches or
    // holds the lease of (the background thread's rounds).
    bool pump(bool skip_owned = false);
    // pump() for one socket only: what a waiter watching it spins on.
    bool pump_watched(SocketState& state, engine::Instant t);
    // Parts of a pump: one socket's packets through the engine, and the
    // timers if one is due. Both return whether they did anything.
    bool pump_socket(SocketState& state, Deferred& deferred);
    bool run_due_timers(Deferred& deferred, engine::Instant t);
    // Under mutex_: timers, completions, readiness; fills `deferred`.
    // `t`: the time of the engine call just made (one clock read per call).
    void after_engine_work(Deferred& deferred, engine::Instant t);
    // Under mutex_: move the engine's output into this thread's tx arena
    // (headers copied, payloads referenced).
    void collect_transmits(engine::Instant t);
    void send_collected();
    // send_collected(), unless this thread has a batch open on this runtime.
    void send_unless_corked();
    // Sends what this thread's batch on *another* runtime holds.
    void flush_other_batch();
    void finish(Deferred& deferred);
    // This thread's Waker, created on first use; null if no eventfd.
    static std::shared_ptr<Waker> thread_waker();
    struct Sleep {
        int error = 0;         // EINTR, or ppoll's errno
        bool packets = false;  // a socket became readable
    };
    // Sleeps until woken, a packet arrives on `socket_fds`, or `timeout`.
    static Sleep sleep_on(const Waker& waker, std::span<const int> socket_fds,
                          std::optional<Duration> timeout);
    void background_loop();
    void wake_background();
    std::shared_ptr<SocketState> find(SocketId socket) const;
    ChannelOptions channel_options() const;
    void watch(const Channel& channel);
    void unwatch(const Channel& channel);
    // Makes the background thread watch the socket iff no waiter does and
    // its lease has ended.
    void sync_watch(SocketState& state);
    // Background thread: ends expired leases; returns the time the next one
    // expires, or `never`.
    engine::Instant end_expired_leases();

    RuntimeOptions options_;
    mutable std::mutex mutex_;
    std::unique_ptr<engine::Engine> engine_;
    std::map<SocketId, std::shared_ptr<SocketState>> sockets_;
    std::map<std::uint16_t, std::shared_ptr<SocketState>> by_port_;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;
    std::atomic<bool> stop_{false};
    // engine_->next_deadline() as of the last engine call (ns since the
    // clock's epoch), for pump's lock-free "is a timer due?" check.
    std::atomic<std::int64_t> next_deadline_ns_{0};
    // Waiters busy-polling right now (they run due timers themselves), and
    // when the sleeping background thread will wake (0 while it is awake).
    std::atomic<int> spinning_waiters_{0};
    std::atomic<std::int64_t> background_wake_ns_{0};
    struct SpinningWaiter {
        explicit SpinningWaiter(Runtime& runtime);
        ~SpinningWaiter();
        SpinningWaiter(const SpinningWaiter&) = delete;
        SpinningWaiter& operator=(const SpinningWaiter&) = delete;
        Runtime& runtime_;
    };
    std::thread thread_;
};

}  // namespace uhoma::runtime
