#include "wire/errors.h"

namespace uhoma::wire {

const char* error_name(Error error) {
    switch (error) {
        case Error::truncated: return "truncated";
        case Error::unknown_type: return "unknown_type";
        case Error::bad_port: return "bad_port";
        case Error::bad_rpc_id: return "bad_rpc_id";
        case Error::message_too_long: return "message_too_long";
        case Error::zero_length_message: return "zero_length_message";
        case Error::empty_segment: return "empty_segment";
        case Error::data_past_end: return "data_past_end";
        case Error::bad_segment: return "bad_segment";
        case Error::bad_priority: return "bad_priority";
        case Error::bad_ack: return "bad_ack";
        case Error::bad_resend_range: return "bad_resend_range";
        case Error::buffer_too_small: return "buffer_too_small";
    }
    return "unknown_error";
}

}  // namespace uhoma::wire
