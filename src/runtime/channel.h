// Channel: the packet path of one Homa socket, over UDP or raw IP 146.
//
// Design notes
// ------------
// The runtime gives every Homa socket its own kernel socket(s), so the
// kernel demultiplexes by port and a pump reads only one socket's packets.
//
// UDP (the default, no privileges): one UDP socket on the Homa port; Homa
// port P is UDP port P. The kernel allocates client ports and refuses a
// server port already taken, across every process on the host.
//
// Raw IP (driver=raw, needs CAP_NET_RAW): one raw protocol-146 socket whose
// BPF filter accepts only packets for this socket's port (raw_socket.h), and
// with dual stack a second one for IPv6 peers (a raw socket serves one
// family). Raw sockets have no ports, so nothing in the kernel stops two
// processes from using the same Homa port. The channel therefore also binds
// a UDP socket to the same port number as a *reservation*: the kernel picks
// client ports from its ephemeral range (>= 0x8000 by default, as Homa's
// client ports must be) and refuses a taken server port with EADDRINUSE,
// exactly as for the UDP driver. The reservation socket carries a filter
// that drops everything, so stray UDP traffic to it costs nothing.
//
// Sending over raw IP splits the packets by destination family; packets of
// a family the channel has no socket for are refused and counted by the
// driver (EAFNOSUPPORT), as a UDP socket of the wrong family would.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "driver/raw_socket.h"
#include "driver/udp_socket.h"
#include "uhoma/expected.h"

namespace uhoma::runtime {

enum class DriverKind { udp, raw };

struct ChannelOptions {
    DriverKind driver = DriverKind::udp;
    bool ipv6 = false;  // dual stack: IPv6 peers as well as IPv4
    driver::UdpOptions udp;
    driver::RawOptions raw;
};

class Channel {
public:
    // A channel on Homa port `port` (0: the kernel picks a client port).
    // Errors: errno from socket()/bind()/setsockopt(): EADDRINUSE (port
    // taken), EPERM or EACCES (raw without CAP_NET_RAW), EMFILE, ENOMEM, ...
    static Expected<std::unique_ptr<Channel>, int> open(std::uint16_t port,
                                                        const ChannelOptions& options);
    ~Channel();
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    std::uint16_t port() const { return port_; }
    // The descriptors to watch for readability (one or two).
    std::span<const int> fds() const { return std::span(fds_.data(), fd_count_); }

    // As UdpSocket::send / RawSocket::send: how many packets from the front
    // were consumed. Errors: as those.
    Expected<std::size_t, int> send(std::span<const engine::Transmit> packets);

    // As UdpSocket::receive, from every kernel socket of the channel.
    template <typename Sink>
    Expected<std::size_t, int> receive(Sink&& sink) {
        if (udp_) return udp_->receive(sink);
        std::size_t total = 0;
        for (auto& raw : raw_) {
            if (!raw) continue;
            auto got = raw->receive(sink);
            if (!got) return got;
            total += *got;
        }
        return total;
    }

    // Counters summed over the channel's sockets.
    driver::DriverStats stats() const;

private:
    Channel() = default;
    std::uint16_t port_ = 0;
    std::unique_ptr<driver::UdpSocket> udp_;
    std::array<std::unique_ptr<driver::RawSocket>, 2> raw_;  // [0] IPv4, [1] IPv6
    int reservation_fd_ = -1;
    std::array<int, 2> fds_{-1, -1};
    std::size_t fd_count_ = 0;
};

}  // namespace uhoma::runtime
