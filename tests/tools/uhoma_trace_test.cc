// Tests of uhoma-trace: the script follows the protocol rules it claims
// (tools/uhoma-trace/script.h), and the binary's pcap dumps cleanly.
#include "uhoma-trace/script.h"

#include <gtest/gtest.h>

#include <map>

#include "tools_support.h"
#include "wire/codec.h"
#include "wire/ids.h"
#include "wire/tso.h"

namespace uhoma::trace {
namespace {

using tools_test::ProcessResult;
using tools_test::TempDir;
using tools_test::run_process;
using tools_test::split_lines;

std::vector<TracePacket> script(std::size_t short_rpcs = 2) {
    ScriptConfig config;
    config.short_rpcs = short_rpcs;
    auto packets = build_script(config);
    EXPECT_TRUE(packets) << wire::error_name(packets.error());
    return packets ? *packets : std::vector<TracePacket>{};
}

struct Decoded {
    const TracePacket* trace;
    wire::Packet packet;
};

// Every packet decoded (TSO packets as their first segment). The result
// points into `packets`.
std::vector<Decoded> decoded(const std::vector<TracePacket>& packets) {
    std::vector<Decoded> out;
    for (const TracePacket& p : packets) {
        auto one = wire::decode(p.homa);
        if (!one) {
            auto multi = wire::MultiSegmentData::decode(p.homa, wire::max_seg_data(1500, p.source.v6));
            EXPECT_TRUE(multi) << "undecodable packet at " << p.time_ns;
            if (multi) out.push_back({&p, multi->segment(0)});
            continue;
        }
        out.push_back({&p, *one});
    }
    return out;
}

TEST(script, build_script__is_deterministic_and_sorted) {
    const auto a = script();
    const auto b = script();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].time_ns, b[i].time_ns);
        EXPECT_EQ(a[i].homa, b[i].homa);
        if (i > 0) {
            EXPECT_LE(a[i - 1].time_ns, a[i].time_ns);
        }
    }
    EXPECT_EQ(a.front().time_ns, ScriptConfig{}.start_ns + 2'000);
}

TEST(script, build_script__long_request_follows_the_rules) {
    const auto packets = script();
    const auto all = decoded(packets);
    std::vector<wire::DataPacket> request;  // RPC 2's original DATA packets
    std::optional<std::int64_t> cutoffs_at;
    std::uint32_t last_grant = 0;
    for (const Decoded& d : all) {
        const wire::Header& h = wire::packet_header(d.packet);
        if (wire::client_id(h.sender_id) != 2) continue;
        if (const auto* data = std::get_if<wire::DataPacket>(&d.packet)) {
            if (h.sender_id != 2 || data->retransmit) continue;
            request.push_back(*data);
            // Unscheduled bytes at level 6 (cutoff_version 0) until the
            // server's CUTOFFS arrives, then at the level the cutoffs give a
            // 100,000-byte message; scheduled bytes at the granted level 0.
            if (data->offset >= 40'000) {
                EXPECT_EQ(d.trace->priority, 0);
            } else if (cutoffs_at && d.trace->time_ns >= *cutoffs_at) {
                EXPECT_EQ(d.trace->priority, 4);
                EXPECT_EQ(data->cutoff_version, 1);
            } else {
                EXPECT_EQ(d.trace->priority, 6);
                EXPECT_EQ(data->cutoff_version, 0);
            }
            EXPECT_EQ(data->incoming, 40'000u);
        } else if (std::holds_alternative<wire::CutoffsPacket>(d.packet) && !cutoffs_at) {
            cutoffs_at = d.trace->time_ns;
        } else if (const auto* g = std::get_if<wire::GrantPacket>(&d.packet)) {
            EXPECT_GT(g->offset, last_grant);
            EXPECT_EQ(g->priority, 0);
            EXPECT_EQ(d.trace->priority, 7);
            last_grant = g->offset;
        }
    }
    EXPECT_EQ(last_grant, 100'000u);
    ASSERT_EQ(request.size(), 72u);  // 28 + 1 unscheduled, 42 + 1 scheduled
    std::uint32_t next = 0;
    for (const wire::DataPacket& d : request) {
        EXPECT_EQ(d.offset, next);
        next += static_cast<std::uint32_t>(d.payload.size());
        if (d.offset < 40'000) {
            EXPECT_LE(next, 40'000u);
        }
    }
    EXPECT_EQ(next, 100'000u);
    EXPECT_EQ(request[28].offset + request[28].payload.size(), 40'000u);  // ends exactly there
    EXPECT_EQ(request[28].payload.size(), 128u);
}

TEST(script, build_script__resend_is_answered_by_a_retransmission) {
    const auto packets = script();
    const auto all = decoded(packets);
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto* r = std::get_if<wire::ResendPacket>(&all[i].packet);
        if (r == nullptr) continue;
        // The next packet of the RPC answers it.
        const std::uint64_t rpc = wire::client_id(r->header.sender_id);
        std::size_t j = i + 1;
        while (j < all.size() && wire::client_id(wire::packet_header(all[j].packet).sender_id) != rpc) ++j;
        ASSERT_LT(j, all.size());
        const wire::Packet& answer = all[j].packet;
        if (const auto* d = std::get_if<wire::DataPacket>(&answer)) {
            EXPECT_TRUE(d->retransmit);
            EXPECT_EQ(d->offset, r->offset);
            EXPECT_EQ(d->payload.size(), r->length);
            EXPECT_EQ(d->incoming, r->offset + r->length);
            EXPECT_EQ(all[j].trace->priority, r->priority);
        } else {
            EXPECT_TRUE(std::holds_alternative<wire::BusyPacket>(answer) ||
                        std::holds_alternative<wire::RpcUnknownPacket>(answer));
            EXPECT_EQ(r->length, wire::resend_everything);
        }
    }
}

TEST(script, build_script__acks_end_every_short_rpc) {
    for (std::size_t n : {1u, 2u, 6u}) {
        SCOPED_TRACE(n);
        const auto packets = script(n);
        const auto all = decoded(packets);
        std::map<std::uint64_t, int> need_acks;
        std::map<std::uint64_t, int> acked;
        for (const Decoded& d : all) {
            if (const auto* need = std::get_if<wire::NeedAckPacket>(&d.packet)) {
                ++need_acks[wire::client_id(need->header.sender_id)];
            } else if (const auto* ack = std::get_if<wire::AckPacket>(&d.packet)) {
                ++acked[ack->header.sender_id];
                for (std::size_t i = 0; i < ack->num_acks; ++i) ++acked[ack->acks[i].client_id];
            } else if (const auto* data = std::get_if<wire::DataPacket>(&d.packet)) {
                if (!data->ack.empty()) ++acked[data->ack.client_id];
            }
        }
        EXPECT_EQ(need_acks.size(), n);
        for (const auto& [id, count] : need_acks) EXPECT_GE(acked[id], 1) << "RPC " << id;
        EXPECT_EQ(acked[2], 1);  // piggy-backed on the first short request
    }
}

TEST(script, build_script__ipv6_and_tso_are_pcap_only) {
    std::size_t pcap_only = 0;
    for (const TracePacket& p : script()) {
        EXPECT_EQ(p.source.v6, p.destination.v6);
        const bool tso = p.homa.size() > wire::data_header_size + wire::max_seg_data(1500, p.source.v6);
        EXPECT_EQ(p.pcap_only, p.source.v6 || tso);
        EXPECT_LE(p.priority, 7);
        if (p.pcap_only) ++pcap_only;
    }
    EXPECT_EQ(pcap_only, 7u);  // 6 IPv6 packets and the TSO packet
}

ProcessResult run(std::vector<std::string> args, const TempDir& dir, const std::string& tool) {
    std::vector<std::string> argv{tools_test::tool_path(tool)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, dir);
}

const char* const trace_summary =
    "uhoma-dump: 109 Homa packets (DATA 89, GRANT 6, RESEND 3, RPC_UNKNOWN 1, BUSY 1, CUTOFFS 4, "
    "FREEZE 1, NEED_ACK 2, ACK 2), 0 malformed, 0 truncated; skipped 0 not Homa, 0 unreadable\n";

TEST(uhoma_trace, uhoma_trace__pcap_dumps_without_malformed_packets) {
    TempDir dir;
    const std::string pcap = dir.file("trace.pcap");
    const ProcessResult trace = run({"-w", pcap}, dir, "uhoma-trace");
    ASSERT_EQ(trace.status, 0) << trace.err;
    const ProcessResult dump = run({"-r", pcap}, dir, "uhoma-dump");
    EXPECT_EQ(dump.status, 0);
    EXPECT_EQ(dump.err, trace_summary);
    const auto lines = split_lines(dump.out);
    EXPECT_EQ(lines.size(), 111u);  // the TSO packet prints 3 lines
    EXPECT_EQ(lines.front(),
              "1700000000.000002 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 6 DATA id 2 client "
              "offset 0 len 1424 msg 100000 incoming 40000 cv 0");
    EXPECT_EQ(lines.back(), "1700000000.020496 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 7 FREEZE id 0");
}

TEST(uhoma_trace, uhoma_trace__udp_encapsulation) {
    TempDir dir;
    const std::string pcap = dir.file("trace.pcap");
    ASSERT_EQ(run({"-w", pcap, "-u", "4000"}, dir, "uhoma-trace").status, 0);
    const ProcessResult dump = run({"-r", pcap, "-u", "4000"}, dir, "uhoma-dump");
    EXPECT_EQ(dump.status, 0);
    EXPECT_EQ(dump.err, trace_summary);
    std::size_t udp = 0;
    for (const std::string& line : split_lines(dump.out)) {
        if (line.find(" udp prio ") != std::string::npos) ++udp;
    }
    EXPECT_EQ(udp, 102u);  // all but the 6 IPv6 packets and the TSO packet (3 lines)
    // Without -u only the pcap-only packets remain.
    const ProcessResult raw = run({"-r", pcap}, dir, "uhoma-dump");
    EXPECT_EQ(split_lines(raw.out).size(), 9u);
    EXPECT_NE(raw.err.find("skipped 102 not Homa"), std::string::npos) << raw.err;
}

TEST(uhoma_trace, uhoma_trace__more_short_rpcs) {
    TempDir dir;
    const std::string pcap = dir.file("trace.pcap");
    ASSERT_EQ(run({"-w", pcap, "--rpcs", "6"}, dir, "uhoma-trace").status, 0);
    const ProcessResult dump = run({"-r", pcap}, dir, "uhoma-dump");
    EXPECT_EQ(dump.status, 0);
    EXPECT_NE(dump.err.find("NEED_ACK 6, ACK 6), 0 malformed"), std::string::npos) << dump.err;
}

TEST(uhoma_trace, uhoma_trace__errors) {
    TempDir dir;
    ProcessResult r = run({}, dir, "uhoma-trace");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "uhoma-trace: give -w FILE and/or --send-udp PORT (try -h)\n");
    r = run({"--bogus"}, dir, "uhoma-trace");
    EXPECT_EQ(r.status, 2);
    r = run({"-w", dir.file("x.pcap"), "--rpcs", "9"}, dir, "uhoma-trace");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "uhoma-trace: --rpcs needs a number from 1 to 6, got '9' (try -h)\n");
    r = run({"-w", "/nonexistent-dir/x.pcap"}, dir, "uhoma-trace");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(split_lines(r.err).size(), 1u) << r.err;
}

}  // namespace
}  // namespace uhoma::trace
