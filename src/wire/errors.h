// Errors of the wire codec. One enum serves encode and decode: an encoder
// refuses exactly the packets a decoder would reject, plus a short buffer.
#pragma once

#include <cstdint>

namespace uhoma::wire {

enum class Error : std::uint8_t {
    truncated,            // shorter than the common header or the type's header
    unknown_type,         // type outside DATA..ACK (0x10..0x18)
    bad_port,             // sport or dport is 0 (reserved)
    bad_rpc_id,           // id 0/1, or the wrong client/server parity for the type
    message_too_long,     // DATA message_length > 1,000,000
    zero_length_message,  // DATA message_length == 0
    empty_segment,        // DATA segment carrying no bytes
    data_past_end,        // DATA bytes reach past message_length
    bad_segment,          // multi-segment DATA whose segment layout is inconsistent
    bad_priority,         // GRANT/RESEND priority >= 8
    bad_ack,              // an ack entry with an odd client id or a zero server port
    bad_resend_range,     // RESEND range reaching past the largest message
    buffer_too_small,     // encode only: the output buffer cannot hold the packet
};

// Stable snake_case name, e.g. "truncated"; used in logs and uhoma-dump.
const char* error_name(Error error);

}  // namespace uhoma::wire
