#!/usr/bin/env python3
"""chfront: a ClickHouse HTTP interface in front of chDB (the ClickHouse engine in-process).

For development and tests where no ClickHouse server can be installed. The engine is real
ClickHouse (PyPI ``chdb-core`` 26.9.0, engine version 26.9.2.1); this file only speaks the
HTTP protocol a ClickHouse server speaks on port 8123, closely enough for the ``clickhouse``
Rust crate, curl, the OpenTelemetry clickhouseexporter style of requests and our tests.

Supported (see tools/chfront/README.md for the full list and the differences):

- ``GET``/``POST /`` with the query in ``query=`` and/or the body (ClickHouse semantics: the
  ``query`` parameter, a line break, then the body; for ``INSERT ... FORMAT X`` the rest is
  the data); ``multipart/form-data`` bodies whose fields are parameters (``query``,
  ``param_*``, settings); ``GET /ping`` and ``GET /`` -> ``Ok.``.
- ``database``, ``default_format`` (and the ``X-ClickHouse-Database``/``-Format`` headers),
  server-side ``param_<name>`` parameters, every other parameter as a query setting
  (``insert_deduplication_token``, ``async_insert``, ``max_execution_time``,
  ``date_time_input_format``, ``input_format_*``, ``output_format_*``,
  ``describe_include_subcolumns``, ...); reserved HTTP parameters (``session_id``,
  ``wait_end_of_query``, ``query_id``, ``compress``, ...) are not settings, as in ClickHouse.
- Request bodies: ``Content-Length`` or ``Transfer-Encoding: chunked``; ``Content-Encoding``
  gzip/deflate/lz4 (frame); ``decompress=1`` native compressed blocks (LZ4 0x82, none 0x02),
  CityHash128 v1.0.2 checksums verified like ClickHouse does.
- Answers are never compressed (allowed by HTTP; ``enable_http_compression`` is accepted).
- Errors as ClickHouse sends them: status from ClickHouse's ``exceptionCodeToHTTPStatus``,
  ``X-ClickHouse-Exception-Code``, body ``Code: N. DB::Exception: ... (NAME) (version V)``.
- Credentials from Basic auth, ``X-ClickHouse-User``/``X-ClickHouse-Key`` or ``user``/
  ``password`` parameters; with ``--user``/``--password`` they are required (else 516).
- GET requests are read-only (ClickHouse sets readonly=2 for GET): writes answer 164.

One chDB connection serves every request; engine access is serialised by a lock while
connections are accepted and bodies read concurrently.

Usage: chfront.py [--host 127.0.0.1] [--port 18123] [--data-dir DIR] [--user U --password P]
                  [--quiet] [--no-verify-checksums] [--config-file FILE.xml] [--pidfile F]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

MASK = (1 << 64) - 1
K0 = 0xC3A5C85C97CB3127
K1 = 0xB492B66FBE98F273
K2 = 0x9AE16A3B2F90404F
K3 = 0xC949D7C7509E6557
KMUL = 0x9DDFEA08EB382D69

# --------------------------------------------------------------------------------------------
# CityHash128 v1.0.2 (the version ClickHouse uses for compressed-block checksums)
# --------------------------------------------------------------------------------------------


def _rot(v: int, s: int) -> int:
    return v if s == 0 else ((v >> s) | (v << (64 - s))) & MASK


def _f64(b, i: int) -> int:
    return struct.unpack_from("<Q", b, i)[0]


def _f32(b, i: int) -> int:
    return struct.unpack_from("<I", b, i)[0]


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _hash16(u: int, v: int) -> int:
    a = ((u ^ v) * KMUL) & MASK
    a ^= a >> 47
    b = ((v ^ a) * KMUL) & MASK
    b ^= b >> 47
    return (b * KMUL) & MASK


def _hash_len_0_to_16(s, off: int, n: int) -> int:
    if n > 8:
        a = _f64(s, off)
        b = _f64(s, off + n - 8)
        return _hash16(a, _rot((b + n) & MASK, n)) ^ b
    if n >= 4:
        a = _f32(s, off)
        return _hash16((n + (a << 3)) & MASK, _f32(s, off + n - 4))
    if n > 0:
        a = s[off]
        b = s[off + (n >> 1)]
        c = s[off + n - 1]
        y = (a + (b << 8)) & 0xFFFFFFFF
        z = (n + (c << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * K2) ^ (z * K3)) & MASK) * K2) & MASK
    return K2


def _weak32(s, off: int, a: int, b: int) -> Tuple[int, int]:
    w, x, y, z = struct.unpack_from("<QQQQ", s, off)
    a = (a + w) & MASK
    b = _rot((b + a + z) & MASK, 21)
    c = a
    a = (a + x + y) & MASK
    b = (b + _rot(a, 44)) & MASK
    return (a + z) & MASK, (b + c) & MASK


def _city_murmur(s, off: int, n: int, a: int, b: int) -> Tuple[int, int]:
    if n <= 16:
        a = (_shift_mix((a * K1) & MASK) * K1) & MASK
        c = (b * K1 + _hash_len_0_to_16(s, off, n)) & MASK
        d = _shift_mix((a + (_f64(s, off) if n >= 8 else c)) & MASK)
    else:
        c = _hash16((_f64(s, off + n - 8) + K1) & MASK, a)
        d = _hash16((b + n) & MASK, (c + _f64(s, off + n - 16)) & MASK)
        a = (a + d) & MASK
        while True:
            a ^= (_shift_mix((_f64(s, off) * K1) & MASK) * K1) & MASK
            a = (a * K1) & MASK
            b ^= a
            c ^= (_shift_mix((_f64(s, off + 8) * K1) & MASK) * K1) & MASK
            c = (c * K1) & MASK
            d ^= c
            off += 16
            n -= 16
            if n <= 16:
                break
    a = _hash16(a, c)
    b = _hash16(d, b)
    return a ^ b, _hash16(b, a)


def _city128_seed(s, off: int, n: int, x: int, y: int) -> Tuple[int, int]:
    if n < 128:
        return _city_murmur(s, off, n, x, y)
    start, total = off, n
    z = (n * K1) & MASK
    v0 = (_rot(y ^ K1, 49) * K1 + _f64(s, off)) & MASK
    v1 = (_rot(v0, 42) * K1 + _f64(s, off + 8)) & MASK
    w0 = (_rot((y + z) & MASK, 35) * K1 + x) & MASK
    w1 = (_rot((x + _f64(s, off + 88)) & MASK, 53) * K1) & MASK
    while True:
        for _ in range(2):
            x = (_rot((x + y + v0 + _f64(s, off + 16)) & MASK, 37) * K1) & MASK
            y = (_rot((y + v1 + _f64(s, off + 48)) & MASK, 42) * K1) & MASK
            x ^= w1
            y ^= v0
            z = _rot(z ^ w0, 33)
            v0, v1 = _weak32(s, off, (v1 * K1) & MASK, (x + w0) & MASK)
            w0, w1 = _weak32(s, off + 32, (z + w1) & MASK, y)
            z, x = x, z
            off += 64
            n -= 64
        if n < 128:
            break
    y = (y + _rot(w0, 37) * K0 + z) & MASK
    x = (x + _rot((v0 + z) & MASK, 49) * K0) & MASK
    done = 0
    while done < n:
        done += 32
        y = (_rot((y - x) & MASK, 42) * K0 + v1) & MASK
        w0 = (w0 + _f64(s, start + total - done + 16)) & MASK
        x = (_rot(x, 49) * K0 + w0) & MASK
        w0 = (w0 + v0) & MASK
        v0, v1 = _weak32(s, start + total - done, v0, v1)
    x = _hash16(x, v0)
    y = _hash16(y, w0)
    return (
        (_hash16((x + v1) & MASK, w1) + y) & MASK,
        _hash16((x + w1) & MASK, (y + v1) & MASK),
    )


def cityhash102_128(data: bytes, seed: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """CityHash128 v1.0.2 of `data` as (first, second) 64-bit halves (Google's uint128 pair;
    ClickHouse calls them low64, high64). With `seed`, CityHash128WithSeed."""
    s = memoryview(data)
    n = len(s)
    if seed is not None:
        return _city128_seed(s, 0, n, seed[0], seed[1])
    if n >= 16:
        return _city128_seed(s, 16, n - 16, _f64(s, 0) ^ K3, _f64(s, 8))
    if n >= 8:
        return _city128_seed(s, n, 0, _f64(s, 0) ^ ((n * K0) & MASK), _f64(s, n - 8) ^ K1)
    return _city128_seed(s, 0, n, K0, K1)


def block_checksum(block: bytes) -> bytes:
    """The 16-byte checksum ClickHouse puts before a compressed block (method byte, sizes and
    payload): CityHash128 v1.0.2, low64 then high64, each little-endian."""
    lo, hi = cityhash102_128(block)
    return struct.pack("<QQ", lo, hi)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

ENGINE_VERSION = "26.9.2.1"

# ClickHouse src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, by error code.
_STATUS_401 = {194}  # REQUIRED_PASSWORD
_STATUS_403 = {192, 193, 516, 512, 497}  # UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE ACCESS_DENIED
_STATUS_400 = {36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168, 223, 62, 117, 53, 321}
_STATUS_404 = {60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511}
_STATUS_OTHER = {229: 413, 48: 501, 209: 503, 76: 503, 381: 411, 159: 408, 439: 503, 779: 415}

CODE_NAMES = {
    33: "CANNOT_READ_ALL_DATA",
    40: "CHECKSUM_DOESNT_MATCH",
    48: "NOT_IMPLEMENTED",
    62: "SYNTAX_ERROR",
    89: "UNKNOWN_COMPRESSION_METHOD",
    164: "READONLY",
    246: "CORRUPTED_DATA",
    271: "CANNOT_DECOMPRESS",
    516: "AUTHENTICATION_FAILED",
    1000: "POCO_EXCEPTION",
    1001: "STD_EXCEPTION",
}


def http_status_for(code: int) -> int:
    """HTTP status a ClickHouse server answers for exception `code`."""
    if code in _STATUS_401:
        return 401
    if code in _STATUS_403:
        return 403
    if code in _STATUS_400:
        return 400
    if code in _STATUS_404:
        return 404
    return _STATUS_OTHER.get(code, 500)


class ChError(Exception):
    """A ClickHouse exception: numeric `code` and the full ``Code: N. DB::Exception: ...`` text."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text

    @classmethod
    def new(cls, code: int, message: str) -> "ChError":
        name = CODE_NAMES.get(code, "UNKNOWN_EXCEPTION")
        return cls(code, f"Code: {code}. DB::Exception: {message}. ({name}) (version {ENGINE_VERSION})")

    @classmethod
    def from_engine(cls, exc: BaseException) -> "ChError":
        """Normalise a chDB exception text into ClickHouse's wire form."""
        text = str(exc).strip()
        m = re.search(r"Code: (\d+)\. DB::Exception:", text)
        if not m:
            return cls.new(1001, text or type(exc).__name__)
        text = text[m.start():].rstrip()
        if "(version " not in text[-40:]:
            text += f" (version {ENGINE_VERSION})"
        return cls(int(m.group(1)), text)


# --------------------------------------------------------------------------------------------
# Native compressed blocks (decompress=1)
# --------------------------------------------------------------------------------------------


def decode_native_blocks(body: bytes, verify: bool = True) -> bytes:
    """Decode ClickHouse's compressed-block framing: per block a 16-byte CityHash128 checksum,
    method byte (0x82 LZ4, 0x02 none, 0x90 ZSTD unsupported), u32 LE compressed size including
    the 9-byte header, u32 LE raw size, payload. Blocks follow each other to the end.
    Raises ChError 40/89/271/33 as ClickHouse would."""
    import lz4.block

    out = []
    pos = 0
    n = len(body)
    mv = memoryview(body)
    while pos < n:
        if n - pos < 25:
            raise ChError.new(33, f"Cannot read all data. Bytes read: {n - pos}. Bytes expected: 25")
        checksum = bytes(mv[pos : pos + 16])
        method = body[pos + 16]
        comp_size, raw_size = struct.unpack_from("<II", body, pos + 17)
        if comp_size < 9 or pos + 16 + comp_size > n:
            raise ChError.new(33, f"Cannot read all data. Bytes read: {n - pos - 16}. Bytes expected: {comp_size}")
        block = mv[pos + 16 : pos + 16 + comp_size]
        if verify:
            actual = block_checksum(block)
            if actual != checksum:
                exp_lo, exp_hi = struct.unpack("<QQ", checksum)
                act_lo, act_hi = struct.unpack("<QQ", actual)
                raise ChError.new(
                    40,
                    "Checksum doesn't match: corrupted data. Reference: "
                    f"0x{exp_hi:016x}{exp_lo:016x}. Actual: 0x{act_hi:016x}{act_lo:016x}. "
                    f"Size of compressed block: {comp_size}",
                )
        payload = bytes(block[9:])
        if method == 0x82:
            try:
                raw = lz4.block.decompress(payload, uncompressed_size=raw_size)
            except Exception as e:  # lz4.block.LZ4BlockError
                raise ChError.new(271, f"Cannot decompress LZ4-encoded data: {e}") from None
        elif method == 0x02:
            raw = payload
        else:
            raise ChError.new(89, f"Unknown compression method 0x{method:02x} (chfront supports LZ4 and NONE)")
        if len(raw) != raw_size:
            raise ChError.new(271, f"Cannot decompress: expected {raw_size} bytes, got {len(raw)}")
        out.append(raw)
        pos += 16 + comp_size
    return b"".join(out)


def encode_native_block(raw: bytes) -> bytes:
    """One LZ4 compressed block with its checksum (the inverse of decode_native_blocks)."""
    import lz4.block

    comp = lz4.block.compress(raw, store_size=False)
    block = struct.pack("<BII", 0x82, len(comp) + 9, len(raw)) + comp
    return block_checksum(block) + block


# --------------------------------------------------------------------------------------------
# Just enough SQL lexing to find the statement kind, FORMAT clauses and where data starts
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OUTPUT_KINDS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"}
# Statements a read-only request (GET, or readonly=1/2) may not run. Anything else goes to the
# engine, which also reports syntax errors for unknown keywords.
_WRITE_KINDS = {
    "INSERT", "CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "OPTIMIZE", "DELETE", "UPDATE",
    "ATTACH", "DETACH", "SYSTEM", "GRANT", "REVOKE", "KILL", "EXCHANGE", "UNDROP", "BACKUP",
    "RESTORE", "MOVE", "REPLACE",
}


class Statement:
    """What the lexer found in one request's SQL text (a latin-1 view of the bytes).

    kind: first keyword upper-cased ('' if none); fmt: the top-level FORMAT name (output
    format for queries, input format for INSERT); head_end: for an INSERT with FORMAT, where
    the FORMAT keyword starts; data_start: where INSERT data starts (after the format name,
    spaces and one line break); end: end of the statement text (before a trailing ';')."""

    def __init__(self) -> None:
        self.kind = ""
        self.fmt: Optional[str] = None
        self.head_end: Optional[int] = None
        self.data_start: Optional[int] = None
        self.end = 0


def _skip_ws_comments(t: str, i: int) -> int:
    n = len(t)
    while i < n:
        c = t[i]
        if c in " \t\r\n\f\v":
            i += 1
        elif t.startswith("--", i):
            j = t.find("\n", i)
            i = n if j < 0 else j + 1
        elif t.startswith("/*", i):
            j = t.find("*/", i + 2)
            if j < 0:
                raise ChError.new(62, f"Syntax error: failed at position {i + 1}: unterminated comment")
            i = j + 2
        else:
            break
    return i


def _skip_quoted(t: str, i: int) -> int:
    q = t[i]
    n = len(t)
    i += 1
    while i < n:
        c = t[i]
        if c == "\\":
            i += 2
            continue
        if c == q:
            if i + 1 < n and t[i + 1] == q:
                i += 2
                continue
            return i + 1
        i += 1
    raise ChError.new(62, "Syntax error: unterminated quoted string or identifier")


def analyze(t: str) -> Statement:
    """Lex `t`; raises ChError 62 for a second statement after ';' (ClickHouse's HTTP
    interface rejects multi-statements) or an unterminated string/comment."""
    st = Statement()
    n = len(t)
    i = 0
    depth = 0
    while True:
        i = _skip_ws_comments(t, i)
        if i >= n:
            st.end = n
            return st
        c = t[i]
        if c in "'\"`":
            i = _skip_quoted(t, i)
        elif c == "(" or c == "[":
            depth += 1
            i += 1
        elif c == ")" or c == "]":
            depth -= 1
            i += 1
        elif c == ";" and depth <= 0:
            st.end = i
            rest = _skip_ws_comments(t, i + 1)
            if rest < n:
                raise ChError.new(
                    62,
                    f"Syntax error (Multi-statements are not allowed): failed at position {i + 1} "
                    f"(end of query): {t[i:i + 40]!s}",
                )
            return st
        elif c.isalpha() or c == "_":
            m = _WORD.match(t, i)
            word = m.group(0)
            up = word.upper()
            start = i
            i = m.end()
            if not st.kind:
                st.kind = up
                continue
            if depth == 0 and up == "FORMAT":
                j = _skip_ws_comments(t, i)
                m2 = _WORD.match(t, j)
                if not m2:
                    continue
                st.fmt = m2.group(0)
                i = m2.end()
                if st.kind == "INSERT":
                    st.head_end = start
                    while i < n and t[i] in " \t\f\v\r":
                        i += 1
                    if i < n and t[i] == "\n":
                        i += 1
                    st.data_start = i
                    st.end = n
                    return st
            elif depth == 0 and st.kind == "INSERT" and up == "VALUES":
                st.end = n  # the rest is data in the Values format: the engine parses it
                return st
        else:
            i += 1


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------

# HTTP parameters that are not settings (ClickHouse HTTPHandler's reserved names).
RESERVED_PARAMS = {
    "compress", "decompress", "user", "password", "quota_key", "query_id", "stacktrace",
    "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
    "client_protocol_version", "close_session", "query", "database", "default_format",
    "role", "readonly",
}
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLAIN_VALUE = re.compile(r"^(-?[0-9]+(\.[0-9]+)?|true|false)$", re.I)


def _sql_literal(v: str) -> str:
    if _PLAIN_VALUE.match(v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def content_type_for(fmt: str) -> str:
    """Content-Type ClickHouse sends for output format `fmt`."""
    f = fmt.lower()
    if f.startswith(("rowbinary", "native", "parquet", "arrow", "orc", "avro", "protobuf", "msgpack", "capnproto", "npy", "bson")):
        return "application/octet-stream"
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        header = "present" if "withnames" in f else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if f.startswith("json") and "eachrow" not in f and "lines" not in f and "objecteachrow" not in f:
        return "application/json; charset=UTF-8"
    return "text/plain; charset=UTF-8"


class Result:
    """One executed request: body bytes, output format (None for statements without output),
    and the numbers for X-ClickHouse-Summary."""

    def __init__(self, body: bytes = b"", fmt: Optional[str] = None) -> None:
        self.body = body
        self.fmt = fmt
        self.read_rows = 0
        self.read_bytes = 0
        self.written_rows = 0
        self.written_bytes = 0
        self.elapsed_ns = 0


class Engine:
    """The single chDB connection, used under a lock."""

    def __init__(self, path: Optional[str], config_file: Optional[str] = None):
        import chdb

        self.path = path
        target = f"file:{path}" if path else ":memory:"
        if config_file:
            target += f"?config-file={config_file}"
        self.conn = chdb.connect(target)
        self.lock = threading.Lock()
        self.current_db: Optional[str] = None
        self.closed = False

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.conn.close()

    def _q(self, sql: str, fmt: str = "TabSeparated", params: Optional[Dict[str, str]] = None):
        try:
            return self.conn.query(sql, fmt, params=params or None)
        except Exception as e:
            raise ChError.from_engine(e) from None

    def execute(
        self,
        sql_bytes: bytes,
        database: str,
        default_format: str,
        settings: List[Tuple[str, str]],
        params: Dict[str, str],
        readonly: bool,
    ) -> Result:
        """Run one request's SQL (query text plus any INSERT data). Raises ChError."""
        text = sql_bytes.decode("latin-1")
        st = analyze(text)
        if not st.kind:
            raise ChError.new(62, "Empty query")
        if readonly and st.kind in _WRITE_KINDS:
            raise ChError.new(
                164,
                "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
                "readonly. You should use method POST for modifying queries",
            )
        for k, _ in settings:
            if not _SETTING_NAME.match(k):
                raise ChError.new(115, f"Unknown setting '{k}'")
        t0 = time.monotonic_ns()
        with self.lock:
            if self.closed:
                raise ChError.new(1000, "Server is shutting down")
            if self.current_db != database:
                self.current_db = None
                self._q(f"USE `{database.replace('`', '``')}`")
                self.current_db = database
            applied: List[str] = []
            try:
                for k, v in settings:
                    self._q(f"SET {k} = {_sql_literal(v)}")
                    applied.append(k)
                res = self._run(sql_bytes, text, st, default_format, params)
            finally:
                for k in applied:
                    try:
                        self._q(f"SET {k} = DEFAULT")
                    except ChError:
                        pass
                if st.kind == "SET":
                    # A SET in the body lasts for that request only, as over real HTTP without
                    # a session: undo every name it assigned.
                    for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", text[: st.end]):
                        try:
                            self._q(f"SET {name} = DEFAULT")
                        except ChError:
                            pass
                if st.kind == "USE":
                    self.current_db = None
        res.elapsed_ns = time.monotonic_ns() - t0
        return res

    def _run(self, sql_bytes: bytes, text: str, st: Statement, default_format: str, params: Dict[str, str]) -> Result:
        if st.kind == "INSERT" and st.head_end is not None:
            head = sql_bytes[: st.head_end].decode("utf-8", "replace").rstrip()
            data = sql_bytes[st.data_start :]
            try:
                ins = self.conn.send_insert(head, st.fmt)
            except Exception as e:
                raise ChError.from_engine(e) from None
            try:
                if data:
                    ins.append(data)
                r = ins.finish()
            except Exception as e:
                try:
                    ins.cancel()
                except Exception:
                    pass
                raise ChError.from_engine(e) from None
            out = Result()
            out.written_rows = r.rows_written
            out.written_bytes = r.bytes_written
            return out
        sql = sql_bytes[: st.end].decode("utf-8", "replace")
        fmt = st.fmt or default_format
        r = self._q(sql, fmt, params)
        out = Result(r.bytes(), fmt if st.kind in _OUTPUT_KINDS else None)
        try:
            out.read_rows = r.rows_read()
            out.read_bytes = r.bytes_read()
            out.written_rows = r.rows_written()
            out.written_bytes = r.bytes_written()
        except Exception:
            pass
        return out


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def parse_multipart(body: bytes, content_type: str) -> List[Tuple[str, str]]:
    """Fields of a multipart/form-data body as (name, value). A part with a filename (external
    table data) raises ChError 48: chfront does not support external data."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ChError.new(36, "multipart/form-data without boundary")
    delim = b"--" + m.group(1).encode("latin-1")
    fields: List[Tuple[str, str]] = []
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        elif part.startswith(b"\n"):
            part = part[1:]
        sep = part.find(b"\r\n\r\n")
        sep_len = 4
        if sep < 0:
            sep = part.find(b"\n\n")
            sep_len = 2
        if sep < 0:
            continue
        headers = part[:sep].decode("latin-1")
        value = part[sep + sep_len :]
        if value.endswith(b"\r\n"):
            value = value[:-2]
        elif value.endswith(b"\n"):
            value = value[:-1]
        disp = re.search(r"(?im)^content-disposition:(.*)$", headers)
        if not disp:
            continue
        name = re.search(r'name="([^"]*)"', disp.group(1))
        if not name:
            continue
        if re.search(r"filename=", disp.group(1)):
            raise ChError.new(48, "External data (multipart file parts) is not supported by chfront")
        fields.append((name.group(1), value.decode("utf-8", "replace")))
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chfront"

    def version_string(self) -> str:
        return self.server_version
    timeout = 60  # idle keep-alive connections are closed after this many seconds

    # set by make_server
    engine: Engine
    auth: Optional[Tuple[str, str]]
    quiet: bool
    verify_checksums: bool

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def _log(self, status: int, t0: float, what: str) -> None:
        if self.quiet:
            return
        ms = (time.monotonic() - t0) * 1000
        head = " ".join(what.split())[:120]
        sys.stderr.write(f"chfront {self.command} {status} {ms:.1f}ms {head}\n")

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ChError.new(33, "Unexpected end of chunked request body")
                size_s = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_s, 16)
                except ValueError:
                    raise ChError.new(1000, f"Invalid HTTP chunk size {size_s[:20]!r}") from None
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                data = self.rfile.read(size)
                if len(data) != size:
                    raise ChError.new(33, "Unexpected end of chunked request body")
                chunks.append(data)
                self.rfile.readline(65537)  # CRLF after the chunk
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length:
            n = int(length)
            data = self.rfile.read(n)
            if len(data) != n:
                raise ChError.new(33, "Unexpected end of request body")
            return data
        return b""

    def _credentials(self, params: List[Tuple[str, str]]) -> Tuple[str, str]:
        user = self.headers.get("X-ClickHouse-User")
        key = self.headers.get("X-ClickHouse-Key")
        if user is not None or key is not None:
            return user or "default", key or ""
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                dec = base64.b64decode(auth[6:].strip()).decode("utf-8")
            except Exception:
                raise ChError.new(516, "Invalid authentication: malformed Basic credentials") from None
            u, _, p = dec.partition(":")
            return u or "default", p
        pd = dict(params)
        return pd.get("user", "default") or "default", pd.get("password", "")

    def _send(self, status: int, body: bytes, headers: Dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", f"timeout={self.timeout}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, err: ChError, query_id: str) -> None:
        self._send(
            http_status_for(err.code),
            (err.text + "\n").encode("utf-8"),
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(err.code),
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Server-Display-Name": "chfront",
            },
        )

    def _handle(self) -> None:
        t0 = time.monotonic()
        self.server.active_requests += 1  # type: ignore[attr-defined]
        query_id = ""
        what = ""
        try:
            url = urlsplit(self.path)
            params = parse_qsl(url.query, keep_blank_values=True)
            query_id = dict(params).get("query_id") or self.headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
            try:
                body = self._read_body() if self.command == "POST" else b""
            except ChError as e:
                self.close_connection = True
                self._send_error(e, query_id)
                self._log(http_status_for(e.code), t0, "(bad body)")
                return
            path = url.path
            if path in ("/ping", "/replicas_status"):
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                self._log(200, t0, path)
                return
            if path != "/":
                err = ChError.new(1000, f"There is no handle {path}. Use / or /ping")
                self._send(404, (err.text + "\n").encode(), {"Content-Type": "text/plain; charset=UTF-8"})
                self._log(404, t0, path)
                return
            try:
                result, what = self._query(params, body, query_id)
            except ChError as e:
                self._send_error(e, query_id)
                self._log(http_status_for(e.code), t0, getattr(e, "what", "") or f"error {e.code}")
                return
            if result is None:
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                self._log(200, t0, "/")
                return
            summary = {
                "read_rows": str(result.read_rows),
                "read_bytes": str(result.read_bytes),
                "written_rows": str(result.written_rows),
                "written_bytes": str(result.written_bytes),
                "total_rows_to_read": str(result.read_rows),
                "result_rows": "0",
                "result_bytes": str(len(result.body)),
                "elapsed_ns": str(result.elapsed_ns),
            }
            headers = {
                "Content-Type": content_type_for(result.fmt) if result.fmt else "text/plain; charset=UTF-8",
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Server-Display-Name": "chfront",
                "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
            }
            if result.fmt:
                headers["X-ClickHouse-Format"] = result.fmt
                headers["X-ClickHouse-Timezone"] = "UTC"
            self._send(200, result.body, headers)
            self._log(200, t0, what)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.server.active_requests -= 1  # type: ignore[attr-defined]

    def _query(self, params: List[Tuple[str, str]], body: bytes, query_id: str) -> Tuple[Optional[Result], str]:
        """Decode the body, authenticate, split parameters, run. Returns (None, '') for a
        request without any query (ClickHouse answers ``Ok.``)."""
        user, password = self._credentials(params)
        if self.auth is not None and (user, password) != self.auth:
            raise ChError.new(
                516,
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name",
            )
        ctype = self.headers.get("Content-Type") or ""
        enc = (self.headers.get("Content-Encoding") or "").strip().lower()
        if body and enc and enc != "identity":
            try:
                if enc in ("gzip", "x-gzip"):
                    body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
                elif enc == "deflate":
                    body = zlib.decompress(body)
                elif enc == "lz4":
                    import lz4.frame

                    body = lz4.frame.decompress(body)
                else:
                    raise ChError.new(89, f"Unknown compression method: {enc} (chfront supports gzip, deflate, lz4)")
            except ChError:
                raise
            except Exception as e:
                raise ChError.new(271, f"Cannot decompress request body ({enc}): {e}") from None
        multipart = ctype.lower().startswith("multipart/form-data")
        if multipart:
            params = params + parse_multipart(body, ctype)
            body = b""
        pd = dict(params)
        if body and pd.get("decompress", "0") not in ("0", "false", ""):
            body = decode_native_blocks(body, self.verify_checksums)
        query = "".join(v for k, v in params if k == "query") if multipart else pd.get("query", "")
        database = self.headers.get("X-ClickHouse-Database") or pd.get("database") or "default"
        default_format = self.headers.get("X-ClickHouse-Format") or pd.get("default_format") or "TabSeparated"
        qparams: Dict[str, str] = {}
        settings: List[Tuple[str, str]] = []
        for k, v in params:
            if k.startswith("param_"):
                qparams[k[6:]] = v
            elif not k or k in RESERVED_PARAMS or k == "query":
                continue
            elif multipart and k.endswith(("_format", "_types", "_structure")):
                continue
            else:
                settings.append((k, v))
        if query:
            sql = query.encode("utf-8") + (b"\n" + body if body else b"")
        else:
            sql = body
        if not sql.strip():
            if self.command in ("GET", "HEAD"):
                return None, ""
            raise ChError.new(62, "Empty query")
        what = sql[:200].decode("utf-8", "replace")
        readonly = self.command in ("GET", "HEAD") or pd.get("readonly", "0") not in ("0", "")
        try:
            return self.engine.execute(sql, database, default_format, settings, qparams, readonly), what
        except ChError as e:
            e.what = what  # type: ignore[attr-defined]
            raise


def make_server(
    host: str,
    port: int,
    engine: Engine,
    auth: Optional[Tuple[str, str]] = None,
    quiet: bool = False,
    verify_checksums: bool = True,
) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer bound to (host, port) serving `engine`."""

    class BoundHandler(Handler):
        pass

    BoundHandler.engine = engine
    BoundHandler.auth = auth
    BoundHandler.quiet = quiet
    BoundHandler.verify_checksums = verify_checksums

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False
        allow_reuse_address = True
        request_queue_size = 128

    srv = Server((host, port), BoundHandler)
    srv.active_requests = 0  # type: ignore[attr-defined]
    return srv


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="ClickHouse HTTP interface over chDB")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18123)
    ap.add_argument("--data-dir", default=None, help="persistent data directory (default: in memory)")
    ap.add_argument("--user", default=None, help="require these credentials (with --password)")
    ap.add_argument("--password", default=None)
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    ap.add_argument("--no-verify-checksums", action="store_true", help="accept decompress=1 blocks with wrong checksums")
    ap.add_argument("--pidfile", default=None)
    ap.add_argument("--config-file", default=None,
                    help="ClickHouse server XML config for the engine (e.g. remote_servers, macros)")
    args = ap.parse_args(argv)

    auth = None
    if args.user is not None or args.password is not None:
        auth = (args.user or "default", args.password or "")
    if args.data_dir:
        os.makedirs(args.data_dir, exist_ok=True)
    engine = Engine(
        os.path.abspath(args.data_dir) if args.data_dir else None,
        os.path.abspath(args.config_file) if args.config_file else None,
    )
    try:
        srv = make_server(args.host, args.port, engine, auth, args.quiet, not args.no_verify_checksums)
    except OSError as e:
        print(f"chfront: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        engine.close()
        return 1
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")

    stopping = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = srv.server_address[:2]
    print(f"chfront: listening on http://{host}:{port} (engine {ENGINE_VERSION}, data {args.data_dir or 'in memory'})", file=sys.stderr, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        deadline = time.monotonic() + 10
        while srv.active_requests > 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        srv.server_close()
        engine.close()
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass
        print("chfront: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
