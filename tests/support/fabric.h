// A deterministic multi-host network for tests and benchmarks: N hosts
// running real protocol engines behind one switch, on a virtual clock.
//
// Design notes
// ------------
// Topology. A star: each host has an uplink (its NIC to the switch) and a
// downlink (the switch port back to it), each with its own rate and
// propagation delay. The host NIC is a FIFO that serializes at link rate;
// nothing reorders it, because the host's own pacer is supposed to keep it
// short (spec 5: a packet already in the NIC queue cannot be preempted). The
// switch egress port towards each host has 8 strict-priority FIFO queues
// (spec 1.1: level 7 is served first) sharing one buffer limit per port;
// a packet that does not fit is tail-dropped and counted per port and
// priority. Transmission is store-and-forward and never preempted: a
// high-priority packet waits for the one already on the wire.
//
// What a host hands over. Transmit::header followed by Transmit::payload is
// the Homa packet, i.e. the IP payload (the fabric joins the two parts, as
// the kernel gathers them from two iovecs). On the wire each packet also carries an IP header (20 bytes when
// the destination is IPv4-mapped, 40 for IPv6) and LinkConfig::framing_bytes
// of Ethernet overhead (default 42: header 14, VLAN tag 4, FCS 4, preamble
// and start delimiter 8, inter-frame gap 12; the figure Linux Homa's pacer
// uses). Serialization time is (homa + ip + framing) * 8 / rate. The minimum
// Ethernet payload (42 bytes with a VLAN tag) is never padded: every valid
// Homa packet (>= 26 bytes) plus its IP header is already longer. Switch
// buffers count IP packet bytes (homa + ip header).
//
// Priority. Transmit::priority is what the driver writes as `priority << 5`
// into an 8-bit TOS byte, so a value above 7 is taken modulo 8, as a switch
// would see it, and counted in HostStats::invalid_priority.
//
// Routing uses Transmit::destination.address (the IP header), never the
// Homa bytes, so corruption cannot misroute. An address no host has is
// dropped at the switch and counted as unroutable.
//
// Faults are drawn per packet per link, when the packet has left the link:
// loss (the packet used the link, then vanishes: bad FCS or IP checksum),
// corruption (flip `corrupt_bits` distinct random bits of the Homa bytes;
// IP and Ethernet checksums are assumed not to catch it, and Homa does not
// check its own, spec 1.1), duplication (an exact copy, including any
// corruption, follows the original) and reordering (with probability
// `reorder`, a copy gets an extra delay uniform in (0, reorder_delay_max]
// on top of propagation, so later packets can overtake it). Every link has
// its own FaultConfig: FabricConfig::faults for all of them by default,
// HostConfig or set_faults() per host and direction.
//
// Clock. An event queue (time, sequence number) drives everything: host
// timers, a packet leaving the uplink, arriving at the switch, finishing
// on the downlink, arriving at a host. Internally time is kept in
// picoseconds so that back-to-back packets pace at exactly the link rate
// (at 25 Gb/s a byte takes 320 ps); hosts see nanosecond Instants rounded
// up. Events at the same time run in the order they were scheduled (except
// that a switch port finishing a packet goes first, so a departure frees its
// buffer before a simultaneous arrival is counted), and all
// randomness comes from one std::mt19937_64 seeded in the constructor and
// drawn in event order, with portable conversions (no std:: distributions,
// whose output differs between standard libraries), so a run is bit-for-bit
// reproducible for a given seed. Virtual time is limited to about 106 days.
//
// Hosts. After anything is delivered to a host (a packet, a timeout, or
// poke() after a test called it directly) the fabric drains poll_transmit()
// until nullopt, copying header and payload at once into one fabric-owned
// buffer (the header is only valid until the next call), and re-reads next_deadline(). A
// deadline is fired with handle_timeout() once it is <= now; if a host still
// reports a deadline <= now right after handle_timeout(), the retry waits
// 1 ns so that a misbehaving host cannot stall virtual time. The NIC ring
// holds at most nic_ring_packets; when it is full the fabric stops polling
// that host and resumes as soon as a packet leaves the NIC, like a driver
// with a finite descriptor ring. add_host() does not poll; call poke().
// Hosts and tap callbacks must not call back into the fabric's run or poke
// functions.
//
// Steady state allocates nothing per packet: packet buffers are recycled.
//
// Namespace: uhoma::testing. Inside namespace uhoma it hides GoogleTest's
// namespace, so code there must spell it ::testing (the other helpers do).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/types.h"

namespace uhoma::testing {

// One endpoint attached to the fabric. The engine satisfies this through a
// small adapter.
class FabricHost {
  public:
    virtual ~FabricHost() = default;
    virtual void handle_packet(std::span<const std::byte> bytes, engine::Address source,
                               engine::Instant now) = 0;
    virtual void handle_timeout(engine::Instant now) = 0;
    // Transmit::header stays valid until the next call into the host, the
    // payload as long as Transmit::keep (or the host, when keep is null).
    virtual std::optional<engine::Transmit> poll_transmit(engine::Instant now) = 0;
    // engine::never when nothing is pending.
    virtual engine::Instant next_deadline() const = 0;
};

using HostId = std::uint32_t;
inline constexpr HostId no_host = ~HostId{0};
inline constexpr std::size_t fabric_priorities = 8;

struct LinkConfig {
    std::uint64_t rate_bps = 25'000'000'000;  // > 0
    engine::Duration propagation = std::chrono::nanoseconds{500};
    std::size_t framing_bytes = 42;  // Ethernet overhead per packet (see notes)
};

// Probabilities are per packet per link, each in [0, 1].
struct FaultConfig {
    double loss = 0;
    double duplicate = 0;
    double reorder = 0;  // probability of an extra delay
    engine::Duration reorder_delay_max = std::chrono::microseconds{5};  // > 0 if reorder > 0
    double corrupt = 0;
    unsigned corrupt_bits = 1;  // distinct bits flipped in a corrupted packet
};

enum class Direction : std::uint8_t {
    uplink,    // host NIC -> switch
    downlink,  // switch port -> host
};

struct HostConfig {
    LinkConfig uplink;
    LinkConfig downlink;
    FaultConfig uplink_faults;
    FaultConfig downlink_faults;
    std::size_t port_buffer_bytes = 2u << 20;  // switch egress buffer towards this host
    std::size_t nic_ring_packets = 1024;       // >= 1
};

struct FabricConfig {
    LinkConfig link;     // every uplink and downlink
    FaultConfig faults;  // every link, both directions
    std::size_t port_buffer_bytes = 2u << 20;
    std::size_t nic_ring_packets = 1024;
    engine::Instant start{};  // the virtual time at construction, >= 0

    // What add_host(host, address) uses.
    HostConfig host_defaults() const {
        return HostConfig{link, link, faults, faults, port_buffer_bytes, nic_ring_packets};
    }
};

// Byte counts are Homa bytes (what the host handed over or received).
struct HostStats {
    std::uint64_t packets_sent = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t packets_delivered = 0;
    std::uint64_t bytes_delivered = 0;
    std::uint64_t timeouts = 0;          // handle_timeout() calls
    std::uint64_t invalid_priority = 0;  // Transmit::priority > 7
    std::size_t max_nic_packets = 0;     // NIC FIFO depth, including the one on the wire
    engine::Duration max_nic_backlog{};  // time to drain the NIC FIFO, at its worst
};

// The switch egress port towards one host. Byte counts are IP packet bytes.
struct PortStats {
    std::uint64_t packets_forwarded = 0;
    std::uint64_t bytes_forwarded = 0;
    std::array<std::uint64_t, fabric_priorities> buffer_drops{};  // tail drops by priority
    std::size_t queue_bytes = 0;  // now, including the packet being transmitted
    std::size_t max_queue_bytes = 0;
};

struct FabricStats {
    std::uint64_t packets_sent = 0;
    std::uint64_t packets_delivered = 0;  // duplicates count each time
    std::uint64_t lost = 0;               // loss fault
    std::uint64_t buffer_drops = 0;       // switch port buffer full
    std::uint64_t unroutable = 0;         // no host has the destination address
    std::uint64_t duplicated = 0;         // extra copies made
    std::uint64_t corrupted = 0;
    std::uint64_t reordered = 0;  // extra delays added
};

enum class TapKind : std::uint8_t {
    sent,         // the host handed the packet over (enters its NIC FIFO)
    enqueued,     // accepted into a switch egress queue
    forwarded,    // the switch started transmitting it on the downlink
    delivered,    // handed to the destination host
    lost,         // loss fault on `link`
    buffer_drop,  // tail-dropped: switch port buffer full
    unroutable,   // no host has the destination address
    duplicated,   // a copy was made on `link`; it follows the original
    corrupted,    // bits flipped on `link`; `bytes` are the corrupted ones
    delayed,      // reorder fault on `link` added extra delay
};
const char* to_string(TapKind kind);

struct TapEvent {
    engine::Instant time;
    TapKind kind = TapKind::sent;
    std::uint64_t packet = 0;  // 1, 2, ... in order sent; duplicates share it
    HostId source = no_host;
    HostId destination = no_host;        // no_host if unroutable
    Direction link = Direction::uplink;  // where the packet is (faults: which link)
    std::uint8_t priority = 0;           // 0..7, as the switch sees it
    std::span<const std::byte> bytes;    // Homa bytes, valid during the callback
};

class Fabric {
  public:
    // Throws std::invalid_argument for an invalid configuration.
    explicit Fabric(const FabricConfig& config = {}, std::uint64_t seed = 1);
    Fabric(const Fabric&) = delete;
    Fabric& operator=(const Fabric&) = delete;
    ~Fabric();

    // Attaches `host` (which must outlive the fabric) at `address`. Reads its
    // next_deadline() but does not poll it. Throws std::invalid_argument for
    // a duplicate address or an invalid HostConfig.
    HostId add_host(FabricHost& host, const engine::Address& address);
    HostId add_host(FabricHost& host, const engine::Address& address, const HostConfig& config);
    // Changes the faults of one link from now on (e.g. loss = 1 to cut a
    // host off). Throws std::invalid_argument if invalid.
    void set_faults(HostId host, Direction direction, const FaultConfig& faults);
    // Called for every packet event; an empty function removes the tap.
    void set_tap(std::function<void(const TapEvent&)> tap);

    engine::Instant now() const;
    // Runs every event up to and including `t`, then sets now() to `t` (if
    // later than now()).
    void run_until(engine::Instant t);
    void run_for(engine::Duration d) { run_until(now() + d); }
    // Runs until idle(): true. Returns false, with now() advanced by
    // `limit`, if not idle by then.
    bool run_until_idle(engine::Duration limit);
    // Runs until `predicate` holds (checked before the first event and after
    // each one): true. Returns predicate() after advancing now() by `limit`.
    bool run_until(const std::function<bool()>& predicate, engine::Duration limit);
    // Polls `host` now, after the test called into it directly, and
    // re-reads its deadline.
    void poke(HostId host);

    // No packet anywhere (NIC, link, switch) and every host's
    // next_deadline() is never.
    bool idle() const;
    std::size_t packets_in_flight() const { return in_flight_; }

    std::size_t host_count() const { return hosts_.size(); }
    std::optional<HostId> find_host(const engine::Address& address) const;
    const engine::Address& address(HostId host) const;
    const HostStats& host_stats(HostId host) const;
    const PortStats& port_stats(HostId host) const;
    const FabricStats& stats() const { return stats_; }

    // The IP header the fabric adds for `destination`: 20 bytes if it is
    // IPv4-mapped, else 40. A packet occupies homa + this + framing bytes on
    // the wire, and homa + this in a switch buffer.
    static std::size_t ip_header_bytes(const engine::Address& destination);

  private:
    using Picos = std::int64_t;
    enum class EventKind : std::uint8_t {
        timer,
        uplink_done,
        switch_arrival,
        port_done,
        host_arrival
    };
    struct Event {
        Picos time;
        std::uint64_t sequence;
        EventKind kind;
        std::uint32_t target;      // host for timers, packet slot otherwise
        std::uint64_t generation;  // timers only
        // At equal times a port finishing a packet goes first, so a switch
        // buffer frees the departing packet before counting an arrival.
        int rank() const { return kind == EventKind::port_done ? 0 : 1; }
        bool operator>(const Event& o) const {
            if (time != o.time) return time > o.time;
            if (rank() != o.rank()) return rank() > o.rank();
            return sequence > o.sequence;
        }
    };
    struct Packet {
        std::vector<std::byte> bytes;
        std::uint64_t id = 0;
        HostId source = no_host;
        HostId destination = no_host;
        std::uint8_t priority = 0;
        std::size_t ip_bytes = 0;
    };
    struct HostState {
        FabricHost* host = nullptr;
        engine::Address address;
        HostConfig config;
        Picos uplink_busy_until = 0;
        std::size_t nic_packets = 0;
        bool nic_blocked = false;                  // stopped polling: ring full
        engine::Instant deadline = engine::never;  // the one scheduled
        std::uint64_t timer_generation = 0;
        std::array<std::deque<std::uint32_t>, fabric_priorities> queues;
        bool port_busy = false;
        HostStats stats;
        PortStats port;
    };

    void schedule(Picos time, EventKind kind, std::uint32_t target, std::uint64_t generation = 0);
    bool step(Picos limit);
    void dispatch(const Event& event);
    void fire_timer(HostId h, std::uint64_t generation);
    void uplink_done(std::uint32_t slot);
    void switch_arrival(std::uint32_t slot);
    void start_port(HostId h);
    void port_done(std::uint32_t slot);
    void host_arrival(std::uint32_t slot);
    void leave_link(std::uint32_t slot, Direction direction, Picos delay);
    void drain(HostId h);
    void send(HostId h, const engine::Transmit& transmit);
    void refresh_deadline(HostId h);
    void set_deadline(HostId h, engine::Instant deadline, Picos fire_at);
    bool check_idle();

    std::uint32_t alloc_packet();
    void free_packet(std::uint32_t slot);
    void tap(TapKind kind, std::uint32_t slot, Direction link);

    double uniform01();
    bool chance(double p);
    std::uint64_t below(std::uint64_t n);

    HostState& host(HostId h);
    const HostState& host(HostId h) const;

    FabricConfig config_;
    std::mt19937_64 rng_;
    Picos now_ = 0;
    std::uint64_t next_sequence_ = 0;
    std::uint64_t next_packet_id_ = 1;
    std::size_t in_flight_ = 0;
    std::size_t hosts_with_deadline_ = 0;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
    std::vector<HostState> hosts_;
    std::unordered_map<engine::Address, HostId, engine::AddressHash> by_address_;
    std::vector<Packet> packets_;
    std::vector<std::uint32_t> free_packets_;
    std::function<void(const TapEvent&)> tap_;
    FabricStats stats_;
};

}  // namespace uhoma::testing
