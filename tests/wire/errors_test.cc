// Tests of src/wire/errors.cc: error names.
#include "wire/errors.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

using uhoma::wire::Error;
using uhoma::wire::error_name;

TEST(errors, error_name__every_error) {
    EXPECT_STREQ(error_name(Error::truncated), "truncated");
    EXPECT_STREQ(error_name(Error::unknown_type), "unknown_type");
    EXPECT_STREQ(error_name(Error::bad_port), "bad_port");
    EXPECT_STREQ(error_name(Error::bad_rpc_id), "bad_rpc_id");
    EXPECT_STREQ(error_name(Error::message_too_long), "message_too_long");
    EXPECT_STREQ(error_name(Error::zero_length_message), "zero_length_message");
    EXPECT_STREQ(error_name(Error::empty_segment), "empty_segment");
    EXPECT_STREQ(error_name(Error::data_past_end), "data_past_end");
    EXPECT_STREQ(error_name(Error::bad_segment), "bad_segment");
    EXPECT_STREQ(error_name(Error::bad_priority), "bad_priority");
    EXPECT_STREQ(error_name(Error::bad_ack), "bad_ack");
    EXPECT_STREQ(error_name(Error::bad_resend_range), "bad_resend_range");
    EXPECT_STREQ(error_name(Error::buffer_too_small), "buffer_too_small");
}

TEST(errors, error_name__distinct_for_every_value) {
    std::set<std::string> names;
    const auto last = static_cast<unsigned>(Error::buffer_too_small);
    for (unsigned e = 0; e <= last; ++e) {
        const std::string name = error_name(static_cast<Error>(e));
        EXPECT_NE(name, "unknown_error") << e;
        names.insert(name);
    }
    EXPECT_EQ(names.size(), last + 1);
}

TEST(errors, error_name__out_of_range_value) {
    EXPECT_STREQ(error_name(static_cast<Error>(200)), "unknown_error");
}

}  // namespace
