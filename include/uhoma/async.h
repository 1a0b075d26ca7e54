// uhoma's asynchronous C++ API: an event loop for event-driven servers and
// clients.
//
//   auto loop = uhoma::EventLoop::create().value();
//   auto server = uhoma::Socket::open(transport, 4000).value();
//   loop.add(server, [&server](uhoma::Message request) {
//       (void)server.reply(request, request.to_vector());
//   });
//   auto client = uhoma::Socket::open(transport).value();
//   loop.add(client);
//   client.call_async(server_endpoint, bytes, [](uhoma::Expected<uhoma::Message, int> r) {...});
//   auto future = client.call_future(server_endpoint, bytes, std::chrono::seconds(1));
//   loop.run();                              // or run_once() from your own epoll loop
//
// Design notes
// ------------
// One epoll descriptor per loop. It watches each attached socket's readiness
// eventfd (Socket::ready_fd), a timerfd armed for the earliest call deadline,
// and an eventfd that stop() and other threads use to wake the loop. Being an
// epoll descriptor, fd() is itself pollable, so a loop nests inside an
// application's own epoll/poll loop: when fd() is readable, run_once(0ns)
// has work, and it never blocks.
//
// One thread hop. When run_once may wait, the loop claims its sockets from
// the runtime (its background thread then leaves them alone), busy-polls
// them for the transport's poll_usecs and then sleeps on their own
// descriptors too (also in its epoll set, edge-triggered): a packet wakes
// the loop's thread only, which moves it itself, as a thread waiting in
// Socket::receive() does. Measured against uhoma-perf pingpong on veth
// (--async server): 8 us per busy-polled round trip against 32 us when the
// background thread received and then woke the loop. Claims end before any
// callback runs, so a slow callback never holds up the protocol. Nested in
// an outer loop (run_once(0ns)), the loop claims nothing and the background
// thread receives, as before.
//
// Matching responses to calls. An attached socket's shared messages all go
// to the loop, which drains them without waiting (the runtime's receive with
// a zero timeout, which neither blocks nor busy-polls, so an idle loop sleeps
// in epoll and costs nothing). Each call_async gets a loop-unique token that
// travels as the RPC's completion cookie; Homa returns the cookie with the
// response and also with a failure (spec 2.5, 2.6), so the loop finds the
// call by cookie even when the response is processed before call_async,
// running on another thread, has learnt the RpcId. The RpcId is kept for
// aborting. Responses whose call is gone (timed out, cancelled) are dropped
// and their buffers returned.
//
// Deadlines. A call's optional timeout is a deadline on the loop's timerfd
// (so an outer epoll loop also wakes for it). When it passes first, the RPC
// is aborted silently (runtime abort with error 0: the server is not told)
// and the callback gets EAGAIN, the same error Socket::call returns when its
// timeout passes first. ETIMEDOUT thus keeps its Homa meaning: the transport
// gave up on the peer (timeout_ticks without an answer).
//
// Cancellation. Calls still pending when their socket leaves the loop
// (remove(), or the Socket is destroyed or assigned) complete with ECANCELED
// on the loop thread during its next run_once; calls still pending when the
// loop is destroyed complete with ECANCELED inside the destructor, on the
// destroying thread. Their RPCs are aborted. Every call_async whose start
// succeeded gets exactly one callback.
//
// Threads. Callbacks (request handlers and completions) run one at a time
// on the thread inside run_once()/run(), with no uhoma lock held: they may
// call any Socket or EventLoop function (reply, call_async, add, remove,
// stop), except destroying the loop or waiting on a call_future of the same
// loop (which would deadlock: only the loop thread completes it). They must
// not throw.
//   * Any thread: add, remove, stop, fd, pending_calls, and Socket::call_async
//     / call_future on attached sockets.
//   * One thread at a time: run_once / run (another thread gets EBUSY).
//   * The destructor stops the loop and waits for a run()/run_once() in
//     another thread to return first.
// A socket belongs to at most one loop. While it is attached the loop takes
// all its shared messages: do not call Socket::receive on it elsewhere, and
// expect no one to see the response to a plain send_request on it (the loop
// drops responses it has no call for). Socket::call (a private RPC) and
// Socket::reply work as usual.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "uhoma/expected.h"
#include "uhoma/transport.h"

namespace uhoma {

class EventLoop {
  public:
    // Called with each request that arrives on a server socket. Reply with
    // Socket::reply (now or later, from any thread); the Message keeps its
    // buffers until destroyed.
    using RequestHandler = std::function<void(Message request)>;

    // Errors: errno from epoll_create1, eventfd or timerfd_create (EMFILE,
    // ENFILE, ENOMEM).
    static Expected<EventLoop, int> create();
    EventLoop(EventLoop&&) noexcept;
    EventLoop& operator=(EventLoop&&) noexcept;
    // Stops the loop, waits for a running run()/run_once() to return, then
    // completes every pending call with ECANCELED (see design notes) and
    // detaches every socket.
    ~EventLoop();

    // Attaches `socket`: its requests go to `on_request` (dropped if it is
    // empty: only client sockets should be attached without one), and its
    // call_async/call_future completions run on this loop.
    // Errors: EINVAL (moved-from loop or socket, or the socket is already
    // attached to a loop), errno from epoll_ctl (ENOMEM, ENOSPC).
    Expected<std::monostate, int> add(Socket& socket, RequestHandler on_request = {});
    // Detaches `socket`; its pending calls complete with ECANCELED during
    // the loop's next run_once. Called from a thread other than the loop's,
    // it waits until no callback of the loop is running, so the handler is
    // not running on return. Errors: EINVAL (not attached to this loop).
    Expected<std::monostate, int> remove(Socket& socket);

    // The loop's epoll descriptor, for an outer epoll/poll loop: readable
    // while run_once(0ns) has something to do. -1 for a moved-from loop.
    int fd() const;
    // Waits up to `timeout` (nullopt: until something happens; zero: not at
    // all) for work, then receives every ready message of the attached
    // sockets, fires expired deadlines and runs the callbacks. Returns how
    // many callbacks it ran. A stop() ends the wait early.
    // Errors: EINVAL (moved-from loop), EBUSY (another thread is running the
    // loop, or called from one of its callbacks), errno from epoll_pwait2
    // other than EINTR (which counts as an empty round).
    Expected<std::size_t, int> run_once(Timeout timeout = std::nullopt);
    // Runs rounds until stop() (or the loop's destruction in another
    // thread). A stop() that comes while no run() is in progress makes the
    // next run() return at once. Errors: as run_once.
    Expected<std::monostate, int> run();
    // Makes run() return (and a waiting run_once return early) soon. Any
    // thread, including callbacks; never blocks.
    void stop();
    // Calls started and not yet completed, on all attached sockets.
    std::size_t pending_calls() const;

  private:
    friend class Socket;
    EventLoop() = default;
    std::shared_ptr<struct LoopShared> shared_;
};

}  // namespace uhoma
