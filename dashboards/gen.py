#!/usr/bin/env python3
"""Generates dashboards/mcptap-cutover.json (run after editing; tests/deploy checks it is in sync).

Datasource: grafana-clickhouse-datasource, uid `mcptap-clickhouse` (provisioning/datasources).
Table: default.otel_traces with mcptap's materialized columns (deploy/clickhouse/migrations/0005).
Macros used: $__timeFilter(Timestamp), $__interval_s, template variable ${service}.
"""
import json, pathlib

DS = {"type": "grafana-clickhouse-datasource", "uid": "mcptap-clickhouse"}
T = "otel_traces"
W = "$__timeFilter(Timestamp) AND ServiceName = '${service}'"

# Trace view link: the ClickHouse plugin's trace-by-id query (OTel mode) in Explore.
TRACE_SQL = (
    "SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, "
    "ServiceName AS serviceName, SpanName AS operationName, "
    "toUnixTimestamp64Nano(Timestamp)/1000000 AS startTime, Duration/1000000 AS duration, "
    "arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags, "
    "arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags, "
    "if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode "
    f"FROM {T} WHERE TraceId = '${{__value.raw}}' ORDER BY startTime ASC"
)
TRACE_LINK = {
    "title": "Open trace",
    "url": "",
    "internal": {
        "datasourceUid": DS["uid"],
        "datasourceName": "ClickHouse (mcptap)",
        "query": {
            "datasource": DS,
            "editorType": "sql",
            "format": 3,
            "queryType": "traces",
            "rawSql": TRACE_SQL,
            "refId": "A",
        },
    },
}
TRACE_OVERRIDE = {
    "matcher": {"id": "byName", "options": "TraceId"},
    "properties": [{"id": "links", "value": [TRACE_LINK]}],
}

CAUSE = (
    "multiIf(HttpStatus = 404 AND McpSessionId != '', 'session unknown on this instance (no stickiness)', "
    "RoutingMethodStatus IN ('mismatch', 'missing') OR RoutingNameStatus IN ('mismatch', 'missing'), "
    "'routing header missing or mismatched', "
    "ErrorType = '-32601', 'method not found', "
    "concat('HTTP ', toString(HttpStatus), ' ', ErrorType))"
)

PANELS = [
    # (title, type, w, h, rawSql, format(0 timeseries,1 table), description, extra)
    ("Cutover readiness", "stat", 6, 5,
     f"SELECT if(count() > 0 AND countIf(McpSessionId != '' OR McpMethod = 'initialize') = 0, 'READY', "
     f"if(count() = 0, 'NO DATA', 'NOT READY')) AS verdict FROM {T} WHERE {W}",
     1, "READY when no request in the range carried Mcp-Session-Id or called initialize.", {}),
    ("Session-dependent requests (%)", "stat", 6, 5,
     f"SELECT round(100 * countIf(McpSessionId != '' OR McpMethod = 'initialize' OR McpEra = 'legacy') / count(), 1) "
     f"AS session_dependent_pct FROM {T} WHERE {W}",
     1, "Share of requests that still depend on the session-based protocol. Goal: 0.", {"unit": "percent"}),
    ("Modern (2026-07-28) requests (%)", "stat", 6, 5,
     f"SELECT round(100 * countIf(McpEra = 'modern') / count(), 1) AS modern_pct FROM {T} WHERE {W}",
     1, "Share of requests sent with the stateless protocol. Goal: 100.", {"unit": "percent"}),
    ("Clients still on sessions", "stat", 6, 5,
     f"SELECT uniqExactIf(McpClientName, McpSessionId != '' OR McpMethod = 'initialize') AS legacy_clients FROM {T} WHERE {W}",
     1, "Distinct clients that sent Mcp-Session-Id or called initialize.", {}),
    ("Cutover progress: requests by protocol era", "timeseries", 24, 8,
     f"SELECT toStartOfInterval(Timestamp, INTERVAL $__interval_s second) AS time, McpEra AS era, count() AS requests "
     f"FROM {T} WHERE {W} AND McpEra != '' GROUP BY time, era ORDER BY time",
     0, "Requests per interval, legacy vs modern.", {}),
    ("Clients still sending Mcp-Session-Id or calling initialize", "table", 24, 8,
     f"SELECT McpClientName AS client, McpClientVersion AS version, countIf(McpSessionId != '') AS session_id_requests, "
     f"countIf(McpMethod = 'initialize') AS initialize_calls, arrayStringConcat(arraySort(groupUniqArray(InstanceId)), ', ') AS instances, "
     f"max(Timestamp) AS last_seen FROM {T} WHERE {W} GROUP BY client, version "
     f"HAVING session_id_requests > 0 OR initialize_calls > 0 ORDER BY session_id_requests + initialize_calls DESC, client",
     1, "Who must upgrade before the cutover: clients depending on MCP sessions.", {}),
    ("4xx by instance, client and cause", "table", 14, 9,
     f"SELECT InstanceId AS instance, McpClientName AS client, {CAUSE} AS cause, count() AS responses "
     f"FROM {T} WHERE {W} AND HttpStatus >= 400 AND HttpStatus < 500 GROUP BY instance, client, cause "
     f"ORDER BY responses DESC, instance, client",
     1, "HTTP 4xx answers; 404 with a session id means the request reached a pod that never saw the session.", {}),
    ("4xx per instance", "timeseries", 10, 9,
     f"SELECT toStartOfInterval(Timestamp, INTERVAL $__interval_s second) AS time, InstanceId AS instance, "
     f"countIf(HttpStatus >= 400 AND HttpStatus < 500) AS responses_4xx FROM {T} WHERE {W} "
     f"GROUP BY time, instance ORDER BY time",
     0, "4xx answers per interval and instance.", {}),
    ("Cross-instance handle failures", "table", 24, 8,
     f"WITH minted AS (SELECT arrayJoin(HandlesMinted) AS handle, any(InstanceId) AS minted_on FROM {T} "
     f"WHERE {W} GROUP BY handle) "
     f"SELECT t.Timestamp AS time, t.TraceId AS TraceId, t.McpClientName AS client, t.ToolName AS tool, h AS handle, "
     f"m.minted_on AS minted_on, t.InstanceId AS used_on, t.HttpStatus AS http_status, t.ErrorType AS error "
     f"FROM {T} AS t ARRAY JOIN t.HandlesUsed AS h INNER JOIN minted AS m ON m.handle = h "
     f"WHERE $__timeFilter(t.Timestamp) AND t.ServiceName = '${{service}}' AND m.minted_on != t.InstanceId "
     f"AND (t.StatusCode = 'Error' OR t.HttpStatus >= 400) ORDER BY time",
     1, "A handle minted on one instance failed on another: state is not shared between pods. Click TraceId for the trace.",
     {"overrides": [TRACE_OVERRIDE]}),
    ("Latency by tool (ms)", "table", 12, 8,
     f"SELECT ToolName AS tool, count() AS calls, round(quantile(0.5)(Duration) / 1e6, 2) AS p50_ms, "
     f"round(quantile(0.95)(Duration) / 1e6, 2) AS p95_ms, round(quantile(0.99)(Duration) / 1e6, 2) AS p99_ms, "
     f"round(max(Duration) / 1e6, 2) AS max_ms FROM {T} WHERE {W} AND McpMethod = 'tools/call' AND ToolName != '' "
     f"GROUP BY tool ORDER BY p95_ms DESC",
     1, "tools/call duration (first request byte to last response byte, as captured).", {}),
    ("p95 latency by tool", "timeseries", 12, 8,
     f"SELECT toStartOfInterval(Timestamp, INTERVAL $__interval_s second) AS time, ToolName AS tool, "
     f"quantile(0.95)(Duration) / 1e6 AS p95_ms FROM {T} WHERE {W} AND McpMethod = 'tools/call' AND ToolName != '' "
     f"GROUP BY time, tool ORDER BY time",
     0, "p95 of tools/call duration per interval.", {"unit": "ms"}),
    ("Recent failed requests (open in trace view)", "table", 24, 9,
     f"SELECT Timestamp AS time, TraceId, InstanceId AS instance, McpClientName AS client, McpMethod AS method, "
     f"ToolName AS tool, HttpStatus AS http_status, ErrorType AS error FROM {T} WHERE {W} "
     f"AND (HttpStatus >= 400 OR StatusCode = 'Error') ORDER BY Timestamp DESC LIMIT 100",
     1, "Click a TraceId to open the span in Grafana's trace view.", {"overrides": [TRACE_OVERRIDE]}),
]


def panel(pid, x, y, spec):
    title, typ, w, h, sql, fmt, desc, extra = spec
    p = {
        "id": pid,
        "type": typ,
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "targets": [{
            "refId": "A",
            "datasource": DS,
            "editorType": "sql",
            "format": fmt,
            "queryType": "timeseries" if fmt == 0 else "table",
            "rawSql": sql,
        }],
        "fieldConfig": {"defaults": {}, "overrides": extra.get("overrides", [])},
        "options": {},
    }
    if "unit" in extra:
        p["fieldConfig"]["defaults"]["unit"] = extra["unit"]
    if typ == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "none", "textMode": "auto"}
    return p


def layout():
    panels, x, y, rowh = [], 0, 0, 0
    for i, spec in enumerate(PANELS, start=1):
        w, h = spec[2], spec[3]
        if x + w > 24:
            x, y, rowh = 0, y + rowh, 0
        panels.append(panel(i, x, y, spec))
        x += w
        rowh = max(rowh, h)
    return panels


dash = {
    "uid": "mcptap-cutover",
    "title": "mcptap: MCP stateless cutover",
    "description": "Who still depends on MCP sessions, what fails while moving to the 2026-07-28 protocol. Spans written by mcptap-collector.",
    "tags": ["mcptap", "mcp"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "graphTooltip": 1,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "1m",
    "timezone": "",
    "links": [],
    "annotations": {"list": []},
    "templating": {"list": [{
        "name": "service",
        "label": "Service",
        "type": "query",
        "datasource": DS,
        "query": f"SELECT DISTINCT ServiceName FROM {T} WHERE $__timeFilter(Timestamp) ORDER BY ServiceName",
        "definition": f"SELECT DISTINCT ServiceName FROM {T} WHERE $__timeFilter(Timestamp) ORDER BY ServiceName",
        "refresh": 2,
        "multi": False,
        "includeAll": False,
        "current": {},
        "options": [],
        "sort": 1,
    }]},
    "panels": layout(),
}

if __name__ == "__main__":
    out = pathlib.Path(__file__).with_name("mcptap-cutover.json")
    out.write_text(json.dumps(dash, indent=2) + "\n")
    print(out)
