// RPC-id conventions (spec 1.6).
//
// Clients pick ids: even, nonzero. The server's id for the same RPC is the
// client id with the low bit set. Every packet carries the id as its *sender*
// sees it, so the receiver's local id is always sender_id ^ 1. Low bit 0 means
// "I am the client". Ports 1..32767 are server ports (bind); the engine
// assigns client ports from 32768 up.
#pragma once

#include <cstdint>

namespace uhoma::wire {

inline constexpr std::uint16_t min_client_port = 0x8000;  // HOMA_MIN_DEFAULT_PORT

constexpr bool is_client_id(std::uint64_t id) { return (id & 1) == 0; }
constexpr bool is_server_id(std::uint64_t id) { return (id & 1) == 1; }
// The id the receiver of a packet uses for the RPC named by `sender_id`.
constexpr std::uint64_t local_id(std::uint64_t sender_id) { return sender_id ^ 1; }
constexpr std::uint64_t server_id(std::uint64_t client_id) { return client_id | 1; }
constexpr std::uint64_t client_id(std::uint64_t any_id) { return any_id & ~std::uint64_t{1}; }
// Ids 0 and 1 name no RPC (client counters start at 2).
constexpr bool is_valid_rpc_id(std::uint64_t id) { return id >= 2; }
constexpr bool is_server_port(std::uint16_t port) { return port != 0 && port < min_client_port; }

}  // namespace uhoma::wire
