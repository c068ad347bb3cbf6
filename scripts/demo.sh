#!/usr/bin/env bash
# The main job on the bundled real capture: replays tests/fixtures/cutover.pcap
# (embedded in the binary) through the collector and prints the summary.
# Extra arguments go to `mcptap-collector demo`, e.g. `--output otlp-json`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet -p mcptap-collector
exec target/release/mcptap-collector demo "$@"
