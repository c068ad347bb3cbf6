"""Test support: start chfront on a free port, a small HTTP client, RowBinary encoding.

If CLICKHOUSE_URL is set, tests that only need "a ClickHouse HTTP server" use it instead of
starting chfront (tests of chfront-only behaviour such as restarts are skipped then).
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from typing import Dict, Iterable, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
CHFRONT_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(CHFRONT_DIR))
sys.path.insert(0, CHFRONT_DIR)

EXTERNAL_URL = os.environ.get("CLICKHOUSE_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Front:
    """A chfront subprocess on a free port; `url`, `data_dir`; stop() with SIGTERM."""

    def __init__(self, data_dir: Optional[str] = None, extra: Iterable[str] = (), port: Optional[int] = None):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="chfront-test-")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(CHFRONT_DIR, "chfront.py"), "--port", str(self.port),
             "--data-dir", self.data_dir, *extra],
            stdout=self.log, stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = request(self.url, "GET", "/ping")
                if status == 200 and body == b"Ok.\n":
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chfront did not start: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self, remove: bool = True) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if remove and self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.proc.returncode

    def close(self) -> None:
        """Stop (if running) and release the log file."""
        self.stop()
        self.log.close()


def request(
    url: str,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[Dict[str, str]] = None,
    chunks: Optional[List[bytes]] = None,
    timeout: float = 60,
) -> Tuple[int, Dict[str, str], bytes]:
    """One HTTP request; `chunks` sends a chunked body. Returns (status, headers, body)
    with header names lower-cased."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if chunks is not None:
            conn.putrequest(method, path)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for c in chunks:
                if c:
                    conn.send(b"%x\r\n" % len(c) + c + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class Client:
    """Tiny ClickHouse HTTP client for tests."""

    def __init__(self, url: str, user: Optional[str] = None, password: Optional[str] = None):
        self.url = url
        self.headers: Dict[str, str] = {}
        if user is not None:
            tok = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = "Basic " + tok

    def raw(self, sql: Optional[str] = None, body: Optional[bytes] = None, method: str = "POST",
            headers: Optional[Dict[str, str]] = None, chunks: Optional[List[bytes]] = None,
            **params: str) -> Tuple[int, Dict[str, str], bytes]:
        if sql is not None and body is None and chunks is None and method == "POST":
            body = sql.encode()
        elif sql is not None:
            params["query"] = sql
        path = "/"
        if params:
            path += "?" + urllib.parse.urlencode(params)
        h = dict(self.headers)
        h.update(headers or {})
        return request(self.url, method, path, body, h, chunks)

    def q(self, sql: str, **params: str) -> str:
        """Run `sql` (POST body); raise AssertionError on non-200; return the body text."""
        status, hdrs, data = self.raw(sql, **params)
        if status != 200:
            raise AssertionError(f"HTTP {status} for {sql[:80]!r}: {data.decode('utf-8', 'replace')}")
        return data.decode("utf-8")

    def insert(self, table_sql: str, fmt: str, data: bytes, **params: str) -> Tuple[int, Dict[str, str], bytes]:
        return self.raw(f"INSERT INTO {table_sql} FORMAT {fmt}", body=data, **params)


def unique(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# ---- RowBinary encoding -----------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rb_string(s) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def rb_u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def rb_i64(n: int) -> bytes:
    return struct.pack("<q", n)


def rb_map(m: Dict[str, str]) -> bytes:
    return varint(len(m)) + b"".join(rb_string(k) + rb_string(v) for k, v in m.items())


def rb_array(items: list, enc) -> bytes:
    return varint(len(items)) + b"".join(enc(x) for x in items)


SPAN_COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
]
SPAN_TYPES = [
    "DateTime64(9)", "String", "String", "String", "String", "LowCardinality(String)",
    "LowCardinality(String)", "LowCardinality(String)", "Map(LowCardinality(String), String)",
    "String", "String", "Map(LowCardinality(String), String)", "UInt64", "LowCardinality(String)",
    "String", "Array(DateTime64(9))", "Array(LowCardinality(String))",
    "Array(Map(LowCardinality(String), String))", "Array(String)", "Array(String)", "Array(String)",
    "Array(Map(LowCardinality(String), String))",
]
INSERT_COLUMNS = ", ".join(f"`{c}`" for c in SPAN_COLUMNS)


def span_row(
    ts_ns: int,
    trace_id: str,
    span_id: str,
    name: str = "tools/call add_item",
    service: str = "mcp-shop",
    attrs: Optional[Dict[str, str]] = None,
    resource: Optional[Dict[str, str]] = None,
    duration_ns: int = 1_500_000,
    status: str = "Unset",
    parent: str = "",
    events: Optional[List[Tuple[int, str, Dict[str, str]]]] = None,
) -> bytes:
    """One otel_traces row in RowBinary, the 22 insert columns in order."""
    events = events or []
    return b"".join([
        rb_i64(ts_ns), rb_string(trace_id), rb_string(span_id), rb_string(parent), rb_string(""),
        rb_string(name), rb_string("Server"), rb_string(service),
        rb_map(resource if resource is not None else {"service.name": service, "service.instance.id": "10.0.0.1:8080"}),
        rb_string("mcptap-collector"), rb_string("0.1.0"), rb_map(attrs or {}), rb_u64(duration_ns),
        rb_string(status), rb_string(""),
        rb_array([e[0] for e in events], rb_i64), rb_array([e[1] for e in events], rb_string),
        rb_array([e[2] for e in events], rb_map),
        rb_array([], rb_string), rb_array([], rb_string), rb_array([], rb_string), rb_array([], rb_map),
    ])


def rbwnat_header(columns: List[str], types: List[str]) -> bytes:
    """The RowBinaryWithNamesAndTypes header."""
    return varint(len(columns)) + b"".join(rb_string(c) for c in columns) + b"".join(rb_string(t) for t in types)
