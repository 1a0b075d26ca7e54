// The C++ API (include/uhoma/transport.h) over runtime::Runtime.
#include "uhoma/transport.h"

#include <arpa/inet.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "api/observability.h"
#include "api/options.h"
#include "api/socket_shared.h"
#include "engine/metrics.h"
#include "runtime/runtime.h"

namespace uhoma {

SocketShared::~SocketShared() {
    if (transport) transport->runtime().close_socket(id);
    if (region != nullptr) ::munmap(region, region_bytes);
}

engine::Endpoint to_engine(const Endpoint& e) {
    engine::Endpoint out;
    out.address.bytes = e.address;
    out.port = e.port;
    return out;
}

Endpoint from_engine(const engine::Endpoint& e) {
    Endpoint out;
    out.address = e.address.bytes;
    out.port = e.port;
    return out;
}

// ---------------------------------------------------------------------------
// Endpoint

Expected<Endpoint, std::string> Endpoint::from(std::string_view address, std::uint16_t port) {
    const std::string text(address);
    Endpoint e;
    e.port = port;
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        e.address = engine::Address::ipv4(ntohl(v4.s_addr)).bytes;
    } else if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
        std::memcpy(e.address.data(), &v6, 16);
    } else {
        return Unexpected{"not a numeric IPv4 or IPv6 address: '" + text + "'"};
    }
    return e;
}

Expected<Endpoint, std::string> Endpoint::parse(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return Unexpected{"expected ADDRESS:PORT, got '" + std::string(text) + "'"};
    std::string_view host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string port_text(text.substr(colon + 1));
    char* end = nullptr;
    const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port == 0 || port > 65535) {
        return Unexpected{"bad port in '" + std::string(text) + "'"};
    }
    return from(host, static_cast<std::uint16_t>(port));
}

std::string Endpoint::to_string() const {
    return to_engine(*this).to_string();
}

// ---------------------------------------------------------------------------
// Transport

Transport::Transport(std::unique_ptr<runtime::Runtime> runtime) : runtime_(std::move(runtime)) {}
Transport::~Transport() = default;

Expected<std::shared_ptr<Transport>, std::string> Transport::create(const Options& options) {
    auto ro = api::runtime_options_from_environment(options.parameters);
    if (!ro) return Unexpected{ro.error()};
    ro->ipv6 = options.ipv6;
    auto rt = runtime::Runtime::create(*ro);
    if (!rt) return Unexpected{rt.error()};
    auto transport = std::shared_ptr<Transport>(new Transport(std::move(*rt)));
    transport->control_ = api::attach_control(transport->runtime());  // observability
    return transport;
}

std::string Transport::metrics_text() const {
    const auto t = std::chrono::steady_clock::now().time_since_epoch();
    return engine::format_homa_metrics(
        runtime_->metrics(),
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t).count()));
}

// ---------------------------------------------------------------------------
// Message

Message::Message(Message&& o) noexcept { *this = std::move(o); }

Message& Message::operator=(Message&& o) noexcept {
    if (this != &o) {
        release();
        socket_ = std::move(o.socket_);
        id_ = o.id_;
        peer_ = o.peer_;
        cookie_ = o.cookie_;
        length_ = o.length_;
        num_chunks_ = o.num_chunks_;
        offsets_ = o.offsets_;
        o.num_chunks_ = 0;
    }
    return *this;
}

Message::~Message() { release(); }

void Message::release() {
    if (socket_ && num_chunks_ > 0) {
        (void)socket_->transport->runtime().release_bpages(
            socket_->id, std::span<const std::uint32_t>(offsets_.data(), num_chunks_));
    }
    num_chunks_ = 0;
    socket_.reset();
}

std::span<const std::byte> Message::chunk(std::size_t index) const {
    if (index >= num_chunks_ || !socket_) return {};
    const std::size_t start = index * 65536;
    const std::size_t n = std::min<std::size_t>(65536, length_ - start);
    return std::span<const std::byte>(socket_->region + offsets_[index], n);
}

std::vector<std::byte> Message::to_vector() const {
    std::vector<std::byte> out;
    out.reserve(length_);
    for (std::size_t i = 0; i < num_chunks_; ++i) {
        const auto c = chunk(i);
        out.insert(out.end(), c.begin(), c.end());
    }
    return out;
}

// ---------------------------------------------------------------------------
// Socket

Socket::Socket(Socket&&) noexcept = default;

Socket& Socket::operator=(Socket&& o) noexcept {
    if (this != &o) {
        detach();
        shared_ = std::move(o.shared_);
        failed_id_ = o.failed_id_;
    }
    return *this;
}

Socket::~Socket() { detach(); }

void Socket::detach() {
    if (shared_) detach_from_loop(shared_);
}

Expected<Socket, int> Socket::open(std::shared_ptr<Transport> transport, std::uint16_t server_port,
                                   std::size_t region_bytes) {
    runtime::Runtime& rt = transport->runtime();
    auto id = rt.open_socket();
    if (!id) return Unexpected{id.error()};
    auto shared = std::make_shared<SocketShared>();
    shared->transport = transport;
    shared->id = *id;
    if (server_port != 0) {
        auto bound = rt.bind(*id, server_port);
        if (!bound) return Unexpected{bound.error()};
    }
    void* region = ::mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return Unexpected{ENOMEM};
    shared->region = static_cast<std::byte*>(region);
    shared->region_bytes = region_bytes;
    auto set = rt.set_receive_buffer(*id, std::span(shared->region, region_bytes));
    if (!set) return Unexpected{set.error()};
    Socket s;
    s.shared_ = std::move(shared);
    return s;
}

std::uint16_t Socket::port() const {
    return shared_->transport->runtime().port(shared_->id).value_or(0);
}

Endpoint Socket::endpoint(std::string_view address) const {
    auto e = Endpoint::from(address, port());
    return e ? *e : Endpoint{};
}

SendBatch::SendBatch(Transport& transport)
    : transport_(transport), active_(transport.runtime().cork()) {}

SendBatch::~SendBatch() {
    if (active_) transport_.runtime().uncork();
}

void SendBatch::flush() {
    if (active_) transport_.runtime().flush_batch();
}

Expected<RpcId, int> Socket::send_request(const Endpoint& server,
                                          std::span<const std::byte> request,
                                          std::uint64_t cookie) {
    return shared_->transport->runtime().send_request(shared_->id, to_engine(server), request,
                                                       cookie, false);
}

Message MessageBuilder::build(const std::shared_ptr<SocketShared>& socket,
                              const engine::ReceivedMessage& r) {
    Message msg;
    msg.socket_ = socket;
    msg.id_ = r.id;
    msg.peer_ = from_engine(r.peer);
    msg.cookie_ = r.completion_cookie;
    msg.length_ = r.length;
    msg.num_chunks_ = r.num_bpages;
    std::copy_n(r.bpage_offsets.begin(), r.num_bpages, msg.offsets_.begin());
    return msg;
}

namespace {

// The message, or the RPC's error (remembering which RPC failed).
Expected<Message, int> to_message(const std::shared_ptr<SocketShared>& socket,
                                  const Expected<engine::ReceivedMessage, int>& r,
                                  RpcId& failed) {
    if (!r) return Unexpected{r.error()};
    if (r->error != 0) {
        failed = r->id;
        return Unexpected{r->error};
    }
    return MessageBuilder::build(socket, *r);
}

}  // namespace

Expected<Message, int> Socket::receive(Timeout timeout) {
    auto r = shared_->transport->runtime().receive(shared_->id, 0, timeout);
    return to_message(shared_, r, failed_id_);
}

Expected<Message, int> Socket::call(const Endpoint& server, std::span<const std::byte> request,
                                    Timeout timeout) {
    runtime::Runtime& rt = shared_->transport->runtime();
    auto id = rt.send_request(shared_->id, to_engine(server), request, 0, true);
    if (!id) return Unexpected{id.error()};
    auto r = rt.receive(shared_->id, *id, timeout);
    if (!r && r.error() == EAGAIN) (void)rt.abort(shared_->id, *id, 0);
    return to_message(shared_, r, failed_id_);
}

Expected<std::monostate, int> Socket::reply(const Message& request,
                                            std::span<const std::byte> response) {
    return shared_->transport->runtime().send_reply(shared_->id, to_engine(request.peer()),
                                                     request.id(), response);
}

int Socket::ready_fd() const {
    return shared_->transport->runtime().ready_fd(shared_->id).value_or(-1);
}

}  // namespace uhoma
