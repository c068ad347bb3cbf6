#!/usr/bin/env python3
"""A capture of N TCP connections that are all open, each in the middle of a request.

For the peak-RSS benchmark (issue 7: "peak RSS with 100k concurrent flows").
Per connection: SYN, SYN+ACK, ACK, then one client segment carrying a full
2026-07-28 ``tools/call`` request head (MCP routing headers, ~330 bytes) and
the first ``--body-sent`` bytes of a body whose ``Content-Length`` is larger,
so the HTTP layer holds a request in progress (head parsed, body buffering) and
the MCP layer has nothing yet. No connection is closed. Timestamps advance
10 us per packet (100k flows = 4 s, far below the 300 s idle timeout).

Clients are 10.(k>>16).(k>>8).(k) : 40000+(k%20000) -> server 10.200.0.1:8000.
Ethernet, IPv4, nanosecond pcap (what the collector reads in production).

Usage: scripts/bench/gen_open_flows.py --flows 100000 --output /tmp/mcptap-bench/open-100k.pcap
"""

import argparse
import os
import struct

BODY = (
    b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add_item",'
    b'"arguments":{"basket_id":"bsk-pod-a-001-863f5a99","item":"apple"},'
    b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}'
)


def frame(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + tcp + payload


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--body-sent", type=int, default=64, help="body bytes sent of each request")
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    server = bytes([10, 200, 0, 1])
    head = (
        b"POST /mcp HTTP/1.1\r\nhost: 10.200.0.1:8000\r\naccept: application/json, text/event-stream\r\n"
        b"content-type: application/json\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\n"
        b"mcp-name: add_item\r\nuser-agent: python-httpx2/2.16.2\r\ncontent-length: %d\r\n\r\n" % len(BODY)
    )
    payload = head + BODY[: a.body_sent]
    t = 1_795_240_180_000_000_000
    tmp = a.output + ".tmp"
    with open(tmp, "wb", buffering=8 << 20) as out:
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for k in range(a.flows):
            cli = bytes([10, (k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF])
            cport = 40000 + k % 20000
            isn_c, isn_s = (k * 7919) & 0xFFFFFFFF, (k * 104729) & 0xFFFFFFFF
            for f in (
                frame(cli, server, cport, 8000, isn_c, 0, 0x02),
                frame(server, cli, 8000, cport, isn_s, isn_c + 1, 0x12),
                frame(cli, server, cport, 8000, isn_c + 1, isn_s + 1, 0x10),
                frame(cli, server, cport, 8000, isn_c + 1, isn_s + 1, 0x18, payload),
            ):
                t += 10_000
                out.write(struct.pack("<IIII", t // 10**9, t % 10**9, len(f), len(f)) + f)
    os.replace(tmp, a.output)
    print(f"{a.output}: {a.flows} open flows, {4 * a.flows} packets, {os.path.getsize(a.output)} bytes")


if __name__ == "__main__":
    main()
