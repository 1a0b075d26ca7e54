// Multi-segment DATA packets: the layout Linux Homa hands to a TSO NIC.
//
// Design notes
// ------------
// On the wire every DATA packet carries one segment. Before segmentation,
// though, Linux Homa builds one large packet per GSO burst, and that is what
// a capture on the sending host shows. Without TCP hijacking the layout is
//
//     52-byte header (doff 0xD0) | off0 data0 | off1 data1 | ... | offN dataN
//
// where each `offK` is a 4-byte homa_seg_hdr and each dataK is max_seg_data
// bytes except the last. The NIC copies the 52 bytes in front of every
// (4 + max_seg_data)-byte chunk, so each wire packet starts with its own
// seg.offset and looks like a normal 56-byte-header DATA packet. With
// hijacking (doff 0xE0, seg.offset = -1) the data is contiguous after a
// 56-byte header and the NIC advances `sequence` per segment instead.
//
// The segment size is not in the packet: it is the sender's max_seg_data,
// which follows from its MTU (wire::max_seg_data). Both directions take it as
// a parameter. A GSO burst covers a contiguous range of the message, so the
// decoder checks each segment's offset against that: a segment size that is
// too small usually shows up as bad_segment. One that is too large cannot be
// detected from the bytes alone: the packet then reads as fewer, longer
// segments whose payloads include the inner segment headers.
//
// uhoma's UDP driver does not use this layout: UDP GSO copies only the UDP
// header, so it sends trains of complete 56-byte-header packets instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "uhoma/expected.h"
#include "wire/errors.h"
#include "wire/packet.h"

namespace uhoma::wire {

struct Segment {
    std::uint32_t offset = 0;
    Bytes payload;
};

// A validated view of a multi-segment DATA packet. Cheap to copy; valid only
// while the bytes it was decoded from are.
class MultiSegmentData {
public:
    // Parses `packet` with segments of `max_seg_data` bytes. A packet that
    // holds at most one segment decodes as a single segment, whatever its doff.
    // Errors: those of wire::decode() for DATA (every segment is checked),
    // unknown_type if the packet is not DATA, and bad_segment if the segment
    // layout is inconsistent or max_seg_data is 0.
    static Expected<MultiSegmentData, Error> decode(Bytes packet, std::size_t max_seg_data);

    std::size_t segment_count() const { return count_; }
    // Segment `index` (< segment_count()) as the NIC would cut it: a
    // single-segment DATA packet with the shared header fields.
    DataPacket segment(std::size_t index) const;
    bool hijacked() const { return hijacked_; }

private:
    MultiSegmentData() = default;
    Bytes body_;  // everything after the shared header
    DataPacket fields_;
    std::size_t seg_data_ = 0;
    std::size_t count_ = 0;
    bool hijacked_ = false;
};

// Size of the TSO (non-hijacked) layout for these segments.
std::size_t multi_segment_size(std::span<const Segment> segments);

// Writes the non-hijacked TSO layout: `fields` gives the shared header
// (its offset and payload are ignored), `segments` the data, every one but
// the last exactly `max_seg_data` bytes and at consecutive offsets.
// Errors: buffer_too_small, bad_segment (layout), or what validate() returns
// for any segment as a single DATA packet.
Expected<std::size_t, Error> encode_multi_segment_data(const DataPacket& fields,
                                                       std::span<const Segment> segments,
                                                       std::size_t max_seg_data,
                                                       MutableBytes out);

}  // namespace uhoma::wire
