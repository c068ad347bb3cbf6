#!/usr/bin/env bash
# Start chfront (ClickHouse HTTP interface over chDB) for development and tests.
#
#   tools/chfront/start.sh [--port 18123] [--host 127.0.0.1] [--data-dir DIR] [--background]
#                          [--pidfile FILE] [--log FILE] [--timeout SECONDS] [-- chfront args...]
#   tools/chfront/start.sh --install-only     # only set up the venv, start nothing
#
# Ensures the venv .venv/ at the repository root has tools/chfront/requirements.txt installed
# (first run: ~30 s, ~200 MB; later runs: a quick check). Foreground by default; with
# --background it detaches, writes the pid file, waits until /ping answers and prints the URL.
# Default data dir: ${XDG_DATA_HOME:-$HOME/.local/share}/mcptap/chfront (persistent).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/.venv"
REQ="$HERE/requirements.txt"

PORT=18123
HOST=127.0.0.1
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/mcptap/chfront"
BACKGROUND=0
INSTALL_ONLY=0
PIDFILE=""
LOG=""
TIMEOUT=60
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --host) HOST="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --background) BACKGROUND=1; shift ;;
    --pidfile) PIDFILE="$2"; shift 2 ;;
    --log) LOG="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "start.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
PIDFILE="${PIDFILE:-${TMPDIR:-/tmp}/mcptap-chfront-$PORT.pid}"
LOG="${LOG:-${TMPDIR:-/tmp}/mcptap-chfront-$PORT.log}"

# --- the venv -----------------------------------------------------------------------------
pick_python() {
  for py in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

ensure_venv() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$REQ" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    if version(name) != want:
        sys.exit(1)
import chdb, lz4.block  # noqa: F401
PY
  then
    return 0
  fi
  local py
  if ! py="$(pick_python)"; then
    echo "start.sh: installing python3 (apt)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
    py=python3
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "start.sh: creating $VENV" >&2
    if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      echo "start.sh: '$py -m venv' failed; installing python3-venv (apt)" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
      py=/usr/bin/python3
      "$py" -m venv "$VENV"
    fi
  fi
  echo "start.sh: installing $(tr '\n' ' ' < "$REQ")into $VENV (first time: ~30 s, ~200 MB)" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
}

ensure_venv
[ "$INSTALL_ONLY" = 1 ] && exit 0

# --- run ------------------------------------------------------------------------------------
mkdir -p "$DATA_DIR"
URL="http://$HOST:$PORT"
if [ "$BACKGROUND" = 0 ]; then
  exec "$VENV/bin/python" "$HERE/chfront.py" --host "$HOST" --port "$PORT" --data-dir "$DATA_DIR" \
    --pidfile "$PIDFILE" ${EXTRA[@]+"${EXTRA[@]}"}
fi

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  if "$VENV/bin/python" -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('$URL/ping', timeout=2).read() != b'Ok.\n')" 2>/dev/null; then
    echo "$URL"
    exit 0
  fi
  echo "start.sh: pid $(cat "$PIDFILE") from $PIDFILE is running but $URL/ping does not answer" >&2
  exit 1
fi

nohup "$VENV/bin/python" "$HERE/chfront.py" --host "$HOST" --port "$PORT" --data-dir "$DATA_DIR" \
  --pidfile "$PIDFILE" ${EXTRA[@]+"${EXTRA[@]}"} >>"$LOG" 2>&1 </dev/null &
PID=$!
deadline=$(( $(date +%s) + TIMEOUT ))
until "$VENV/bin/python" -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('$URL/ping', timeout=2).read() != b'Ok.\n')" 2>/dev/null; do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "start.sh: chfront exited; last log lines ($LOG):" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "start.sh: $URL/ping did not answer within ${TIMEOUT}s; stopping pid $PID (log: $LOG)" >&2
    kill "$PID" 2>/dev/null || true
    exit 1
  fi
  sleep 0.2
done
echo "$PID" > "$PIDFILE"
echo "$URL"
