// Microbenchmarks of the wire codec: the cost the engine pays per packet.
#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "wire/codec.h"

namespace {

using namespace uhoma::wire;

DataPacket sample_data(std::span<const std::byte> payload) {
    DataPacket d;
    d.header = {40000, 99, 1234};
    d.message_length = 100000;
    d.incoming = 40000;
    d.ack = {5678, 99};
    d.cutoff_version = 3;
    d.offset = 14240;
    d.payload = payload;
    return d;
}

void BM_encode_data_header(benchmark::State& state) {
    std::array<std::byte, 1424> payload{};
    std::array<std::byte, data_header_size> out{};
    const DataPacket d = sample_data(payload);
    for (auto _ : state) {
        auto n = encode_data_header(d, payload.size(), out);
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_encode_data_header);

void BM_decode_data(benchmark::State& state) {
    std::array<std::byte, 1424> payload{};
    std::vector<std::byte> wire(data_header_size + payload.size());
    auto n = encode(Packet{sample_data(payload)}, wire);
    if (!n) state.SkipWithError("encode failed");
    for (auto _ : state) {
        auto p = decode(wire);
        benchmark::DoNotOptimize(p);
    }
}
BENCHMARK(BM_decode_data);

void BM_encode_grant(benchmark::State& state) {
    std::array<std::byte, grant_size> out{};
    const GrantPacket g{{99, 40000, 1235}, 80000, 2};
    for (auto _ : state) {
        auto n = encode(Packet{g}, out);
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_encode_grant);

void BM_decode_grant(benchmark::State& state) {
    std::array<std::byte, grant_size> wire{};
    auto n = encode(Packet{GrantPacket{{99, 40000, 1235}, 80000, 2}}, wire);
    if (!n) state.SkipWithError("encode failed");
    for (auto _ : state) {
        auto p = decode(wire);
        benchmark::DoNotOptimize(p);
    }
}
BENCHMARK(BM_decode_grant);

}  // namespace

BENCHMARK_MAIN();
