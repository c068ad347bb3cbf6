//! Bare libpcap iteration over a capture file: the upper bound for any decoder
//! that reads through libpcap (the collector's `--pcap` path).
//!
//! Opens the file exactly as `collector/src/source.rs` does (nanosecond
//! precision), reads every packet with `next_packet`, computes the same ns
//! timestamp, and only counts packets and captured bytes. Used by
//! `scripts/bench/run.sh` as the reference of the whole-process benchmark.
//!
//! ```sh
//! cargo run --release -p mcptap-collector --example pcap_count -- FILE.pcap
//! ```
//! Prints `packets=N bytes=B ts_xor=X secs=S` on stdout (`ts_xor` only keeps the
//! timestamps from being optimised away; `secs` is the wall time of the loop).

use pcap::{Capture, Precision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: pcap_count FILE.pcap")?;
    let started = std::time::Instant::now();
    let mut cap = Capture::from_file_with_precision(&path, Precision::Nano)?;
    let (mut packets, mut bytes, mut ts_xor) = (0u64, 0u64, 0u64);
    loop {
        match cap.next_packet() {
            Ok(p) => {
                packets += 1;
                bytes += p.data.len() as u64;
                let sec = u64::try_from(p.header.ts.tv_sec).unwrap_or(0);
                let nsec = u64::try_from(p.header.ts.tv_usec).unwrap_or(0);
                ts_xor ^= sec.saturating_mul(1_000_000_000).saturating_add(nsec);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "packets={packets} bytes={bytes} ts_xor={ts_xor} secs={:.3}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
