// The asynchronous C++ API (include/uhoma/async.h): EventLoop and
// Socket::call_async / call_future.
//
// Design notes
// ------------
// The public header explains the model (one epoll fd; cookies match
// responses to calls; deadlines on a timerfd give EAGAIN; cancellation gives
// ECANCELED). Here, how it stays correct across threads:
//
// * `LoopShared::mutex` guards the attachment table, the calls, the
//   deadlines and the cancellation queue. It is never held while a callback
//   runs or while the runtime sends; it is held across the cheap epoll_ctl
//   and timerfd_settime calls so the fds always agree with the tables.
// * A call is entered in the table before its request is sent (the response
//   may be received by the loop thread before send_request returns to
//   call_async on another thread; the cookie finds it). Its deadline is
//   armed only once the send succeeded, so a call whose send fails was never
//   visible to the timer and never gets a callback: it gets the error.
// * Cancelling (remove, Socket destruction, loop destruction) waits until no
//   call_async is between entering its call and learning the send's outcome
//   (`sending` counts them; sends never block), so a call is either failed
//   by call_async or cancelled, never both.
// * `callback_mutex` is held by the loop thread while it runs callbacks. A
//   remove from another thread takes it after detaching, so when remove (or
//   ~Socket) returns, no handler of that socket is still running. Order:
//   callback_mutex, then mutex; never the reverse.
// * Attachments are known to epoll by a serial key, never by pointer, so an
//   event that was already returned for a socket detached meanwhile finds
//   nothing and is ignored.
#include "uhoma/async.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/socket_shared.h"
#include "runtime/runtime.h"

namespace uhoma {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as the timerfd

struct LoopShared {
    struct Attached {
        std::shared_ptr<SocketShared> socket;
        EventLoop::RequestHandler on_request;
        int ready_fd = -1;
        // The socket's own descriptors (UDP or raw), in the loop's epoll set
        // edge-triggered, for rounds in which the loop claims the socket.
        runtime::Runtime::SocketFds fds;
        std::atomic<bool> detached{false};  // set under mutex; read by the loop thread
    };
    struct Call {
        std::shared_ptr<SocketShared> socket;
        Socket::Completion done;
        RpcId id = 0;  // 0 until send_request returned
        std::optional<Clock::time_point> deadline;
    };
    struct Finished {  // a callback to run with an error, and the RPC to abort
        std::shared_ptr<SocketShared> socket;
        Socket::Completion done;
        RpcId id = 0;
    };
    static constexpr std::uint64_t wake_key = 0;
    static constexpr std::uint64_t timer_key = 1;
    // Set in the key of a socket descriptor's event (the attachment's key
    // otherwise names its readiness eventfd).
    static constexpr std::uint64_t packets_bit = std::uint64_t{1} << 63;
    static constexpr int batch = 64;  // messages per socket per round (fairness)

    int epoll_fd = -1;
    int wake_fd = -1;
    int timer_fd = -1;
    std::atomic<bool> stop_requested{false};
    std::atomic<bool> closed{false};

    std::mutex callback_mutex;        // held while the loop thread runs callbacks
    mutable std::mutex mutex;         // guards everything below
    std::condition_variable changed;  // `running` or `sending` dropped
    bool running = false;
    std::thread::id runner;
    int sending = 0;  // call_async calls between entering a call and its send's outcome
    std::uint64_t next_key = 2;
    std::uint64_t next_token = 1;
    std::map<std::uint64_t, std::shared_ptr<Attached>> attached;
    std::unordered_map<std::uint64_t, Call> calls;  // by token (= completion cookie)
    std::set<std::pair<Clock::time_point, std::uint64_t>> deadlines;
    std::vector<Finished> cancelled;  // to complete with ECANCELED on the loop thread
    std::vector<std::shared_ptr<Attached>> claimed;  // loop thread only, during a wait

    ~LoopShared() {
        for (int fd : {epoll_fd, wake_fd, timer_fd}) {
            if (fd >= 0) ::close(fd);
        }
    }

    void wake() const {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof(one));
    }

    // Under mutex: arms the timerfd for the earliest deadline (or disarms it).
    void rearm_locked() const {
        itimerspec spec{};
        if (!deadlines.empty()) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                deadlines.begin()->first.time_since_epoch())
                                .count();
            // A zero it_value disarms; a deadline at the epoch is long past.
            spec.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
            spec.it_value.tv_nsec = static_cast<long>(std::max<std::int64_t>(ns % 1000000000, 1));
        }
        ::timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr);
    }

    // Under mutex: moves every call of `socket` (every call if null) to `out`.
    void take_calls_locked(const SocketShared* socket, std::vector<Finished>& out) {
        for (auto it = calls.begin(); it != calls.end();) {
            if (socket != nullptr && it->second.socket.get() != socket) {
                ++it;
                continue;
            }
            if (it->second.deadline) deadlines.erase({*it->second.deadline, it->first});
            out.push_back(
                {std::move(it->second.socket), std::move(it->second.done), it->second.id});
            it = calls.erase(it);
        }
        rearm_locked();
    }

    static void abort_rpcs(const std::vector<Finished>& finished) {
        for (const auto& f : finished) {
            if (f.id != 0) (void)f.socket->transport->runtime().abort(f.socket->id, f.id, 0);
        }
    }

    // Detaches `socket` (see EventLoop::remove). Returns false if it was not
    // attached here.
    bool detach(const std::shared_ptr<SocketShared>& socket) {
        std::shared_ptr<Attached> gone;
        std::vector<Finished> finished;
        bool on_loop_thread = false;
        {
            std::unique_lock lock(mutex);
            for (auto it = attached.begin(); it != attached.end(); ++it) {
                if (it->second->socket == socket) {
                    gone = std::move(it->second);
                    attached.erase(it);
                    break;
                }
            }
            if (!gone) return false;
            gone->detached = true;
            ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, gone->ready_fd, nullptr);
            for (std::size_t i = 0; i < gone->fds.count; ++i)
                ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, gone->fds.fds[i], nullptr);
            changed.wait(lock, [&] { return sending == 0; });
            take_calls_locked(socket.get(), finished);
            on_loop_thread = running && runner == std::this_thread::get_id();
        }
        abort_rpcs(finished);
        {
            std::lock_guard lock(mutex);
            for (auto& f : finished) cancelled.push_back(std::move(f));
        }
        wake();
        if (!on_loop_thread) std::lock_guard wait_for_callbacks(callback_mutex);
        return true;
    }

    // Takes delivery of one message of `a`'s socket; returns whether a
    // callback ran.
    bool dispatch(const Attached& a, const engine::ReceivedMessage& r) {
        if ((r.id & 1) == 1) {  // a request
            Message request = MessageBuilder::build(a.socket, r);
            if (!a.on_request) return false;  // dropped; its buffers go back
            a.on_request(std::move(request));
            return true;
        }
        Socket::Completion done;
        {
            std::lock_guard lock(mutex);
            auto it = calls.find(r.completion_cookie);
            if (it == calls.end() || it->second.socket != a.socket) {
                it = calls.end();
            } else {
                if (it->second.deadline) deadlines.erase({*it->second.deadline, it->first});
                done = std::move(it->second.done);
                calls.erase(it);
            }
        }
        if (!done) {  // a call that timed out or was cancelled meanwhile
            if (r.error == 0) (void)MessageBuilder::build(a.socket, r);  // returns the buffers
            return false;
        }
        if (r.error != 0) {
            done(Unexpected{r.error});
        } else {
            done(MessageBuilder::build(a.socket, r));
        }
        return true;
    }

    std::size_t drain(const Attached& a) {
        std::size_t ran = 0;
        runtime::Runtime& rt = a.socket->transport->runtime();
        // Stops when a callback detaches the socket, so no request reaches a
        // handler after its socket left the loop.
        for (int i = 0; i < batch && !a.detached; ++i) {
            // A zero timeout neither waits nor busy-polls.
            auto r = rt.receive(a.socket->id, 0, engine::Duration::zero());
            if (!r) break;  // EAGAIN: drained; ESHUTDOWN/EINVAL: closed
            if (dispatch(a, *r)) ++ran;
        }
        return ran;
    }

    std::size_t expire() {
        std::vector<Finished> expired;
        {
            std::lock_guard lock(mutex);
            const auto now = Clock::now();
            while (!deadlines.empty() && deadlines.begin()->first <= now) {
                const std::uint64_t token = deadlines.begin()->second;
                deadlines.erase(deadlines.begin());
                auto it = calls.find(token);
                if (it == calls.end()) continue;
                expired.push_back(
                    {std::move(it->second.socket), std::move(it->second.done), it->second.id});
                calls.erase(it);
            }
            rearm_locked();
        }
        abort_rpcs(expired);
        for (auto& f : expired) f.done(Unexpected{EAGAIN});
        return expired.size();
    }

    std::size_t run_cancelled() {
        std::vector<Finished> now;
        {
            std::lock_guard lock(mutex);
            now.swap(cancelled);
        }
        for (auto& f : now) f.done(Unexpected{ECANCELED});
        return now.size();
    }

    // The loop thread's wait. When it may sleep, the loop claims its sockets
    // (runtime.h, "External pollers"): the background thread leaves them
    // alone, the loop busy-polls them for poll_usecs and then sleeps on
    // their own descriptors as well as on their readiness eventfds, so a
    // packet wakes this thread only, which moves it itself: one thread hop
    // per message instead of two (background thread, then loop). Claims end
    // before any callback runs, so a slow callback never stalls the
    // protocol. Returns the number of events, or -errno.
    int wait_for_events(epoll_event (&events)[32], Timeout timeout) {
        using namespace std::chrono;
        const bool may_sleep = !timeout || timeout->count() > 0;
        const auto start = Clock::now();
        claimed.clear();
        if (may_sleep) {
            {
                std::lock_guard lock(mutex);
                for (const auto& [key, a] : attached) {
                    if (a->fds.count > 0 && !a->detached) claimed.push_back(a);
                }
            }
            std::erase_if(claimed, [](const std::shared_ptr<Attached>& a) {
                return !a->socket->transport->runtime().claim(a->socket->id);
            });
        }
        struct Unclaim {
            std::vector<std::shared_ptr<Attached>>& claimed;
            ~Unclaim() {
                for (const auto& a : claimed) a->socket->transport->runtime().unclaim(a->socket->id);
                claimed.clear();
            }
        } unclaim{claimed};
        auto poll_claimed = [&] {
            bool moved = false;
            for (const auto& a : claimed) {
                runtime::Runtime& rt = a->socket->transport->runtime();
                for (int k = 0; k < batch && rt.poll_socket(a->socket->id); ++k) moved = true;
            }
            return moved;
        };
        // What arrived before the claims (its edge may be gone): move it now;
        // from here on, every packet is a new edge that wakes us.
        poll_claimed();
        auto wait = [&](std::optional<nanoseconds> limit) {
            timespec ts{};
            if (limit) {
                const auto ns = std::max<std::int64_t>(limit->count(), 0);
                ts.tv_sec = static_cast<time_t>(ns / 1000000000);
                ts.tv_nsec = static_cast<long>(ns % 1000000000);
            }
            const int n = ::epoll_pwait2(epoll_fd, events, 32, limit ? &ts : nullptr, nullptr);
            if (n < 0) return errno == EINTR ? 0 : -errno;
            return n;
        };
        auto remaining = [&]() -> std::optional<nanoseconds> {
            if (!timeout) return std::nullopt;
            return std::max(nanoseconds(0), *timeout - duration_cast<nanoseconds>(Clock::now() - start));
        };
        if (!claimed.empty()) {
            // Busy-poll first, as receive() does.
            const auto window = microseconds(claimed.front()->socket->transport->runtime().poll_usecs());
            auto poll_end = Clock::now() + window;
            while (Clock::now() < poll_end) {
                const int n = wait(nanoseconds(0));
                if (n != 0) return n;
                if (timeout && remaining()->count() == 0) return 0;
                if (poll_claimed()) poll_end = Clock::now() + window;
            }
        }
        return wait(remaining());
    }

    Expected<std::size_t, int> run_once(Timeout timeout) {
        {
            std::lock_guard lock(mutex);
            if (closed) return Unexpected{EINVAL};
            if (running) return Unexpected{EBUSY};
            running = true;
            runner = std::this_thread::get_id();
        }
        struct Done {
            LoopShared& s;
            ~Done() {
                std::lock_guard lock(s.mutex);
                s.running = false;
                s.runner = {};
                s.changed.notify_all();
            }
        } done_guard{*this};

        epoll_event events[32];
        int n = wait_for_events(events, timeout);
        if (n < 0) return Unexpected{-n};
        std::vector<std::shared_ptr<Attached>> ready;
        for (int i = 0; i < n; ++i) {
            const std::uint64_t key = events[i].data.u64;
            std::uint64_t value = 0;
            if (key == wake_key) {
                [[maybe_unused]] auto r = ::read(wake_fd, &value, sizeof(value));
            } else if (key == timer_key) {
                [[maybe_unused]] auto r = ::read(timer_fd, &value, sizeof(value));
            } else {
                std::shared_ptr<Attached> a;
                {
                    std::lock_guard lock(mutex);
                    auto it = attached.find(key & ~packets_bit);
                    if (it != attached.end()) a = it->second;
                }
                if (!a) continue;
                if ((key & packets_bit) != 0) {
                    // Packets of a socket we had claimed: move them now.
                    runtime::Runtime& rt = a->socket->transport->runtime();
                    for (int k = 0; k < batch && rt.poll_socket(a->socket->id); ++k) {
                    }
                }
                ready.push_back(std::move(a));
            }
        }
        std::lock_guard callbacks(callback_mutex);
        std::size_t ran = 0;
        for (const auto& a : ready) ran += drain(*a);
        ran += expire();
        ran += run_cancelled();
        return ran;
    }

    // Ends the loop for good (~EventLoop).
    void close() {
        stop_requested = true;
        wake();
        std::vector<Finished> finished;
        std::map<std::uint64_t, std::shared_ptr<Attached>> gone;
        {
            std::unique_lock lock(mutex);
            closed = true;
            const auto me = std::this_thread::get_id();
            // Destroying the loop from its own callback is not allowed (see
            // the header); do not wait for ourselves then.
            changed.wait(lock, [&] { return (!running || runner == me) && sending == 0; });
            gone.swap(attached);
            for (const auto& [key, a] : gone) a->detached = true;
            for (const auto& [key, a] : gone) {
                ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, a->ready_fd, nullptr);
                for (std::size_t i = 0; i < a->fds.count; ++i)
                    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, a->fds.fds[i], nullptr);
            }
            finished.swap(cancelled);
            take_calls_locked(nullptr, finished);
        }
        for (const auto& [key, a] : gone) {
            std::lock_guard lock(a->socket->loop_mutex);
            a->socket->loop.reset();
        }
        abort_rpcs(finished);
        for (auto& f : finished) f.done(Unexpected{ECANCELED});
    }
};

void detach_from_loop(const std::shared_ptr<SocketShared>& socket) {
    std::shared_ptr<LoopShared> loop;
    {
        std::lock_guard lock(socket->loop_mutex);
        loop = socket->loop.lock();
        socket->loop.reset();
    }
    if (loop) (void)loop->detach(socket);
}

// ---------------------------------------------------------------------------
// EventLoop

Expected<EventLoop, int> EventLoop::create() {
    auto s = std::make_shared<LoopShared>();
    s->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (s->epoll_fd < 0) return Unexpected{errno};
    s->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0) return Unexpected{errno};
    s->timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->timer_fd < 0) return Unexpected{errno};
    for (auto [fd, key] : {std::pair{s->wake_fd, LoopShared::wake_key},
                           std::pair{s->timer_fd, LoopShared::timer_key}}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = key;
        if (::epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) return Unexpected{errno};
    }
    EventLoop loop;
    loop.shared_ = std::move(s);
    return loop;
}

EventLoop::EventLoop(EventLoop&& o) noexcept : shared_(std::move(o.shared_)) {}

EventLoop& EventLoop::operator=(EventLoop&& o) noexcept {
    if (this != &o) {
        if (shared_) shared_->close();
        shared_ = std::move(o.shared_);
    }
    return *this;
}

EventLoop::~EventLoop() {
    if (shared_) shared_->close();
}

Expected<std::monostate, int> EventLoop::add(Socket& socket, RequestHandler on_request) {
    if (!shared_ || !socket.shared_) return Unexpected{EINVAL};
    SocketShared& ss = *socket.shared_;
    auto ready = ss.transport->runtime().ready_fd(ss.id);
    if (!ready) return Unexpected{ready.error()};
    std::lock_guard socket_lock(ss.loop_mutex);
    if (auto old = ss.loop.lock(); old && !old->closed) return Unexpected{EINVAL};
    std::lock_guard lock(shared_->mutex);
    if (shared_->closed) return Unexpected{EINVAL};
    const std::uint64_t key = shared_->next_key++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    if (::epoll_ctl(shared_->epoll_fd, EPOLL_CTL_ADD, *ready, &ev) != 0) return Unexpected{errno};
    auto a = std::make_shared<LoopShared::Attached>();
    a->socket = socket.shared_;
    a->on_request = std::move(on_request);
    a->ready_fd = *ready;
    if (auto fds = ss.transport->runtime().socket_fds(ss.id)) {
        for (std::size_t i = 0; i < fds->count; ++i) {
            epoll_event pev{};
            pev.events = EPOLLIN | EPOLLET;
            pev.data.u64 = key | LoopShared::packets_bit;
            if (::epoll_ctl(shared_->epoll_fd, EPOLL_CTL_ADD, fds->fds[i], &pev) == 0) {
                a->fds.fds[a->fds.count++] = fds->fds[i];
            }
        }
    }
    shared_->attached[key] = std::move(a);
    ss.loop = shared_;
    return std::monostate{};
}

Expected<std::monostate, int> EventLoop::remove(Socket& socket) {
    if (!shared_ || !socket.shared_) return Unexpected{EINVAL};
    {
        std::lock_guard lock(socket.shared_->loop_mutex);
        if (socket.shared_->loop.lock() != shared_) return Unexpected{EINVAL};
        socket.shared_->loop.reset();
    }
    if (!shared_->detach(socket.shared_)) return Unexpected{EINVAL};
    return std::monostate{};
}

int EventLoop::fd() const {
    return shared_ ? shared_->epoll_fd : -1;
}

// run_once and run hold their own reference: the destructor may run in
// another thread as soon as the round ends (it waits for that), and must not
// free the state under the round's last steps.
Expected<std::size_t, int> EventLoop::run_once(Timeout timeout) {
    const auto s = shared_;
    if (!s) return Unexpected{EINVAL};
    return s->run_once(timeout);
}

Expected<std::monostate, int> EventLoop::run() {
    const auto s = shared_;
    if (!s) return Unexpected{EINVAL};
    while (!s->stop_requested.exchange(false)) {
        auto r = s->run_once(std::nullopt);
        if (!r) {
            if (s->closed) return std::monostate{};  // the loop was destroyed meanwhile
            return Unexpected{r.error()};
        }
    }
    return std::monostate{};
}

void EventLoop::stop() {
    if (!shared_) return;
    shared_->stop_requested = true;
    shared_->wake();
}

std::size_t EventLoop::pending_calls() const {
    if (!shared_) return 0;
    std::lock_guard lock(shared_->mutex);
    return shared_->calls.size();
}

// ---------------------------------------------------------------------------
// Socket's asynchronous calls

Expected<RpcId, int> Socket::call_async(const Endpoint& server, std::span<const std::byte> request,
                                        Completion done, Timeout timeout) {
    if (!shared_ || !done) return Unexpected{EINVAL};
    std::shared_ptr<LoopShared> loop;
    {
        std::lock_guard lock(shared_->loop_mutex);
        loop = shared_->loop.lock();
    }
    if (!loop) return Unexpected{EINVAL};
    std::uint64_t token = 0;
    {
        std::lock_guard lock(loop->mutex);
        if (loop->closed) return Unexpected{EINVAL};
        if (std::none_of(loop->attached.begin(), loop->attached.end(),
                         [&](const auto& kv) { return kv.second->socket == shared_; })) {
            return Unexpected{EINVAL};  // detached meanwhile
        }
        token = loop->next_token++;
        loop->calls.emplace(token, LoopShared::Call{shared_, std::move(done), 0, std::nullopt});
        ++loop->sending;
    }
    const std::optional<Clock::time_point> deadline =
        timeout ? std::optional(Clock::now() + std::max(*timeout, std::chrono::nanoseconds(0)))
                : std::nullopt;
    auto id = shared_->transport->runtime().send_request(shared_->id, to_engine(server), request,
                                                         token, false);
    std::lock_guard lock(loop->mutex);
    --loop->sending;
    loop->changed.notify_all();
    auto it = loop->calls.find(token);
    if (!id) {
        // No RPC, so no response can have completed the call: it is still here.
        if (it != loop->calls.end()) loop->calls.erase(it);
        return Unexpected{id.error()};
    }
    if (it == loop->calls.end()) return *id;  // already completed by the loop
    it->second.id = *id;
    if (deadline) {
        it->second.deadline = deadline;
        const bool earliest = loop->deadlines.empty() || *deadline < loop->deadlines.begin()->first;
        loop->deadlines.emplace(*deadline, token);
        if (earliest) loop->rearm_locked();
    }
    return *id;
}

std::future<Expected<Message, int>> Socket::call_future(const Endpoint& server,
                                                        std::span<const std::byte> request,
                                                        Timeout timeout) {
    auto promise = std::make_shared<std::promise<Expected<Message, int>>>();
    auto future = promise->get_future();
    auto started = call_async(
        server, request,
        [promise](Expected<Message, int> result) { promise->set_value(std::move(result)); },
        timeout);
    if (!started) promise->set_value(Expected<Message, int>(Unexpected{started.error()}));
    return future;
}

}  // namespace uhoma
