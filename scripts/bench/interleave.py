#!/usr/bin/env python3
"""Interleaved whole-process CPU comparison, for noisy shared machines.

hyperfine runs all the runs of one command before the next, so a slow spell of
the host lands on one command only; its JSON also keeps only the mean of the
user and system times. This script runs the commands round-robin (the order
rotates every round), reads each run's own user+sys CPU time from `wait4`, and
prints the minimum, median and mean per command, each command's median and
minimum as a ratio of the reference command's, and, given the number of MCP
requests in the input, requests per CPU-second.

Usage:
  scripts/bench/interleave.py [--runs N] [--requests R] [--ref NAME] NAME=COMMAND ...
Example (see BENCHMARKS.md):
  scripts/bench/interleave.py --runs 15 --requests 383700 --ref pcap_count \\
    "pcap_count=target/release/examples/pcap_count big.pcap" \\
    "collector=target/release/mcptap-collector --pcap big.pcap --no-summary"
Output is discarded (stdout and stderr to /dev/null); a non-zero exit fails the script.
Standard library only.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="rounds (each runs every command once)")
    ap.add_argument("--requests", type=int, help="MCP requests in the input (for requests/s)")
    ap.add_argument("--ref", help="command name the ratios are taken against (default: the first)")
    ap.add_argument("cmds", nargs="+", metavar="NAME=COMMAND")
    a = ap.parse_args()
    cmds = []
    for c in a.cmds:
        name, sep, cmd = c.partition("=")
        if not sep or not name or not cmd:
            ap.error(f"expected NAME=COMMAND, got {c!r}")
        cmds.append((name, shlex.split(cmd)))
    ref = a.ref or cmds[0][0]
    if ref not in dict(cmds):
        ap.error(f"--ref {ref!r} is not one of the commands")
    cpu = {n: [] for n, _ in cmds}
    for i in range(a.runs):
        k = i % len(cmds)
        for name, argv in cmds[k:] + cmds[:k]:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            if status != 0:
                sys.exit(f"interleave: {name} failed (wait status {status}): {shlex.join(argv)}")
            cpu[name].append(ru.ru_utime + ru.ru_stime)
    med = {n: statistics.median(v) for n, v in cpu.items()}
    lo = {n: min(v) for n, v in cpu.items()}
    print(f"{a.runs} interleaved rounds; CPU = user+sys of each run (s); ratios against {ref}\n")
    head = "| command | CPU min | CPU median | CPU mean | median / ref | min / ref |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if a.requests:
        head += " MCP requests/s per core (median) | (min) |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for name, v in cpu.items():
        row = (f"| {name} | {lo[name]:.3f} | {med[name]:.3f} | {statistics.mean(v):.3f} "
               f"| {med[name] / med[ref]:.3f} | {lo[name] / lo[ref]:.3f} |")
        if a.requests:
            row += f" {a.requests / med[name]:,.0f} | {a.requests / lo[name]:,.0f} |"
        print(row)


if __name__ == "__main__":
    main()
