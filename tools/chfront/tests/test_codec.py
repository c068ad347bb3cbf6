"""Unit tests without a server: CityHash128 v1.0.2, compressed-block framing, the SQL lexer."""

import struct
import unittest

import support  # noqa: F401  (puts tools/chfront on sys.path)
from chfront import (
    K0,
    ChError,
    analyze,
    block_checksum,
    cityhash102_128,
    content_type_for,
    decode_native_blocks,
    encode_native_block,
    http_status_for,
    parse_multipart,
)

MASK = (1 << 64) - 1

# CityHash v1.0.2 reference vectors (the standard CityHash test: data[i*i : i*i+i] of the
# generated buffer; columns 3 and 4 of the reference table = CityHash128 first, second),
# as used by the cityhash-rs crate the `clickhouse` Rust crate checksums with.
VECTORS = [
    (0, 0x3DF09DFC64C09A2B, 0x3CB540C392E51E29),
    (1, 0x1290F0E8A5CAA74D, 0xCA4C6BF7583F5CDA),
    (2, 0xB4AF8AE673ACB930, 0x992B7ACB203D8885),
    (3, 0x8F52532FC6F005B7, 0x4EBE60DF371EC129),
    (5, 0xB342CDF0D7AC4B2A, 0x66914D44B373B232),
    (8, 0x763529C8D4189EA8, 0x860D77E7FEF74CA3),
    (10, 0x3506AE8FAE368D2A, 0x59FA2B2DE5306203),
    (15, 0x1C66CEEA473413DF, 0xDC3F70A124B25A40),
    (16, 0x8505C996B70EE9FC, 0xB92BBA6B5D778EB7),
    (17, 0x1660A2C4972D0FA1, 0x1A1538D6B50A57C),
    (31, 0x441133D221486A3D, 0xFB9C5A40E19515B),
    (63, 0x87E11C0F44454863, 0x2DF1AEDB5871CC4B),
    (64, 0x4CAF4DEEDA66A6EE, 0x264720F6F35F7840),
    (100, 0x2A55645640911E27, 0x4FAC2EEFBD36E26F),
    (128, 0x5414E385F5677A6D, 0x41EF105F8A682A28),
    (150, 0x7926E11179D2B882, 0xE94FCAA22D091D09),
    (200, 0xAC61387D34B8EBA3, 0xF658ECEFF68E4F98),
    (255, 0x3AD5FE46FEA96C61, 0x5B78B66FEF8DEA6F),
    (298, 0x19FA48781CE2B326, 0xF34FC200E9CA457C),
]


def reference_data(n: int) -> bytes:
    out = bytearray(n)
    a, b = 9, 777
    for i in range(n):
        a = ((a ^ (a >> 41)) * K0 + b) & MASK
        b = ((b ^ (b >> 41)) * K0 + i) & MASK
        out[i] = (b >> 37) & 0xFF
    return bytes(out)


class CityHashTest(unittest.TestCase):
    def test_reference_vectors(self):
        data = reference_data(299 * 299 + 299)
        for i, first, second in VECTORS:
            with self.subTest(length=i):
                self.assertEqual(cityhash102_128(data[i * i : i * i + i]), (first, second))

    def test_checksum_layout_low64_first(self):
        lo, hi = cityhash102_128(b"hello world, this is a block")
        self.assertEqual(block_checksum(b"hello world, this is a block"), struct.pack("<QQ", lo, hi))


class FramingTest(unittest.TestCase):
    def test_round_trip_several_blocks(self):
        a = b"abc" * 1000
        b = bytes(range(256)) * 50
        framed = encode_native_block(a) + encode_native_block(b)
        self.assertEqual(decode_native_blocks(framed), a + b)

    def test_uncompressed_method(self):
        raw = b"plain bytes"
        block = struct.pack("<BII", 0x02, len(raw) + 9, len(raw)) + raw
        self.assertEqual(decode_native_blocks(block_checksum(block) + block), raw)

    def test_bad_checksum_is_code_40_unless_disabled(self):
        framed = bytearray(encode_native_block(b"x" * 100))
        framed[0] ^= 0xFF
        with self.assertRaises(ChError) as cm:
            decode_native_blocks(bytes(framed))
        self.assertEqual(cm.exception.code, 40)
        self.assertIn("CHECKSUM_DOESNT_MATCH", cm.exception.text)
        self.assertEqual(decode_native_blocks(bytes(framed), verify=False), b"x" * 100)

    def test_truncated_and_unknown_method(self):
        framed = encode_native_block(b"y" * 100)
        with self.assertRaises(ChError) as cm:
            decode_native_blocks(framed[:-3])
        self.assertEqual(cm.exception.code, 33)
        block = struct.pack("<BII", 0x90, 9 + 4, 4) + b"zzzz"
        with self.assertRaises(ChError) as cm:
            decode_native_blocks(block_checksum(block) + block)
        self.assertEqual(cm.exception.code, 89)


class LexerTest(unittest.TestCase):
    def test_insert_format_data_starts_after_one_newline(self):
        t = "INSERT INTO t (a, `format`) FORMAT RowBinary\n  \x20data"
        st = analyze(t)
        self.assertEqual((st.kind, st.fmt), ("INSERT", "RowBinary"))
        self.assertEqual(t[: st.head_end].rstrip(), "INSERT INTO t (a, `format`)")
        self.assertEqual(t[st.data_start :], "  \x20data")

    def test_insert_settings_before_format(self):
        t = "insert into db.t SETTINGS async_insert=1 format JSONEachRow {\"a\":1}"
        st = analyze(t)
        self.assertEqual(st.fmt, "JSONEachRow")
        self.assertEqual(t[st.data_start :], '{"a":1}')

    def test_insert_values_is_left_to_the_engine(self):
        st = analyze("INSERT INTO t VALUES (1, 'a;b'); (2, 'c')")
        self.assertEqual(st.kind, "INSERT")
        self.assertIsNone(st.fmt)

    def test_select_output_format(self):
        st = analyze("SELECT 'FORMAT x', (SELECT 1 FORMAT TSV) /* FORMAT y */ FORMAT JSONEachRow;")
        self.assertEqual((st.kind, st.fmt), ("SELECT", "JSONEachRow"))

    def test_multi_statement_rejected_but_trailing_semicolon_ok(self):
        analyze("SELECT 1;  -- done\n")
        analyze("SELECT ';' ; ")
        with self.assertRaises(ChError) as cm:
            analyze("SELECT 1; SELECT 2")
        self.assertEqual(cm.exception.code, 62)
        self.assertIn("Multi-statements are not allowed", cm.exception.text)

    def test_comments_and_quotes(self):
        st = analyze("-- c\n/* x */ WITH 'it''s' AS s SELECT s")
        self.assertEqual(st.kind, "WITH")
        with self.assertRaises(ChError):
            analyze("SELECT 'unterminated")


class MiscTest(unittest.TestCase):
    def test_status_mapping_follows_clickhouse(self):
        self.assertEqual(http_status_for(62), 400)
        self.assertEqual(http_status_for(60), 404)
        self.assertEqual(http_status_for(47), 404)
        self.assertEqual(http_status_for(81), 404)
        self.assertEqual(http_status_for(115), 404)
        self.assertEqual(http_status_for(516), 403)
        self.assertEqual(http_status_for(194), 401)
        self.assertEqual(http_status_for(159), 408)
        self.assertEqual(http_status_for(40), 500)
        self.assertEqual(http_status_for(164), 500)

    def test_content_types(self):
        self.assertEqual(content_type_for("RowBinaryWithNamesAndTypes"), "application/octet-stream")
        self.assertEqual(content_type_for("TabSeparated"), "text/tab-separated-values; charset=UTF-8")
        self.assertEqual(content_type_for("JSON"), "application/json; charset=UTF-8")
        self.assertEqual(content_type_for("CSVWithNames"), "text/csv; charset=UTF-8; header=present")

    def test_multipart(self):
        body = (
            b"--XyZ\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nSELECT {a:UInt8}\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"param_a\"\r\n\r\n7\r\n--XyZ--\r\n"
        )
        self.assertEqual(
            parse_multipart(body, "multipart/form-data; boundary=XyZ"),
            [("query", "SELECT {a:UInt8}"), ("param_a", "7")],
        )


if __name__ == "__main__":
    unittest.main()
