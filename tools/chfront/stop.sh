#!/usr/bin/env bash
# Stop a chfront started with start.sh --background.
#
#   tools/chfront/stop.sh [--port 18123] [--pidfile FILE] [--timeout SECONDS]
#
# Sends SIGTERM to the pid in the pid file (default ${TMPDIR:-/tmp}/mcptap-chfront-<port>.pid)
# and waits for the process to finish its requests and exit.
set -euo pipefail
PORT=18123
PIDFILE=""
TIMEOUT=30
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --pidfile) PIDFILE="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "stop.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
PIDFILE="${PIDFILE:-${TMPDIR:-/tmp}/mcptap-chfront-$PORT.pid}"
if [ ! -f "$PIDFILE" ]; then
  echo "stop.sh: no pid file $PIDFILE (not running?)" >&2
  exit 0
fi
PID="$(cat "$PIDFILE")"
if ! kill -0 "$PID" 2>/dev/null; then
  echo "stop.sh: pid $PID is not running; removing $PIDFILE" >&2
  rm -f "$PIDFILE"
  exit 0
fi
if ! tr '\0' ' ' < "/proc/$PID/cmdline" 2>/dev/null | grep -q "chfront.py"; then
  echo "stop.sh: pid $PID is not a chfront process; not touching it" >&2
  exit 1
fi
kill -TERM "$PID"
for _ in $(seq 1 $(( TIMEOUT * 10 ))); do
  kill -0 "$PID" 2>/dev/null || { rm -f "$PIDFILE"; echo "stopped chfront (pid $PID)"; exit 0; }
  sleep 0.1
done
echo "stop.sh: pid $PID did not exit within ${TIMEOUT}s" >&2
exit 1
