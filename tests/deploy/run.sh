#!/usr/bin/env bash
# Offline validation of deploy/ and dashboards/ (about 20 s after the build):
#   kubectl kustomize + kubernetes-validate, Helm lint + render (helm-python-sdk) + kubernetes-validate,
#   promtool check/test rules, dashboards checked structurally and every panel query run on
#   ClickHouse (chfront, or CLICKHOUSE_URL) holding tests/fixtures/cutover.pcap.
# Needs: kubectl, promtool (Debian `prometheus`), .venv (scripts/test-venv.sh), a built collector.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/test-venv.sh
BIN="${MCPTAP_COLLECTOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/mcptap-collector}"
[ -x "$BIN" ] || cargo build --quiet -p mcptap-collector
PY=.venv/bin/python
echo "== manifests (kustomize, helm, kubernetes-validate)"
$PY tests/deploy/check_manifests.py "$BIN"
echo "== prometheus rules"
promtool check rules deploy/prometheus/mcptap-rules.yml
(cd deploy/prometheus && promtool test rules mcptap-rules.test.yml)
echo "== dashboards on ClickHouse"
TMP="$(mktemp -d)"
cleanup() { [ -f "$TMP/ch.pid" ] && tools/chfront/stop.sh --pidfile "$TMP/ch.pid" >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT
if [ -n "${CLICKHOUSE_URL:-}" ]; then
  DB="mcptap_deploy_$$"
  curl -sf "$CLICKHOUSE_URL/" --data-binary "CREATE DATABASE IF NOT EXISTS $DB" >/dev/null
  URL="$CLICKHOUSE_URL"; DBARGS=(--clickhouse-database "$DB")
else
  PORT=$((20000 + RANDOM % 20000))
  tools/chfront/start.sh --port "$PORT" --data-dir "$TMP/ch" --background --pidfile "$TMP/ch.pid" >/dev/null
  URL="http://127.0.0.1:$PORT"; DBARGS=(); DB=default
fi
"$BIN" schema --clickhouse-url "$URL" --database "$DB" >/dev/null
"$BIN" --pcap tests/fixtures/cutover.pcap --clickhouse-url "$URL" "${DBARGS[@]}" --no-summary 2>/dev/null
$PY tests/deploy/check_dashboards.py "$URL" "$DB"
echo "deploy checks: OK"
