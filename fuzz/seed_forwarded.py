#!/usr/bin/env python3
"""Seed corpus of the `forwarded` fuzz target (run by fuzz/seed.sh).

Usage: fuzz/seed_forwarded.py [OUT_DIR]   (default: fuzz/corpus)

The captures in tests/fixtures/ hold no forwarding headers, so the seeds are
the shapes real proxies write: RFC 7239 examples (§4, §6, §7), nginx
`$proxy_add_x_forwarded_for` and `X-Real-IP`, haproxy `option forwardfor`,
Envoy/Istio `x-forwarded-client-cert`, Linkerd `l5d-client-id`. Format (see
fuzz/fuzz_targets/forwarded.rs): a peer byte, then `\\n`-separated lines of a
name byte and a value; ASCII digits keep the files readable ('0' peer
10.0.3.7, '1' ::1, '2' 198.18.0.9, '3' ::ffff:10.0.0.1; names '0'
Forwarded, '1' X-Forwarded-For, '2' X-Real-IP, '3' x-forwarded-client-cert,
'4' l5d-client-id, '5' Host).

Only the Python standard library; deterministic output.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASH = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"

SEEDS = [
    ("0", [("0", 'for="_gazonk"')]),
    ("0", [("0", 'For="[2001:db8:cafe::17]:4711"')]),
    ("0", [("0", "for=192.0.2.60;proto=http;by=203.0.113.43")]),
    ("0", [("0", "for=192.0.2.43, for=198.51.100.17")]),
    ("1", [("0", 'for="192.0.2.43:47011", for="[2001:db8:cafe::17]:_p"')]),
    ("0", [("0", "for=_hidden, for=_SEVKISEK")]),
    ("0", [("0", "for=192.0.2.43"), ("0", 'for="[2001:db8:cafe::17]", for=unknown')]),
    ("0", [("0", "for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com")]),
    ("0", [("0", 'key=value;token="\\"quoted-string\\"";for="\\[::1\\]"')]),
    ("3", [("1", "192.0.2.43, 2001:db8:cafe::17"), ("0", "proto=https")]),
    ("0", [("1", "1.1.1.1, 203.0.113.9, 10.0.1.5"), ("2", "203.0.113.9"), ("5", "mcp.example")]),
    ("0", [("1", "1.1.1.1"), ("1", "203.0.113.9")]),
    ("0", [("1", "[2001:db8::1]:4711, 1.2.3.4:5678,, unknown ,10.0.0.2")]),
    ("2", [("1", "10.0.0.1"), ("0", "for=10.0.0.1")]),
    ("1", [("3", "By=http://frontend.lyft.com;Hash=" + HASH
            + ';Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com')]),
    ("1", [("3", "By=http://frontend.lyft.com;Hash=" + HASH + ";URI=http://testclient.lyft.com,"
            + "By=http://backend.lyft.com;Hash=" + HASH + ";URI=http://frontend.lyft.com;DNS=lyft.com")]),
    ("0", [("3", "By=spiffe://cluster.local/ns/default/sa/httpbin;Hash=" + HASH
            + ';Subject="";URI=spiffe://cluster.local/ns/default/sa/sleep')]),
    ("0", [("3", 'Subject="CN=a\\"b, O=x;y";URI="spiffe://td/ns/a/sa/b"')]),
    ("0", [("4", "web.emojivoto.serviceaccount.identity.linkerd.cluster.local")]),
    ("0", [("1", ", ".join(["10.0.0.1"] * 80))]),
]


def main():
    out = os.path.join(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus"), "forwarded")
    os.makedirs(out, exist_ok=True)
    for i, (peer, lines) in enumerate(SEEDS):
        data = peer + "\n".join(name + value for name, value in lines)
        with open(os.path.join(out, "seed-%02d" % i), "wb") as f:
            f.write(data.encode())


if __name__ == "__main__":
    main()
