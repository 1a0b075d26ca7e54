#include "support/fabric.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace uhoma::testing {

namespace {

using Picos = std::int64_t;
constexpr Picos max_picos = std::numeric_limits<Picos>::max();
constexpr Picos picos_per_ns = 1000;

// Nanosecond counts outside [0, max_picos / 1000] are clamped: before the
// epoch is "now at the latest", beyond ~106 days is "never reached".
Picos picos_from_ns(std::int64_t ns) {
    if (ns <= 0) return 0;
    if (ns >= max_picos / picos_per_ns) return max_picos;
    return ns * picos_per_ns;
}
Picos picos_at(engine::Instant t) {
    return picos_from_ns(t.time_since_epoch().count());
}
Picos picos_of(engine::Duration d) {
    return picos_from_ns(d.count());
}
Picos add_picos(Picos a, Picos b) {
    return a > max_picos - b ? max_picos : a + b;
}

// Hosts see time rounded up to the next nanosecond.
engine::Instant instant_at(Picos p) {
    return engine::Instant{engine::Duration{(p + picos_per_ns - 1) / picos_per_ns}};
}
engine::Duration duration_of(Picos p) {
    return engine::Duration{(p + picos_per_ns - 1) / picos_per_ns};
}

// ceil(bytes * 8 / rate) in picoseconds.
Picos serialization_picos(std::size_t wire_bytes, std::uint64_t rate_bps) {
    __extension__ using u128 = unsigned __int128;
    const u128 numerator = u128{wire_bytes} * 8u * 1'000'000'000'000u;
    const u128 picos = (numerator + rate_bps - 1) / rate_bps;
    return picos >= static_cast<u128>(max_picos) ? max_picos : static_cast<Picos>(picos);
}

void check_probability(double p, const char* what) {
    if (!(p >= 0.0 && p <= 1.0))
        throw std::invalid_argument(std::string("fabric: fault probability out of [0, 1]: ") +
                                    what);
}

void validate(const LinkConfig& link) {
    if (link.rate_bps == 0) throw std::invalid_argument("fabric: link rate_bps must be > 0");
    if (link.propagation.count() < 0)
        throw std::invalid_argument("fabric: negative link propagation");
}

void validate(const FaultConfig& faults) {
    check_probability(faults.loss, "loss");
    check_probability(faults.duplicate, "duplicate");
    check_probability(faults.reorder, "reorder");
    check_probability(faults.corrupt, "corrupt");
    if (faults.reorder > 0 && faults.reorder_delay_max.count() <= 0)
        throw std::invalid_argument("fabric: reorder needs reorder_delay_max > 0");
}

void validate(const HostConfig& config) {
    validate(config.uplink);
    validate(config.downlink);
    validate(config.uplink_faults);
    validate(config.downlink_faults);
    if (config.nic_ring_packets == 0)
        throw std::invalid_argument("fabric: nic_ring_packets must be >= 1");
}

}  // namespace

const char* to_string(TapKind kind) {
    switch (kind) {
        case TapKind::sent:
            return "sent";
        case TapKind::enqueued:
            return "enqueued";
        case TapKind::forwarded:
            return "forwarded";
        case TapKind::delivered:
            return "delivered";
        case TapKind::lost:
            return "lost";
        case TapKind::buffer_drop:
            return "buffer_drop";
        case TapKind::unroutable:
            return "unroutable";
        case TapKind::duplicated:
            return "duplicated";
        case TapKind::corrupted:
            return "corrupted";
        case TapKind::delayed:
            return "delayed";
    }
    return "?";
}

Fabric::Fabric(const FabricConfig& config, std::uint64_t seed) : config_(config), rng_(seed) {
    validate(config_.host_defaults());
    if (config_.start.time_since_epoch().count() < 0)
        throw std::invalid_argument("fabric: start must not be before the epoch");
    now_ = picos_at(config_.start);
}

Fabric::~Fabric() = default;

HostId Fabric::add_host(FabricHost& h, const engine::Address& address) {
    return add_host(h, address, config_.host_defaults());
}

HostId Fabric::add_host(FabricHost& h, const engine::Address& address, const HostConfig& config) {
    validate(config);
    if (by_address_.contains(address))
        throw std::invalid_argument("fabric: two hosts with the same address");
    if (hosts_.size() >= no_host) throw std::invalid_argument("fabric: too many hosts");
    const auto id = static_cast<HostId>(hosts_.size());
    HostState& state = hosts_.emplace_back();
    state.host = &h;
    state.address = address;
    state.config = config;
    state.uplink_busy_until = now_;
    by_address_.emplace(address, id);
    refresh_deadline(id);
    return id;
}

void Fabric::set_faults(HostId h, Direction direction, const FaultConfig& faults) {
    validate(faults);
    HostState& state = host(h);
    (direction == Direction::uplink ? state.config.uplink_faults : state.config.downlink_faults) =
        faults;
}

void Fabric::set_tap(std::function<void(const TapEvent&)> tap) {
    tap_ = std::move(tap);
}

engine::Instant Fabric::now() const {
    return instant_at(now_);
}

void Fabric::run_until(engine::Instant t) {
    const Picos limit = picos_at(t);
    while (step(limit)) {
    }
    now_ = std::max(now_, limit);
}

bool Fabric::run_until_idle(engine::Duration limit) {
    const Picos end = add_picos(now_, picos_of(limit));
    while (true) {
        if (check_idle()) return true;
        if (!step(end)) break;
    }
    now_ = std::max(now_, end);
    return check_idle();
}

bool Fabric::run_until(const std::function<bool()>& predicate, engine::Duration limit) {
    const Picos end = add_picos(now_, picos_of(limit));
    while (true) {
        if (predicate()) return true;
        if (!step(end)) break;
    }
    now_ = std::max(now_, end);
    return predicate();
}

void Fabric::poke(HostId h) {
    host(h);  // range check
    drain(h);
    refresh_deadline(h);
}

bool Fabric::idle() const {
    if (in_flight_ > 0) return false;
    return std::all_of(hosts_.begin(), hosts_.end(),
                       [](const HostState& s) { return s.host->next_deadline() == engine::never; });
}

// idle(), but cheap while a deadline is known to be pending, and a deadline
// the fabric had not seen (the test called a host without poke()) gets
// scheduled.
bool Fabric::check_idle() {
    if (in_flight_ > 0 || hosts_with_deadline_ > 0) return false;
    for (HostId h = 0; h < hosts_.size(); ++h) refresh_deadline(h);
    return hosts_with_deadline_ == 0;
}

std::optional<HostId> Fabric::find_host(const engine::Address& address) const {
    const auto it = by_address_.find(address);
    if (it == by_address_.end()) return std::nullopt;
    return it->second;
}

const engine::Address& Fabric::address(HostId h) const {
    return host(h).address;
}
const HostStats& Fabric::host_stats(HostId h) const {
    return host(h).stats;
}
const PortStats& Fabric::port_stats(HostId h) const {
    return host(h).port;
}

std::size_t Fabric::ip_header_bytes(const engine::Address& destination) {
    return destination.is_ipv4() ? 20 : 40;
}

Fabric::HostState& Fabric::host(HostId h) {
    if (h >= hosts_.size()) throw std::out_of_range("fabric: unknown HostId");
    return hosts_[h];
}

const Fabric::HostState& Fabric::host(HostId h) const {
    if (h >= hosts_.size()) throw std::out_of_range("fabric: unknown HostId");
    return hosts_[h];
}

// --- Event loop ---------------------------------------------------------------

void Fabric::schedule(Picos time, EventKind kind, std::uint32_t target, std::uint64_t generation) {
    events_.push(Event{time, next_sequence_++, kind, target, generation});
}

bool Fabric::step(Picos limit) {
    if (events_.empty() || events_.top().time > limit) return false;
    const Event event = events_.top();
    events_.pop();
    now_ = std::max(now_, event.time);
    dispatch(event);
    return true;
}

void Fabric::dispatch(const Event& event) {
    switch (event.kind) {
        case EventKind::timer:
            fire_timer(event.target, event.generation);
            return;
        case EventKind::uplink_done:
            uplink_done(event.target);
            return;
        case EventKind::switch_arrival:
            switch_arrival(event.target);
            return;
        case EventKind::port_done:
            port_done(event.target);
            return;
        case EventKind::host_arrival:
            host_arrival(event.target);
            return;
    }
}

// --- Hosts --------------------------------------------------------------------

void Fabric::set_deadline(HostId h, engine::Instant deadline, Picos fire_at) {
    HostState& s = hosts_[h];
    if ((s.deadline == engine::never) != (deadline == engine::never)) {
        if (deadline == engine::never)
            --hosts_with_deadline_;
        else
            ++hosts_with_deadline_;
    }
    s.deadline = deadline;
    ++s.timer_generation;  // any timer event already queued is now stale
    if (deadline != engine::never) schedule(fire_at, EventKind::timer, h, s.timer_generation);
}

void Fabric::refresh_deadline(HostId h) {
    const engine::Instant deadline = hosts_[h].host->next_deadline();
    if (deadline == hosts_[h].deadline) return;  // already scheduled (or never)
    set_deadline(h, deadline, std::max(picos_at(deadline), now_));
}

void Fabric::fire_timer(HostId h, std::uint64_t generation) {
    HostState& s = hosts_[h];
    if (generation != s.timer_generation) return;  // superseded
    set_deadline(h, engine::never, 0);             // consumed
    const engine::Instant deadline = s.host->next_deadline();
    if (deadline == engine::never || picos_at(deadline) > now_) {
        refresh_deadline(h);  // moved later without a poke
        return;
    }
    ++s.stats.timeouts;
    s.host->handle_timeout(now());
    drain(h);
    const engine::Instant next = s.host->next_deadline();
    if (next != engine::never && picos_at(next) <= now_) {
        // Still due: retry in 1 ns rather than spin at this instant.
        const Picos ns = (now_ + picos_per_ns - 1) / picos_per_ns;
        set_deadline(h, next, add_picos(ns * picos_per_ns, picos_per_ns));
        return;
    }
    refresh_deadline(h);
}

void Fabric::drain(HostId h) {
    while (true) {
        HostState& s = hosts_[h];
        if (s.nic_packets >= s.config.nic_ring_packets) {
            s.nic_blocked = true;
            return;
        }
        const std::optional<engine::Transmit> transmit = s.host->poll_transmit(now());
        if (!transmit) return;
        send(h, *transmit);
    }
}

void Fabric::send(HostId h, const engine::Transmit& transmit) {
    const std::uint32_t slot = alloc_packet();
    HostState& s = hosts_[h];
    Packet& p = packets_[slot];
    p.bytes.assign(transmit.header.begin(), transmit.header.end());
    p.bytes.insert(p.bytes.end(), transmit.payload.begin(), transmit.payload.end());
    p.id = next_packet_id_++;
    p.source = h;
    const auto destination = by_address_.find(transmit.destination.address);
    p.destination = destination == by_address_.end() ? no_host : destination->second;
    if (transmit.priority >= fabric_priorities) ++s.stats.invalid_priority;
    p.priority = static_cast<std::uint8_t>(transmit.priority % fabric_priorities);
    p.ip_bytes = p.bytes.size() + ip_header_bytes(transmit.destination.address);

    ++in_flight_;
    ++stats_.packets_sent;
    ++s.stats.packets_sent;
    s.stats.bytes_sent += p.bytes.size();
    tap(TapKind::sent, slot, Direction::uplink);

    // The NIC FIFO never reorders, so the finish time is known now.
    const Picos start = std::max(now_, s.uplink_busy_until);
    const Picos finish = add_picos(
        start,
        serialization_picos(p.ip_bytes + s.config.uplink.framing_bytes, s.config.uplink.rate_bps));
    s.uplink_busy_until = finish;
    ++s.nic_packets;
    s.stats.max_nic_packets = std::max(s.stats.max_nic_packets, s.nic_packets);
    s.stats.max_nic_backlog = std::max(s.stats.max_nic_backlog, duration_of(finish - now_));
    schedule(finish, EventKind::uplink_done, slot);
}

// --- Packets in the network -----------------------------------------------------

void Fabric::uplink_done(std::uint32_t slot) {
    const HostId h = packets_[slot].source;
    HostState& s = hosts_[h];
    --s.nic_packets;
    leave_link(slot, Direction::uplink, picos_of(s.config.uplink.propagation));
    if (hosts_[h].nic_blocked) {
        hosts_[h].nic_blocked = false;
        drain(h);
        refresh_deadline(h);
    }
}

// Applies the faults of the link the packet has just finished crossing and
// schedules its arrival (and a duplicate's) at the other end.
void Fabric::leave_link(std::uint32_t slot, Direction direction, Picos delay) {
    const HostId owner =
        direction == Direction::uplink ? packets_[slot].source : packets_[slot].destination;
    const FaultConfig& faults = direction == Direction::uplink
                                    ? hosts_[owner].config.uplink_faults
                                    : hosts_[owner].config.downlink_faults;
    const EventKind arrival =
        direction == Direction::uplink ? EventKind::switch_arrival : EventKind::host_arrival;

    if (chance(faults.loss)) {
        ++stats_.lost;
        tap(TapKind::lost, slot, direction);
        free_packet(slot);
        return;
    }
    if (chance(faults.corrupt) && !packets_[slot].bytes.empty()) {
        std::vector<std::byte>& bytes = packets_[slot].bytes;
        const std::uint64_t bits = std::uint64_t{bytes.size()} * 8;
        const std::uint64_t flips = std::min<std::uint64_t>(faults.corrupt_bits, bits);
        std::vector<std::uint64_t> chosen;
        while (chosen.size() < flips) {
            const std::uint64_t bit = below(bits);
            if (std::find(chosen.begin(), chosen.end(), bit) != chosen.end()) continue;
            chosen.push_back(bit);
            bytes[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
        }
        if (flips > 0) {
            ++stats_.corrupted;
            tap(TapKind::corrupted, slot, direction);
        }
    }
    std::array<std::uint32_t, 2> copies{slot, 0};
    std::size_t count = 1;
    if (chance(faults.duplicate)) {
        const std::uint32_t copy = alloc_packet();
        packets_[copy] = packets_[slot];
        copies[count++] = copy;
        ++in_flight_;
        ++stats_.duplicated;
        tap(TapKind::duplicated, slot, direction);
    }
    for (std::size_t i = 0; i < count; ++i) {
        Picos extra = 0;
        if (chance(faults.reorder)) {
            const auto max_extra = static_cast<std::uint64_t>(picos_of(faults.reorder_delay_max));
            extra = static_cast<Picos>(1 + below(max_extra));
            ++stats_.reordered;
            tap(TapKind::delayed, copies[i], direction);
        }
        schedule(add_picos(add_picos(now_, delay), extra), arrival, copies[i]);
    }
}

void Fabric::switch_arrival(std::uint32_t slot) {
    const Packet& p = packets_[slot];
    if (p.destination == no_host) {
        ++stats_.unroutable;
        tap(TapKind::unroutable, slot, Direction::uplink);
        free_packet(slot);
        return;
    }
    HostState& d = hosts_[p.destination];
    if (d.port.queue_bytes + p.ip_bytes > d.config.port_buffer_bytes) {
        ++stats_.buffer_drops;
        ++d.port.buffer_drops[p.priority];
        tap(TapKind::buffer_drop, slot, Direction::downlink);
        free_packet(slot);
        return;
    }
    d.port.queue_bytes += p.ip_bytes;
    d.port.max_queue_bytes = std::max(d.port.max_queue_bytes, d.port.queue_bytes);
    d.queues[p.priority].push_back(slot);
    tap(TapKind::enqueued, slot, Direction::downlink);
    if (!d.port_busy) start_port(p.destination);
}

void Fabric::start_port(HostId h) {
    HostState& d = hosts_[h];
    for (std::size_t level = fabric_priorities; level-- > 0;) {
        auto& queue = d.queues[level];
        if (queue.empty()) continue;
        const std::uint32_t slot = queue.front();
        queue.pop_front();
        d.port_busy = true;
        const Packet& p = packets_[slot];
        ++d.port.packets_forwarded;
        d.port.bytes_forwarded += p.ip_bytes;
        const Picos finish =
            add_picos(now_, serialization_picos(p.ip_bytes + d.config.downlink.framing_bytes,
                                                d.config.downlink.rate_bps));
        tap(TapKind::forwarded, slot, Direction::downlink);
        schedule(finish, EventKind::port_done, slot);
        return;
    }
}

void Fabric::port_done(std::uint32_t slot) {
    const HostId h = packets_[slot].destination;
    HostState& d = hosts_[h];
    d.port.queue_bytes -= packets_[slot].ip_bytes;
    d.port_busy = false;
    leave_link(slot, Direction::downlink, picos_of(d.config.downlink.propagation));
    start_port(h);
}

void Fabric::host_arrival(std::uint32_t slot) {
    const Packet& p = packets_[slot];
    const HostId h = p.destination;
    HostState& d = hosts_[h];
    ++stats_.packets_delivered;
    ++d.stats.packets_delivered;
    d.stats.bytes_delivered += p.bytes.size();
    tap(TapKind::delivered, slot, Direction::downlink);
    d.host->handle_packet(p.bytes, hosts_[p.source].address, now());
    free_packet(slot);
    drain(h);
    refresh_deadline(h);
}

// --- Packet buffers and helpers ------------------------------------------------

std::uint32_t Fabric::alloc_packet() {
    if (!free_packets_.empty()) {
        const std::uint32_t slot = free_packets_.back();
        free_packets_.pop_back();
        return slot;
    }
    packets_.emplace_back();
    return static_cast<std::uint32_t>(packets_.size() - 1);
}

void Fabric::free_packet(std::uint32_t slot) {
    --in_flight_;
    free_packets_.push_back(slot);  // keeps the buffer's capacity for reuse
}

void Fabric::tap(TapKind kind, std::uint32_t slot, Direction link) {
    if (!tap_) return;
    const Packet& p = packets_[slot];
    tap_(TapEvent{now(), kind, p.id, p.source, p.destination, link, p.priority, p.bytes});
}

// 53 random bits: the same doubles on every platform.
double Fabric::uniform01() {
    return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

// Draws only for 0 < p < 1, so certain and impossible faults use no
// randomness.
bool Fabric::chance(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return uniform01() < p;
}

// Uniform in [0, n), n > 0 (multiply-shift; the bias is below 2^-64 * n).
std::uint64_t Fabric::below(std::uint64_t n) {
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((u128{rng_()} * n) >> 64);
}

}  // namespace uhoma::testing
