#!/usr/bin/env python3
"""Runs a command and samples its resident memory every 100 ms from /proc.

Prints the RSS timeline (MiB) and the peak (VmHWM, read just before exit via
a final poll; /usr/bin/time -v reports the same peak). Used for the
"peak RSS at 100k concurrent flows" benchmark:

    scripts/bench/rss.py target/release/mcptap-collector --pcap OPEN.pcap --no-summary
"""
import subprocess
import sys
import time

p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
samples, hwm = [], 0
t0 = time.time()
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/status") as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
        rss = int(st["VmRSS"].split()[0]) / 1024
        hwm = max(hwm, int(st["VmHWM"].split()[0]) / 1024)
        samples.append((time.time() - t0, rss))
    except (FileNotFoundError, KeyError, ProcessLookupError, ValueError):
        pass
    time.sleep(0.1)
print("t_s  rss_MiB")
for t, r in samples[:: max(1, len(samples) // 25)]:
    print(f"{t:5.1f} {r:8.1f}")
print(f"peak (VmHWM, last sample) {hwm:.1f} MiB; exit {p.returncode}")
