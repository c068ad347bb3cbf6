"""HTTP behaviour of chfront (or of the server at CLICKHOUSE_URL, where it makes sense)."""

import gzip
import json
import threading
import unittest

import lz4.block

from support import (
    EXTERNAL_URL,
    Client,
    Front,
    rb_string,
    rb_u64,
    rbwnat_header,
    unique,
)
from chfront import encode_native_block

front = None
URL = EXTERNAL_URL


def setUpModule():
    global front, URL
    if not EXTERNAL_URL:
        front = Front()
        URL = front.url


def tearDownModule():
    if front is not None:
        front.close()


def rows_ab(rows):
    """RowBinary for (a UInt64, s String) rows."""
    return b"".join(rb_u64(a) + rb_string(s) for a, s in rows)


def ch_frame(raw: bytes, block_size: int = 0) -> bytes:
    """Frame `raw` as the clickhouse crate does for decompress=1 (several blocks if
    block_size is set)."""
    if not block_size:
        return encode_native_block(raw)
    return b"".join(encode_native_block(raw[i : i + block_size]) for i in range(0, len(raw), block_size))


class Base(unittest.TestCase):
    def setUp(self):
        self.c = Client(URL)

    def make_table(self, extra_settings: str = "") -> str:
        t = unique("ab")
        settings = " SETTINGS " + extra_settings if extra_settings else ""
        self.c.q(f"CREATE TABLE {t} (a UInt64, s String) ENGINE = MergeTree ORDER BY a{settings}")
        self.addCleanup(lambda: self.c.raw(f"DROP TABLE IF EXISTS {t}"))
        return t


class PingAndQueries(Base):
    def test_ping_and_root(self):
        for path in ("/ping", "/"):
            st, h, body = self.c.raw(method="GET") if path == "/" else __import__("support").request(URL, "GET", path)
            self.assertEqual((st, body), (200, b"Ok.\n"))

    def test_query_in_url_get_and_body_post(self):
        st, h, body = self.c.raw("SELECT 1 + 1", method="GET")
        self.assertEqual((st, body), (200, b"2\n"))
        self.assertTrue(h["content-type"].startswith("text/tab-separated-values"))
        self.assertEqual(h["x-clickhouse-format"], "TabSeparated")
        self.assertIn("x-clickhouse-query-id", h)
        self.assertIn("x-clickhouse-summary", h)
        json.loads(h["x-clickhouse-summary"])
        self.assertEqual(self.c.q("SELECT 'x' AS v FORMAT JSONEachRow"), '{"v":"x"}\n')

    def test_url_query_and_body_are_joined_by_a_line_break(self):
        st, _, body = self.c.raw(body=b"+ 2", query="SELECT 40")
        self.assertEqual((st, body), (200, b"42\n"))

    def test_default_format_and_query_format(self):
        st, h, body = self.c.raw("SELECT 7 AS n", default_format="JSONEachRow")
        self.assertEqual(body, b'{"n":7}\n')
        self.assertEqual(h["x-clickhouse-format"], "JSONEachRow")
        st, h, body = self.c.raw("SELECT 7 AS n FORMAT CSVWithNames", default_format="JSONEachRow")
        self.assertEqual(body, b'"n"\n7\n')
        self.assertTrue(h["content-type"].startswith("text/csv"))
        st, h, body = self.c.raw("SELECT toUInt8(7) AS n", default_format="RowBinaryWithNamesAndTypes")
        self.assertEqual(body, b"\x01\x01n\x05UInt8\x07")
        self.assertEqual(h["content-type"], "application/octet-stream")

    def test_database_param_and_header(self):
        db = unique("db")
        self.c.q(f"CREATE DATABASE {db}")
        self.addCleanup(lambda: self.c.raw(f"DROP DATABASE IF EXISTS {db}"))
        self.assertEqual(self.c.q("SELECT currentDatabase()", database=db), db + "\n")
        st, _, body = self.c.raw("SELECT currentDatabase()", headers={"X-ClickHouse-Database": db})
        self.assertEqual(body, (db + "\n").encode())
        self.assertEqual(self.c.q("SELECT currentDatabase()"), "default\n")
        st, h, body = self.c.raw("SELECT 1", database="no_such_db_x")
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (404, "81"))

    def test_settings_as_url_params_apply_to_that_request_only(self):
        self.assertEqual(self.c.q("SELECT getSetting('max_threads')", max_threads="3"), "3\n")
        self.assertNotEqual(self.c.q("SELECT getSetting('max_threads')"), "3\n")
        self.assertEqual(
            self.c.q("SELECT getSetting('output_format_json_quote_64bit_integers')",
                     output_format_json_quote_64bit_integers="0"),
            "false\n",
        )
        # reserved HTTP parameters are not settings
        self.assertEqual(self.c.q("SELECT 1", session_id="abc", wait_end_of_query="1", query_id="q-1",
                                  enable_http_compression="1"), "1\n")
        st, h, body = self.c.raw("SELECT 1", no_such_setting_zz="1")
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (404, "115"))

    def test_set_in_body_does_not_leak(self):
        self.c.q("SET max_threads = 5")
        self.assertNotEqual(self.c.q("SELECT getSetting('max_threads')"), "5\n")

    def test_query_id_is_echoed(self):
        st, h, _ = self.c.raw("SELECT 1", query_id="my-query-1")
        self.assertEqual(h["x-clickhouse-query-id"], "my-query-1")

    def test_accept_encoding_answered_uncompressed(self):
        st, h, body = self.c.raw("SELECT 1", headers={"Accept-Encoding": "lz4, gzip"}, enable_http_compression="1")
        self.assertEqual((st, body), (200, b"1\n"))
        self.assertNotIn("content-encoding", h)

    def test_gzip_request_body(self):
        st, _, body = self.c.raw(body=gzip.compress(b"SELECT 5"), headers={"Content-Encoding": "gzip"})
        self.assertEqual((st, body), (200, b"5\n"))


class Params(Base):
    def test_param_in_url(self):
        self.assertEqual(self.c.q("SELECT {svc:String} || '!', {n:UInt8} + 1", param_svc="shop", param_n="4"), "shop!\t5\n")

    def test_multipart_query_and_params(self):
        # What clickhouse-rs 0.15.3 sends for .param(): multipart parts `query` and `param_*`.
        b = "----chfrontBoundary7"
        parts = [("query", "SELECT {svc:String} AS s, {lim:UInt32} AS l"), ("param_svc", "mcp'shop"), ("param_lim", "10")]
        body = "".join(f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n" for k, v in parts)
        body += f"--{b}--\r\n"
        st, h, data = self.c.raw(body=body.encode(), headers={"Content-Type": f"multipart/form-data; boundary={b}"},
                                 default_format="JSONEachRow")
        self.assertEqual(st, 200, data)
        self.assertEqual(json.loads(data), {"s": "mcp'shop", "l": 10})

    def test_missing_param_is_an_error(self):
        st, h, body = self.c.raw("SELECT {nope:String}")
        self.assertNotEqual(st, 200)
        self.assertIn("x-clickhouse-exception-code", h)


class Errors(Base):
    def test_syntax_error(self):
        st, h, body = self.c.raw("SELEC 1")
        self.assertEqual(st, 400)
        self.assertEqual(h["x-clickhouse-exception-code"], "62")
        self.assertRegex(body.decode(), r"^Code: 62\. DB::Exception: Syntax error.*\(SYNTAX_ERROR\) \(version [0-9.]+\)\n$")

    def test_unknown_table(self):
        st, h, body = self.c.raw("SELECT * FROM no_such_table_q")
        self.assertEqual(st, 404)
        self.assertEqual(h["x-clickhouse-exception-code"], "60")
        self.assertRegex(body.decode(), r"^Code: 60\. DB::Exception: .*no_such_table_q.*\(UNKNOWN_TABLE\)")

    def test_insert_into_unknown_table(self):
        st, h, body = self.c.insert("no_such_table_i (a)", "RowBinary", b"\x01" * 8)
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (404, "60"))

    def test_unknown_identifier(self):
        st, h, _ = self.c.raw("SELECT nope_col FROM system.one")
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (404, "47"))

    def test_multi_statement(self):
        st, h, body = self.c.raw("SELECT 1; SELECT 2")
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (400, "62"))

    def test_empty_post(self):
        st, h, body = self.c.raw(body=b"")
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (400, "62"))

    def test_get_is_readonly(self):
        t = unique("ro")
        st, h, body = self.c.raw(f"CREATE TABLE {t} (a UInt8) ENGINE = Memory", method="GET")
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (500, "164"))
        self.assertIn("READONLY", body.decode())

    def test_bad_data_in_insert(self):
        t = self.make_table()
        st, h, body = self.c.insert(f"{t} (a, s)", "RowBinary", b"\x01\x02")
        self.assertEqual(h.get("x-clickhouse-exception-code"), "33", body)
        self.assertEqual(self.c.q(f"SELECT count() FROM {t}"), "0\n")

    def test_connection_stays_usable_after_error(self):
        import http.client
        import urllib.parse

        u = urllib.parse.urlsplit(URL)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            for sql, want in ((b"SELEC 1", 400), (b"SELECT 3", 200), (b"SELECT * FROM nope_t", 404), (b"SELECT 4", 200)):
                conn.request("POST", "/", body=sql)
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, want)
        finally:
            conn.close()


class Inserts(Base):
    def test_rowbinary_plain(self):
        t = self.make_table()
        st, h, body = self.c.insert(f"{t} (a, s)", "RowBinary", rows_ab([(1, "x"), (2, "y")]))
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(h["x-clickhouse-summary"])["written_rows"], "2")
        self.assertEqual(self.c.q(f"SELECT a, s FROM {t} ORDER BY a"), "1\tx\n2\ty\n")

    def test_rowbinary_query_in_url_body_is_data(self):
        # Exactly the crate's shape: POST /?database=default&query=INSERT ... FORMAT RowBinary
        # with the raw rows as the body. A first byte that is whitespace must stay data.
        t = self.make_table()
        data = rows_ab([(0x20, " lead"), (0x0A, "\nnl")])
        st, _, body = self.c.raw(body=data, query=f"INSERT INTO {t} (`a`, `s`) FORMAT RowBinary", database="default")
        self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT a, s FROM {t} ORDER BY a FORMAT JSONEachRow",
                                  output_format_json_quote_64bit_integers="1"),
                         '{"a":"10","s":"\\nnl"}\n{"a":"32","s":" lead"}\n')

    def test_rowbinary_lz4_compressed_several_blocks(self):
        t = self.make_table()
        rows = [(i, f"row-{i}") for i in range(5000)]
        data = rows_ab(rows)
        st, _, body = self.c.raw(body=ch_frame(data, 7000), query=f"INSERT INTO {t} (a, s) FORMAT RowBinary",
                                 decompress="1")
        self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT count(), sum(a), max(s) FROM {t}"), "5000\t12497500\trow-999\n")

    def test_compressed_with_bad_checksum_rejected(self):
        if front is None:
            self.skipTest("chfront-specific message")
        t = self.make_table()
        framed = bytearray(ch_frame(rows_ab([(1, "a")])))
        framed[3] ^= 0x55
        st, h, body = self.c.raw(body=bytes(framed), query=f"INSERT INTO {t} (a, s) FORMAT RowBinary", decompress="1")
        self.assertEqual((st, h["x-clickhouse-exception-code"]), (500, "40"))
        self.assertEqual(self.c.q(f"SELECT count() FROM {t}"), "0\n")

    def test_compressed_block_with_zero_checksum_rejected(self):
        t = self.make_table()
        raw = rows_ab([(1, "a")])
        comp = lz4.block.compress(raw, store_size=False)
        import struct

        frame = b"\x00" * 16 + struct.pack("<BII", 0x82, len(comp) + 9, len(raw)) + comp
        st, h, _ = self.c.raw(body=frame, query=f"INSERT INTO {t} (a, s) FORMAT RowBinary", decompress="1")
        self.assertEqual(h.get("x-clickhouse-exception-code"), "40")

    def test_chunked_upload_plain_and_compressed(self):
        t = self.make_table()
        data = rows_ab([(i, "c" * (i % 50)) for i in range(3000)])
        chunks = [data[i : i + 777] for i in range(0, len(data), 777)]
        st, _, body = self.c.raw(query=f"INSERT INTO {t} (a, s) FORMAT RowBinary", chunks=chunks)
        self.assertEqual(st, 200, body)
        framed = ch_frame(data, 4096)
        st, _, body = self.c.raw(query=f"INSERT INTO {t} (a, s) FORMAT RowBinary", decompress="1",
                                 chunks=[framed[i : i + 1000] for i in range(0, len(framed), 1000)])
        self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT count(), uniqExact(a) FROM {t}"), "6000\t3000\n")

    def test_rowbinary_with_names_and_types_subset_of_columns(self):
        t = unique("rbw")
        self.c.q(f"CREATE TABLE {t} (a UInt64, s String, d String DEFAULT 'dflt', m UInt64 MATERIALIZED a * 2) "
                 "ENGINE = MergeTree ORDER BY a")
        self.addCleanup(lambda: self.c.raw(f"DROP TABLE IF EXISTS {t}"))
        data = rbwnat_header(["a", "s"], ["UInt64", "String"]) + rows_ab([(3, "z")])
        st, _, body = self.c.insert(f"{t} (`a`, `s`)", "RowBinaryWithNamesAndTypes", data)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT a, s, d, m FROM {t}"), "3\tz\tdflt\t6\n")
        bad = rbwnat_header(["a", "s"], ["UInt32", "String"]) + b"\x03\x00\x00\x00" + rb_string("z")
        st, h, body = self.c.insert(f"{t} (`a`, `s`)", "RowBinaryWithNamesAndTypes", bad)
        self.assertNotEqual(st, 200)
        self.assertIn("x-clickhouse-exception-code", h)

    def test_text_formats_and_values(self):
        t = self.make_table()
        self.assertEqual(self.c.insert(f"{t}", "JSONEachRow", b'{"a":1,"s":"j"}\n{"a":2,"s":"k"}\n')[0], 200)
        self.assertEqual(self.c.insert(f"{t} (a, s)", "TSV", b"3\tt\n")[0], 200)
        self.assertEqual(self.c.insert(f"{t} (a, s)", "CSV", b"4,c\n")[0], 200)
        self.c.q(f"INSERT INTO {t} VALUES (5, 'v;1'), (6, 'w')")
        st, _, body = self.c.raw(body=b"INSERT INTO " + t.encode() + b" FORMAT TSV\n7\tbody\n")
        self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT groupArray(s) FROM (SELECT s FROM {t} ORDER BY a)"),
                         "['j','k','t','c','v;1','w','body']\n")

    def test_native_roundtrip(self):
        t = self.make_table()
        self.c.insert(f"{t} (a, s)", "RowBinary", rows_ab([(9, "n")]))
        st, _, native = self.c.raw(f"SELECT a, s FROM {t} FORMAT Native")
        self.assertEqual(st, 200)
        t2 = self.make_table()
        st, _, body = self.c.insert(f"{t2}", "Native", native)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT a, s FROM {t2}"), "9\tn\n")

    def test_insert_deduplication_token(self):
        t = self.make_table("non_replicated_deduplication_window = 100")
        data = rows_ab([(1, "a"), (2, "b")])
        for _ in range(2):
            st, _, body = self.c.insert(f"{t} (a, s)", "RowBinary", data, insert_deduplication_token="batch-1")
            self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT count() FROM {t}"), "2\n")
        # a different token inserts again
        self.c.insert(f"{t} (a, s)", "RowBinary", data, insert_deduplication_token="batch-2")
        self.assertEqual(self.c.q(f"SELECT count() FROM {t}"), "4\n")
        # the token does not stick to later requests
        self.c.insert(f"{t} (a, s)", "RowBinary", rows_ab([(3, "c")]), insert_deduplication_token="batch-1")
        self.assertEqual(self.c.q(f"SELECT count() FROM {t}"), "4\n")
        self.c.insert(f"{t} (a, s)", "RowBinary", rows_ab([(4, "d")]))
        self.assertEqual(self.c.q(f"SELECT count() FROM {t}"), "5\n")

    def test_async_insert_setting_accepted(self):
        t = self.make_table()
        st, _, body = self.c.insert(f"{t} (a, s)", "RowBinary", rows_ab([(1, "a")]), async_insert="1",
                                    wait_for_async_insert="1")
        self.assertEqual(st, 200, body)
        self.assertEqual(self.c.q(f"SELECT count() FROM {t}"), "1\n")


class Concurrency(Base):
    def test_concurrent_inserts_and_selects(self):
        t = self.make_table()
        errors = []
        n_threads, per_thread = 8, 15

        def worker(k):
            c = Client(URL)
            try:
                for j in range(per_thread):
                    data = rows_ab([(k * 1000 + j * 10 + r, f"t{k}") for r in range(10)])
                    if j % 2:
                        st, _, body = c.raw(body=ch_frame(data), query=f"INSERT INTO {t} (a, s) FORMAT RowBinary",
                                            decompress="1")
                    else:
                        st, _, body = c.insert(f"{t} (a, s)", "RowBinary", data)
                    if st != 200:
                        errors.append(body)
                    st, _, body = c.raw(f"SELECT count() FROM {t} WHERE s = {{s:String}}", param_s=f"t{k}")
                    if st != 200 or int(body) < (j + 1) * 10:
                        errors.append(b"select: " + body)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e).encode())

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(self.c.q(f"SELECT count(), uniqExact(a) FROM {t}"),
                         f"{n_threads * per_thread * 10}\t{n_threads * per_thread * 10}\n")


class Restart(unittest.TestCase):
    def test_data_persists_across_restart(self):
        if EXTERNAL_URL:
            self.skipTest("needs chfront")
        f = Front()
        try:
            c = Client(f.url)
            c.q("CREATE TABLE keep (a UInt64, s String) ENGINE = MergeTree ORDER BY a")
            c.insert("keep (a, s)", "RowBinary", rows_ab([(1, "kept")]))
            self.assertEqual(f.stop(remove=False), 0)
            self.assertIn("chfront: stopped", f.output())
            g = Front(data_dir=f.data_dir)
            try:
                self.assertEqual(Client(g.url).q("SELECT a, s FROM keep"), "1\tkept\n")
            finally:
                g.close()
        finally:
            f.stop(remove=False)
            f.log.close()
            import shutil

            shutil.rmtree(f.data_dir, ignore_errors=True)


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if EXTERNAL_URL:
            raise unittest.SkipTest("needs chfront")
        cls.f = Front(extra=["--user", "mcptap", "--password", "s3cret"])

    @classmethod
    def tearDownClass(cls):
        cls.f.close()

    def test_wrong_or_missing_credentials_give_516(self):
        for c in (Client(self.f.url), Client(self.f.url, "mcptap", "wrong"), Client(self.f.url, "other", "s3cret")):
            st, h, body = c.raw("SELECT 1")
            self.assertEqual((st, h["x-clickhouse-exception-code"]), (403, "516"))
            self.assertRegex(body.decode(), r"^Code: 516\. DB::Exception: .*Authentication failed.*\(AUTHENTICATION_FAILED\)")

    def test_right_credentials_by_basic_headers_or_params(self):
        self.assertEqual(Client(self.f.url, "mcptap", "s3cret").q("SELECT 1"), "1\n")
        st, _, body = Client(self.f.url).raw("SELECT 2", headers={"X-ClickHouse-User": "mcptap", "X-ClickHouse-Key": "s3cret"})
        self.assertEqual((st, body), (200, b"2\n"))
        st, _, body = Client(self.f.url).raw("SELECT 3", user="mcptap", password="s3cret")
        self.assertEqual((st, body), (200, b"3\n"))

    def test_ping_needs_no_credentials(self):
        from support import request

        self.assertEqual(request(self.f.url, "GET", "/ping")[0], 200)


if __name__ == "__main__":
    unittest.main()
