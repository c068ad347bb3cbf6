#!/usr/bin/env bash
# Creates .venv/ at the repository root (gitignored) with the Python tools the
# integration tests use, pinned. Idempotent: installs only what is missing, so
# the tests can call it every run. Needs python3 (with venv) and PyPI.
#
#   oteltest 0.49.0  OTLP gRPC/HTTP sinks the OTLP tests assert on
#                    (collector/tests/support/otlp_sink.py)
#   rotel 0.0.1a15   a real OTLP collector (Rust, shipped in the wheel; cp311)
#
# Other helpers ADD their own pinned packages to PKGS; keep entries `name==version`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Test binaries run in parallel and may all call this: one installer at a time.
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/mcptap-test-venv.lock"
  flock 9
fi
PKGS=(
  "oteltest==0.49.0"
  "rotel==0.0.1a15"
  "protobuf==7.36.2"
  "kubernetes-validate==1.37.0"   # deploy/ manifests and rendered chart (tests/deploy)
  "helm-python-sdk==0.2.2"        # Helm v4 lint + render, offline (tests/deploy)
  "PyYAML==6.0.3"
)
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    echo "test-venv: python3 -m venv failed; installing python3-venv" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv .venv
  fi
fi
# One interpreter start: print the specs whose installed version differs.
mapfile -t missing < <(.venv/bin/python - "${PKGS[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        ok = version(name) == want
    except PackageNotFoundError:
        ok = False
    if not ok:
        print(spec)
PY
)
if ((${#missing[@]})); then
  echo "test-venv: installing ${missing[*]}" >&2
  # No --pre: an exact pre-release pin (rotel==0.0.1a15) is allowed as is, and
  # --pre would pull pre-releases of every dependency.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi
