// Helpers for the tools' tests: temp directories, running the built tools,
// encoding packets, and frame surgery.
//
// Header-only because tests/CMakeLists.txt builds this folder from its
// *_test.cc files alone. The tools are run as real processes (posix_spawn)
// with stdout and stderr sent to files, so the tests see exactly what a user
// would, exit status included.
#pragma once

#include <gtest/gtest.h>
#include "support/temp_dir.h"
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "wire/codec.h"
#include "wire/packet.h"

extern char** environ;

namespace uhoma::tools_test {

using ByteVector = std::vector<std::byte>;

// wire::encode into a vector; fails the test on an encode error.
inline ByteVector encode(const wire::Packet& packet) {
    ByteVector out(wire::encoded_size(packet));
    auto written = wire::encode(packet, out);
    if (!written) {
        ADD_FAILURE() << "encode failed: " << wire::error_name(written.error());
        return {};
    }
    return out;
}

inline ByteVector bytes(std::initializer_list<unsigned> values) {
    ByteVector out;
    for (unsigned v : values) out.push_back(static_cast<std::byte>(v));
    return out;
}

inline ByteVector concat(const ByteVector& a, const ByteVector& b) {
    ByteVector out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

// A UDP GSO train as uhoma's UDP driver sends it: DATA packets of the
// message `fields` describes, from fields.offset on, back to back; `full`
// of them carry `seg_data` bytes, then one more carries `tail` bytes (none
// when 0). fields.payload is ignored; the data is a fixed byte pattern.
inline ByteVector gso_data_train(const wire::DataPacket& fields, std::size_t seg_data,
                                 std::size_t full, std::size_t tail = 0) {
    static const ByteVector pattern = [] {
        ByteVector b(66000);
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>(i * 7 + i / 256);
        return b;
    }();
    ByteVector out;
    std::uint32_t offset = fields.offset;
    for (std::size_t i = 0; i < full + (tail > 0 ? 1 : 0); ++i) {
        wire::DataPacket d = fields;
        d.offset = offset;
        const std::size_t length = i < full ? seg_data : tail;
        d.payload = wire::Bytes(pattern).subspan(offset % 1000, length);
        out = concat(out, encode(d));
        offset += static_cast<std::uint32_t>(length);
    }
    return out;
}

// Packets encoded back to back: a train of control packets.
inline ByteVector gso_train(std::initializer_list<wire::Packet> packets) {
    ByteVector out;
    for (const wire::Packet& p : packets) out = concat(out, encode(p));
    return out;
}

inline std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

using TempDir = uhoma::testing::TempDir;

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

struct ProcessResult {
    int status = -1;  // the exit status, or 128 + signal
    std::string out;
    std::string err;
};

// Runs argv[0] with the given arguments, waits, and returns its output.
inline ProcessResult run_process(const std::vector<std::string>& argv, const TempDir& dir) {
    const std::string out_path = dir.file("stdout.txt");
    const std::string err_path = dir.file("stderr.txt");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    ProcessResult result;
    const int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        ADD_FAILURE() << "cannot run " << argv[0];
        return result;
    }
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    result.out = read_text(out_path);
    result.err = read_text(err_path);
    return result;
}

// A built tool, from the UHOMA_BUILD_DIR that CTest passes to the tests.
inline std::string tool_path(const std::string& name) {
    const char* build = std::getenv("UHOMA_BUILD_DIR");
    if (build == nullptr) {
        ADD_FAILURE() << "UHOMA_BUILD_DIR is not set (run the tests through ctest)";
        return "/nonexistent";
    }
    return std::string(build) + "/tools/" + name + "/" + name;
}

}  // namespace uhoma::tools_test
