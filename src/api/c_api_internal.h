// What the LD_PRELOAD shim (preload.cc) needs from the C API (c_api.cc)
// beyond <uhoma/uhoma_c.h>: which descriptors are uhoma sockets, and the
// socket's O_NONBLOCK flag, which uhoma keeps itself (see c_api.cc).
#pragma once

namespace uhoma::capi {

// Whether fd is a uhoma socket. Costs one atomic load while the process has
// no uhoma socket, so the shim can ask on every close().
bool owns(int fd);

// The socket's O_NONBLOCK flag: 1 set, 0 clear, -1 if fd is not a uhoma
// socket.
int nonblocking(int fd);

// Sets or clears the socket's O_NONBLOCK flag. Returns false if fd is not a
// uhoma socket.
bool set_nonblocking(int fd, bool on);

}  // namespace uhoma::capi
