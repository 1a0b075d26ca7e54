// The raw IP driver: Homa packets directly on IP protocol 146, as Linux Homa
// sends them, for wire compatibility with the kernel module.
//
// Design notes
// ------------
// A raw socket (socket(AF_INET or AF_INET6, SOCK_RAW, 146)) needs
// CAP_NET_RAW, and the kernel does no demultiplexing for it: every raw-146
// socket in the network namespace gets a copy of every Homa packet
// (shared/notes/network-lab.md, table 6). Copying every packet to every
// process and dropping most of them in user space would cost ~1 us per
// packet per socket, so each socket carries a classic BPF filter
// (SO_ATTACH_FILTER) that accepts only packets whose Homa destination port,
// the big-endian u16 at offset 2 of the Homa header, is one of this
// socket's ports. That is the only Homa field the driver reads. The filter
// is a list of compares, two instructions per port; a packet too short to
// hold the port fails the load and is dropped by the kernel. An IPv4 raw
// socket sees the IP header in front of the Homa bytes, so the IPv4 filter
// first loads the header length (IHL); an IPv6 raw socket sees the Homa
// bytes alone.
//
// A fresh socket receives unfiltered packets until the filter is attached,
// so open() attaches it before bind and then discards whatever was queued.
// set_ports() swaps the filter atomically; packets queued before the swap
// for ports no longer listed may still be delivered (the engine drops
// packets for ports it does not know, as it must for any peer's packets).
//
// Sending: IP_HDRINCL stays off, so the kernel writes the IP header; the
// priority travels as an IP_TOS (IPv4) or IPV6_TCLASS (IPv6) control message
// per packet (tos = priority << 5), and packets are batched with sendmmsg.
// Each datagram is gathered from the Transmit's header and payload (two
// iovecs, as for UDP), so DATA payloads are not copied in user space.
// There is no GSO for raw sockets, so every packet costs a full trip
// through the kernel (network-lab table 6: the same per-packet cost as
// UDP, none of its 5-10x GSO/GRO savings). Packets larger than the MTU would
// be IP-fragmented; the engine sizes DATA packets to the MTU (spec 1.7).
//
// One raw socket serves one address family: IPv4 when `local` is
// IPv4-mapped, IPv6 otherwise (raw IPv6 sockets cannot reach IPv4-mapped
// peers). A host running Homa over both opens two. Packets to a destination
// of the other family are dropped and counted.
//
// The batching, buffers, statistics and error rules are those of
// UdpSocket (udp_socket.h, detail::DatagramIo), with GSO and GRO off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "driver/udp_socket.h"
#include "engine/types.h"
#include "uhoma/expected.h"

namespace uhoma::driver {

struct RawOptions {
    std::size_t batch = 64;         // messages per sendmmsg / datagrams per recvmmsg
    std::size_t max_packet = 1500;  // largest Homa packet (receive buffers add 60 for IPv4)
    int receive_buffer = 0;         // SO_RCVBUF in bytes; 0 keeps the kernel default
    int send_buffer = 0;            // SO_SNDBUF in bytes; 0 keeps the kernel default
};

class RawSocket {
public:
    using Options = RawOptions;

    // Most ports one filter can list (two BPF instructions each).
    static constexpr std::size_t max_ports = 1024;

    // A nonblocking raw IP-protocol-146 socket of `local`'s family, bound to
    // `local` (:: or 0.0.0.0 accept any local address), receiving only Homa
    // packets addressed to one of `ports` (none: receives nothing).
    // Errors: EINVAL for batch == 0, max_packet == 0, max_packet > 65,475 or
    // more than max_ports ports; EPERM (or EACCES) without CAP_NET_RAW;
    // errno from socket(), setsockopt() or bind() (EADDRNOTAVAIL, EMFILE,
    // ENOMEM, ...).
    static Expected<RawSocket, int> open(const engine::Address& local,
                                         std::span<const std::uint16_t> ports,
                                         const Options& options = {});

    // Replaces the port filter (atomically, for packets not yet queued).
    // Allocates; not for the packet path. On error the old filter stays.
    // Errors: EINVAL for more than max_ports ports; errno from
    // setsockopt(SO_ATTACH_FILTER) (ENOMEM, ...).
    Expected<bool, int> set_ports(std::span<const std::uint16_t> ports);

    int fd() const { return io_.fd(); }
    engine::Address local_address() const { return local_; }
    std::span<const std::uint16_t> ports() const { return ports_; }
    const DriverStats& stats() const { return io_.stats(); }

    // Sends `packets` in order, without blocking: one IP datagram each
    // (header then payload; both must stay valid during the call),
    // protocol 146, to destination.address (destination.port is not used:
    // the Homa header carries ports) with TOS tos_for_priority(priority); up
    // to `batch` per sendmmsg. Returns how many packets, from the front,
    // were consumed: handed to the kernel, or refused for good and dropped
    // (counted in stats(): packets_refused, last_send_error; e.g.
    // EMSGSIZE, ENETUNREACH, EAFNOSUPPORT for a destination of the other
    // family). Fewer than packets.size() when the socket buffer filled up
    // (EAGAIN, ENOBUFS, ENOMEM): not an error; call again with the rest.
    // Errors: EBADF (also on a moved-from socket), ENOTSOCK, EFAULT or
    // EOPNOTSUPP from sendmmsg when nothing was consumed.
    Expected<std::size_t, int> send(std::span<const engine::Transmit> packets) {
        return io_.send(packets);
    }

    // Delivers queued packets to `sink` (sink(const ReceivedPacket&)), at
    // most `max_packets`, without blocking; returns how many. Reads the
    // socket as UdpSocket::receive does (call until 0 to drain). For IPv4
    // the IP header is stripped and the TOS taken from it; for IPv6 the
    // Traffic Class comes from IPV6_RECVTCLASS. source_port is 0.
    // Datagrams that are truncated, empty or carry a malformed IPv4 header
    // are dropped and counted (stats().datagrams_dropped). Packet bytes stay
    // valid until the next receive().
    // Errors: EBADF on a moved-from socket; errno from recvmmsg other than
    // EAGAIN/EINTR (ENOMEM, ...).
    template <typename Sink>
    Expected<std::size_t, int> receive(Sink&& sink, std::size_t max_packets = 256) {
        return io_.receive(sink, max_packets);
    }

private:
    RawSocket(detail::DatagramIo io, engine::Address local) : io_(std::move(io)), local_(local) {}

    detail::DatagramIo io_;
    engine::Address local_;
    std::vector<std::uint16_t> ports_;
};

}  // namespace uhoma::driver
