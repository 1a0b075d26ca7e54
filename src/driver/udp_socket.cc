#include "driver/udp_socket.h"

#include <netinet/udp.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "wire/priority.h"

namespace uhoma::driver {
namespace detail {
namespace {

// Older kernels' UDP_MAX_SEGMENTS (6.x allows 128); and the largest UDP
// payload an IPv4 datagram can carry (IPv6 allows 20 bytes more).
constexpr std::size_t max_gso_segments = 64;
constexpr std::size_t max_gso_payload = 65'507;
// Each packet is gathered from two iovecs (header, payload); a message's
// iovec list must stay within the kernel's limit.
constexpr std::size_t iovecs_per_packet = 2;
static_assert(max_gso_segments * iovecs_per_packet <= UIO_MAXIOV);
// A GRO buffer holds a whole train: at most a maximal UDP payload.
constexpr std::size_t gro_buffer_size = 65'536;
// The largest IPv4 header (IHL 15), in front of raw IPv4 payloads.
constexpr std::size_t max_ipv4_header = 60;
// drain() gives up after this many recvmmsg calls, and a receive() reading
// only malformed datagrams after this many, so a flood cannot hold them.
constexpr int max_drain_calls = 1024;
constexpr int max_fill_calls = 8;

bool is_transient(int error) {
    return error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS || error == ENOMEM;
}

// Failures of the socket or of our own arguments rather than of a packet.
bool is_fatal(int error) {
    return error == EBADF || error == ENOTSOCK || error == EFAULT || error == EOPNOTSUPP;
}

// Writes one control message carrying `value` at `at` (which must be
// cmsghdr-aligned) and returns the space it takes.
template <typename T>
socklen_t put_control(std::byte* at, int level, int type, T value) {
    cmsghdr header{};
    header.cmsg_len = CMSG_LEN(sizeof(T));
    header.cmsg_level = level;
    header.cmsg_type = type;
    std::memcpy(at, &header, sizeof(header));
    std::memcpy(at + CMSG_LEN(0), &value, sizeof(T));
    return static_cast<socklen_t>(CMSG_SPACE(sizeof(T)));
}

}  // namespace

Expected<SocketAddress, int> socket_address(int family, const engine::Endpoint& endpoint,
                                            bool raw) {
    const std::uint16_t port = raw ? 0 : endpoint.port;
    SocketAddress result{};
    if (family == AF_INET) {
        if (!endpoint.address.is_ipv4()) return Unexpected{EAFNOSUPPORT};
        std::memset(&result.v4, 0, sizeof(result.v4));
        result.v4.sin_family = AF_INET;
        result.v4.sin_port = htons(port);
        std::memcpy(&result.v4.sin_addr, endpoint.address.bytes.data() + 12, 4);
        result.length = sizeof(result.v4);
        return result;
    }
    if (raw && endpoint.address.is_ipv4()) return Unexpected{EAFNOSUPPORT};
    std::memset(&result.v6, 0, sizeof(result.v6));
    result.v6.sin6_family = AF_INET6;
    result.v6.sin6_port = htons(port);
    std::memcpy(&result.v6.sin6_addr, endpoint.address.bytes.data(), 16);
    result.length = sizeof(result.v6);
    return result;
}

std::optional<engine::Endpoint> endpoint_from(const sockaddr_storage& address) {
    engine::Endpoint endpoint;
    if (address.ss_family == AF_INET) {
        sockaddr_in v4{};
        std::memcpy(&v4, &address, sizeof(v4));
        std::memcpy(endpoint.address.bytes.data() + 12, &v4.sin_addr, 4);
        endpoint.address.bytes[10] = 0xff;
        endpoint.address.bytes[11] = 0xff;
        endpoint.port = ntohs(v4.sin_port);
        return endpoint;
    }
    if (address.ss_family == AF_INET6) {
        sockaddr_in6 v6{};
        std::memcpy(&v6, &address, sizeof(v6));
        std::memcpy(endpoint.address.bytes.data(), &v6.sin6_addr, 16);
        endpoint.port = ntohs(v6.sin6_port);
        return endpoint;
    }
    return std::nullopt;
}

// --- DatagramIo: setup -------------------------------------------------------

void UniqueFd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

DatagramIo::DatagramIo(UniqueFd fd, const Config& config) : fd_(std::move(fd)), config_(config) {
    const std::size_t batch = config_.batch;
    const std::size_t segments = config_.gso ? max_gso_segments : 1;
    send_messages_.resize(batch);
    send_addresses_.resize(batch);
    send_controls_.resize(batch);
    send_counts_.resize(batch);
    send_iovecs_.resize(batch * segments * iovecs_per_packet);

    slot_size_ = config_.gro ? gro_buffer_size
                             : config_.max_packet + (config_.ipv4_header ? max_ipv4_header : 0);
    receive_messages_.resize(batch);
    receive_addresses_.resize(batch);
    receive_controls_.resize(batch);
    receive_iovecs_.resize(batch);
    slots_.resize(batch);
    // Not value-initialised: the kernel commits pages as buffers get used.
    buffers_ = std::make_unique_for_overwrite<std::byte[]>(batch * slot_size_);
    for (std::size_t i = 0; i < batch; ++i) {
        receive_iovecs_[i] = iovec{buffers_.get() + i * slot_size_, slot_size_};
        msghdr& header = receive_messages_[i].msg_hdr;
        header = msghdr{};
        header.msg_name = &receive_addresses_[i];
        header.msg_iov = &receive_iovecs_[i];
        header.msg_iovlen = 1;
        header.msg_control = receive_controls_[i].bytes;
    }
}

// --- DatagramIo: send --------------------------------------------------------

Expected<std::size_t, int> DatagramIo::send(std::span<const engine::Transmit> packets) {
    ++stats_.send_calls;
    if (fd_.get() < 0) return Unexpected{EBADF};
    const std::size_t segment_limit = config_.gso ? max_gso_segments : 1;
    std::size_t consumed = 0;  // packets from the front: sent or refused
    while (consumed < packets.size()) {
        // Build up to `batch` messages from packets[consumed...].
        std::size_t messages = 0;
        std::size_t iovecs = 0;
        std::size_t next = consumed;
        while (messages < config_.batch && next < packets.size()) {
            const engine::Transmit& first = packets[next];
            const Expected<SocketAddress, int> address =
                socket_address(config_.family, first.destination, config_.raw);
            if (!address) {
                // Send what is built first, so refusals keep their place.
                if (messages > 0) break;
                ++stats_.packets_refused;
                stats_.last_send_error = address.error();
                ++next;
                ++consumed;
                continue;
            }

            // The train: neighbours with the same destination, priority and
            // size; a shorter packet ends it. Sizes are whole packets
            // (header + payload): GSO cuts the gathered bytes into segments
            // of `size` bytes, so where the header ends inside a segment
            // does not matter.
            const std::size_t size = first.size();
            std::size_t count = 1;
            if (segment_limit > 1 && size > 0 && size <= 0xFFFF) {
                std::size_t total = size;
                while (next + count < packets.size() && count < segment_limit) {
                    const engine::Transmit& packet = packets[next + count];
                    const std::size_t length = packet.size();
                    if (packet.destination != first.destination ||
                        packet.priority != first.priority || length == 0 || length > size ||
                        total + length > max_gso_payload) {
                        break;
                    }
                    total += length;
                    ++count;
                    if (length < size) break;
                }
            }

            // header0, payload0, header1, payload1, ...: empty parts (a
            // control packet's payload) take no iovec.
            std::size_t parts = 0;
            for (std::size_t i = 0; i < count; ++i) {
                const engine::Transmit& packet = packets[next + i];
                for (const std::span<const std::byte> part : {packet.header, packet.payload}) {
                    if (part.empty()) continue;
                    send_iovecs_[iovecs + parts++] =
                        iovec{const_cast<std::byte*>(part.data()), part.size()};
                }
            }
            send_addresses_[messages] = address.value();
            Control& control = send_controls_[messages];
            const bool ipv4_destination =
                config_.family == AF_INET || first.destination.address.is_ipv4();
            const int tos = wire::tos_for_priority(first.priority);
            // IP_TOS and IPV6_TCLASS take an int; UDP_SEGMENT a u16.
            socklen_t control_length = ipv4_destination
                                           ? put_control(control.bytes, SOL_IP, IP_TOS, tos)
                                           : put_control(control.bytes, SOL_IPV6, IPV6_TCLASS, tos);
            if (count > 1) {
                control_length += put_control(control.bytes + control_length, SOL_UDP, UDP_SEGMENT,
                                              static_cast<std::uint16_t>(size));
            }

            msghdr& header = send_messages_[messages].msg_hdr;
            header = msghdr{};
            header.msg_name = &send_addresses_[messages];
            header.msg_namelen = send_addresses_[messages].length;
            header.msg_iov = &send_iovecs_[iovecs];
            header.msg_iovlen = parts;
            header.msg_control = control.bytes;
            header.msg_controllen = control_length;
            send_counts_[messages] = count;
            ++messages;
            iovecs += parts;
            next += count;
        }

        // Hand the messages to the kernel, stepping over refused ones.
        std::size_t done = 0;
        while (done < messages) {
            ++stats_.send_syscalls;
            const int result = ::sendmmsg(fd_.get(), send_messages_.data() + done,
                                          static_cast<unsigned>(messages - done), MSG_DONTWAIT);
            if (result > 0) {
                const auto accepted = static_cast<std::size_t>(result);
                for (std::size_t i = done; i < done + accepted; ++i) {
                    ++stats_.messages_sent;
                    if (send_counts_[i] > 1) ++stats_.gso_messages;
                    stats_.packets_sent += send_counts_[i];
                    consumed += send_counts_[i];
                }
                done += accepted;
                continue;
            }
            const int error = result == 0 ? EAGAIN : errno;
            if (error == EINTR) continue;
            if (is_transient(error)) {
                ++stats_.send_stalls;
                return consumed;
            }
            if (is_fatal(error)) {
                if (consumed == 0) return Unexpected{error};
                return consumed;
            }
            stats_.packets_refused += send_counts_[done];
            stats_.last_send_error = error;
            consumed += send_counts_[done];
            ++done;
        }
    }
    return consumed;
}

// --- DatagramIo: receive -----------------------------------------------------

Expected<bool, int> DatagramIo::fill(std::size_t max_packets) {
    for (int calls = 0; calls < max_fill_calls; ++calls) {
        filled_slots_ = 0;
        next_slot_ = 0;
        const std::size_t count = std::min(config_.batch, max_packets);
        for (std::size_t i = 0; i < std::min(count, dirty_slots_); ++i) {
            msghdr& header = receive_messages_[i].msg_hdr;
            header.msg_namelen = sizeof(sockaddr_storage);
            header.msg_controllen = sizeof(Control::bytes);
            header.msg_flags = 0;
            receive_messages_[i].msg_len = 0;
        }
        ++stats_.receive_syscalls;
        const int result = ::recvmmsg(fd_.get(), receive_messages_.data(),
                                      static_cast<unsigned>(count), MSG_DONTWAIT, nullptr);
        // The kernel writes back only the headers of datagrams it returned
        // (and at most the first one on an error); the rest stay reset.
        dirty_slots_ = result > 0 ? static_cast<std::size_t>(result) : 1;
        if (result < 0) {
            const int error = errno;
            if (error == EAGAIN || error == EWOULDBLOCK) return false;
            if (error == EINTR) continue;
            return Unexpected{error};
        }
        if (result == 0) return false;
        const auto received = static_cast<std::size_t>(result);
        stats_.datagrams_received += received;
        for (std::size_t i = 0; i < received; ++i) {
            slots_[filled_slots_] = parse(i);
            if (slots_[filled_slots_].offset < slots_[filled_slots_].end) ++filled_slots_;
        }
        // Read again only when everything read was dropped: nothing has been
        // delivered yet, so no packet a sink saw can be overwritten.
        if (filled_slots_ > 0) return true;
    }
    return false;
}

DatagramIo::Slot DatagramIo::parse(std::size_t index) {
    const mmsghdr& message = receive_messages_[index];
    const msghdr& header = message.msg_hdr;
    const std::byte* data = buffers_.get() + index * slot_size_;
    const std::size_t length = message.msg_len;
    Slot slot;
    const auto drop = [this]() {
        ++stats_.datagrams_dropped;
        return Slot{};
    };
    if ((header.msg_flags & MSG_TRUNC) != 0 || length > slot_size_) return drop();
    const std::optional<engine::Endpoint> source = endpoint_from(receive_addresses_[index]);
    if (!source) return drop();
    slot.source = source->address;
    slot.source_port = source->port;

    int gro_segment = 0;
    for (const cmsghdr* control = CMSG_FIRSTHDR(&header); control != nullptr;
         control = CMSG_NXTHDR(const_cast<msghdr*>(&header), const_cast<cmsghdr*>(control))) {
        const std::byte* value = reinterpret_cast<const std::byte*>(CMSG_DATA(control));
        const std::size_t value_length = control->cmsg_len - CMSG_LEN(0);
        if (control->cmsg_level == SOL_IP && control->cmsg_type == IP_TOS && value_length >= 1) {
            slot.tos = static_cast<std::uint8_t>(value[0]);
        } else if (control->cmsg_level == SOL_IPV6 && control->cmsg_type == IPV6_TCLASS &&
                   value_length >= sizeof(int)) {
            int tclass = 0;
            std::memcpy(&tclass, value, sizeof(tclass));
            slot.tos = static_cast<std::uint8_t>(tclass);
        } else if (control->cmsg_level == SOL_UDP && control->cmsg_type == UDP_GRO &&
                   value_length >= sizeof(int)) {
            std::memcpy(&gro_segment, value, sizeof(gro_segment));
        }
    }

    std::size_t start = 0;
    if (config_.ipv4_header) {
        // Raw IPv4 sockets see the IP header; only its length and TOS matter.
        if (length < 20) return drop();
        const auto first = static_cast<std::uint8_t>(data[0]);
        const std::size_t header_length = static_cast<std::size_t>(first & 0x0F) * 4;
        if ((first >> 4) != 4 || header_length < 20 || header_length > length) return drop();
        slot.tos = static_cast<std::uint8_t>(data[1]);
        start = header_length;
    }
    if (start >= length) return drop();
    const std::size_t payload = length - start;
    const std::size_t base = index * slot_size_;
    slot.offset = base + start;
    slot.end = base + length;
    slot.segment = payload;
    if (gro_segment > 0 && static_cast<std::size_t>(gro_segment) < payload) {
        slot.segment = static_cast<std::size_t>(gro_segment);
        ++stats_.gro_datagrams;
    }
    return slot;
}

std::optional<ReceivedPacket> DatagramIo::next() {
    while (next_slot_ < filled_slots_) {
        Slot& slot = slots_[next_slot_];
        if (slot.offset < slot.end) {
            const std::size_t length = std::min(slot.segment, slot.end - slot.offset);
            const std::byte* data = buffers_.get() + slot.offset;
            slot.offset += length;
            ++stats_.packets_received;
            return ReceivedPacket{slot.source, slot.source_port, slot.tos,
                                  std::span<const std::byte>(data, length)};
        }
        ++next_slot_;
    }
    return std::nullopt;
}

void DatagramIo::drain() {
    if (fd_.get() < 0) return;
    for (int calls = 0; calls < max_drain_calls; ++calls) {
        for (std::size_t i = 0; i < config_.batch; ++i) {
            msghdr& header = receive_messages_[i].msg_hdr;
            header.msg_namelen = sizeof(sockaddr_storage);
            header.msg_controllen = sizeof(Control::bytes);
            header.msg_flags = 0;
        }
        const int result = ::recvmmsg(fd_.get(), receive_messages_.data(),
                                      static_cast<unsigned>(config_.batch), MSG_DONTWAIT, nullptr);
        if (result < 0 && errno == EINTR) continue;
        if (result <= 0) break;
    }
    dirty_slots_ = SIZE_MAX;
    filled_slots_ = 0;
    next_slot_ = 0;
}

}  // namespace detail

// --- UdpSocket -----------------------------------------------------------------

namespace {

int set_int_option(int fd, int level, int name, int value) {
    return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
}

}  // namespace

Expected<UdpSocket, int> UdpSocket::open(const engine::Address& local, std::uint16_t port,
                                         const Options& options) {
    if (options.batch == 0 || options.max_packet == 0 ||
        options.max_packet > detail::max_gso_payload) {
        return Unexpected{EINVAL};
    }
    const int family = local.is_ipv4() ? AF_INET : AF_INET6;
    const int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) return Unexpected{errno};
    detail::UniqueFd owner(fd);

    int error = 0;
    if (family == AF_INET6) {
        if ((error = set_int_option(fd, SOL_IPV6, IPV6_V6ONLY, 0)) != 0) return Unexpected{error};
        if ((error = set_int_option(fd, SOL_IPV6, IPV6_RECVTCLASS, 1)) != 0)
            return Unexpected{error};
    }
    // On an AF_INET6 socket this covers IPv4-mapped peers.
    if ((error = set_int_option(fd, SOL_IP, IP_RECVTOS, 1)) != 0) return Unexpected{error};
    if (options.receive_buffer > 0 &&
        (error = set_int_option(fd, SOL_SOCKET, SO_RCVBUF, options.receive_buffer)) != 0) {
        return Unexpected{error};
    }
    if (options.send_buffer > 0 &&
        (error = set_int_option(fd, SOL_SOCKET, SO_SNDBUF, options.send_buffer)) != 0) {
        return Unexpected{error};
    }
    bool gso = options.gso;
    bool gro = options.gro;
    if (gro && (error = set_int_option(fd, SOL_UDP, UDP_GRO, 1)) != 0) {
        if (error != ENOPROTOOPT) return Unexpected{error};
        gro = false;
    }
    // Setting the socket-wide segment size to 0 (the default) is harmless
    // and tells whether the kernel knows UDP_SEGMENT at all.
    if (gso && (error = set_int_option(fd, SOL_UDP, UDP_SEGMENT, 0)) != 0) {
        if (error != ENOPROTOOPT) return Unexpected{error};
        gso = false;
    }

    const Expected<detail::SocketAddress, int> address =
        detail::socket_address(family, engine::Endpoint{local, port});
    if (!address) return Unexpected{address.error()};
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.value()), address->length) != 0) {
        return Unexpected{errno};
    }
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof(bound);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
        return Unexpected{errno};
    }
    const std::optional<engine::Endpoint> endpoint = detail::endpoint_from(bound);
    if (!endpoint) return Unexpected{EAFNOSUPPORT};

    detail::DatagramIo::Config config;
    config.family = family;
    config.gso = gso;
    config.gro = gro;
    config.batch = options.batch;
    config.max_packet = options.max_packet;
    return UdpSocket(detail::DatagramIo(std::move(owner), config), local, endpoint->port, gso, gro);
}

}  // namespace uhoma::driver
