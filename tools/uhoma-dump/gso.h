// Splitting UDP GSO trains: one captured UDP payload, several Homa packets.
//
// Design notes
// ------------
// uhoma's UDP driver (src/driver/udp_socket.h) sends runs of Homa packets as
// UDP GSO trains (UDP_SEGMENT): one datagram whose payload is several
// complete Homa packets back to back, every one `gso_size` bytes except the
// last, which may be shorter. The kernel cuts the train into datagrams later,
// so a capture on the sending host (and any capture on loopback, which
// delivers trains whole) sees one UDP datagram. Nothing in it gives
// gso_size: the UDP_SEGMENT value travels in a control message, not in the
// packet. Unlike a TSO packet (tso.h) every piece starts with its own full
// Homa header, so a train can be recognised from the bytes, and that is what
// split_gso_train() does. It is a heuristic, built so that it never splits a
// datagram that is one legal packet unless the bytes after the first packet
// are themselves consistent Homa packets.
//
// The payload is a train when, after the first packet, bytes are left that
// are further packets of the same run:
//
// * Control packets (everything but DATA) have a fixed size S (wire sizes in
//   packet.h; wire::encoded_size of the decoded first packet), so gso_size
//   is S. But the codec is liberal, as Linux Homa is: a control packet with
//   trailing bytes is legal and decodes as that one packet. So the rest is
//   taken as more packets only when the payload is an exact multiple of S,
//   at least 2 S, and every S-byte piece decodes (wire::decode, all checks)
//   to the first packet's type. Anything else is one packet, as before.
//
// * DATA packets carry their payload to the end of the bytes they are given,
//   so the first packet's size is unknown and gso_size has to be found: it
//   is a g (57 <= g < payload size) such that the payload cut into g-byte
//   pieces (the last one shorter or equal) gives pieces that all decode as
//   DATA with the first piece's header (ports and sender_id) and
//   message_length, and with offsets first.offset + k * (g - 56) for piece
//   k: the consecutive segments of one message, as the engine emits them.
//   The candidates, in order:
//     1. 56 + wire::max_seg_data(--mtu, IPv6 or not): what uhoma's engine
//        uses for full segments, so nearly every real train is found at
//        once;
//     2. then, scanning p = 57, 58, ... upwards, every p where a DATA header
//        with the same sender_id and message_length and offset
//        first.offset + (p - 56) decodes at byte p (a raw compare of the
//        type, sender_id and message_length bytes first, so the scan is
//        cheap): that is where piece 1 would start if g = p. The first p
//        whose whole split is consistent wins.
//   Each candidate costs at most payload/g decodes, so even a crafted
//   datagram costs O(n log n). The split needs two pieces or more; no
//   consistent split means no train, and the datagram prints as before
//   (MALFORMED when the codec rejects it whole, e.g. data_past_end).
//   A DATA packet in the TSO layout (doff 0xD0) or hijacked (seg.offset -1)
//   is never a train: it is left to the TSO path (wire::MultiSegmentData).
//
// The rules are stricter than what the driver can send. It groups
// *neighbouring* packets with the same destination, priority and size, so a
// train may in principle mix messages, or end with a shorter packet of
// another kind (a DATA run ending in a GRANT), or mix control types of the
// same size (NEED_ACK and BUSY are both 28 bytes). Such a train does not
// split, and prints as one packet as before: the rules trade those rare
// cases for never mistaking one packet's payload or padding for a train.
//
// Raw IP (protocol 146) and hijacked TCP never carry trains (no UDP GSO on
// raw sockets); the caller only asks for UDP payloads.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "wire/packet.h"

namespace uhoma::dump {

struct GsoTrain {
    std::size_t segment_size = 0;  // gso_size: the size of every piece but the last
    // Two or more packets, in payload order. DATA payloads point into the
    // bytes given to split_gso_train().
    std::vector<wire::Packet> packets;
    // The bytes of each packet (packets[i] was decoded from pieces[i]).
    std::vector<wire::Bytes> pieces;
};

// The packets of `payload` if it is a GSO train by the rules above, nullopt
// if it is not (one packet, possibly malformed). `data_segment_size` is the
// first gso_size to try for DATA: 56 + wire::max_seg_data(mtu, ipv6).
std::optional<GsoTrain> split_gso_train(wire::Bytes payload, std::size_t data_segment_size);

}  // namespace uhoma::dump
