#!/usr/bin/env python3
"""Builds a large benchmark capture from a real capture (nothing is committed).

The input is any classic pcap file (either byte order, microsecond or nanosecond
timestamps; link type Ethernet, Linux cooked v1/v2 or raw IP; IPv4/TCP is
rewritten, everything else is copied as it is). The default is
``tests/fixtures/cutover.pcap`` (Ethernet, nanosecond, real MCP SDK traffic, 834
packets, 7.2 s); the load corpus uses ``--input /tmp/mcptap-bench/load-raw.pcap``
(``tests/fixtures/gen/load.sh``). The input is written ``--copies`` times (or until
``--size-mb`` is reached). Copy ``k`` is rewritten so every copy is a new set of
TCP connections that the collector decodes exactly like the original:

* client addresses (the side whose port is not the server port, ``--server-port``,
  8000): ``A.B.C.X`` becomes ``X.(k>>16).(k>>8).k`` (one new address per client of
  each copy; servers keep their addresses, so spans keep their instances);
* client ports: ``20000 + (port + k * 7) % 40000`` (one-to-one as long as the
  input's client ports span less than 40000, as ephemeral ports do);
* sequence and acknowledgment numbers: ``+ k * 7919`` (mod 2**32), the same
  delta in both directions, so every ack still matches (SACK blocks and other
  TCP options are left as captured);
* timestamps: ``+ k * (capture duration + 1 ms)``, so copies follow each other
  and time only moves forward (the collector's idle expiry runs as in a long
  capture).

The output keeps the input's file header (byte order, timestamp precision, link
type): copies of cutover.pcap are byte-identical to what earlier versions of
this script wrote.

``--interleave N`` instead starts a new copy every ``duration / N`` so that
about N copies overlap in time (more concurrent flows; packets of overlapping
copies are merged by timestamp).

``--head P`` first cuts the input down to the TCP connections that open (SYN)
within its first ``P`` packets, with all of their packets, so the cut has only
whole connections (a small file for callgrind, about ``P`` packets). When the
input alone is bigger than ``--size-mb`` (and neither ``--copies`` nor ``--head``
is given), it is cut in the same way to about ``--size-mb`` and written once.

IP and TCP checksums are left as captured (the fixtures were captured with
checksum offload; no decoder here validates them).

Usage::

    scripts/bench/gen_big_pcap.py [--input F] --output F [--size-mb 1024 | --copies N]
                                  [--interleave N] [--head P] [--server-port 8000]
"""

import argparse
import heapq
import os
import struct
import sys

# magic as stored -> (struct byte order, ns per timestamp fraction unit)
MAGICS = {
    bytes.fromhex("d4c3b2a1"): ("<", 1000),  # little-endian, microseconds
    bytes.fromhex("a1b2c3d4"): (">", 1000),
    bytes.fromhex("4d3cb2a1"): ("<", 1),  # little-endian, nanoseconds
    bytes.fromhex("a1b23c4d"): (">", 1),
}
# link type -> offset of the IP header, or None when it depends on the frame
LINK_IP_OFFSET = {1: None, 113: 16, 276: 20, 101: 0, 228: 0}


def read_pcap(path):
    """Returns (file header, byte order, ns per fraction unit, link type, [(ts_ns, origlen, frame)])."""
    data = open(path, "rb").read()
    if data[:4] not in MAGICS:
        sys.exit(f"{path}: not a classic pcap file (pcapng? convert it with editcap -F pcap)")
    order, unit = MAGICS[data[:4]]
    header = data[:24]
    link = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    if link not in LINK_IP_OFFSET:
        sys.exit(f"{path}: link type {link} not supported (Ethernet, Linux SLL/SLL2, raw IP)")
    rec = order + "IIII"
    pkts = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack_from(rec, data, off)
        frame = data[off + 16 : off + 16 + caplen]
        pkts.append((sec * 1_000_000_000 + frac * unit, origlen, frame))
        off += 16 + caplen
    return header, order, unit, link, pkts


def ip_offset(link, frame):
    """Offset of the IPv4 header in the frame, or None."""
    if link == 1:
        off, etype = 14, frame[12:14]
        while etype in (b"\x81\x00", b"\x88\xa8") and len(frame) >= off + 4:  # VLAN tags
            etype = frame[off + 2 : off + 4]
            off += 4
        return off if etype == b"\x08\x00" else None
    if link == 113:
        return 16 if frame[14:16] == b"\x08\x00" else None
    if link == 276:
        return 20 if frame[0:2] == b"\x08\x00" else None
    return 0 if frame[:1] and frame[0] >> 4 == 4 else None


def plan(link, frame, server_port):
    """Offsets to rewrite in one frame: (client ip offset, client port offset, seq off, ack off), or None."""
    ip = ip_offset(link, frame)
    if ip is None or len(frame) < ip + 20 or frame[ip] >> 4 != 4:
        return None
    ihl = (frame[ip] & 0x0F) * 4
    if frame[ip + 9] != 6:
        return None
    tcp = ip + ihl
    if len(frame) < tcp + 20:
        return None
    sport, dport = struct.unpack_from(">HH", frame, tcp)
    if dport == server_port:
        return (ip + 12, tcp, tcp + 4, tcp + 8)  # client is the source
    if sport == server_port:
        return (ip + 16, tcp + 2, tcp + 4, tcp + 8)  # client is the destination
    return None


def head(pkts, plans, n):
    """The packets of the TCP connections that open (client SYN) within the first n packets."""
    current = {}  # (client ip, client port, server ip, server port) -> connection number
    keep = set()
    out_pkts, out_plans = [], []
    conn = 0
    for i, ((ts, origlen, frame), p) in enumerate(zip(pkts, plans)):
        if p is None:  # not IPv4/TCP to or from the server port: kept inside the first n
            if i < n:
                out_pkts.append((ts, origlen, frame))
                out_plans.append(p)
            continue
        ipo, porto, seqo, _ = p
        from_client = porto == seqo - 4  # the client's port is the TCP source port
        srv_ip = ipo + 4 if from_client else ipo - 4
        srv_port = porto + 2 if from_client else porto - 2
        key = (frame[ipo : ipo + 4], frame[porto : porto + 2], frame[srv_ip : srv_ip + 4], frame[srv_port : srv_port + 2])
        flags = frame[seqo + 9]
        if from_client and flags & 0x02 and not flags & 0x10:  # the client's SYN opens a connection
            conn += 1
            current[key] = conn
            if i < n:
                keep.add(conn)
        if current.get(key) in keep:
            out_pkts.append((ts, origlen, frame))
            out_plans.append(p)
    return out_pkts, out_plans


def copy_records(pkts, plans, k, shift, order, unit):
    """Yields (ts_ns, record bytes) of copy k."""
    b1, b2, b3 = (k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF
    dseq = (k * 7919) & 0xFFFFFFFF
    rec = order + "IIII"
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
        r = struct.pack(rec, nts // 1_000_000_000, nts % 1_000_000_000 // unit, len(f), origlen)
        yield nts, r + bytes(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--input", default=os.path.join(here, "..", "..", "tests", "fixtures", "cutover.pcap"))
    ap.add_argument("--output", required=True)
    ap.add_argument("--size-mb", type=float, default=1024.0, help="stop once the file is this big (MiB)")
    ap.add_argument("--copies", type=int, default=0, help="exact number of copies (overrides --size-mb)")
    ap.add_argument("--interleave", type=int, default=1, help="about this many copies overlap in time")
    ap.add_argument("--head", type=int, default=0, help="first keep only the connections opened in the first P packets")
    ap.add_argument("--server-port", type=int, default=8000, help="TCP port of the servers (the other side is rewritten)")
    args = ap.parse_args()

    header, order, unit, link, pkts = read_pcap(args.input)
    plans = [plan(link, f, args.server_port) for _, _, f in pkts]
    if not args.head and not args.copies:
        # One copy is already bigger than --size-mb (a long input such as the load
        # capture): cut it to about that size, whole connections only.
        limit, total = args.size_mb * 1024 * 1024 - 24, 0
        for i, (_, _, f) in enumerate(pkts):
            total += 16 + len(f)
            if total > limit:
                args.head = i
                break
    if args.head:
        pkts, plans = head(pkts, plans, args.head)
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
                out.write(b"".join(r for _, r in copy_records(pkts, plans, k, k * duration, order, unit)))
        else:
            gens = (copy_records(pkts, plans, k, k * step, order, unit) for k in range(copies))
            for _, rec in heapq.merge(*gens, key=lambda x: x[0]):
                out.write(rec)
    os.replace(tmp, args.output)
    size = os.path.getsize(args.output)
    print(
        f"{args.output}: {copies} copies of {os.path.basename(args.input)}"
        f"{f' (connections of its first {args.head} packets)' if args.head else ''}, "
        f"{copies * len(pkts)} packets, {size} bytes ({size / 1e6:.1f} MB)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
