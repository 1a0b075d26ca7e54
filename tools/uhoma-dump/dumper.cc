// Classification order: link/IP (pcap::decapsulate), then capture
// completeness, then GSO trains (UDP only), then the codec. Each outcome
// bumps exactly one counter, except a GSO train: one per packet.
#include "uhoma-dump/dumper.h"

#include "wire/codec.h"
#include "wire/tso.h"

namespace uhoma::dump {

Dumper::Output Dumper::handle(pcap::Timestamp time, wire::Bytes frame) {
    auto homa = pcap::decapsulate(link_, frame, config_.udp_ports);
    if (!homa) {
        if (homa.error() == pcap::FrameError::not_homa) {
            ++counters_.not_homa;
        } else {
            ++counters_.unreadable;
        }
        return Output{};
    }
    if (homa->encapsulation == pcap::Encapsulation::udp && !homa->truncated()) {
        const std::size_t data_segment =
            wire::data_header_size + wire::max_seg_data(config_.mtu, homa->source.v6);
        if (auto train = split_gso_train(homa->homa, data_segment)) {
            return Output{describe_train(time, *homa, *train), true, train->packets.size()};
        }
    }
    Output out{describe(time, *homa), true, 1};
    if (config_.hex) out.text += format_hex(homa->homa);
    return out;
}

std::string Dumper::describe_train(pcap::Timestamp time, const pcap::HomaFrame& frame,
                                   const GsoTrain& train) {
    std::string text;
    const std::size_t count = train.packets.size();
    for (std::size_t i = 0; i < count; ++i) {
        const wire::Packet& packet = train.packets[i];
        const wire::Header& header = wire::packet_header(packet);
        // The packet as if captured after segmentation: its own bytes and ports.
        pcap::HomaFrame piece = frame;
        piece.homa = train.pieces[i];
        piece.homa_length = train.pieces[i].size();
        piece.homa_ports = pcap::HomaPorts{header.sport, header.dport};
        ++counters_.by_type[static_cast<std::size_t>(wire::packet_type(packet)) -
                            wire::min_packet_type];
        text += format_gso_line(time, piece, packet, i, count);
        if (config_.hex) text += format_hex(piece.homa);
    }
    return text;
}

std::string Dumper::describe(pcap::Timestamp time, const pcap::HomaFrame& frame) {
    if (frame.truncated()) {
        ++counters_.truncated;
        return format_truncated_line(time, frame);
    }
    auto common = wire::peek_common_header(frame.homa);
    const std::size_t seg_data = wire::max_seg_data(config_.mtu, frame.source.v6);
    if (common && common->type == static_cast<std::uint8_t>(wire::PacketType::data) &&
        frame.homa.size() > wire::data_header_size + seg_data) {
        auto multi = wire::MultiSegmentData::decode(frame.homa, seg_data);
        if (!multi) {
            ++counters_.malformed;
            return format_malformed_line(time, frame, multi.error());
        }
        ++counters_.by_type[static_cast<std::size_t>(wire::PacketType::data) -
                            wire::min_packet_type];
        std::string text;
        for (std::size_t i = 0; i < multi->segment_count(); ++i) {
            text += multi->segment_count() == 1
                        ? format_packet_line(time, frame, multi->segment(i))
                        : format_segment_line(time, frame, multi->segment(i), i,
                                              multi->segment_count());
        }
        return text;
    }
    auto packet = wire::decode(frame.homa);
    if (!packet) {
        ++counters_.malformed;
        return format_malformed_line(time, frame, packet.error());
    }
    ++counters_.by_type[static_cast<std::size_t>(wire::packet_type(*packet)) -
                        wire::min_packet_type];
    return format_packet_line(time, frame, *packet);
}

}  // namespace uhoma::dump
