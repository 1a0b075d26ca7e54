// The UDP packet driver: Homa packets as UDP payloads, batched with
// sendmmsg/recvmmsg and, where the kernel can, UDP GSO and GRO.
//
// Design notes
// ------------
// A driver only moves bytes. It never decodes Homa: each engine Transmit
// becomes one UDP datagram whose payload is the whole Homa packet (the
// Transmit's header followed by its payload, gathered by the kernel from two
// iovecs) and whose destination port is Transmit::destination.port; each
// received datagram (or
// each segment of a GRO super-datagram) is handed up as one packet with the
// sender's address, UDP port and TOS byte. Validation is the engine's job.
//
// Why UDP first (shared/notes/network-lab.md): it needs no privileges, works
// in CI, keeps the TOS byte end to end, and the kernel offers the one lever
// that matters for bulk traffic. Per datagram, sendmsg costs ~2.8 us and
// recvmsg ~0.9 us on this machine, almost all of it the kernel's per-packet
// path rather than syscall entry (sendmmsg saves only ~20 %). UDP GSO
// (UDP_SEGMENT) sends a train of equal-size datagrams as one super-packet,
// ~0.6 us per datagram; UDP GRO (UDP_GRO) receives such a train as one
// buffer, ~0.1 us per datagram. So:
//
// * send() groups *consecutive* packets with the same destination, the same
//   priority and the same size (the last may be shorter) into one message
//   with a UDP_SEGMENT control message: the shape of the DATA packets the
//   engine emits for one message. Packets are never reordered: grouping
//   only looks at neighbours, so the per-destination order the engine chose
//   is the order on the wire. Each message gathers its packets with two
//   iovecs per packet, header0, payload0, header1, payload1, ... (an empty
//   part takes none), so nothing is copied in user space: the headers sit
//   in the caller's buffer and DATA payloads in the engine's message
//   storage; the kernel copies once, as it must anyway. GSO cuts the
//   gathered bytes by count, so segment i is exactly header_i + payload_i
//   whenever the packets have the size the train requires. Up to `batch`
//   messages go in one sendmmsg. A train is capped at 64 segments (older
//   kernels' UDP_MAX_SEGMENTS; 128 iovecs, far below UIO_MAXIOV) and 65,507
//   payload bytes (the largest IPv4 UDP datagram).
// * receive() reads up to `batch` datagrams with one recvmmsg. With GRO on,
//   a buffer may hold a train; the UDP_GRO control message gives the segment
//   size and the driver reports each segment as its own packet, pointing
//   into the buffer (no copy). Loopback and veth deliver GSO trains whole
//   even to sockets without GRO; the kernel then splits them itself.
//   Measured through this driver (loopback, one core, trains of 40 x 1456
//   B): 2.4 us to send and 2.5 us to receive a train with GSO and GRO,
//   30 us and 12 us without; one sendmmsg and one recvmmsg either way.
//
// Priority: the engine hands over a level already mapped through the
// priority map; the driver writes `level << 5` (wire::tos_for_priority) into
// IP_TOS (IPv4 destinations) or IPV6_TCLASS (IPv6) as a per-message control
// message, so one socket sends every priority. A GSO train shares one TOS,
// which is why the priority is part of the grouping key. Received TOS bytes
// come from IP_RECVTOS / IPV6_RECVTCLASS.
//
// Nothing blocks: the socket is O_NONBLOCK and every call passes
// MSG_DONTWAIT. When the socket buffer is full, send() stops early and
// returns how many packets it consumed; the caller keeps the rest for later.
// A packet the kernel refuses for good (EMSGSIZE, ENETUNREACH, a GSO train
// that does not fit the route's MTU, a destination of the wrong family) is
// dropped, counted in stats() and consumed, as Linux Homa does with
// transmit errors: Homa recovers lost packets by itself, and reporting
// such an error would leave the caller unable to make progress past the
// packet. Only failures of the socket itself (EBADF, EFAULT, ...) are
// returned as errors.
//
// Memory is allocated once, in open(): the message, address, control and
// iovec arrays for `batch` messages (two iovecs per packet of a train), and
// `batch` receive buffers of `max_packet` bytes, or 64 KiB each with GRO (a
// GRO buffer must hold a whole train; 4 MiB of address space at the default
// batch of 64, committed by the kernel only as buffers are used). A
// received packet's bytes stay valid until the next receive() call: a call
// reads the socket only when nothing from an earlier call is pending (when
// the previous call left GRO segments undelivered because max_packets was
// reached, it delivers those and returns), and reads again only while it
// has delivered nothing.
//
// IPv4 and IPv6: peers are engine::Address values (IPv6 bytes, IPv4
// mapped). A socket bound to an IPv4-mapped address is an AF_INET socket;
// any other address gives an AF_INET6 socket with IPV6_V6ONLY off, so a
// socket bound to :: talks to IPv4 peers too (as IPv4-mapped addresses).
//
// RawSocket (raw_socket.h) reuses the batching machinery below
// (detail::DatagramIo) with GSO and GRO off and an IPv4 header to strip.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "engine/types.h"
#include "uhoma/expected.h"

namespace uhoma::driver {

// One received Homa packet. `bytes` stays valid until the next receive() on
// the same socket.
struct ReceivedPacket {
    engine::Address source;         // IPv4 senders IPv4-mapped
    std::uint16_t source_port = 0;  // UDP source port; 0 for raw IP
    std::uint8_t tos = 0;           // IPv4 TOS / IPv6 Traffic Class byte
    std::span<const std::byte> bytes;
};

// Counters of one socket; monotonic, never reset.
struct DriverStats {
    std::uint64_t send_calls = 0;          // send() calls
    std::uint64_t send_syscalls = 0;       // sendmmsg calls
    std::uint64_t messages_sent = 0;       // datagrams or GSO trains the kernel took
    std::uint64_t gso_messages = 0;        // of which GSO trains (more than one packet)
    std::uint64_t packets_sent = 0;        // packets the kernel took
    std::uint64_t send_stalls = 0;         // send() stopped early: buffer full (EAGAIN, ENOBUFS)
    std::uint64_t packets_refused = 0;     // dropped: the kernel or the family refused them
    int last_send_error = 0;               // errno of the latest refusal
    std::uint64_t receive_syscalls = 0;    // recvmmsg calls
    std::uint64_t datagrams_received = 0;  // buffers filled (a GRO train counts once)
    std::uint64_t gro_datagrams = 0;       // of which held more than one packet
    std::uint64_t packets_received = 0;    // packets delivered to sinks
    std::uint64_t datagrams_dropped = 0;   // truncated, empty or malformed
};

namespace detail {

// A sockaddr the kernel accepts, for either family.
struct SocketAddress {
    union {
        sockaddr_in v4;
        sockaddr_in6 v6;
    };
    socklen_t length = 0;
};

// `endpoint` as a sockaddr of `family`: AF_INET needs an IPv4-mapped
// address; AF_INET6 takes any, IPv4-mapped ones only when not `raw` (dual-
// stack UDP can reach them, raw IPv6 cannot). With `raw` the port is left 0:
// raw IPv6 would read it as a protocol number.
// Errors: EAFNOSUPPORT for an address the family cannot reach.
Expected<SocketAddress, int> socket_address(int family, const engine::Endpoint& endpoint,
                                            bool raw = false);

// The Endpoint in a sockaddr the kernel filled in (AF_INET or AF_INET6);
// std::nullopt for any other family.
std::optional<engine::Endpoint> endpoint_from(const sockaddr_storage& address);

// Owns a file descriptor and closes it.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    void reset();

private:
    int fd_ = -1;
};

// The batching core shared by UdpSocket and RawSocket: owns the descriptor
// and every preallocated array; runs sendmmsg/recvmmsg.
class DatagramIo {
public:
    struct Config {
        int family = AF_INET6;
        bool gso = false;          // group trains and send them with UDP_SEGMENT
        bool gro = false;          // receive buffers hold trains (64 KiB each)
        bool ipv4_header = false;  // received data starts with an IPv4 header (raw)
        bool raw = false;          // raw IP: no ports, no IPv4-mapped peers on AF_INET6
        std::size_t batch = 64;    // messages per sendmmsg / recvmmsg
        std::size_t max_packet = 1500;
    };

    // Allocates every buffer; `fd` must be a datagram or raw socket of
    // config.family.
    DatagramIo(UniqueFd fd, const Config& config);

    int fd() const { return fd_.get(); }
    int family() const { return config_.family; }
    const DriverStats& stats() const { return stats_; }

    // See UdpSocket::send.
    // Errors: EBADF (also on a moved-from object), ENOTSOCK, EFAULT,
    // EOPNOTSUPP from sendmmsg when nothing was consumed.
    Expected<std::size_t, int> send(std::span<const engine::Transmit> packets);

    // See UdpSocket::receive.
    // Errors: EBADF on a moved-from object; errno from recvmmsg other than
    // EAGAIN and EINTR.
    template <typename Sink>
    Expected<std::size_t, int> receive(Sink& sink, std::size_t max_packets) {
        if (fd_.get() < 0) return Unexpected{EBADF};
        if (max_packets == 0) return std::size_t{0};
        if (!has_pending()) {
            const Expected<bool, int> filled = fill(max_packets);
            if (!filled) return Unexpected{filled.error()};
            if (!filled.value()) return std::size_t{0};
        }
        std::size_t delivered = 0;
        while (delivered < max_packets) {
            const std::optional<ReceivedPacket> packet = next();
            if (!packet) break;
            const ReceivedPacket& view = *packet;
            sink(view);
            ++delivered;
        }
        return delivered;
    }

    // Discards everything queued on the socket (used after a filter change).
    void drain();

private:
    struct Slot {  // one received datagram, parsed
        engine::Address source;
        std::uint16_t source_port = 0;
        std::uint8_t tos = 0;
        std::size_t offset = 0;   // next undelivered byte, from the start of buffers_
        std::size_t end = 0;      // end of the datagram's packet bytes
        std::size_t segment = 0;  // GRO segment size; the whole payload without GRO
    };
    union Control {  // room for the control messages of one message
        cmsghdr align;
        std::byte bytes[64];
    };

    bool has_pending() const { return next_slot_ < filled_slots_; }
    // One recvmmsg (repeated, a few times at most, while everything read is
    // dropped as malformed): true when at least one packet is pending.
    Expected<bool, int> fill(std::size_t max_packets);
    std::optional<ReceivedPacket> next();
    Slot parse(std::size_t index);

    UniqueFd fd_;
    Config config_;
    std::size_t slot_size_ = 0;
    DriverStats stats_;

    // send side: `batch` messages, `batch * max_segments * 2` iovecs
    std::vector<mmsghdr> send_messages_;
    std::vector<SocketAddress> send_addresses_;
    std::vector<Control> send_controls_;
    std::vector<std::size_t> send_counts_;  // packets per message
    std::vector<iovec> send_iovecs_;

    // receive side: `batch` slots
    std::vector<mmsghdr> receive_messages_;
    std::vector<sockaddr_storage> receive_addresses_;
    std::vector<Control> receive_controls_;
    std::vector<iovec> receive_iovecs_;
    std::vector<Slot> slots_;
    std::unique_ptr<std::byte[]> buffers_;  // batch * slot_size_
    std::size_t filled_slots_ = 0;
    std::size_t next_slot_ = 0;
    // Receive headers the kernel may have written since they were last
    // reset: fill() resets only these, so an empty poll (a busy-polling
    // waiter's common case) does not touch all `batch` of them.
    std::size_t dirty_slots_ = SIZE_MAX;
};

}  // namespace detail

struct UdpOptions {
    bool gso = true;                // send trains with UDP_SEGMENT
    bool gro = true;                // receive trains with UDP_GRO
    std::size_t batch = 64;         // messages per sendmmsg / datagrams per recvmmsg
    std::size_t max_packet = 1500;  // largest Homa packet (receive buffer size without GRO)
    int receive_buffer = 0;         // SO_RCVBUF in bytes; 0 keeps the kernel default
    int send_buffer = 0;            // SO_SNDBUF in bytes; 0 keeps the kernel default
};

class UdpSocket {
public:
    using Options = UdpOptions;

    // A nonblocking UDP socket bound to local:port (port 0: the kernel
    // picks one). An IPv4-mapped `local` gives an AF_INET socket; any other
    // address (:: included) an AF_INET6 socket with IPV6_V6ONLY off, so IPv4
    // peers work through IPv4-mapped addresses. When the kernel lacks
    // UDP_SEGMENT or UDP_GRO, that option is switched off (see gso(), gro()).
    // Errors: EINVAL for batch == 0, max_packet == 0 or max_packet > 65,507;
    // errno from socket(), setsockopt() or bind() (EADDRINUSE, EACCES,
    // EADDRNOTAVAIL, EAFNOSUPPORT, EMFILE, ENOBUFS, ...).
    static Expected<UdpSocket, int> open(const engine::Address& local, std::uint16_t port,
                                         const Options& options = {});

    int fd() const { return io_.fd(); }
    std::uint16_t port() const { return port_; }
    engine::Address local_address() const { return local_; }
    bool gso() const { return gso_; }
    bool gro() const { return gro_; }
    const DriverStats& stats() const { return io_.stats(); }

    // Sends `packets` in order, without blocking. Each packet (header then
    // payload; both must stay valid during the call) is one UDP
    // datagram to destination.address:destination.port with TOS
    // tos_for_priority(priority). With gso, consecutive packets with the same
    // destination and priority and equal sizes (the last may be shorter) go
    // as one UDP_SEGMENT message; up to `batch` messages per sendmmsg.
    // Returns how many packets, from the front, were consumed: handed to the
    // kernel, or refused for good and dropped (counted in stats():
    // packets_refused, last_send_error; e.g. EMSGSIZE, ENETUNREACH, EINVAL
    // for a train the route cannot carry, EAFNOSUPPORT for an IPv6
    // destination on an IPv4 socket). Fewer than packets.size() when the
    // socket buffer filled up (EAGAIN, ENOBUFS, ENOMEM): not an error; call
    // again with the rest.
    // Errors: EBADF (also on a moved-from socket), ENOTSOCK, EFAULT or
    // EOPNOTSUPP from sendmmsg when nothing was consumed (a broken socket,
    // not a packet problem).
    Expected<std::size_t, int> send(std::span<const engine::Transmit> packets) {
        return io_.send(packets);
    }

    // Delivers queued packets to `sink` (called as sink(const
    // ReceivedPacket&)), at most `max_packets`, without blocking; returns how
    // many. Reads the socket once (up to `batch` datagrams; again, at most 8
    // times, only while everything read was dropped), so call it until it
    // returns 0 to drain the socket. GRO trains are split into
    // their segments; segments beyond max_packets are kept for the next
    // call, which delivers them without reading the socket. Datagrams that
    // were truncated (larger than max_packet without GRO) or empty are
    // dropped and counted (stats().datagrams_dropped). Packet bytes stay
    // valid until the next receive().
    // Errors: EBADF on a moved-from socket; errno from recvmmsg other than
    // EAGAIN/EINTR (ENOMEM, ...).
    template <typename Sink>
    Expected<std::size_t, int> receive(Sink&& sink, std::size_t max_packets = 256) {
        return io_.receive(sink, max_packets);
    }

private:
    UdpSocket(detail::DatagramIo io, engine::Address local, std::uint16_t port, bool gso, bool gro)
        : io_(std::move(io)), local_(local), port_(port), gso_(gso), gro_(gro) {}

    detail::DatagramIo io_;
    engine::Address local_;
    std::uint16_t port_ = 0;
    bool gso_ = false;
    bool gro_ = false;
};

}  // namespace uhoma::driver
