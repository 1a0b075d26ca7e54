#!/usr/bin/env python3
"""Writes the committed seed corpus for the wire_decode fuzzer.

One valid packet of every Homa type (hand-assembled from the spec's offset
tables, big-endian), a multi-segment TSO DATA packet, and a few near-misses.
Run from the repository root: python3 fuzz/make_seeds.py
"""
import os
import struct

out = os.path.join(os.path.dirname(__file__), "corpus", "wire_decode")
os.makedirs(out, exist_ok=True)


def common(typ, sport=40000, dport=99, seq=0, doff=0x50, sender_id=2):
    return struct.pack(">HHI3sBBBHHHQ", sport, dport, seq, b"\0\0\0", typ, doff, 0x06, 0, 0,
                       0xB97D, sender_id)


def data(offset, payload, msglen=5000, incoming=5000, ack=(0, 0), cv=0, retx=0, doff=0xE0):
    h = common(0x10, seq=offset, doff=doff)
    h += struct.pack(">IIQHHB3sI", msglen, incoming, ack[0], ack[1], cv, retx, b"\0\0\0", offset)
    return h + payload


seeds = {
    "data": data(0, b"x" * 64),
    "data_ack": data(1424, b"y" * 32, ack=(6, 99), cv=1, retx=1),
    "grant": common(0x11, sender_id=3) + struct.pack(">IB", 60000, 2),
    "resend": common(0x12, sender_id=3) + struct.pack(">IIB", 0, 0xFFFFFFFF, 7),
    "rpc_unknown": common(0x13),
    "busy": common(0x14),
    "cutoffs": common(0x15, sender_id=0) + struct.pack(">8IH", 0x7FFFFFFF, 0, 0, 0, 1000000,
                                                       15000, 2800, 200, 1),
    "freeze": common(0x16, sender_id=0),
    "need_ack": common(0x17, sender_id=3),
    "ack": common(0x18) + struct.pack(">H", 2) + struct.pack(">QHQH", 4, 99, 6, 99) + b"\0" * 30,
    "truncated": common(0x11)[:20],
    "unknown_type": common(0x42),
}
# Multi-segment TSO layout with 8-byte segments: 52-byte header, then offset+data chunks.
tso = data(0, b"", msglen=20, incoming=20, doff=0xD0)[:52]
for off in (0, 8, 16):
    tso += struct.pack(">I", off) + bytes(range(off, min(off + 8, 20)))
seeds["tso_8"] = bytes([7]) + tso[1:]  # first byte picks seg size 8 in the fuzzer (7 % 64 + 1)

for name, blob in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)
print(f"wrote {len(seeds)} seeds to {out}")
