#!/usr/bin/env bash
# Short fuzz run of every target (CI): fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Seeds fuzz/corpus/<target>/ from the real captures (fuzz/seed.sh), builds the
# targets once (release + ASan via cargo-fuzz, RUSTC_BOOTSTRAP=1 on stable), runs
# each target for SECONDS (default 20) on one job, and fails on the first crash,
# printing the artifact (hex) and the command that reproduces it. The corpus grows
# between runs (new inputs are kept in fuzz/corpus/<target>/, gitignored).
#
# Env: CARGO_TARGET_DIR (default fuzz/target), FUZZ_RSS_MB (libFuzzer -rss_limit_mb, default 2048).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
secs="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pcap_file link_decode tcp_reassembly http_conn http_head sse mcp_decode json_body forwarded tls_hello)
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || { echo "run.sh: cargo-fuzz missing: cargo install cargo-fuzz --version 0.13.2 --locked" >&2; exit 1; }
cd "$here"
"$here/seed.sh" >/dev/null
if ! cargo fuzz build >/dev/null 2>&1; then cargo fuzz build; exit 1; fi
status=0
for t in "${targets[@]}"; do
  log="$(mktemp)"
  if cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
       -print_final_stats=1 >"$log" 2>&1; then
    execs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n1)
    echo "fuzz $t: ok, ${execs:-?} execs in ${secs}s, ${cov:-cov ?}, corpus $(ls "corpus/$t" | wc -l)"
  else
    status=1
    echo "fuzz $t: FAILED" >&2
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|deadly signal|Test unit written' "$log" | head -n 20 >&2 || tail -n 40 "$log" >&2
    art=$(grep -Eo 'artifacts/[^ ]+' "$log" | tail -n1 || true)
    if [ -n "$art" ] && [ -f "$art" ]; then
      echo "artifact $here/$art ($(wc -c <"$art") bytes):" >&2
      od -A d -t x1 -v "$art" | head -n 40 >&2
      echo "reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t $art" >&2
    fi
  fi
  rm -f "$log"
done
exit $status
