#include "runtime/channel.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace uhoma::runtime {
namespace {

// A UDP socket bound to `port` (0: an ephemeral one) that receives nothing;
// returns the descriptor and the bound port. Errors: errno.
Expected<std::pair<int, std::uint16_t>, int> reserve_port(std::uint16_t port, bool ipv6) {
    const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Unexpected{errno};
    auto fail = [fd](int error) {
        ::close(fd);
        return Unexpected{error};
    };
    sock_filter drop_all{static_cast<std::uint16_t>(BPF_RET | BPF_K), 0, 0, 0};
    sock_fprog program{1, &drop_all};
    if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) != 0) {
        return fail(errno);
    }
    sockaddr_storage address{};
    socklen_t length = 0;
    if (ipv6) {
        const int off = 0;
        if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) return fail(errno);
        auto* a = reinterpret_cast<sockaddr_in6*>(&address);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_any;
        length = sizeof(sockaddr_in6);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&address);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        length = sizeof(sockaddr_in);
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) return fail(errno);
    length = sizeof(address);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return fail(errno);
    const std::uint16_t bound =
        ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port)
             : ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    return std::pair{fd, bound};
}

}  // namespace

Expected<std::unique_ptr<Channel>, int> Channel::open(std::uint16_t port,
                                                      const ChannelOptions& options) {
    std::unique_ptr<Channel> channel(new Channel());
    const engine::Address any4 = engine::Address::ipv4(0, 0, 0, 0);
    const engine::Address any6{};
    if (options.driver == DriverKind::udp) {
        auto udp = driver::UdpSocket::open(options.ipv6 ? any6 : any4, port, options.udp);
        if (!udp) return Unexpected{udp.error()};
        channel->udp_ = std::make_unique<driver::UdpSocket>(std::move(*udp));
        channel->port_ = channel->udp_->port();
        channel->fds_[0] = channel->udp_->fd();
        channel->fd_count_ = 1;
        return channel;
    }
    auto reservation = reserve_port(port, options.ipv6);
    if (!reservation) return Unexpected{reservation.error()};
    channel->reservation_fd_ = reservation->first;
    channel->port_ = reservation->second;
    const std::uint16_t ports[] = {channel->port_};
    auto raw4 = driver::RawSocket::open(any4, ports, options.raw);
    if (!raw4) return Unexpected{raw4.error()};
    channel->raw_[0] = std::make_unique<driver::RawSocket>(std::move(*raw4));
    channel->fds_[channel->fd_count_++] = channel->raw_[0]->fd();
    if (options.ipv6) {
        auto raw6 = driver::RawSocket::open(any6, ports, options.raw);
        if (!raw6) return Unexpected{raw6.error()};
        channel->raw_[1] = std::make_unique<driver::RawSocket>(std::move(*raw6));
        channel->fds_[channel->fd_count_++] = channel->raw_[1]->fd();
    }
    return channel;
}

Channel::~Channel() {
    if (reservation_fd_ >= 0) ::close(reservation_fd_);
}

Expected<std::size_t, int> Channel::send(std::span<const engine::Transmit> packets) {
    if (udp_) return udp_->send(packets);
    // Runs of one family go to that family's socket; a family without a
    // socket goes to the IPv4 one, which refuses and counts it.
    std::size_t done = 0;
    while (done < packets.size()) {
        const bool v4 = packets[done].destination.address.is_ipv4();
        std::size_t end = done + 1;
        while (end < packets.size() && packets[end].destination.address.is_ipv4() == v4) ++end;
        driver::RawSocket* socket = (!v4 && raw_[1]) ? raw_[1].get() : raw_[0].get();
        auto sent = socket->send(packets.subspan(done, end - done));
        if (!sent) return done > 0 ? Expected<std::size_t, int>(done) : sent;
        done += *sent;
        if (done < end) break;  // socket buffer full
    }
    return done;
}

driver::DriverStats Channel::stats() const {
    if (udp_) return udp_->stats();
    driver::DriverStats total;
    for (const auto& raw : raw_) {
        if (!raw) continue;
        const auto& s = raw->stats();
        total.send_calls += s.send_calls;
        total.send_syscalls += s.send_syscalls;
        total.messages_sent += s.messages_sent;
        total.gso_messages += s.gso_messages;
        total.packets_sent += s.packets_sent;
        total.send_stalls += s.send_stalls;
        total.packets_refused += s.packets_refused;
        if (s.last_send_error != 0) total.last_send_error = s.last_send_error;
        total.receive_syscalls += s.receive_syscalls;
        total.datagrams_received += s.datagrams_received;
        total.gro_datagrams += s.gro_datagrams;
        total.packets_received += s.packets_received;
        total.datagrams_dropped += s.datagrams_dropped;
    }
    return total;
}

}  // namespace uhoma::runtime
