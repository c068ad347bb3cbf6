"""deploy/clickhouse/migrations: they apply cleanly and idempotently, coexist with the
clickhouseexporter's own DDL, compute mcptap's columns, and serve Grafana's trace queries."""

import json
import os
import re
import tempfile
import time
import unittest

from support import (
    EXTERNAL_URL,
    INSERT_COLUMNS,
    SPAN_COLUMNS,
    SPAN_TYPES,
    Client,
    Front,
    rbwnat_header,
    span_row,
    unique,
)
import apply_migrations as am  # noqa: E402  (support puts tools/chfront on sys.path)

front = None
URL = EXTERNAL_URL

# The clickhouseexporter's generally deployed DDL, verbatim in shape (double-quoted names as its
# Go template emits them), without mcptap's dedup setting: what a team may already have.
EXPORTER_DDL = [
    '''CREATE TABLE IF NOT EXISTS "{db}"."{t}" (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)), TraceId String CODEC(ZSTD(1)), SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)), TraceState String CODEC(ZSTD(1)), SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)), ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)), ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)), SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)), StatusCode LowCardinality(String) CODEC(ZSTD(1)), StatusMessage String CODEC(ZSTD(1)),
    Events Nested (Timestamp DateTime64(9), Name LowCardinality(String), Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    Links Nested (TraceId String, SpanId String, TraceState String, Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree() PARTITION BY toDate(Timestamp) ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
TTL toDateTime(Timestamp) + toIntervalDay(3)
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1''',
    '''CREATE TABLE IF NOT EXISTS "{db}"."{t}_trace_id_ts" (
    TraceId String CODEC(ZSTD(1)), Start DateTime CODEC(Delta, ZSTD(1)), End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree() PARTITION BY toDate(Start) ORDER BY (TraceId, Start)
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1''',
    '''CREATE MATERIALIZED VIEW IF NOT EXISTS "{db}"."{t}_trace_id_ts_mv" TO "{db}"."{t}_trace_id_ts"
AS SELECT TraceId, min(Timestamp) as Start, max(Timestamp) as End FROM "{db}"."{t}" WHERE TraceId != '' GROUP BY TraceId''',
]

MCPTAP_COLUMNS = [
    "McpMethod", "McpProtocolVersion", "McpEra", "McpExchangeKind", "McpClientName", "McpClientVersion",
    "McpSessionId", "McpSessionMinted", "ToolName", "HttpStatus", "RpcErrorCode", "ErrorType", "InstanceId",
    "HandlesUsed", "HandlesMinted", "RoutingMethodStatus", "RoutingNameStatus",
]

NOW_NS = (int(time.time()) - 600) * 1_000_000_000


def setUpModule():
    global front, URL
    if not EXTERNAL_URL:
        front = Front()
        URL = front.url


def tearDownModule():
    if front is not None:
        front.close()


class MigrationFiles(unittest.TestCase):
    """Static checks of the files against the contract's format rules."""

    def test_files_versions_modes(self):
        migs = am.load()
        self.assertEqual([m.version for m in migs], list(range(1, len(migs) + 1)))
        modes = {m.version: m.mode for m in migs}
        self.assertEqual(modes, {1: "both", 2: "single", 3: "cluster", 4: "single", 5: "both", 6: "cluster"})

    def test_every_placeholder_is_known_and_names_are_backquoted(self):
        known = set(am.placeholders().keys())
        for m in am.load():
            for name in re.findall(r"\{\{([a-z_]+)\}\}", m.text):
                self.assertIn(name, known, m.name)
            for line in m.text.splitlines():
                if line.strip().startswith("--"):
                    self.assertFalse(line.rstrip().endswith(";"), f"{m.name}: comment line ends with ';'")
                    continue
                self.assertNotRegex(line, r"(?<![`'/])\{\{(database|table|local_table)\}\}", f"{m.name}: unquoted name")

    def test_statements_are_idempotent_forms(self):
        for m in am.load():
            for stmt in am.split_statements(m.text):
                head = " ".join(stmt.split()[:4]).upper()
                if head.startswith("CREATE"):
                    self.assertIn("IF NOT EXISTS", " ".join(stmt.split()[:6]).upper(), stmt[:80])
                for clause in re.findall(r"\bADD\s+(COLUMN|INDEX)\s+(\S+\s+\S+\s+\S+)", stmt, re.I):
                    self.assertTrue(clause[1].upper().startswith("IF NOT EXISTS"), clause)

    def test_cluster_render(self):
        vals = am.placeholders("otel", "otel_traces", 30, cluster="prod", local_table="otel_traces_local")
        stmts = []
        for m in am.selected(am.load(), cluster_mode=True):
            stmts += am.split_statements(am.render(m.text, vals))
        text = "\n".join(stmts)
        self.assertNotIn("{{", text)
        for s in stmts:
            self.assertIn("ON CLUSTER `prod`", s, s[:100])
        self.assertIn("CREATE TABLE IF NOT EXISTS `otel`.`otel_traces_local` ON CLUSTER `prod`", text)
        self.assertIn("ReplicatedMergeTree('/clickhouse/tables/{shard}/otel/otel_traces_local', '{replica}')", text)
        self.assertIn("ReplicatedMergeTree('/clickhouse/tables/{shard}/otel/otel_traces_local_trace_id_ts', '{replica}')", text)
        self.assertIn("FROM `otel`.`otel_traces_local`\nWHERE", text)
        self.assertIn("Distributed('prod', 'otel', 'otel_traces_local', cityHash64(TraceId))", text)
        self.assertIn("Distributed('prod', 'otel', 'otel_traces_local_trace_id_ts', cityHash64(TraceId))", text)
        self.assertIn("TTL toDateTime(Timestamp) + toIntervalDay(30)", text)
        self.assertIn("TTL toDateTime(Start) + toIntervalDay(30)", text)
        self.assertNotIn("MODIFY SETTING", text)


class ApplySingle(unittest.TestCase):
    def setUp(self):
        self.c = Client(URL)
        self.db = unique("mig")
        self.addCleanup(lambda: self.c.raw(f"DROP DATABASE IF EXISTS {self.db}"))
        self.http = am.Http(URL)

    def columns(self, table):
        out = self.c.q(f"SELECT name, default_kind FROM system.columns WHERE database = '{self.db}' AND table = '{table}' FORMAT JSONEachRow")
        return {r["name"]: r["default_kind"] for r in map(json.loads, out.splitlines())}

    def test_apply_twice_and_forced(self):
        vals = am.placeholders(self.db, "otel_traces", 7)
        self.assertEqual(am.apply(self.http, vals, False), [1, 2, 4, 5])
        self.assertEqual(am.apply(self.http, vals, False), [])
        self.assertEqual(am.apply(self.http, vals, False, force=True), [1, 2, 4, 5])
        self.assertEqual(self.c.q(f"SELECT groupArray(version) FROM (SELECT version FROM {self.db}.mcptap_schema_migrations ORDER BY version)"),
                         "[1,2,4,5]\n")
        cols = self.columns("otel_traces")
        self.assertEqual([c for c in cols if cols[c] == ""], SPAN_COLUMNS)
        self.assertEqual([c for c in cols if cols[c] == "MATERIALIZED"], MCPTAP_COLUMNS)
        create = self.c.q(f"SHOW CREATE TABLE {self.db}.otel_traces FORMAT TSVRaw")
        self.assertIn("TTL toDateTime(Timestamp) + toIntervalDay(7)", create)
        self.assertIn("non_replicated_deduplication_window = 10000", create)
        self.assertIn("INDEX idx_mcp_handles_used HandlesUsed TYPE bloom_filter(0.01) GRANULARITY 1", create)
        self.assertIn("TTL toDateTime(Start) + toIntervalDay(7)", self.c.q(f"SHOW CREATE TABLE {self.db}.otel_traces_trace_id_ts FORMAT TSVRaw"))

    def test_on_top_of_exporter_tables_with_data(self):
        self.c.q(f"CREATE DATABASE {self.db}")
        for ddl in EXPORTER_DDL:
            self.c.q(ddl.format(db=self.db, t="otel_traces"))
        # the exporter already wrote a span before mcptap's columns existed
        old = span_row(NOW_NS, "aa" * 16, "01" * 8, attrs={"mcp.method.name": "tools/list"})
        st, _, body = self.c.raw(body=old, query=f"INSERT INTO {self.db}.otel_traces ({INSERT_COLUMNS}) FORMAT RowBinary")
        self.assertEqual(st, 200, body)
        vals = am.placeholders(self.db, "otel_traces", 0)
        self.assertEqual(am.apply(self.http, vals, False), [1, 2, 4, 5])
        self.assertEqual(am.apply(self.http, vals, False, force=True), [1, 2, 4, 5])
        cols = self.columns("otel_traces")
        self.assertEqual([c for c in cols if cols[c] == "MATERIALIZED"], MCPTAP_COLUMNS)
        create = self.c.q(f"SHOW CREATE TABLE {self.db}.otel_traces FORMAT TSVRaw")
        self.assertIn("non_replicated_deduplication_window = 10000", create)
        self.assertIn("toIntervalDay(3)", create)  # the team's TTL is left alone
        # the old part computes the new columns on read
        self.assertEqual(self.c.q(f"SELECT McpMethod, HandlesUsed FROM {self.db}.otel_traces"), "tools/list\t[]\n")
        # and the exporter's SELECT * view of the table is unchanged
        st, _, body = self.c.raw(f"SELECT * FROM {self.db}.otel_traces", default_format="JSONEachRow")
        self.assertEqual(list(json.loads(body).keys()), SPAN_COLUMNS)


class SpansAndGrafana(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Client(URL)
        cls.db = unique("spans")
        am.apply(am.Http(URL), am.placeholders(cls.db, "otel_traces", 0), False)
        cls.trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        attrs = {
            "mcp.method.name": "tools/call", "mcptap.client.name": "claude-code", "mcptap.client.version": "2.1.0",
            "mcp.session.id": "sess-1", "mcptap.era": "legacy", "mcptap.exchange.kind": "request",
            "gen_ai.tool.name": "add_item", "http.response.status_code": "200",
            "mcptap.handles.used": '["basket_id=b-1","x=2"]', "mcptap.handles.minted": '["order_id=o-9"]',
            "mcptap.routing.method_status": "not_required", "mcptap.routing.name_status": "not_required",
            "mcp.protocol.version": "2025-06-18",
        }
        rows = [
            span_row(NOW_NS, cls.trace, "00f067aa0ba902b7", attrs=attrs,
                     events=[(NOW_NS + 1000, "notifications/progress", {"mcp.progress": "0.5"})]),
            span_row(NOW_NS + 5_000_000, cls.trace, "00f067aa0ba902b8", name="tools/call checkout",
                     parent="00f067aa0ba902b7", status="Error",
                     attrs={"mcp.method.name": "tools/call", "http.response.status_code": "500",
                            "error.type": "500", "rpc.response.status_code": "-32603", "mcptap.era": "modern",
                            "mcptap.session.minted": "sess-2",
                            "mcptap.routing.method_status": "mismatch", "mcptap.routing.name_status": "missing"},
                     resource={"service.name": "mcp-shop", "service.instance.id": "pod-7"}),
            span_row(NOW_NS + 9_000_000, "ffffffffffffffffffffffffffffff01", "1111111111111111", name="initialize",
                     service="other-svc", attrs={"mcp.method.name": "initialize"}),
        ]
        # plain RowBinary (validation off in the crate) for two rows ...
        st, _, body = cls.c.raw(body=rows[0] + rows[1],
                                query=f"INSERT INTO otel_traces ({INSERT_COLUMNS}) FORMAT RowBinary", database=cls.db)
        assert st == 200, body
        # ... and RowBinaryWithNamesAndTypes (validation on) for the third, compressed
        from chfront import encode_native_block

        data = rbwnat_header(SPAN_COLUMNS, SPAN_TYPES) + rows[2]
        st, _, body = cls.c.raw(body=encode_native_block(data), decompress="1", database=cls.db,
                                query=f"INSERT INTO otel_traces ({INSERT_COLUMNS}) FORMAT RowBinaryWithNamesAndTypes")
        assert st == 200, body

    @classmethod
    def tearDownClass(cls):
        cls.c.raw(f"DROP DATABASE IF EXISTS {cls.db}")

    def q(self, sql, **p):
        return self.c.q(sql, database=self.db, **p)

    def test_materialized_columns(self):
        out = self.q("SELECT McpMethod, McpClientName, McpClientVersion, McpSessionId, McpEra, McpExchangeKind, ToolName, "
                     "HttpStatus, RpcErrorCode, ErrorType, InstanceId, HandlesUsed, HandlesMinted, RoutingMethodStatus, "
                     "RoutingNameStatus, McpProtocolVersion, McpSessionMinted FROM otel_traces ORDER BY Timestamp")
        lines = out.splitlines()
        self.assertEqual(lines[0].split("\t"), [
            "tools/call", "claude-code", "2.1.0", "sess-1", "legacy", "request", "add_item", "200", "", "",
            "10.0.0.1:8080", "['basket_id=b-1','x=2']", "['order_id=o-9']", "not_required", "not_required",
            "2025-06-18", "",
        ])
        self.assertEqual(lines[1].split("\t"), [
            "tools/call", "", "", "", "modern", "", "", "500", "-32603", "500", "pod-7", "[]", "[]", "mismatch",
            "missing", "", "sess-2",
        ])

    def test_handle_lookup_uses_bloom_filter_column(self):
        self.assertEqual(self.q("SELECT SpanId FROM otel_traces WHERE has(HandlesUsed, 'basket_id=b-1')"), "00f067aa0ba902b7\n")
        plan = self.q("EXPLAIN indexes = 1 SELECT SpanId FROM otel_traces WHERE has(HandlesUsed, 'basket_id=b-1')")
        self.assertIn("idx_mcp_handles_used", plan)

    def test_trace_id_lookup_table_filled_by_mv(self):
        out = self.q(f"SELECT min(Start), max(End) FROM otel_traces_trace_id_ts WHERE TraceId = '{self.trace}' "
                     "FORMAT JSONEachRow")
        r = json.loads(out)
        self.assertEqual(r["min(Start)"][:10], time.strftime("%Y-%m-%d", time.gmtime(NOW_NS // 10**9)))

    def test_grafana_trace_by_id(self):
        # The shape Grafana's ClickHouse datasource (4.x, "Use OTel") generates when
        # <table>_trace_id_ts exists.
        sql = f"""WITH '{self.trace}' as __gf_trace_id,
  (SELECT min(Start) FROM "{self.db}"."otel_traces_trace_id_ts" WHERE TraceId = __gf_trace_id) as __gf_trace_start,
  (SELECT max(End) + 1 FROM "{self.db}"."otel_traces_trace_id_ts" WHERE TraceId = __gf_trace_id) as __gf_trace_end
SELECT "TraceId" as traceID, "SpanId" as spanID, "ParentSpanId" as parentSpanID, "ServiceName" as serviceName,
  "SpanName" as operationName, multiply(toFloat64("Timestamp"), 1000) as startTime,
  multiply(toFloat64("Duration"), 0.000001) as duration,
  arrayMap(key -> map('key', key, 'value',"SpanAttributes"[key]), mapKeys("SpanAttributes")) as tags,
  arrayMap(key -> map('key', key, 'value',"ResourceAttributes"[key]), mapKeys("ResourceAttributes")) as serviceTags,
  if("StatusCode" IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) as statusCode,
  arrayMap((name, timestamp, attributes) -> tuple(name, toString(multiply(toFloat64(timestamp), 1000)),
    arrayConcat(arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)),
    [map('key', 'message', 'value', name)]))::Tuple(name String, timestamp String, fields Array(Map(String, String))),
    "Events.Name", "Events.Timestamp", "Events.Attributes") AS logs,
  arrayMap((traceID, spanID, attributes) -> tuple(traceID, spanID,
    arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(traceID String, spanID String, tags Array(Map(String, String))),
    "Links.TraceId", "Links.SpanId", "Links.Attributes") AS references,
  "SpanKind" as kind, "StatusMessage" as statusMessage, "TraceState" as traceState
FROM "{self.db}"."otel_traces"
WHERE traceID = __gf_trace_id AND "Timestamp" >= __gf_trace_start AND "Timestamp" <= __gf_trace_end
ORDER BY startTime ASC"""
        out = self.c.q(sql, default_format="JSONEachRow")
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([r["spanID"] for r in rows], ["00f067aa0ba902b7", "00f067aa0ba902b8"])
        self.assertEqual(rows[1]["parentSpanID"], "00f067aa0ba902b7")
        self.assertEqual([r["statusCode"] for r in rows], [0, 2])
        self.assertEqual(rows[0]["logs"][0]["name"], "notifications/progress")
        self.assertIn({"key": "mcp.method.name", "value": "tools/call"}, rows[0]["tags"])
        self.assertAlmostEqual(rows[0]["duration"], 1.5)

    def test_grafana_spans_by_service_and_time(self):
        start = NOW_NS // 10**9 - 60
        end = start + 3600
        sql = f"""SELECT "Timestamp" as "timestamp", "TraceId" as traceID, "ServiceName" as serviceName,
  "SpanName" as operationName, multiply(toFloat64("Duration"), 0.000001) as duration
FROM "{self.db}"."otel_traces"
WHERE ( "Timestamp" >= fromUnixTimestamp64Nano({start}000000000) AND "Timestamp" <= fromUnixTimestamp64Nano({end}000000000) )
  AND ( ServiceName = {{svc:String}} ) AND ( ParentSpanId = '' )
ORDER BY "Timestamp" DESC LIMIT 1000"""
        out = self.c.q(sql, default_format="JSONEachRow", param_svc="mcp-shop")
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([(r["traceID"], r["operationName"]) for r in rows], [(self.trace, "tools/call add_item")])

    def test_describe_for_crate_validation(self):
        # What clickhouse-rs sends before a validated insert; MATERIALIZED columns are marked so
        # the crate does not require them in the row struct.
        st, h, body = self.c.raw("DESCRIBE TABLE `otel_traces`", database=self.db,
                                 default_format="RowBinaryWithNamesAndTypes", describe_include_subcolumns="0")
        self.assertEqual(st, 200, body)
        self.assertTrue(body.startswith(b"\x07\x04name\x04type\x0cdefault_type"), body[:40])
        out = self.q("DESCRIBE TABLE otel_traces", describe_include_subcolumns="0", default_format="JSONEachRow")
        kinds = {r["name"]: r["default_type"] for r in map(json.loads, out.splitlines())}
        self.assertEqual([k for k, v in kinds.items() if v == ""], SPAN_COLUMNS)
        self.assertEqual([k for k, v in kinds.items() if v == "MATERIALIZED"], MCPTAP_COLUMNS)


CLUSTER_CONFIG = """<clickhouse>
  <remote_servers>
    <mcptap_test><shard><replica><host>127.0.0.1</host><port>9000</port></replica></shard></mcptap_test>
  </remote_servers>
</clickhouse>
"""


class ClusterShapeOnChdb(unittest.TestCase):
    """Cluster-mode files on one chDB node: ON CLUSTER and Replicated engines need Keeper, so
    they are swapped for plain MergeTree; everything else (local/Distributed naming, the MV on
    the local table, `CREATE TABLE ... AS local ENGINE = Distributed`) runs for real."""

    def test_cluster_files_apply(self):
        if EXTERNAL_URL:
            self.skipTest("needs chfront")
        tmp = tempfile.mkdtemp(prefix="chfront-cluster-")
        cfg = os.path.join(tmp, "config.xml")
        with open(cfg, "w") as f:
            f.write(CLUSTER_CONFIG)
        fr = Front(data_dir=os.path.join(tmp, "data"), extra=["--config-file", cfg])
        try:
            c = Client(fr.url)
            vals = am.placeholders("otel", "otel_traces", 0, cluster="mcptap_test")
            vals["on_cluster"] = ""
            vals["engine"] = "MergeTree()"
            for m in am.selected(am.load(), cluster_mode=True):
                for stmt in am.split_statements(am.render(m.text, vals)):
                    stmt = re.sub(r"ReplicatedMergeTree\('[^']*', '\{replica\}'\)", "MergeTree()", stmt)
                    c.q(stmt)
                    c.q(stmt)  # idempotent
            self.assertEqual(
                c.q("SELECT name, engine FROM system.tables WHERE database = 'otel' AND name LIKE 'otel_traces%' ORDER BY name"),
                "otel_traces\tDistributed\n"
                "otel_traces_local\tMergeTree\n"
                "otel_traces_local_trace_id_ts\tMergeTree\n"
                "otel_traces_local_trace_id_ts_mv\tMaterializedView\n"
                "otel_traces_trace_id_ts\tDistributed\n",
            )
            dist = c.q("SHOW CREATE TABLE otel.otel_traces FORMAT TSVRaw")
            self.assertIn("ENGINE = Distributed('mcptap_test', 'otel', 'otel_traces_local', cityHash64(TraceId))", dist)
            self.assertIn("`HandlesUsed` Array(String) MATERIALIZED", dist)
            mv = c.q("SHOW CREATE TABLE otel.otel_traces_local_trace_id_ts_mv FORMAT TSVRaw")
            self.assertIn("FROM otel.otel_traces_local", mv)
            # a write to the local table reaches the local lookup table through the MV
            st, _, body = c.raw(body=span_row(NOW_NS, "ab" * 16, "cd" * 8),
                                query=f"INSERT INTO otel.otel_traces_local ({INSERT_COLUMNS}) FORMAT RowBinary")
            self.assertEqual(st, 200, body)
            self.assertEqual(c.q("SELECT count() FROM otel.otel_traces_local_trace_id_ts"), "1\n")
        finally:
            fr.close()
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
