#!/usr/bin/env bash
# Whole-process throughput, three tools on the same files in one run:
#   1. bare libpcap iteration (collector/examples/pcap_count.rs: the issue's
#      reference), and bare iteration of the collector's own file source
#      (collector/examples/file_count.rs: 256 KiB reads + mcptap_wire::pcapfile,
#      the limit of `--pcap` since round 7),
#   2. mcptap-collector --pcap FILE --no-summary (spans discarded), and with
#      --output otlp-json=/dev/null,
#   3. tshark extracting the same fields (HTTP method, status, request line with
#      the MCP headers, JSON members incl. the JSON-RPC method) -- slow, so only on
#      the small slice; everything is compared per MB on that slice.
# Prints a table (MB/s, packets/s, MCP requests/s, CPU-s, ratios).
#
# NOT run in CI (minutes, 1 GB of temp data). Usage:
#   scripts/bench/run.sh                      # 1 GiB big capture + 50 MiB slice
#   BIG_MB=256 SLICE_MB=20 RUNS=3 scripts/bench/run.sh
#   CORPORA="cutover load" scripts/bench/run.sh   # both corpora in the same run
# Env: MCPTAP_BENCH_DIR (default /tmp/mcptap-bench; generated captures live
# there, never in the repository), CARGO_TARGET_DIR (default target),
# RUNS (hyperfine runs per command, default 3), SKIP_BUILD=1, SKIP_TSHARK=1,
# CORPORA (default "cutover": copies of tests/fixtures/cutover.pcap,
# big-<BIG_MB>m.pcap and slice-<SLICE_MB>m.pcap; "load": load-<BIG_MB>m.pcap and
# load-<SLICE_MB>m.pcap, made from LOAD_RAW, default $MCPTAP_BENCH_DIR/load-raw.pcap,
# which tests/fixtures/gen/load.sh writes; see BENCHMARKS.md "Inputs").
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${MCPTAP_BENCH_DIR:-/tmp/mcptap-bench}
BIG_MB=${BIG_MB:-1024}
SLICE_MB=${SLICE_MB:-50}
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
CORPORA=${CORPORA:-cutover}
LOAD_RAW=${LOAD_RAW:-$DIR/load-raw.pcap}
mkdir -p "$DIR"
FILES=()   # per corpus: its slice, then its big file
SLICES=()  # tshark runs on these only
for corpus in $CORPORA; do
  case $corpus in
    cutover) BIG=$DIR/big-${BIG_MB}m.pcap; SLICE=$DIR/slice-${SLICE_MB}m.pcap; INPUT=() ;;
    load)
      BIG=$DIR/load-${BIG_MB}m.pcap; SLICE=$DIR/load-${SLICE_MB}m.pcap; INPUT=(--input "$LOAD_RAW")
      if { [ ! -s "$BIG" ] || [ ! -s "$SLICE" ]; } && [ ! -s "$LOAD_RAW" ]; then
        echo "$LOAD_RAW missing: make it with sudo tests/fixtures/gen/load.sh --output $LOAD_RAW" >&2; exit 1
      fi ;;
    *) echo "unknown corpus $corpus (cutover, load)" >&2; exit 1 ;;
  esac
  [ -s "$BIG" ] || python3 scripts/bench/gen_big_pcap.py "${INPUT[@]}" --size-mb "$BIG_MB" --output "$BIG"
  [ -s "$SLICE" ] || python3 scripts/bench/gen_big_pcap.py "${INPUT[@]}" --size-mb "$SLICE_MB" --output "$SLICE"
  FILES+=("$SLICE" "$BIG")
  SLICES+=("$SLICE")
done
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p mcptap-collector --bin mcptap-collector --example pcap_count --example file_count
fi
COL=$TARGET/release/mcptap-collector
CNT=$TARGET/release/examples/pcap_count
FCNT=$TARGET/release/examples/file_count
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
TSHARK_FIELDS="-e http.request.method -e http.request.uri -e http.response.code -e http.content_type -e http.request.line -e json.member_with_value"

echo "machine: $(nproc) cores; $(uname -r); $(date -u +%FT%TZ)" >&2
for f in "${FILES[@]}"; do
  tag=$(basename "$f" .pcap)
  # One run with the summary, for the packet / span / request counts.
  "$COL" --pcap "$f" 2>"$DIR/$tag.summary" >/dev/null
  cmds=(-n pcap_count "$CNT $f"
        -n file_count "$FCNT $f"
        -n collector "$COL --pcap $f --no-summary"
        -n collector+otlp-json "$COL --pcap $f --no-summary --output otlp-json=/dev/null")
  hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$DIR/$tag.json" "${cmds[@]}" >&2
  if [[ " ${SLICES[*]} " == *" $f "* ]] && [ -z "${SKIP_TSHARK:-}" ] && command -v tshark >/dev/null; then
    # tshark prints the fields on stdout, which hyperfine discards (like the
    # collector's spans). One run: it is slow.
    hyperfine -N --style basic --runs 1 --export-json "$DIR/$tag.tshark.json" \
      -n tshark "tshark -n -r $f -Y http -T fields $TSHARK_FIELDS" >&2
  fi
done

python3 - "$DIR" "${FILES[@]}" <<'EOF'
import json, os, re, sys
d, files = sys.argv[1], sys.argv[2:]
def counts(tag):
    s = open(f"{d}/{tag}.summary").read()
    pk = int(re.search(r"packets (\d+)", s).group(1))
    sp = int(re.search(r"spans (\d+)", s).group(1))
    rq = int(re.search(r"mcp: requests (\d+)", s).group(1))
    return pk, sp, rq
print("\nRates are per CPU-second (user+sys of the process, mean of the runs): the")
print("machine is shared, so wall time mostly measures waiting. Wall-time ratios in the last column.\n")
print("| file | tool | wall s (mean±sd) | CPU s | MB/s per core | packets/s per core | MCP requests/s per core | % of pcap_count rate (CPU) | x tshark rate (CPU) | % of pcap_count (wall) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for f in files:
    tag = os.path.basename(f)[:-5]
    mb = os.path.getsize(f) / 1e6
    pk, sp, rq = counts(tag)
    res = json.load(open(f"{d}/{tag}.json"))["results"]
    tj = f"{d}/{tag}.tshark.json"
    if os.path.exists(tj):
        res += json.load(open(tj))["results"]
    by = {r["command"]: r for r in res}
    cpu = lambda r: r["user"] + r["system"]
    base, base_wall = cpu(by["pcap_count"]), by["pcap_count"]["mean"]
    tsh = cpu(by["tshark"]) if "tshark" in by else None
    for r in res:
        c, m = cpu(r), r["mean"]
        vs_t = f"{tsh / c:.1f}x" if tsh else "-"
        print(f"| {tag} ({mb:.0f} MB, {pk} packets, {rq} MCP requests) | {r['command']} | {m:.3f}±{r['stddev'] or 0:.3f} | {c:.3f} | "
              f"{mb / c:,.1f} | {pk / c:,.0f} | {rq / c:,.0f} | {base / c * 100:.1f}% | {vs_t} | {base_wall / m * 100:.1f}% |")
EOF
