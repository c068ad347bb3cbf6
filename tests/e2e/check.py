"""Checks of the pod-level end-to-end test (run by run.sh after the analyzer).

Ground truth is what the CLIENTS logged (``clients.jsonl``), never the capture:

- legacy clients: the clientInfo names of the clients whose log kind is ``legacy-*``;
- session 404s: the legacy clients' calls that failed with "Session not found" (-32600),
  and the ts client's handshake aborted by a 404;
- cross-instance handle failures: the modern client's handle uses that came back as a tool
  error from a pod other than the one that minted the handle (``served_by != minted_on``).
  Failures on the minting pod after its restart (its memory is gone) and the proxy's 502s
  while it was down (no HTTP reached any pod) are not cross-instance failures.

Then the report must contain exactly: ``session_id_still_sent`` and
``initialize_still_called`` for the legacy clients, ``status_4xx_spike`` whose causes are
session 404s only, ``cross_instance_handle_failure`` with exactly the logged failures
(handle value, minted-on and used-on pod), and no other finding. Also: each sidecar's
/metrics (packets captured, zero kernel drops, every span sent), and ClickHouse holding the
spans of every pod under its ``InstanceId``, as many as that pod's server logged exchanges.

Client identity across pods: a pod that answers 404 for a session minted on another pod
never saw that session's ``initialize``, so its spans carry no clientInfo; the analyzer
resolves them through the span that minted the session (on any instance). The findings must
name the client (no ``ua:`` identities), and ClickHouse must really hold such spans (so the
resolution was exercised) whose sessions were minted by the legacy clients.

Usage: check.py --run DIR
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

FAILURES: list[str] = []
PODS = ("pod-a", "pod-b", "pod-c")


def fail(msg: str) -> None:
    FAILURES.append(msg)
    print(f"check: FAIL: {msg}", file=sys.stderr)


def ok(msg: str) -> None:
    print(f"check: ok: {msg}", file=sys.stderr)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def prom(path: Path) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value}."""
    out: dict[str, float] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
    return out


def ch_query(run: Path, sql: str) -> list[dict[str, Any]]:
    """A query to the test's ClickHouse (in namespace mte-ch), JSONEachRow rows."""
    r = subprocess.run(
        ["ip", "netns", "exec", "mte-ch", "curl", "-fsS", "-m", "30", "http://10.78.0.5:8123/", "--data-binary",
         sql + " FORMAT JSONEachRow"],
        check=True, capture_output=True, text=True,
    )
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--no-clickhouse", action="store_true", help="skip the live ClickHouse queries")
    a = ap.parse_args()
    run: Path = a.run

    clients = jsonl(run / "clients.jsonl")
    report = json.loads((run / "report.json").read_text())
    victim = (run / "victim").read_text().strip()

    # ---- ground truth from the clients' logs -----------------------------------------
    kinds = {r["client"]: r["kind"] for r in clients}
    legacy = sorted(n for n, k in kinds.items() if k.startswith("legacy"))
    modern = sorted(n for n, k in kinds.items() if not k.startswith("legacy"))
    if legacy != ["legacy-py", "legacy-ts"] or modern != ["modern-py"]:
        fail(f"clients that ran: legacy {legacy}, modern {modern}")
    legacy_404 = [
        r for r in clients
        if r["client"] in legacy and r.get("ok") is False
        and (r.get("error_code") in (-32600, 404) or "Session not found" in str(r.get("message", "")))
        and r["step"] != "client_onerror"
    ]
    if not legacy_404:
        fail("the legacy clients logged no session 404 (the proxy should break their sessions)")
    ok(f"legacy clients {legacy} logged {len(legacy_404)} session 404s")
    uses = [r for r in clients if r["client"] in modern and "handle" in r and "outcome" in r]
    cross = collections.Counter(
        (r["handle"]["basket_id"], r["minted_on"], r["served_by"])
        for r in uses if r["outcome"] == "tool_error" and r["served_by"] and r["served_by"] != r["minted_on"]
    )
    same = [r for r in uses if r["outcome"] == "tool_error" and r["served_by"] == r["minted_on"]]
    proxy_errors = [r for r in uses if r["outcome"] == "proxy_error"]
    unexplained = [r for r in uses if r["outcome"] == "tool_error" and not r["served_by"]]
    if unexplained:
        fail(f"tool errors without the answering pod in the text: {unexplained}")
    if not proxy_errors or any(r["phase"] != "outage" for r in proxy_errors):
        fail(f"expected proxy 502s only while {victim} was down: {[(r['phase'], r.get('message')) for r in proxy_errors]}")
    if not same or any(r["served_by"] != victim or r["phase"] != "restarted" for r in same):
        fail(f"expected failures on the minting pod only after its restart: {[(r['phase'], r['served_by']) for r in same]}")
    if not any(m == victim for (_, m, _) in cross):
        fail(f"no cross-instance failure of the handle minted on the killed pod {victim}")
    # The legacy ts client must never get past its handshake (its handle uses would be 404s
    # whose answering pod the client cannot know).
    if any(r["client"] in legacy and "handle" in r for r in clients):
        fail("a legacy client got past its handshake and used a handle")
    ok(f"modern-py logged {sum(cross.values())} cross-instance handle failures {dict(cross)}, "
       f"{len(same)} failures on the restarted minting pod {victim}, {len(proxy_errors)} proxy 502s")

    # ---- the report ---------------------------------------------------------------------
    if report.get("errors"):
        fail(f"analyzer errors: {report['errors']}")
    findings = report["findings"]
    by_rule: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for f in findings:
        by_rule[f["rule"]].append(f)
    allowed = {"session_id_still_sent", "initialize_still_called", "status_4xx_spike", "cross_instance_handle_failure"}
    for rule, fs in by_rule.items():
        if rule not in allowed:
            fail(f"unexpected findings of {rule}: {[f['summary'] for f in fs]}")
    for f in findings:
        name = f["subject"].get("client", {}).get("name")
        if name in modern and f["rule"] != "cross_instance_handle_failure":
            fail(f"a finding about the modern client: {f['rule']}: {f['summary']}")

    # initialize_still_called: exactly the legacy clients, by name.
    names = sorted(f["subject"]["client"]["name"] for f in by_rule["initialize_still_called"])
    if names != legacy:
        fail(f"initialize_still_called names {names}, expected {legacy}")
    else:
        ok(f"initialize_still_called: {names}")

    # Every finding names its client (clientInfo, resolved across pods through the span that
    # minted the session): no identity falls back to the user agent.
    for f in findings:
        client = f["subject"].get("client")
        if client is not None and not client.get("name"):
            fail(f"{f['rule']}: a client without a name (ua:{client.get('user_agent')}): {f['summary']}")

    # session_id_still_sent: exactly the legacy clients, by name, one finding each.
    named_names = sorted(f["subject"]["client"]["name"] for f in by_rule["session_id_still_sent"])
    if named_names != legacy:
        fail(f"session_id_still_sent names {named_names}, expected {legacy}")
    status_404 = sum(f["counts"].get("status_404", 0) for f in by_rule["session_id_still_sent"])
    logged_404 = len(legacy_404)
    if status_404 < logged_404:
        fail(f"session_id_still_sent counts {status_404} session 404s, the clients logged {logged_404}")
    ok(f"session_id_still_sent: {named_names}; {status_404} session 404s "
       f"(clients logged {logged_404}; the rest are notifications/initialized and DELETE, "
       f"which the SDKs do not surface)")

    # status_4xx_spike: present, all causes session 404s.
    spikes = by_rule["status_4xx_spike"]
    if not spikes:
        fail("no status_4xx_spike finding")
    spike_4xx = 0
    for f in spikes:
        c = f["counts"]
        spike_4xx += c["status_4xx"]
        if c.get("session_not_found", 0) != c["status_4xx"]:
            fail(f"status_4xx_spike on {f['subject']} with causes other than session_not_found: {c}")
    if spike_4xx > status_404:
        fail(f"status_4xx_spike counts {spike_4xx} 4xx, more than the {status_404} session 404s")
    ok(f"status_4xx_spike: {[(f['subject'].get('instance'), f['counts']['status_4xx']) for f in spikes]}, "
       f"all session_not_found")

    # cross_instance_handle_failure: exactly the logged failures.
    got: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for f in by_rule["cross_instance_handle_failure"]:
        if f["subject"]["client"]["name"] not in modern:
            fail(f"cross_instance_handle_failure for {f['subject']['client']}")
        ex = f["details"]["examples"]
        if len(ex) != f["counts"]["failures"]:
            fail(f"examples truncated ({len(ex)} of {f['counts']['failures']}): raise --samples")
        for e in ex:
            key, _, value = e["handle"].partition("=")
            if key != "basket_id" or e["tool"] not in ("add_item", "checkout"):
                fail(f"unexpected handle failure {e}")
            got[(value, e["minted_on"], e["used_on"])] += 1
    if got != cross:
        fail(f"cross_instance_handle_failure: report {dict(got)} != client log {dict(cross)}")
    else:
        ok(f"cross_instance_handle_failure: exactly the {sum(cross.values())} failures the client logged")

    # ---- the proxy's own access log (not the capture): every 404 and 502 it relayed ------
    statuses = collections.Counter(
        m.group(1) for line in (run / "nginx-access.log").read_text().splitlines()
        if (m := re.search(r'" (\d{3}) ', line))
    )
    if statuses["404"] != status_404:
        fail(f"the proxy relayed {statuses['404']} 404s; session_id_still_sent counts {status_404}")
    if statuses["502"] != len(proxy_errors):
        fail(f"the proxy answered {statuses['502']} 502s; the client logged {len(proxy_errors)}")
    if set(statuses) - {"200", "202", "404", "502"}:
        fail(f"unexpected statuses at the proxy: {dict(statuses)}")
    ok(f"proxy access log {dict(statuses)}: its 404s are the reported session 404s")

    # ---- the sidecars' metrics and exit codes --------------------------------------------
    spans_per_pod: dict[str, float] = {}
    for pod in PODS:
        m = prom(run / f"metrics-{pod}.prom")
        rc = (run / f"collector-{pod}.rc").read_text().strip()
        pk, dropped = m.get("mcptap_packets_total", 0), m.get("mcptap_capture_kernel_dropped_total")
        spans = m.get("mcptap_spans_total", 0)
        sent = m.get('mcptap_export_spans_total{sink="clickhouse",outcome="sent"}', 0)
        # The final summary on stderr (after SIGTERM and the flush) is the authoritative
        # count; the scrape happened ~1.5 s after the last request.
        final = re.search(r"export clickhouse: (\d+) spans queued, (\d+) sent .* (\d+) dropped",
                          (run / f"collector-{pod}.log").read_text())
        if not final or final.group(1) != final.group(2) or final.group(3) != "0":
            fail(f"{pod}: final export summary {final.group(0) if final else 'missing'}")
        else:
            spans_per_pod[pod] = float(final.group(2))
        if rc != "0":
            fail(f"collector of {pod} exited {rc}")
        if pk <= 0 or spans <= 0:
            fail(f"{pod}: /metrics shows {pk} packets, {spans} spans")
        if dropped is None or dropped != 0 or m.get("mcptap_capture_interface_dropped_total", 0) != 0:
            fail(f"{pod}: kernel drops {dropped}")
        bad = {k: v for k, v in m.items() if k.startswith("mcptap_export_spans_total") and "dropped" in k and v}
        if bad:
            fail(f"{pod}: export drops {bad}")
        ok(f"{pod}: {int(pk)} packets, 0 kernel drops, {int(spans)} spans, {int(sent)} sent at scrape time, exit {rc}")

    # ---- ClickHouse: every pod's spans under its InstanceId ------------------------------
    rows = {r["InstanceId"]: int(r["spans"]) for r in jsonl(run / "ch-instances.jsonl")}
    for pod in PODS:
        exchanges = len(jsonl(run / f"server-{pod}.jsonl"))
        if rows.get(pod) != exchanges or rows.get(pod) != spans_per_pod.get(pod):
            fail(f"ClickHouse holds {rows.get(pod)} spans of {pod}; its server logged {exchanges} exchanges, "
                 f"its collector sent {spans_per_pod.get(pod)} spans")
    extra = set(rows) - set(PODS)
    if extra:
        fail(f"spans with unexpected InstanceId {extra}")
    relayed = sum(statuses.values()) - statuses["502"]
    if sum(rows.values()) != relayed:
        fail(f"ClickHouse holds {sum(rows.values())} spans; the proxy relayed {relayed} requests to live pods")
    ok(f"ClickHouse spans per InstanceId {rows} = exchanges logged by each server = requests relayed by the proxy")

    if not a.no_clickhouse:
        # The cross-pod case was exercised: spans with a session id but no clientInfo of their
        # own exist (answered by pods that never saw the initialize), and their sessions were
        # minted by the legacy clients the findings name.
        sql = (
            "SELECT DISTINCT s.McpSessionId AS sid, m.McpClientName AS minted_by FROM otel_traces AS s "
            "LEFT JOIN (SELECT McpSessionMinted, any(McpClientName) AS McpClientName FROM otel_traces "
            "WHERE McpSessionMinted != '' GROUP BY McpSessionMinted) AS m ON s.McpSessionId = m.McpSessionMinted "
            "WHERE s.McpSessionId != '' AND s.McpClientName = ''"
        )
        sessions = ch_query(run, sql)
        for r in sessions:
            if r["minted_by"] not in legacy:
                fail(f"session {r['sid']} used without clientInfo was minted by {r['minted_by']!r}")
        if not sessions:
            fail("no session-carrying span without clientInfo in ClickHouse: the cross-pod case was not exercised")
        by_minter = collections.Counter(r["minted_by"] for r in sessions)
        ok(f"the {len(sessions)} sessions used without clientInfo were minted by {dict(by_minter)}")

    # The --map-only report (attribute maps instead of the MATERIALIZED columns) agrees.
    map_only_path = run / "report-map-only.json"
    if map_only_path.exists():
        def essence(rep: dict[str, Any]) -> list[str]:
            return sorted(
                json.dumps([f["rule"], f["severity"], f["subject"], f["count"], f["counts"]], sort_keys=True)
                for f in rep["findings"]
            )
        map_only = json.loads(map_only_path.read_text())
        if essence(map_only) != essence(report):
            fail("the --map-only report differs from the report over the MATERIALIZED columns")
        else:
            ok("the --map-only report has the same findings")

    readiness = report.get("readiness") or {}
    if readiness.get("verdict") != "not_ready":
        fail(f"readiness verdict {readiness.get('verdict')}, expected not_ready")
    ready_clients = sorted({c["client"]["name"] for c in readiness.get("clients", [])})
    if ready_clients != legacy:
        fail(f"readiness clients {ready_clients}, expected {legacy}")
    if FAILURES:
        print(f"check: {len(FAILURES)} failure(s)", file=sys.stderr)
        sys.exit(1)
    print(f"check: all checks passed ({len(findings)} findings: "
          f"{ {r: len(fs) for r, fs in by_rule.items()} })", file=sys.stderr)


if __name__ == "__main__":
    main()
