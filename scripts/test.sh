#!/usr/bin/env bash
# The test suite: unit, property, golden (real SDK captures vs ground truth) and,
# as root, the live-capture test in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$(id -u)" -eq 0 ]; then
  export MCPTAP_LIVE_TESTS=1   # live capture on a veth pair in namespaces; needs root
else
  echo "test: not root: the live-capture test is skipped (run as root to include it)" >&2
fi
cargo build --quiet --workspace --all-targets
cargo test --workspace --no-fail-fast 2>&1 | tee target/test.log
