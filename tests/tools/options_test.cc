// Tests of tools/uhoma-dump/options: the command line of uhoma-dump.
#include "uhoma-dump/options.h"

#include <gtest/gtest.h>

#include <vector>

namespace uhoma::dump {
namespace {

Expected<Options, UsageError> parse(std::vector<std::string_view> args) {
    return parse_options(args);
}

TEST(options, parse_options__file_with_every_option) {
    auto o = parse({"-r", "x.pcap", "-u", "4000,5000-5001", "-u6000", "-c", "3", "--mtu", "9000",
                    "-x"});
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->file, "x.pcap");
    EXPECT_TRUE(o->interface.empty());
    EXPECT_TRUE(o->udp_ports.contains(4000));
    EXPECT_TRUE(o->udp_ports.contains(5001));
    EXPECT_TRUE(o->udp_ports.contains(6000));
    EXPECT_FALSE(o->udp_ports.contains(5002));
    EXPECT_EQ(o->count, 3u);
    EXPECT_EQ(o->mtu, 9000u);
    EXPECT_TRUE(o->hex);
    EXPECT_FALSE(o->help);
}

TEST(options, parse_options__defaults_and_attached_values) {
    auto o = parse({"-ilo", "--mtu=1500", "-c7"});
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->interface, "lo");
    EXPECT_EQ(o->count, 7u);
    EXPECT_EQ(o->mtu, 1500u);
    EXPECT_TRUE(o->udp_ports.empty());
    EXPECT_FALSE(o->hex);
    auto d = parse({"-r", "f"});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->count, std::nullopt);
    EXPECT_EQ(d->mtu, 1500u);
}

TEST(options, parse_options__help_needs_no_source) {
    auto o = parse({"-h"});
    ASSERT_TRUE(o);
    EXPECT_TRUE(o->help);
    EXPECT_TRUE(parse({"--help"})->help);
    EXPECT_NE(std::string(usage_text()).find("-u PORTS"), std::string::npos);
}

TEST(options, parse_options__usage_errors) {
    const std::vector<std::pair<std::vector<std::string_view>, std::string>> cases = {
        {{}, "give -r FILE or -i INTERFACE"},
        {{"-r", "a", "-i", "lo"}, "give one of -r FILE and -i INTERFACE, once"},
        {{"-r", "a", "-r", "b"}, "give one of -r FILE and -i INTERFACE, once"},
        {{"-r"}, "option -r needs a value"},
        {{"-r", ""}, "option -r needs a value"},
        {{"-r", "a", "-z"}, "unknown option '-z'"},
        {{"-r", "a", "--mtu"}, "option --mtu needs a value"},
        {{"-r", "a", "-xv"}, "unknown option '-xv'"},
        {{"-r", "a", "extra"}, "unexpected argument 'extra'"},
        {{"-r", "a", "-c", "0"}, "-c needs a number from 1 to 18446744073709551615, got '0'"},
        {{"-r", "a", "-c", "x"}, "-c needs a number from 1 to 18446744073709551615, got 'x'"},
        {{"-r", "a", "--mtu", "100"}, "--mtu needs a number from 576 to 65535, got '100'"},
        {{"-r", "a", "-u", "0"}, "-u '0': port out of range 1-65535"},
        {{"-r", "a", "-u", "9-1"}, "-u '9-1': range ends below its start"},
        {{"-r", "a", "-u", "x"}, "-u 'x': not a port number"},
    };
    for (const auto& [args, message] : cases) {
        auto o = parse(args);
        ASSERT_FALSE(o) << message;
        EXPECT_EQ(o.error().message, message);
    }
}

}  // namespace
}  // namespace uhoma::dump
