#!/usr/bin/env python3
"""Writes the committed seed corpus for the engine_packets fuzzer.

The fuzzer (fuzz/engine_packets.cc) reads its input as: one configuration
byte (0-3 = Config{}, 4 = no throttling, 5 = tight grants and peer garbage
collection, 6 = four priority levels and cutoffs recomputed every
millisecond, 7 = one level / small MTU / fast timers), then operations,
each a 1-byte opcode followed by its arguments. The opcode table and every
argument are documented at the top of engine_packets.cc; the helpers below
mirror it byte for byte, so keep the two in step when either changes.

The seeds cover the paths a random start reaches slowly:
  * whole RPCs through the loopback network (the engine's client talks to its
    own server), with and without loss, with replies of several sizes;
  * client RPCs that time out (default and fast-timer configurations);
  * structured responses, GRANT / RESEND / BUSY / RPC_UNKNOWN / NEED_ACK for
    the client RPCs that exist from the start (ids 2, 4, 6, 8);
  * requests from several peers (one IPv6) to the server, replies, RESENDs
    and ACKs for them;
  * receive-buffer exhaustion: 1,000,000-byte requests fill the minimum
    region, then releases hand buffers to the waiting RPCs;
  * CUTOFFS from a peer, application aborts and private RPCs;
  * sockets closed (and replaced) with RPCs, waiters and queued packets, and
    a client socket without a receive region;
  * the wire_decode seeds delivered as raw packets.

Run from the repository root: python3 fuzz/make_engine_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "engine_packets")

# Opcodes (opcode % 16 in the fuzzer).
RAW, STRUCT, BURST, ADVANCE, STEP, LOOPBACK, NETWORK = 0, 1, 3, 4, 5, 6, 7
RECV, REPLY, RELEASE, ABORT, SEND, RECV_PRIVATE, QUEUE = 8, 9, 10, 11, 12, 13, 14

# Packet types for STRUCT (type_sel % 9).
DATA, GRANT, RESEND, RPC_UNKNOWN, BUSY, CUTOFFS, FREEZE, NEED_ACK, ACK = range(9)

# Index into the fuzzer's kLengths table.
LENGTHS = [1, 100, 1000, 1424, 1425, 2848, 5000, 39999, 40000, 40001, 65536, 65537, 100000,
           200000, 999999, 1000000]

# Peers: 0-3 = 10.0.0.2-5, 4 = fd00::2.
V6 = 4


def length(n):
    """Length selector: a table entry if there is one, else an explicit value."""
    if n in LENGTHS:
        return bytes([LENGTHS.index(n)])
    assert 1 <= n <= 1000000
    return bytes([0x10]) + (n - 1).to_bytes(3, "big")


def who(peer, cid):
    """The `who` byte: source = who % 5, client id = 2 + 2 * ((who >> 3) % 32)."""
    k = (cid - 2) // 2
    for j in range(8):
        w = 8 * k + j
        if w % 5 == peer:
            return w
    raise ValueError((peer, cid))


def flags(to_client, sport_variant=0, mode=0):
    """bit 0: toward our client socket (peer is a server); bit 1: peer client
    port 0x8001 instead of 0x8000; bits 2-4: 6 = flip the id's low bit, 7 = a
    port nobody listens on."""
    return (1 if to_client else 0) | (sport_variant << 1) | (mode << 2)


def data(peer, cid, to_client, msglen, seg_index=0, past_unsched=False, incoming=0,
         ack_cid=None, cutoff_version=0, retransmit=False, burst=0):
    """One DATA packet (STRUCT) or a burst of `burst` consecutive segments.
    incoming: 0 = message length, 1 = min(length, unsched_bytes),
    2 = offset + 1."""
    op = bytes([BURST, burst - 1]) if burst else bytes([STRUCT, DATA])
    off = seg_index % 64 + (128 if past_unsched else 0)
    ack = 0 if ack_cid is None else 1 | (((ack_cid - 2) // 2) << 1)
    misc = cutoff_version % 3 | (4 if retransmit else 0)
    return (op + bytes([flags(to_client), who(peer, cid)]) + length(msglen) +
            bytes([off, 0, incoming, ack, misc]))


def grant(peer, cid, offset_sel, priority, to_client=True):
    """offset_sel indexes {0, 1424, 40000, 41424, 50000, 100000, 150000, 1000000}."""
    return bytes([STRUCT, GRANT, flags(to_client), who(peer, cid), offset_sel, priority])


def resend(peer, cid, offset_sel, length_sel, priority, to_client):
    """length_sel: 0 = everything, 1 = 1424, 2 = 0, 3 = 40000."""
    return bytes([STRUCT, RESEND, flags(to_client), who(peer, cid), offset_sel,
                  length_sel | (priority << 3)])


def control(kind, peer, cid, to_client):
    return bytes([STRUCT, kind, flags(to_client), who(peer, cid)])


def cutoffs(peer, entries, version):
    """entries: 8 indexes into {0, 200, 2800, 15000, 1000000, INT_MAX, 1}."""
    return (bytes([STRUCT, CUTOFFS, flags(False), who(peer, 2)]) + bytes(entries) +
            struct.pack(">H", version))


def ack(peer, cid, acked):
    """ACK from a client peer naming its RPC `cid`, with acks for `acked` (to port 99)."""
    body = bytes([len(acked)]) + bytes([(c - 2) // 2 for c in acked])
    return bytes([STRUCT, ACK, flags(False), who(peer, cid)]) + body


def raw(peer, packet):
    return bytes([RAW, peer]) + struct.pack(">H", len(packet)) + packet


def advance(unit, amount):
    """unit: 0 = ns, 1 = us, 2 = 100 us, 3 = ms (at most 200 ms per op)."""
    return bytes([ADVANCE, unit]) + struct.pack(">H", amount)


def step(count):
    return bytes([STEP, count - 1])


def network(rounds):
    return bytes([NETWORK, rounds - 1])


def loopback(count, drop=0):
    return bytes([LOOPBACK, count - 1, drop])


def recv(socket):  # 0 server, 1 client
    return bytes([RECV, socket])


def reply(pick, msglen, keep=False):
    return bytes([REPLY, pick | (0x80 if keep else 0)]) + length(msglen)


def release(pick=0):
    return bytes([RELEASE, pick])


def abort(cid=None, error=0):
    """cid None aborts all; error: 0 = free silently, 1 = ETIMEDOUT, 2 = ECANCELED."""
    return bytes([ABORT, 255 if cid is None else (cid - 2) // 2, error])


def send(msglen, peer=0, private=False, nowhere=False):
    return bytes([SEND]) + length(msglen) + bytes([peer, (1 if private else 0) |
                                                   (6 if nowhere else 0)])


def recv_private(cid):
    return bytes([RECV_PRIVATE, (cid - 2) // 2])


DUP, REVERSE, CLEAR, RESTART_SERVER, RESTART_CLIENT = 0, 2, 4, 6, 7


def queue(mode):
    """Loopback queue tricks (DUP, REVERSE, CLEAR), or close a socket with all
    its state and open a new one in its place (RESTART_SERVER, RESTART_CLIENT)."""
    return bytes([QUEUE, mode])


def seeds():
    s = {}
    serve_all = recv(0) * 4 + reply(0, 100) + reply(0, 5000) + reply(0, 60000) + reply(0, 1424)
    s["roundtrip"] = (bytes([0]) + network(64) + serve_all + network(64) + recv(1) * 4 +
                      release() * 8 + network(16) + step(8))
    s["roundtrip_lossy"] = (bytes([0]) + loopback(64, 0x0B) + step(6) + network(64) + serve_all +
                            loopback(30, 0x13) + step(10) + network(64) + recv(1) * 4 +
                            release(1) * 8 + network(32))
    s["roundtrip_reorder"] = (bytes([4]) + queue(REVERSE) + network(64) + recv(0) * 4 +
                              reply(0, 200000) + reply(0, 1) + queue(DUP) + network(64) +
                              recv(1) * 4 + release() * 8 + network(8))
    s["roundtrip_tight"] = (bytes([5]) + network(64) + serve_all + network(64) + recv(1) * 4 +
                            release() * 8)
    s["roundtrip_levels"] = (bytes([6]) + network(64) + serve_all + network(64) + recv(1) * 4 +
                             release() * 8)
    s["roundtrip_small_mtu"] = (bytes([7]) + network(64) + serve_all + network(64) +
                                recv(1) * 4 + release() * 8 + step(20))
    s["timeouts_default"] = bytes([0]) + step(256) + step(256) + recv(1) * 4 + step(50)
    s["timeouts_fast"] = bytes([7]) + step(64) + recv(1) * 4 + network(10) + step(64)
    s["responses"] = (bytes([0]) +
                      data(0, 2, True, 100) + data(0, 4, True, 1424) +
                      data(0, 6, True, 3000, burst=3) +
                      data(0, 8, True, 100000, incoming=1, burst=29) + step(3) +
                      recv(1) * 4 + release() * 4 + step(10))
    s["client_control"] = (bytes([0]) + grant(0, 8, 6, 2) + resend(0, 2, 0, 0, 7, True) +
                           resend(0, 8, 2, 3, 1, True) + control(BUSY, 0, 4, True) +
                           control(RPC_UNKNOWN, 0, 6, True) + control(NEED_ACK, 0, 2, True) +
                           data(0, 2, True, 500) + control(NEED_ACK, 0, 2, True) + recv(1) +
                           control(NEED_ACK, 0, 2, True) + step(10) + release())
    s["server_requests"] = (bytes([0]) + data(1, 2, False, 100) + data(2, 4, False, 2000, burst=2) +
                            data(V6, 6, False, 5000, burst=4) + recv(0) * 3 + reply(0, 100) +
                            reply(0, 50000) + reply(0, 3000) + step(3) +
                            resend(2, 4, 0, 0, 5, False) + control(RPC_UNKNOWN, 1, 2, False) +
                            ack(V6, 6, [2, 4]) + step(5) + release() * 3 + step(200))
    s["server_grants"] = (bytes([0]) + data(1, 10, False, 100000, incoming=1, burst=29) + step(2) +
                          data(1, 10, False, 100000, past_unsched=True, burst=42) + recv(0) +
                          reply(0, 100) + step(5) + data(1, 12, False, 100, ack_cid=10) + step(3))
    exhaust = b"".join(data(p, 2 + 2 * p, False, 1000000) for p in range(4))
    s["exhaust"] = (bytes([0]) + exhaust + data(0, 2, False, 1000000, burst=64) + step(10) +
                    recv(0) + release() + step(5))
    full = b""
    off = 0
    while off < 703:  # 1,000,000 bytes in 1424-byte segments
        n = min(64, 703 - off)
        full += bytes([BURST, n - 1, flags(False), who(1, 20)]) + length(1000000) + \
            bytes([off % 64 if off < 64 else 192]) + \
            (b"" if off < 64 else (off * 1424).to_bytes(3, "big")) + bytes([0, 0, 0, 0])
        off += n
    s["exhaust_full"] = (bytes([0]) + full + data(2, 2, False, 1000000) +
                         data(3, 4, False, 1000000) + recv(0) + data(V6, 6, False, 900000) +
                         step(4) + release() + step(6) + recv(0) + reply(0, 1000000) +
                         release() + network(64) + step(4))
    s["cutoffs"] = (bytes([0]) + cutoffs(0, [5, 4, 4, 3, 2, 2, 1, 1], 3) + send(100) +
                    send(20000) + cutoffs(0, [0, 0, 0, 0, 0, 0, 0, 6], 9) + send(3000) +
                    network(20) + recv(0) * 2)
    s["app"] = (bytes([0]) + send(100, private=True) + send(1000000, peer=1) +
                send(10, peer=V6) + send(10, nowhere=True) + abort(2, 2) + abort(4, 0) +
                recv(1) + network(30) + recv(0) * 6 + reply(2, 10, keep=True) + reply(2, 10) +
                network(30) + recv_private(10) + recv(1) * 5 + abort(None, 1) + recv(1) * 8 +
                release() * 8)
    s["restart"] = (bytes([0]) + network(3) + data(1, 2, False, 1000000) + queue(RESTART_SERVER) +
                    network(10) + recv(0) + send(60000) + loopback(5) + queue(RESTART_CLIENT) +
                    send(100) + send(200000) + network(64) + recv(0) * 3 + reply(0, 100) +
                    reply(0, 100) + network(64) + recv(1) * 3 + release() * 6)
    s["no_region"] = (bytes([0]) + bytes([QUEUE, 0x80 | RESTART_CLIENT]) + send(100) + send(3000) +
                      network(20) + recv(0) * 2 + reply(0, 100) + reply(0, 70000) + network(30) +
                      recv(1) * 2 + abort(None, 2) + network(5))
    # Regression (fuzz/regressions/engine_packets/abort_while_waiting_for_buffers):
    # a response that waits for buffers, its RPC aborted with an error, then
    # buffers freed: the engine must not RESEND or GRANT for the failed RPC.
    s["regression_abort_while_waiting_for_buffers"] = (
        bytes([0]) + data(0, 2, True, 1000000) + data(0, 4, True, 1000000) +
        data(0, 6, True, 1000000) + abort(6, 2) + abort(2, 0))
    s["time"] = (bytes([0]) + advance(0, 500) + advance(1, 3000) + advance(2, 30) +
                 advance(3, 150) + network(8) + advance(3, 200) + step(3))
    return s


def wire_seed_packets():
    src = os.path.join(HERE, "corpus", "wire_decode")
    out = []
    if os.path.isdir(src):
        for name in sorted(os.listdir(src)):
            with open(os.path.join(src, name), "rb") as f:
                out.append((name, f.read()))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    all_seeds = seeds()
    packets = wire_seed_packets()
    all_seeds["raw_wire_seeds"] = bytes([0]) + b"".join(raw(i % 5, p) for i, (_, p) in
                                                        enumerate(packets)) + step(4)
    for name, blob in all_seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    print(f"wrote {len(all_seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
