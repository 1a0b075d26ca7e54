// The process's control endpoint: metrics and timetrace of every runtime in
// this process, on demand, through the control socket (api/control.h).
//
// Design notes
// ------------
// One endpoint per process. The socket is named by the pid, so a process
// has one, however many runtimes it runs (a C++ program may create several
// Transports; the C API has one runtime). Runtimes attach when they are
// created (Transport::create, the C API's first socket) and detach when
// destroyed; the first attach starts the ControlServer, the last detach
// stops it and removes the socket file. "metrics" sums the engines' counters,
// as Linux sums its cores, so a process reads like one Homa host.
//
// Commands (answered as control.h describes):
//   metrics      the homa_metrics text (engine/metrics.h), summed over runtimes
//   timetrace    the timetrace dump (trace/timetrace.h); empty if nothing recorded
//   freeze       stop recording the timetrace (keeps its contents); unfreeze
//   trace-on     start recording (as UHOMA_TIMETRACE=1); trace-off; trace-clear
//   info         "pid N", "runtimes N", "timetrace on|off[ frozen]", "rings N"
//
// Environment, read at each attach: UHOMA_CONTROL=0 (or off/no/false)
// disables the endpoint; UHOMA_RUN_DIR moves the socket directory (default
// /tmp/uhoma); UHOMA_TIMETRACE=1 switches the timetrace on. A socket that
// cannot be created (read-only /tmp, say) does not fail the runtime: the
// reason is printed once on stderr and the process runs without endpoint.
//
// Lifetime. Two locks: `lifecycle` serializes attach/detach and the
// server's start and stop; `state` guards the list of runtimes and is the
// only lock the command handlers take, so stopping the server (joining its
// thread) under `lifecycle` cannot deadlock with a running handler. A
// runtime detaches before it is destroyed, and detaching waits for a
// running "metrics" (it takes `state`), so handlers never see a dead
// runtime. At exit the socket file is removed even if a runtime is never
// destroyed (the C API's is not). After fork() the child forgets the
// parent's runtimes and server (the server's thread does not exist in the
// child); its own first runtime starts a new endpoint under its own pid.
#pragma once

#include <memory>
#include <string>

namespace uhoma::runtime {
class Runtime;
}

namespace uhoma::api {

// Registers `runtime` with the process's control endpoint, starting the
// endpoint if this is the first; the handle detaches it when destroyed
// (destroy it before the runtime). Returns an empty handle when the
// endpoint is disabled or could not be created. Never fails otherwise.
std::shared_ptr<void> attach_control(runtime::Runtime& runtime);

// The socket path of this process's endpoint, or "" when none runs.
std::string control_socket_path();

}  // namespace uhoma::api
