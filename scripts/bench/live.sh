#!/usr/bin/env bash
# Live capture: replays the benchmark capture with tcpreplay at increasing
# packet rates onto one end of a veth pair (inside a private network
# namespace) while `mcptap-collector --interface` captures on the other end,
# and reports, per rate, the kernel's drop counters (pcap_stats, from the
# end-of-run summary), the spans decoded and the collector's CPU share.
#
# Needs root, iproute2, tcpreplay. NOT run in CI. Usage:
#   scripts/bench/live.sh [PPS ...]          # default: 50000 100000 200000 300000 400000
# Env: MCPTAP_BENCH_DIR (default /tmp/mcptap-bench), CARGO_TARGET_DIR (default
# target), PCAP (default $MCPTAP_BENCH_DIR/slice-50m.pcap, generated if missing),
# PACKETS (packets replayed per rate, default 600000; the file is looped),
# REPLAYERS (parallel tcpreplay processes sharing the rate, default 1),
# PPS_MULTI (packets tcpreplay sends per timer interval, default 10: one packet
# per interval tops out near 300k packets/s here; with 10, and the file
# preloaded with -K, one tcpreplay reaches ~380k packets/s).
# MCP requests/s = pps x (MCP requests / packets of the file), printed too.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${MCPTAP_BENCH_DIR:-/tmp/mcptap-bench}
TARGET=${CARGO_TARGET_DIR:-target}
COL=$TARGET/release/mcptap-collector
PCAP=${PCAP:-$DIR/slice-50m.pcap}
PACKETS=${PACKETS:-600000}
REPLAYERS=${REPLAYERS:-1}
PPS_MULTI=${PPS_MULTI:-10}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(50000 100000 200000 300000 400000)
mkdir -p "$DIR"
[ -s "$PCAP" ] || python3 scripts/bench/gen_big_pcap.py --size-mb 50 --output "$PCAP"
NS=mtbench
cleanup() { ip netns del $NS 2>/dev/null || true; ip link del mtb0 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $NS
ip link add mtb0 type veth peer name mtb1
ip link set mtb1 netns $NS
ip link set mtb0 mtu 9000 up
ip netns exec $NS ip link set mtb1 mtu 9000 up
"$COL" --pcap "$PCAP" 2>"$DIR/live-file.summary" >/dev/null
pk=$(grep -oP 'packets \K[0-9]+' "$DIR/live-file.summary" | head -1)
rq=$(grep -oP 'mcp: requests \K[0-9]+' "$DIR/live-file.summary" | head -1)
echo "| target pps | tcpreplay actual pps | MCP requests/s (pps x $rq/$pk) | kernel received | kernel dropped | if dropped | spans | collector CPU s | replay s | collector CPU / replay time |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for pps in "${RATES[@]}"; do
  # Capture window: the replay at the target rate, plus slack for preloading
  # (-K), replaying below the target rate, and the 1.5 s head start.
  dur=$(python3 -c "print(round($PACKETS / $pps * 1.5 + 6, 1))")
  /usr/bin/time -f "%U %S %e" -o "$DIR/live-$pps.time" \
    "$COL" --interface mtb0 --duration "$dur" --idle-timeout 5 2>"$DIR/live-$pps.summary" >/dev/null &
  cpid=$!
  sleep 1.5
  for i in $(seq 1 "$REPLAYERS"); do
    ip netns exec $NS tcpreplay -q -K -i mtb1 --pps-multi="$PPS_MULTI" --pps="$((pps / REPLAYERS))" --limit="$((PACKETS / REPLAYERS))" \
      --loop=0 "$PCAP" >"$DIR/live-$pps.replay.$i" 2>&1 &
  done
  wait $(jobs -p | grep -v "^$cpid$") 2>/dev/null || true
  wait $cpid || true
  # Sum of the replayers' achieved rates.
  actual=$(cat "$DIR"/live-$pps.replay.* | grep -oP 'Rated: [0-9.]+ Bps, [0-9.]+ Mbps, \K[0-9.]+' | paste -sd+ | bc)
  rm -f "$DIR"/live-$pps.replay.*
  read -r recv drop ifdrop < <(grep -oP 'kernel: received \K[0-9]+  dropped [0-9]+  interface-dropped [0-9]+' "$DIR/live-$pps.summary" | sed 's/ *dropped / /; s/ *interface-dropped / /')
  spans=$(grep -oP 'spans \K[0-9]+' "$DIR/live-$pps.summary" | head -1)
  read -r u s e < "$DIR/live-$pps.time"
  python3 -c "
u,s,e=$u,$s,$e; a=float('${actual:-0}')
r=$PACKETS/a if a else float('nan')
print(f'| $pps | {a:,.0f} | {a*$rq/$pk:,.0f} | $recv | $drop | $ifdrop | $spans | {u+s:.2f} | {r:.1f} | {(u+s)/r*100:.0f}% |')"
done
