#!/usr/bin/env bash
# The main job on the bundled real capture, on a fresh machine:
#   1. start the local ClickHouse (chDB HTTP front, tools/chfront) unless CLICKHOUSE_URL is set,
#   2. apply the schema (mcptap-collector schema),
#   3. replay the bundled capture (tests/fixtures/cutover.pcap, embedded in the binary)
#      through the collector into ClickHouse,
#   4. print the analyzer's cutover report,
#   5. say how to open the web page.
# Extra arguments go to `mcptap-analyzer report` (e.g. --format json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building (release)…" >&2
cargo build --release --quiet -p mcptap-collector -p mcptap-analyzer
BIN=target/release
mkdir -p .work
if [ -z "${CLICKHOUSE_URL:-}" ]; then
  PORT="${MCPTAP_DEMO_PORT:-18123}"
  PIDFILE=.work/demo-clickhouse.pid
  [ -f "$PIDFILE" ] && tools/chfront/stop.sh --pidfile "$PIDFILE" >/dev/null 2>&1 || true
  rm -rf .work/demo-clickhouse
  echo "demo: starting the local ClickHouse (chDB) on port $PORT…" >&2
  CLICKHOUSE_URL=$(tools/chfront/start.sh --background --port "$PORT" --data-dir .work/demo-clickhouse \
    --pidfile "$PIDFILE" --log .work/demo-clickhouse.log -- --quiet | tail -n 1)
  STARTED_FRONT=1
fi
export CLICKHOUSE_URL
$BIN/mcptap-collector schema --clickhouse-url "$CLICKHOUSE_URL"
$BIN/mcptap-collector demo --clickhouse-url "$CLICKHOUSE_URL"
echo >&2
# The capture was recorded on 2026-11-21; look back far enough to include it.
$BIN/mcptap-analyzer report --clickhouse-url "$CLICKHOUSE_URL" --since 2026-11-01T00:00:00Z "$@" || true
cat >&2 <<MSG

demo: spans are in ClickHouse at $CLICKHOUSE_URL (table default.otel_traces).
  web page:   $BIN/mcptap-analyzer serve --clickhouse-url $CLICKHOUSE_URL --listen 127.0.0.1:8080 --until 2026-11-21T06:00:00Z --window 1h
              then open http://127.0.0.1:8080/  (the capture was recorded at 2026-11-21T05:51Z)
  SQL:        curl '$CLICKHOUSE_URL/?query=SELECT+McpMethod,count()+FROM+otel_traces+GROUP+BY+1+ORDER+BY+2+DESC'
MSG
if [ "${STARTED_FRONT:-0}" = 1 ]; then
  echo "  stop the local ClickHouse: tools/chfront/stop.sh --pidfile .work/demo-clickhouse.pid" >&2
fi
