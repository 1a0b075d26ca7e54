// uhoma-perf: Homa vs UDP vs TCP microbenchmarks (latency, one-way
// throughput with CPU cost, small-RPC rate). Usage: see usage() below and
// docs/benchmarks-transport.md. Design notes are in perf.h.
#include <sched.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include "uhoma-perf/perf.h"

namespace uhoma::perf {

std::atomic<bool> stop_requested{false};

const char* name(Test t) {
    switch (t) {
        case Test::pingpong:
            return "pingpong";
        case Test::stream:
            return "stream";
        case Test::rate:
            return "rate";
    }
    return "?";
}
const char* name(Proto p) {
    switch (p) {
        case Proto::homa:
            return "homa";
        case Proto::udp:
            return "udp";
        case Proto::tcp:
            return "tcp";
    }
    return "?";
}
const char* name(Wake w) {
    switch (w) {
        case Wake::deflt:
            return "default";
        case Wake::busy:
            return "busy";
        case Wake::block:
            return "block";
    }
    return "?";
}

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

namespace {
void put32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(p[i]) << (8 * i);
    return v;
}
}  // namespace

void write_header(std::uint8_t* buffer, std::uint32_t length, std::uint32_t response_length) {
    put32(buffer, length);
    put32(buffer + 4, response_length);
}

std::int64_t response_length(const std::uint8_t* buffer, std::size_t available) {
    if (available < header_bytes) return -1;
    return get32(buffer + 4);
}

std::uint32_t request_length(const std::uint8_t* buffer) {
    return get32(buffer);
}

Percentiles percentiles(std::vector<std::int64_t>& samples) {
    Percentiles p;
    if (samples.empty()) return p;
    std::sort(samples.begin(), samples.end());
    auto at = [&](double q) {
        auto i = static_cast<std::size_t>(q * double(samples.size() - 1) + 0.5);
        return double(samples[std::min(i, samples.size() - 1)]) / 1000.0;
    };
    double sum = 0;
    for (auto s : samples) sum += double(s);
    p.p50_us = at(0.50);
    p.p99_us = at(0.99);
    p.p999_us = at(0.999);
    p.mean_us = sum / double(samples.size()) / 1000.0;
    p.min_us = double(samples.front()) / 1000.0;
    p.max_us = double(samples.back()) / 1000.0;
    return p;
}

Result::Result(const Config& c) {
    line_ = std::string("RESULT test=") + name(c.test) +
            " role=" + (c.server ? "server" : "client") + " proto=" + name(c.proto) +
            " wake=" + name(c.wake);
}
Result& Result::add(const std::string& key, const std::string& value) {
    line_ += " " + key + "=" + value;
    return *this;
}
Result& Result::add(const std::string& key, double value) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.6g", value);
    return add(key, std::string(text));
}
Result& Result::add(const std::string& key, std::uint64_t value) {
    return add(key, std::to_string(value));
}
void Result::print() const {
    std::printf("%s\n", line_.c_str());
    std::fflush(stdout);
}

int fail(const std::string& message) {
    std::fprintf(stderr, "uhoma-perf: %s\n", message.c_str());
    return 1;
}

void print_ready(std::uint16_t port) {
    std::printf("READY port=%u\n", unsigned(port));
    std::fflush(stdout);
}

void ServerWindow::on_message(std::size_t bytes, bool sample_cpu) {
    const std::int64_t t = now_ns();
    const double cpu = sample_cpu ? cpu_seconds() : 0.0;
    if (messages_ == 0) {
        first_ns_ = t;
        first_cpu_ = cpu;
    } else {
        bytes_ += bytes;
    }
    last_ns_ = t;
    last_cpu_ = cpu;
    ++messages_;
}

void ServerWindow::print(const Config& config) const {
    Result r(config);
    r.add("messages", messages_).add("bytes", bytes_);
    const double seconds = double(last_ns_ - first_ns_) / 1e9;
    r.add("window_s", seconds);
    if (config.test == Test::stream) {
        const double cpu = last_cpu_ - first_cpu_;
        r.add("cpu_s", cpu);
        r.add("cpu_s_per_gb", bytes_ > 0 ? cpu / (double(bytes_) / 1e9) : 0.0);
    }
    r.add("cpu_total_s", cpu_seconds());
    r.print();
}

ClientWindow::ClientWindow(const Config& config) {
    const std::int64_t t = now_ns();
    warm_end_ns_ = t + static_cast<std::int64_t>(config.warmup_seconds * 1e9);
    end_ns_ = warm_end_ns_ + static_cast<std::int64_t>(config.seconds * 1e9);
}

bool ClientWindow::on_completion() {
    if (closed_) return false;
    const std::int64_t t = now_ns();
    if (!started_) {
        if (t >= warm_end_ns_) {
            started_ = true;
            t0_ = t;
            cpu0_ = cpu_seconds();
        }
        return true;
    }
    ++count_;
    t1_ = t;
    if (t >= end_ns_) {
        closed_ = true;
        cpu1_ = cpu_seconds();
    }
    return !closed_;
}

void ClientWindow::report(const Config& c) const {
    const double seconds = double(t1_ - t0_) / 1e9;
    const double per_second = seconds > 0 ? double(count_) / seconds : 0.0;
    const double bytes = double(count_) * double(c.size);
    const double cpu = cpu1_ - cpu0_;
    Result r(c);
    r.add("size", std::uint64_t(c.size)).add("concurrency", std::uint64_t(c.concurrency));
    r.add("rpcs", count_).add("seconds", seconds).add("rpcs_per_s", per_second);
    r.add("gbps", seconds > 0 ? bytes * 8 / seconds / 1e9 : 0.0);
    r.add("cpu_s", cpu).add("cpu_s_per_gb", bytes > 0 ? cpu / (bytes / 1e9) : 0.0);
    std::printf(
        "%s %s (%s): %llu RPCs of %zu B in %.3f s: %.0f RPCs/s, %.3f Gbit/s, "
        "client CPU %.3f s (%.3f CPU-s/GB)\n",
        name(c.test), name(c.proto), name(c.wake), static_cast<unsigned long long>(count_), c.size,
        seconds, per_second, seconds > 0 ? bytes * 8 / seconds / 1e9 : 0.0, cpu,
        bytes > 0 ? cpu / (bytes / 1e9) : 0.0);
    r.print();
}

void report_pingpong(const Config& c, std::vector<std::int64_t>& samples, double cpu_s) {
    const std::uint64_t n = samples.size();
    const Percentiles p = percentiles(samples);
    std::printf(
        "pingpong %s (%s): %llu round trips of %zu B: RTT p50 %.2f us, p99 %.2f us, "
        "p99.9 %.2f us, mean %.2f us, min %.2f us\n",
        name(c.proto), name(c.wake), static_cast<unsigned long long>(n), c.size, p.p50_us, p.p99_us,
        p.p999_us, p.mean_us, p.min_us);
    Result r(c);
    r.add("size", std::uint64_t(c.size)).add("iterations", n);
    r.add("p50_us", p.p50_us).add("p99_us", p.p99_us).add("p999_us", p.p999_us);
    r.add("mean_us", p.mean_us).add("min_us", p.min_us).add("max_us", p.max_us);
    r.add("cpu_s", cpu_s);
    r.print();
}

namespace {

const char* const usage_text =
    "usage: uhoma-perf TEST server|client [options]\n"
    "  TEST: pingpong (RTT of --size byte RPCs, one at a time),\n"
    "        stream (one-way --size messages, --concurrency outstanding; Gbit/s, CPU/GB),\n"
    "        rate (small RPCs with --concurrency outstanding; RPCs/s)\n"
    "  --proto homa|udp|tcp   (udp: pingpong only)            default homa\n"
    "  --wake busy|block|default  busy: spin (homa poll_usecs=--busy-poll-usecs,\n"
    "                         sockets recv(MSG_DONTWAIT)); block: sleep (homa\n"
    "                         poll_usecs=0); default: homa's configured poll_usecs,\n"
    "                         blocking sockets\n"
    "  server: --port P (0 picks one; printed as READY port=P), --seconds S (stop after S)\n"
    "  client: --server ADDR:PORT, --size B (100; stream 1000000), --response-size B,\n"
    "          --concurrency K (1; stream 4), --iterations N (20000), --warmup N (2000),\n"
    "          --seconds S (3), --warmup-seconds S (0.5)\n"
    "  both:   --cpu N (pin), --param NAME=VALUE (homa parameter, repeatable),\n"
    "          --busy-poll-usecs U (200), --metrics (homa: print the\n"
    "          transport's counters at the end), --no-batch (homa stream/rate:\n"
    "          send each reply/request at once instead of one SendBatch per\n"
    "          group of ready messages), --async (homa server: an EventLoop\n"
    "          with a request handler instead of receive()/reply())\n";

bool parse_number(std::string_view text, double& out) {
    std::string s(text);
    char* end = nullptr;
    errno = 0;
    out = std::strtod(s.c_str(), &end);
    return !s.empty() && *end == '\0' && errno == 0 && out >= 0;
}

}  // namespace

}  // namespace uhoma::perf

using namespace uhoma::perf;

namespace {
extern "C" void on_signal(int) {
    stop_requested = true;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
        std::fputs(usage_text, stdout);
        return 0;
    }
    if (argc < 3) {
        std::fprintf(stderr,
                     "uhoma-perf: usage: uhoma-perf pingpong|stream|rate server|client "
                     "[options] (see --help)\n");
        return 2;
    }
    Config c;
    const std::string_view test = argv[1];
    if (test == "pingpong") {
        c.test = Test::pingpong;
    } else if (test == "stream") {
        c.test = Test::stream;
        c.size = 1000000;
        c.concurrency = 4;
    } else if (test == "rate") {
        c.test = Test::rate;
        c.concurrency = 8;
    } else {
        std::fprintf(stderr, "uhoma-perf: unknown test '%s' (pingpong, stream, rate)\n", argv[1]);
        return 2;
    }
    const std::string_view role = argv[2];
    if (role != "server" && role != "client") {
        std::fprintf(stderr, "uhoma-perf: second argument must be server or client, not '%s'\n",
                     argv[2]);
        return 2;
    }
    c.server = role == "server";
    bool have_server = false;
    for (int i = 3; i < argc; ++i) {
        const std::string_view opt = argv[i];
        if (opt == "-h" || opt == "--help") {
            std::fputs(usage_text, stdout);
            return 0;
        }
        if (opt == "--no-batch") {
            c.batch = false;
            continue;
        }
        if (opt == "--metrics") {
            c.metrics = true;
            continue;
        }
        if (opt == "--async") {
            c.async_server = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "uhoma-perf: %s needs a value\n", argv[i]);
            return 2;
        }
        const std::string_view value = argv[++i];
        double number = 0;
        auto need_number = [&](double max) {
            if (!parse_number(value, number) || number > max) {
                std::fprintf(stderr, "uhoma-perf: %s: bad value '%s'\n", argv[i - 1], argv[i]);
                std::exit(2);
            }
        };
        if (opt == "--proto") {
            if (value == "homa")
                c.proto = Proto::homa;
            else if (value == "udp")
                c.proto = Proto::udp;
            else if (value == "tcp")
                c.proto = Proto::tcp;
            else {
                std::fprintf(stderr, "uhoma-perf: --proto must be homa, udp or tcp\n");
                return 2;
            }
        } else if (opt == "--wake") {
            if (value == "busy")
                c.wake = Wake::busy;
            else if (value == "block")
                c.wake = Wake::block;
            else if (value == "default")
                c.wake = Wake::deflt;
            else {
                std::fprintf(stderr, "uhoma-perf: --wake must be busy, block or default\n");
                return 2;
            }
        } else if (opt == "--port") {
            need_number(65535);
            c.port = static_cast<std::uint16_t>(number);
        } else if (opt == "--server") {
            const auto colon = value.rfind(':');
            double port = 0;
            if (colon == std::string_view::npos || !parse_number(value.substr(colon + 1), port) ||
                port < 1 || port > 65535) {
                std::fprintf(stderr, "uhoma-perf: --server must be ADDR:PORT\n");
                return 2;
            }
            c.address = std::string(value.substr(0, colon));
            c.port = static_cast<std::uint16_t>(port);
            have_server = true;
        } else if (opt == "--size") {
            need_number(1000000);
            c.size = static_cast<std::size_t>(number);
        } else if (opt == "--response-size") {
            need_number(1000000);
            c.response_size = static_cast<std::size_t>(number);
        } else if (opt == "--concurrency") {
            need_number(4096);
            c.concurrency = static_cast<std::size_t>(number);
        } else if (opt == "--iterations") {
            need_number(1e9);
            c.iterations = static_cast<std::uint64_t>(number);
        } else if (opt == "--warmup") {
            need_number(1e9);
            c.warmup = static_cast<std::uint64_t>(number);
        } else if (opt == "--seconds") {
            need_number(1e6);
            (c.server ? c.server_seconds : c.seconds) = number;
        } else if (opt == "--warmup-seconds") {
            need_number(1e6);
            c.warmup_seconds = number;
        } else if (opt == "--busy-poll-usecs") {
            need_number(4e9);
            c.busy_poll_usecs = static_cast<std::uint32_t>(number);
        } else if (opt == "--cpu") {
            need_number(1023);
            c.cpu = static_cast<int>(number);
        } else if (opt == "--param") {
            const auto eq = value.find('=');
            if (eq == std::string_view::npos || eq == 0) {
                std::fprintf(stderr, "uhoma-perf: --param must be NAME=VALUE\n");
                return 2;
            }
            c.params.emplace_back(std::string(value.substr(0, eq)),
                                  std::string(value.substr(eq + 1)));
        } else {
            std::fprintf(stderr, "uhoma-perf: unknown option %s (see --help)\n", argv[i - 1]);
            return 2;
        }
    }
    if (!c.server && !have_server) {
        std::fprintf(stderr, "uhoma-perf: the client needs --server ADDR:PORT\n");
        return 2;
    }
    if (c.proto == Proto::udp && c.test != Test::pingpong) {
        std::fprintf(stderr, "uhoma-perf: --proto udp supports pingpong only\n");
        return 2;
    }
    if (c.size < header_bytes) {
        std::fprintf(stderr, "uhoma-perf: --size must be at least %zu\n", header_bytes);
        return 2;
    }
    if (c.response_size == 0) c.response_size = c.test == Test::stream ? 8 : c.size;
    if (c.proto == Proto::udp && (c.size > 65000 || c.response_size > 65000)) {
        std::fprintf(stderr, "uhoma-perf: udp messages must fit one datagram (<= 65000)\n");
        return 2;
    }
    if (c.concurrency == 0) {
        std::fprintf(stderr, "uhoma-perf: --concurrency must be at least 1\n");
        return 2;
    }
    if (c.cpu >= 0) {
        // Before any thread exists, so the runtime's threads inherit it.
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<std::size_t>(c.cpu), &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            std::fprintf(stderr, "uhoma-perf: cannot pin to CPU %d: %s\n", c.cpu,
                         std::strerror(errno));
            return 1;
        }
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;  // no SA_RESTART: blocking calls return EINTR
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    if (c.server && c.server_seconds > 0) {
        // A timer signal ends the server like SIGTERM.
        sigaction(SIGALRM, &sa, nullptr);
        itimerval it{};
        it.it_value.tv_sec = static_cast<time_t>(c.server_seconds);
        it.it_value.tv_usec =
            static_cast<suseconds_t>((c.server_seconds - double(it.it_value.tv_sec)) * 1e6);
        setitimer(ITIMER_REAL, &it, nullptr);
    }
    return c.proto == Proto::homa ? run_homa(c) : run_socket(c);
}
