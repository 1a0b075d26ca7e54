// The scripted Homa conversation that uhoma-trace writes and sends.
//
// Design notes
// ------------
// The script is a small, deterministic re-enactment of Linux Homa's rules
// (spec sections 1, 3, 4 and 6), not canned bytes: every packet is built as
// a wire::Packet value and encoded with the codec, times come from a model
// of a 10 Gbit/s link (serialisation per byte, 4 us one-way latency, 1 ms
// timer ticks), and priorities follow the cutoff and grant rules. The
// capture point is the client host (10.0.0.1), as if tcpdump ran there: the
// client's packets are stamped when they leave, the server's when they
// arrive. The script, in order:
//
//  1. RPC 2: a 100,000-byte request from client port 40000 to server port
//     99. The first 40,000 bytes (unsched_bytes) are unscheduled; the last
//     unscheduled packet ends exactly at 40,000. They go at level 6 with
//     cutoff_version 0 until the server's CUTOFFS (its defaults, version 1;
//     sent because of the version mismatch) arrives, then at the level the
//     cutoffs give a 100,000-byte message (4). The server grants per batch
//     of 8 packets, received + a fixed 40,000-byte window, at scheduled
//     level 0 (one active RPC); the client sends scheduled bytes at the
//     granted level. One packet is lost: once the rest has arrived the
//     server's RPC falls silent, and at the 5th timer tick it sends RESEND
//     for the gap at level 7; the client retransmits it (retx, incoming =
//     end of the range). The server answers with a 500-byte response; the
//     client, seeing cutoff_version 0, sends its own CUTOFFS.
//  2. A batch of short RPCs (ids 4, 6, ...). The first request carries RPC
//     2's ack piggy-backed. Two ticks after the responses are out, the
//     server sends NEED_ACK for each; the client answers with ACKs listing
//     the RPCs it has finished.
//  3. RPC with a slow server: the client's RESEND(0, all) at the 5th tick
//     gets BUSY; the response follows.
//  4. RPC whose request is lost: RESEND(0, all), RPC_UNKNOWN, the client
//     retransmits the request, the server answers.
//  5. Pcap only: a 4,000-byte request captured as one multi-segment TSO
//     DATA packet (3 segments), and an RPC over IPv6 from [fd00::1].
//  6. A FREEZE (id 0) from the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pcap/ip_address.h"
#include "uhoma/expected.h"
#include "wire/errors.h"
#include "wire/packet.h"

namespace uhoma::trace {

struct TracePacket {
    std::int64_t time_ns = 0;  // since the epoch
    pcap::IpAddress source;
    pcap::IpAddress destination;
    std::uint8_t priority = 0;        // the level the IP header carries
    std::vector<std::byte> homa;      // the encoded Homa packet
    bool pcap_only = false;           // IPv6 and TSO: not sent as UDP datagrams
};

struct ScriptConfig {
    std::int64_t start_ns = 1'700'000'000'000'000'000;  // 2023-11-14 22:13:20 UTC
    std::size_t short_rpcs = 2;  // size of the batch in step 2; clamped to 1..max_short_rpcs
};
inline constexpr std::size_t max_short_rpcs = 6;

// The whole conversation, sorted by time.
// Errors: what the codec returns if the script built an invalid packet (a
// bug in the script; the tests make sure it does not).
Expected<std::vector<TracePacket>, wire::Error> build_script(const ScriptConfig& config);

}  // namespace uhoma::trace
