#include "runtime/runtime.h"
#include "trace/timetrace.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace uhoma::runtime {

namespace {

// Per-thread scratch for one pump: packets received and packets to send.
// Grows to the high-water mark once; no allocation per packet afterwards.
//
// Zero-copy transmit: under the engine lock only each packet's header (56
// bytes for DATA, less for control packets) is copied into tx_bytes, since
// the engine reuses its header buffer on the next call. A DATA payload stays
// where it is, in the RPC's message storage: `pending` keeps its span and
// `keep` the keep-alive reference the engine handed out (engine/types.h,
// Transmit; one per run of packets from the same message), so the bytes
// remain valid and unchanged after the lock is released even if the RPC is
// freed or aborted before the send. The driver gathers header and payload
// with one iovec each, and the references are dropped once the packets have
// been handed to the kernel (or dropped).
struct Arena {
    std::vector<driver::ReceivedPacket> received;
    std::vector<std::byte> tx_bytes;  // headers of pending packets, back to back
    struct Pending {
        std::size_t offset;  // of the header in tx_bytes
        std::size_t size;    // of the header
        std::span<const std::byte> payload;  // kept alive by an entry of `keep`
        engine::Endpoint destination;
        std::uint8_t priority;
    };
    std::vector<Pending> pending;
    std::vector<engine::Transmit> transmits;
    std::vector<std::shared_ptr<const void>> keep;  // message storage of pending payloads
};
thread_local Arena arena;

// This thread's send batch (Runtime::cork): the runtime whose sends it
// defers, and how many nested batches are open.
struct Cork {
    Runtime* owner = nullptr;
    int depth = 0;
};
thread_local Cork cork_state;

std::uint16_t source_port(std::span<const std::byte> homa) {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(homa[0]) << 8) |
                                      std::to_integer<unsigned>(homa[1]));
}

}  // namespace

engine::Instant Runtime::now() {
    const auto t = std::chrono::steady_clock::now().time_since_epoch();
    return engine::Instant(std::chrono::duration_cast<engine::Duration>(t));
}

Runtime::Runtime(const RuntimeOptions& options) : options_(options) {}

Expected<std::unique_ptr<Runtime>, std::string> Runtime::create(const RuntimeOptions& options) {
    RuntimeOptions adjusted = options;
    // Homa rides in UDP, or directly in IP.
    adjusted.config.encapsulation_bytes = options.driver == DriverKind::udp ? 8 : 0;
    if (options.driver == DriverKind::raw) {
        // Fail at creation, with the reason, rather than at the first socket.
        const int probe = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 146);
        if (probe < 0) {
            return Unexpected{std::string("driver=raw needs CAP_NET_RAW (raw IP protocol 146): ") +
                              std::strerror(errno)};
        }
        ::close(probe);
    }
    std::unique_ptr<Runtime> rt(new Runtime(adjusted));
    engine::EngineOptions eo;
    eo.local_address = options.ipv6 ? engine::Address{} : engine::Address::ipv4(0, 0, 0, 0);
    eo.first_client_id = options.first_client_id;
    if (eo.first_client_id == 0) {
        const auto t = static_cast<std::uint64_t>(now().time_since_epoch().count());
        eo.first_client_id = (std::uint64_t(::getpid()) << 40) + (((t >> 10) & 0x7FFFF) << 1) + 2;
    }
    auto engine = engine::Engine::create(rt->options_.config, eo);
    if (!engine) {
        return Unexpected{"invalid parameter " + engine.error().field + ": " +
                          engine.error().message};
    }
    rt->engine_ = std::move(*engine);
    rt->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    rt->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rt->epoll_fd_ < 0 || rt->wake_fd_ < 0) {
        return Unexpected{std::string("cannot create epoll/eventfd: ") + std::strerror(errno)};
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = rt->wake_fd_;
    ::epoll_ctl(rt->epoll_fd_, EPOLL_CTL_ADD, rt->wake_fd_, &ev);
    rt->thread_ = std::thread([r = rt.get()] { r->background_loop(); });
    return rt;
}

Runtime::~Runtime() {
    stop_ = true;
    wake_background();
    if (thread_.joinable()) thread_.join();
    std::vector<SocketId> ids;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [id, s] : sockets_) ids.push_back(id);
    }
    for (SocketId id : ids) close_socket(id);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Runtime::wake_background() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
}

ChannelOptions Runtime::channel_options() const {
    ChannelOptions o;
    o.driver = options_.driver;
    o.ipv6 = options_.ipv6;
    o.udp.receive_buffer = options_.socket_buffer_bytes;
    o.udp.send_buffer = options_.socket_buffer_bytes;
    o.udp.max_packet = std::max<std::size_t>(options_.config.mtu, 1500);
    o.raw.receive_buffer = options_.socket_buffer_bytes;
    o.raw.send_buffer = options_.socket_buffer_bytes;
    o.raw.max_packet = std::max<std::size_t>(options_.config.mtu, 1500);
    return o;
}

Runtime::Waker::~Waker() {
    if (fd >= 0) ::close(fd);
}

std::shared_ptr<Runtime::Waker> Runtime::thread_waker() {
    thread_local std::shared_ptr<Waker> waker;
    if (!waker) {
        const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) return nullptr;
        waker = std::make_shared<Waker>();
        waker->fd = fd;
    }
    return waker;
}

Runtime::Sleep Runtime::sleep_on(const Waker& waker, std::span<const int> socket_fds,
                                 std::optional<Duration> timeout) {
    std::array<pollfd, 3> fds{};
    fds[0] = pollfd{waker.fd, POLLIN, 0};
    std::size_t n = 1;
    for (const int fd : socket_fds) {
        if (n < fds.size()) fds[n++] = pollfd{fd, POLLIN, 0};
    }
    timespec ts{};
    if (timeout) {
        ts.tv_sec = static_cast<time_t>(timeout->count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout->count() % 1'000'000'000);
    }
    // ppoll is never restarted after a signal handler, whatever SA_RESTART
    // says (signal(7)), so EINTR reaches the caller.
    const int ready = ::ppoll(fds.data(), n, timeout ? &ts : nullptr, nullptr);
    Sleep result;
    if (ready < 0) {
        result.error = errno;
        return result;
    }
    if ((fds[0].revents & POLLIN) != 0) {
        std::uint64_t value;
        [[maybe_unused]] auto r = ::read(waker.fd, &value, sizeof(value));
    }
    for (std::size_t i = 1; i < n; ++i) result.packets |= fds[i].revents != 0;
    return result;
}

Runtime::SocketState::~SocketState() {
    if (event_fd >= 0) ::close(event_fd);
}

void Runtime::watch(const Channel& channel) {
    for (const int fd : channel.fds()) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    }
}

void Runtime::unwatch(const Channel& channel) {
    for (const int fd : channel.fds()) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Runtime::sync_watch(SocketState& state) {
    // watch_mutex orders the epoll_ctl calls of concurrent receivers, so the
    // last decision wins; mutex_ is taken inside it, never around it.
    std::lock_guard watch_lock(state.watch_mutex);
    bool want = false;
    {
        std::lock_guard lock(mutex_);
        want = state.watcher == nullptr && !state.closed && state.channel != nullptr &&
               now() >= state.lease_until;
    }
    if (want == state.watched) return;
    if (want) {
        watch(*state.channel);
    } else {
        unwatch(*state.channel);
    }
    state.watched = want;
}

std::shared_ptr<Runtime::SocketState> Runtime::find(SocketId socket) const {
    std::lock_guard lock(mutex_);
    auto it = sockets_.find(socket);
    return it == sockets_.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------------------
// Sockets

Expected<SocketId, int> Runtime::open_socket() {
    auto channel = Channel::open(0, channel_options());
    if (!channel) return Unexpected{channel.error()};
    auto state = std::make_shared<SocketState>();
    state->channel = std::move(*channel);
    const std::uint16_t port = state->channel->port();
    state->event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (state->event_fd < 0) return Unexpected{errno};
    {
        std::lock_guard lock(mutex_);
        auto id = engine_->open_socket(port);
        if (!id) {
            // The kernel's ephemeral range reaches below 0x8000.
            return Unexpected{id.error() == EINVAL ? EADDRNOTAVAIL : id.error()};
        }
        state->id = *id;
        sockets_[*id] = state;
        by_port_[port] = state;
    }
    sync_watch(*state);
    return state->id;
}

Expected<std::monostate, int> Runtime::bind(SocketId socket, std::uint16_t port) {
    auto state = find(socket);
    if (!state) return Unexpected{EINVAL};
    if (port == 0) return std::monostate{};
    if (port >= 0x8000) return Unexpected{EINVAL};
    auto channel = Channel::open(port, channel_options());
    if (!channel) return Unexpected{channel.error()};
    std::lock_guard rx(state->rx);
    std::lock_guard tx(state->tx);
    std::unique_ptr<Channel> old;
    {
        std::lock_guard lock(mutex_);
        auto bound = engine_->bind(socket, port);
        if (!bound) return Unexpected{bound.error()};
        by_port_.erase(state->channel->port());
        old = std::move(state->channel);
        state->channel = std::move(*channel);
        by_port_[port] = state;
    }
    {
        std::lock_guard watch_lock(state->watch_mutex);
        if (state->watched) {
            unwatch(*old);
            watch(*state->channel);
        }
    }
    return std::monostate{};
}

Expected<std::monostate, int> Runtime::set_server(SocketId socket, bool is_server) {
    std::lock_guard lock(mutex_);
    return engine_->set_server(socket, is_server);
}

Expected<std::monostate, int> Runtime::set_receive_buffer(SocketId socket,
                                                          std::span<std::byte> region) {
    std::lock_guard lock(mutex_);
    return engine_->set_receive_buffer(socket, region, now());
}

void Runtime::close_socket(SocketId socket) {
    std::shared_ptr<SocketState> state;
    Deferred deferred;
    {
        std::lock_guard lock(mutex_);
        auto it = sockets_.find(socket);
        if (it == sockets_.end()) return;
        state = it->second;
        sockets_.erase(it);
        by_port_.erase(state->channel->port());
        engine_->close_socket(socket, now());
        next_deadline_ns_.store(engine_->next_deadline().time_since_epoch().count(),
                                std::memory_order_release);
        state->closed = true;
        for (Waiter* w : state->waiters) {
            w->result = Expected<ReceivedMessage, int>(Unexpected{ESHUTDOWN});
            w->ready.store(true, std::memory_order_release);
            if (w->asleep) deferred.wake.push_back(w->waker);
        }
        state->waiters.clear();
    }
    finish(deferred);
    std::lock_guard rx(state->rx);  // no pump is receiving on the socket any more
    std::lock_guard tx(state->tx);  // nor sending
    {
        std::lock_guard watch_lock(state->watch_mutex);
        if (state->watched) unwatch(*state->channel);
        state->watched = false;
    }
    state->channel.reset();  // the eventfd closes with the last reference to `state`
}

std::optional<std::uint16_t> Runtime::port(SocketId socket) const {
    std::lock_guard lock(mutex_);
    return engine_->port(socket);
}

Expected<int, int> Runtime::ready_fd(SocketId socket) const {
    auto state = find(socket);
    if (!state) return Unexpected{EINVAL};
    return state->event_fd;
}

// ---------------------------------------------------------------------------
// RPCs

Expected<RpcId, int> Runtime::send_request(SocketId socket, const Endpoint& destination,
                                           std::span<const std::byte> message,
                                           std::uint64_t cookie, bool private_rpc) {
    flush_other_batch();
    Deferred deferred;
    Expected<RpcId, int> id = Unexpected{EINVAL};
    UHOMA_TT(now(), "send_request: start");
    {
        std::lock_guard lock(mutex_);
        const engine::Instant t = now();
        id = engine_->send_request(socket, destination, message, cookie, private_rpc, t);
        collect_transmits(t);
        after_engine_work(deferred, t);
    }
    UHOMA_TT(now(), "send_request: engine done");
    send_unless_corked();
    finish(deferred);
    UHOMA_TT(now(), "send_request: done");
    return id;
}

Expected<std::monostate, int> Runtime::send_reply(SocketId socket, const Endpoint& client,
                                                  RpcId id, std::span<const std::byte> message) {
    flush_other_batch();
    Deferred deferred;
    Expected<std::monostate, int> result = std::monostate{};
    UHOMA_TT(now(), "send_reply: start");
    {
        std::lock_guard lock(mutex_);
        const engine::Instant t = now();
        result = engine_->send_reply(socket, client, id, message, t);
        collect_transmits(t);
        after_engine_work(deferred, t);
    }
    UHOMA_TT(now(), "send_reply: engine done");
    send_unless_corked();
    finish(deferred);
    UHOMA_TT(now(), "send_reply: done");
    return result;
}

Expected<ReceivedMessage, int> Runtime::receive(SocketId socket, RpcId id,
                                                std::optional<Duration> timeout,
                                                bool interruptible) {
    UHOMA_TT(now(), "receive: start");
    flush_other_batch();
    auto state = find(socket);
    if (!state) return Unexpected{EINVAL};
    Waiter waiter;
    waiter.id = id;
    waiter.waker = thread_waker();
    if (!waiter.waker) return Unexpected{errno != 0 ? errno : ENOMEM};
    // A receive that may wait sends this thread's batch first: what it holds
    // may be what the awaited message depends on. (A zero-timeout receive,
    // as in a loop draining ready messages into a batch, does not.)
    if (!(timeout && timeout->count() <= 0) && !arena.pending.empty()) send_collected();
    {
        Deferred deferred;
        std::unique_lock lock(mutex_);
        const engine::Instant t = now();
        auto ready = engine_->receive(socket, id, t);
        if (!ready) return Unexpected{ready.error()};
        if (ready->has_value()) {
            after_engine_work(deferred, t);
            lock.unlock();
            finish(deferred);
            return std::move(**ready);
        }
        if (timeout && timeout->count() <= 0) return Unexpected{EAGAIN};
        if (state->closed) return Unexpected{ESHUTDOWN};

        state->waiters.push_back(&waiter);
        if (state->watcher == nullptr) state->watcher = &waiter;
    }
    // The first waiter watches the socket itself (busy-polling, then in its
    // sleep) and the background thread stops watching it: otherwise every
    // packet would also wake that thread, which then fights the waiter for
    // the socket and the engine (a context switch per packet when both run
    // on one core). When the watcher leaves, the background thread resumes.
    const bool watching = [&] {
        std::lock_guard lock(mutex_);
        return state->watcher == &waiter;
    }();
    if (watching) sync_watch(*state);
    bool slept = false;
    struct Unwatch {
        Runtime& runtime;
        SocketState& state;
        const Waiter& waiter;
        bool active;
        const bool& slept;
        ~Unwatch() {
            if (!active) return;
            // Only a waiter that never slept is in a busy-polling loop whose
            // next receive() is near.
            const auto lease = std::chrono::microseconds(slept ? 0 : runtime.options_.poll_usecs);
            {
                std::lock_guard lock(runtime.mutex_);
                if (state.watcher == &waiter) {
                    state.watcher = nullptr;
                    state.lease_until = now() + lease;
                }
            }
            // A busy-polling application keeps the socket (its lease) and the
            // background thread takes it back when the lease ends.
            if (lease.count() == 0) runtime.sync_watch(state);
        }
    } unwatch_on_exit{*this, *state, waiter, watching, slept};
    auto take = [&]() -> std::optional<Expected<ReceivedMessage, int>> {
        if (!waiter.result) return std::nullopt;
        return std::move(*waiter.result);
    };
    auto give_up = [&](int error) -> Expected<ReceivedMessage, int> {
        // Under mutex_: nobody can hand us a message any more.
        auto& ws = state->waiters;
        ws.erase(std::remove(ws.begin(), ws.end(), &waiter), ws.end());
        return Unexpected{error};
    };
    // Busy-poll first: pump ourselves, so a reply that arrives soon costs no
    // wake-up (spec 2.5, perf #13). After a sleep that packets ended, poll
    // again: traffic is flowing (a long message arriving, grants coming
    // back), and sleeping after every batch would cost a wake-up (~40 us
    // across cores here) per batch instead of one per burst.
    const engine::Instant deadline = timeout ? now() + *timeout : engine::never;
    const auto poll_window = std::chrono::microseconds(options_.poll_usecs);
    std::unique_lock lock(mutex_, std::defer_lock);
    bool poll = true;
    for (;;) {
        if (poll) {
            SpinningWaiter spinning(*this);
            // The window restarts whenever packets move: a watcher is its
            // socket's packet processor, and should not fall asleep in the
            // middle of a burst it is serving.
            engine::Instant poll_end = now() + poll_window;
            for (engine::Instant t = now(); t < poll_end && t < deadline; t = now()) {
                const bool moved = watching ? pump_watched(*state, t) : pump();
                if (moved) poll_end = t + poll_window;
                if (waiter.ready.load(std::memory_order_acquire)) {
                    UHOMA_TT(now(), "receive: ready");
                    lock.lock();
                    if (auto r = take()) return std::move(*r);
                    lock.unlock();
                }
            }
        }
        lock.lock();
        if (waiter.result) break;
        std::optional<Duration> remaining;
        if (deadline != engine::never) {
            remaining = deadline - now();
            if (remaining->count() <= 0) return give_up(EAGAIN);
        }
        // Sleep on the socket as well as the waker: a packet wakes this
        // thread directly, which then pumps it itself. Otherwise a reply
        // would cost two wake-ups in series (the background thread's, then
        // ours), each ~40 us across cores here.
        std::array<int, 2> socket_fds{-1, -1};
        std::size_t socket_fd_count = 0;
        if (state->watcher == &waiter && state->channel) {
            for (const int fd : state->channel->fds()) socket_fds[socket_fd_count++] = fd;
        }
        waiter.asleep = true;
        slept = true;
        lock.unlock();
        UHOMA_TT(now(), "receive: socket %u id %llu sleeps", socket, id);
        const Sleep woke =
            sleep_on(*waiter.waker, std::span(socket_fds.data(), socket_fd_count), remaining);
        UHOMA_TT(now(), "receive: socket %u id %llu wakes (packets %u)", socket, id, woke.packets);
        if (woke.packets) pump();
        lock.lock();
        waiter.asleep = false;
        if (waiter.result) break;
        if (woke.error == EINTR && interruptible) return give_up(EINTR);
        if (woke.error != 0 && woke.error != EINTR) return give_up(woke.error);
        lock.unlock();
        poll = woke.packets && options_.poll_usecs > 0;
    }
    return std::move(*take());
}

Expected<std::monostate, int> Runtime::release_bpages(SocketId socket,
                                                      std::span<const std::uint32_t> offsets) {
    Deferred deferred;
    Expected<std::monostate, int> result = std::monostate{};
    UHOMA_TT(now(), "release_bpages: start");
    flush_other_batch();
    {
        std::lock_guard lock(mutex_);
        const engine::Instant t = now();
        result = engine_->release_bpages(socket, offsets, t);
        collect_transmits(t);  // freed buffers may send RESENDs to waiting senders
        after_engine_work(deferred, t);
    }
    send_unless_corked();
    finish(deferred);
    return result;
}

Expected<std::monostate, int> Runtime::abort(SocketId socket, RpcId id, int error) {
    Deferred deferred;
    Expected<std::monostate, int> result = std::monostate{};
    {
        std::lock_guard lock(mutex_);
        const engine::Instant t = now();
        result = engine_->abort(socket, id, error, t);
        after_engine_work(deferred, t);
    }
    finish(deferred);
    return result;
}

Expected<engine::SocketInfo, int> Runtime::socket_info(SocketId socket,
                                                      std::size_t max_rpcs) const {
    std::lock_guard lock(mutex_);
    return engine_->socket_info(socket, max_rpcs);
}

engine::Metrics Runtime::metrics() const {
    std::lock_guard lock(mutex_);
    return engine_->metrics();
}

std::size_t Runtime::rpc_count() const {
    std::lock_guard lock(mutex_);
    return engine_->rpc_count();
}

// ---------------------------------------------------------------------------
// External pollers

Expected<Runtime::SocketFds, int> Runtime::socket_fds(SocketId socket) const {
    auto state = find(socket);
    if (!state) return Unexpected{EINVAL};
    std::lock_guard rx(state->rx);  // bind() swaps the channel under it
    if (!state->channel) return Unexpected{EINVAL};
    SocketFds out;
    for (const int fd : state->channel->fds()) {
        if (out.count < out.fds.size()) out.fds[out.count++] = fd;
    }
    return out;
}

bool Runtime::claim(SocketId socket) {
    auto state = find(socket);
    if (!state) return false;
    {
        std::lock_guard lock(mutex_);
        if (state->closed || state->watcher != nullptr) return false;
        state->watcher = &state->external;
        state->external.asleep = true;  // no busy-polling lease, no 1 ms cap
    }
    sync_watch(*state);
    return true;
}

void Runtime::unclaim(SocketId socket) {
    auto state = find(socket);
    if (!state) return;
    {
        std::lock_guard lock(mutex_);
        if (state->watcher != &state->external) return;
        state->watcher = nullptr;
        state->lease_until = engine::Instant{};
    }
    sync_watch(*state);
}

bool Runtime::poll_socket(SocketId socket) {
    auto state = find(socket);
    if (!state) return false;
    Deferred deferred;
    const bool moved = pump_socket(*state, deferred);
    run_due_timers(deferred, now());
    send_collected();
    finish(deferred);
    return moved;
}

// ---------------------------------------------------------------------------
// Send batches

bool Runtime::cork() {
    if (cork_state.depth > 0 && cork_state.owner != this) return false;
    cork_state.owner = this;
    ++cork_state.depth;
    return true;
}

void Runtime::uncork() {
    if (cork_state.owner != this || cork_state.depth == 0) return;
    if (--cork_state.depth == 0) {
        cork_state.owner = nullptr;
        send_collected();
    }
}

void Runtime::flush_batch() {
    if (cork_state.owner == this) send_collected();
}

void Runtime::send_unless_corked() {
    if (cork_state.depth > 0 && cork_state.owner == this) return;
    send_collected();
}

void Runtime::flush_other_batch() {
    // The arena is per thread, not per runtime: packets another runtime's
    // batch holds must leave through that runtime before this one adds its
    // own (it is alive: its SendBatch holds its Transport).
    if (cork_state.depth > 0 && cork_state.owner != this && !arena.pending.empty()) {
        cork_state.owner->send_collected();
    }
}

// ---------------------------------------------------------------------------
// Moving packets

bool Runtime::pump_socket(SocketState& state, Deferred& deferred) {
    std::unique_lock rx(state.rx, std::try_to_lock);
    if (!rx.owns_lock() || !state.channel) return false;
    arena.received.clear();
    auto got = state.channel->receive(
        [](const driver::ReceivedPacket& p) { arena.received.push_back(p); });
    if (!got || arena.received.empty()) return false;
    UHOMA_TT(now(), "pump: %u packets received on port %u", arena.received.size(), state.channel->port());
    std::lock_guard lock(mutex_);
    const engine::Instant t = now();
    for (const auto& p : arena.received) engine_->handle_packet(p.bytes, p.source, t);
    collect_transmits(t);
    after_engine_work(deferred, t);
    UHOMA_TT(now(), "pump: engine done");
    return true;
}

bool Runtime::run_due_timers(Deferred& deferred, engine::Instant t) {
    // Timers (and the pacer, whose releases are deadlines too), only when
    // one is due: an idle busy-poll round then costs one recvmmsg per
    // socket and no engine lock.
    if (t.time_since_epoch().count() < next_deadline_ns_.load(std::memory_order_acquire)) {
        return false;
    }
    std::lock_guard lock(mutex_);
    bool fired = false;
    if (engine_->next_deadline() <= t) {
        engine_->handle_timeout(t);
        fired = true;
    }
    collect_transmits(t);
    after_engine_work(deferred, t);
    return fired;
}

bool Runtime::pump(bool skip_owned) {
    // A per-thread snapshot of the sockets, reused so pumping allocates
    // nothing in steady state.
    thread_local std::vector<std::shared_ptr<SocketState>> states;
    states.clear();
    {
        std::lock_guard lock(mutex_);
        const engine::Instant t = skip_owned ? now() : engine::Instant{};
        for (const auto& [id, s] : sockets_) {
            // The background thread leaves a socket to the application
            // thread watching it or holding its lease: taking its packets
            // would only make the two threads fight over one CPU.
            if (skip_owned && (s->watcher != nullptr || t < s->lease_until)) continue;
            states.push_back(s);
        }
    }
    bool moved = false;
    Deferred deferred;
    for (const auto& state : states) moved |= pump_socket(*state, deferred);
    moved |= run_due_timers(deferred, now());
    moved |= !arena.pending.empty();
    send_collected();
    finish(deferred);
    states.clear();  // keep no closed socket alive between pumps
    return moved;
}

bool Runtime::pump_watched(SocketState& state, engine::Instant t) {
    // The watcher's busy-poll round: only its own socket (the background
    // thread serves the others), and no lock unless a packet or a timer
    // needs the engine. Every extra nanosecond here is half a nanosecond of
    // average latency added to each message the waiter is waiting for.
    Deferred deferred;
    bool moved = pump_socket(state, deferred);
    moved |= run_due_timers(deferred, t);
    moved |= !arena.pending.empty();
    send_collected();
    finish(deferred);
    return moved;
}

void Runtime::collect_transmits(engine::Instant t) {
    while (auto tx = engine_->poll_transmit(t)) {
        const std::size_t offset = arena.tx_bytes.size();
        arena.tx_bytes.insert(arena.tx_bytes.end(), tx->header.begin(), tx->header.end());
        arena.pending.push_back(
            {offset, tx->header.size(), tx->payload, tx->destination, tx->priority});
        // Consecutive DATA packets of one message share one reference.
        if (tx->keep && (arena.keep.empty() || arena.keep.back() != tx->keep)) {
            arena.keep.push_back(std::move(tx->keep));
        }
    }
}

void Runtime::send_collected() {
    if (arena.pending.empty()) return;
    // Group runs of packets from the same local port into one send call
    // each, so the driver can batch (sendmmsg) and use GSO.
    std::size_t i = 0;
    while (i < arena.pending.size()) {
        const auto sport = source_port(
            std::span(arena.tx_bytes).subspan(arena.pending[i].offset, arena.pending[i].size));
        std::size_t j = i;
        arena.transmits.clear();
        while (j < arena.pending.size()) {
            const auto& p = arena.pending[j];
            const auto header = std::span<const std::byte>(arena.tx_bytes).subspan(p.offset, p.size);
            if (source_port(header) != sport) break;
            arena.transmits.push_back(
                engine::Transmit{p.destination, p.priority, header, p.payload, nullptr});
            ++j;
        }
        std::shared_ptr<SocketState> state;
        {
            std::lock_guard lock(mutex_);
            auto it = by_port_.find(sport);
            if (it != by_port_.end()) state = it->second;
        }
        if (state) {
            // The driver's send arrays belong to the socket, so senders on
            // one socket take turns (never holding the engine lock).
            std::lock_guard tx(state->tx);
            // A full socket buffer drops the rest; Homa recovers them by
            // retransmission, like packets lost in the network.
            UHOMA_TT(now(), "send: %u packets from port %u", arena.transmits.size(), sport);
            if (state->channel) (void)state->channel->send(arena.transmits);
        }
        i = j;
    }
    arena.pending.clear();
    arena.tx_bytes.clear();
    // Frees the messages of RPCs that ended while their packets were pending.
    arena.keep.clear();
}

void Runtime::after_engine_work(Deferred& deferred, engine::Instant t) {
    // Every engine call ends here, so the cached deadline is never later
    // than the engine's (pump reads it without the lock).
    next_deadline_ns_.store(engine_->next_deadline().time_since_epoch().count(),
                            std::memory_order_release);
    while (auto c = engine_->poll_completion()) {
        auto it = sockets_.find(c->socket);
        if (it == sockets_.end()) continue;
        SocketState& s = *it->second;
        auto& ws = s.waiters;
        auto w = ws.end();
        for (auto k = ws.rbegin(); k != ws.rend(); ++k) {  // most recent waiter first
            if ((c->private_rpc && (*k)->id == c->id) || (!c->private_rpc && (*k)->id == 0)) {
                w = std::next(k).base();
                break;
            }
        }
        if (w == ws.end()) continue;
        auto r = engine_->receive(s.id, (*w)->id, t);
        if (!r) {
            (*w)->result = Expected<ReceivedMessage, int>(Unexpected{r.error()});
        } else if (r->has_value()) {
            (*w)->result = std::move(**r);
        } else {
            continue;
        }
        (*w)->ready.store(true, std::memory_order_release);
        // Woken after mutex_ is released; the Waker outlives the Waiter.
        if ((*w)->asleep) deferred.wake.push_back((*w)->waker);
        ws.erase(w);
    }
    for (auto& [id, s] : sockets_) {
        const bool readable = engine_->readable(id);
        if (readable != s->event_signaled) {
            s->event_signaled = readable;
            deferred.eventfds.emplace_back(s, readable);
        }
    }
}

void Runtime::finish(Deferred& deferred) {
    for (const auto& waker : deferred.wake) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(waker->fd, &one, sizeof(one));
    }
    deferred.wake.clear();
    for (const auto& [state, signal] : deferred.eventfds) {
        const int fd = state->event_fd;
        std::uint64_t value = 1;
        if (signal) {
            [[maybe_unused]] auto n = ::write(fd, &value, sizeof(value));
        } else {
            [[maybe_unused]] auto n = ::read(fd, &value, sizeof(value));
        }
    }
    deferred.eventfds.clear();
}

Runtime::SpinningWaiter::SpinningWaiter(Runtime& runtime) : runtime_(runtime) {
    runtime_.spinning_waiters_.fetch_add(1);
}

Runtime::SpinningWaiter::~SpinningWaiter() {
    // The background thread left the timers to us while we polled; if it
    // now sleeps past the next deadline, wake it to take them back.
    if (runtime_.spinning_waiters_.fetch_sub(1) != 1) return;
    const std::int64_t wake = runtime_.background_wake_ns_.load();
    if (wake != 0 && runtime_.next_deadline_ns_.load() < wake) runtime_.wake_background();
}

// Leases. A busy-polling application calls receive() back to back; if each
// return handed the socket back to the background thread and each call took
// it again, every receive would cost two epoll_ctl, and packets arriving in
// between (a request's echo of a GRANT, the next request) would wake the
// background thread, which then competes with the application for its CPU.
// Worse, on this kind of VM a socket with any entry on its wait queue makes
// every packet sent from or delivered to it pay for a wake-up walk: with
// the socket in no epoll set, 8 outstanding 100 B RPCs went from 114 k to
// 186 k RPC/s. So in busy-poll mode (poll_usecs > 0) a leaving watcher keeps
// the socket for poll_usecs; the background thread ends the lease on its
// next wake-up after that (it caps its sleep at one tick while any socket is
// leased or watched by a busy-polling waiter, so a socket whose application
// stops receiving is watched again within ~1 ms), then pumps it. A waiter
// that went to sleep takes no lease: its application is not polling hard,
// and an idle process should not wake every millisecond.
engine::Instant Runtime::end_expired_leases() {
    thread_local std::vector<std::shared_ptr<SocketState>> expired;
    expired.clear();
    engine::Instant next = engine::never;
    {
        std::lock_guard lock(mutex_);
        const engine::Instant t = now();
        for (const auto& [id, s] : sockets_) {
            if (s->closed) continue;
            if (s->watcher != nullptr) {
                // A busy-polling waiter may leave (and start a lease) while
                // we sleep; a sleeping one will not take a lease.
                if (options_.poll_usecs > 0 && !s->watcher->asleep) {
                    next = std::min(next, t + std::chrono::milliseconds(1));
                }
                continue;
            }
            if (s->lease_until == engine::Instant{}) continue;
            if (t >= s->lease_until) {
                s->lease_until = engine::Instant{};
                expired.push_back(s);
            } else {
                next = std::min(next, s->lease_until);
            }
        }
    }
    for (const auto& s : expired) sync_watch(*s);
    expired.clear();
    return next;
}

void Runtime::background_loop() {
    // Not poll_usecs: that is how long a *receiver* spins, and a large value
    // (busy-polling applications) would keep this thread spinning forever.
    const auto background_spin = std::chrono::microseconds(std::min<std::uint32_t>(options_.poll_usecs, 50));
    epoll_event events[16];
    while (!stop_) {
        const engine::Instant lease_end = end_expired_leases();
        engine::Instant deadline;
        {
            std::lock_guard lock(mutex_);
            deadline = engine_->next_deadline();
            next_deadline_ns_.store(deadline.time_since_epoch().count(), std::memory_order_release);
        }
        const engine::Instant t = now();
        engine::Duration wait = std::chrono::milliseconds(100);
        // While an application thread busy-polls, it runs due timers (and the
        // pacer) itself: spinning here too would only take half of its CPU.
        // It wakes us when it stops polling with a deadline we would miss.
        // Only near deadlines (the pacer's) are left to it; a far one (the
        // tick) we sleep until as usual.
        const bool delegated = spinning_waiters_.load() > 0 && deadline - t < background_spin;
        if (delegated) {
            wait = std::chrono::milliseconds(1);
        } else if (deadline != engine::never) {
            wait = std::clamp(deadline - t, engine::Duration{0}, wait);
        }
        if (lease_end != engine::never) {
            // A lease ending is not urgent: never spin for it.
            wait = std::min(wait, std::max(lease_end - t, engine::Duration(background_spin)));
        }
        // A deadline closer than a wake-up costs (the pacer releasing the
        // next burst, typically a few us away) is met by spinning: sleeping
        // would cost tens of us per burst and cap throughput far below the
        // link (network-lab.md: a cross-core wake-up is ~40 us here).
        if (wait < background_spin) {
            pump(true);
            continue;
        }
        // Announce the wake-up time, then look again (seq_cst on both sides,
        // as in stop_polling): a waiter that stopped polling meanwhile either
        // sees this time or we see it gone.
        background_wake_ns_.store((t + wait).time_since_epoch().count());
        if (delegated && spinning_waiters_.load() == 0 && deadline < t + wait) {
            background_wake_ns_.store(0);
            continue;
        }
        timespec ts{static_cast<time_t>(wait.count() / 1000000000),
                    static_cast<long>(wait.count() % 1000000000)};
        const int n = ::epoll_pwait2(epoll_fd_, events, 16, &ts, nullptr);
        background_wake_ns_.store(0);
        if (stop_) break;
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == wake_fd_) {
                std::uint64_t value;
                [[maybe_unused]] auto r = ::read(wake_fd_, &value, sizeof(value));
            }
        }
        for (int rounds = 0; rounds < 64 && pump(true); ++rounds) {
        }
    }
}

}  // namespace uhoma::runtime
