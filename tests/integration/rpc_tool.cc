// rpc_tool: the program uhoma's integration tests run on loopback and inside
// network namespaces. Three modes:
//
//   rpc_tool server --port P [--port-tries N] [--seconds S] [--param NAME=VALUE]...
//       An echo server that checks every request byte for byte before
//       echoing it. Prints "rpc_tool server: listening on port P" once the
//       socket is open (with --port-tries it tries P, P+1, ... on
//       EADDRINUSE). On SIGTERM/SIGINT, or after S seconds, prints one
//       summary line and then Transport::metrics_text(), and exits 0.
//
//   rpc_tool client --server ADDR:PORT [--count N] [--seconds S]
//                   [--workload w4] [--seed N] [--concurrency K]
//                   [--stall-ms MS] [--param NAME=VALUE]...
//       Runs N RPCs (or as many as fit in S seconds; with both, whichever
//       ends first) with K outstanding at a time. Request lengths are drawn
//       from the workload with std::mt19937(seed), one draw per RPC in issue
//       order; payloads are derived from (seed, RPC index), so both sides
//       can regenerate and check every byte. Prints one summary line (see
//       Summary below) and exits 0 when every RPC completed and verified,
//       1 otherwise (the line is printed either way), 2 on bad usage or
//       setup errors.
//
//   rpc_tool flood --target ADDR:PORT --seconds S [--rate N] [--seed N] [--raw]
//                  [--data-rpcs]
//       Sends garbage to the target for S seconds, as fast as it can or at N
//       datagrams per second: random
//       datagrams of 0..1500 random bytes, and "valid-header garbage": Homa
//       packets encoded correctly (every type, random ids, the target port)
//       then truncated, given a field the decoder rejects (dport 0, an
//       unknown type), or left well-formed for RPCs the target does not
//       have. Well-formed DATA would start server RPCs, so DATA is always
//       corrupted unless --data-rpcs. With --raw the datagrams go out as IP
//       protocol 146 instead of UDP, with the target's port written into
//       the Homa dport field (the raw driver's filter drops anything else).
//       Prints "rpc_tool flood: datagrams=N ..." and exits 0.
//
// Payload format (both sides regenerate it): a request of L >= 16 bytes is
// "UHRT" (4 bytes), L (u32 little-endian), key (u64 little-endian), then a
// splitmix64 stream seeded with the key; a shorter one is the first L bytes
// of the stream seeded with L alone. The key is a hash of (seed, index).
// The echo server checks the header and the stream; the client checks that
// the response equals the request it sent.
//
// Times in the summary (first_failure_ns, ...) are CLOCK_MONOTONIC
// nanoseconds, the clock std::chrono::steady_clock reads, shared by every
// process and namespace on the machine, so a test can compare them with the
// moment it killed a server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "uhoma/transport.h"
#include "wire/codec.h"
#include "workload/workload.h"

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) {
    g_stop.store(true);
}

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
}

std::string errno_name(int err) {
    const char* name = ::strerrorname_np(err);
    return name != nullptr ? std::string(name) : std::to_string(err);
}

// ---------------------------------------------------------------------------
// Payloads

constexpr std::size_t kHeader = 16;
constexpr std::uint8_t kMagic[4] = {'U', 'H', 'R', 'T'};

std::uint64_t splitmix(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::uint64_t key_for(std::uint64_t seed, std::uint64_t index) {
    std::uint64_t s = seed * 0x100000001B3ull + index;
    return splitmix(s);
}

void fill_stream(std::span<std::byte> out, std::uint64_t seed) {
    std::uint64_t state = seed;
    std::size_t i = 0;
    for (; i + 8 <= out.size(); i += 8) {
        const std::uint64_t w = splitmix(state);
        std::memcpy(out.data() + i, &w, 8);
    }
    if (i < out.size()) {
        const std::uint64_t w = splitmix(state);
        std::memcpy(out.data() + i, &w, out.size() - i);
    }
}

void store_le(std::byte* p, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

std::uint64_t load_le(const std::byte* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
        v |= std::uint64_t{std::to_integer<std::uint8_t>(p[i])} << (8 * i);
    return v;
}

void fill_payload(std::span<std::byte> out, std::uint64_t key) {
    if (out.size() < kHeader) {
        fill_stream(out, 0x5EED0000ull + out.size());
        return;
    }
    std::memcpy(out.data(), kMagic, 4);
    store_le(out.data() + 4, out.size(), 4);
    store_le(out.data() + 8, key, 8);
    fill_stream(out.subspan(kHeader), key);
}

// Checks a request as the server sees it: header consistent with its
// length, stream as the key says. `scratch` is reused between calls.
bool verify_request(std::span<const std::byte> bytes, std::vector<std::byte>& scratch) {
    scratch.resize(bytes.size());
    if (bytes.size() >= kHeader) {
        if (std::memcmp(bytes.data(), kMagic, 4) != 0) return false;
        if (load_le(bytes.data() + 4, 4) != bytes.size()) return false;
        fill_payload(scratch, load_le(bytes.data() + 8, 8));
    } else {
        fill_payload(scratch, 0);
    }
    return bytes.empty() || std::memcmp(bytes.data(), scratch.data(), bytes.size()) == 0;
}

// ---------------------------------------------------------------------------
// Arguments

struct Args {
    std::string mode;
    std::map<std::string, std::string> values;
    std::vector<std::pair<std::string, std::string>> params;
    bool raw = false;
    bool data_rpcs = false;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(
        stderr,
        "rpc_tool: %s\n"
        "usage: rpc_tool server --port P [--port-tries N] [--seconds S] [--param N=V]...\n"
        "       rpc_tool client --server ADDR:PORT [--count N] [--seconds S] "
        "[--workload W] [--seed N] [--concurrency K] [--stall-ms MS] [--param N=V]...\n"
        "       rpc_tool flood --target ADDR:PORT --seconds S [--rate N] [--seed N] [--raw] "
        "[--data-rpcs]\n",
        why);
    std::exit(2);
}

Args parse_args(int argc, char** argv) {
    if (argc < 2) usage("no mode");
    Args a;
    a.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--raw") {
            a.raw = true;
        } else if (arg == "--data-rpcs") {
            a.data_rpcs = true;
        } else if (arg.rfind("--", 0) == 0 && i + 1 < argc) {
            const std::string value = argv[++i];
            if (arg == "--param") {
                const auto eq = value.find('=');
                if (eq == std::string::npos) usage("--param needs NAME=VALUE");
                a.params.emplace_back(value.substr(0, eq), value.substr(eq + 1));
            } else {
                a.values[arg.substr(2)] = value;
            }
        } else {
            usage(("bad argument: " + arg).c_str());
        }
    }
    return a;
}

std::uint64_t number(const Args& a, const std::string& name, std::uint64_t fallback) {
    auto it = a.values.find(name);
    if (it == a.values.end()) return fallback;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0') usage(("--" + name + ": not a number").c_str());
    return v;
}

double real(const Args& a, const std::string& name, double fallback) {
    auto it = a.values.find(name);
    if (it == a.values.end()) return fallback;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0' || !(v >= 0))
        usage(("--" + name + ": bad number").c_str());
    return v;
}

std::shared_ptr<uhoma::Transport> make_transport(const Args& a) {
    uhoma::Options options;
    options.parameters = a.params;
    auto t = uhoma::Transport::create(options);
    if (!t) {
        std::fprintf(stderr, "rpc_tool: Transport::create: %s\n", t.error().c_str());
        std::exit(2);
    }
    return *t;
}

// ---------------------------------------------------------------------------
// Server

int run_server(const Args& a) {
    const auto first_port = number(a, "port", 0);
    const auto tries = std::max<std::uint64_t>(1, number(a, "port-tries", 1));
    const double seconds = real(a, "seconds", 0);
    if (first_port == 0 || first_port >= 0x8000) usage("--port must be 1..32767");
    auto transport = make_transport(a);
    std::optional<uhoma::Socket> socket;
    std::uint64_t port = first_port;
    for (std::uint64_t i = 0; i < tries && port < 0x8000; ++i, ++port) {
        auto s = uhoma::Socket::open(transport, static_cast<std::uint16_t>(port));
        if (s) {
            socket.emplace(std::move(*s));
            break;
        }
        if (s.error() != EADDRINUSE) {
            std::fprintf(stderr, "rpc_tool server: cannot open port %llu: %s\n",
                         static_cast<unsigned long long>(port), errno_name(s.error()).c_str());
            return 2;
        }
    }
    if (!socket) {
        std::fprintf(stderr, "rpc_tool server: no free port from %llu\n",
                     static_cast<unsigned long long>(first_port));
        return 2;
    }
    install_signal_handlers();
    std::printf("rpc_tool server: listening on port %u\n", socket->port());
    std::fflush(stdout);

    const std::int64_t end = seconds > 0 ? now_ns() + static_cast<std::int64_t>(seconds * 1e9) : 0;
    std::uint64_t requests = 0, verify_failures = 0, reply_errors = 0, bytes = 0;
    std::map<int, std::uint64_t> receive_errors;
    std::vector<std::byte> scratch;
    while (!g_stop.load() && (end == 0 || now_ns() < end)) {
        auto m = socket->receive(std::chrono::milliseconds(50));
        if (!m) {
            if (m.error() != EAGAIN) ++receive_errors[m.error()];
            continue;
        }
        ++requests;
        const auto data = m->to_vector();
        bytes += data.size();
        if (!verify_request(data, scratch)) {
            if (++verify_failures <= 5) {
                std::fprintf(
                    stderr,
                    "rpc_tool server: request %llu from %s (%zu bytes) fails verification\n",
                    static_cast<unsigned long long>(m->id()), m->peer().to_string().c_str(),
                    data.size());
            }
        }
        if (auto r = socket->reply(*m, data); !r) ++reply_errors;
    }
    std::string errors;
    for (const auto& [err, n] : receive_errors) {
        errors += (errors.empty() ? "" : ",") + errno_name(err) + ":" + std::to_string(n);
    }
    std::printf(
        "rpc_tool server: requests=%llu bytes=%llu verify_failures=%llu reply_errors=%llu "
        "receive_errors=%s\n",
        static_cast<unsigned long long>(requests), static_cast<unsigned long long>(bytes),
        static_cast<unsigned long long>(verify_failures),
        static_cast<unsigned long long>(reply_errors), errors.empty() ? "none" : errors.c_str());
    std::printf("%s", transport->metrics_text().c_str());
    std::fflush(stdout);
    return 0;
}

// ---------------------------------------------------------------------------
// Client

// Explains on stderr how a response differs from its request: where the
// bytes first differ, how many 1 KiB blocks differ, and whose payload the
// wrong bytes are (a stream of another RPC index, or of no known key).
void describe_mismatch(const uhoma::Message& m, const std::vector<std::byte>& expected,
                       std::uint64_t index, std::int64_t start_ns, std::int64_t run_start_ns,
                       std::uint64_t seed) {
    const auto got = m.to_vector();
    std::size_t first = std::min(got.size(), expected.size());
    for (std::size_t i = 0; i < std::min(got.size(), expected.size()); ++i) {
        if (got[i] != expected[i]) {
            first = i;
            break;
        }
    }
    std::size_t bad_blocks = 0, last_bad = 0;
    for (std::size_t b = 0; b * 1024 < std::min(got.size(), expected.size()); ++b) {
        const std::size_t n = std::min<std::size_t>(1024, got.size() - b * 1024);
        if (std::memcmp(got.data() + b * 1024, expected.data() + b * 1024, n) != 0) {
            ++bad_blocks;
            last_bad = b * 1024 + n;
        }
    }
    std::string whose = "unknown";
    if (got.size() >= kHeader && std::memcmp(got.data(), kMagic, 4) == 0) {
        const std::uint64_t key = load_le(got.data() + 8, 8);
        for (std::uint64_t j = index > 100000 ? index - 100000 : 0; j < index + 100000; ++j) {
            if (key_for(seed, j) == key) {
                whose = "header of rpc " + std::to_string(j);
                break;
            }
        }
    }
    std::fprintf(stderr,
                 "rpc_tool client: rpc %llu (sent at +%.1f ms, response at +%.1f ms): response "
                 "of %zu bytes differs from the %zu-byte request: first difference at byte %zu, "
                 "%zu of %zu KiB blocks differ, last bad byte %zu, response carries %s\n",
                 static_cast<unsigned long long>(index),
                 static_cast<double>(start_ns - run_start_ns) / 1e6,
                 static_cast<double>(now_ns() - run_start_ns) / 1e6, got.size(), expected.size(),
                 first, bad_blocks, (expected.size() + 1023) / 1024, last_bad, whose.c_str());
}

int run_client(const Args& a) {
    auto server_it = a.values.find("server");
    if (server_it == a.values.end()) usage("client needs --server ADDR:PORT");
    auto server = uhoma::Endpoint::parse(server_it->second);
    if (!server) usage(server.error().c_str());
    const std::uint64_t count = number(a, "count", 0);
    const double seconds = real(a, "seconds", 0);
    if (count == 0 && seconds == 0) usage("client needs --count or --seconds");
    const std::uint64_t seed = number(a, "seed", 1);
    const std::size_t concurrency = std::max<std::size_t>(1, number(a, "concurrency", 1));
    const auto stall = std::chrono::milliseconds(number(a, "stall-ms", 20000));
    const std::string workload =
        a.values.count("workload") != 0 ? a.values.at("workload") : std::string("w4");
    auto dist = uhoma::workload::Distribution::load(workload, uhoma::workload::default_data_dir());
    if (!dist) {
        std::fprintf(stderr, "rpc_tool client: %s\n", dist.error().c_str());
        return 2;
    }
    auto transport = make_transport(a);
    auto socket = uhoma::Socket::open(transport);
    if (!socket) {
        std::fprintf(stderr, "rpc_tool client: cannot open a socket: %s\n",
                     errno_name(socket.error()).c_str());
        return 2;
    }
    install_signal_handlers();

    struct Inflight {
        std::uint64_t index;
        std::uint64_t key;
        std::uint32_t length;
        std::int64_t start_ns;
    };
    std::unordered_map<uhoma::RpcId, Inflight> inflight;
    std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
    std::vector<std::byte> request, expected;
    std::vector<std::uint32_t> latencies_us;
    std::uint64_t issued = 0, completed = 0, failed = 0, verify_failures = 0, unexpected = 0;
    std::uint64_t stalled = 0, completed_after_last_failure = 0;
    std::int64_t first_failure_ns = 0, last_failure_ns = 0;
    std::map<int, std::uint64_t> failures;
    std::optional<std::uint32_t> next_length;  // drawn but not sent yet (EAGAIN)

    const std::int64_t start = now_ns();
    const std::int64_t end = seconds > 0 ? start + static_cast<std::int64_t>(seconds * 1e9) : 0;
    auto want_more = [&] {
        if (g_stop.load()) return false;
        if (count != 0 && issued >= count) return false;
        return end == 0 || now_ns() < end;
    };
    auto record_failure = [&](int err) {
        ++failed;
        ++failures[err];
        const std::int64_t t = now_ns();
        if (first_failure_ns == 0) first_failure_ns = t;
        last_failure_ns = t;
        completed_after_last_failure = 0;
    };

    for (;;) {
        while (inflight.size() < concurrency && want_more()) {
            if (!next_length)
                next_length = std::clamp<std::uint32_t>(dist->sample(rng), 1, 1000000);
            const std::uint64_t key = key_for(seed, issued);
            request.resize(*next_length);
            fill_payload(request, key);
            auto id = socket->send_request(*server, request, issued);
            if (!id && id.error() == EAGAIN && !inflight.empty()) break;  // send memory full
            if (!id) {
                record_failure(id.error());
            } else {
                inflight[*id] = Inflight{issued, key, *next_length, now_ns()};
            }
            next_length.reset();
            ++issued;
        }
        if (inflight.empty()) {
            if (!want_more()) break;
            continue;
        }
        auto m = socket->receive(stall);
        if (!m) {
            if (m.error() == EAGAIN) {  // nothing at all for `stall`: give up
                stalled = inflight.size();
                break;
            }
            auto it = inflight.find(socket->failed_id());
            if (it == inflight.end()) {
                ++unexpected;
                std::fprintf(stderr, "rpc_tool client: receive: %s (no RPC of ours)\n",
                             errno_name(m.error()).c_str());
                if (m.error() == ESHUTDOWN) break;
                continue;
            }
            inflight.erase(it);
            record_failure(m.error());
            continue;
        }
        auto it = inflight.find(m->id());
        if (it == inflight.end()) {
            ++unexpected;
            continue;
        }
        const Inflight rpc = it->second;
        inflight.erase(it);
        expected.resize(rpc.length);
        fill_payload(expected, rpc.key);
        bool ok = m->size() == rpc.length;
        std::size_t at = 0;
        for (std::size_t c = 0; ok && c < m->chunk_count(); ++c) {
            const auto chunk = m->chunk(c);
            ok = at + chunk.size() <= expected.size() &&
                 std::memcmp(chunk.data(), expected.data() + at, chunk.size()) == 0;
            at += chunk.size();
        }
        ok = ok && at == rpc.length;
        if (!ok) {
            if (++verify_failures <= 5) {
                describe_mismatch(*m, expected, rpc.index, rpc.start_ns, start, seed);
            }
            continue;
        }
        ++completed;
        ++completed_after_last_failure;
        latencies_us.push_back(static_cast<std::uint32_t>(
            std::min<std::int64_t>((now_ns() - rpc.start_ns) / 1000, 0xFFFFFFFF)));
    }
    const double elapsed_ms = static_cast<double>(now_ns() - start) / 1e6;
    std::sort(latencies_us.begin(), latencies_us.end());
    auto pct = [&](double p) -> unsigned {
        if (latencies_us.empty()) return 0;
        return latencies_us[std::min(
            latencies_us.size() - 1,
            static_cast<std::size_t>(p * static_cast<double>(latencies_us.size())))];
    };
    std::string by_errno;
    for (const auto& [err, n] : failures) {
        by_errno += (by_errno.empty() ? "" : ",") + errno_name(err) + ":" + std::to_string(n);
    }
    std::printf(
        "rpc_tool client: issued=%llu completed=%llu failed=%llu verify_failures=%llu "
        "stalled=%llu unexpected=%llu elapsed_ms=%.0f failed_by_errno=%s "
        "first_failure_ns=%lld last_failure_ns=%lld completed_after_last_failure=%llu "
        "start_ns=%lld p50_us=%u p99_us=%u max_us=%u\n",
        static_cast<unsigned long long>(issued), static_cast<unsigned long long>(completed),
        static_cast<unsigned long long>(failed), static_cast<unsigned long long>(verify_failures),
        static_cast<unsigned long long>(stalled), static_cast<unsigned long long>(unexpected),
        elapsed_ms, by_errno.empty() ? "none" : by_errno.c_str(),
        static_cast<long long>(first_failure_ns), static_cast<long long>(last_failure_ns),
        static_cast<unsigned long long>(completed_after_last_failure),
        static_cast<long long>(start), pct(0.5), pct(0.99),
        latencies_us.empty() ? 0u : latencies_us.back());
    std::fflush(stdout);
    const bool all = completed == issued && (count == 0 || issued == count);
    return all && failed == 0 && verify_failures == 0 && unexpected == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------
// Flood

// A well-formed Homa packet of a random type for random RPCs, addressed to
// `port`. DATA carries a random slice of a random-length message.
std::size_t encode_random_packet(std::mt19937_64& rng, std::uint16_t port,
                                 std::span<std::byte> out) {
    namespace w = uhoma::wire;
    w::Header h;
    h.sport = static_cast<std::uint16_t>(1 + rng() % 0xFFFF);
    h.dport = port;
    h.sender_id = (rng() | 1) & 0x0000FFFFFFFFFFFFull;     // odd: a server's view of some request
    if (rng() % 2 == 0) h.sender_id &= ~std::uint64_t{1};  // or a client's id
    if (h.sender_id == 0) h.sender_id = 2;
    w::Packet packet;
    switch (rng() % 9) {
        case 0: {
            w::DataPacket d;
            d.header = h;
            d.message_length = static_cast<std::uint32_t>(1 + rng() % 1000000);
            const std::uint32_t payload = static_cast<std::uint32_t>(
                1 + rng() % std::min<std::uint32_t>(d.message_length, 1400));
            d.offset = static_cast<std::uint32_t>(rng() % (d.message_length - payload + 1));
            d.incoming = std::min(d.message_length, static_cast<std::uint32_t>(rng() % 100000));
            d.incoming = std::max(d.incoming, d.offset + payload);
            d.cutoff_version = static_cast<std::uint16_t>(rng());
            d.retransmit = rng() % 2 == 0;
            static std::vector<std::byte> bytes(1400);
            d.payload = std::span<const std::byte>(bytes.data(), payload);
            packet = d;
            break;
        }
        case 1:
            packet = w::GrantPacket{h, static_cast<std::uint32_t>(rng()),
                                    static_cast<std::uint8_t>(rng() % 8)};
            break;
        case 2:
            packet = w::ResendPacket{h, static_cast<std::uint32_t>(rng() % 100000),
                                     static_cast<std::uint32_t>(1 + rng() % 100000),
                                     static_cast<std::uint8_t>(rng() % 8)};
            break;
        case 3:
            packet = w::RpcUnknownPacket{h};
            break;
        case 4:
            packet = w::BusyPacket{h};
            break;
        case 5: {
            w::CutoffsPacket c;
            c.header = h;
            for (auto& v : c.unsched_cutoffs) v = static_cast<std::uint32_t>(rng());
            c.cutoff_version = static_cast<std::uint16_t>(rng());
            packet = c;
            break;
        }
        case 6:
            packet = w::FreezePacket{h};
            break;
        case 7:
            packet = w::NeedAckPacket{h};
            break;
        default: {
            w::AckPacket ack;
            ack.header = h;
            ack.num_acks = static_cast<std::uint16_t>(rng() % 6);
            for (std::size_t i = 0; i < ack.num_acks; ++i) {
                ack.acks[i] = w::Ack{(rng() & ~std::uint64_t{1}) | 2,
                                     static_cast<std::uint16_t>(1 + rng() % 0x7FFF)};
            }
            packet = ack;
            break;
        }
    }
    auto n = w::encode(packet, out);
    return n ? *n : 0;
}

int run_flood(const Args& a) {
    auto target_it = a.values.find("target");
    if (target_it == a.values.end()) usage("flood needs --target ADDR:PORT");
    auto target = uhoma::Endpoint::parse(target_it->second);
    if (!target) usage(target.error().c_str());
    const double seconds = real(a, "seconds", 0);
    if (seconds <= 0) usage("flood needs --seconds");
    const bool v4 = std::all_of(target->address.begin(), target->address.begin() + 10,
                                [](std::uint8_t b) { return b == 0; }) &&
                    target->address[10] == 0xFF && target->address[11] == 0xFF;
    if (!v4) usage("flood supports IPv4 targets only");
    const int fd = a.raw ? ::socket(AF_INET, SOCK_RAW, 146) : ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        std::fprintf(stderr, "rpc_tool flood: socket: %s\n", std::strerror(errno));
        return 2;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = a.raw ? 0 : htons(target->port);
    std::memcpy(&to.sin_addr, target->address.data() + 12, 4);
    install_signal_handlers();

    std::mt19937_64 rng(number(a, "seed", 1));
    const std::uint64_t rate = number(a, "rate", 0);  // datagrams per second; 0: no limit
    constexpr std::size_t kMax = 1500;
    // Rate-limited floods go out in batches of about a millisecond's worth.
    const std::size_t kBatch = rate == 0 ? 64 : std::clamp<std::size_t>(rate / 1000, 1, 64);
    std::vector<std::byte> buffers(kBatch * kMax);
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    std::uint64_t datagrams = 0, valid_header = 0, well_formed = 0, bytes = 0, send_errors = 0;
    const std::int64_t begin = now_ns();
    const std::int64_t end = begin + static_cast<std::int64_t>(seconds * 1e9);
    const auto port_hi = static_cast<std::byte>(target->port >> 8);
    const auto port_lo = static_cast<std::byte>(target->port & 0xFF);
    while (!g_stop.load() && now_ns() < end) {
        if (rate != 0) {
            const auto due = begin + static_cast<std::int64_t>(static_cast<double>(datagrams) *
                                                               1e9 / static_cast<double>(rate));
            const std::int64_t wait = due - now_ns();
            if (wait > 0) ::usleep(static_cast<useconds_t>(wait / 1000));
        }
        for (std::size_t i = 0; i < kBatch; ++i) {
            std::byte* p = buffers.data() + i * kMax;
            std::size_t length = 0;
            const auto kind = rng() % 10;
            if (kind < 6) {
                // Random bytes, random length 0..1500.
                length = rng() % (kMax + 1);
                fill_stream(std::span<std::byte>(p, length), rng());
                if (a.raw && length >= 4) {
                    p[2] = port_hi;
                    p[3] = port_lo;
                }
            } else {
                ++valid_header;
                length = encode_random_packet(rng, target->port, std::span<std::byte>(p, kMax));
                const bool is_data = std::to_integer<std::uint8_t>(p[11]) == 0x10;
                switch (rng() % 4) {
                    case 0:  // truncated: the decoder sees too few bytes
                        length = rng() % std::max<std::size_t>(length, 1);
                        break;
                    case 1:  // a type no Homa knows
                        p[11] = static_cast<std::byte>(0x19 + rng() % 0xE0);
                        break;
                    case 2:  // dport 0: rejected (bad_port)
                        p[2] = p[3] = std::byte{0};
                        break;
                    default:  // well-formed, for RPCs the target does not have
                        if (is_data && !a.data_rpcs) {
                            p[2] = p[3] = std::byte{0};
                        } else {
                            ++well_formed;
                        }
                        break;
                }
            }
            iov[i] = iovec{p, length};
            msgs[i] = mmsghdr{};
            msgs[i].msg_hdr.msg_name = &to;
            msgs[i].msg_hdr.msg_namelen = sizeof(to);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(kBatch), 0);
        if (n < 0) {
            ++send_errors;  // ECONNREFUSED, ENOBUFS...: keep going
            continue;
        }
        datagrams += static_cast<std::uint64_t>(n);
        for (int i = 0; i < n; ++i) bytes += iov[static_cast<std::size_t>(i)].iov_len;
    }
    ::close(fd);
    std::printf(
        "rpc_tool flood: datagrams=%llu valid_header=%llu well_formed=%llu bytes=%llu "
        "send_errors=%llu\n",
        static_cast<unsigned long long>(datagrams), static_cast<unsigned long long>(valid_header),
        static_cast<unsigned long long>(well_formed), static_cast<unsigned long long>(bytes),
        static_cast<unsigned long long>(send_errors));
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse_args(argc, argv);
    if (args.mode == "server") return run_server(args);
    if (args.mode == "client") return run_client(args);
    if (args.mode == "flood") return run_flood(args);
    usage(("unknown mode " + args.mode).c_str());
}
