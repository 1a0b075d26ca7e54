// uhoma-perf: shared pieces of the benchmark tool (options, clocks, CPU
// accounting, statistics, the result line).
//
// Design notes
// ------------
// Every measurement has a server side and a client side in separate
// processes, so the script can put them in different namespaces and pin
// them to different CPUs with taskset. Homa, UDP and TCP run through the
// same measurement code (the same clock reads, the same percentile code, the
// same message framing), so their figures compare directly.
//
// Framing. Every request starts with an 8-byte header: the request length
// and the length of the response the server must send (u32 little-endian
// each), inside the request's `size` bytes. The server needs no size
// options and replies exactly as the client asked, over every protocol; a
// 100-byte request is 100 bytes of payload on every transport.
//
// Output. The client prints human-readable lines and exactly one line that
// starts with "RESULT " followed by key=value pairs; the server prints
// "READY port=P" once it listens and a RESULT line when it stops (SIGTERM,
// SIGINT or --seconds). Nothing is printed inside a timed loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace uhoma::perf {

enum class Test { pingpong, stream, rate };
enum class Proto { homa, udp, tcp };
enum class Wake { deflt, busy, block };

struct Config {
    Test test = Test::pingpong;
    bool server = false;
    Proto proto = Proto::homa;
    Wake wake = Wake::deflt;
    std::string address;     // client: server address (no port)
    std::uint16_t port = 0;  // server: 0 picks one; client: the server's port
    std::size_t size = 100;
    std::size_t response_size = 0;  // 0: per test (pingpong/rate: size, stream: 8)
    std::size_t concurrency = 1;
    std::uint64_t iterations = 20000;
    std::uint64_t warmup = 2000;  // pingpong: warm-up round trips
    double seconds = 3.0;         // stream/rate client: timed window
    double warmup_seconds = 0.5;  // stream/rate client: before the window
    double server_seconds = 0.0;  // server: stop after this long (0: never)
    // homa poll_usecs in --wake busy. Not "forever": the runtime's background
    // thread also spins whenever its next deadline is nearer than poll_usecs,
    // so a huge value makes it spin on the same CPU as the application
    // thread (p99 RTT of milliseconds: they share the CPU in scheduler
    // slices). 200 us covers any round trip of the pingpong test.
    std::uint32_t busy_poll_usecs = 200;
    std::vector<std::pair<std::string, std::string>> params;  // homa --param
    int cpu = -1;
    bool metrics = false;  // homa: print Transport::metrics_text() at the end
    // homa stream/rate: answer (server) or replace (client) every message
    // that is ready in one SendBatch; --no-batch sends each at once.
    bool batch = true;
    // homa server: serve from an EventLoop (include/uhoma/async.h) with a
    // request handler, instead of receive()/reply().
    bool async_server = false;
};

const char* name(Test t);
const char* name(Proto p);
const char* name(Wake w);

// Set by SIGTERM/SIGINT (and the server's --seconds); loops poll it.
extern std::atomic<bool> stop_requested;

std::int64_t now_ns();  // CLOCK_MONOTONIC
double cpu_seconds();   // user + system time of the whole process

// Header helpers (see Framing).
constexpr std::size_t header_bytes = 8;
void write_header(std::uint8_t* buffer, std::uint32_t length, std::uint32_t response_length);
// The response length a request asks for, or nullopt-like -1 if malformed.
std::int64_t response_length(const std::uint8_t* buffer, std::size_t available);
std::uint32_t request_length(const std::uint8_t* buffer);

struct Percentiles {
    double p50_us = 0, p99_us = 0, p999_us = 0, mean_us = 0, min_us = 0, max_us = 0;
};
Percentiles percentiles(std::vector<std::int64_t>& samples_ns);  // sorts

// A RESULT line under construction.
class Result {
  public:
    explicit Result(const Config& config);
    Result& add(const std::string& key, const std::string& value);
    Result& add(const std::string& key, double value);
    Result& add(const std::string& key, std::uint64_t value);
    void print() const;  // to stdout, flushed

  private:
    std::string line_;
};

// Prints "uhoma-perf: <message>" to stderr; returns 1 (exit status).
int fail(const std::string& message);

void print_ready(std::uint16_t port);

// CPU accounting of a server over the span of its traffic: from the first
// message to the last, so idle time before and after does not count.
class ServerWindow {
  public:
    void on_message(std::size_t bytes, bool sample_cpu);
    void print(const Config& config) const;

  private:
    std::uint64_t messages_ = 0;
    std::uint64_t bytes_ = 0;  // after the first message
    double first_cpu_ = 0, last_cpu_ = 0;
    std::int64_t first_ns_ = 0, last_ns_ = 0;
};

// The timed window of a stream or rate client: warm-up first, then
// --seconds of completions. The window opens at the first completion after
// the warm-up and closes at the first one after its end.
class ClientWindow {
  public:
    explicit ClientWindow(const Config& config);
    // Call once per completed RPC; false once the window has closed (stop
    // issuing new RPCs).
    bool on_completion();
    bool closed() const { return closed_; }
    // Prints the human line and the RESULT line.
    void report(const Config& config) const;

  private:
    std::int64_t warm_end_ns_, end_ns_;
    bool started_ = false, closed_ = false;
    std::int64_t t0_ = 0, t1_ = 0;
    double cpu0_ = 0, cpu1_ = 0;
    std::uint64_t count_ = 0;
};

// Prints the human line and the RESULT line of a pingpong client.
void report_pingpong(const Config& config, std::vector<std::int64_t>& samples_ns, double cpu_s);

// Entry points, by protocol.
int run_homa(const Config& config);
int run_socket(const Config& config);  // udp and tcp

}  // namespace uhoma::perf
