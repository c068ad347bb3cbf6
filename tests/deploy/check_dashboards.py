#!/usr/bin/env python3
"""Checks dashboards/*.json structurally and runs every panel query against ClickHouse
holding the cutover fixture (tests/fixtures/cutover.pcap replayed by the collector).

usage: check_dashboards.py CLICKHOUSE_URL [DATABASE]
Grafana macros are substituted with concrete values: $__timeFilter(col) -> the fixture's
time range, $__interval_s -> 1, ${service} -> mcp-server, ${__value.raw} -> a real TraceId.
"""
import json, pathlib, re, sys, urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
URL = sys.argv[1].rstrip("/")
DB = sys.argv[2] if len(sys.argv) > 2 else "default"
FROM, TO = "2026-11-21 05:50:00", "2026-11-21 05:52:00"  # covers the fixture (05:51:00-05:51:08 UTC)
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
    return cond


def query(sql):
    req = urllib.request.Request(URL + f"/?default_format=JSON&database={DB}", data=(sql + " FORMAT JSON").encode())
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["data"]


def subst(sql, extra=None):
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m.group(1)} >= toDateTime('{FROM}', 'UTC') AND {m.group(1)} <= toDateTime('{TO}', 'UTC')", sql)
    sql = sql.replace("$__interval_s", "1").replace("${service}", "mcp-server")
    for k, v in (extra or {}).items():
        sql = sql.replace(k, v)
    assert "$" not in sql, f"unsubstituted macro in: {sql}"
    return sql


# --- structure ---------------------------------------------------------------
ds_prov = (ROOT / "dashboards/provisioning/datasources/clickhouse.yaml").read_text()
uids = set(re.findall(r"^\s*uid:\s*(\S+)", ds_prov, re.M))
check(uids == {"mcptap-clickhouse"}, f"datasource uids {uids}")
check("type: grafana-clickhouse-datasource" in ds_prov, "datasource type")
check("otelEnabled: true" in ds_prov, "datasource OTel mode")
dash_prov = (ROOT / "dashboards/provisioning/dashboards/mcptap.yaml").read_text()
check("type: file" in dash_prov and "path:" in dash_prov, "dashboard provider")

dashboards = sorted((ROOT / "dashboards").glob("*.json"))
check(dashboards, "no dashboards")
results = {}
for path in dashboards:
    d = json.loads(path.read_text())
    name = path.name
    for k in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
        check(k in d, f"{name}: missing {k}")
    check(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36, f"{name}: schemaVersion")
    ids = [p.get("id") for p in d["panels"]]
    check(len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), f"{name}: panel ids {ids}")
    occupied = set()
    for p in d["panels"]:
        pn = f"{name} panel {p.get('id')} {p.get('title')!r}"
        g = p.get("gridPos", {})
        if check(all(isinstance(g.get(k), int) for k in "hwxy"), f"{pn}: gridPos"):
            check(0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"{pn}: gridPos out of the 24 columns")
            cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            check(not (cells & occupied), f"{pn}: overlaps another panel")
            occupied |= cells
        check(p.get("type") in {"stat", "table", "timeseries", "barchart", "gauge", "piechart", "text"}, f"{pn}: type")
        check(p.get("datasource", {}).get("uid") in uids, f"{pn}: datasource uid")
        check(p.get("datasource", {}).get("type") == "grafana-clickhouse-datasource", f"{pn}: datasource type")
        check(p.get("targets"), f"{pn}: no targets")
        for t in p.get("targets", []):
            check(t.get("refId") and t.get("rawSql") and t.get("editorType") == "sql", f"{pn}: target fields")
            check(t.get("datasource", {}).get("uid") in uids, f"{pn}: target datasource uid")
            if p["type"] == "timeseries":
                check(t.get("format") == 0, f"{pn}: timeseries target format")
                check(re.search(r"\bAS time\b", t["rawSql"]), f"{pn}: timeseries needs a time column")
            check("$__timeFilter(" in t["rawSql"], f"{pn}: query ignores the dashboard time range")
            try:
                rows = query(subst(t["rawSql"]))
            except Exception as e:  # noqa: BLE001
                body = getattr(e, "read", lambda: b"")().decode(errors="replace")[:400]
                check(False, f"{pn}: query failed: {e} {body}")
                continue
            results[p["title"]] = rows
        for o in p.get("fieldConfig", {}).get("overrides", []):
            for prop in o.get("properties", []):
                if prop.get("id") != "links":
                    continue
                for link in prop["value"]:
                    internal = link.get("internal", {})
                    check(internal.get("datasourceUid") in uids, f"{pn}: trace link datasource")
                    q = internal.get("query", {})
                    check(q.get("queryType") == "traces" and q.get("format") == 3, f"{pn}: trace link is not a trace query")
                    results.setdefault("__trace_links", []).append((p["title"], q["rawSql"]))
    for v in d["templating"]["list"]:
        check(v.get("datasource", {}).get("uid") in uids, f"{name}: variable {v.get('name')} datasource")
        rows = query(subst(v["query"]))
        check([r["ServiceName"] for r in rows] == ["mcp-server"], f"{name}: variable {v['name']} values {rows}")
    # the generator and the JSON agree
    gen = ROOT / "dashboards/gen.py"
    if gen.exists():
        import importlib.util
        spec = importlib.util.spec_from_file_location("gen", gen)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        if name == "mcptap-cutover.json":
            check(m.dash == d, "dashboards/mcptap-cutover.json is stale: run python3 dashboards/gen.py")

# --- content on the fixture ---------------------------------------------------
R = results
def one(title):
    rows = R.get(title) or []
    check(rows, f"{title}: no rows")
    return rows

v = one("Cutover readiness")
check(v and v[0]["verdict"] == "NOT READY", f"readiness {v}")
pct = one("Session-dependent requests (%)")
check(pct and 0 < float(pct[0]["session_dependent_pct"]) < 100, f"session-dependent pct {pct}")
mod = one("Modern (2026-07-28) requests (%)")
check(mod and 0 < float(mod[0]["modern_pct"]) < 100, f"modern pct {mod}")
lc = one("Clients still on sessions")
check(lc and int(lc[0]["legacy_clients"]) >= 4, f"legacy clients count {lc}")
era = one("Cutover progress: requests by protocol era")
check({r["era"] for r in era} == {"legacy", "modern"}, f"eras {era}")
check(sum(int(r["requests"]) for r in era) == int(query("SELECT count() c FROM otel_traces WHERE McpEra != ''")[0]["c"]), "era sum")
leg = one("Clients still sending Mcp-Session-Id or calling initialize")
names = {r["client"] for r in leg}
check({"legacy-py", "legacy-ts", "direct-legacy-py", "direct-legacy-ts"} <= names, f"legacy clients {names}")
check("modern-py" not in names and "direct-modern-py" not in names, f"modern clients listed as legacy: {names}")
lp = [r for r in leg if r["client"] == "legacy-py"]
check(lp and int(lp[0]["session_id_requests"]) == 21 and int(lp[0]["initialize_calls"]) == 3
      and lp[0]["instances"] == "10.77.0.11:8000, 10.77.0.12:8000, 10.77.0.13:8000", f"legacy-py row {lp}")
e4 = one("4xx by instance, client and cause")
check(sum(int(r["responses"]) for r in e4) == 22, f"4xx total {sum(int(r['responses']) for r in e4)}")
causes = {r["cause"] for r in e4}
check("session unknown on this instance (no stickiness)" in causes and "routing header missing or mismatched" in causes, f"causes {causes}")
check({r["client"] for r in e4 if r["cause"].startswith("session")} == {"legacy-py", "legacy-ts"}, f"session 404 clients {e4}")
e4t = one("4xx per instance")
check(sum(int(r["responses_4xx"]) for r in e4t) == 22, "4xx per instance total")
xi = one("Cross-instance handle failures")
check(len(xi) == 1 and xi[0]["client"] == "modern-py" and xi[0]["tool"] == "add_item"
      and xi[0]["minted_on"] == "10.77.0.11:8000" and xi[0]["used_on"] == "10.77.0.12:8000"
      and xi[0]["handle"].startswith("basket_id=bsk-pod-a-001"), f"cross-instance {xi}")
lat = one("Latency by tool (ms)")
tools = {r["tool"]: r for r in lat}
check({"create_basket", "add_item", "checkout"} <= set(tools), f"tools {set(tools)}")
check(all(0 < float(r["p50_ms"]) <= float(r["p95_ms"]) <= float(r["max_ms"]) < 10000 for r in lat), f"latency {lat}")
one("p95 latency by tool")
fr = one("Recent failed requests (open in trace view)")
check(all(len(r["TraceId"]) == 32 for r in fr), "TraceIds are 32 hex")
# trace links: the trace-by-id query returns the span of a real TraceId
for title, sql in R.get("__trace_links", []):
    tid = (xi or fr)[0]["TraceId"]
    spans = query(subst(sql, {"${__value.raw}": tid}))
    check(spans and all(s["traceID"] == tid for s in spans) and spans[0]["operationName"], f"{title}: trace link query {spans[:1]}")
check(len(R.get("__trace_links", [])) >= 2, "trace links on TraceId")

for title, rows in R.items():
    if not title.startswith("__"):
        print(f"  {title}: {len(rows)} rows; first: {json.dumps(rows[0]) if rows else '-'}")
if fails:
    print("FAIL:\n  " + "\n  ".join(fails))
    sys.exit(1)
print(f"dashboards: {len(dashboards)} file(s), {sum(1 for k in R if not k.startswith('__'))} panel queries, all checks passed")
