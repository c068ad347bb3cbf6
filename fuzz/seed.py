#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, cut from the real captures in tests/fixtures/.

Usage: fuzz/seed.py [OUT_DIR]   (default: fuzz/corpus; run by fuzz/seed.sh)

Writes `OUT_DIR/<target>/seed-*` files in each target's input format (see the
`//!` comment of fuzz/fuzz_targets/<target>.rs):

- link_decode:    distinct captured frames (Ethernet and Linux SLL2), as captured.
- tcp_reassembly: each TCP connection's segments (first 48 per connection) as
                  `[ends, flags, seq_hi, seq_lo, ack_lo, len_dt, payload<=31]` records,
                  sequence numbers relative to the ISN of each direction.
- http_conn:      each connection's payload in capture order as `[op][len][bytes]`
                  records (op 0 client→server, 2 server→client), config byte 1.
- http_head:      each request and response head as captured (with its blank
                  line), followed by up to 16 bytes of its body.
- sse:            each `text/event-stream` response body (de-chunked) cut into
                  pieces of 1..254 bytes, event cap 255 (first byte 0xfe).
- mcp_decode:     each exchange as `ctl, request body, 0xff, response body (JSON, or
                  SSE data fields joined by \\n), 0xff, Mcp-Name header`.
- json_body:      each request body, response body and SSE data field as it is.
- pcap_file:      a window byte, then the start of each capture file (pcap and
                  pcapng: its first 2 KiB, 9 KiB and about 6 KiB).

Only the Python standard library; deterministic output (same files every run).
"""

import hashlib
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = [os.path.join(ROOT, "tests", "fixtures", n) for n in ("cutover.pcap", "pod-a-any.pcap")]


def read_pcap(path):
    """Yields (linktype, frame bytes) of a classic pcap file."""
    data = open(path, "rb").read()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        yield linktype, data[off : off + incl]
        off += incl


def ip_payload(linktype, frame):
    """The IPv4 packet inside a frame, or None."""
    if linktype == 1:  # Ethernet (+ one VLAN tag)
        et, off = struct.unpack(">H", frame[12:14])[0], 14
        if et == 0x8100:
            et, off = struct.unpack(">H", frame[16:18])[0], 18
    elif linktype == 113:  # Linux SLL
        et, off = struct.unpack(">H", frame[14:16])[0], 16
    elif linktype == 276:  # Linux SLL2
        et, off = struct.unpack(">H", frame[0:2])[0], 20
    else:
        return None
    return frame[off:] if et == 0x0800 else None


def tcp_segment(ip):
    """(src, dst, seq, ack, flags, payload) of an IPv4/TCP packet, or None."""
    if len(ip) < 20 or ip[9] != 6:
        return None
    ihl = (ip[0] & 15) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    tcp = ip[ihl:total] if total >= ihl else ip[ihl:]
    if len(tcp) < 20:
        return None
    sp, dp, seq, ack = struct.unpack(">HHII", tcp[:12])
    doff = (tcp[12] >> 4) * 4
    src = (ip[12:16], sp)
    dst = (ip[16:20], dp)
    return src, dst, seq, ack, tcp[13], tcp[doff:]


def connections():
    """Connections of every fixture: list of (server endpoint, [(from_client, seq, ack, flags, payload)])."""
    conns = {}
    order = []
    for path in FIXTURES:
        for lt, frame in read_pcap(path):
            ip = ip_payload(lt, frame)
            seg = ip and tcp_segment(ip)
            if not seg:
                continue
            src, dst, seq, ack, flags, payload = seg
            from_client = dst[1] == 8000
            key = (path, src, dst) if from_client else (path, dst, src)
            if key not in conns:
                conns[key] = []
                order.append(key)
            conns[key].append((from_client, seq, ack, flags, payload))
    return [(k, conns[k]) for k in order]


def stream(segs, from_client):
    """In-order bytes of one direction (retransmissions dropped by sequence number)."""
    first = [s for s in segs if s[0] == from_client]
    if not first:
        return b""
    syn = [s for s in first if s[3] & 2]
    nxt = (syn[0][1] + 1) if syn else first[0][1]
    out = bytearray()
    for _, seq, _, _, payload in first:
        if not payload:
            continue
        rel = (seq - nxt) & 0xFFFFFFFF
        if rel == 0:
            out += payload
            nxt = (nxt + len(payload)) & 0xFFFFFFFF
        elif rel > 0x80000000 and (nxt - seq) & 0xFFFFFFFF < len(payload):
            cut = (nxt - seq) & 0xFFFFFFFF
            out += payload[cut:]
            nxt = (nxt + len(payload) - cut) & 0xFFFFFFFF
    return bytes(out)


def http_messages(data, is_response):
    """Splits one direction into (head lines, body) messages (Content-Length or chunked)."""
    msgs = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1").split("\r\n")
        data = data[end + 4 :]
        hdrs = {}
        for line in head[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        body = b""
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            while True:
                le = data.find(b"\r\n")
                if le < 0:
                    data = b""
                    break
                try:
                    size = int(data[:le].split(b";")[0], 16)
                except ValueError:
                    data = b""
                    break
                chunk = data[le + 2 : le + 2 + size]
                data = data[le + 2 + size + 2 :]
                if size == 0:
                    break
                body += chunk
        elif "content-length" in hdrs:
            n = int(hdrs["content-length"])
            body, data = data[:n], data[n:]
        elif is_response and not head[0].split(" ")[1:2] in (["204"], ["304"]):
            body, data = data, b""
        msgs.append((head, hdrs, body))
    return msgs


def sse_data(body):
    """The data fields of an SSE body, one string per event."""
    events, cur = [], []
    for line in body.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            if cur:
                events.append(b"\n".join(cur))
                cur = []
        elif line.startswith(b"data:"):
            cur.append(line[5:].lstrip(b" "))
    if cur:
        events.append(b"\n".join(cur))
    return events


class Writer:
    def __init__(self, root):
        self.root = root
        self.seen = set()
        self.counts = {}

    def put(self, target, data):
        h = hashlib.sha1(data).hexdigest()[:16]
        if (target, h) in self.seen or not data:
            return
        self.seen.add((target, h))
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "seed-" + h), "wb") as f:
            f.write(data)
        self.counts[target] = self.counts.get(target, 0) + 1


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")
    w = Writer(out)

    # link_decode: distinct frames, at most 300 (short ones first: they cover more link/IP/TCP options).
    frames = sorted({f for p in FIXTURES for _, f in read_pcap(p)}, key=lambda f: (len(f), f))
    step = max(1, len(frames) // 300)
    for f in frames[::step]:
        w.put("link_decode", f)

    # pcap_file: file heads, with different windows (the first byte).
    for i, path in enumerate(FIXTURES + [os.path.join(ROOT, "tests", "fixtures", "cutover.pcapng")]):
        with open(path, "rb") as f:
            data = f.read()
        for j, n in enumerate((2048, 9216, 6001 + 97 * i)):
            w.put("pcap_file", bytes([(37 * i + 11 * j) % 256]) + data[:n])

    conns = connections()
    for (_, cli, srv), segs in conns:
        # tcp_reassembly: client is endpoint 1 (10.0.0.2:40000), server endpoint 0 (10.0.0.1:80).
        isn = {}
        for fc, seq, _, flags, _ in segs:
            isn.setdefault(fc, seq if not flags & 2 else seq)
        rec = bytearray()
        for fc, seq, ack, flags, payload in segs[:48]:
            ends = (1 | 0 << 2) if fc else (0 | 1 << 2)
            f = (flags & 2 and 1) | (flags & 16 and 2) | (flags & 1 and 4) | (flags & 4 and 8)
            rel = (seq - isn[fc]) & 0xFFFF
            rel_ack = ((ack - isn.get(not fc, ack)) // 4) & 0xFF
            pieces = [payload[i : i + 31] for i in range(0, len(payload), 31)] or [b""]
            for i, p in enumerate(pieces):
                r = (rel + 31 * i) & 0xFFFF
                rec += bytes([ends, f, r >> 8, r & 0xFF, rel_ack, len(p)]) + p
            if len(rec) > 4096:
                break
        w.put("tcp_reassembly", bytes(rec))

        # http_conn: payload records in capture order, capped at 64 KiB per seed.
        rec = bytearray([1])
        for fc, _, _, _, payload in segs:
            for i in range(0, len(payload), 255):
                p = payload[i : i + 255]
                rec += bytes([0 if fc else 2, len(p)]) + p
            if len(rec) > 65536:
                break
        w.put("http_conn", bytes(rec))

        # sse + mcp_decode: pair requests and responses in order.
        reqs = http_messages(stream(segs, True), False)
        resps = http_messages(stream(segs, False), True)
        for head, _, body in reqs + resps:
            w.put("http_head", "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body[:16])
        for (qh, qhdr, qbody), (rh, rhdr, rbody) in zip(reqs, resps):
            is_sse = "text/event-stream" in rhdr.get("content-type", "")
            if is_sse and rbody:
                pieces = bytearray([0xFE])
                i, n = 0, 1
                while i < len(rbody):
                    p = rbody[i : i + n]
                    pieces += bytes([len(p)]) + p
                    i += len(p)
                    n = n * 3 % 254 + 1
                w.put("sse", bytes(pieces))
            modern = rhdr.get("mcp-protocol-version", qhdr.get("mcp-protocol-version", "")) >= "2026"
            ctl = (1 if is_sse else 0) | (4 if modern else 0) | (8 if qh[0].startswith("GET") else 0)
            status = rh[0].split(" ")[1] if len(rh[0].split(" ")) > 1 else "200"
            ctl |= 16 if status.startswith("5") else 0
            resp = b"\n".join(sse_data(rbody)) if is_sse else rbody
            name = qhdr.get("mcp-name", "").encode()
            for extra in (0, 2 | 32):  # plain, and with --capture-bodies + close
                w.put("mcp_decode", bytes([ctl | extra]) + qbody + b"\xff" + resp + b"\xff" + name)
            for body in [qbody] + (sse_data(rbody) if is_sse else [rbody]):
                if body:
                    w.put("json_body", bytes(body))

    # tls_hello: the real ClientHellos recorded for the wire crate's tests.
    data = os.path.join(ROOT, "collector", "wire", "tests", "data")
    for name in sorted(os.listdir(data)):
        if name.startswith("client_hello_"):
            with open(os.path.join(data, name), "rb") as f:
                w.put("tls_hello", f.read())

    for t in sorted(w.counts):
        print(f"{t}: {w.counts[t]} seeds in {os.path.join(out, t)}")


if __name__ == "__main__":
    main()
