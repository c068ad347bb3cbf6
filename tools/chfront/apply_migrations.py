#!/usr/bin/env python3
"""Render and apply mcptap's ClickHouse migrations over the HTTP interface.

A small reference implementation of the migration contract in deploy/clickhouse/README.md,
used by the chfront tests to prove that the files apply cleanly and idempotently. The
production runner is the Rust `schema` command; this script follows the same rules:

- files ``deploy/clickhouse/migrations/NNNN_name.sql`` in version order;
- a first line ``-- mcptap: cluster-only`` / ``-- mcptap: single-only`` selects the mode;
- statements end with ``;`` at the end of a line; ``--`` comment lines are dropped;
- ``{{placeholders}}`` are substituted textually (ClickHouse macros such as ``{shard}`` pass);
- applied versions are recorded in ``<database>.mcptap_schema_migrations``.

Usage::

    apply_migrations.py --url http://127.0.0.1:18123 [--database default] [--table otel_traces]
        [--ttl-days N] [--cluster NAME [--local-table T]] [--force] [--render-only]
        [--user U --password P]

``--force`` re-runs every file even if recorded (the statements are idempotent).
``--render-only`` prints the rendered statements and touches nothing.
Stdlib only; runs with any Python 3.9+.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.join(REPO_ROOT, "deploy", "clickhouse", "migrations")
FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
PLACEHOLDER_RE = re.compile(r"\{\{([a-z_]+)\}\}")


@dataclass
class Migration:
    """One migration file: version (the NNNN prefix), name (rest of the file name without
    ``.sql``), mode (``both``, ``cluster`` or ``single``), raw text and its sha256 hex."""

    version: int
    name: str
    mode: str
    text: str
    checksum: str


def load(directory: str = DEFAULT_DIR) -> List[Migration]:
    """Read every ``NNNN_name.sql`` in `directory`, sorted by version. Raises ValueError on a
    duplicate version or a file name that does not match the pattern."""
    out: List[Migration] = []
    seen = set()
    for fname in sorted(os.listdir(directory)):
        if not fname.endswith(".sql"):
            continue
        m = FILE_RE.match(fname)
        if not m:
            raise ValueError(f"bad migration file name {fname!r}")
        version = int(m.group(1))
        if version in seen:
            raise ValueError(f"duplicate migration version {version}")
        seen.add(version)
        with open(os.path.join(directory, fname), encoding="utf-8") as f:
            text = f.read()
        first = text.split("\n", 1)[0].strip()
        mode = "both"
        if first == "-- mcptap: cluster-only":
            mode = "cluster"
        elif first == "-- mcptap: single-only":
            mode = "single"
        checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
        out.append(Migration(version, m.group(2), mode, text, checksum))
    out.sort(key=lambda x: x.version)
    return out


def placeholders(
    database: str = "default",
    table: str = "otel_traces",
    ttl_days: int = 0,
    cluster: Optional[str] = None,
    local_table: Optional[str] = None,
) -> Dict[str, str]:
    """The placeholder values for single mode (`cluster` None) or cluster mode."""
    if cluster:
        local = local_table or f"{table}_local"
        engine = (
            f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}')"
        )
        agg_engine = (
            f"ReplicatedAggregatingMergeTree('/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}')"
        )
        on_cluster = f"ON CLUSTER `{cluster}`"
    else:
        local = table
        engine = "MergeTree()"
        agg_engine = "AggregatingMergeTree()"
        on_cluster = ""
    ttl = f"TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})" if ttl_days > 0 else ""
    ttl_start = f"TTL toDateTime(Start) + toIntervalDay({ttl_days})" if ttl_days > 0 else ""
    return {
        "database": database,
        "table": table,
        "local_table": local,
        "on_cluster": on_cluster,
        "engine": engine,
        "agg_engine": agg_engine,
        "cluster": cluster or "",
        "ttl": ttl,
        "ttl_start": ttl_start,
    }


def render(text: str, values: Dict[str, str]) -> str:
    """Substitute ``{{name}}`` placeholders. Raises KeyError for an unknown placeholder."""

    def sub(m: "re.Match[str]") -> str:
        key = m.group(1)
        if key not in values:
            raise KeyError(f"unknown placeholder {{{{{key}}}}}")
        return values[key]

    return PLACEHOLDER_RE.sub(sub, text)


def split_statements(text: str) -> List[str]:
    """Split rendered migration text into statements: drop lines that are ``--`` comments,
    cut after every line that ends with ``;`` (the ``;`` is removed). A trailing statement
    without ``;`` is kept. Empty statements are dropped."""
    stmts: List[str] = []
    cur: List[str] = []
    for line in text.split("\n"):
        if line.strip().startswith("--"):
            continue
        if line.rstrip().endswith(";"):
            cur.append(line.rstrip()[:-1])
            stmt = "\n".join(cur).strip()
            if stmt:
                stmts.append(stmt)
            cur = []
        else:
            cur.append(line)
    rest = "\n".join(cur).strip()
    if rest:
        stmts.append(rest)
    return stmts


def selected(migrations: Iterable[Migration], cluster_mode: bool) -> List[Migration]:
    """The migrations that apply in the given mode."""
    skip = "single" if cluster_mode else "cluster"
    return [m for m in migrations if m.mode != skip]


class ClickHouseError(Exception):
    """A non-200 answer: `code` from X-ClickHouse-Exception-Code (0 if absent), the body text."""

    def __init__(self, status: int, code: int, text: str):
        super().__init__(f"HTTP {status}, code {code}: {text.strip()}")
        self.status = status
        self.code = code
        self.text = text


class Http:
    """Minimal ClickHouse HTTP client: POST the statement as the body."""

    def __init__(self, url: str, user: Optional[str] = None, password: Optional[str] = None):
        self.url = url.rstrip("/") + "/"
        self.headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def query(self, sql: str, **params: str) -> bytes:
        """Run one statement; returns the body. Raises ClickHouseError."""
        url = self.url
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=sql.encode("utf-8"), headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
            code = int(e.headers.get("X-ClickHouse-Exception-Code", "0") or 0)
            raise ClickHouseError(e.code, code, body) from None


def apply(
    http: Http,
    values: Dict[str, str],
    cluster_mode: bool,
    directory: str = DEFAULT_DIR,
    force: bool = False,
    log=lambda s: None,
) -> List[int]:
    """Apply pending migrations; returns the versions executed in this run."""
    db = values["database"]
    on_cluster = values["on_cluster"]
    engine = (
        f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{db}/mcptap_schema_migrations', '{{replica}}')"
        if cluster_mode
        else "MergeTree"
    )
    http.query(f"CREATE DATABASE IF NOT EXISTS `{db}` {on_cluster}")
    http.query(
        f"CREATE TABLE IF NOT EXISTS `{db}`.mcptap_schema_migrations {on_cluster} "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3)) "
        f"ENGINE = {engine} ORDER BY version"
    )
    done = set()
    for line in http.query(f"SELECT version FROM `{db}`.mcptap_schema_migrations FORMAT TSV").decode().split():
        done.add(int(line))
    ran: List[int] = []
    for mig in selected(load(directory), cluster_mode):
        if mig.version in done and not force:
            continue
        for stmt in split_statements(render(mig.text, values)):
            log(f"{mig.version:04d}_{mig.name}: {stmt.splitlines()[0][:100]}")
            http.query(stmt)
        if mig.version not in done:
            http.query(
                f"INSERT INTO `{db}`.mcptap_schema_migrations (version, name, checksum, applied_at) "
                f"VALUES ({mig.version}, '{mig.name}', '{mig.checksum}', now64(3))"
            )
        ran.append(mig.version)
    return ran


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:18123"))
    ap.add_argument("--database", default="default")
    ap.add_argument("--table", default="otel_traces")
    ap.add_argument("--ttl-days", type=int, default=0)
    ap.add_argument("--cluster", default=None, help="cluster name: cluster mode")
    ap.add_argument("--local-table", default=None, help="cluster mode: local table (default <table>_local)")
    ap.add_argument("--dir", default=DEFAULT_DIR)
    ap.add_argument("--user", default=None)
    ap.add_argument("--password", default=None)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    values = placeholders(args.database, args.table, args.ttl_days, args.cluster, args.local_table)
    cluster_mode = bool(args.cluster)
    if args.render_only:
        for mig in selected(load(args.dir), cluster_mode):
            print(f"-- {mig.version:04d}_{mig.name} ({mig.mode})")
            for stmt in split_statements(render(mig.text, values)):
                print(stmt + ";\n")
        return 0
    http = Http(args.url, args.user, args.password)
    try:
        ran = apply(http, values, cluster_mode, args.dir, args.force, log=lambda s: print(s, file=sys.stderr))
    except ClickHouseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("applied: " + (", ".join(f"{v:04d}" for v in ran) if ran else "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
