// Fuzz target: the wire decoder on arbitrary bytes.
//
// Beyond "no crash, no UB" (ASan/UBSan), it checks two properties that must
// hold for every input the decoder accepts:
//   1. re-encoding succeeds and decodes to the same packet (the encoder and
//      decoder agree on validity and on every field), and
//   2. the multi-segment decoder accepts a single-segment packet and returns
//      the same fields.
// A violated property traps, which libFuzzer reports as a crash.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "wire/codec.h"
#include "wire/tso.h"

namespace {

using namespace uhoma::wire;

bool same_bytes(Bytes a, Bytes b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool same_data(const DataPacket& a, const DataPacket& b) {
    return a.header == b.header && a.message_length == b.message_length &&
           a.incoming == b.incoming && a.ack == b.ack && a.cutoff_version == b.cutoff_version &&
           a.retransmit == b.retransmit && a.offset == b.offset &&
           same_bytes(a.payload, b.payload);
}

bool same_packet(const Packet& a, const Packet& b) {
    if (a.index() != b.index()) return false;
    if (const auto* da = std::get_if<DataPacket>(&a)) {
        return same_data(*da, std::get<DataPacket>(b));
    }
    return std::visit(
        [&b](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, DataPacket>) {
                return false;
            } else {
                return x == std::get<T>(b);
            }
        },
        a);
}

void require(bool condition) {
    if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Bytes input{reinterpret_cast<const std::byte*>(data), size};
    (void)peek_common_header(input);

    auto decoded = decode(input);
    if (decoded) {
        std::vector<std::byte> out(encoded_size(*decoded));
        auto written = encode(*decoded, out);
        require(written.has_value() && *written == out.size());
        auto again = decode(out);
        require(again.has_value() && same_packet(*decoded, *again));
        if (const auto* d = std::get_if<DataPacket>(&*decoded)) {
            auto multi = MultiSegmentData::decode(input, d->payload.size());
            require(multi.has_value() && multi->segment_count() == 1 &&
                    same_data(multi->segment(0), *d));
        }
    }
    // Multi-segment parsing with a segment size taken from the input.
    if (size > 0) {
        const std::size_t seg = 1 + data[0] % 64;
        auto multi = MultiSegmentData::decode(input, seg);
        if (multi) {
            for (std::size_t i = 0; i < multi->segment_count(); ++i) {
                const DataPacket s = multi->segment(i);
                require(!s.payload.empty());
                require(multi->segment_count() == 1 || s.payload.size() <= seg);
                require(validate(Packet{s}).has_value());
            }
        }
    }
    return 0;
}
