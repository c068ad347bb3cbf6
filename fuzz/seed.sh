#!/usr/bin/env bash
# Regenerates the seed corpora of every fuzz target from the real captures in
# tests/fixtures/ (fuzz/corpus/<target>/seed-*; see fuzz/seed.py for the formats).
# Idempotent; the files are not committed (they are a pure function of the fixtures).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python3 "$here/seed_forwarded.py" "${1:-$here/corpus}"
exec python3 "$here/seed.py" "${1:-$here/corpus}"
