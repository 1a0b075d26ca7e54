#include "driver/raw_socket.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "wire/packet.h"

namespace uhoma::driver {
namespace {

// The largest Homa packet a raw IPv4 datagram can carry (IP header up to 60).
constexpr std::size_t max_raw_packet = 65'535 - 60;
// Offset of the destination port in the Homa common header (spec 1.2).
constexpr std::uint32_t dport_offset = 2;
// "Keep the whole packet" for a socket filter's return value.
constexpr std::uint32_t accept_all = 0xFFFF'FFFF;

sock_filter instruction(unsigned code, std::uint8_t jump_true, std::uint8_t jump_false,
                        std::uint32_t k) {
    return sock_filter{static_cast<std::uint16_t>(code), jump_true, jump_false, k};
}

// The classic BPF program accepting packets whose Homa dport is in `ports`.
// On IPv4 the socket sees the IP header first: X = 4 * IHL, then load the
// half-word at X + 2. On IPv6 the Homa header starts at offset 0. A load
// past the end of the packet ends the program with 0 (drop).
std::vector<sock_filter> port_filter(bool ipv4_header, std::span<const std::uint16_t> ports) {
    std::vector<sock_filter> program;
    program.reserve(2 * ports.size() + 3);
    if (ipv4_header) {
        program.push_back(instruction(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0));
        program.push_back(instruction(BPF_LD | BPF_H | BPF_IND, 0, 0, dport_offset));
    } else {
        program.push_back(instruction(BPF_LD | BPF_H | BPF_ABS, 0, 0, dport_offset));
    }
    for (const std::uint16_t port : ports) {
        // Equal: fall through to the accept; otherwise skip over it.
        program.push_back(instruction(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, port));
        program.push_back(instruction(BPF_RET | BPF_K, 0, 0, accept_all));
    }
    program.push_back(instruction(BPF_RET | BPF_K, 0, 0, 0));
    return program;
}

// Attaches (or atomically replaces) the port filter; 0 or an errno.
int attach_port_filter(int fd, bool ipv4_header, std::span<const std::uint16_t> ports) {
    std::vector<sock_filter> program = port_filter(ipv4_header, ports);
    sock_fprog fprog{};
    fprog.len = static_cast<unsigned short>(program.size());
    fprog.filter = program.data();
    return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) == 0 ? 0 : errno;
}

int set_int_option(int fd, int level, int name, int value) {
    return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
}

}  // namespace

Expected<RawSocket, int> RawSocket::open(const engine::Address& local,
                                         std::span<const std::uint16_t> ports,
                                         const Options& options) {
    if (options.batch == 0 || options.max_packet == 0 || options.max_packet > max_raw_packet ||
        ports.size() > max_ports) {
        return Unexpected{EINVAL};
    }
    const int family = local.is_ipv4() ? AF_INET : AF_INET6;
    const int fd =
        ::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, wire::ip_protocol_homa);
    if (fd < 0) return Unexpected{errno};

    detail::DatagramIo::Config config;
    config.family = family;
    config.ipv4_header = family == AF_INET;
    config.raw = true;
    config.batch = options.batch;
    config.max_packet = options.max_packet;
    // Owns fd from here on: every early return closes it.
    detail::DatagramIo io(detail::UniqueFd(fd), config);

    int error = attach_port_filter(fd, config.ipv4_header, ports);
    if (error != 0) return Unexpected{error};
    if (family == AF_INET6 && (error = set_int_option(fd, SOL_IPV6, IPV6_RECVTCLASS, 1)) != 0) {
        return Unexpected{error};
    }
    if (options.receive_buffer > 0 &&
        (error = set_int_option(fd, SOL_SOCKET, SO_RCVBUF, options.receive_buffer)) != 0) {
        return Unexpected{error};
    }
    if (options.send_buffer > 0 &&
        (error = set_int_option(fd, SOL_SOCKET, SO_SNDBUF, options.send_buffer)) != 0) {
        return Unexpected{error};
    }
    const Expected<detail::SocketAddress, int> address =
        detail::socket_address(family, engine::Endpoint{local, 0}, true);
    if (!address) return Unexpected{address.error()};
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.value()), address->length) != 0) {
        return Unexpected{errno};
    }
    // Packets that arrived before the filter was attached.
    io.drain();

    RawSocket socket(std::move(io), local);
    socket.ports_.assign(ports.begin(), ports.end());
    return socket;
}

Expected<bool, int> RawSocket::set_ports(std::span<const std::uint16_t> ports) {
    if (ports.size() > max_ports) return Unexpected{EINVAL};
    const int error = attach_port_filter(fd(), io_.family() == AF_INET, ports);
    if (error != 0) return Unexpected{error};
    ports_.assign(ports.begin(), ports.end());
    return true;
}

}  // namespace uhoma::driver
