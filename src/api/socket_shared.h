// What transport.cc (Socket, Message) and async.cc (EventLoop) share: the
// state behind a Socket and the conversion of received messages.
#pragma once

#include <memory>
#include <mutex>

#include "engine/engine.h"
#include "uhoma/transport.h"

namespace uhoma {

struct LoopShared;

// Shared by a Socket and the Messages received on it, so the receive region
// stays mapped (and the socket open) while any message still points into it.
// An EventLoop the socket is attached to also holds it.
struct SocketShared {
    std::shared_ptr<Transport> transport;
    engine::SocketId id = 0;
    std::byte* region = nullptr;
    std::size_t region_bytes = 0;
    // The EventLoop the socket is attached to, if any.
    std::mutex loop_mutex;
    std::weak_ptr<LoopShared> loop;
    ~SocketShared();
};

engine::Endpoint to_engine(const Endpoint& e);
Endpoint from_engine(const engine::Endpoint& e);

// Turns what the runtime received into a Message owning its bpages.
struct MessageBuilder {
    // `r` must be a success (r.error == 0).
    static Message build(const std::shared_ptr<SocketShared>& socket,
                         const engine::ReceivedMessage& r);
};

// Detaches the socket from its loop, if any (async.cc). Pending calls
// complete with ECANCELED on the loop thread.
void detach_from_loop(const std::shared_ptr<SocketShared>& socket);

}  // namespace uhoma
