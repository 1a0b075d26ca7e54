// Whole-protocol scenarios on the simulated fabric: at-most-once delivery
// under loss, duplication and reordering, and SRPT under incast.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "engine/engine.h"
#include "support/engine_host.h"
#include "support/fabric.h"
#include "workload/workload.h"

namespace uhoma::testing {
namespace {

using namespace std::chrono_literals;
using engine::Address;
using engine::Duration;
using engine::Endpoint;
using engine::Instant;
using engine::RpcId;

constexpr std::uint16_t server_port = 99;

std::byte pattern_byte(std::uint64_t seed, std::uint32_t i) {
    std::uint64_t x = (seed ^ (std::uint64_t{i} << 32 | i)) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    return static_cast<std::byte>((x * 0xBF58476D1CE4E5B9ull) >> 56);
}

// A message: 4 bytes of reply length, 4 bytes of seed, then a pattern from
// the seed, so corruption, truncation or a mix-up is always detected.
std::vector<std::byte> make_message(std::uint32_t length, std::uint32_t seed,
                                    std::uint32_t reply_length) {
    std::vector<std::byte> m(std::max<std::uint32_t>(length, 12));
    for (std::uint32_t i = 0; i < 4; ++i) {
        m[i] = static_cast<std::byte>(reply_length >> (8 * i));
        m[4 + i] = static_cast<std::byte>(seed >> (8 * i));
    }
    for (std::uint32_t i = 8; i < m.size(); ++i) m[i] = pattern_byte(seed, i);
    return m;
}

std::uint32_t field(std::span<const std::byte> m, std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v |= std::uint32_t(std::to_integer<std::uint8_t>(m[at + i])) << (8 * i);
    return v;
}

bool check_message(std::span<const std::byte> m) {
    if (m.size() < 12) return false;
    const std::uint32_t seed = field(m, 4);
    for (std::uint32_t i = 8; i < m.size(); ++i) {
        if (m[i] != pattern_byte(seed, i)) return false;
    }
    return true;
}

std::vector<std::byte> read_message(std::span<const std::byte> region,
                                    const engine::ReceivedMessage& m) {
    std::vector<std::byte> out(m.length);
    for (std::uint32_t x = 0; x < m.length;) {
        const std::uint32_t n = std::min<std::uint32_t>(65536 - (x & 0xFFFF), m.length - x);
        const auto from = static_cast<std::ptrdiff_t>(m.bpage_offsets[x >> 16] + (x & 0xFFFF));
        std::copy_n(region.begin() + from, n, out.begin() + x);
        x += n;
    }
    return out;
}

// A host with a server socket and a client socket.
struct Node {
    Address address;
    std::unique_ptr<EngineHost> host;
    engine::SocketId server = 0, client = 0;
    std::vector<std::byte> server_region, client_region;
    engine::Engine& engine() { return host->engine(); }
};

std::unique_ptr<Node> make_node(std::uint8_t octet, Fabric& fabric,
                                const engine::Config& config = {}) {
    auto node = std::make_unique<Node>();
    node->address = Address::ipv4(10, 0, 0, octet);
    engine::EngineOptions options;
    options.local_address = node->address;
    node->host = std::make_unique<EngineHost>(engine::Engine::create(config, options).value(),
                                              nullptr);
    engine::Engine& e = node->engine();
    node->server = e.open_socket().value();
    EXPECT_TRUE(e.bind(node->server, server_port).has_value());
    node->client = e.open_socket().value();
    node->server_region.resize(32u << 20);
    node->client_region.resize(32u << 20);
    EXPECT_TRUE(e.set_receive_buffer(node->server, node->server_region, fabric.now()).has_value());
    EXPECT_TRUE(e.set_receive_buffer(node->client, node->client_region, fabric.now()).has_value());
    fabric.add_host(*node->host, node->address);
    return node;
}

// Serves every ready request on `node`: checks it, records (client, id),
// and replies with the length the request asks for.
void serve_all(Node& node, Instant now, std::set<std::pair<Address, RpcId>>& served,
               std::uint64_t& duplicates, std::uint64_t& corrupt) {
    engine::Engine& e = node.engine();
    while (auto r = e.receive(node.server, 0, now).value()) {
        const auto bytes = read_message(node.server_region, *r);
        if (!served.insert({r->peer.address, r->id}).second) ++duplicates;
        if (!check_message(bytes)) ++corrupt;
        const auto reply = make_message(field(bytes, 0), field(bytes, 4) ^ 0x5555, 0);
        EXPECT_TRUE(e.send_reply(node.server, r->peer, r->id, reply, now).has_value());
        EXPECT_TRUE(e.release_bpages(node.server,
                                     std::span(r->bpage_offsets.data(), r->num_bpages), now)
                        .has_value());
    }
}

TEST(EngineFabric, at_most_once_under_loss_duplication_and_reordering) {
    constexpr int hosts = 8;
    constexpr std::uint32_t rpcs_per_host = 1250;  // 10,000 in all
    constexpr std::size_t window = 4;
    FabricConfig fc;
    fc.faults.loss = 0.05;
    fc.faults.duplicate = 0.01;
    fc.faults.reorder = 0.02;
    fc.faults.reorder_delay_max = 20us;
    Fabric fabric(fc, 42);
    const auto w3 = workload::Distribution::load("w3", workload::default_data_dir()).value();
    std::mt19937 rng(7);

    std::vector<std::unique_ptr<Node>> nodes;
    for (int i = 0; i < hosts; ++i) nodes.push_back(make_node(static_cast<std::uint8_t>(i + 1), fabric));

    struct Outstanding {
        std::uint32_t reply_length;
        std::uint32_t reply_seed;
    };
    std::vector<std::map<RpcId, Outstanding>> outstanding(hosts);
    std::vector<std::uint32_t> issued(hosts, 0), completed(hosts, 0);
    std::set<std::pair<Address, RpcId>> served;
    std::uint64_t duplicates = 0, corrupt = 0, errors = 0, unexpected = 0;
    std::uint32_t next_seed = 1;

    for (int i = 0; i < hosts; ++i) {
        nodes[static_cast<std::size_t>(i)]->host->set_app([&, i](Instant now) {
            Node& me = *nodes[static_cast<std::size_t>(i)];
            engine::Engine& e = me.engine();
            serve_all(me, now, served, duplicates, corrupt);
            while (auto r = e.receive(me.client, 0, now).value()) {
                auto it = outstanding[static_cast<std::size_t>(i)].find(r->id);
                if (it == outstanding[static_cast<std::size_t>(i)].end()) {
                    ++unexpected;  // completed twice, or never issued
                    continue;
                }
                if (r->error != 0) {
                    ++errors;
                } else {
                    const auto bytes = read_message(me.client_region, *r);
                    if (bytes.size() != std::max<std::uint32_t>(it->second.reply_length, 12) ||
                        !check_message(bytes) || field(bytes, 4) != it->second.reply_seed) {
                        ++corrupt;
                    }
                    EXPECT_TRUE(e.release_bpages(me.client,
                                                 std::span(r->bpage_offsets.data(), r->num_bpages),
                                                 now)
                                    .has_value());
                }
                outstanding[static_cast<std::size_t>(i)].erase(it);
                ++completed[static_cast<std::size_t>(i)];
            }
            while (outstanding[static_cast<std::size_t>(i)].size() < window &&
                   issued[static_cast<std::size_t>(i)] < rpcs_per_host) {
                std::uniform_int_distribution<int> pick(0, hosts - 2);
                int target = pick(rng);
                if (target >= i) ++target;
                const std::uint32_t request_length = w3.sample(rng);
                const std::uint32_t reply_length = w3.sample(rng);
                const std::uint32_t seed = next_seed++;
                const Address& to = nodes[static_cast<std::size_t>(target)]->address;
                const RpcId id = e.send_request(me.client, Endpoint{to, server_port},
                                                make_message(request_length, seed, reply_length),
                                                0, false, now)
                                     .value();
                outstanding[static_cast<std::size_t>(i)][id] = {reply_length, seed ^ 0x5555};
                ++issued[static_cast<std::size_t>(i)];
            }
        });
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        nodes[i]->host->handle_timeout(fabric.now());  // start the applications
        fabric.poke(static_cast<HostId>(i));
    }
    ASSERT_TRUE(fabric.run_until_idle(120s)) << "simulation did not finish";

    std::uint32_t total = 0;
    for (int i = 0; i < hosts; ++i) {
        EXPECT_EQ(completed[static_cast<std::size_t>(i)], rpcs_per_host) << "host " << i;
        total += completed[static_cast<std::size_t>(i)];
    }
    EXPECT_EQ(total, 10000u);
    EXPECT_EQ(errors, 0u);
    EXPECT_EQ(corrupt, 0u);
    EXPECT_EQ(duplicates, 0u);
    EXPECT_EQ(unexpected, 0u);
    EXPECT_EQ(served.size(), 10000u);
    for (auto& node : nodes) {
        EXPECT_EQ(node->engine().rpc_count(), 0u);
        EXPECT_EQ(node->engine().receive_bytes_in_use(), 0u);
    }
    std::printf("at-most-once: %llu lost, %llu duplicated, %llu reordered; sim time %lld ms; resent %llu\n",
                static_cast<unsigned long long>(fabric.stats().lost),
                static_cast<unsigned long long>(fabric.stats().duplicated),
                static_cast<unsigned long long>(fabric.stats().reordered),
                static_cast<long long>(fabric.now().time_since_epoch().count() / 1000000),
                static_cast<unsigned long long>([&] {
                    std::uint64_t r = 0;
                    for (auto& n : nodes) r += n->engine().metrics().resent_packets;
                    return r;
                }()));
    // The faults really happened.
    EXPECT_GT(fabric.stats().lost, 1000u);
    EXPECT_GT(fabric.stats().duplicated, 100u);
    EXPECT_GT(fabric.stats().reordered, 100u);
}

// Incast: 8 senders blast 1 MB messages at one receiver while another host
// sends short RPCs to it. SRPT grants and priorities must keep the short
// ones within 2x of their unloaded round trip, and the long ones must finish.
TEST(EngineFabric, srpt_under_incast) {
    Fabric fabric(FabricConfig{}, 3);
    auto receiver = make_node(1, fabric);
    auto prober = make_node(2, fabric);
    std::vector<std::unique_ptr<Node>> senders;
    for (int i = 0; i < 8; ++i) senders.push_back(make_node(static_cast<std::uint8_t>(10 + i), fabric));
    const HostId prober_id = 1;

    std::set<std::pair<Address, RpcId>> served;
    std::uint64_t duplicates = 0, corrupt = 0;
    receiver->host->set_app([&](Instant now) { serve_all(*receiver, now, served, duplicates, corrupt); });

    // The prober sends one 100-byte RPC at a time and records round trips.
    std::vector<Duration> rtts;
    std::optional<Instant> probe_started;
    std::uint32_t seed = 1;
    auto start_probe = [&](Instant now) {
        auto m = make_message(100, seed++, 100);
        EXPECT_TRUE(prober->engine()
                        .send_request(prober->client, Endpoint{receiver->address, server_port}, m,
                                      0, false, now)
                        .has_value());
        probe_started = now;
    };
    prober->host->set_app([&](Instant now) {
        while (auto r = prober->engine().receive(prober->client, 0, now).value()) {
            EXPECT_EQ(r->error, 0);
            rtts.push_back(now - *probe_started);
            EXPECT_TRUE(prober->engine()
                            .release_bpages(prober->client,
                                            std::span(r->bpage_offsets.data(), r->num_bpages), now)
                            .has_value());
            probe_started.reset();
        }
    });
    auto probe_once = [&] {
        start_probe(fabric.now());
        fabric.poke(prober_id);
        EXPECT_TRUE(fabric.run_until([&] { return !probe_started; }, 1s));
    };

    // Unloaded round trips (the first also exchanges CUTOFFS).
    for (int i = 0; i < 20; ++i) probe_once();
    std::vector<Duration> unloaded(rtts.begin() + 1, rtts.end());
    std::sort(unloaded.begin(), unloaded.end());
    const Duration unloaded_p50 = unloaded[unloaded.size() / 2];
    rtts.clear();

    // The incast.
    std::uint32_t long_done = 0;
    for (std::size_t i = 0; i < senders.size(); ++i) {
        Node& s = *senders[i];
        s.host->set_app([&, i](Instant now) {
            Node& me = *senders[i];
            while (auto r = me.engine().receive(me.client, 0, now).value()) {
                EXPECT_EQ(r->error, 0);
                ++long_done;
                EXPECT_TRUE(me.engine()
                                .release_bpages(me.client,
                                                std::span(r->bpage_offsets.data(), r->num_bpages),
                                                now)
                                .has_value());
            }
        });
        ASSERT_TRUE(s.engine()
                        .send_request(s.client, Endpoint{receiver->address, server_port},
                                      make_message(1000000, 1000 + static_cast<std::uint32_t>(i), 100),
                                      0, false, fabric.now())
                        .has_value());
        fabric.poke(static_cast<HostId>(2 + i));
    }
    // Probe while the long messages are in flight (8 MB at 25 Gb/s takes
    // about 2.7 ms; probe for the first 2 ms).
    const Instant incast_start = fabric.now();
    while (fabric.now() - incast_start < 2ms && long_done < 8) {
        fabric.run_for(20us);
        probe_once();
    }
    ASSERT_TRUE(fabric.run_until([&] { return long_done == 8; }, 1s));
    EXPECT_EQ(long_done, 8u);
    EXPECT_EQ(duplicates, 0u);
    EXPECT_EQ(corrupt, 0u);
    ASSERT_GE(rtts.size(), 20u);
    std::sort(rtts.begin(), rtts.end());
    const Duration loaded_p50 = rtts[rtts.size() / 2];
    const Duration loaded_max = rtts.back();
    std::printf("incast: unloaded p50 %lld max %lld ns; loaded p50 %lld max %lld ns over %zu probes; sim time %lld us\n",
                static_cast<long long>(unloaded_p50.count()),
                static_cast<long long>(unloaded.back().count()),
                static_cast<long long>(loaded_p50.count()), static_cast<long long>(loaded_max.count()),
                rtts.size(), static_cast<long long>((fabric.now() - incast_start).count() / 1000));
    EXPECT_LE(loaded_p50, 2 * unloaded_p50)
        << "unloaded p50 " << unloaded_p50.count() << " ns, loaded p50 " << loaded_p50.count();
    EXPECT_LE(loaded_max, 2 * unloaded.back())
        << "unloaded max " << unloaded.back().count() << " ns, loaded max " << loaded_max.count();
    EXPECT_TRUE(fabric.run_until_idle(1s));
}

}  // namespace
}  // namespace uhoma::testing
