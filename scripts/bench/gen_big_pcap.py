#!/usr/bin/env python3
"""Builds a large benchmark capture from the real fixture (nothing is committed).

The input (default ``tests/fixtures/cutover.pcap``: Ethernet, IPv4, nanosecond
pcap, real MCP SDK traffic, 834 packets, 7.2 s) is written ``--copies`` times
(or until ``--size-mb`` is reached). Copy ``k`` is rewritten so every copy is a
new set of TCP connections that the collector decodes exactly like the
original:

* client addresses (the side whose port is not the server port, 8000):
  ``10.77.0.X`` becomes ``X.(k>>16).(k>>8).k`` (one new address per client of
  each copy; servers keep their addresses, so spans keep their instances);
* client ports: rotated by ``k * 7`` inside 20000..59999;
* sequence and acknowledgment numbers: ``+ k * 7919`` (mod 2**32), the same
  delta in both directions, so every ack still matches;
* timestamps: ``+ k * (capture duration + 1 ms)``, so copies follow each other
  and time only moves forward (the collector's idle expiry runs as in a long
  capture).

``--interleave N`` instead starts a new copy every ``duration / N`` so that
about N copies overlap in time (more concurrent flows; packets of overlapping
copies are merged by timestamp).

IP and TCP checksums are left as captured (the fixture was captured with
checksum offload; no decoder here validates them).

Usage::

    scripts/bench/gen_big_pcap.py [--input F] [--output F] [--size-mb 1024 | --copies N]
"""

import argparse
import heapq
import os
import struct
import sys

SERVER_PORT = 8000


def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic != bytes.fromhex("4d3cb2a1"):
        sys.exit(f"{path}: expected a little-endian nanosecond pcap (magic a1b23c4d)")
    header = data[:24]
    pkts = []
    off = 24
    while off + 16 <= len(data):
        sec, nsec, caplen, origlen = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16 : off + 16 + caplen]
        pkts.append((sec * 1_000_000_000 + nsec, origlen, frame))
        off += 16 + caplen
    return header, pkts


def plan(frame):
    """Offsets to rewrite in one frame: (client ip offset, client port offset, seq off, ack off)."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[14 + 9] != 6:
        return None
    tcp = 14 + ihl
    if len(frame) < tcp + 20:
        return None
    sport, dport = struct.unpack_from(">HH", frame, tcp)
    if dport == SERVER_PORT:
        return (14 + 12, tcp, tcp + 4, tcp + 8)  # client is the source
    if sport == SERVER_PORT:
        return (14 + 16, tcp + 2, tcp + 4, tcp + 8)  # client is the destination
    return None


def copy_records(pkts, plans, k, t0, shift):
    """Yields (ts_ns, record bytes) of copy k."""
    b1, b2, b3 = (k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF
    dseq = (k * 7919) & 0xFFFFFFFF
    for (ts, origlen, frame), p in zip(pkts, plans):
        nts = ts + shift
        f = bytearray(frame)
        if p is not None:
            ipo, porto, seqo, acko = p
            # X.(k>>16).(k>>8).k where X is the last octet of the original client address
            f[ipo] = f[ipo + 3]
            f[ipo + 1] = b1
            f[ipo + 2] = b2
            f[ipo + 3] = b3
            port = struct.unpack_from(">H", f, porto)[0]
            struct.pack_into(">H", f, porto, 20000 + (port + k * 7) % 40000)
            seq, ack = struct.unpack_from(">II", f, seqo)
            flags = f[seqo + 9]
            ack_new = (ack + dseq) & 0xFFFFFFFF if flags & 0x10 else ack
            struct.pack_into(">II", f, seqo, (seq + dseq) & 0xFFFFFFFF, ack_new)
        rec = struct.pack("<IIII", nts // 1_000_000_000, nts % 1_000_000_000, len(f), origlen)
        yield nts, rec + bytes(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--input", default=os.path.join(here, "..", "..", "tests", "fixtures", "cutover.pcap"))
    ap.add_argument("--output", required=True)
    ap.add_argument("--size-mb", type=float, default=1024.0, help="stop once the file is this big (MiB)")
    ap.add_argument("--copies", type=int, default=0, help="exact number of copies (overrides --size-mb)")
    ap.add_argument("--interleave", type=int, default=1, help="about this many copies overlap in time")
    args = ap.parse_args()

    header, pkts = read_pcap(args.input)
    plans = [plan(f) for _, _, f in pkts]
    t0 = pkts[0][0]
    duration = pkts[-1][0] - t0 + 1_000_000
    per_copy = sum(16 + len(f) for _, _, f in pkts)
    copies = args.copies or max(1, int(args.size_mb * 1024 * 1024 // per_copy))
    step = duration // max(1, args.interleave)
    tmp = args.output + ".tmp"
    with open(tmp, "wb", buffering=8 << 20) as out:
        out.write(header)
        if args.interleave <= 1:
            for k in range(copies):
                out.write(b"".join(r for _, r in copy_records(pkts, plans, k, t0, k * duration)))
        else:
            gens = (copy_records(pkts, plans, k, t0, k * step) for k in range(copies))
            for _, rec in heapq.merge(*gens, key=lambda x: x[0]):
                out.write(rec)
    os.replace(tmp, args.output)
    size = os.path.getsize(args.output)
    print(
        f"{args.output}: {copies} copies of {os.path.basename(args.input)}, "
        f"{copies * len(pkts)} packets, {size} bytes ({size / 1e6:.1f} MB)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
